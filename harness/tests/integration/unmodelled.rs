//! Hardware the emulated board does not have is never silent: a
//! register-level LED driver's writes to GPL2, a bank neither QEMU's
//! smdkc210 nor the virtual board models, make its verdict NEEDS-THE-BOARD
//! (exit 3, JUnit skipped), naming the addresses; in the same boot a module
//! that touches no such hardware passes, whatever the kernel's own boot
//! touched.

use crate::common::{fixture, harness, repo, text};

#[test]
fn a_register_level_led_driver_needs_the_board_and_its_neighbour_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (json, junit) = (dir.path().join("v.json"), dir.path().join("v.xml"));
    let leds = fixture("board/led-unmodelled-bank");
    let out = harness(&[
        "check",
        "--module",
        repo().join("kmod/c-twin").to_str().unwrap(),
        "--module",
        leds.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "nothing failed, one unit needs the board: {t}");
    assert!(t.contains("PASSED    c-twin"), "{t}");
    assert!(t.contains("NEEDS-THE-BOARD led-unmodelled-bank"), "{t}");
    assert!(
        t.contains("verdict: NEEDS-THE-BOARD: hardware the emulated board does not have: read of 0x11000100"),
        "{t}"
    );
    assert!(
        t.contains("write to 0x11000100 (4 bytes, GPIO (part 2: GPK, GPL, GPY, GPM, GPX) GPL2CON) in step insmod"),
        "{t}"
    );
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
    let (twin, led) = (verdict("c-twin"), verdict("led-unmodelled-bank"));
    assert_eq!(twin["outcome"], "PASSED", "{twin}");
    assert_eq!(twin["unmodelled"], serde_json::json!([]), "the boot's own accesses are the kernel's: {twin}");
    assert_eq!(led["outcome"], "NEEDS-THE-BOARD", "{led}");
    let accesses = led["unmodelled"].as_array().unwrap();
    let wrote = |address: &str, step: &str| {
        accesses.iter().any(|a| a["address"] == address && a["write"] == true && a["step"] == step)
    };
    assert!(wrote("0x11000100", "insmod") && wrote("0x11000104", "insmod") && wrote("0x11000104", "rmmod"), "{led}");
    assert!(accesses.iter().all(|a| a["unit"] == "led-unmodelled-bank"), "{led}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<skipped message=\"needs the board: read of 0x11000100"), "{xml}");
}

/// A driver that busy-polls a register QEMU does not model (the ADC's end
/// of conversion, as the lessons do) makes QEMU log each read, some 50 MB
/// a second: the log is bounded (logging is turned off past 8 MiB, over
/// QMP) and the verdict still names the register.
#[test]
fn a_busy_poll_of_the_missing_adc_is_bounded_and_named() {
    let out = harness(&["check", "--keep", "--module", fixture("board/adc-busy-poll").to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(
        t.contains(
            "verdict: NEEDS-THE-BOARD: hardware the emulated board does not have: write to 0x126C0000 (4 \
        bytes, ADC ADCCON) in step insmod"
        ),
        "{t}"
    );
    assert!(t.contains("read of 0x126C0000 (4 bytes, ADC ADCCON) in step insmod"), "{t}");
    assert!(t.contains("guest-error log reached"), "the bound was not reached, or not said: {t}");
    let run_dir =
        t.lines().find_map(|l| l.strip_prefix("run directory: ")).unwrap_or_else(|| panic!("no run directory: {t}"));
    let log = std::path::Path::new(run_dir.trim()).join("guest-errors.log");
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(size < 32 << 20, "{} is {size} bytes", log.display());
    let _ = std::fs::remove_dir_all(run_dir.trim());
}
