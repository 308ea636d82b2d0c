//! Line coverage of the module's C sources (`check --coverage`): the `.gcda`
//! files the guest sends over the console, and what gcov made of them.
//!
//! The guest (`harness_coverage` in rootfs/steps.sh) sends each file as
//! marker lines of the run (marker.rs, the protocol's owner): `gcda BYTES
//! SHA256 PATH`, its base64 in `gcdata` lines, `gcda-end SHA256`. A file is
//! taken only whole: its decoded bytes are exactly BYTES and hash to SHA256,
//! and its end came. The nonce keeps a module's printk from opening or
//! feeding a transfer; the size and hash refuse a line the console lost or
//! one that came twice. Every buffer is bounded: a file's declared size,
//! the files' total and their number.
//!
//! What gcov said of each source ([`Coverage`]) goes in the verdict, the
//! JSON and the run's lcov file. Coverage is information: it never fails a
//! run.

use crate::marker::Marker;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// The largest `.gcda` file taken (a module's is a few KiB: 16 bytes a
/// counter, a few counters a basic block).
pub const MAX_FILE: u64 = 1 << 20;
/// The most bytes and files taken from one run.
pub const MAX_TOTAL: u64 = 8 << 20;
pub const MAX_FILES: usize = 256;

/// A `.gcda` file as it came: its path in the guest (the object's path
/// when it was built, `.gcda` for `.o`), and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcdaFile {
    pub path: String,
    pub data: Vec<u8>,
}

/// The transfers of one run, as their markers come.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transfers {
    pub files: Vec<GcdaFile>,
    /// Each transfer not taken, and why (a sentence naming the file).
    pub refused: Vec<String>,
    /// The guest said its kernel has no gcov in debugfs.
    pub no_gcov: bool,
    open: Option<Open>,
    total: u64,
    stray: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Open {
    path: String,
    bytes: u64,
    sha256: String,
    data: Vec<u8>,
    /// Set at the first fault; the rest of the transfer is skipped.
    fault: Option<String>,
}

impl Transfers {
    /// Takes one marker of the run; any other than the coverage's is
    /// ignored. True for a line of a file's transfer (`gcda`, `gcdata`,
    /// `gcda-end`), which is not kept as a console line.
    pub fn on(&mut self, marker: &Marker) -> bool {
        match marker {
            Marker::Gcda { bytes, sha256, path } => {
                self.cut("another file began before its end");
                let fault = if *bytes > MAX_FILE {
                    Some(format!("it says {bytes} bytes, over the bound of {MAX_FILE}"))
                } else if self.total + bytes > MAX_TOTAL || self.files.len() >= MAX_FILES {
                    Some(format!("the run's files are over the bound of {MAX_TOTAL} bytes or {MAX_FILES} files"))
                } else {
                    None
                };
                let (path, sha256, bytes) = (path.clone(), sha256.clone(), *bytes);
                self.open = Some(Open { path, bytes, sha256, data: Vec::new(), fault });
            }
            Marker::GcdaData { text } => match &mut self.open {
                Some(o) if o.fault.is_none() => o.feed(text),
                Some(_) => {}
                // Said once, however many come (a board without sha256sum
                // sends its lines after a malformed start).
                None if !self.stray => {
                    self.stray = true;
                    self.refused.push("coverage data lines came outside any file: ignored".into())
                }
                None => {}
            },
            Marker::GcdaEnd { sha256 } => {
                if let Some(o) = self.open.take() {
                    self.close(o, sha256);
                }
            }
            Marker::GcdaSkip { bytes, path } => {
                self.refused.push(format!("{path}: the guest did not send it ({bytes} bytes, over its bound)"))
            }
            Marker::GcovNone => self.no_gcov = true,
            _ => {}
        }
        matches!(marker, Marker::Gcda { .. } | Marker::GcdaData { .. } | Marker::GcdaEnd { .. })
    }

    /// The console ended: a transfer still open was cut short.
    pub fn finish(&mut self) {
        self.cut("the console ended before its end");
    }

    fn cut(&mut self, why: &str) {
        if let Some(o) = self.open.take() {
            self.refused.push(format!("{}: refused, truncated ({why}; {} of {} bytes)", o.path, o.data.len(), o.bytes));
        }
    }

    fn close(&mut self, o: Open, end_sha: &str) {
        let got = hex(&Sha256::digest(&o.data));
        let fault = o.fault.clone().or_else(|| {
            if o.data.len() as u64 != o.bytes {
                Some(format!("truncated or padded: {} bytes came of the {} it says", o.data.len(), o.bytes))
            } else if got != o.sha256 || end_sha != o.sha256 {
                Some("its SHA-256 is not the one it says: a line was lost, repeated or forged".to_string())
            } else {
                None
            }
        });
        match fault {
            Some(f) => self.refused.push(format!("{}: refused, {f}", o.path)),
            None => {
                self.total += o.bytes;
                self.files.push(GcdaFile { path: o.path, data: o.data });
            }
        }
    }
}

impl Open {
    fn feed(&mut self, text: &str) {
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(bytes) if self.data.len() as u64 + bytes.len() as u64 <= self.bytes => self.data.extend(bytes),
            Ok(_) => self.fault = Some(format!("more bytes came than the {} it says", self.bytes)),
            Err(e) => self.fault = Some(format!("a line is not base64 ({e})")),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The coverage of a run (one unit's module folder): per source file, and
/// what was refused or missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// The lcov file, relative to the run directory (`coverage.info`).
    pub info: Option<String>,
    pub files: Vec<FileCoverage>,
    /// Transfers refused, and other reasons a file has no numbers.
    pub notes: Vec<String>,
}

/// One source file of the module folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileCoverage {
    /// Relative to the module folder.
    pub file: String,
    /// Lines with code, and of those the lines that ran.
    pub lines: u32,
    pub lines_ran: u32,
    pub functions: Vec<FunctionCoverage>,
    /// Each line with code and how many times it ran, in line order.
    pub line_counts: Vec<(u32, u64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCoverage {
    pub name: String,
    pub start_line: u32,
    pub end_line: u32,
    /// Times it was entered.
    pub count: u64,
}

impl FileCoverage {
    pub fn percent(&self) -> u32 {
        if self.lines == 0 {
            return 0;
        }
        (u64::from(self.lines_ran) * 100 / u64::from(self.lines)) as u32
    }

    pub fn never_ran(&self) -> impl Iterator<Item = &FunctionCoverage> {
        self.functions.iter().filter(|f| f.count == 0)
    }
}

impl fmt::Display for FileCoverage {
    /// `covmisc.c: 14 of 22 lines ran (63%); never ran: covmisc_read (lines 17–26)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} of {} lines ran ({}%)", self.file, self.lines_ran, self.lines, self.percent())?;
        let never: Vec<String> =
            self.never_ran().map(|g| format!("{} (lines {}\u{2013}{})", g.name, g.start_line, g.end_line)).collect();
        if !never.is_empty() {
            write!(f, "; never ran: {}", never.join(", "))?;
        }
        Ok(())
    }
}

/// gcov's `--json-format` document (gcc 9 and later), the parts read here.
#[derive(Debug, Deserialize)]
struct GcovJson {
    files: Vec<GcovFile>,
}

#[derive(Debug, Deserialize)]
struct GcovFile {
    file: String,
    #[serde(default)]
    functions: Vec<GcovFunction>,
    #[serde(default)]
    lines: Vec<GcovLine>,
}

#[derive(Debug, Deserialize)]
struct GcovFunction {
    #[serde(default)]
    demangled_name: Option<String>,
    name: String,
    start_line: u32,
    end_line: u32,
    execution_count: u64,
}

#[derive(Debug, Deserialize)]
struct GcovLine {
    line_number: u32,
    count: u64,
}

/// A file's lines and their counts; its functions by start line and name.
type Lines = BTreeMap<u32, u64>;
type Functions = BTreeMap<(u32, String), FunctionCoverage>;

/// The files of gcov's JSON `documents` that lie in the module folder,
/// whose path as built was `built_in` (kernel headers' inline functions and
/// kbuild's generated `.mod.c` are left out), merged by file: a line's
/// counts add up, a function's too.
pub fn from_gcov_json(documents: &[String], built_in: &str) -> anyhow::Result<Vec<FileCoverage>> {
    let prefix = format!("{}/", built_in.trim_end_matches('/'));
    let mut by_file: BTreeMap<String, (Lines, Functions)> = BTreeMap::new();
    for doc in documents {
        let parsed: GcovJson = serde_json::from_str(doc).map_err(|e| anyhow::anyhow!("reading gcov's JSON: {e}"))?;
        for f in parsed.files {
            let Some(rel) = f.file.strip_prefix(&prefix).or_else(|| (!f.file.starts_with('/')).then_some(&f.file))
            else {
                continue;
            };
            if rel.ends_with(".mod.c") || rel.starts_with("../") {
                continue;
            }
            let (lines, functions) = by_file.entry(rel.to_string()).or_default();
            for l in f.lines {
                *lines.entry(l.line_number).or_default() += l.count;
            }
            for g in f.functions {
                let name = g.demangled_name.unwrap_or(g.name);
                let e = functions.entry((g.start_line, name.clone())).or_insert(FunctionCoverage {
                    name,
                    start_line: g.start_line,
                    end_line: g.end_line,
                    count: 0,
                });
                e.count += g.execution_count;
            }
        }
    }
    Ok(by_file
        .into_iter()
        .map(|(file, (lines, functions))| FileCoverage {
            file,
            lines: lines.len() as u32,
            lines_ran: lines.values().filter(|&&c| c > 0).count() as u32,
            functions: functions.into_values().collect(),
            line_counts: lines.into_iter().collect(),
        })
        .collect())
}

/// The files as an lcov tracefile (geninfo's format, which genhtml and
/// editors read): SF paths relative to the module folder.
pub fn lcov(test_name: &str, files: &[FileCoverage]) -> String {
    let mut s = String::new();
    for f in files {
        s.push_str(&format!("TN:{test_name}\nSF:{}\n", f.file));
        for g in &f.functions {
            s.push_str(&format!("FN:{},{}\n", g.start_line, g.name));
        }
        for g in &f.functions {
            s.push_str(&format!("FNDA:{},{}\n", g.count, g.name));
        }
        let hit = f.functions.iter().filter(|g| g.count > 0).count();
        s.push_str(&format!("FNF:{}\nFNH:{hit}\n", f.functions.len()));
        for (line, count) in &f.line_counts {
            s.push_str(&format!("DA:{line},{count}\n"));
        }
        s.push_str(&format!("LF:{}\nLH:{}\nend_of_record\n", f.lines, f.lines_ran));
    }
    s
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.files {
            writeln!(f, "  {file}")?;
        }
        for n in &self.notes {
            writeln!(f, "  {n}")?;
        }
        if let Some(info) = &self.info {
            writeln!(f, "  lcov: {info} in the run directory (genhtml reads it)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(t: &mut Transfers, path: &str, data: &[u8]) -> Vec<Marker> {
        let sha = hex(&Sha256::digest(data));
        let b64 = base64::engine::general_purpose::STANDARD.encode(data);
        let mut m = vec![Marker::Gcda { bytes: data.len() as u64, sha256: sha.clone(), path: path.into() }];
        for chunk in b64.as_bytes().chunks(76) {
            m.push(Marker::GcdaData { text: String::from_utf8(chunk.to_vec()).unwrap() });
        }
        m.push(Marker::GcdaEnd { sha256: sha });
        for x in &m {
            t.on(x);
        }
        m
    }

    #[test]
    fn a_whole_transfer_is_taken() {
        let data: Vec<u8> = (0..400u32).map(|i| (i * 7) as u8).collect();
        let mut t = Transfers::default();
        send(&mut t, "/run/module/covmisc.gcda", &data);
        t.finish();
        assert_eq!(t.files, vec![GcdaFile { path: "/run/module/covmisc.gcda".into(), data }]);
        assert!(t.refused.is_empty(), "{:?}", t.refused);
    }

    #[test]
    fn a_lost_repeated_or_forged_line_is_refused() {
        let data: Vec<u8> = (0..400u32).map(|i| (i * 13) as u8).collect();
        let mut sent = Transfers::default();
        let markers = send(&mut sent, "/m/a.gcda", &data);
        // A line lost: fewer bytes than said.
        let mut lost = markers.clone();
        lost.remove(2);
        // A line repeated: more bytes than said.
        let mut twice = markers.clone();
        twice.insert(2, markers[2].clone());
        // A line changed, its length kept: the hash differs.
        let mut forged = markers.clone();
        let Marker::GcdaData { text } = &markers[1] else { panic!() };
        let mut t = text.clone().into_bytes();
        t[0] = if t[0] == b'A' { b'B' } else { b'A' };
        forged[1] = Marker::GcdaData { text: String::from_utf8(t).unwrap() };
        for (what, ms) in [("lost", lost), ("twice", twice), ("forged", forged)] {
            let mut t = Transfers::default();
            for m in &ms {
                t.on(m);
            }
            t.finish();
            assert!(t.files.is_empty(), "{what}: taken");
            assert!(t.refused.len() == 1 && t.refused[0].starts_with("/m/a.gcda: refused"), "{what}: {:?}", t.refused);
        }
    }

    #[test]
    fn a_cut_or_oversized_transfer_is_refused_without_keeping_it() {
        let mut t = Transfers::default();
        let markers = send(&mut Transfers::default(), "/m/a.gcda", &[1u8; 300]);
        for m in &markers[..3] {
            t.on(m);
        }
        t.finish();
        assert!(t.files.is_empty() && t.refused[0].contains("truncated"), "{:?}", t.refused);

        let mut t = Transfers::default();
        t.on(&Marker::Gcda { bytes: MAX_FILE + 1, sha256: "00".into(), path: "/m/big.gcda".into() });
        t.on(&Marker::GcdaData { text: "AAAA".into() });
        t.on(&Marker::GcdaEnd { sha256: "00".into() });
        assert!(t.files.is_empty() && t.refused[0].contains("over the bound"), "{:?}", t.refused);
        assert!(t.open.is_none());
    }

    const JSON: &str = r#"{"format_version":"1","gcc_version":"12.2.0","files":[
      {"file":"/run/module/covmisc.c","functions":[
        {"name":"covmisc_open","demangled_name":"covmisc_open","start_line":10,"end_line":14,"execution_count":2,
         "blocks":1,"blocks_executed":1,"start_column":1,"end_column":1},
        {"name":"covmisc_read","demangled_name":"covmisc_read","start_line":17,"end_line":26,"execution_count":0,
         "blocks":3,"blocks_executed":0,"start_column":1,"end_column":1}],
       "lines":[{"line_number":11,"count":2,"function_name":"covmisc_open","unexecuted_block":false,"branches":[]},
                {"line_number":13,"count":2,"unexecuted_block":false,"branches":[]},
                {"line_number":18,"count":0,"unexecuted_block":true,"branches":[]},
                {"line_number":25,"count":0,"unexecuted_block":true,"branches":[]}]},
      {"file":"/kernel/include/linux/fs.h","functions":[],"lines":[{"line_number":3,"count":1}]},
      {"file":"/run/module/covmisc.mod.c","functions":[],"lines":[{"line_number":3,"count":1}]}]}"#;

    #[test]
    fn gcov_json_becomes_the_module_files_lines_and_functions() {
        let files = from_gcov_json(&[JSON.to_string()], "/run/module").unwrap();
        assert_eq!(files.len(), 1, "headers and .mod.c left out: {files:?}");
        let f = &files[0];
        assert_eq!((f.file.as_str(), f.lines, f.lines_ran), ("covmisc.c", 4, 2));
        assert_eq!(f.to_string(), "covmisc.c: 2 of 4 lines ran (50%); never ran: covmisc_read (lines 17\u{2013}26)");
        let info = lcov("covmisc", &files);
        assert!(info.starts_with("TN:covmisc\nSF:covmisc.c\nFN:10,covmisc_open\nFN:17,covmisc_read\n"), "{info}");
        assert!(info.contains("FNDA:0,covmisc_read\n") && info.contains("DA:18,0\n") && info.contains("DA:11,2\n"));
        assert!(info.ends_with("LF:4\nLH:2\nend_of_record\n"), "{info}");
    }
}
