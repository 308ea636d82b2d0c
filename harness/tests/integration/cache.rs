//! The kernel cache under stress, on a stand-in kernel tree
//! (fixtures/standin-kernel) whose build is slow and observable but takes
//! seconds, through the same `kernel::get`, cache lock, publish and kill
//! code a real kernel goes through: eight concurrent cold runs build once;
//! a build whose harness is SIGKILLed halfway leaves no process behind, is
//! never mistaken for a finished one, and is rebuilt by the next run.

use crate::common::{repo, text};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private copy of the stand-in tree (its path is unique, so the
/// processes of its build can be told from any other's).
fn standin(dir: &Path) -> PathBuf {
    let src = dir.join("standin");
    let st = Command::new("cp").arg("-a").arg(repo().join("fixtures/standin-kernel")).arg(&src).status().unwrap();
    assert!(st.success(), "copying the stand-in tree");
    src
}

fn spawn_kernel(cache: &Path, src: &Path, objects: u32) -> Child {
    spawn_kernel_with(cache, src, objects, 0.5)
}

/// `seconds`: how long each stand-in "compiler" runs.
fn spawn_kernel_with(cache: &Path, src: &Path, objects: u32, seconds: f64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
        .arg("kernel")
        .arg("--profile")
        .arg(src.join("standin.toml"))
        .arg("--kernel-src")
        .arg(src)
        .arg("--cross-compile")
        .arg(src.join("bin/arm-standin-"))
        .args(["-j", "2"])
        .env("HARNESS_CACHE_DIR", cache)
        .env("STANDIN_OBJECTS", objects.to_string())
        .env("STANDIN_SECONDS", seconds.to_string())
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

/// Pids of the processes whose command line names `tree`: the stand-in
/// build's sub-makes and `standin-cc1` "compilers".
fn processes_of(tree: &Path) -> Vec<(u32, String)> {
    let needle = tree.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let zombie = std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|s| s.contains(") Z "));
        if cmdline.contains(&needle) && !zombie {
            found.push((pid, cmdline));
        }
    }
    found
}

#[test]
fn eight_concurrent_cold_runs_build_the_kernel_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = standin(dir.path());
    let cache = dir.path().join("cache");
    let children: Vec<Child> = (0..8).map(|_| spawn_kernel(&cache, &src, 20)).collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let mut built = 0;
    let mut dirs = Vec::new();
    for out in &outputs {
        let t = text(out);
        assert_eq!(out.status.code(), Some(0), "a concurrent run failed:\n{t}");
        if t.lines().any(|l| l.contains(" kernel ") && l.contains(" built (")) {
            built += 1;
        } else {
            assert!(t.lines().any(|l| l.contains(" kernel ") && l.contains(" cached (")), "{t}");
        }
        dirs.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    assert_eq!(built, 1, "the kernel was built {built} times");
    dirs.dedup();
    assert_eq!(dirs.len(), 1, "every run got the same build: {dirs:?}");
    assert!(Path::new(&dirs[0]).join("arch/arm/boot/zImage").is_file());
    // One published build, nothing half-made.
    let entries = kernel_entries(&cache);
    let published: Vec<_> = entries.iter().filter(|e| !e.ends_with(".lock")).collect();
    assert_eq!(published.len(), 1, "{entries:?}");
    assert!(!published[0].contains(".tmp-"), "{entries:?}");
}

#[test]
fn a_build_killed_halfway_leaves_no_process_and_is_rebuilt_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let src = standin(dir.path());
    let cache = dir.path().join("cache");
    // Each "compile" lasts 30 s and prints nothing while it runs, as cc1
    // does: nothing but a stop of the whole group ends it sooner.
    let mut child = spawn_kernel_with(&cache, &src, 200, 30.0);
    // Wait until the build is under way: two compilers run (-j2).
    let logs = cache.join("logs");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let compiled = std::fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("build.log")).ok())
            .map(|log| log.lines().filter(|l| l.trim_start().starts_with("CC ")).count())
            .max()
            .unwrap_or(0);
        if compiled >= 2 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended before the build got going");
        assert!(Instant::now() < deadline, "the build did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!processes_of(&src).is_empty(), "the build's processes are visible while it runs");
    child.kill().unwrap(); // SIGKILL: no destructor, no handler runs.
    child.wait().unwrap();
    // Within a few seconds, nothing of that build is left: not make, not
    // its sub-makes, not the "compilers" (the watchdog stopped the group).
    let deadline = Instant::now() + Duration::from_secs(5);
    let left = loop {
        let left = processes_of(&src);
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(left.is_empty(), "processes of the killed build survived it: {left:?}");
    let entries = kernel_entries(&cache);
    assert!(
        entries.iter().all(|e| e.ends_with(".lock") || e.contains(".tmp-")),
        "something looks like a finished kernel after SIGKILL: {entries:?}"
    );
    assert!(entries.iter().any(|e| e.contains(".tmp-")), "{entries:?}");

    let out = spawn_kernel(&cache, &src, 20).wait_with_output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("left by an interrupted build"), "{t}");
    assert!(t.lines().any(|l| l.contains(" kernel ") && l.contains(" built (")), "rebuilt: {t}");
    let entries = kernel_entries(&cache);
    assert!(entries.iter().all(|e| !e.contains(".tmp-")), "{entries:?}");
}

/// A build whose harness died together with its watchdog (a machine
/// rebooted, a container killed whole) leaves processes only the recorded
/// process groups can name: the next run stops them before it removes the
/// temporary directory they are writing into.
#[test]
fn a_new_run_stops_the_processes_of_a_stale_build_before_removing_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = standin(dir.path());
    let cache = dir.path().join("cache");
    let kernels = cache.join("kernels");
    std::fs::create_dir_all(&kernels).unwrap();
    // First learn the entry's name from a finished build, then fake a
    // stale temporary of it whose builder left a "compiler" running.
    let out = spawn_kernel(&cache, &src, 2).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let entry = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    std::fs::remove_dir_all(&entry).unwrap();
    let stale = PathBuf::from(format!("{}.tmp-999999", entry.display()));
    std::fs::create_dir_all(&stale).unwrap();
    let mut sleeper = Command::new(src.join("standin-cc1"));
    sleeper.arg("300");
    use std::os::unix::process::CommandExt;
    sleeper.process_group(0);
    let mut sleeper = sleeper.spawn().unwrap();
    let pid = sleeper.id() as i32;
    let start = harness::process::start_time(pid).unwrap();
    std::fs::write(stale.join(harness::process::PGIDS_FILE), format!("{pid} {start}\n")).unwrap();
    // Reaped as soon as it dies (a zombie would still count as alive).
    let waiter = std::thread::spawn(move || sleeper.wait().unwrap());

    let out = spawn_kernel(&cache, &src, 2).wait_with_output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(&format!("stopping process group {pid}")), "{t}");
    let status = waiter.join().unwrap();
    assert!(!status.success(), "the stale build's process was stopped: {status:?}");
    assert!(!stale.exists());
}

/// `cache gc` keeps the most recently used build of a profile and removes
/// the older one (a source that changed gives a new key, and the old build
/// would otherwise stay forever); `cache list` shows what is there.
#[test]
fn gc_removes_all_but_the_newest_build_of_a_profile() {
    let dir = tempfile::tempdir().unwrap();
    let src = standin(dir.path());
    let cache = dir.path().join("cache");
    let first = spawn_kernel(&cache, &src, 2).wait_with_output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    // An edited source tree is another kernel.
    std::fs::write(src.join("Kconfig"), "# edited\n").unwrap();
    let second = spawn_kernel(&cache, &src, 2).wait_with_output().unwrap();
    assert!(second.status.success(), "{}", text(&second));
    let (old, new) = (
        String::from_utf8_lossy(&first.stdout).trim().to_string(),
        String::from_utf8_lossy(&second.stdout).trim().to_string(),
    );
    assert_ne!(old, new);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
            .args(args)
            .env("HARNESS_CACHE_DIR", &cache)
            .output()
            .unwrap()
    };
    let list = text(&run(&["cache", "list"]));
    assert!(list.contains("2 build(s)") && list.contains(&old) && list.contains(&new), "{list}");
    let gc = run(&["cache", "gc", "--keep", "1"]);
    assert!(gc.status.success(), "{}", text(&gc));
    assert!(text(&gc).contains(&format!("removed {old}")), "{}", text(&gc));
    assert!(!Path::new(&old).exists() && Path::new(&new).join("arch/arm/boot/zImage").is_file());
}

/// A CI log (no terminal) shows the build's progress: with no build of the
/// profile before, a count and no total; the next build of the same
/// configuration (another source, another key) takes its total from the
/// last one and says, each tenth of the way, how many of how many and the
/// time left; a build of another configuration says its total is the last
/// one of the profile, with another configuration.
#[test]
fn the_build_progress_has_a_total_and_an_estimate_after_the_first_build() {
    let dir = tempfile::tempdir().unwrap();
    let src = standin(dir.path());
    let cache = dir.path().join("cache");
    let first = spawn_kernel_with(&cache, &src, 20, 0.05).wait_with_output().unwrap();
    let log = text(&first);
    assert!(first.status.success(), "{log}");
    assert!(log.contains("kernel standin: first build of this profile here: no total known yet"), "{log}");
    assert!(log.contains("kernel standin: 20 objects built in"), "{log}");
    std::fs::write(src.join("Kconfig"), "# edited\n").unwrap();
    let second = spawn_kernel_with(&cache, &src, 20, 0.05).wait_with_output().unwrap();
    let log = text(&second);
    assert!(second.status.success(), "{log}");
    assert!(
        log.contains("kernel standin: about 20 objects to build (from the last build of this configuration here)"),
        "{log}"
    );
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(" of 20 objects (")).collect();
    assert_eq!(lines.len(), 10, "one line a tenth: {log}");
    assert!(
        lines[0].starts_with("harness: kernel standin: 2 of 20 objects (10%), ") && lines[0].contains(" s left"),
        "{log}"
    );
    assert!(lines[9].contains("20 of 20 objects (100%)"), "{log}");
    let defconfig = src.join("arch/arm/configs/standin_defconfig");
    let mut config = std::fs::read_to_string(&defconfig).unwrap();
    config.push_str("CONFIG_STANDIN_EDITED=y\n");
    std::fs::write(&defconfig, config).unwrap();
    let third = spawn_kernel_with(&cache, &src, 20, 0.05).wait_with_output().unwrap();
    let log = text(&third);
    assert!(third.status.success(), "{log}");
    assert!(
        log.contains(
            "kernel standin: about 20 objects to build (from the last build of this profile here, with \
        another configuration)"
        ),
        "{log}"
    );
}
