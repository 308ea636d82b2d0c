//! The board's serial line: the only place besides `console.rs` that reads
//! serial bytes. It hands the steps' watch lines ([`Lines`]); the shell's
//! protocol (`shell.rs`, `attach.rs`) and the checked copy (`transfer.rs`)
//! search its byte window, since a prompt ends in no newline.
//!
//! Every byte received is appended, raw and at once, to the session's
//! transcript file (so a transcript exists even if the harness is killed)
//! and kept in memory for the shell protocol to search. Reads never block
//! past the deadline the caller gives.

use crate::splitter::LineSplitter;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bytes written between two drains of the receive side: the board echoes
/// what it is sent, and a sender that never reads can fill every buffer on
/// the way (a pty's, QEMU's, the tty's) until both ends wait on each other.
const WRITE_PIECE: usize = 256;

pub struct Link {
    port: serialport::TTYPort,
    path: PathBuf,
    baud: u32,
    record: File,
    record_path: PathBuf,
    /// The last bytes received (at most about [`WINDOW`]); the transcript
    /// file has them all. `base` is the offset of `window[0]` in the stream.
    window: Vec<u8>,
    base: usize,
}

/// How much of the stream is kept in memory (between one and two windows):
/// a board's whole log buffer (the dmesg dump; 128 KiB to 1 MiB on these
/// kernels) fits, a board that never stops talking does not take the
/// harness's memory.
pub const WINDOW: usize = 4 << 20;

impl Link {
    /// Opens `path` at `baud` (8N1, no flow control: what the Tiny4412's
    /// console UART and U-Boot use) and records what arrives to `record`.
    pub fn open(path: &Path, baud: u32, record: &Path) -> Result<Link> {
        if !path.exists() {
            bail!("--serial {}: no such device (is the USB serial adapter plugged in?)", path.display());
        }
        let port = serialport::new(path.to_string_lossy(), baud)
            .data_bits(serialport::DataBits::Eight)
            .parity(serialport::Parity::None)
            .stop_bits(serialport::StopBits::One)
            .flow_control(serialport::FlowControl::None)
            .timeout(Duration::from_millis(100))
            .open_native()
            .map_err(|e| {
                let hint = if matches!(e.kind(), serialport::ErrorKind::Io(ErrorKind::PermissionDenied)) {
                    " (add yourself to the dialout group, or use sudo)"
                } else if matches!(e.kind(), serialport::ErrorKind::NoDevice) {
                    " (is another program, e.g. minicom or screen, using it?)"
                } else {
                    ""
                };
                anyhow::anyhow!("opening the serial port {} at {baud} baud: {e}{hint}", path.display())
            })?;
        if let Some(dir) = record.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = File::create(record).with_context(|| format!("creating the transcript {}", record.display()))?;
        // All of the window's capacity at once: it is never reallocated, so
        // a flood never holds the old buffer and a new one twice its size
        // at the same time (a peak of 16 MiB under load, in CI, the other
        // way). Its pages are touched only as bytes come.
        let window = Vec::with_capacity(2 * WINDOW);
        Ok(Link {
            port,
            path: path.to_path_buf(),
            baud,
            record: file,
            record_path: record.to_path_buf(),
            window,
            base: 0,
        })
    }

    pub fn describe(&self) -> String {
        format!("{} at {} baud", self.path.display(), self.baud)
    }

    pub fn record_path(&self) -> &Path {
        &self.record_path
    }

    /// Waits at most `wait` for bytes and takes whatever has arrived; returns
    /// how many (0: nothing within `wait`).
    pub fn read_for(&mut self, wait: Duration) -> Result<usize> {
        use serialport::SerialPort;
        self.port.set_timeout(wait).context("setting the serial read timeout")?;
        let mut buf = [0u8; 16 * 1024];
        match self.port.read(&mut buf) {
            Ok(0) => Ok(0),
            Ok(n) => {
                self.keep(&buf[..n]);
                self.record
                    .write_all(&buf[..n])
                    .with_context(|| format!("writing the transcript {}", self.record_path.display()))?;
                Ok(n)
            }
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted) => Ok(0),
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                bail!("the serial line {} hung up (adapter unplugged, or the emulator stopped)", self.describe())
            }
            Err(e) => Err(e).with_context(|| format!("reading from {}", self.describe())),
        }
    }

    /// Takes whatever has already arrived, without waiting.
    pub fn drain(&mut self) -> Result<()> {
        while self.read_for(Duration::ZERO)? > 0 {}
        Ok(())
    }

    /// Sends `bytes`, giving up after `timeout` (a line with hardware flow
    /// control asserted, or a pty nobody reads, never takes them).
    pub fn send(&mut self, bytes: &[u8], timeout: Duration) -> Result<()> {
        use serialport::SerialPort;
        let deadline = Instant::now() + timeout;
        for piece in bytes.chunks(WRITE_PIECE) {
            let mut rest = piece;
            while !rest.is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    bail!("the serial line {} took no more bytes for {} s", self.describe(), timeout.as_secs());
                }
                self.port.set_timeout(left).context("setting the serial write timeout")?;
                match self.port.write(rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(e)
                        if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                    }
                    Err(e) => return Err(e).with_context(|| format!("writing to {}", self.describe())),
                }
            }
            self.drain()?;
        }
        Ok(())
    }

    /// The last `n` bytes received, escaped, for error messages.
    pub fn tail(&self, n: usize) -> String {
        escape_tail(&self.window, n)
    }

    /// Dropping the oldest bytes before the new ones come, not after: the
    /// buffer then never outgrows two windows, its capacity from the start
    /// (a flood measured 16 MiB of peak growth the other way round, the
    /// window's reallocation to four).
    fn keep(&mut self, bytes: &[u8]) {
        if self.window.len() + bytes.len() > 2 * WINDOW {
            let drop = (self.window.len() + bytes.len()).saturating_sub(WINDOW).min(self.window.len());
            self.window.drain(..drop);
            self.base += drop;
        }
        self.window.extend_from_slice(bytes);
    }

    /// How many bytes have arrived since the port was opened: a position in
    /// the stream, for [`Link::since`].
    pub fn received(&self) -> usize {
        self.base + self.window.len()
    }

    /// The bytes received from position `from` on (from the oldest kept, if
    /// `from` is older than that).
    pub fn since(&self, from: usize) -> &[u8] {
        &self.window[from.saturating_sub(self.base).min(self.window.len())..]
    }
}

/// The lines a [`Link`] received from a position on, cut as QEMU's console
/// is (`splitter.rs`): what the steps' watch reads from a board.
pub struct Lines {
    splitter: LineSplitter,
    fed: usize,
}

impl Lines {
    /// The lines of what arrives from stream position `from` on.
    pub fn from(from: usize) -> Lines {
        Lines { splitter: LineSplitter::default(), fed: from }
    }

    /// The complete lines received since the last call.
    pub fn take(&mut self, link: &Link) -> Vec<String> {
        let lines = self.splitter.feed(link.since(self.fed));
        self.fed = link.received();
        lines
    }
}

/// The last `n` bytes of `bytes`, quoted with every non-printable byte
/// escaped (`\r`, `\n`, `\x00`, …), so garbage and line endings are visible.
pub fn escape_tail(bytes: &[u8], n: usize) -> String {
    if bytes.is_empty() {
        return "(nothing)".into();
    }
    let from = bytes.len().saturating_sub(n);
    let more = if from > 0 { "…" } else { "" };
    format!("{more}\"{}\"", bytes[from..].escape_ascii())
}

/// How many of `bytes` are not text: invalid UTF-8, or control characters a
/// console does not send (anything below 0x20 but tab, CR, LF, backspace,
/// bell and escape, and DEL). A wrong baud rate turns text into mostly such
/// bytes; a right one yields almost none, even with colour prompts.
pub fn non_text_bytes(bytes: &[u8]) -> usize {
    let mut bad = 0;
    for chunk in bytes.utf8_chunks() {
        bad += chunk.invalid().len();
        bad += chunk
            .valid()
            .chars()
            .filter(|&c| (c < ' ' && !matches!(c, '\t' | '\r' | '\n' | '\x08' | '\x07' | '\x1b')) || c == '\x7f')
            .count();
    }
    bad
}

/// `Some(percent)` when `bytes` look like a line at the wrong baud rate: at
/// least 64 bytes, of which a fifth or more are not text. (One stray byte
/// when the board resets is normal and does not count.)
pub fn garbage_percent(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < 64 {
        return None;
    }
    let bad = non_text_bytes(bytes);
    (bad * 5 >= bytes.len()).then(|| bad * 100 / bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_are_escaped_and_cut() {
        assert_eq!(escape_tail(b"", 10), "(nothing)");
        assert_eq!(escape_tail(b"ok\r\n# ", 10), "\"ok\\r\\n# \"");
        assert_eq!(escape_tail(b"0123456789\x00\xff", 4), "…\"89\\x00\\xff\"");
    }

    #[test]
    fn text_is_not_garbage_and_line_noise_is() {
        let boot = b"[    0.000000] Booting Linux on physical CPU 0x0\r\n\x1b[1;32m[root@FriendlyARM /]#\x1b[0m \
                     Please press Enter to activate this console. caf\xc3\xa9 \t\x07\x08";
        assert_eq!(non_text_bytes(boot), 0);
        assert_eq!(garbage_percent(boot), None);
        // What 115200-baud text looks like read at 9600, roughly.
        let noise: Vec<u8> =
            (0..200u32).map(|i| [0x00, 0xf8, 0x80, b'x', 0xfe, 0x1e, b'~', 0x86][i as usize % 8]).collect();
        let pct = garbage_percent(&noise).expect("garbage");
        assert!(pct >= 50, "{pct}");
        // Too few bytes to judge.
        assert_eq!(garbage_percent(&noise[..20]), None);
        // A stray byte at reset among text is fine.
        let mut mostly = boot.to_vec();
        mostly.insert(0, 0xff);
        assert_eq!(garbage_percent(&mostly), None);
    }
}
