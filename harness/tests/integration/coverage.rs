//! `check --coverage` on a module whose lines are known: the covmisc lesson
//! (fixtures/coverage/covmisc), a misc device with open, read, write and
//! release. Without a reading step its read() never runs and is listed so;
//! with one it is covered, and the run's coverage.info loads in genhtml.
//! Both runs use the exynos4210-coverage kernel (one build, cached).

use crate::common::{check_with, fixture};
use harness::judge::gcov::{Coverage, FileCoverage};
use harness::options::CheckOptions;
use std::path::Path;

fn covered(expect: Option<&str>) -> (harness::check::CheckReport, Coverage) {
    let dir = fixture("coverage/covmisc");
    let mut o = CheckOptions::new("exynos4210", &dir);
    o.module.coverage = true;
    o.module.expect = expect.map(|e| dir.join(e));
    let report = check_with(o);
    assert!(report.passed(), "{}", report.verdict);
    let coverage = report.verdict.coverage.clone().unwrap_or_else(|| panic!("no coverage:\n{}", report.verdict));
    (report, coverage)
}

fn covmisc(c: &Coverage) -> &FileCoverage {
    c.files.iter().find(|f| f.file == "covmisc.c").unwrap_or_else(|| panic!("no covmisc.c in {c:#?}"))
}

fn runs(f: &FileCoverage, name: &str) -> u64 {
    f.functions.iter().find(|g| g.name == name).unwrap_or_else(|| panic!("no {name} in {f:#?}")).count
}

#[test]
fn coverage_lists_read_as_never_run_when_no_step_reads() {
    let (report, c) = covered(None);
    let f = covmisc(&c);
    assert!(c.notes.is_empty(), "{:?}", c.notes);
    assert_eq!(runs(f, "covmisc_read"), 0, "{f}");
    // Opened and closed by the write step, loaded and unloaded twice (the
    // counters of both loads, the exit function's included).
    assert_eq!((runs(f, "covmisc_open"), runs(f, "covmisc_write"), runs(f, "covmisc_release")), (1, 1, 1), "{f}");
    assert_eq!((runs(f, "covmisc_init"), runs(f, "covmisc_exit")), (2, 2), "{f}");
    assert!(f.lines_ran > 0 && f.lines_ran < f.lines, "{f}");
    let shown = report.verdict.to_string();
    assert!(shown.contains("never ran: covmisc_read (lines 24\u{2013}"), "{shown}");
    let run_dir = report.run_dir.as_deref().expect("--coverage keeps the run directory");
    let info = std::fs::read_to_string(run_dir.join("coverage.info")).unwrap();
    assert!(info.contains("SF:covmisc.c\n") && info.contains("FNDA:0,covmisc_read\n"), "{info}");
}

#[test]
fn coverage_covers_read_when_a_step_reads_and_its_lcov_loads_in_genhtml() {
    let logs = harness::cache::root().join("logs");
    harness::packages::ensure(&harness::packages::for_suite(), &logs).unwrap_or_else(|e| panic!("{e:#}"));
    let (report, c) = covered(Some("expect-read.toml"));
    let f = covmisc(&c);
    assert_eq!(runs(f, "covmisc_read"), 1, "{f}");
    assert_eq!(runs(f, "covmisc_open"), 2, "{f}");
    assert!(!f.to_string().contains("covmisc_read"), "{f}");
    let run_dir = report.run_dir.as_deref().expect("--coverage keeps the run directory");
    genhtml(&run_dir.join("coverage.info"), &fixture("coverage/covmisc"), &run_dir.join("coverage-html"));
}

/// genhtml reads `info` (its SF paths relative to the module folder `src`)
/// and writes its report into `out`.
fn genhtml(info: &Path, src: &Path, out: &Path) {
    let o = std::process::Command::new("genhtml")
        .arg("--output-directory")
        .arg(out)
        .arg(info)
        .current_dir(src)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running genhtml");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "genhtml refused {}:\n{text}", info.display());
    // The index names the folder genhtml ran in; its page, the file's.
    let page = out.join("covmisc/covmisc.c.gcov.html");
    let html = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}\n{text}", page.display()));
    assert!(html.contains("covmisc_read"), "{html}");
}
