//! Each fault fixture is classified as exactly the mistake it makes, on the
//! debug profile (KASAN, leaks at unload, DEBUG_ATOMIC_SLEEP, KUnit) and on
//! the full one (lockdep, kmemleak), and the mmc_byte modules pass clean
//! there. (An oops and a hang need no debug kernel: they are in
//! `supervision`, on the plain one.)
//!
//! A debug boot costs half a minute or more (the full one, minutes), so the
//! fixtures the kernel survives share one boot per profile (`check --module
//! A --module B … --kernel-module K`), each judged on its own steps and its
//! own stretch of the console: the verdicts stay per fixture, and each is
//! checked below by its own function.

use crate::common::{check_with, repo};
use harness::judge::event::EventKind;
use harness::judge::verdict::{Outcome, Verdict};
use harness::options::CheckOptions;
use std::path::PathBuf;

const DEBUG: &str = "exynos4210-debug";
const DEBUG_FULL: &str = "exynos4210-debug-full";

/// A fixture directory (or a .ko of the kernel build) and the check of its
/// verdict.
type Fixture<'a> = (&'a str, fn(&Verdict));

/// One boot of `profile` with several fixtures; each fixture's verdict is
/// handed to its check, and every check runs even when one fails. Kernel
/// modules come after the directories, as the harness runs them.
fn run_together(profile: &str, fixtures: &[Fixture]) {
    let mut o = CheckOptions::new(profile, PathBuf::new());
    let is_ko = |p: &&Fixture| p.0.ends_with(".ko");
    o.module.module_dirs = fixtures.iter().filter(|f| !is_ko(f)).map(|(dir, _)| repo().join(dir)).collect();
    o.module.kernel_modules = fixtures.iter().filter(is_ko).map(|(ko, _)| PathBuf::from(ko)).collect();
    assert!(
        fixtures.iter().skip_while(|f| !is_ko(f)).all(|f| is_ko(&f)),
        "list the .ko fixtures last, in the order they run"
    );
    let r = check_with(o);
    assert_eq!(r.units.len(), fixtures.len());
    let mut failed = Vec::new();
    for ((dir, check), (label, v)) in fixtures.iter().zip(&r.units) {
        assert!(dir.trim_end_matches(".ko").ends_with(label.as_str()), "{dir} judged as {label}");
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(v))).is_err() {
            failed.push(*dir);
        }
    }
    assert!(
        failed.is_empty(),
        "misjudged in the shared boot on {profile}: {failed:?} (their verdicts are printed above)"
    );
}

/// Everything the debug kernel survives, in one boot: each fault classified
/// as its own mistake, the mmc_byte modules (Rust and its C twin, both named
/// mmc_byte) clean, every lesson and the tutorial's module passing as on the
/// plain kernel (no leak at unload, no report), and the kernel's own KUnit
/// suite counted.
#[test]
fn every_fixture_the_debug_kernel_survives_is_judged_in_one_boot() {
    let faults: [Fixture; 10] = [
        ("fixtures/faults/oob-write", oob_write_is_kasan_slab_out_of_bounds),
        ("fixtures/faults/use-after-free", use_after_free_is_kasan_slab_use_after_free),
        ("fixtures/faults/double-free", double_free_is_kasan_double_free),
        ("fixtures/faults/vzalloc-atomic", vzalloc_under_a_spinlock_is_sleep_in_atomic),
        ("fixtures/faults/leak", leak_is_found_at_unload_with_its_site_bytes_and_function),
        ("fixtures/faults/enomem", init_returning_enomem_fails_the_insmod_expectation),
        ("fixtures/faults/warn-on", warn_on_is_a_warning),
        ("fixtures/kunit-demo", a_failing_kunit_case_fails_the_check),
        ("kmod", mmc_byte_passes_clean_on_the_debug_kernel),
        // The same module name as kmod's: each unit is judged on what its
        // own steps reported.
        ("kmod/c-twin", mmc_byte_passes_clean_on_the_debug_kernel),
    ];
    let lessons = lessons_but_the_watchdogs();
    let mut fixtures: Vec<Fixture> = faults.to_vec();
    fixtures.extend(lessons.iter().map(|d| (d.as_str(), passes as fn(&Verdict))));
    fixtures.push(("lib/list-test.ko", the_kernels_own_kunit_suite_passes_and_is_counted));
    run_together(DEBUG, &fixtures);
}

/// Every lesson but the watchdog's (whose reset ends the boot for the units
/// after it) and ds18b20's (a sensor the virtual board does not have: its
/// verdict is NEEDS-THE-BOARD, virtual_board.rs), and the tutorial's module.
fn lessons_but_the_watchdogs() -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(repo().join("fixtures/lessons"))
        .unwrap()
        .map(|e| format!("fixtures/lessons/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|d| !d.ends_with("/watchdog") && !d.ends_with("/ds18b20"))
        .collect();
    dirs.sort();
    dirs.push("fixtures/tutorial/mmc_byte".into());
    assert!(dirs.len() > 15, "{dirs:?}");
    dirs
}

/// What only the full debug kernel sees, in one boot: a lock-order
/// inversion (lockdep), the kernel's own leaking sample found by kmemleak's
/// scans as well as at unload, the leak fixture, and mmc_byte clean with the
/// leaks step run.
#[test]
fn lockdep_and_kmemleak_judge_their_fixtures_on_the_full_debug_kernel() {
    run_together(
        DEBUG_FULL,
        &[
            // First: lockdep reports only the first problem of a boot.
            ("fixtures/faults/lock-order", lock_order_inversion_is_lockdep),
            ("fixtures/faults/leak", leak_is_found_at_unload_on_the_full_kernel_too),
            ("kmod", mmc_byte_passes_clean_with_the_leak_scan),
            ("samples/kmemleak/kmemleak-test.ko", the_kernels_own_leaking_sample_is_caught),
        ],
    );
}

/// A lesson passes on the debug kernel as on the plain one.
fn passes(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Passed, "{v}");
    assert!(v.events.is_empty(), "{v}");
}

/// The one report the fixture must produce: its class, its step, and the
/// module function in its stack trace.
fn assert_event(v: &Verdict, kind: EventKind, step: &str, symbol: Option<&str>) {
    let e = v.events.iter().find(|e| e.kind == kind).unwrap_or_else(|| panic!("no {kind} event in:\n{v}"));
    assert_eq!(e.step.as_deref(), Some(step), "{v}");
    if let Some(sym) = symbol {
        assert_eq!(e.module_symbol.as_deref(), Some(sym), "{e:?}");
    }
}

fn oob_write_is_kasan_slab_out_of_bounds(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    let kind = EventKind::Kasan { bug_type: "slab-out-of-bounds".into() };
    assert_event(v, kind, "insmod", Some("oob_write_do [fault_oob_write]"));
}

fn use_after_free_is_kasan_slab_use_after_free(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    let kind = EventKind::Kasan { bug_type: "slab-use-after-free".into() };
    assert_event(v, kind, "insmod", Some("use_after_free_do [fault_use_after_free]"));
}

fn double_free_is_kasan_double_free(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    assert_event(
        v,
        EventKind::Kasan { bug_type: "double-free".into() },
        "insmod",
        Some("double_free_do [fault_double_free]"),
    );
}

fn vzalloc_under_a_spinlock_is_sleep_in_atomic(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    assert_event(v, EventKind::SleepInAtomic, "insmod", Some("vzalloc_atomic_do [fault_vzalloc_atomic]"));
}

fn leak_is_found_at_unload_with_its_site_bytes_and_function(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    let leaks: Vec<_> = v.events.iter().filter(|e| e.kind == EventKind::UnfreedAtUnload).collect();
    assert_eq!(leaks.len(), 1, "{v}");
    assert_eq!(leaks[0].step.as_deref(), Some("rmmod"));
    // The allocator's count: kzalloc(100) is a 256-byte object with KASAN's
    // metadata.
    assert_eq!(leaks[0].leak_size, Some(256));
    assert_eq!(leaks[0].module_symbol.as_deref(), Some("leak_do [fault_leak]"), "{:?}", leaks[0]);
    let line = 1 + include_str!("../../../fixtures/faults/leak/fault_leak.c")
        .lines()
        .position(|l| l.contains("= kzalloc("))
        .unwrap();
    assert_eq!(
        v.reason.as_deref(),
        Some(&*format!(
            "not freed at unload: 1 allocation site(s) still hold 256 bytes (as the allocator counts them: \
            whole slab objects, red zones included), the first in leak_do [fault_leak] at fault_leak.c:{line}"
        ))
    );
}

/// On the full kernel too the leak is found at unload. kmemleak does not
/// report it again: a module whose allocation sites still hold memory is
/// kept in memory by the kernel ("cannot unload cleanly", so that its sites'
/// counters stay valid), and its global still points at the buffer.
fn leak_is_found_at_unload_on_the_full_kernel_too(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    assert_event(v, EventKind::UnfreedAtUnload, "rmmod", Some("leak_do [fault_leak]"));
    assert!(v.reason.as_deref().unwrap().starts_with("not freed at unload: 1 allocation site(s)"), "{v}");
    assert!(v.steps.iter().any(|s| s.name == "leaks" && s.exit == Some(0)), "the leak scan ran: {v}");
}

/// A leaking module the harness has never seen: the kernel's own kmemleak
/// sample (samples/kmemleak/kmemleak-test.c), built as a module of the full
/// debug kernel. It leaks several objects of different sizes from its init:
/// both detectors see them.
fn the_kernels_own_leaking_sample_is_caught(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    for kind in [EventKind::Kmemleak, EventKind::UnfreedAtUnload] {
        let leaks: Vec<_> = v.events.iter().filter(|e| e.kind == kind).collect();
        assert!(leaks.len() >= 3, "expected several {kind} reports, got {}:\n{v}", leaks.len());
        assert!(
            leaks.iter().any(|e| e.module_symbol.as_deref().is_some_and(|s| s.ends_with("[kmemleak_test]"))),
            "{v}"
        );
    }
    assert!(v.reason.as_deref().unwrap().starts_with("not freed at unload: "), "{v}");
}

fn init_returning_enomem_fails_the_insmod_expectation(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    let c = v.checks.iter().find(|c| c.description == "insmod exits 0").unwrap();
    assert!(!c.held, "{v}");
    assert!(v.events.is_empty(), "-ENOMEM is not a kernel report: {:?}", v.events);
    assert_eq!(v.reason.as_deref(), Some("expectation not met: insmod exits 0"), "{v}");
}

fn lock_order_inversion_is_lockdep(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    assert_event(v, EventKind::Lockdep, "insmod", None);
    let e = v.events.iter().find(|e| e.kind == EventKind::Lockdep).unwrap();
    assert!(e.first_line().contains("circular locking dependency"), "{e:?}");
}

fn warn_on_is_a_warning(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    assert_event(v, EventKind::Warning, "insmod", Some("warn_on_do [fault_warn_on]"));
}

/// The leak fixture in the same boot shows that the check at unload works
/// there; kmemleak's scan is the full profile's.
fn mmc_byte_passes_clean_on_the_debug_kernel(v: &Verdict) {
    passes(v);
    assert!(!v.steps.iter().any(|s| s.name == "leaks"), "no kmemleak on this kernel: {v}");
}

fn mmc_byte_passes_clean_with_the_leak_scan(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Passed, "{v}");
    assert!(v.steps.iter().any(|s| s.name == "leaks" && s.exit == Some(0)), "the leak scan ran: {v}");
}

/// The kernel's own KUnit suite for lists, built as a module: every case
/// passes and is counted.
fn the_kernels_own_kunit_suite_passes_and_is_counted(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Passed, "{v}");
    let k = v.ktap.as_ref().expect("KTAP parsed");
    assert!(k.counts.passed >= 30, "{:?}", k.counts);
    assert_eq!(k.counts.failed, 0);
}

fn a_failing_kunit_case_fails_the_check(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    let k = v.ktap.as_ref().expect("KTAP parsed");
    assert_eq!((k.counts.passed, k.counts.failed, k.counts.skipped), (1, 1, 1), "{v}");
    assert_eq!(k.failures, vec!["kunit-demo.deliberately_fails"]);
    assert_eq!(v.reason.as_deref(), Some("KUnit: 1 of 3 case(s) failed: kunit-demo.deliberately_fails"));
}

/// Issue 34: each stack dump the kernel prints is a report with its class,
/// and issue 28: a failing init runs once per insmod. One boot of the
/// default profile (none of these needs a debug kernel).
#[test]
fn every_stack_dump_is_a_classed_report_and_a_failing_init_runs_once_in_one_boot() {
    fn classed(class: &'static str, symbol: &'static str) -> impl Fn(&Verdict) {
        move |v: &Verdict| {
            assert_eq!(v.outcome, Outcome::Failed, "{v}");
            let titles: Vec<String> = v.events.iter().map(|e| e.title()).collect();
            assert_eq!(titles, [class], "{v}");
            assert_eq!(v.events[0].module_symbol.as_deref(), Some(symbol), "{v}");
            assert!(v.reason.as_deref().unwrap().starts_with(&format!("{class} during step insmod: ")), "{v}");
        }
    }
    type Check = Box<dyn Fn(&Verdict)>;
    let checks: Vec<(&str, Check)> = vec![
        ("fixtures/faults/sysfs-dup", Box::new(classed("duplicate sysfs name", "sysfs_dup_do [fault_sysfs_dup]"))),
        (
            "fixtures/faults/free-irq-twice",
            Box::new(classed("WARNING (free of an already-free IRQ)", "free_irq_twice_do [fault_free_irq_twice]")),
        ),
        (
            "fixtures/faults/module-put",
            Box::new(classed("WARNING (module refcount underflow)", "module_put_do [fault_module_put]")),
        ),
        (
            "fixtures/faults/schedule-timeout",
            Box::new(classed("wrong schedule_timeout", "fault_schedule_timeout_init [fault_schedule_timeout]")),
        ),
        ("fixtures/faults/gfp-highmem", Box::new(classed("bad gfp flags", "gfp_highmem_do [fault_gfp_highmem]"))),
        (
            "fixtures/faults/irq-nobody-cared",
            Box::new(classed("IRQ nobody cared", "irq_nobody_cared_do [fault_irq_nobody_cared]")),
        ),
        (
            "fixtures/faults/alloc-fail",
            Box::new(classed("page allocation failure", "alloc_fail_do [fault_alloc_fail]")),
        ),
        (
            "fixtures/faults/enomem",
            Box::new(|v: &Verdict| {
                assert_eq!(v.outcome, Outcome::Failed, "{v}");
                assert!(v.events.is_empty(), "{v}");
                let text = std::fs::read_to_string(&v.console_log).unwrap();
                assert_eq!(
                    text.matches("fault_enomem: init returns -ENOMEM").count(),
                    1,
                    "init ran once, as on the board:\n{v}"
                );
                assert!(
                    text.contains("insmod: can't insert '/harness/enomem/fault_enomem.ko': Cannot allocate memory"),
                    "busybox's message"
                );
            }),
        ),
    ];
    let mut o = CheckOptions::new("exynos4210", PathBuf::new());
    o.module.module_dirs = checks.iter().map(|(d, _)| repo().join(d)).collect();
    let r = check_with(o);
    let mut failed = Vec::new();
    for ((dir, check), (_, v)) in checks.iter().zip(&r.units) {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(v))).is_err() {
            failed.push(*dir);
        }
    }
    assert!(failed.is_empty(), "misjudged: {failed:?}");
    // The page of the boot, as a person's browser shows it: the report on
    // its unit's timeline, linked to its console line.
    let page = r.run_dir.expect("a failing check keeps its run directory").join("report.html");
    crate::report::check_a_kernel_report_in_chromium(&page, "sysfs-dup", "duplicate sysfs name");
}
