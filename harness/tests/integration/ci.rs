//! `.ci/run` starts from fresh under CI=true: it removes what the harness
//! claims to install (apt packages, the armhf architecture, the Rust target,
//! the extracted source and busybox), keeps the kernel builds, then runs the
//! README's two commands.
//!
//! The script runs for real here, against stand-ins for apt, dpkg, rustup
//! and cargo placed first on PATH that record what they are asked to do: the
//! machine running the suite keeps its packages and its Rust target.

use crate::common::repo;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Every command the script may change the machine with, or run the README's
/// commands with: each must be a stand-in.
const STUBBED: [&str; 7] = ["apt-get", "apt-cache", "dpkg", "dpkg-query", "rustup", "cargo", "sudo"];

/// One stand-in for all of them, answering as a Debian machine set up by the
/// harness would, except that nodejs is not installed, npm's installed
/// version is one apt has no source for, and libpq-dev (not the harness's)
/// depends on libssl-dev: both npm and libssl-dev must be kept. apt would
/// take libslirp0 along (only qemu needed it), and oldlib, auto-removable
/// before the script ran, which must be kept.
const STUB: &str = r#"#!/bin/sh
name=$(basename "$0")
echo "$name $* [in $PWD]" >> "$CALLS"
case "$name $*" in
"dpkg-query -W -f=\${Status} nodejs") echo "unknown ok not-installed" ;;
"dpkg-query -W -f=\${Status} "*) echo "install ok installed" ;;
"dpkg-query -W -f=\${Version} npm") echo "9.9.9-elsewhere" ;;
"dpkg-query -W -f=\${Version} "*) echo "1.0-1" ;;
"apt-cache madison "*) echo "   $2 |    1.0-1 | http://deb.debian.org/debian bookworm/main amd64 Packages" ;;
"apt-get -s remove libssl-dev") echo "Remv libpq-dev:amd64 [1.0-1]"; echo "Remv libssl-dev:amd64 [1.0-1]" ;;
"apt-get -s autoremove") echo "Remv oldlib [1.0-1]" ;;
"apt-get -s remove --autoremove "*) shift 3; for p; do echo "Remv $p [1.0-1]"; done
    echo "Remv libslirp0 [1.0-1]"; echo "Remv oldlib [1.0-1]" ;;
"apt-get -s remove gcc-arm-linux-gnueabihf") echo "Remv libc6-dev-armhf-cross [1.0-1]"
    echo "Remv gcc-arm-linux-gnueabihf [1.0-1]" ;;
"apt-get -s remove "*) echo "Remv $3 [1.0-1]" ;;
"dpkg --print-foreign-architectures") echo armhf ;;
"rustup show active-toolchain") echo "stub-toolchain (overridden by '$PWD/rust-toolchain.toml')" ;;
"rustup target list --installed --toolchain stub-toolchain") echo x86_64-unknown-linux-gnu; echo armv7a-none-eabi ;;
"cargo "*) echo "cargo HARNESS_CACHE_DIR=$HARNESS_CACHE_DIR" >> "$CALLS" ;;
"sudo -n "*) shift; exec "$@" ;;
esac
exit 0
"#;

struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    /// A PATH of stand-ins and a cache holding the source, busybox, the
    /// Rust module's build cache and one kernel build.
    fn new() -> Machine {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let stub = bin.join("stub");
        std::fs::write(&stub, STUB).unwrap();
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
        for name in STUBBED {
            std::os::unix::fs::symlink(&stub, bin.join(name)).unwrap();
        }
        let cache = dir.path().join("cache");
        for d in [
            "sources/linux-source-6_12_xz-0123/linux",
            "busybox-static-armhf-0123",
            "cargo/0123",
            "modules/0123-4567",
            "kernels/exynos4210-0123",
        ] {
            std::fs::create_dir_all(cache.join(d)).unwrap();
        }
        std::fs::write(cache.join("kernels/exynos4210-0123.lock"), "").unwrap();
        std::fs::write(cache.join("kernels/exynos4210-0123/zImage"), "kernel").unwrap();
        Machine { dir }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn path(&self) -> String {
        format!("{}:/usr/bin:/bin", self.dir.path().join("bin").display())
    }

    /// Runs .ci/run with `env`, after making sure every command that could
    /// change this machine resolves to a stand-in.
    fn run(&self, env: &[(&str, &str)]) -> (Output, Vec<String>) {
        let calls = self.dir.path().join("calls");
        let _ = std::fs::remove_file(&calls);
        for name in STUBBED {
            let out = Command::new("bash")
                .args(["-c", &format!("command -v {name}")])
                .env("PATH", self.path())
                .output()
                .unwrap();
            let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(
                Path::new(&found).starts_with(self.dir.path()),
                "{name} resolves to {found:?}, not to its stand-in"
            );
        }
        // Both streams in one pipe, in the order a CI log shows them.
        let mut cmd = Command::new("timeout");
        cmd.args(["120", "bash", "-c", "exec \"$0\" 2>&1"]).arg(repo().join(".ci/run"));
        cmd.env_clear()
            .env("PATH", self.path())
            .env("HOME", self.dir.path())
            .env("CALLS", &calls)
            .env("HARNESS_CACHE_DIR", self.cache());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let calls = std::fs::read_to_string(&calls).unwrap_or_default().lines().map(str::to_string).collect();
        (out, calls)
    }
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The calls that change something or run the README's commands (not the
/// queries), without the directory they ran in.
fn actions(calls: &[String]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.contains("remove") && !c.starts_with("apt-get -s ") || c.starts_with("cargo "))
        .filter(|c| !c.starts_with("sudo "))
        .map(|c| c.split(" [in ").next().unwrap().to_string())
        .collect()
}

#[test]
fn under_ci_it_removes_what_the_harness_installs_then_runs_the_readme_commands() {
    let m = Machine::new();
    let (out, calls) = m.run(&[("CI", "true")]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let cache = m.cache().display().to_string();
    assert_eq!(
        actions(&calls),
        [
            // nodejs is not installed; npm's version could not come back;
            // libssl-dev would take libpq-dev along. The cross libc goes
            // with the cross compiler, both the harness's: not a reason to
            // keep it.
            "cargo fmt --all -- --check".to_string(),
            format!("cargo HARNESS_CACHE_DIR={cache}"),
            "cargo clippy --all-targets -- -D warnings".to_string(),
            format!("cargo HARNESS_CACHE_DIR={cache}"),
            "apt-get -o DPkg::Lock::Timeout=600 remove -y -q bc bison bubblewrap chromium flex fonts-dejavu-core \
                gcc-arm-linux-gnueabihf gdb-multiarch lava-dispatcher lcov \
             libc6-dev-armhf-cross libslirp0 linux-source-6.12 python3-venv qemu-system-arm u-boot-tools"
                .to_string(),
            "dpkg --remove-architecture armhf".to_string(),
            "rustup target remove --toolchain stub-toolchain armv7a-none-eabi".to_string(),
            "cargo run --release -- check".to_string(),
            format!("cargo HARNESS_CACHE_DIR={cache}"),
            "cargo nextest run --profile ci".to_string(),
            format!("cargo HARNESS_CACHE_DIR={cache}"),
        ],
        "{t}"
    );
    // rustup answered for kmod/, whose rust-toolchain.toml picks the toolchain.
    let remove = calls.iter().find(|c| c.starts_with("rustup target remove")).unwrap();
    assert!(remove.ends_with(&format!("[in {}]", repo().join("kmod").display())), "{remove}");
    // What was removed is said, and what apt took along with the packages.
    for said in [
        "apt packages: qemu-system-arm",
        "with what only they needed: bc bison bubblewrap chromium flex fonts-dejavu-core \
        gcc-arm-linux-gnueabihf gdb-multiarch lava-dispatcher lcov libc6-dev-armhf-cross libslirp0 linux-source-6.12 \
            python3-venv qemu-system-arm u-boot-tools",
        "kept: oldlib (auto-removable before this run, not the harness's)",
        "kept: npm \
                9.9.9-elsewhere",
        "kept: libssl-dev (removing it would also remove libpq-dev, which the harness does \
                    not install)",
        "Rust target: armv7a-none-eabi for stub-toolchain",
        "dpkg architecture: armhf",
    ] {
        assert!(t.contains(said), "{said:?} not said:\n{t}");
    }
    for gone in ["sources", "busybox-static-armhf-0123", "cargo", "modules"] {
        assert!(!m.cache().join(gone).exists(), "{gone} was kept:\n{t}");
        assert!(t.contains(&format!("cache: {cache}/{gone}")), "{gone} not said:\n{t}");
    }
    assert!(m.cache().join("kernels/exynos4210-0123/zImage").is_file(), "the kernel builds are kept");
    assert!(t.contains("(1 kernel builds)"), "{t}");
}

#[test]
fn a_dry_run_only_prints_the_removals() {
    let m = Machine::new();
    let (out, calls) = m.run(&[("CI", "true"), ("HARNESS_CI_DRY_RUN", "1")]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_eq!(actions(&calls), Vec::<String>::new(), "{t}");
    assert!(t.contains("$ rustup target remove --toolchain stub-toolchain armv7a-none-eabi"), "{t}");
    assert!(t.contains("$ dpkg --remove-architecture armhf"), "{t}");
    assert!(t.contains("apt-get -o DPkg::Lock::Timeout=600 remove -y -q bc bison"), "{t}");
    for kept in
        ["sources/linux-source-6_12_xz-0123/linux", "busybox-static-armhf-0123", "cargo/0123", "modules/0123-4567"]
    {
        assert!(m.cache().join(kept).is_dir(), "{kept} removed by a dry run");
    }
}

#[test]
fn outside_ci_it_removes_nothing() {
    let m = Machine::new();
    let (out, calls) = m.run(&[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let ran: Vec<String> = actions(&calls).into_iter().filter(|c| !c.contains("HARNESS_CACHE_DIR")).collect();
    assert_eq!(
        ran,
        [
            "cargo fmt --all -- --check",
            "cargo clippy --all-targets -- -D warnings",
            "cargo run --release -- check",
            "cargo nextest run --profile ci"
        ],
        "{t}"
    );
    assert!(m.cache().join("sources").is_dir());
}
