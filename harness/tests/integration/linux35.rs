//! FriendlyARM's own Linux 3.5 (the tiny4412-3.5 profile), built from the
//! vendor tarball in `../shared/vendor/` with the project's patch series: the
//! Rust module, its C twin, the tutorial module and every software lesson in
//! one boot, with the seed's expectations; and what the profile refuses.
//! Where the tarball is absent (a user's checkout) each test says so and
//! returns: CI has it.

use crate::common::{self, repo, text};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The software lessons: nothing of them reaches the board's hardware.
pub const SOFTWARE_LESSONS: &[&str] =
    &["chardev", "export", "kthread", "misc", "mutex", "param", "platform", "poll", "proc", "timer", "workqueue"];

/// The vendor tarball: `TINY4412_LINUX_SRC` (the profile's own variable,
/// which .ci/run sets), else `../shared/vendor/` from the repository root;
/// None (said) when neither is there.
pub fn vendor_tarball() -> Option<PathBuf> {
    let from_env = std::env::var_os("TINY4412_LINUX_SRC").filter(|v| !v.is_empty()).map(PathBuf::from);
    let p = from_env.unwrap_or_else(|| repo().join("../shared/vendor/tiny4412-linux-3.5-9f0a8c36.tar.xz"));
    if p.exists() {
        return Some(p);
    }
    eprintln!(
        "SKIPPED: no FriendlyARM Linux 3.5 source at {} (set TINY4412_LINUX_SRC, or put the tarball in \
         ../shared/vendor/; CI has it; see docs/linux-3.5-kernel.md)",
        p.display()
    );
    None
}

/// `harness check --profile tiny4412-3.5 --kernel-src TARBALL ARGS`.
pub fn check35(tarball: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
        .args(["check", "--profile", "tiny4412-3.5", "--kernel-src"])
        .arg(tarball)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running the harness binary")
}

#[test]
fn the_rust_module_its_c_twin_and_every_software_lesson_pass_on_the_boards_own_kernel() {
    let Some(tarball) = vendor_tarball() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("verdicts.json");
    let mut dirs: Vec<PathBuf> =
        vec![repo().join("kmod"), repo().join("kmod/c-twin"), repo().join("fixtures/tutorial/mmc_byte")];
    dirs.extend(SOFTWARE_LESSONS.iter().map(|l| repo().join("fixtures/lessons").join(l)));
    let mut args: Vec<String> = vec!["--json".into(), json.display().to_string()];
    for d in &dirs {
        args.extend(["--module".into(), d.display().to_string()]);
    }
    let out = check35(&tarball, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains(&format!("{0} of {0} passed, in one boot", dirs.len())), "{t}");
    let reports: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for r in reports.as_array().unwrap() {
        // The board's kernel itself, not the stand-in.
        let release = r["kernel_release"].as_str().unwrap();
        assert!(release.starts_with("3.5.0"), "{}: {release}", r["module"]);
        assert_eq!(r["verdict"]["outcome"], "PASSED", "{}", r["module"]);
    }
    // The seed's expectations held for the Rust module and its twin: its
    // own printk, on 3.5.
    for unit in ["kmod", "c-twin"] {
        let r = reports
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["module"] == unit)
            .unwrap_or_else(|| panic!("no {unit} in {reports}"));
        let checks = r["verdict"]["checks"].to_string();
        assert!(checks.contains("process:insmod") && checks.contains("mmc exit!"), "{unit}: {checks}");
    }
    common::assert_no_qemu_children();
}

/// A lesson whose steps press keys or read the LEDs needs the virtual board,
/// which is written for the stand-in's API: refused before booting, with
/// the reason, never a silent PASS.
#[test]
fn a_lesson_that_acts_on_the_board_is_refused_with_the_reason() {
    let Some(tarball) = vendor_tarball() else {
        return;
    };
    // led-gpio builds on 3.5 as it is (key-irq does not: it calls
    // gpio_get_value() with only <mach/gpio.h>, which 3.5 does not declare
    // there), so the refusal is what is seen, not a build error.
    let lesson = repo().join("fixtures/lessons/led-gpio");
    let out = check35(&tarball, &["--module", lesson.to_str().unwrap()]);
    let t = text(&out);
    assert_ne!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("has no virtual Tiny4412"), "{t}");
    assert!(!t.contains("PASSED"), "{t}");
}

/// Without a source the profile says where to get one, before building
/// anything.
#[test]
fn without_a_source_the_profile_says_how_to_get_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
        .args(["check", "--profile", "tiny4412-3.5", "--module"])
        .arg(repo().join("kmod/c-twin"))
        .env_remove("TINY4412_LINUX_SRC")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let t = text(&out);
    assert_ne!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("--kernel-src") && t.contains("TINY4412_LINUX_SRC") && t.contains("9f0a8c36"), "{t}");
    // A tree of another version is named as such.
    let dir = tempfile::tempdir().unwrap();
    for f in ["Kconfig", "Makefile"] {
        std::fs::write(dir.path().join(f), "VERSION = 6\nPATCHLEVEL = 12\n").unwrap();
    }
    std::fs::create_dir(dir.path().join("arch")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
        .args(["check", "--profile", "tiny4412-3.5", "--module"])
        .arg(repo().join("kmod/c-twin"))
        .env("TINY4412_LINUX_SRC", dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let t = text(&out);
    assert!(t.contains("this is Linux 6.12, and the tiny4412-3.5 profile needs a Linux 3.5 tree"), "{t}");
}
