//! What a unit's modules left behind: the census that `harness_census` in
//! rootfs/steps.sh takes before the unit's first insmod and after its last
//! rmmod (what the kernel lists as registered: char and block majors, misc
//! devices, classes and their devices (input devices among them), /dev
//! nodes, interrupt handlers, requested GPIOs, proc and debugfs entries,
//! platform devices and every bus's drivers), compared here. Timers, tasklets and work items
//! left pointing into a module's freed text are not in it: no file lists
//! them (the default kernel's debug objects report a pending timer, hrtimer
//! or work item when rmmod frees it: a report, configs/kernel-reports.toml).
//! The guest says `same N` when the two are equal (one line, whatever the census holds); else it prints both, a `before
//! KIND TEXT` or `after KIND TEXT` line an entry, and what the second has
//! that the first had not is left behind.
//!
//! The kernel does not say which module registered an entry (but for an
//! input device, whose name and module the guest reads after each insmod:
//! [`name_inputs`]), so a leftover is the census's difference over the
//! unit's steps; nothing else runs in
//! the guest meanwhile (the virtual board is loaded before the first census,
//! and each unit's steps run in turn).

use std::collections::BTreeSet;

/// What the second census says, compared with the first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Comparison {
    /// Each entry the second census has and the first had not, as the user
    /// reads it (`major 250 "wait_queue" in /proc/devices`).
    pub left: Vec<String>,
    /// The guest stopped listing at its bound: an entry past it is unseen.
    pub truncated: bool,
    /// The guest said whether the two were the same, or printed them.
    pub complete: bool,
    /// The kernel's count of debug objects' problems (`warnings` in
    /// debug_objects/stats) at the first census and at the second, where
    /// its kernel has them: not an entry, since the count only grows.
    pub odebug: Option<(u64, u64)>,
}

impl Comparison {
    /// How many problems debug objects found between the two censuses.
    pub fn odebug_found(&self) -> u64 {
        self.odebug.map(|(before, after)| after.saturating_sub(before)).unwrap_or(0)
    }
}

/// Compares the two censuses from the output of the second one's step.
pub fn compare<'a>(output: impl IntoIterator<Item = &'a str>) -> Comparison {
    let mut before = BTreeSet::new();
    let mut after = Vec::new();
    let mut c = Comparison::default();
    for line in output {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "same" => c.complete = true,
            "before" => {
                before.insert(rest);
            }
            "after" => {
                c.complete = true;
                after.push(rest);
            }
            "truncated" => c.truncated = true,
            _ => {}
        }
    }
    let count = |e: &str| e.strip_prefix("odebug ").and_then(|n| n.parse::<u64>().ok());
    let first = before.iter().find_map(|e| count(e));
    let second = after.iter().find_map(|e| count(e));
    if let (Some(b), Some(a)) = (first, second) {
        c.odebug = Some((b, a));
    }
    let mut seen = BTreeSet::new();
    c.left =
        after.into_iter().filter(|e| count(e).is_none() && !before.contains(e) && seen.insert(*e)).map(shown).collect();
    c
}

/// `left` with each input device that a module of the unit registered
/// named, and that module: the census cannot read a leftover's name (it is
/// in the memory its module took with it), so the guest read it after the
/// insmod, while the module was loaded (an `input` marker).
pub fn name_inputs(left: &mut [String], inputs: &[crate::step::InputName]) {
    for entry in left.iter_mut() {
        let Some(i) = inputs.iter().rev().find(|i| *entry == format!("device {:?} of class \"input\"", i.device))
        else {
            continue;
        };
        *entry = format!("{entry}: {:?}, which {} registered", i.name, i.module);
    }
}

/// A census entry (`KIND TEXT`) as the user reads it.
fn shown(entry: &str) -> String {
    let (kind, text) = entry.split_once(' ').unwrap_or((entry, ""));
    let (first, rest) = text.split_once(' ').unwrap_or((text, ""));
    match kind {
        "chrdev" => format!("major {first} {rest:?} in /proc/devices"),
        "blkdev" => format!("block major {first} {rest:?} in /proc/devices"),
        "misc" => format!("misc minor {first} {rest:?} in /proc/misc"),
        "class" => format!("class {text:?}"),
        "device" => match text.split_once('/') {
            Some((class, name)) => format!("device {name:?} of class {class:?}"),
            None => format!("device {text:?}"),
        },
        "dev" => format!("/dev/{text}"),
        "irq" => format!("IRQ {first} handler {:?} in /proc/interrupts", handlers(rest)),
        "gpio" => format!("{first} requested {rest:?} in /sys/kernel/debug/gpio"),
        "gpiochip" => format!("GPIO chip {text:?}"),
        "proc" => format!("/proc/{text}"),
        "debugfs" => format!("/sys/kernel/debug/{text}"),
        "bus-device" | "driver" => match text.split_once('/') {
            Some((bus, name)) => format!("{bus} {} {name:?}", if kind == "driver" { "driver" } else { "device" }),
            None => format!("{kind} {text:?}"),
        },
        _ => entry.to_string(),
    }
}

/// The handlers' names of a /proc/interrupts line whose counts the guest
/// left out (`GIC-0 29 Level twd`, `tiny4412-board 26 Edge K1, hello`):
/// what follows the trigger type, else the whole.
fn handlers(rest: &str) -> &str {
    for ty in [" Edge ", " Level "] {
        if let Some(i) = rest.find(ty) {
            return rest[i + ty.len()..].trim();
        }
    }
    rest.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debug objects' count is no entry: it only grows, and is compared
    /// with the unit's reports of it (verdict.rs).
    #[test]
    fn the_debug_objects_count_is_read_apart_from_the_entries() {
        let c = compare(["before odebug 3", "before class tty", "after odebug 5", "after class tty"]);
        assert_eq!((c.odebug, c.odebug_found(), c.left.len()), (Some((3, 5)), 2, 0));
        assert_eq!(compare(["same"]).odebug_found(), 0);
    }

    #[test]
    fn a_left_input_device_is_named_by_what_the_guest_read_while_its_module_was_loaded() {
        let mut c = compare(["before class input", "after class input", "after device input/input0"]);
        let keys = crate::step::InputName {
            unit: None,
            module: "keys_input".into(),
            device: "input0".into(),
            name: "tiny4412 keys".into(),
        };
        let other = crate::step::InputName { device: "input1".into(), name: "other".into(), ..keys.clone() };
        name_inputs(&mut c.left, &[keys, other]);
        assert_eq!(c.left, ["device \"input0\" of class \"input\": \"tiny4412 keys\", which keys_input registered"]);
    }

    #[test]
    fn the_same_census_leaves_nothing() {
        let c = compare(["same"]);
        assert_eq!(c, Comparison { left: vec![], truncated: false, complete: true, odebug: None });
        assert!(!compare(["something else"]).complete, "no verdict from output that is no census");
    }

    #[test]
    fn what_the_second_census_adds_is_named() {
        let out = [
            "before chrdev 1 mem",
            "before irq 416 tiny4412-board 26 Edge K1",
            "before class tty",
            "after chrdev 1 mem",
            "after chrdev 250 wait_queue",
            "after class tty",
            "after class led",
            "after device led/led0",
            "after dev led0",
            "after irq 416 tiny4412-board 26 Edge K1, hello",
            "after irq 417 tiny4412-board 27 Level key2",
            "after misc 58 hello_misc",
            "after gpio gpio-220 (K1|key1)",
            "after proc hello",
            "after debugfs hello",
            "after bus-device platform/hello.0",
            "after driver platform/hello",
            "after dev led0",
        ];
        let c = compare(out);
        assert!(c.complete && !c.truncated);
        assert_eq!(
            c.left,
            [
                "major 250 \"wait_queue\" in /proc/devices",
                "class \"led\"",
                "device \"led0\" of class \"led\"",
                "/dev/led0",
                "IRQ 416 handler \"K1, hello\" in /proc/interrupts",
                "IRQ 417 handler \"key2\" in /proc/interrupts",
                "misc minor 58 \"hello_misc\" in /proc/misc",
                "gpio-220 requested \"(K1|key1)\" in /sys/kernel/debug/gpio",
                "/proc/hello",
                "/sys/kernel/debug/hello",
                "platform device \"hello.0\"",
                "platform driver \"hello\"",
            ]
        );
    }

    #[test]
    fn what_the_module_removed_is_no_leftover_and_a_bound_is_said() {
        let c = compare(["before class led", "after class tty", "before class tty", "truncated 1500"]);
        assert_eq!(c.left, Vec::<String>::new());
        assert!(c.truncated);
    }
}
