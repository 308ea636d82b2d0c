use super::*;
use crate::marker::with_nonce;
use crate::verdict::{judge, Context, RunEnd};

const N: &str = "00000000000000ff";

/// A run of the key lesson's shape: insmod, a click whose interrupt lit
/// LED4, a check of it, a WARNING in a frame of the module, rmmod.
const LOG: &str = "[    1.000000] @@harness begin insmod\n\
    [    1.100000] key_led: <script>alert(1)</script> & LED2 on\n\
    [    1.200000] @@harness end insmod rc=0\n\
    [    2.000000] @@harness begin press\n\
    [    2.010000] @@harness board 2.010000 K1 pressed\n\
    [    2.011000] @@harness board 2.011000 XEINT26 handled 0.1 ms after the edge\n\
    [    2.012000] @@harness board 2.012000 LED4 on\n\
    [    2.110000] @@harness board 2.110000 K1 released\n\
    [    2.200000] @@harness end press rc=0\n\
    [    3.000000] @@harness begin rmmod\n\
    [    3.100000] ------------[ cut here ]------------\n\
    [    3.100001] WARNING: CPU: 0 PID: 1 at key.c:9 key_exit+0x10/0x20 [key]\n\
    [    3.100002] ---[ end trace 0000000000000000 ]---\n\
    [    3.200000] @@harness end rmmod rc=0\n\
    [    3.300000] @@harness done\n";

const EXPECT: &str = "[[step]]\nname='insmod'\n[[step]]\nname='press'\nclick='K1'\n[[step]]\nname='rmmod'\n";

fn run() -> (Transcript, Expectations, Verdict) {
    let t = Transcript::from_log(&with_nonce(LOG, N), N);
    let exp = Expectations::parse(EXPECT, "expect.toml").unwrap();
    let planned: Vec<String> = ["insmod", "press", "rmmod"].map(String::from).to_vec();
    let mut v = judge(&t, &exp, &planned, RunEnd::Completed, Context::new("console.log".into()));
    // The frame as symbols.rs resolves it, to the module's source.
    let line = crate::lines::SourceLine { function: "key_exit".into(), file: "key.c".into(), line: 9 };
    v.events[0].frames =
        vec![crate::event::SourceFrame { frame: "key_exit+0x10/0x20 [key]".into(), lines: vec![line] }];
    (t, exp, v)
}

fn page(t: &Transcript, exp: &Expectations, v: &Verdict, sources: &[SourceFile], cov: Option<&Tracefile>) -> String {
    let unit = UnitPage { label: "<b>key</b>", verdict: v, transcript: t, expectations: exp, sources, coverage: cov };
    render(&Page { title: "<b>key</b>", profile: "exynos4210", kernel_release: "6.12", units: vec![unit] })
}

fn source() -> Vec<SourceFile> {
    let text = (1..=12).map(|n| format!("line {n} <x>")).collect::<Vec<_>>().join("\n");
    vec![SourceFile { path: "key.c".into(), text }]
}

/// printk text, console bytes, module names and sources come out escaped:
/// a `<script>` in printk text is text on the page, never a script.
#[test]
fn untrusted_text_is_escaped() {
    let (t, exp, v) = run();
    let html = page(&t, &exp, &v, &source(), None);
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; LED2 on"), "{html}");
    assert!(!html.contains("<b>key</b>") && html.contains("&lt;b&gt;key&lt;/b&gt;"), "{html}");
    assert!(html.contains("line 3 &lt;x&gt;"), "{html}");
    // Self-contained: nothing fetched.
    for remote in ["<script", "src=", "<link", "@import", "url("] {
        assert!(!html.contains(remote), "{remote} in the page");
    }
}

/// The timeline has the steps, the press, the interrupt, the LED and the
/// report in the guest's time, each with its kind as a word.
#[test]
fn the_timeline_has_steps_board_changes_and_reports_in_time() {
    let (t, exp, v) = run();
    let entries = timeline::entries(
        &UnitPage { label: "", verdict: &v, transcript: &t, expectations: &exp, sources: &[], coverage: None },
        &|n| format!("#L{n}"),
    );
    let said: Vec<(String, &str)> =
        entries.iter().map(|e| (format!("{:.3}", e.at.unwrap_or(-1.0)), e.kind.word())).collect();
    let want = [
        ("1.000", "step"),
        ("2.000", "step"),
        ("2.010", "button"),
        ("2.011", "interrupt"),
        ("2.012", "led"),
        ("2.110", "button"),
        ("3.000", "step"),
        ("3.100", "report"),
    ];
    assert_eq!(said, want.map(|(t, k)| (t.to_string(), k)).to_vec(), "{entries:#?}");
    assert!(entries[1].text.contains("press: board click K1"), "{entries:#?}");
    assert_eq!(entries[4].text, "LED4 on (step press)");
    assert!(entries[7].bad && entries[7].link.as_deref() == Some("#L11"), "{entries:#?}");
    let html = page(&t, &exp, &v, &[], None);
    assert!(html.contains("[INTERRUPT]") && html.contains("XEINT26 handled 0.1 ms after the edge"), "{html}");
}

/// Our markers are folded away in the console, the report's lines marked,
/// and the report's frame linked to its line in the source.
#[test]
fn markers_fold_reports_stand_out_and_frames_link_to_the_source() {
    let (t, exp, v) = run();
    let html = page(&t, &exp, &v, &source(), None);
    assert!(html.contains("<summary>8 harness markers</summary>"), "{html}");
    assert!(html.contains(r#"class="l report" id="u0-L12""#), "{html}");
    assert!(html.contains(r##"<a href="#u0-s0-L9">key.c:9</a>"##), "{html}");
    assert!(html.contains(r#"id="u0-s0-L9" class=" at-frame""#), "{html}");
    assert!(html.contains("No coverage in this run"), "{html}");
}

/// With a coverage.info (fixtures/coverage/key.info, written by hand as
/// lcov writes it), the source shows each line as run or never run, and
/// the functions never called.
#[test]
fn coverage_marks_lines_that_ran_and_never_ran() {
    let (t, exp, v) = run();
    let info = std::fs::read_to_string(crate::repo_root().join("fixtures/coverage/key.info")).unwrap();
    let cov = Tracefile::parse(&info);
    let html = page(&t, &exp, &v, &source(), Some(&cov));
    assert!(html.contains("key.c</code> — 3 of 5 lines ran (60%)"), "{html}");
    assert!(html.contains("✘ never ran: key_read (line 7)"), "{html}");
    assert!(html.contains(r#"id="u0-s0-L2" class="hit"><td class="n">2</td><td class="cov">✔ 4×"#), "{html}");
    assert!(html.contains(r#"id="u0-s0-L7" class="miss"><td class="n">7</td><td class="cov">✘ never"#), "{html}");
}

/// A flooding console is cut to its first and last lines, and says so.
#[test]
fn a_large_console_is_cut_and_says_so() {
    let mut log = String::from("@@harness begin insmod\n");
    for n in 0..3 * text::CONSOLE_LINES {
        log.push_str(&format!("[    1.000000] flood {n}\n"));
    }
    log.push_str("@@harness end insmod rc=0\n@@harness done\n");
    let t = Transcript::from_log(&with_nonce(&log, N), N);
    let exp = Expectations::parse("[[step]]\nname='insmod'\n", "e").unwrap();
    let v = judge(&t, &exp, &["insmod".into()], RunEnd::Completed, Context::new("log".into()));
    let html = page(&t, &exp, &v, &[], None);
    let cut = 3 * text::CONSOLE_LINES + 3 - text::CONSOLE_LINES;
    assert!(html.contains(&format!("{cut} left out; console.log has them all")), "{}", &html[..2000]);
    assert!(html.contains("flood 0\n") || html.contains("flood 0<"), "the start is kept");
    assert!(html.contains(&format!("flood {}<", 3 * text::CONSOLE_LINES - 1)), "the end is kept");
    assert!(!html.contains(&format!("flood {}<", text::CONSOLE_LINES)), "the middle is not");
    assert!(html.len() < 2 << 20, "{} bytes", html.len());
}

/// A background program: its start, and its end at the step that stopped
/// it, on the timeline; a SIGINT's status is no failure when the file gave
/// no `exit` for it.
#[test]
fn a_background_program_starts_and_is_stopped_on_the_timeline() {
    let log = "[    1.000000] @@harness begin app\n[    1.100000] @@harness end app rc=0\n\
        [    2.000000] @@harness begin collect\n[    2.500000] @@harness stopped collect int\n\
        [    2.600000] @@harness end collect rc=130\n[    2.700000] @@harness done\n";
    let t = Transcript::from_log(&with_nonce(log, N), N);
    let exp = Expectations::parse(
        "[[step]]\nname='app'\nrun='app /dev/x'\nbackground=true\n[[step]]\nname='collect'\nstop='app'\n",
        "e",
    )
    .unwrap();
    let v = judge(&t, &exp, &["app".into(), "collect".into()], RunEnd::Completed, Context::new("log".into()));
    let u = UnitPage { label: "", verdict: &v, transcript: &t, expectations: &exp, sources: &[], coverage: None };
    let entries = timeline::entries(&u, &|n| format!("#L{n}"));
    let said: Vec<(&str, &str, bool)> = entries.iter().map(|e| (e.kind.word(), e.text.as_str(), e.bad)).collect();
    assert_eq!(
        said,
        [
            ("step", "app: starts `app /dev/x` in the background (exit 0, 0.10 s)", false),
            ("program", "app starts in the background: app /dev/x", false),
            ("step", "collect: stops app (exit 130, 0.60 s)", false),
            ("program", "app stopped by SIGINT (step collect)", false),
        ]
    );
}

/// The expectations that failed come first, those that held fold under
/// their count.
#[test]
fn failed_expectations_come_first_and_held_ones_fold() {
    let (t, exp, mut v) = run();
    v.checks[3].held = false;
    v.checks[3].detail = Some("exit 1 <i>".into());
    let html = page(&t, &exp, &v, &[], None);
    let failed = html.find("✘ failed</span> press exits 0<br><span class=\"detail\">exit 1 &lt;i&gt;</span>");
    let failed = failed.unwrap_or_else(|| panic!("{html}"));
    let held = html.find("<summary>✔ ").expect("the held ones' fold");
    assert!(failed < held, "{html}");
    let n = v.checks.iter().filter(|c| c.held).count();
    assert!(html.contains(&format!("<summary>✔ {n} of {} held</summary>", v.checks.len())), "{html}");
}
