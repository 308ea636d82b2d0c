//! The virtual Tiny4412 (compat35/board/): the hardware lessons pass on it,
//! each step acting on the board or checking it, and what a driver gets
//! wrong there (an interrupt storm, a watchdog left to expire) ends in a
//! verdict that says so, not in a hang.

use crate::common::{fixture, harness, text};

/// The lessons that drive the board, in one boot with a driver that makes
/// an interrupt storm: every lesson passes, the storm fails by name, and
/// the board's changes are in the report, each in its step. In the same
/// boot, a module that takes LED1 (fixtures/board/led1) passes with a note
/// that the stock image's leds driver holds the pin, and the same module
/// with `[board] stock-drivers = true` (led1-stock) is refused -EBUSY, as
/// on the image.
#[test]
fn every_hardware_lesson_passes_and_a_storm_fails_in_one_boot() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("v.json");
    let lessons = [
        "key-irq",
        "key-tasklet",
        "key-poll",
        "key-app",
        "key-input",
        "key-fasync",
        "led-gpio",
        "led-registers",
        "led-hrtimer",
        "led-ioctl",
        "led-once",
        "led-sysfs",
        "proc-led",
        "adc",
    ];
    let mut args = vec!["check".to_string(), "--json".into(), json.display().to_string()];
    for l in lessons {
        args.extend(["--module".into(), fixture(&format!("lessons/{l}")).display().to_string()]);
    }
    args.extend(["--module".into(), fixture("board/irq-storm").display().to_string()]);
    // A unit that does not build (a typo of its own) fails alone: the
    // others still run. A DS18B20 on GPX1_0 (lessons/ds18b20) reads a pin
    // nothing drives here: NEEDS-THE-BOARD, not a temperature of 0 PASSED.
    for f in ["board/led1", "board/led1-stock", "build-errors/ported-typo", "lessons/ds18b20"] {
        args.extend(["--module".into(), fixture(f).display().to_string()]);
    }
    let out = harness(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "the storm fails, the rest pass: {t}");
    assert!(t.contains(&format!("{} of {} passed, in one boot", lessons.len() + 2, lessons.len() + 5)), "{t}");
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
    for l in lessons {
        assert_eq!(verdict(l)["outcome"], "PASSED", "{l}: {}", verdict(l));
    }
    // The lesson's endless app was the test: stopped by SIGINT after the
    // press step waited for the driver's line, its lines judged.
    assert!(t.contains("collect stops app: app ended on SIGINT; its last lines: key 1 is down | key 1 is up"), "{t}");
    assert!(
        t.contains("press sees line \"buttons: K1 up (after 2 edges)\" in the kernel log within 3000 ms: seen after"),
        "{t}"
    );
    // The input device found by its name, whatever its event number. A
    // hold that a loaded machine stretches past the input core's 250 ms
    // autorepeat delay adds a repeat (value 2), which the app prints as
    // "down" too (seen here under load: down | down | up).
    let reader = t
        .lines()
        .find_map(|l| l.split_once("collect stops reader: reader ended on SIGINT; its last lines: ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("the reader's stop is not shown: {t}"));
    assert!(reader.starts_with("key 38 down | ") && reader.ends_with(" | key 38 up"), "{reader}");
    assert!(reader.split(" | ").all(|l| l == "key 38 down" || l == "key 38 up"), "{reader}");
    let sensor = verdict("ds18b20");
    assert_eq!(sensor["outcome"], "NEEDS-THE-BOARD", "{sensor}");
    assert!(sensor["reason"].as_str().unwrap().contains("read of input pin GPX1_0 ("), "{sensor}");
    let typo = verdict("ported-typo");
    assert_eq!(typo["outcome"], "FAILED", "{typo}");
    let reason = typo["reason"].as_str().unwrap();
    assert!(reason.starts_with("it does not build: ") && reason.contains("tv_usecs"), "{typo}");
    let storm = verdict("irq-storm");
    assert_eq!(storm["outcome"], "FAILED", "{storm}");
    assert!(
        storm["reason"]
            .as_str()
            .unwrap()
            .starts_with("interrupt storm on XEINT26: it fired more than 1000 times in a second"),
        "{storm}"
    );
    // The board's changes, each in the step it happened in: the app lit
    // LED1 and LED3, and a click is a press and a release.
    let changed = |v: &serde_json::Value, part: &str, state: &str, step: &str| {
        v["board"].as_array().unwrap().iter().any(|c| c["part"] == part && c["state"] == state && c["step"] == step)
    };
    let leds = verdict("led-gpio");
    assert!(
        changed(&leds, "LED1", "on", "light")
            && changed(&leds, "LED3", "on", "light")
            && changed(&leds, "LED1", "off", "out"),
        "{leds}"
    );
    assert!(!changed(&leds, "LED2", "on", "light"), "{leds}");
    let keys = verdict("key-irq");
    assert!(changed(&keys, "K1", "pressed", "press") && changed(&keys, "K1", "released", "press"), "{keys}");
    assert!(t.contains("  board LED1 on at "), "the text verdict shows the changes: {t}");
    stock_notes(&verdict, &t);
}

/// What the stock image's drivers hold, said (the default) and held
/// (`[board] stock-drivers = true`), in the boot above.
fn stock_notes(verdict: &dyn Fn(&str) -> serde_json::Value, t: &str) {
    let resources = |v: &serde_json::Value| -> Vec<(String, bool)> {
        v["stock"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["resource"].as_str().unwrap().to_string(), n["refused"].as_bool().unwrap()))
            .collect()
    };
    let led1 = verdict("led1");
    assert_eq!(led1["outcome"], "PASSED", "{led1}");
    assert_eq!(resources(&led1), [("LED1".to_string(), false)], "{led1}");
    assert_eq!(led1["stock"][0]["option"], "CONFIG_TINY4412_LEDS", "{led1}");
    let section = &t[t.find("== led1\n").unwrap_or_else(|| panic!("no led1 section: {t}"))..];
    assert!(
        section.contains(
            "note  LED1 (GPM4_0) in step insmod is held by the stock image's leds driver from boot: on \
            FriendlyARM's image this request fails with -EBUSY"
        ),
        "{section}"
    );
    let held = verdict("led1-stock");
    assert_eq!(held["outcome"], "PASSED", "refused as expected: {held}");
    assert_eq!(resources(&held), [("LED1".to_string(), true)], "{held}");
    assert_eq!(held["stock_drivers"], true, "{held}");
    // The FriendlyARM LED lesson asks for all four, and the button lesson for K1-K4's interrupts.
    let leds: Vec<String> = resources(&verdict("led-gpio")).into_iter().map(|(r, _)| r).collect();
    // Its misc device is /dev/leds, the stock leds driver's name too.
    assert_eq!(leds, ["LED1", "LED2", "LED3", "LED4", "/dev/leds"]);
    assert!(resources(&verdict("key-irq")).iter().any(|(r, refused)| r == "XEINT26" && !refused));
    // The button lesson's misc device is named as the stock driver's:
    // its misc_register fails on the image.
    let app = verdict("key-app");
    let named: Vec<&serde_json::Value> =
        app["stock"].as_array().unwrap().iter().filter(|n| n["resource"] == "/dev/buttons").collect();
    assert!(named.len() == 1 && named[0]["dev_name"] == true && named[0]["step"] == "insmod", "{app}");
    assert!(t.contains("this module's misc_register fails with -EEXIST"), "{t}");
    // A lesson that reaches no stock resource says nothing of them.
    assert_eq!(resources(&verdict("led-registers")), []);
}

/// A watchdog fed, then starved: the lesson expects the reset
/// (`reset = "watchdog"`) and passes; the same run without that
/// expectation is CRASHED, the reset named, not a time-out.
#[test]
fn a_starved_watchdog_resets_the_board_as_the_lesson_expects_and_crashes_otherwise() {
    let lesson = fixture("lessons/watchdog");
    let out = harness(&["check", "--module", lesson.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("PASS  starve ends in a reset by the watchdog"), "{t}");
    assert!(t.contains("  board watchdog reset at "), "{t}");

    let dir = tempfile::tempdir().unwrap();
    let expect = dir.path().join("expect.toml");
    let unexpected = std::fs::read_to_string(lesson.join("expect.toml")).unwrap().replace("reset = \"watchdog\"\n", "");
    std::fs::write(&expect, unexpected).unwrap();
    let started = std::time::Instant::now();
    let out = harness(&["check", "--module", lesson.to_str().unwrap(), "--expect", expect.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("verdict: CRASHED: the watchdog reset the board during step starve"), "{t}");
    assert!(started.elapsed().as_secs() < 50, "the reset ended the run, not the step deadline (60 s): {t}");
}

/// A host too busy to run the guest for longer than the watchdog's
/// timeout (here QEMU stopped for 4 s, with SIGSTOP, while the lesson feeds
/// its 3 s watchdog once a second): the guest's clock is the host's, so it
/// jumps, but its feeding timer did not run either, and on the board it
/// would have. The virtual board counts at most half a second of such a
/// gap, so the lesson still passes; counting the whole gap reset it.
#[test]
fn a_host_that_stalls_the_guest_past_the_watchdog_timeout_does_not_reset_the_board() {
    let runs = tempfile::tempdir().unwrap();
    let lesson = fixture("lessons/watchdog-init-timer");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
        .args(["check", "--module", lesson.to_str().unwrap()])
        .env("HARNESS_RUN_DIR", runs.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running the harness binary");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    // The fed step has begun (the module feeds every second from now on).
    let begun = |runs: &std::path::Path| -> bool {
        std::fs::read_dir(runs)
            .unwrap()
            .flatten()
            .any(|run| std::fs::read_to_string(run.path().join("console.log")).is_ok_and(|c| c.contains(" begin fed")))
    };
    while !begun(runs.path()) {
        assert!(std::time::Instant::now() < deadline, "the fed step never began");
        assert!(child.try_wait().unwrap().is_none(), "the check ended before the fed step");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let qemu = crate::common::qemu_children_of(child.id());
    assert_eq!(qemu.len(), 1, "one guest: {qemu:?}");
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill").args([sig, &qemu[0].to_string()]).status().unwrap().success();
        assert!(ok, "kill {sig}");
    };
    signal("-STOP");
    std::thread::sleep(std::time::Duration::from_secs(4));
    signal("-CONT");
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    // Not the exit status: fewer feeds came in the stalled 5 s (a timer
    // overdue by 4 s runs once), and the lesson's rmmod counts them.
    assert!(!t.contains("watchdog reset"), "{t}");
    assert!(t.contains("PASS  alive finds the board with watchdog on"), "{t}");
    assert!(t.contains("PASS  stopped finds the board with watchdog off"), "{t}");
}

/// A button pressed and never released, while the app waits for the
/// release: the wait step meets its deadline (TIMED-OUT, naming the step),
/// and the board shows the button still down; not a hang.
#[test]
fn a_button_never_released_times_out_the_step_that_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let expect = dir.path().join("expect.toml");
    let lesson = fixture("lessons/key-irq");
    let never = std::fs::read_to_string(lesson.join("expect.toml"))
        .unwrap()
        .replace("click = \"K1\"\nhold_ms = 200", "press = \"K1\"");
    assert!(never.contains("press = \"K1\""), "{never}");
    std::fs::write(&expect, never).unwrap();
    let out = harness(&[
        "check",
        "--step-timeout",
        "10",
        "--module",
        lesson.to_str().unwrap(),
        "--expect",
        expect.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("verdict: TIMED-OUT: step collect did not finish within 10 s"), "{t}");
    assert!(t.contains("  board K1 pressed at ") && !t.contains("  board K1 released"), "{t}");
}

/// A platform device and its driver kept in two folders, each with its own
/// Makefile (the lesson's pdevice/ and pdriver/): with --together they are
/// one unit, so the driver binds to the device and the app lights LED1.
/// The expectations are pdriver's, the only expect.toml of the two.
#[test]
fn a_device_and_its_driver_in_two_folders_run_as_one_unit_with_together() {
    let (dev, drv) = (fixture("together/led/pdevice"), fixture("together/led/pdriver"));
    let (dev, drv) = (dev.display().to_string(), drv.display().to_string());
    let out = harness(&["check", "--module", &dev, "--module", &drv, "--together"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("PASS  insmod:led_drv prints line \"led_drv: probe tiny4412_led"), "{t}");
    assert!(t.contains("PASS  lit finds the board with LED1 on, LED2 off"), "{t}");
    // One unit: no verdict of each folder's own.
    assert!(!t.contains("in one boot"), "{t}");
    // Without it (and the expectations that name both) they are two units
    // that never meet, and the harness says why and what to do.
    let tmp = tempfile::tempdir().unwrap();
    let alone = tmp.path().join("pdriver");
    std::fs::create_dir(&alone).unwrap();
    for f in ["Makefile", "led_drv.c"] {
        std::fs::copy(fixture("together/led/pdriver").join(f), alone.join(f)).unwrap();
    }
    let apart = harness(&["check", "--module", &dev, "--module", &alone.display().to_string()]);
    let a = text(&apart);
    assert!(
        a.contains(
            "note: pdevice registers a platform device and pdriver a platform driver, both named \"tiny4412_led\": \
             as separate units they never meet; run them as one with --together"
        ),
        "{a}"
    );
    // Misused, it says how before building anything.
    let alone = harness(&["check", "--module", &dev, "--together"]);
    assert!(text(&alone).contains("--together joins several --module directories into one unit"), "{}", text(&alone));
}
