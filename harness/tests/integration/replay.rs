//! `replay` and `recheck` without a board: end to end against an emulated
//! FriendlyARM board (the small vexpress-a9 kernel under QEMU, serial on a pty,
//! busybox init asking to press Enter), and the failures of a bad serial
//! line against a bare pty pair that a thread feeds.

use crate::common::{self, repo, text};
use harness::guest::emulated::EmulatedBoard;
use harness::judge::verdict::Outcome;
use harness::replay::link::Link;
use harness::replay::shell::{BoardShell, Login};
use harness::replay::{self, RecheckOptions, ReplayOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The vexpress-a9 machine (its UART takes input) with the small kernel: the
// same machine, console and cores as the `vexpress-a9` profile (a unit test
// in profile.rs holds them equal), for a cold build a quarter smaller; a
// replay needs no network, storage or display.
const PROFILE: &str = "vexpress-a9-small";

fn board() -> EmulatedBoard {
    EmulatedBoard::start(PROFILE, Duration::from_secs(60)).unwrap_or_else(|e| panic!("emulated board: {e:#}"))
}

/// A replay on `pty` of the module in `dir` (or none: --ko / --board-path),
/// against the small vexpress-a9 kernel, waiting `prompt` seconds for a shell.
fn options(pty: &Path, dir: Option<PathBuf>, prompt: u64) -> ReplayOptions {
    let mut o = ReplayOptions::new(pty.to_path_buf());
    o.profile = Some(PROFILE.into());
    o.module.module_dirs = dir.into_iter().collect();
    o.limits.prompt = prompt;
    o
}

/// A 3.5-style lesson of fixtures/lessons/, replayed as written for the
/// board's kernel.
fn lesson(pty: &Path, name: &str) -> ReplayOptions {
    let mut o = options(pty, Some(repo().join("fixtures/lessons").join(name)), 120);
    o.module.api = Some(harness::api::Api::Linux35);
    o
}

/// The replay's report; a replay that could not run fails the test.
fn replayed(opts: &ReplayOptions) -> replay::ReplayReport {
    replay::replay(opts).unwrap_or_else(|e| panic!("replay could not run: {e:#}"))
}

fn held(v: &harness::judge::verdict::Verdict, description: &str) {
    let c =
        v.checks.iter().find(|c| c.description == description).unwrap_or_else(|| panic!("no check {description}: {v}"));
    assert!(c.held, "{description}: {v}");
}

/// Runs one command on the board through the harness's own shell code.
fn on_board(pty: &Path, cmd: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let link = Link::open(pty, 115200, &dir.path().join("probe.log")).unwrap();
    let login = Login { user: "root".into(), password: None };
    let mut shell = BoardShell::attach(link, &login, Duration::from_secs(60), 42).unwrap_or_else(|e| panic!("{e:#}"));
    let a = shell.run(cmd, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e:#}"));
    a.output.trim().to_string()
}

/// The whole replay against the emulated board: a shell from "Please press
/// Enter", the copy (base64 here), insmod/rmmod, PASSED with the module's
/// lines, a transcript that `recheck` judges the same, and a board left as
/// found; then a module already on the board, and the printf copy through
/// the binary.
#[test]
fn replay_on_the_emulated_board_passes_and_recheck_agrees() {
    let board = board();
    let dir = tempfile::tempdir().unwrap();
    let transcript = dir.path().join("board.log");
    let mut opts = options(&board.pty, Some(repo().join("kmod")), 120);
    opts.transcript = Some(transcript.clone());
    // Kept for the module it built, used again below.
    opts.output.keep = true;
    let started = Instant::now();
    let report = replayed(&opts);
    let v = &report.verdict;
    assert_eq!(v.outcome, Outcome::Passed, "{v}");
    held(v, "insmod prints line \"process:insmod\"");
    held(v, "rmmod prints line \"mmc exit!\"");
    held(v, "gone exits 0");
    let steps: Vec<&str> = v.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(steps, ["census", "insmod", "rmmod", "gone", "insmod#2", "rmmod#2", "gone#2", "census#2"]);
    held(v, "insmod#2 prints line \"process:insmod\"");
    held(v, "nothing left behind after rmmod");
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    eprintln!("replay took {:.1} s", started.elapsed().as_secs_f64());

    // Every byte received is in the transcript, the dump among them.
    let raw = std::fs::read(&transcript).unwrap();
    assert_eq!(report.transcript, transcript);
    let shown = String::from_utf8_lossy(&raw);
    assert!(shown.contains("@@DMESG0@@") && shown.contains("@@DMESGEND0@@"), "no dump in the transcript");
    assert!(shown.contains("base64 -d >> /tmp/harness-mmc_byte.ko"), "the copy went another way");

    // Offline, the same verdict, word for word.
    let module = harness::options::ModuleArgs { module_dirs: vec![repo().join("kmod")], ..Default::default() };
    let again = replay::recheck(&RecheckOptions {
        transcript: Some(transcript.clone()),
        lava: Default::default(),
        module,
        module_names: vec![],
        ko: vec![],
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(again.to_string(), v.to_string());
    let out = common::harness(&["recheck", "--transcript", transcript.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), v.to_string());

    // Left as found: module gone, no harness files, kmsg limit restored.
    assert_eq!(on_board(&board.pty, "grep -c '^mmc_byte ' /proc/modules"), "0");
    assert_eq!(on_board(&board.pty, "ls /tmp | grep -c '^harness-'"), "0");
    assert_eq!(on_board(&board.pty, "cat /proc/sys/kernel/printk_devkmsg"), "ratelimit");

    // A module the user put on the board (SD card, NFS): --board-path, with
    // the local --ko for its name and symbols; nothing is copied, and the
    // user's file stays.
    let run_dir = report.run_dir.clone().expect("kept");
    let ko = run_dir.join("module/mmc_byte.ko");
    {
        let link = Link::open(&board.pty, 115200, &dir.path().join("copy.log")).unwrap();
        let login = Login { user: "root".into(), password: None };
        let mut shell = BoardShell::attach(link, &login, Duration::from_secs(60), 7).unwrap();
        let tools = harness::replay::transfer::detect(&mut shell, None).unwrap();
        harness::replay::transfer::copy(&mut shell, &std::fs::read(&ko).unwrap(), "/root/mmc_byte.ko", tools).unwrap();
    }
    let second = dir.path().join("second.log");
    let mut opts = options(&board.pty, None, 60);
    opts.ko = vec![ko];
    opts.board_path = Some("/root/mmc_byte.ko".into());
    opts.transcript = Some(second.clone());
    // --coverage on a board whose kernel has no gcov (this one's, as
    // FriendlyARM's 3.5): the board is asked, and its answer said plainly.
    opts.module.coverage = true;
    let report = replayed(&opts);
    assert_eq!(report.verdict.outcome, Outcome::Passed, "{}", report.verdict);
    held(&report.verdict, "rmmod prints line \"mmc exit!\"");
    let coverage = report.verdict.coverage.as_ref().expect("--coverage's result");
    assert!(coverage.files.is_empty() && coverage.notes.len() == 1, "{coverage:?}");
    assert!(coverage.notes[0].starts_with("the board's kernel has no gcov"), "{coverage:?}");
    assert!(report.verdict.to_string().contains("the board's kernel has no gcov"), "{}", report.verdict);
    // The line editor wraps the echo of long commands at 80 columns.
    let raw = String::from_utf8_lossy(&std::fs::read(&second).unwrap()).replace(['\r', '\n'], "");
    assert!(!raw.contains(">> /tmp/harness-mmc_byte.ko"), "the module was copied again");
    assert_eq!(on_board(&board.pty, "ls /root/mmc_byte.ko"), "/root/mmc_byte.ko");
    std::fs::remove_dir_all(&run_dir).unwrap();
    the_printf_transfer_through_the_cli_passes(&board.pty);

    board.stop().unwrap();
    common::assert_no_qemu_children();
}

/// The printf transfer (old busyboxes without base64), through the binary
/// as `scripts/board-replay` runs it, on the same board: exit 0 and the
/// printed verdict.
fn the_printf_transfer_through_the_cli_passes(pty: &Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
        .args(["replay", "--serial"])
        .arg(pty)
        .args(["--profile", PROFILE, "--transfer", "printf", "--prompt-timeout", "120"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("printf, gzipped where it helps, checked with md5sum"), "{t}");
    assert!(t.contains("PASS  insmod prints line \"process:insmod\""), "{t}");
    assert!(t.contains("PASS  rmmod prints line \"mmc exit!\""), "{t}");
    assert!(String::from_utf8_lossy(&out.stdout).trim_end().ends_with("verdict: PASSED"), "{t}");
}

/// A module that panics the kernel: CRASHED, as `check` says it, although
/// the board stops answering (the emulated board, like a real one, stays
/// at the panic).
#[test]
fn replay_of_a_panicking_module_is_crashed() {
    let board = board();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&board.pty, Some(common::fixture("faults/panic")), 120);
    opts.transcript = Some(dir.path().join("board.log"));
    let report = replayed(&opts);
    let v = &report.verdict;
    assert_eq!(v.outcome, Outcome::Crashed, "{v}");
    assert_eq!(v.end, harness::judge::verdict::RunEnd::Panicked, "{v}");
    assert!(v.reason.as_deref().unwrap().starts_with("kernel panic during step insmod"), "{v}");
    assert!(report.notes.iter().any(|n| n.contains("reset the board")), "{:?}", report.notes);
    recheck_agrees_with_the_live_watch(&report, "faults/panic");
    if let Some(d) = &report.run_dir {
        std::fs::remove_dir_all(d).unwrap();
    }
    board.stop().unwrap();
    common::assert_no_qemu_children();
}

/// An init that never returns: TIMED-OUT on the step deadline; the shell
/// comes back with Ctrl-C, and the module that cannot be unloaded is said so.
#[test]
fn replay_of_a_hanging_init_times_out_on_the_step() {
    let board = board();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&board.pty, Some(common::fixture("faults/init-hang")), 120);
    opts.transcript = Some(dir.path().join("board.log"));
    opts.limits.step = 15;
    let started = Instant::now();
    let report = replayed(&opts);
    let v = &report.verdict;
    assert_eq!(v.outcome, Outcome::TimedOut, "{v}");
    assert_eq!(v.reason.as_deref(), Some("step insmod did not finish within 15 s"), "{v}");
    assert!(v.to_string().contains("fault_init_hang: init will never return"), "{v}");
    assert!(started.elapsed() < Duration::from_secs(120), "took {:?}", started.elapsed());
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("fault_init_hang") && (n.contains("second rmmod") || n.contains("reset the board"))),
        "{:?}",
        report.notes
    );
    // The clean-up's Ctrl-C, rmmod and their kernel lines came after the
    // watch stopped: recheck leaves them out as the live verdict did.
    recheck_agrees_with_the_live_watch(&report, "faults/init-hang");
    if let Some(d) = &report.run_dir {
        std::fs::remove_dir_all(d).unwrap();
    }
    board.stop().unwrap();
    common::assert_no_qemu_children();
}

/// A replay that stopped early has no dump: `recheck` judges the saved
/// console lines, as many as the live watch saw, with the end it recorded,
/// and gives the live verdict word for word; without the record it refuses.
fn recheck_agrees_with_the_live_watch(report: &replay::ReplayReport, fixture: &str) {
    let module = harness::options::ModuleArgs { module_dirs: vec![common::fixture(fixture)], ..Default::default() };
    let kos: Vec<PathBuf> = report
        .run_dir
        .iter()
        .flat_map(|d| std::fs::read_dir(d.join("module")).into_iter().flatten())
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ko"))
        .collect();
    let opts = RecheckOptions {
        transcript: Some(report.transcript.clone()),
        lava: Default::default(),
        module,
        module_names: vec![],
        ko: kos,
    };
    let again = replay::recheck(&opts).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(again.to_string(), report.verdict.to_string());
    let record = replay::recheck::Stopped::path(&report.transcript);
    std::fs::remove_file(&record).unwrap();
    let e = replay::recheck(&opts).unwrap_err().to_string();
    assert!(e.contains("only its live verdict exists"), "{e}");
}

/// A pty pair standing in for a USB serial adapter: the test holds the
/// master (the "board" end) and the replay opens the slave by its path.
struct FakeLine {
    master: i32,
    slave: i32,
    path: PathBuf,
    stop: Arc<AtomicBool>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl FakeLine {
    /// `feed` is written every `every` until the line is dropped.
    fn new(feed: Option<(Vec<u8>, Duration)>) -> FakeLine {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty fills two fds; no name, termios or size given.
        let r =
            unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
        assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: plain fcntl on our own fds. Not inherited by the harness
        // binary; the master never blocks the feeding thread.
        unsafe {
            libc::fcntl(master, libc::F_SETFD, libc::FD_CLOEXEC);
            libc::fcntl(slave, libc::F_SETFD, libc::FD_CLOEXEC);
            libc::fcntl(master, libc::F_SETFL, libc::O_NONBLOCK);
        }
        let path = std::fs::read_link(format!("/proc/self/fd/{slave}")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writer = feed.map(|(bytes, every)| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    // SAFETY: writing our buffer to our fd; EAGAIN (nobody
                    // reading) is ignored.
                    unsafe { libc::write(master, bytes.as_ptr().cast(), bytes.len()) };
                    // Drain what the replay types, as a board would read it.
                    let mut sink = [0u8; 4096];
                    unsafe { libc::read(master, sink.as_mut_ptr().cast(), sink.len()) };
                    std::thread::sleep(every);
                }
            })
        });
        FakeLine { master, slave, path, stop, writer }
    }
}

impl Drop for FakeLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        // SAFETY: closing the fds openpty gave us.
        unsafe {
            libc::close(self.slave);
            libc::close(self.master);
        }
    }
}

/// Options for a replay that needs no module build: the module is "on the
/// board" already, so the failure under test is the line's.
fn line_opts(line: &FakeLine, prompt_secs: u64, dir: &Path) -> ReplayOptions {
    let mut o = options(&line.path, None, prompt_secs);
    o.board_path = Some("/tmp/x.ko".into());
    o.module_name = Some("x".into());
    o.transcript = Some(dir.join("serial.log"));
    o
}

/// A board that never says anything: a clear error at the prompt deadline.
#[test]
fn replay_on_a_silent_line_gives_up_at_the_prompt_deadline() {
    let line = FakeLine::new(None);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err =
        format!("{:#}", replay::replay(&line_opts(&line, 3, dir.path())).err().expect("no shell on a silent line"));
    let took = started.elapsed();
    assert!(err.contains("no answer from the board on"), "{err}");
    assert!(err.contains("within 3 s: nothing was received"), "{err}");
    assert!(err.contains("the serial session is recorded in"), "{err}");
    assert!(!err.contains("run directory"), "nothing to keep: {err}");
    assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(10), "took {took:?}");
    drop(line);
    common::assert_no_qemu_children();
}

/// Boot noise that never ends in a prompt: the error says so and shows the
/// last bytes received, escaped.
#[test]
fn replay_on_noise_without_a_prompt_shows_what_was_seen() {
    let line =
        FakeLine::new(Some((b"[    1.000000] still booting, no prompt here\r\n".to_vec(), Duration::from_millis(150))));
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = format!("{:#}", replay::replay(&line_opts(&line, 4, dir.path())).err().expect("no shell in noise"));
    let took = started.elapsed();
    assert!(err.contains("no shell prompt answered within 4 s"), "{err}");
    assert!(err.contains("last bytes received: …\""), "{err}");
    assert!(err.contains("still booting, no prompt here\\r\\n"), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    drop(line);
    common::assert_no_qemu_children();
}

/// Garbage on the line (a wrong baud rate) stops the replay well before the
/// prompt deadline, through the binary: exit 2 and a message naming --baud
/// and showing the bytes.
#[test]
fn replay_on_a_garbage_line_names_the_baud_rate() {
    let garbage: Vec<u8> =
        (0..64u32).map(|i| [0x00, 0xf8, 0x80, b'x', 0xfe, 0x1e, b'~', 0x86][i as usize % 8]).collect();
    let line = FakeLine::new(Some((garbage, Duration::from_millis(50))));
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
        .args(["replay", "--serial"])
        .arg(&line.path)
        .args([
            "--board-path",
            "/tmp/x.ko",
            "--module-name",
            "x",
            "--baud",
            "9600",
            "--prompt-timeout",
            "30",
            "--transcript",
        ])
        .arg(dir.path().join("serial.log"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let took = started.elapsed();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("the serial line carries garbage"), "{t}");
    assert!(t.contains("at 9600 baud are not text") && t.contains("set it with --baud"), "{t}");
    assert!(t.contains("\\xf8\\x80x\\xfe"), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    drop(line);
    common::assert_no_qemu_children();
}

/// A lesson with a user program, replayed on the emulated board: the program
/// is copied and checked like the module, put first on PATH, and its output
/// is matched as under QEMU. The program is the input lesson's endless
/// reader, which finds its device by name (/dev/input/by-name/): it runs in
/// the background while the person at the board clicks K1, the press step
/// waits for the driver's line (`until`, by the board's dmesg), and the
/// collect step waits for the reader's line and stops it (SIGINT).
#[test]
fn replay_of_a_lesson_runs_its_app_on_the_board() {
    let board = board();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = lesson(&board.pty, "key-input");
    opts.press_within = 10;
    opts.transcript = Some(dir.path().join("board.log"));
    let json = dir.path().join("v.json");
    opts.output.json = Some(json.clone());
    opts.output.keep = true;
    let report = replayed(&opts);
    let v = &report.verdict;
    assert_eq!(v.outcome, Outcome::Passed, "{v}");
    // The run's page: the reader in the background, and stopped, on its
    // timeline (integration/report.rs reads a check's in Chromium).
    let run_dir = report.run_dir.clone().expect("--keep keeps the run directory");
    let page = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    std::fs::remove_dir_all(&run_dir).unwrap();
    assert!(page.contains("[PROGRAM]</span> <span class=\"what\">reader starts in the background: "), "{page}");
    assert!(page.contains("reader stopped by SIGINT (step collect)"), "{page}");
    held(v, "collect outputs line \"key 38 up\"");
    held(v, "press sees line \"buttons_input: K1 up\" in the kernel log within 3000 ms");
    held(v, "collect sees line \"key 38 up\" in the output of reader within 3000 ms");
    held(v, "collect stops reader");
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    // The verdict, with the replay's stage timings, as JSON.
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j["verdict"]["outcome"], "PASSED");
    assert!(j["timings"].as_array().unwrap().iter().any(|t| t[0] == "copy"), "{j}");
    // Left as found: no harness files, no programs directory.
    assert_eq!(on_board(&board.pty, "ls /tmp | grep -c '^harness-'"), "0");
    board.stop().unwrap();
    common::assert_no_qemu_children();
}

/// A `reload` step on a board (fixtures/lessons/param/reload.toml): the
/// same step library unloads the lesson and loads it again, from the file
/// the replay copied, with new parameters the next step reads back; the
/// board is left without the module and without the harness's files.
#[test]
fn replay_of_a_lesson_reloads_it_with_new_parameters() {
    let board = board();
    let mut opts = lesson(&board.pty, "param");
    opts.module.expect = Some(repo().join("fixtures/lessons/param/reload.toml"));
    let report = replayed(&opts);
    let v = &report.verdict;
    assert_eq!(v.outcome, Outcome::Passed, "{v}");
    held(v, "again exits 0");
    held(v, "again prints line \"hello_param: hello board #2\"");
    held(v, "sysfs-again outputs line \"board\"");
    held(v, "rmmod prints line \"hello_param: goodbye board\"");
    held(v, "nothing left behind after rmmod");
    assert_eq!(on_board(&board.pty, "grep -c '^hello_param ' /proc/modules"), "0");
    assert_eq!(on_board(&board.pty, "ls /tmp | grep -c '^harness-'"), "0");
    board.stop().unwrap();
    common::assert_no_qemu_children();
}

/// Board steps on a board: each asks the person at it (a prompt the replay
/// shows on its terminal) and waits for the button's pin to show it done.
/// The emulated board's person (friendlyarm-init, over the virtual board)
/// answers, so the lesson passes as under QEMU; with --unattended nobody
/// is there: the steps say they were skipped, and what they wait for fails.
/// The register-level LEDs read back, and a starved watchdog resets the
/// board, which boots again.
#[test]
fn replay_of_a_button_lesson_asks_the_person_at_the_board() {
    let board = board();
    let mut opts = lesson(&board.pty, "key-tasklet");
    opts.press_within = 10;
    let report = replayed(&opts);
    let v = &report.verdict;
    assert_eq!(v.outcome, Outcome::Passed, "{v}");
    held(v, "first prints line \"key_tasklet: K1 press 1 handled in a tasklet (in_softirq 1)\"");
    held(v, "held finds the board with K1 pressed");
    // The emulated board is the stock image (friendlyarm-init turns its
    // drivers on): K1's interrupt is its buttons driver's while
    // /dev/buttons is open, which the verdict notes.
    assert!(v.stock.iter().any(|n| n.resource == "XEINT26" && !n.refused), "{v}");

    opts.unattended = true;
    let report = replayed(&opts);
    let v = &report.verdict;
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    assert!(v.to_string().contains("skipped (--unattended): press and release K1"), "{v}");

    // A register-level LED driver: on this board too the LEDs are read back.
    let report = replayed(&lesson(&board.pty, "led-registers"));
    let v = &report.verdict;
    assert_eq!(v.outcome, Outcome::Passed, "{v}");
    held(v, "lit finds the board with LED1 on, LED2 on, LED3 on, LED4 on");

    // A watchdog starved: the board resets and boots again, as a real one
    // does; the replay sees it start over under the step that expected it.
    let report = replayed(&lesson(&board.pty, "watchdog"));
    let v = &report.verdict;
    assert_eq!(v.outcome, Outcome::Passed, "{v}");
    held(v, "starve ends in a reset by the watchdog");
    assert!(report.notes.iter().any(|n| n.contains("the board was reset under the steps")), "{:?}", report.notes);
    board.stop().unwrap();
    common::assert_no_qemu_children();
}

/// A 3.5-style module replayed on the emulated board: the verdict lists
/// what the layer gave back, and `recheck` reads the same list from the
/// transcript alone (the replay's `api` and `port` markers). Then, on the
/// same board, a module built for another kernel is refused before its
/// first step.
#[test]
fn replay_of_a_3_5_module_lists_its_ports_and_recheck_reads_them_back() {
    let board = board();
    let dir = tempfile::tempdir().unwrap();
    let transcript = dir.path().join("board.log");
    let fixture = repo().join("fixtures/api-changes/timer");
    let mut opts = options(&board.pty, Some(fixture.clone()), 120);
    opts.transcript = Some(transcript.clone());
    let report = replayed(&opts);
    let v = &report.verdict;
    assert_eq!(v.outcome, Outcome::Passed, "{v}");
    assert_eq!(v.api, "3.5");
    let ids: Vec<&str> = v.ports.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["timer"], "{v}");
    assert!(!v.ports[0].at.is_empty(), "{v}");
    let module = harness::options::ModuleArgs { module_dirs: vec![fixture], ..Default::default() };
    let again = replay::recheck(&RecheckOptions {
        transcript: Some(transcript.clone()),
        lava: Default::default(),
        module,
        module_names: vec![],
        ko: vec![],
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(again.ports, v.ports);
    assert_eq!(again.to_string(), v.to_string());
    // Without --module: the folder the replay named in the transcript, not kmod/.
    let bare = RecheckOptions {
        transcript: Some(transcript.clone()),
        lava: Default::default(),
        module: Default::default(),
        module_names: vec![],
        ko: vec![],
    };
    let found = replay::recheck(&bare).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(found.to_string(), v.to_string());
    a_module_for_another_kernel_is_refused_before_the_first_step(&board.pty);
    board.stop().unwrap();
    common::assert_no_qemu_children();
}

/// A module built for another profile's kernel than the one the board
/// runs (the default profile's, exynos4210, on the small vexpress-a9
/// kernel): the replay says so in one line before the first step, naming
/// the profile whose kernel the board runs, and loads nothing.
fn a_module_for_another_kernel_is_refused_before_the_first_step(pty: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(pty, Some(repo().join("fixtures/tutorial/mmc_byte")), 60);
    opts.profile = Some("exynos4210".into());
    opts.transcript = Some(dir.path().join("board.log"));
    let err = match replay::replay(&opts) {
        Ok(r) => panic!("a module for another kernel was replayed: {}", r.verdict),
        Err(e) => format!("{e:#}"),
    };
    let first = err.lines().next().unwrap();
    assert!(first.starts_with("mmc_byte cannot load on this board: it was built for Linux "), "{err}");
    assert!(
        first.contains("-emulated, the board runs ")
            && first.contains("insmod would refuse it (\"invalid module format\")"),
        "{err}"
    );
    assert!(
        first.ends_with(&format!("the board runs the {PROFILE} profile's kernel: build with --profile {PROFILE}")),
        "{err}"
    );
    let raw = String::from_utf8_lossy(&std::fs::read(dir.path().join("board.log")).unwrap()).into_owned();
    assert!(!raw.contains("harness_scenario"), "a step ran");
    assert_eq!(on_board(pty, "ls /tmp | grep -c '^harness-'"), "0");
}

/// A line that floods text and never shows a prompt: the replay gives up at
/// its deadline, having kept only a bounded window of what came in memory
/// (the transcript file has it all), and without rescanning it all.
#[test]
fn replay_on_a_flooding_line_keeps_a_bounded_window() {
    let hwm = || -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        s.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().split_whitespace().next().unwrap().parse().unwrap()
    };
    let before = hwm();
    let line = FakeLine::new(Some((vec![b'x'; 64 << 10], Duration::ZERO)));
    let dir = tempfile::tempdir().unwrap();
    let opts = line_opts(&line, 40, dir.path());
    let err = format!("{:#}", replay::replay(&opts).err().expect("no shell in a flood"));
    drop(line);
    assert!(err.contains("no shell prompt answered within 40 s"), "{err}");
    let received = std::fs::metadata(dir.path().join("serial.log")).unwrap().len();
    let grew = (hwm() - before) / 1024;
    eprintln!("{} MiB received, peak resident size grew by {grew} MiB", received >> 20);
    // The bound: the window's two windows of capacity, and as much again
    // that does not grow with what is received (measured: 10 MiB of growth
    // with 1.4 GiB received on a quiet machine, 15 to 16 MiB with 87 to 114
    // MiB received while a kernel built beside it), with room. Without the
    // window the buffer alone would hold everything received.
    let bound = 6 * (harness::replay::link::WINDOW as u64 >> 20);
    // Half as much again as the bound: a replay that kept it all would be
    // well past the bound.
    assert!(received >> 20 > bound + bound / 2, "the flood was too small to test the bound: {received} bytes");
    assert!(grew < bound, "the replay kept {grew} MiB");
}
