//! The Tiny4412-style lessons (fixtures/lessons/), the memory tutorial's own
//! module (fixtures/tutorial/mmc_byte, no expectations file) and a module
//! whose Makefile must never be run: all in one boot of the default profile,
//! a verdict each, through the binary as a user runs it.

use crate::common::{self, harness, repo, text};
use std::path::PathBuf;

const LESSONS: &[&str] =
    &["chardev", "export", "kthread", "misc", "mutex", "param", "platform", "poll", "proc", "timer", "workqueue"];

/// Under the profile's default API (3.5, the layer): the lessons' own
/// `#if LINUX_VERSION_CODE` forms use nothing the layer gives back, so their
/// port lists are empty.
#[test]
fn every_lesson_the_tutorial_module_and_a_hostile_makefile_pass_in_one_boot() {
    let reports = lessons_in_one_boot(None);
    for r in reports.as_array().unwrap() {
        assert_eq!(r["verdict"]["api"], "3.5", "{}", r["module"]);
        assert_eq!(r["verdict"]["ports"], serde_json::json!([]), "{}: {}", r["module"], r["verdict"]["ports"]);
    }
}

/// The same lessons without the layer: they are written to build on both.
#[test]
fn every_lesson_passes_without_the_layer_too() {
    let reports = lessons_in_one_boot(Some("native"));
    for r in reports.as_array().unwrap() {
        assert_eq!(r["verdict"]["api"], "native", "{}", r["module"]);
    }
}

/// Every lesson, the tutorial module and the hostile Makefile in one boot,
/// checked; the JSON reports, for more.
fn lessons_in_one_boot(api: Option<&str>) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("the-makefile-ran");
    let json = dir.path().join("verdicts.json");
    let mut dirs: Vec<PathBuf> = LESSONS.iter().map(|l| repo().join("fixtures/lessons").join(l)).collect();
    dirs.push(repo().join("fixtures/tutorial/mmc_byte"));
    dirs.push(repo().join("fixtures/hostile-makefile"));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"));
    cmd.arg("check").arg("--json").arg(&json).env("HARNESS_TEST_MARKER", &marker).stdin(std::process::Stdio::null());
    if let Some(a) = api {
        cmd.args(["--api", a]);
    }
    for d in &dirs {
        cmd.arg("--module").arg(d);
    }
    let out = cmd.output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains(&format!("{0} of {0} passed, in one boot", dirs.len())), "{t}");
    assert!(!marker.exists(), "the module's own Makefile target ran on the host");

    let reports: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let verdict = |label: &str| {
        reports.as_array().unwrap().iter().find(|r| r["module"] == label).unwrap_or_else(|| panic!("no {label}"))
            ["verdict"]
            .clone()
    };
    // Two modules from one directory, named in the verdict, loaded in
    // dependency order although obj-m lists the consumer first.
    let export = verdict("export");
    let steps: Vec<&str> = export["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        &steps[..6],
        ["census", "insmod:hello_export", "insmod:hello_use", "in-use", "rmmod:hello_use", "rmmod:hello_export"],
        "{export}"
    );
    // Every unit loaded twice, and nothing left behind: the census was
    // taken and compared for each.
    for r in reports.as_array().unwrap() {
        let v = &r["verdict"];
        let step =
            |name: &str| v["steps"].as_array().unwrap().iter().any(|s| s["name"].as_str().unwrap().starts_with(name));
        assert!(step("insmod#2") && step("rmmod#2") && step("gone#2"), "{}: not loaded twice: {v}", r["module"]);
        let census =
            v["checks"].as_array().unwrap().iter().find(|c| c["description"] == "nothing left behind after rmmod");
        assert_eq!(census.map(|c| c["held"].clone()), Some(serde_json::Value::Bool(true)), "{}: {v}", r["module"]);
    }
    // Each app's own output was matched, not only the kernel's lines.
    for lesson in ["misc", "poll", "chardev"] {
        let v = verdict(lesson);
        let outputs = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["description"].as_str().unwrap().contains(" outputs "))
            .count();
        assert!(outputs >= 1, "{lesson}: no stdout expectation checked: {v}");
    }
    // The tutorial's module with its own Makefile and no expectations file:
    // the defaults, and what its steps printed is shown.
    let section = &t[t.find("== mmc_byte").expect("the tutorial module's verdict")..];
    let section = &section[..section.find("\n== ").unwrap_or(section.len())];
    assert!(section.contains("no expectations file: the defaults were checked"), "{section}");
    assert!(section.contains("| process:insmod"), "{section}");
    assert!(section.contains("| mmc exit!"), "{section}");
    common::assert_no_qemu_children();
    reports
}

/// The tutorial's module alone, exactly as a student runs it the first time:
/// `check --module DIR`, nothing else.
#[test]
fn the_tutorial_module_passes_unchanged_with_nothing_but_its_directory() {
    let out = harness(&["check", "--module", repo().join("fixtures/tutorial/mmc_byte").to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("| process:insmod") && t.contains("| mmc exit!"), "{t}");
    assert!(t.contains("verdict: PASSED"), "{t}");
}

/// A command step in the background: the poll lesson's reader blocks in
/// the driver while the next step writes; the step that waits for it has
/// the reader's output (what the write woke it with) and exit status, in
/// the verdict and in order with the other steps.
#[test]
fn a_background_reader_is_woken_by_a_later_step_and_its_wait_step_judges_it() {
    let poll = common::fixture("lessons/poll");
    let r = common::check("exynos4210", &poll, Some(&poll.join("background.toml")));
    let v = &r.verdict;
    assert!(v.passed(), "{v}");
    let names: Vec<&str> = v.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "census", "insmod", "reader", "writer", "collect", "rmmod", "gone", "insmod#2", "rmmod#2", "gone#2",
            "census#2"
        ],
        "{v}"
    );
    let held = |d: &str| v.checks.iter().any(|c| c.description == d && c.held);
    assert!(held("collect outputs line \"ping\""), "{v}");
    assert!(held("writer prints line \"hello_poll: 5 bytes in, waking readers\""), "{v}");
}

/// A `reload` step mid-scenario (fixtures/lessons/param/reload.toml): the
/// lesson unloaded and loaded again with new parameters, which the next
/// step reads back; the module stays loaded for the scenario's own rmmod,
/// and nothing is left behind.
#[test]
fn a_reload_step_loads_the_lesson_again_with_new_parameters() {
    let param = common::fixture("lessons/param");
    let r = common::check("exynos4210", &param, Some(&param.join("reload.toml")));
    let v = &r.verdict;
    assert!(v.passed(), "{v}");
    let names: Vec<&str> = v.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "census",
            "insmod",
            "sysfs",
            "again",
            "sysfs-again",
            "rmmod",
            "gone",
            "insmod#2",
            "rmmod#2",
            "gone#2",
            "census#2"
        ],
        "{v}"
    );
    let held = |d: &str| v.checks.iter().any(|c| c.description == d && c.held);
    assert!(held("again exits 0"), "{v}");
    assert!(held("again prints line \"hello_param: hello board #2\""), "{v}");
    assert!(held("sysfs-again outputs line \"board\""), "{v}");
    assert!(held("rmmod prints line \"hello_param: goodbye board\""), "{v}");
    assert!(held("nothing left behind after rmmod"), "{v}");

    // As one of several units in a boot (each unit's files in a folder of
    // its own in the guest): the lesson with reload.toml as its own
    // expect.toml, after another lesson that loads a module of the same name.
    let dir = tempfile::tempdir().unwrap();
    for f in ["Makefile", "hello_param.c"] {
        std::fs::copy(param.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::copy(param.join("reload.toml"), dir.path().join("expect.toml")).unwrap();
    let mut o = harness::options::CheckOptions::new("exynos4210", common::fixture("lessons/param"));
    o.module.module_dirs.push(dir.path().to_path_buf());
    let r = common::check_with(o);
    assert_eq!(r.units.len(), 2);
    assert!(r.passed(), "{:?}", r.units);
    let (_, v) = &r.units[1];
    assert!(v.checks.iter().any(|c| c.description == "sysfs-again outputs line \"board\"" && c.held), "{v}");
}

/// A background program that never ends, waited for: the step timeout
/// stops the guest mid-wait. The verdict is TIMED-OUT (not FAILED), and
/// says that the program was still running, with the lines it printed by
/// then (the wait step reports them as they come), which its `stdout`
/// matchers are judged against.
#[test]
fn a_background_program_the_step_timeout_kills_shows_its_last_lines() {
    let dir = tempfile::tempdir().unwrap();
    let expect = dir.path().join("endless.toml");
    std::fs::write(
        &expect,
        "[[step]]\nname = \"app\"\nrun = \"i=0; while :; do i=$((i+1)); echo tick $i; sleep 1; done\"\n\
         background = true\n\n[[step]]\nname = \"collect\"\nwait = \"app\"\nstdout = [{ line = \"tick 2\" }]\n",
    )
    .unwrap();
    let mut o = harness::options::CheckOptions::new("exynos4210", common::fixture("lessons/poll"));
    o.module.expect = Some(expect);
    o.limits.step = Some(8);
    let v = common::check_with(o).verdict;
    assert_eq!(v.outcome, harness::judge::verdict::Outcome::TimedOut, "{v}");
    let reason = v.reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with(
            "step collect did not finish within 8 s: app was still running when the run ended, and was \
             killed with the guest; its last lines: tick "
        ),
        "{v}"
    );
    assert!(v.checks.iter().any(|c| c.description == "collect outputs line \"tick 2\"" && c.held), "{v}");
}
