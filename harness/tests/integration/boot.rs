//! Full checks: the Rust module and its C twin on both profiles (on
//! exynos4210 the twin is in the several-directories boot), a check
//! whose expectations cannot hold, and a warm run that must not touch the
//! kernel build.

use crate::common::{self, check, harness, repo, text};
use harness::judge::verdict::Outcome;
use std::time::SystemTime;

fn passes(profile: &str, module: &str) {
    let report = check(profile, &repo().join(module), None);
    passed_and_said_so(&format!("{profile}/{module}"), &report.verdict);
}

/// mmc_byte's verdict: passed, by its lines and not only by exit codes.
fn passed_and_said_so(what: &str, v: &harness::judge::verdict::Verdict) {
    assert_eq!(v.outcome, Outcome::Passed, "{what}:\n{v}");
    // The verdict really looked at the lines, not only at exit codes.
    for want in [
        "insmod prints line \"process:insmod\"",
        "rmmod prints line \"mmc exit!\"",
        "gone exits 0",
        // Loaded twice, each load checked, and nothing left behind.
        "insmod#2 prints line \"process:insmod\"",
        "gone#2 exits 0",
        "nothing left behind after rmmod",
    ] {
        let c = v.checks.iter().find(|c| c.description == want).unwrap_or_else(|| panic!("no check {want}: {v}"));
        assert!(c.held, "{want}: {v}");
    }
    assert!(v.events.is_empty(), "{:?}", v.events);
    let steps: Vec<&str> = v.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(steps, ["census", "insmod", "rmmod", "gone", "insmod#2", "rmmod#2", "gone#2", "census#2"]);
}

#[test]
fn exynos4210_rust_module_passes() {
    passes("exynos4210", "kmod");
}

/// The Rust module and its C twin, both named mmc_byte, in one boot: each
/// unit is loaded from its own file and judged on its own steps. On the
/// small vexpress-a9 kernel, the one the replay tests boot: the suite builds
/// one vexpress kernel, and the smallest (see `configs/fragments/small.config`).
#[test]
fn vexpress_a9_rust_module_and_c_twin_pass_in_one_boot() {
    let mut o = harness::options::CheckOptions::new("vexpress-a9-small", repo().join("kmod"));
    o.module.module_dirs.push(repo().join("kmod/c-twin"));
    let report = common::check_with(o);
    let labels: Vec<&str> = report.units.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["kmod", "c-twin"]);
    for (label, v) in &report.units {
        passed_and_said_so(&format!("vexpress-a9-small/{label}"), v);
    }
}

/// Expectations that cannot hold make the binary exit 1, naming the
/// expectation, showing what the step printed and where the log is.
#[test]
fn impossible_expectation_fails_with_the_right_message() {
    let dir = tempfile::tempdir().unwrap();
    let expect = dir.path().join("expect.toml");
    std::fs::write(&expect, "[[step]]\nname = \"insmod\"\nexit = 0\nexpect = [{ line = \"process:rmmod\" }]\n")
        .unwrap();
    let out = harness(&["check", "--profile", "exynos4210", "--expect", expect.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("FAIL  insmod prints line \"process:rmmod\": not among the"), "{t}");
    let excerpt = &t[t.find("what step insmod printed:").expect("excerpt shown")..];
    assert!(excerpt.contains("\n    | process:insmod\n"), "{t}");
    assert!(t.contains("verdict: FAILED: expectation not met: insmod prints line \"process:rmmod\""), "{t}");
    let log = t.lines().find_map(|l| l.strip_prefix("console log: ")).expect("log path printed");
    // The log holds the step's real end marker, with the run's nonce.
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.lines().any(|l| l.contains("@@harness ") && l.trim_end().ends_with(" end insmod rc=0")), "{log}");
    common::assert_no_qemu_children();
}

/// A second check finds the kernel in the cache and runs no make on it
/// (make's own record: every make the harness starts goes through a wrapper
/// that logs its arguments), and writes nothing into the cache; a module
/// directory it has built before is not built again (no make at all), and
/// one it has not is (the wrapper sees the module's make: it works).
#[test]
fn warm_check_does_no_kernel_make_work() {
    let kmod = repo().join("kmod");
    let first = check("exynos4210", &kmod, None);
    assert!(first.verdict.passed(), "{}", first.verdict);
    let before = SystemTime::now();
    std::thread::sleep(std::time::Duration::from_millis(20));

    // This test's process is its own under nextest: PATH is its alone. The
    // sandbox would hide the wrapper's directory from the module's make, so
    // the module builds without it here.
    let wrap = tempfile::tempdir().unwrap();
    let calls = wrap.path().join("calls");
    let real = harness::packages::find_program("make").expect("make is installed");
    let script = wrap.path().join("make");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n", calls.display(), real.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A module directory no run has built: a copy of the C twin, in a
    // directory of this test's own.
    let copy = tempfile::tempdir().unwrap();
    let module = copy.path().join("c-twin");
    std::fs::create_dir(&module).unwrap();
    for f in ["Makefile", "expect.toml", "mmc_byte.c"] {
        std::fs::copy(kmod.join("c-twin").join(f), module.join(f)).unwrap();
    }
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::set_var("PATH", format!("{}:{path}", wrap.path().display()));
    let run = |dir: &std::path::Path| {
        let mut o = harness::options::CheckOptions::new("exynos4210", dir);
        o.module.no_sandbox = true;
        let r = common::check_with(o);
        assert!(r.verdict.passed(), "{}", r.verdict);
        assert!(!r.kernel_built_now, "the warm run rebuilt the kernel");
        std::fs::read_to_string(&calls).unwrap_or_default()
    };
    let built = run(&module);
    std::fs::remove_file(&calls).unwrap();
    let kept = run(&module);
    std::env::set_var("PATH", path);
    assert!(
        built.lines().any(|c| c.contains(" M=")),
        "the wrapper saw no make at all (not even the new module's): {built:?}"
    );
    let kernel_makes: Vec<&str> = built.lines().filter(|c| !c.contains(" M=")).collect();
    assert!(kernel_makes.is_empty(), "the warm run ran make on the kernel: {kernel_makes:?}");
    assert_eq!(kept, "", "the second check of the same sources ran make");
    let kernels = harness::cache::root().join("kernels");
    let mut touched = Vec::new();
    let mut stack = vec![kernels.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else if m.modified().unwrap() > before && e.path().extension().is_none_or(|x| x != "lock") {
                touched.push(e.path());
            }
        }
    }
    // Parallel tests may build other profiles meanwhile (in a cold run,
    // exynos4210-debug, whose name starts the same): only the entries of
    // this profile, `exynos4210-<key>`, count.
    let this_profile =
        |entry: &str| entry.strip_prefix("exynos4210-").is_some_and(|k| k.chars().all(|c| c.is_ascii_hexdigit()));
    touched.retain(|p| {
        let entry = p.strip_prefix(&kernels).ok().and_then(|r| r.components().next());
        entry.is_some_and(|e| this_profile(&e.as_os_str().to_string_lossy()))
    });
    assert!(touched.is_empty(), "warm run modified the kernel build: {:?}", &touched[..touched.len().min(10)]);
}

/// Several module directories in one boot: each gets its own verdict, made
/// from its own steps and its own stretch of the console, so one module's
/// WARNING is not another's; the binary exits 1 when any fails and lists
/// them all.
#[test]
fn several_module_directories_share_one_boot_with_a_verdict_each() {
    // kmod and c-twin both build a module named mmc_byte.
    let dirs = [
        "kmod",
        "kmod/c-twin",
        "fixtures/faults/warn-on",
        "fixtures/faults/enomem",
        "fixtures/faults/ktap-short-plan",
        "fixtures/faults/sched-atomic",
    ];
    let mut args = vec!["check".to_string()];
    for d in dirs {
        args.extend(["--module".to_string(), repo().join(d).display().to_string()]);
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("v.json");
    args.extend(["--json".to_string(), json.display().to_string()]);
    let out = harness(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("2 of 6 passed, in one boot"), "{t}");
    assert_eq!(t.matches("qemu-system-arm -M").count(), 1, "one boot: {t}");
    let reports: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let by_label = |label: &str| {
        reports
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["module"] == label)
            .unwrap_or_else(|| panic!("no {label} in {reports}"))["verdict"]
            .clone()
    };
    for label in ["kmod", "c-twin"] {
        let twin = by_label(label);
        assert_eq!(twin["outcome"], "PASSED", "{twin}");
        assert_eq!(twin["events"].as_array().unwrap().len(), 0, "the WARNING is warn-on's: {twin}");
        let rmmod =
            twin["checks"].as_array().unwrap().iter().find(|c| c["description"] == "rmmod prints line \"mmc exit!\"");
        assert_eq!(rmmod.map(|c| c["held"].clone()), Some(serde_json::Value::Bool(true)), "{twin}");
    }
    let warn = by_label("warn-on");
    assert_eq!(warn["outcome"], "FAILED", "{warn}");
    assert_eq!(warn["events"][0]["kind"]["class"], "warning", "{warn}");
    assert_eq!(warn["events"][0]["step"], "insmod", "the unit's own step name: {warn}");
    let short = by_label("ktap-short-plan");
    assert_eq!(short["reason"], "KUnit: (top level) planned 1..3 but reported 2 result(s)", "{short}");
    // Scheduling while atomic: a report the kernel survives, FAILED with its
    // own class, not CRASHED.
    let atomic = by_label("sched-atomic");
    assert_eq!(atomic["outcome"], "FAILED", "{atomic}");
    let sched = atomic["events"].as_array().unwrap().iter().find(|e| {
        e["kind"]["class"] == "bug-report"
            && e["block"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l.as_str().unwrap().starts_with("BUG: scheduling while atomic"))
    });
    assert!(sched.is_some(), "{atomic}");
    let enomem = by_label("enomem");
    assert_eq!(enomem["reason"], "expectation not met: insmod exits 0", "{enomem}");
    common::assert_no_qemu_children();
}
