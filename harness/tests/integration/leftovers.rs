//! What a module leaves behind and an interrupt nobody handles
//! (fixtures/leftovers/): each fixture loads, works and unloads, and fails
//! for its own reason — a second load refused, a census after the last
//! rmmod that names what stayed, an interrupt whose only handler said
//! IRQ_NONE, a timer, hrtimer or delayed work still pending when rmmod
//! frees the module — and a shared line that one handler claims passes; a
//! list entry added twice is a report of its class; a tasklet left
//! scheduled crashes the guest, named by the module's freed data it read.
//! All in one boot of the default profile, a verdict each.

use crate::common::{check_with, repo};
use harness::judge::expect::Check;
use harness::judge::verdict::{Outcome, Verdict};
use harness::options::CheckOptions;
use std::path::PathBuf;

const FIXTURES: &[&str] =
    &["cdev-kept", "class-kept", "input-kept", "irq-none", "irq-shared", "timer-kept", "work-kept", "hrtimer-kept"];
/// A fault fixture whose report needs the default profile's CONFIG_DEBUG_LIST, in the same boot.
const LIST_ADD_TWICE: &str = "fixtures/faults/list-add-twice";
/// Last: the tasklet it leaves scheduled crashes the guest at its rmmod,
/// and a crash ends the boot.
const TASKLET_KEPT: &str = "tasklet-kept";

#[test]
fn each_leftover_and_a_disowned_interrupt_fail_for_their_own_reason_in_one_boot() {
    let mut o = CheckOptions::new("exynos4210", PathBuf::new());
    o.module.module_dirs = FIXTURES.iter().map(|f| repo().join("fixtures/leftovers").join(f)).collect();
    o.module.module_dirs.push(repo().join(LIST_ADD_TWICE));
    o.module.module_dirs.push(repo().join("fixtures/leftovers").join(TASKLET_KEPT));
    let r = check_with(o);
    assert_eq!(r.units.len(), FIXTURES.len() + 2);
    let verdict = |label: &str| &r.units.iter().find(|(l, _)| l == label).unwrap_or_else(|| panic!("no {label}")).1;
    for f in FIXTURES.iter().chain(&["list-add-twice", TASKLET_KEPT]) {
        eprintln!("{f}: {}", verdict(f));
    }
    cannot_load_twice_and_leaves_its_major(verdict("cdev-kept"));
    leaves_its_class_device_and_node(verdict("class-kept"));
    leaves_its_input_device(verdict("input-kept"));
    an_irq_none_handler_fails_its_step(verdict("irq-none"));
    a_shared_line_one_handler_claims_passes(verdict("irq-shared"));
    // 3.5's timer runs the layer's trampoline, in the module.
    pending_at_unload(verdict("timer-kept"), "timer_list", "compat35_timer_trampoline [led_blink]");
    // A delayed work's timer is hinted by the work's own function.
    pending_at_unload(verdict("work-kept"), "timer_list", "key_poll_fn [key_poll]");
    pending_at_unload(verdict("hrtimer-kept"), "hrtimer", "beat_fn [buzzer_beat]");
    a_double_list_add_is_list_corruption(verdict("list-add-twice"));
    a_tasklet_left_scheduled_crashes_into_its_data(verdict(TASKLET_KEPT));
}

fn failed<'a>(v: &'a Verdict, description: &str) -> &'a Check {
    let c = v
        .checks
        .iter()
        .find(|c| c.description == description)
        .unwrap_or_else(|| panic!("no check {description:?}:\n{v}"));
    assert!(!c.held, "{description} held:\n{v}");
    c
}

fn leftovers(v: &Verdict) -> String {
    failed(v, "nothing left behind after rmmod").detail.clone().unwrap_or_default()
}

fn cannot_load_twice_and_leaves_its_major(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    // The first load passed; the second fails with its own error, and that
    // is the headline.
    assert!(v.checks.iter().any(|c| c.description == "insmod exits 0" && c.held), "{v}");
    let again = failed(v, "insmod#2 exits 0");
    assert!(again.detail.as_deref().unwrap().contains("Device or resource busy"), "{again:?}");
    assert_eq!(v.reason.as_deref(), Some("expectation not met: insmod#2 exits 0"), "{v}");
    assert!(leftovers(v).contains("major 120 \"wait_queue\" in /proc/devices"), "{v}");
}

fn leaves_its_class_device_and_node(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    failed(v, "insmod#2 exits 0");
    let left = leftovers(v);
    for want in ["class \"led\"", "device \"led0\" of class \"led\"", "/dev/led0"] {
        assert!(left.contains(want), "{want} not named in: {left}");
    }
}

fn leaves_its_input_device(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    // An input device registers again under a new number: it loads twice.
    assert!(v.checks.iter().any(|c| c.description == "insmod#2 exits 0" && c.held), "{v}");
    let left = leftovers(v);
    assert!(left.contains("of class \"input\"") && left.contains("/dev/input/event"), "{left}");
    // Named as read while the module was loaded, with the module.
    assert!(left.contains(": \"tiny4412 keys\", which keys_input registered"), "{left}");
    assert!(!left.contains("led"), "another unit's leftovers are not this one's: {left}");
}

fn an_irq_none_handler_fails_its_step(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    let c = failed(v, "the interrupt on XEINT26 in press is handled");
    assert_eq!(c.step, "press");
    assert!(c.detail.as_deref().unwrap().contains("IRQ_NONE"), "{c:?}");
    assert!(
        v.checks.iter().any(|c| c.description == "press prints line \"k1_count: press 1\"" && c.held),
        "the handler ran: {v}"
    );
    assert!(v.board.iter().all(|c| !c.state.starts_with("handled")), "the change list says handled: {:?}", v.board);
    // It left nothing behind: it frees its interrupt.
    assert!(v.checks.iter().any(|c| c.description == "nothing left behind after rmmod" && c.held), "{v}");
}

fn a_shared_line_one_handler_claims_passes(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Passed, "{v}");
    assert!(v.board.iter().any(|c| c.part == "XEINT26" && c.state.starts_with("handled")), "{:?}", v.board);
}

/// A timer, hrtimer or delayed work left pending by the module's exit is
/// found when rmmod frees the memory holding it (debug objects), in the
/// rmmod step, before it fires: the kernel cancels it and the boot goes on.
/// `kind` is the object's type; `code` its function (debug objects' `hint`),
/// a bare address by then (the module is gone from kallsyms), named from
/// the module's sections recorded at insmod.
fn pending_at_unload(v: &Verdict, kind: &str, code: &str) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    let e = v
        .events
        .iter()
        .find(|e| e.class.as_deref() == Some("timer or work item pending in freed memory"))
        .unwrap_or_else(|| panic!("no pending timer or work reported:\n{v}"));
    assert_eq!(e.step.as_deref(), Some("rmmod"), "{v}");
    assert!(e.headline().contains(&format!("object type: {kind} hint: 0xbf")), "{kind}: {:?}", e.headline());
    assert_eq!(e.unloaded_code.as_deref(), Some(code), "{v}");
    assert!(v.reason.as_deref().unwrap_or("").ends_with(&format!("(into the unloaded module's code: {code})")), "{v}");
    assert!(v.reason.as_deref().unwrap_or("").contains("timer or work item pending in freed memory"), "{v}");
    // The census after rmmod still passes: the kernel cancelled it.
    assert!(v.checks.iter().any(|c| c.description == "nothing left behind after rmmod" && c.held), "{v}");
}

fn a_double_list_add_is_list_corruption(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    let titles: Vec<String> = v.events.iter().map(|e| e.title()).collect();
    assert_eq!(titles, ["WARNING (list corruption)"], "{v}");
    assert!(v.events[0].headline().starts_with("list_add double add: "), "{:?}", v.events[0].headline());
    assert_eq!(v.events[0].module_symbol.as_deref(), Some("list_add_twice_do [fault_list_add_twice]"), "{v}");
}

/// A tasklet its exit disabled but did not kill stays on the CPU's list:
/// no debug object tracks a tasklet, and once rmmod frees the module the
/// kernel's tasklet code reads the freed struct (an oops in ksoftirqd, a
/// panic). The program counter is the kernel's; the fault's bare address
/// is named from the module's data sections recorded at insmod.
fn a_tasklet_left_scheduled_crashes_into_its_data(v: &Verdict) {
    assert_eq!(v.outcome, Outcome::Crashed, "{v}");
    let e = v.events.iter().find(|e| e.kind.is_crash()).unwrap_or_else(|| panic!("no crash:\n{v}"));
    assert_eq!(e.step.as_deref(), Some("rmmod"), "{v}");
    assert!(e.first_line().starts_with("Unable to handle kernel paging request at virtual address bf"), "{v}");
    assert_eq!(e.unloaded_data.as_deref(), Some("flash_tasklet [led_flash]"), "{v}");
    let reason = v.reason.as_deref().unwrap_or("");
    assert!(
        reason.ends_with(
            "(into the unloaded module's data: flash_tasklet [led_flash]; run by tasklet_action_common: a tasklet \
             still scheduled after rmmod; its exit should call tasklet_kill())"
        ),
        "{v}"
    );
}
