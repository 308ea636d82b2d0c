//! QEMU's console pipe: one of the two places that read serial bytes (the
//! other is `replay/link.rs`, a board's serial line); both cut them into
//! lines with `splitter.rs`.
//!
//! A thread reads the guest's console pipe, appends every byte to the run's
//! console log as it arrives (so a log exists even if the harness is killed),
//! and hands complete lines to the supervisor over a channel. The supervisor
//! never blocks on the pipe: it waits on the channel with a deadline.

use crate::splitter::LineSplitter;
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleMsg {
    /// One line, without its line ending.
    Line(String),
    /// The pipe closed: the guest's machine is gone.
    Closed,
}

pub struct ConsoleReader {
    pub lines: Receiver<ConsoleMsg>,
    thread: Option<JoinHandle<()>>,
}

impl ConsoleReader {
    /// Starts reading `pipe` into `log_path`.
    pub fn start<R: Read + Send + 'static>(pipe: R, log_path: &Path) -> Result<ConsoleReader> {
        ConsoleReader::start_with_tee(pipe, log_path, None)
    }

    /// [`ConsoleReader::start`], also copying to stdout, as they come, the
    /// bytes between the shell's open and close markers (`tee`: those
    /// marker texts; see guest/terminal.rs).
    pub fn start_with_tee<R: Read + Send + 'static>(
        mut pipe: R,
        log_path: &Path,
        tee: Option<(String, String)>,
    ) -> Result<ConsoleReader> {
        let mut log = File::create(log_path).with_context(|| format!("creating console log {}", log_path.display()))?;
        // Bounded: a slow supervisor slows the reader, then QEMU (a full
        // pipe), instead of lines piling up in memory.
        let (tx, rx) = mpsc::sync_channel(LINES_IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("console".into())
            .spawn(move || {
                let mut splitter = LineSplitter::default();
                let mut buf = [0u8; 4096];
                let mut view = tee.map(|(open, close)| crate::guest::terminal::ShellView::new(open, close));
                loop {
                    let n = match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    // The log is best effort: a full disk must not stop the run.
                    let _ = log.write_all(&buf[..n]);
                    if let Some(view) = view.as_mut() {
                        let show = view.feed(&buf[..n]);
                        if !show.is_empty() {
                            let mut out = std::io::stdout().lock();
                            let _ = out.write_all(&show).and_then(|_| out.flush());
                        }
                    }
                    for line in splitter.feed(&buf[..n]) {
                        if tx.send(ConsoleMsg::Line(line)).is_err() {
                            return;
                        }
                    }
                }
                if let Some(rest) = splitter.finish() {
                    let _ = tx.send(ConsoleMsg::Line(rest));
                }
                let _ = log.flush();
                let _ = tx.send(ConsoleMsg::Closed);
            })
            .context("starting the console reader thread")?;
        Ok(ConsoleReader { lines: rx, thread: Some(thread) })
    }

    /// Waits for the reader to finish; call after QEMU is gone, so the pipe
    /// has closed and the log is complete.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How many lines may wait for the supervisor.
pub const LINES_IN_FLIGHT: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reader_logs_bytes_and_reports_close() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        let r = ConsoleReader::start(&b"one\r\ntwo\npartial"[..], &log).unwrap();
        let mut got = Vec::new();
        while let ConsoleMsg::Line(l) = r.lines.recv_timeout(Duration::from_secs(5)).unwrap() {
            got.push(l);
        }
        r.join();
        assert_eq!(got, vec!["one", "two", "partial"]);
        assert_eq!(std::fs::read(&log).unwrap(), b"one\r\ntwo\npartial");
    }
}
