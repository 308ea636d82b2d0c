//! `check --shell`: driven through a pseudo-terminal as a user would, and
//! refused where there is no terminal.

use crate::common::{harness, text};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The harness binary on a fresh pseudo-terminal, and everything it wrote.
struct OnTerminal {
    child: Child,
    master: std::fs::File,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl OnTerminal {
    fn start(args: &[&str]) -> OnTerminal {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty fills two fds; no name, termios or size given.
        let r =
            unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
        assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds are ours alone from here.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let child = Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
            .args(args)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("running the harness binary");
        let master = std::fs::File::from(master);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().unwrap(), Arc::clone(&seen));
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO when the harness and its children close the slave.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        OnTerminal { child, master, seen }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Waits until what the terminal shows, from byte `from` on, matches.
    fn wait_for(&self, from: usize, what: &regex::Regex, within: Duration) -> usize {
        let end = Instant::now() + within;
        loop {
            let t = self.text();
            if let Some(m) = what.find(&t[from.min(t.len())..]) {
                return from + m.end();
            }
            assert!(Instant::now() < end, "no {what} within {within:?}; the terminal showed:\n{t}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_line(&mut self, line: &str) {
        self.master.write_all(format!("{line}\r").as_bytes()).unwrap();
    }
}

impl Drop for OnTerminal {
    fn drop(&mut self) {
        // A failed test must not leave the harness (and its QEMU) running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn re(s: &str) -> regex::Regex {
    regex::Regex::new(s).unwrap()
}

/// The user gets the guest's shell with the module loaded, types commands
/// and reads their output, and leaving the shell runs the rest of the
/// scenario: rmmod prints the module's exit line and the verdict is PASSED.
#[test]
fn the_shell_takes_typed_commands_with_the_module_loaded_and_leaving_gives_the_verdict() {
    let mut t = OnTerminal::start(&["check", "--shell"]);
    let at = t.wait_for(0, &re(r"leave it with exit"), Duration::from_secs(240));
    let at = t.wait_for(at, &re(r"# "), Duration::from_secs(30));
    t.type_line("echo $((6*7))");
    let at = t.wait_for(at, &re(r"\n42\r?\n"), Duration::from_secs(30));
    t.type_line("grep -c '^mmc_byte ' /proc/modules");
    let at = t.wait_for(at, &re(r"\n1\r?\n"), Duration::from_secs(30));
    // A line longer than the relay's burst (64 bytes) arrives whole.
    let long = "x".repeat(300);
    t.type_line(&format!("echo {long} | wc -c"));
    let at = t.wait_for(at, &re(r"\n301\r?\n"), Duration::from_secs(30));
    t.type_line("exit");
    t.wait_for(at, &re(r"verdict: PASSED"), Duration::from_secs(120));
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = t.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "the harness did not exit after the verdict:\n{}", t.text());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0), "{}", t.text());
    let shown = t.text();
    assert!(
        !shown.contains("shell open") && !shown.contains("shell closed"),
        "the shell markers are not shown: {shown}"
    );
}

/// Without a terminal (a CI job), `--shell` is refused at once, in one line.
#[test]
fn without_a_terminal_the_shell_is_refused_in_one_line() {
    let started = Instant::now();
    // The module named: from the test's directory (harness/, no module
    // folder) the default would be said on a line of its own.
    let kmod = crate::common::repo().join("kmod");
    let out = harness(&["check", "--shell", "--module", kmod.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert_eq!(t.trim().lines().count(), 1, "{t}");
    assert!(t.contains("--shell needs a terminal"), "{t}");
    assert!(started.elapsed() < Duration::from_secs(10), "not at once: {:?}", started.elapsed());
}

/// `--shell-on-failure`: a module whose init fails gets the shell right
/// after insmod (the step that failed, not before the unload), and leaving
/// it gives the FAILED verdict; a module that passes gets no shell at all.
#[test]
fn the_shell_on_failure_opens_at_the_failing_step_and_only_there() {
    let enomem = crate::common::fixture("faults/enomem");
    let mut t = OnTerminal::start(&["check", "--shell-on-failure", "--module", enomem.to_str().unwrap()]);
    // A verdict first would mean no shell was opened: fail at once.
    let at = t.wait_for(0, &re(r"leave it with exit|verdict: "), Duration::from_secs(240));
    assert!(t.text().contains("leave it with exit"), "no shell at the failing step:\n{}", t.text());
    let at = t.wait_for(at, &re(r"# "), Duration::from_secs(30));
    // The step that failed is insmod: nothing was unloaded yet, and the
    // init's -ENOMEM left no module.
    t.type_line("echo modules=$(grep -c fault_enomem /proc/modules)");
    let at = t.wait_for(at, &re(r"\nmodules=0\r?\n"), Duration::from_secs(30));
    t.type_line("exit");
    t.wait_for(at, &re(r"verdict: FAILED"), Duration::from_secs(120));
    let end = Instant::now() + Duration::from_secs(30);
    while t.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "the harness did not exit after the verdict:\n{}", t.text());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(t.child.try_wait().unwrap().and_then(|s| s.code()), Some(1), "{}", t.text());

    let t = OnTerminal::start(&["check", "--shell-on-failure"]);
    t.wait_for(0, &re(r"verdict: PASSED"), Duration::from_secs(240));
    assert!(!t.text().contains("leave it with exit"), "a passing run opened a shell:\n{}", t.text());
}
