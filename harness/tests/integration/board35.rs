//! The board's hardware as 3.5's modules reach it, on the virtual board:
//! clocks by 3.5's names and rates, the legacy PWM API on the buzzer, a
//! platform device whose resource is a whole 4 KiB GPIO block, 3.5's fixed
//! mappings (S5P_VA_GPIO2), gpio_free() of a pin nobody holds; and an
//! access inside a mapped block to a register the model lacks, or at an
//! odd offset, named by the datasheet's register, its mapping and the
//! module's line. All in one boot, whose HTML report is read in Chromium.

use crate::common::{fixture, harness, text};

/// The 3.5 lessons of this file, each passing with steps that act on the
/// board or check it.
const LESSONS: &[&str] = &[
    "lessons/buzzer-pwm",
    "lessons/watchdog-clk",
    "lessons/watchdog-init-timer",
    "lessons/adc-clk",
    "lessons/led-platform",
    "lessons/led-va",
    "board/clocks-35",
];

#[test]
fn the_3_5_hardware_lessons_pass_and_unmodelled_registers_are_named_in_one_boot() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("v.json");
    // The page of the run, read in Chromium below (integration/report.rs).
    let report = crate::report::report_dir("board35").join("report.html");
    let mut args = vec!["check".to_string(), "--json".into(), json.display().to_string()];
    args.extend(["--report".into(), report.display().to_string()]);
    // The driver that reaches past the model goes last: it writes GPM4's
    // registers at an odd offset.
    for m in LESSONS.iter().chain(&["board/gpio-block-unmodelled"]) {
        args.extend(["--module".into(), fixture(m).display().to_string()]);
    }
    let started = std::time::Instant::now();
    let out = harness(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let t = text(&out);
    eprintln!("one boot of {} units: {:.1} s", LESSONS.len() + 1, started.elapsed().as_secs_f64());
    assert_eq!(out.status.code(), Some(3), "the lessons pass, one unit needs the board: {t}");
    let reports: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let verdict = |label: &str| {
        reports
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["module"] == label)
            .unwrap_or_else(|| panic!("no {label} in {reports}"))["verdict"]
            .clone()
    };
    for l in LESSONS {
        let label = l.rsplit('/').next().unwrap();
        assert_eq!(verdict(label)["outcome"], "PASSED", "{label}: {}", verdict(label));
    }
    // The buzzer sounded 1000 Hz on PWM0 in the step that asked for it.
    let buzzer = verdict("buzzer-pwm");
    let changed = |v: &serde_json::Value, part: &str, state: &str, step: &str| {
        v["board"].as_array().unwrap().iter().any(|c| c["part"] == part && c["state"] == state && c["step"] == step)
    };
    assert!(
        changed(&buzzer, "PWM0", "1000 Hz duty 50%", "beep") && changed(&buzzer, "buzzer", "pwm", "beep"),
        "{buzzer}"
    );
    assert!(changed(&buzzer, "buzzer", "off", "stop"), "{buzzer}");

    let block = verdict("gpio-block-unmodelled");
    assert_eq!(block["outcome"], "NEEDS-THE-BOARD", "{block}");
    let part1 = "GPIO (part 1: GPA..GPF)";
    assert!(
        t.contains(&format!(
            "write to 0x11400020 (4 bytes, {part1} GPA1CON) through ioremap(0x11400000, 0x1000) at \
            gpio_block.c:32 in step insmod"
        )),
        "the register, the mapping and the line: {t}"
    );
    assert!(
        t.contains(&format!(
            "read of 0x11400020 (4 bytes, {part1} GPA1CON) through ioremap(0x11400000, 0x1000) at gpio_block.c:32"
        )),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "write to 0x11400024 (4 bytes, {part1} GPA1DAT) through ioremap(0x11400000, 0x1000) in step insmod"
        )),
        "a plain pointer's write, no line: {t}"
    );
    assert!(
        t.contains(
            "write to 0x110002E1 (4 bytes, GPIO (part 2: GPK, GPL, GPY, GPM, GPX) GPM4CON+1, unaligned: the \
            registers are 4-byte words at multiples of 4) through ioremap(0x110002e0, 0x8) at gpio_block.c:35"
        ),
        "{t}"
    );
    // GPD0 is the model's: its accesses are not reported.
    let accesses = block["unmodelled"].as_array().unwrap();
    assert!(accesses.iter().all(|a| a["address"] != "0x114000A0"), "{block}");
    assert!(!t.contains("board access "), "the accesses are not board changes: {t}");
    crate::report::check_led_va_in_chromium(&report, "led-va");
}

/// Without the layer (`--api native`) the same clocks are there (the
/// board registers them), but 6.12's clk_enable() without clk_prepare()
/// warns, and of an error pointer oopses at fffffffe: the run says so, and
/// explains it by the change.
#[test]
fn clocks_by_3_5_names_crash_natively_and_are_explained() {
    let out = harness(&["check", "--api", "native", "--module", fixture("board/clocks-35").to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(
            "verdict: CRASHED: oops during step insmod: Unable to handle kernel paging request at virtual \
        address fffffffe"
        ),
        "{t}"
    );
    assert!(
        t.contains("needs clk_prepare() first") && t.contains("seen in: Enabling unprepared tiny4412-3.5:watchdog"),
        "{t}"
    );
}
