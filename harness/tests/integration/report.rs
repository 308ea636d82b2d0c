//! The run's HTML report as a person sees it: rendered by headless Chromium
//! (Debian's `chromium`, which the suite installs: packages::for_suite),
//! its DOM read back and its screenshots taken, of the lesson's unit alone
//! (its link, #uK), whose pixels show the click, the interrupt and the LED
//! in that order. Called by the tests whose
//! boot runs a hardware lesson (board35.rs: led-va, where a click of K1
//! raises XEINT26 and its handler toggles LED4) or a fixture whose insmod
//! prints a kernel report (faults.rs), so no boot of its own.

use crate::common::repo;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a test's report and its screenshots go: beside the run
/// directories (target/harness-runs/), which CI uploads when a job fails.
pub fn report_dir(test: &str) -> PathBuf {
    let dir = repo().join("target").join("harness-runs").join(format!("report-{test}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Chromium on `page` (with `#fragment` when not empty) with `args`
/// (headless, no sandbox: the suite may run as root; its own profile
/// folder, so no user's is touched), bounded in time; its standard output.
fn chromium(page: &Path, fragment: &str, args: &[&str]) -> String {
    let logs = harness::cache::root().join("logs");
    harness::packages::ensure(&harness::packages::for_browser(), &logs).unwrap_or_else(|e| panic!("{e:#}"));
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .args(["-k", "10", "120", "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}{fragment}", page.display()))
        .output()
        .expect("running chromium (packages::for_browser installs it)");
    assert!(out.status.success(), "chromium {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One entry of the page's timeline: its kind, its time, its text.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    kind: String,
    at: f64,
    text: String,
}

/// The timeline of the unit whose heading is `label`, from Chromium's DOM.
fn timeline(dom: &str, label: &str) -> Vec<Entry> {
    let start = dom.find(&format!("<h2>{label} ")).unwrap_or_else(|| panic!("no section of {label} in the DOM"));
    let section = &dom[start..];
    let section = &section[..section.find("</section>").unwrap_or(section.len())];
    let list = &section[section.find("<ol class=\"timeline\">").expect("a timeline")..];
    let list = &list[..list.find("</ol>").unwrap()];
    let entry = regex::Regex::new(
        r#"data-kind="([a-z]+)"><span class="t">([0-9.]+) s</span>.*?<(?:span class="what"|a [^>]*)>(.*?)</"#,
    )
    .unwrap();
    entry
        .captures_iter(list)
        .map(|c| Entry { kind: c[1].to_string(), at: c[2].parse().unwrap(), text: c[3].to_string() })
        .collect()
}

/// Renders the report of a run that had `label` (led-va, or a lesson like
/// it) in Chromium, checks its DOM, and takes its screenshots, wide and
/// narrow, beside it.
pub fn check_led_va_in_chromium(report: &Path, label: &str) {
    let dom = chromium(report, "", &["--dump-dom"]);
    assert!(!dom.contains("<script"), "the page runs no script");
    let t = timeline(&dom, label);
    let find = |kind: &str, text: &str, after: f64| {
        t.iter()
            .find(|e| e.kind == kind && e.text.contains(text) && e.at >= after)
            .unwrap_or_else(|| panic!("no {kind} entry {text:?} at or after {after} s in {t:#?}"))
    };
    // The steps in order, the click, its interrupt and the LED it lit.
    let insmod = find("step", "insmod", 0.0);
    let press = find("step", "press: board click K1", insmod.at);
    let pressed = find("button", "K1 pressed (step press)", press.at);
    // The LED is lit inside the handler, and "handled" is stamped when the
    // handler returns: the two may share a millisecond in either order, so
    // both are looked for from the press (CI saw the LED 1 ms first).
    find("interrupt", "XEINT26 handled", pressed.at);
    let lit = find("led", "LED4 on (step press)", pressed.at);
    find("button", "K1 released (step press)", lit.at);
    find("step", "toggled: checks the board is LED2 on, LED4 on (exit 0", lit.at);
    find("led", "LED4 off (step press-again)", lit.at);
    find("step", "rmmod", lit.at);
    // The verdict, an expectation that held, the reports' section.
    let start = dom.find(&format!("<h2>{label} ")).unwrap();
    let section = &dom[start..start + dom[start..].find("</section>").unwrap()];
    assert!(section.starts_with(&format!("<h2>{label} <span class=\"outcome passed\">✔ PASSED</span>")), "{section}");
    assert!(section.contains("✔ held</span> toggled finds the board with LED2 on, LED4 on"), "{section}");
    assert!(section.contains("<h3>Kernel reports</h3><p>None.</p>"), "{section}");
    assert!(section.contains("<summary><code>key_led.c</code>"), "the module's source: {section}");
    // The unit's own link (#uK) shows it alone: its screenshots, wide and
    // narrow, are of its timeline, whatever units came before it.
    let k = &dom[..start].rsplit_once("<section class=\"unit\" id=\"").expect("the unit's section").1;
    let fragment = format!("#{}", &k[..k.find('"').unwrap()]);
    for (name, size) in [("report.png", "1100,1600"), ("report-narrow.png", "420,2400")] {
        let shot = report.with_file_name(name);
        let args = [format!("--screenshot={}", shot.display()), format!("--window-size={size}")];
        chromium(report, &fragment, &args.iter().map(String::as_str).collect::<Vec<_>>());
        shows_the_click_its_interrupt_and_the_led(&shot);
    }
}

/// The screenshot shows a button's entry, then an interrupt's, then an
/// LED's, top to bottom: their timeline entries are told apart by the
/// colour of their left border (report.css: button #2050c0, interrupt
/// #7a30b0, led #d4a000, 3 px wide; a section's outline, 2 px, or a rule,
/// long, is not one).
fn shows_the_click_its_interrupt_and_the_led(shot: &Path) {
    let file = std::fs::File::open(shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(frame.bit_depth, png::BitDepth::Eight, "{}", shot.display());
    let (width, step) = (frame.width as usize, frame.color_type.samples());
    let rows = |rgb: [u8; 3]| -> Vec<usize> {
        (0..frame.height as usize)
            .filter(|y| {
                let row = &pixels[y * frame.line_size..][..width * step];
                let same: Vec<bool> = row.chunks(step).map(|p| p[..3] == rgb).collect();
                same.chunk_by(|a, b| a == b).any(|run| run[0] && (3..10).contains(&run.len()))
            })
            .collect()
    };
    let (button, interrupt, led) = (rows([0x20, 0x50, 0xc0]), rows([0x7a, 0x30, 0xb0]), rows([0xd4, 0xa0, 0x00]));
    let what = format!("{}: button rows {button:?}, interrupt rows {interrupt:?}, led rows {led:?}", shot.display());
    let pressed = *button.first().unwrap_or_else(|| panic!("no button entry in {what}"));
    let handled = *interrupt.iter().find(|y| **y > pressed).unwrap_or_else(|| panic!("no interrupt after it: {what}"));
    assert!(led.iter().any(|y| *y > handled), "no LED change after the interrupt: {what}");
}

/// The page of a boot in which unit `label`'s insmod printed a kernel
/// report of `class`, read in Chromium: the report is on the unit's
/// timeline at or after its insmod step, marked failed, and linked to its
/// console line, which the page has and marks as a report's.
pub fn check_a_kernel_report_in_chromium(report: &Path, label: &str, class: &str) {
    let dom = chromium(report, "", &["--dump-dom"]);
    let t = timeline(&dom, label);
    let insmod = t.iter().find(|e| e.kind == "step" && e.text.starts_with("insmod ")).expect("an insmod step");
    let said = format!("{class} in step insmod: ");
    let entry = t.iter().find(|e| e.kind == "report" && e.text.starts_with(&said) && e.at >= insmod.at);
    entry.unwrap_or_else(|| panic!("no report {said:?} at or after {} s in {t:#?}", insmod.at));
    let start = dom.find(&format!("<h2>{label} ")).unwrap();
    let section = &dom[start..start + dom[start..].find("</section>").unwrap()];
    let link =
        regex::Regex::new(r##"data-kind="report">.*?<span class="flag">✘ </span><a href="#(u[0-9]+-L[0-9]+)">"##);
    let anchor = link.unwrap().captures(section).unwrap_or_else(|| panic!("no failed, linked report in {section}"))[1]
        .to_string();
    assert!(section.contains(&format!(r#"<div class="l report" id="{anchor}">"#)), "no console line {anchor}");
}
