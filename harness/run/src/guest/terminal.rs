//! The user's terminal, lent to the guest's shell (`check --shell`): raw
//! while the run lasts (restored on every path by [`RawTerminal`]'s drop),
//! its keystrokes relayed to QEMU's serial input at a pace smdkc210's UART
//! keeps up with, and the guest's console shown between the shell's
//! markers (guest/console.rs's tee).
//!
//! The pace is measured (QEMU 7.2, smdkc210, the `exynos4210` kernel, a
//! 4,224-byte paste into `cat` with echo off, each case once): written in
//! one go, or 256 bytes every 50 ms, only the last 128 bytes arrive; 128
//! bytes every 20 ms, 64 every 10 ms and 32 every 5 ms arrive whole. So input
//! goes in chunks of [`CHUNK`] bytes at most [`GAP`] apart: half the largest
//! burst that survived, about 3 KiB/s, and instant for typing. 200 short
//! commands typed one after another, each waiting for its output, all came
//! back (15 s).

use anyhow::{bail, Context, Result};
use nix::sys::termios::{self, SetArg, Termios};
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The largest burst of input written to the guest's UART at once.
pub const CHUNK: usize = 64;
/// The pause after each burst.
pub const GAP: Duration = Duration::from_millis(20);
/// How often the relay looks whether it should stop.
const POLL: Duration = Duration::from_millis(100);

/// `--shell` needs a terminal to lend: refused at once without one (a CI
/// job), instead of a shell nobody can type into.
pub fn require() -> Result<()> {
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        bail!("--shell needs a terminal on stdin and stdout, and this run has none (a CI job?): leave --shell out");
    }
    Ok(())
}

/// The terminal in raw mode (no line editing, no echo, no signals from ^C:
/// those are the guest shell's), put back as it was when dropped, or by
/// [`restore`] from the signal handler (a SIGTERM), which runs no drops.
pub struct RawTerminal;

/// The settings a [`RawTerminal`] replaced.
static SAVED: std::sync::Mutex<Option<Termios>> = std::sync::Mutex::new(None);

impl RawTerminal {
    pub fn enter() -> Result<RawTerminal> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).context("reading the terminal's settings")?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
        crate::process::at_interrupt(restore);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).context("making the terminal raw")?;
        Ok(RawTerminal)
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal back as a [`RawTerminal`] found it, if one is in use.
pub fn restore() {
    if let Some(saved) = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &saved);
    }
}

/// Relays the terminal's input to QEMU's serial input until stopped (see
/// [`Relay::stop`]) or either side closes.
pub struct Relay {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    pub fn start(mut to_guest: os_pipe::PipeWriter) -> Result<Relay> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("terminal".into())
            .spawn(move || relay(std::io::stdin(), &mut to_guest, &flag))
            .context("starting the terminal relay")?;
        Ok(Relay { stop, thread: Some(thread) })
    }

    /// Stops relaying and waits for the thread (at most one poll period and
    /// one burst).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copies `input` to `to_guest` in bursts of at most [`CHUNK`] bytes,
/// [`GAP`] apart, until `stop` is set or either side closes.
fn relay<I: AsFd + Read>(mut input: I, to_guest: &mut impl Write, stop: &AtomicBool) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        // A bounded wait for input, so that a stop is seen.
        let mut fds = [nix::poll::PollFd::new(input.as_fd(), nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(POLL.as_millis() as u16)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(_) => break,
        }
        let n = match input.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for chunk in buf[..n].chunks(CHUNK) {
            if to_guest.write_all(chunk).is_err() {
                return;
            }
            std::thread::sleep(GAP);
        }
    }
}

/// What of the guest's console the user sees: everything between the line
/// holding the shell's open marker and the line holding its close marker,
/// not those lines themselves. QEMU hands the console over a few bytes at a
/// time, so lines are put back together here; a partial line is shown at
/// once (a prompt has no line end), unless it begins like a printk line,
/// which may still turn out to be the close marker: that waits for its end.
/// The markers' text is marker.rs's (`marker_line`, built by check.rs); it
/// is found anywhere in a line, not only at its start, because this decides
/// only what the user sees (a prompt left without a line end runs into the
/// kernel's next line), never a verdict: the judge parses markers itself.
#[derive(Debug)]
pub struct ShellView {
    open: String,
    close: String,
    shown: bool,
    pending: Vec<u8>,
}

/// A partial line longer than this is shown (or dropped) without waiting.
const PENDING_MAX: usize = 4096;

impl ShellView {
    pub fn new(open: String, close: String) -> ShellView {
        ShellView { open, close, shown: false, pending: Vec::new() }
    }

    /// The bytes of `chunk` (and of the partial line before it) to show now.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = memchr::memchr(b'\n', &self.pending) {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let has = |m: &str| memchr::memmem::find(&line, m.as_bytes()).is_some();
            if has(&self.open) {
                self.shown = true;
            } else if has(&self.close) {
                self.shown = false;
            } else if self.shown {
                out.extend_from_slice(&line);
            }
        }
        let may_be_marker = self.pending.first() == Some(&b'[') && self.pending.len() < PENDING_MAX;
        if !may_be_marker {
            if self.shown {
                out.append(&mut self.pending);
            } else if self.pending.len() >= PENDING_MAX {
                self.pending.clear();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: &str = "@@harness ab shell open";
    const CLOSE: &str = "@@harness ab shell closed";

    /// What the guest's serial input got: each write's time and size.
    struct Uart(Vec<(std::time::Instant, usize)>);

    impl Write for Uart {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.push((std::time::Instant::now(), b.len()));
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The terminal lent is raw, and back as it was after the drop, and
    /// after `restore` alone (the signal handler's path, which runs no
    /// drops). A pseudo-terminal stands in for the user's, on stdin (each
    /// test is a process of its own under nextest; stdin is put back).
    #[test]
    fn the_terminal_is_raw_while_lent_and_put_back_on_drop_and_by_restore() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let stdin = nix::unistd::dup(std::io::stdin()).unwrap();
        nix::unistd::dup2_stdin(&pty.slave).unwrap();
        let canonical =
            || termios::tcgetattr(std::io::stdin().as_fd()).unwrap().local_flags.contains(termios::LocalFlags::ICANON);
        assert!(canonical(), "a new pseudo-terminal edits lines");
        let raw = RawTerminal::enter().unwrap();
        assert!(!canonical(), "raw while lent");
        drop(raw);
        let after_drop = canonical();
        std::mem::forget(RawTerminal::enter().unwrap());
        assert!(!canonical(), "raw while lent");
        restore();
        let after_restore = canonical();
        nix::unistd::dup2_stdin(&stdin).unwrap();
        assert!(after_drop, "the drop left the terminal raw");
        assert!(after_restore, "restore left the terminal raw");
    }

    /// A paste arrives in one read; smdkc210's UART keeps only what comes in
    /// bursts of at most CHUNK bytes, GAP apart, so that is how it is sent.
    #[test]
    fn a_paste_reaches_the_guest_in_chunks_a_gap_apart() {
        let (input, mut paste) = os_pipe::pipe().unwrap();
        paste.write_all(&[b'x'; 10 * CHUNK + 5]).unwrap();
        drop(paste);
        let mut uart = Uart(Vec::new());
        relay(input, &mut uart, &AtomicBool::new(false));
        let sizes: Vec<usize> = uart.0.iter().map(|w| w.1).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 10 * CHUNK + 5, "{sizes:?}");
        assert!(sizes.iter().all(|n| *n <= CHUNK), "a burst over {CHUNK} bytes: {sizes:?}");
        for w in uart.0.windows(2) {
            assert!(w[1].0 - w[0].0 >= GAP, "two bursts {:?} apart", w[1].0 - w[0].0);
        }
    }

    #[test]
    fn only_what_the_shell_prints_between_the_markers_is_shown_however_the_bytes_come() {
        let console: &[u8] = b"[ 1.0] booting\r\n[ 2.0] @@harness ab shell open\r\nharness: a shell\r\n/ # ls\r\nbin \
            dev\r\n\
            [ 3.0] random: crng init done\r\n/ # exit\r\n[ 9.0] @@harness ab shell closed\r\n[ 9.1] @@harness ab \
                begin rmmod\r\n";
        let want: &[u8] = b"harness: a shell\r\n/ # ls\r\nbin dev\r\n[ 3.0] random: crng init done\r\n/ # exit\r\n";
        // In one piece, a byte at a time (as QEMU writes), and in threes.
        for size in [console.len(), 1, 3] {
            let mut v = ShellView::new(OPEN.into(), CLOSE.into());
            let shown: Vec<u8> = console.chunks(size).flat_map(|c| v.feed(c)).collect();
            assert_eq!(String::from_utf8_lossy(&shown), String::from_utf8_lossy(want), "chunks of {size}");
        }
        // A prompt (no line end) is shown at once.
        let mut v = ShellView::new(OPEN.into(), CLOSE.into());
        v.feed(b"[ 2.0] @@harness ab shell open\n");
        assert_eq!(v.feed(b"/ # "), b"/ # ");
    }

    #[test]
    fn without_a_terminal_the_shell_is_refused_in_one_line() {
        // Under nextest stdin is not a terminal.
        if std::io::stdin().is_terminal() {
            eprintln!("skipped: this test's stdin is a terminal");
            return;
        }
        let e = require().unwrap_err().to_string();
        assert!(e.contains("--shell needs a terminal") && !e.contains('\n'), "{e}");
    }
}
