//! QEMU's console pipe: one of the two places that read serial bytes (the
//! other is `replay/link.rs`, a board's serial line).
//!
//! A thread reads the guest's console pipe, appends every byte to the run's
//! console log as it arrives (so a log exists even if the harness is killed),
//! and hands complete lines to the supervisor over a channel. The supervisor
//! never blocks on the pipe: it waits on the channel with a deadline.

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
    pub fn start<R: Read + Send + 'static>(mut pipe: R, log_path: &Path) -> Result<ConsoleReader> {
        let mut log =
            File::create(log_path).with_context(|| format!("creating console log {}", log_path.display()))?;
        // Bounded: a slow supervisor slows the reader, then QEMU (a full
        // pipe), instead of lines piling up in memory.
        let (tx, rx) = mpsc::sync_channel(LINES_IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("console".into())
            .spawn(move || {
                let mut splitter = LineSplitter::default();
                let mut buf = [0u8; 4096];
                loop {
                    let n = match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    // The log is best effort: a full disk must not stop the run.
                    let _ = log.write_all(&buf[..n]);
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

/// The longest line kept in memory. A guest that prints without a newline
/// (a program writing to the console, line noise) cannot grow one without
/// bound: past this the line is cut, and the rest is in the console log only.
pub const MAX_LINE: usize = 64 << 10;

/// Cuts a byte stream into lines. Serial consoles emit `\r\n`, sometimes a
/// bare `\r`, and occasionally bytes that are not UTF-8 (line noise, a wrong
/// baud rate): those are replaced rather than dropped, so they stay visible.
/// A line longer than [`MAX_LINE`] bytes is cut, and says so.
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
    /// Bytes of the current line past [`MAX_LINE`], not kept.
    cut: usize,
}

impl LineSplitter {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.take(&rest[..i]);
                    out.push(self.line());
                    rest = &rest[i + 1..];
                }
                None => {
                    self.take(rest);
                    rest = &[];
                }
            }
        }
        out
    }

    fn take(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.pending.len()).min(bytes.len());
        self.pending.extend_from_slice(&bytes[..room]);
        self.cut += bytes.len() - room;
    }

    fn line(&mut self) -> String {
        let mut text = Self::text(&std::mem::take(&mut self.pending));
        if self.cut > 0 {
            text.push_str(&format!(" [harness: line cut at {MAX_LINE} bytes; {} more are in the console log]", self.cut));
            self.cut = 0;
        }
        text
    }

    pub fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| self.line())
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).trim_end_matches('\r').replace('\r', "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn splits_across_reads_and_cleans_carriage_returns() {
        let mut s = LineSplitter::default();
        assert_eq!(s.feed(b"[ 1.0] hel"), Vec::<String>::new());
        assert_eq!(s.feed(b"lo\r\nwor"), vec!["[ 1.0] hello"]);
        assert_eq!(s.feed(b"ld\n\xff\xfe\r\n"), vec!["world", "\u{fffd}\u{fffd}"]);
        assert_eq!(s.feed(b"tail"), Vec::<String>::new());
        assert_eq!(s.finish(), Some("tail".into()));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn a_line_without_end_is_cut_and_says_so() {
        let mut s = LineSplitter::default();
        let chunk = vec![b'x'; 10_000];
        for _ in 0..10 {
            assert!(s.feed(&chunk).is_empty());
        }
        let lines = s.feed(b"y\nnext\n");
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with(&"x".repeat(100)));
        assert!(lines[0].ends_with(&format!("[harness: line cut at {MAX_LINE} bytes; {} more are in the console log]", 100_001 - MAX_LINE)), "{}", &lines[0][MAX_LINE - 10..]);
        assert_eq!(lines[1], "next", "the next line is whole");
    }

    #[test]
    fn reader_logs_bytes_and_reports_close() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        let r = ConsoleReader::start(&b"one\r\ntwo\npartial"[..], &log).unwrap();
        let mut got = Vec::new();
        loop {
            match r.lines.recv_timeout(Duration::from_secs(5)).unwrap() {
                ConsoleMsg::Line(l) => got.push(l),
                ConsoleMsg::Closed => break,
            }
        }
        r.join();
        assert_eq!(got, vec!["one", "two", "partial"]);
        assert_eq!(std::fs::read(&log).unwrap(), b"one\r\ntwo\npartial");
    }
}
