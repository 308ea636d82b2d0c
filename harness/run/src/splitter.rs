//! The line splitter: serial bytes to console lines, bounded. Pure; fed by
//! the two readers of serial bytes, `guest/console.rs` (QEMU's pipe) and
//! `replay/link.rs` (a board's line), and by `recheck` on a saved session.

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
            text.push_str(&format!(
                " [harness: line cut at {MAX_LINE} bytes; {} more are in the console log]",
                self.cut
            ));
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

    /// Serial bytes have two readers: `replay/link.rs`, the one file that
    /// opens a serial port, and `guest/console.rs` (QEMU's pipe); they, and
    /// recheck (a saved session's bytes), are the only users of this
    /// splitter. Comments (and this file, which holds only the splitter and
    /// this test) are skipped; macro bodies are read.
    #[test]
    fn only_the_console_and_the_link_read_serial_bytes() {
        let ports = crate::code_scan::lines_naming(
            &["serialport::", "SerialPort"],
            &["run/src/replay/link.rs", "run/src/splitter.rs"],
        );
        assert!(ports.is_empty(), "a serial port opened beside link.rs: {ports:#?}");
        let readers = ["run/src/guest/console.rs", "run/src/replay/link.rs", "run/src/replay/recheck.rs"];
        let splitting =
            crate::code_scan::lines_naming(&["LineSplitter"], &[&readers[..], &["run/src/splitter.rs"]].concat());
        assert!(splitting.is_empty(), "serial bytes split beside {readers:?}: {splitting:#?}");
    }

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
        assert!(
            lines[0].ends_with(&format!(
                "[harness: line cut at {MAX_LINE} bytes; {} more are in the console log]",
                100_001 - MAX_LINE
            )),
            "{}",
            &lines[0][MAX_LINE - 10..]
        );
        assert_eq!(lines[1], "next", "the next line is whole");
    }
}
