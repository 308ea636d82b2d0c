//! Helpers shared by the integration tests.

use harness::check::{self, CheckReport};
use harness::options::CheckOptions;
use std::path::{Path, PathBuf};
use std::process::Output;

pub fn repo() -> PathBuf {
    harness::repo_root()
}

/// Runs a check in-process, as `cargo run -- check` would.
pub fn check(profile: &str, module: &Path, expect: Option<&Path>) -> CheckReport {
    let mut o = CheckOptions::new(profile, module);
    o.module.expect = expect.map(Path::to_path_buf);
    check_with(o)
}

/// Runs a check with full options, and asserts that no guest survived it.
pub fn check_with(opts: CheckOptions) -> CheckReport {
    let report = check::check(&opts).unwrap_or_else(|e| panic!("check could not run: {e:#}"));
    assert_no_qemu_children();
    report
}

/// Pids of this process's QEMU children.
pub fn qemu_children_of(pid: u32) -> Vec<u32> {
    let me = pid.to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
        let ppid = rest.split_whitespace().nth(1).unwrap_or("");
        if ppid == me && head.contains("(qemu-system") {
            if let Ok(p) = entry.file_name().to_string_lossy().parse() {
                found.push(p);
            }
        }
    }
    found
}

/// Runs the harness binary; the tests of exit codes and messages go through it.
pub fn harness(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running the harness binary")
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// No QEMU started by this test process outlives its check: every guest was
/// killed and reaped (a zombie would still have a /proc entry).
pub fn assert_no_qemu_children() {
    let left = qemu_children_of(std::process::id());
    assert!(left.is_empty(), "QEMU processes left behind: {left:?}");
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("fixtures").join(name)
}

/// A module build as `check` does it by default: sandboxed (ready, or the
/// test fails with the reason), two jobs.
pub fn build_options(api: harness::api::Api) -> harness::module::Options {
    let sandbox = harness::sandbox::Sandbox::On;
    sandbox.ready().unwrap_or_else(|e| panic!("{e:#}"));
    harness::module::Options { jobs: 2, api, sandbox, coverage: false }
}
