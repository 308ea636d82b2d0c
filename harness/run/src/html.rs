//! The run's one-page report, `report.html` (rendered by the judge's
//! html.rs): written in the run directory, and where `check --report`
//! says. The module's sources and each unit's `coverage.info` are read
//! here, each bounded: a module folder is the user's, and may hold anything.

use crate::judge::expect::Expectations;
use crate::judge::html::{self, lcov::Tracefile, SourceFile};
use crate::judge::step::Transcript;
use crate::judge::verdict::Verdict;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The report's name in the run directory.
pub const FILE: &str = "report.html";

/// Source files shown of one unit, the bytes of one, of all of them, and
/// of the tracefile: a module's sources are a few files of a few KiB; past
/// these it is not a module folder the page can show whole.
const MAX_FILES: usize = 64;
const MAX_FILE_BYTES: u64 = 256 << 10;
const MAX_TOTAL_BYTES: usize = 2 << 20;
const MAX_COVERAGE_BYTES: u64 = 16 << 20;
/// How deep under a module folder sources are looked for (`src/lib.rs`).
const MAX_DEPTH: usize = 3;

/// What the page says of the whole run.
pub struct Run<'a> {
    pub title: &'a str,
    pub profile: &'a str,
    pub kernel_release: &'a str,
}

/// One unit of the run: its verdict, its stretch of the console and its
/// expectations (none for a unit that did not build), and the folders of
/// its sources.
pub struct UnitForPage<'a> {
    pub label: &'a str,
    pub verdict: &'a Verdict,
    pub transcript: Option<&'a Transcript>,
    pub expectations: Option<&'a Expectations>,
    pub dirs: Vec<PathBuf>,
}

/// Writes `report.html` in `run_dir`, each unit with the coverage of its
/// own `coverage.info` if it has one; returns its path.
pub fn write(run_dir: &Path, run: &Run, units: &[UnitForPage]) -> Result<PathBuf> {
    let path = run_dir.join(FILE);
    write_page(&path, run, units, run_dir)?;
    Ok(path)
}

/// Writes the page at `file` too (`--report`), from the same run directory.
pub fn write_to(file: &Path, run_dir: &Path, run: &Run, units: &[UnitForPage]) -> Result<()> {
    write_page(file, run, units, run_dir)
}

fn write_page(path: &Path, run: &Run, units: &[UnitForPage], run_dir: &Path) -> Result<()> {
    // Each unit's own tracefile, as its verdict names it: several units of
    // one boot each have one in their directory (unit-N-NAME/), and one
    // unit's counters are not another's, even of a module of the same name.
    let coverage: Vec<Option<Tracefile>> = units
        .iter()
        .map(|u| match u.verdict.coverage.as_ref().and_then(|c| c.info.as_deref()) {
            Some(info) => read_coverage(&run_dir.join(info)),
            None => Ok(None),
        })
        .collect::<Result<_>>()?;
    let sources: Vec<Vec<SourceFile>> = units.iter().map(|u| read_sources(&u.dirs)).collect();
    let (none, defaults) = (Transcript::default(), Expectations::defaults());
    let page = html::Page {
        title: run.title,
        profile: run.profile,
        kernel_release: run.kernel_release,
        units: units
            .iter()
            .zip(&sources)
            .zip(&coverage)
            .map(|((u, sources), coverage)| html::UnitPage {
                label: u.label,
                verdict: u.verdict,
                transcript: u.transcript.unwrap_or(&none),
                expectations: u.expectations.unwrap_or(&defaults),
                sources,
                coverage: coverage.as_ref(),
            })
            .collect(),
    };
    std::fs::write(path, html::render(&page))
        .with_context(|| format!("writing the report {} (is its folder there and writable?)", path.display()))
}

/// The run's tracefile, if it has one.
fn read_coverage(path: &Path) -> Result<Option<Tracefile>> {
    let Ok(meta) = std::fs::metadata(path) else { return Ok(None) };
    anyhow::ensure!(
        meta.len() <= MAX_COVERAGE_BYTES,
        "{}: {} bytes, past the {} a module's coverage takes: remove it or give a smaller one",
        path.display(),
        meta.len(),
        MAX_COVERAGE_BYTES
    );
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(Tracefile::parse(&String::from_utf8_lossy(&bytes))))
}

/// The C and Rust sources under the unit's folders (kbuild's generated
/// `*.mod.c` and hidden files left out), relative to their folder, bounded.
fn read_sources(dirs: &[PathBuf]) -> Vec<SourceFile> {
    let mut found = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for dir in dirs.iter().filter(|d| seen.insert(d.to_path_buf())) {
        walk(dir, dir, 0, &mut found);
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found.dedup_by(|a, b| a.path == b.path);
    let mut total = 0;
    found.retain(|f| {
        total += f.text.len();
        total <= MAX_TOTAL_BYTES
    });
    found.truncate(MAX_FILES);
    found
}

fn walk(root: &Path, dir: &Path, depth: usize, found: &mut Vec<SourceFile>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(kind) = e.file_type() else { continue };
        if name.starts_with('.') || name.ends_with(".mod.c") || found.len() >= MAX_FILES * 2 {
            continue;
        }
        let path = e.path();
        if kind.is_dir() && depth < MAX_DEPTH && name != "target" {
            walk(root, &path, depth + 1, found);
        } else if kind.is_file() && [".c", ".h", ".rs"].iter().any(|x| name.ends_with(x)) {
            let small = e.metadata().is_ok_and(|m| m.len() <= MAX_FILE_BYTES);
            let text = small.then(|| std::fs::read(&path).ok()).flatten();
            if let (Some(text), Ok(rel)) = (text, path.strip_prefix(root)) {
                let text = String::from_utf8_lossy(&text).into_owned();
                found.push(SourceFile { path: rel.to_string_lossy().into_owned(), text });
            }
        }
    }
}
