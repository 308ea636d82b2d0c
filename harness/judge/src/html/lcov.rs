//! An lcov tracefile (`coverage.info`: `SF`, `FN`, `FNDA`, `DA` records), as
//! the report shows it beside the module's source. The file is the run's
//! own, but read as untrusted text all the same: unknown records are
//! skipped, and counts past the bounds below are dropped.

use std::collections::BTreeMap;

/// Lines past this in one file are not a module's source: ignored.
const MAX_LINE: u32 = 1_000_000;
/// Files past this many are not one module's: ignored.
const MAX_FILES: usize = 256;

/// One source file's coverage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TracedFile {
    /// `SF:` as written: relative to the module folder.
    pub path: String,
    /// Each instrumented line and how often it ran.
    pub lines: BTreeMap<u32, u64>,
    /// Each function: its first line, name and how often it was called.
    pub functions: Vec<Function>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub line: u32,
    pub name: String,
    pub calls: u64,
}

/// A tracefile's files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracefile {
    pub files: Vec<TracedFile>,
}

impl Tracefile {
    /// Reads a tracefile's text.
    pub fn parse(text: &str) -> Tracefile {
        let mut files = Vec::new();
        let mut file: Option<TracedFile> = None;
        for line in text.lines() {
            let (key, value) = line.split_once(':').unwrap_or((line.trim(), ""));
            match (key, file.as_mut()) {
                ("SF", _) if files.len() < MAX_FILES => {
                    file = Some(TracedFile { path: value.trim().to_string(), ..Default::default() });
                }
                ("FN", Some(f)) => {
                    // `FN:line,name` (lcov 1) or `FN:line,end,name` (lcov 2).
                    let mut parts = value.split(',');
                    let start = parts.next().and_then(|l| l.parse().ok()).filter(|l| *l <= MAX_LINE);
                    if let (Some(line), Some(name)) = (start, parts.next_back()) {
                        f.functions.push(Function { line, name: name.to_string(), calls: 0 });
                    }
                }
                ("FNDA", Some(f)) => {
                    if let Some((calls, name)) = value.split_once(',') {
                        let calls = calls.parse().unwrap_or(0);
                        f.functions.iter_mut().filter(|g| g.name == name).for_each(|g| g.calls += calls);
                    }
                }
                ("DA", Some(f)) => {
                    let mut parts = value.split(',');
                    let line = parts.next().and_then(|l| l.parse::<u32>().ok()).filter(|l| *l <= MAX_LINE);
                    let count = parts.next().and_then(|c| c.parse::<u64>().ok());
                    if let (Some(line), Some(count)) = (line, count) {
                        *f.lines.entry(line).or_default() += count;
                    }
                }
                ("end_of_record", _) => files.extend(file.take()),
                _ => {}
            }
        }
        files.extend(file);
        Tracefile { files }
    }

    /// The coverage of the file at `path` (relative to the module folder).
    pub fn file(&self, path: &str) -> Option<&TracedFile> {
        let path = path.trim_start_matches("./");
        self.files.iter().find(|f| f.path.trim_start_matches("./") == path)
    }
}

impl TracedFile {
    /// Lines that ran, of the instrumented lines.
    pub fn ran(&self) -> (usize, usize) {
        (self.lines.values().filter(|c| **c > 0).count(), self.lines.len())
    }

    /// `14 of 22 lines ran (64%)`.
    pub fn summary(&self) -> String {
        let (ran, of) = self.ran();
        let percent = (ran * 100).checked_div(of).unwrap_or(0);
        format!("{ran} of {of} lines ran ({percent}%)")
    }

    /// The functions never called.
    pub fn never_called(&self) -> impl Iterator<Item = &Function> {
        self.functions.iter().filter(|f| f.calls == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_lcov_1_and_2_are_read_and_nonsense_skipped() {
        let info = "TN:\nSF:./covmisc.c\nFN:10,covmisc_open\nFN:17,26,covmisc_read\nFNDA:3,covmisc_open\n\
            FNDA:0,covmisc_read\nDA:10,3\nDA:11,3\nDA:17,0\nDA:18,0,abcdef\nDA:x,1\nDA:99999999,1\nBOGUS\n\
            LF:4\nLH:2\nend_of_record\nSF:other.c\nDA:1,1\n";
        let c = Tracefile::parse(info);
        assert_eq!(c.files.len(), 2, "a last record without its end counts too");
        let f = c.file("covmisc.c").expect("./ is the module folder");
        assert_eq!(f.lines, BTreeMap::from([(10, 3), (11, 3), (17, 0), (18, 0)]));
        assert_eq!(f.summary(), "2 of 4 lines ran (50%)");
        assert_eq!(f.never_called().map(|g| (g.line, g.name.as_str())).collect::<Vec<_>>(), [(17, "covmisc_read")]);
        assert_eq!(TracedFile::default().summary(), "0 of 0 lines ran (0%)");
    }
}
