//! `check --coverage` on a module whose lines are known: the covmisc lesson
//! (fixtures/coverage/covmisc), a misc device with open, read, write and
//! release. Without a reading step its read() never runs and is listed so;
//! with one it is covered, and the unit's coverage.info loads in genhtml.
//! Both cases are two units of one boot (the lesson, and a copy of it whose
//! expect.toml is the fixture's expect-read.toml), on the default kernel
//! (which has gcov's support).

use crate::common::{check_with, fixture};
use harness::judge::gcov::{Coverage, FileCoverage};
use harness::options::CheckOptions;
use std::path::Path;

fn covmisc(c: &Coverage) -> &FileCoverage {
    c.files.iter().find(|f| f.file == "covmisc.c").unwrap_or_else(|| panic!("no covmisc.c in {c:#?}"))
}

fn runs(f: &FileCoverage, name: &str) -> u64 {
    f.functions.iter().find(|g| g.name == name).unwrap_or_else(|| panic!("no {name} in {f:#?}")).count
}

/// The lesson's folder copied to `to`, with `expect` as its expect.toml.
fn lesson_copy(to: &Path, expect: &str) {
    let from = fixture("coverage/covmisc");
    std::fs::create_dir_all(to).unwrap();
    for f in ["covmisc.c", "app.c", "Makefile"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    std::fs::copy(from.join(expect), to.join("expect.toml")).unwrap();
}

#[test]
fn coverage_lists_read_as_never_run_without_a_reader_and_covers_it_with_one() {
    let logs = harness::cache::root().join("logs");
    harness::packages::ensure(&harness::packages::for_suite(), &logs).unwrap_or_else(|e| panic!("{e:#}"));
    let tmp = tempfile::tempdir().unwrap();
    let (writer, reader) = (tmp.path().join("covmisc"), tmp.path().join("covmisc-read"));
    lesson_copy(&writer, "expect.toml");
    lesson_copy(&reader, "expect-read.toml");
    let mut o = CheckOptions::new("exynos4210", &writer);
    o.module.module_dirs.push(reader.clone());
    o.module.coverage = true;
    let json = tmp.path().join("verdict.json");
    o.output.json = Some(json.clone());
    let report = check_with(o);
    assert!(report.passed(), "{:#?}", report.units);
    let run_dir = report.run_dir.as_deref().expect("--coverage keeps the run directory");
    let unit = |label: &str| {
        let v = &report.units.iter().find(|(l, _)| l == label).unwrap_or_else(|| panic!("no unit {label}")).1;
        (v.to_string(), v.coverage.clone().unwrap_or_else(|| panic!("no coverage:\n{v}")))
    };

    let (shown, c) = unit("covmisc");
    let f = covmisc(&c);
    assert!(c.notes.is_empty(), "{:?}", c.notes);
    assert_eq!(runs(f, "covmisc_read"), 0, "{f}");
    // Opened and closed by the write step, loaded and unloaded twice (the
    // counters of both loads, the exit function's included).
    assert_eq!((runs(f, "covmisc_open"), runs(f, "covmisc_write"), runs(f, "covmisc_release")), (1, 1, 1), "{f}");
    assert_eq!((runs(f, "covmisc_init"), runs(f, "covmisc_exit")), (2, 2), "{f}");
    assert!(f.lines_ran > 0 && f.lines_ran < f.lines, "{f}");
    assert!(shown.contains("never ran: covmisc_read (lines 24\u{2013}"), "{shown}");
    let info = std::fs::read_to_string(run_dir.join(c.info.as_deref().expect("an lcov file"))).unwrap();
    assert!(info.contains("SF:covmisc.c\n") && info.contains("FNDA:0,covmisc_read\n"), "{info}");

    // The other unit's module has the same name and sources: its counters
    // are its own (built in its own folder, so a .gcda of its own).
    let (_, c) = unit("covmisc-read");
    let f = covmisc(&c);
    assert_eq!(runs(f, "covmisc_read"), 1, "{f}");
    assert_eq!(runs(f, "covmisc_open"), 2, "{f}");
    assert!(!f.to_string().contains("covmisc_read"), "{f}");
    let info = run_dir.join(c.info.as_deref().expect("an lcov file"));
    genhtml(&info, &reader, &run_dir.join("coverage-html"));
    page_shows_each_units_coverage(&run_dir.join("report.html"));
    json_says_the_same(&json);
}

/// `--json`'s coverage key says what the verdict says: the file, its line
/// counts, covmisc_read's count (0 for the writer, 1 for the reader), and
/// the unit's lcov file.
fn json_says_the_same(path: &Path) {
    let all: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let read_count = |module: &str| {
        let unit = all.as_array().unwrap().iter().find(|r| r["module"] == module);
        let c = &unit.unwrap_or_else(|| panic!("no {module} in {all:#}"))["verdict"]["coverage"];
        let f = c["files"].as_array().and_then(|f| f.iter().find(|f| f["file"] == "covmisc.c"));
        let f = f.unwrap_or_else(|| panic!("no covmisc.c in {c:#}"));
        assert!(f["lines_ran"].as_u64() <= f["lines"].as_u64() && f["line_counts"].as_array().is_some(), "{f:#}");
        assert!(c["info"].as_str().is_some_and(|i| i.ends_with("/coverage.info")), "{c:#}");
        let read = f["functions"].as_array().unwrap().iter().find(|g| g["name"] == "covmisc_read");
        read.unwrap_or_else(|| panic!("no covmisc_read in {f:#}"))["count"].as_u64().unwrap()
    };
    assert_eq!((read_count("covmisc"), read_count("covmisc-read")), (0, 1), "{all:#}");
}

/// The run's report.html shows each unit's own coverage beside its source
/// (each unit's coverage.info is in its own directory, unit-N-NAME/): the
/// writer's read() never ran, the reader's did.
fn page_shows_each_units_coverage(page: &Path) {
    let html = std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
    let section = |k: usize| {
        let start =
            html.find(&format!("<section class=\"unit\" id=\"u{k}\">")).unwrap_or_else(|| panic!("no unit {k}"));
        let rest = &html[start..];
        rest[..rest.find("</section>").unwrap()].to_string()
    };
    let (writer, reader) = (section(0), section(1));
    for s in [&writer, &reader] {
        assert!(s.contains("<summary><code>covmisc.c</code> — ") && s.contains(" lines ran ("), "{s}");
        assert!(!s.contains("No coverage in this run"), "{s}");
    }
    assert!(writer.contains("✘ never ran: covmisc_read (line 24)"), "{writer}");
    assert!(!reader.contains("never ran: covmisc_read"), "{reader}");
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
    let page = out.join("covmisc-read/covmisc.c.gcov.html");
    let html = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}\n{text}", page.display()));
    assert!(html.contains("covmisc_read"), "{html}");
}
