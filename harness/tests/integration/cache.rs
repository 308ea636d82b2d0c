//! The kernel cache under stress, with real builds of the small profile in
//! a cache of the test's own: eight concurrent cold runs build once, and a
//! build killed with SIGKILL halfway is never mistaken for a finished one.

use crate::common::text;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PROFILE: &str = "vexpress-a9-small";

fn spawn_check(cache: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["check", "--profile", PROFILE, "--timeout", "900", "--step-timeout", "300", "--silence-timeout", "300"])
        .env("HARNESS_CACHE_DIR", cache)
        .env("HARNESS_RUN_DIR", cache.join("runs"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the harness")
}

fn kernel_entries(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache.join("kernels"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn eight_concurrent_cold_checks_build_the_kernel_once_and_all_pass() {
    let cache = tempfile::tempdir().unwrap();
    let children: Vec<Child> = (0..8).map(|_| spawn_check(cache.path())).collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let mut built = 0;
    for out in &outputs {
        let t = text(out);
        assert_eq!(out.status.code(), Some(0), "a concurrent check failed:\n{t}");
        assert!(t.contains("verdict: PASSED"), "{t}");
        if t.contains("kernel  6.") && t.lines().any(|l| l.contains(" kernel ") && l.contains(" built (")) {
            built += 1;
        } else {
            assert!(t.lines().any(|l| l.contains(" kernel ") && l.contains(" cached (")), "{t}");
        }
    }
    assert_eq!(built, 1, "the kernel was built {built} times");
    // One published build, nothing half-made.
    let entries = kernel_entries(cache.path());
    let dirs: Vec<_> = entries.iter().filter(|e| !e.ends_with(".lock")).collect();
    assert_eq!(dirs.len(), 1, "{entries:?}");
    assert!(!dirs[0].contains(".tmp-"), "{entries:?}");
}

#[test]
fn a_build_killed_halfway_is_rebuilt_not_reused() {
    let cache = tempfile::tempdir().unwrap();
    let mut child = spawn_check(cache.path());
    // Wait until the kernel build is well under way.
    let deadline = Instant::now() + Duration::from_secs(1200);
    loop {
        let compiled = kernel_entries(cache.path())
            .iter()
            .filter(|e| e.contains(".tmp-"))
            .filter_map(|e| std::fs::read_to_string(cache.path().join("kernels").join(e).join("harness-logs/build.log")).ok())
            .map(|log| log.lines().filter(|l| l.trim_start().starts_with("CC ")).count())
            .max()
            .unwrap_or(0);
        if compiled >= 100 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the check ended before the build got going");
        assert!(Instant::now() < deadline, "the build did not start");
        std::thread::sleep(Duration::from_millis(500));
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no handler runs.
    child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let entries = kernel_entries(cache.path());
    assert!(
        entries.iter().all(|e| e.ends_with(".lock") || e.contains(".tmp-")),
        "something looks like a finished kernel after SIGKILL: {entries:?}"
    );
    assert!(entries.iter().any(|e| e.contains(".tmp-")), "{entries:?}");

    let out = spawn_check(cache.path()).wait_with_output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("left by an interrupted build"), "{t}");
    assert!(t.lines().any(|l| l.contains(" kernel ") && l.contains(" built (")), "rebuilt: {t}");
    let entries = kernel_entries(cache.path());
    assert!(entries.iter().all(|e| !e.contains(".tmp-")), "{entries:?}");
}
