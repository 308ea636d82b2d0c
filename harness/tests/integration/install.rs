//! The Rust target a Rust module needs is installed (or its command shown)
//! before anything slow: on a fresh machine `check` met its absence only
//! after building the kernel. These runs stop at that step, so they need no
//! kernel; rustup is a stand-in here (or absent), the machine's own targets
//! are left alone.

use crate::common::{repo, text};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// rustup as on a machine where the toolchain is there without the target;
/// adding it fails, so that the check stops right after trying.
const RUSTUP: &str = r#"#!/bin/sh
echo "rustup $* [in $PWD]" >> "$CALLS"
case "$*" in
"show active-toolchain") echo "stub-toolchain (overridden by '$PWD/rust-toolchain.toml')" ;;
"target list --installed --toolchain stub-toolchain") echo x86_64-unknown-linux-gnu ;;
"target add "*) echo "error: could not download the stand-in component" >&2; exit 1 ;;
esac
"#;

/// `harness check` (kmod/, the Rust module) with PATH set to `bin` only,
/// and a private cache for the logs and locks.
fn check_with_path(bin: &Path, env: &[(&str, &str)]) -> (Output, String) {
    let cache = tempfile::tempdir().unwrap();
    let calls = bin.join("calls");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"));
    // A source that does not exist: a harness that went on to the kernel
    // stops there at once, instead of building one into the private cache.
    cmd.args(["check", "--kernel-src", "/nonexistent/linux-source-6.12.tar.xz", "--module"]).arg(repo().join("kmod"));
    cmd.env("PATH", bin).env("HARNESS_CACHE_DIR", cache.path()).env("CALLS", &calls).env_remove("HARNESS_NO_INSTALL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    (out, std::fs::read_to_string(&calls).unwrap_or_default())
}

fn stub_rustup() -> tempfile::TempDir {
    let bin = tempfile::tempdir().unwrap();
    let rustup = bin.path().join("rustup");
    std::fs::write(&rustup, RUSTUP).unwrap();
    std::fs::set_permissions(&rustup, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn a_missing_rustup_gets_the_exact_instruction() {
    let empty = tempfile::tempdir().unwrap();
    let (out, _) = check_with_path(empty.path(), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("needs rustup to add that target; install rustup (https://rustup.rs"), "{t}");
    assert!(t.contains("then run: rustup target add armv7a-none-eabi"), "{t}");
    assert!(!t.contains("] kernel"), "stopped before the kernel stage: {t}");
}

#[test]
fn with_no_install_a_missing_target_is_refused_with_its_command() {
    let bin = stub_rustup();
    let (out, calls) = check_with_path(bin.path(), &[("HARNESS_NO_INSTALL", "1")]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains(
            "the Rust target armv7a-none-eabi is missing for stub-toolchain; HARNESS_NO_INSTALL is set, so add \
            it yourself:\n  rustup target add --toolchain stub-toolchain armv7a-none-eabi"
        ),
        "{t}"
    );
    assert!(!calls.contains("target add"), "refused, yet rustup was asked to add it: {calls}");
    // The toolchain is the one rustup resolves in kmod/ (its rust-toolchain.toml).
    assert!(calls.contains(&format!("rustup show active-toolchain [in {}]", repo().join("kmod").display())), "{calls}");
}

#[test]
fn a_missing_target_is_installed_saying_so_before_the_kernel() {
    let bin = stub_rustup();
    let (out, calls) = check_with_path(bin.path(), &[]);
    let t = text(&out);
    assert!(
        t.contains(
            "harness: installing the Rust target armv7a-none-eabi for stub-toolchain (rustup target add \
            --toolchain stub-toolchain armv7a-none-eabi)"
        ),
        "{t}"
    );
    assert!(calls.contains("rustup target add --toolchain stub-toolchain armv7a-none-eabi"), "{calls}");
    // The stand-in's failure, with its own words and the way to do it by hand.
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("error: could not download the stand-in component"), "{t}");
    assert!(t.contains("to do it by hand: rustup target add --toolchain stub-toolchain armv7a-none-eabi"), "{t}");
    assert!(!t.contains("] kernel"), "stopped before the kernel stage: {t}");
}
