//! KCIDB v5.3 (KernelCI's results database): a run's verdict as a report
//! of one checkout (the module's source), one build (the module against
//! the profile's kernel) and tests (the run, each step, each expectation,
//! the kernel's reports). Pure: the run side gives what it knows of the
//! source and writes the file. The map of our outcomes onto KCIDB's
//! statuses is docs/kcidb.md's table; [`status`] is its one source.

use crate::verdict::{Outcome, RunEnd, Verdict};
use serde_json::{json, Value};

/// KCIDB's limit on a `log_excerpt`, in bytes here (its schema counts
/// characters, never fewer).
pub const MAX_EXCERPT: usize = 16 << 10;

/// Where the report's IDs come from: `origin:local`.
pub const ORIGIN: &str = "local";

/// The module's source, as the run side found it.
#[derive(Debug, Clone)]
pub struct ModuleSource {
    /// The module folder's name.
    pub module: String,
    /// The git commit of the folder's repository (40 hex digits), if any.
    pub git_commit: Option<String>,
    pub git_url: Option<String>,
    pub git_branch: Option<String>,
    /// A hash of the folder's contents: the checkout's identity without git.
    pub content_hash: String,
}

/// The build: the module against the profile's kernel.
#[derive(Debug, Clone)]
pub struct Build {
    pub profile: String,
    pub kernel_release: String,
    pub compiler: String,
    /// RFC 3339, when the run began.
    pub start_time: Option<String>,
}

/// The KCIDB status of a run with this outcome and end (the table in
/// docs/kcidb.md). A crash is the tested code's fault (FAIL, its kernel
/// report test says which); a hang leaves the code's status unknown
/// (ERROR); hardware the emulated board lacks makes the run not applicable
/// (SKIP); a module that did not build never ran its tests (MISS).
pub fn status(outcome: Outcome, end: &RunEnd) -> &'static str {
    if matches!(end, RunEnd::NotBuilt { .. }) {
        return "MISS";
    }
    match outcome {
        Outcome::Passed => "PASS",
        Outcome::Failed | Outcome::Crashed => "FAIL",
        Outcome::TimedOut => "ERROR",
        Outcome::NeedsTheBoard => "SKIP",
    }
}

/// `text` cut to [`MAX_EXCERPT`] bytes at a character boundary, its end
/// kept (the failure is at the end of a log), NULs removed (the schema
/// refuses them).
pub fn excerpt(text: &str) -> String {
    let text = text.replace('\0', "");
    if text.len() <= MAX_EXCERPT {
        return text;
    }
    let mut from = text.len() - MAX_EXCERPT;
    while !text.is_char_boundary(from) {
        from += 1;
    }
    text[from..].to_string()
}

/// A KCIDB path component: letters, digits, `_` and `-` only.
fn component(s: &str) -> String {
    let c: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    if c.is_empty() {
        "_".into()
    } else {
        c
    }
}

fn id(s: &str) -> String {
    format!("{ORIGIN}:{s}")
}

/// The report of one verdict. `run` names the run (its nonce): every ID is
/// unique among this origin's reports.
pub fn report(src: &ModuleSource, build: &Build, v: &Verdict, run: &str) -> Value {
    let checkout_id = id(src.git_commit.as_deref().unwrap_or(&src.content_hash));
    let build_id = id(&format!("{}-{}-{}", src.content_hash, build.profile, build.kernel_release));
    let mut checkout = json!({ "id": checkout_id, "origin": ORIGIN, "tree_name": component(&src.module),
        "misc": { "content_hash": src.content_hash } });
    if let Some(c) = &src.git_commit {
        checkout["git_commit_hash"] = json!(c);
    }
    if let Some(u) = &src.git_url {
        checkout["git_repository_url"] = json!(u);
    }
    if let Some(b) = &src.git_branch {
        checkout["git_repository_branch"] = json!(b);
    }
    let not_built = if let RunEnd::NotBuilt { error } = &v.end { Some(error.as_str()) } else { None };
    let mut b = json!({
        "id": build_id, "checkout_id": checkout_id, "origin": ORIGIN, "architecture": "arm",
        "compiler": build.compiler, "config_name": build.profile,
        "comment": format!("{} against Linux {} ({})", src.module, build.kernel_release, build.profile),
        "status": if not_built.is_some() { "FAIL" } else { "PASS" },
    });
    if let Some(e) = not_built {
        b["log_excerpt"] = json!(excerpt(e));
    }
    if let Some(t) = &build.start_time {
        b["start_time"] = json!(t);
        checkout["start_time"] = json!(t);
    }
    let root = format!("harness.{}", component(&src.module));
    let test = |path: String, status: &str, excerpt_text: Option<String>, comment: String| {
        let mut t = json!({
            "id": id(&format!("{run}-{path}")), "build_id": build_id, "origin": ORIGIN, "path": path,
            "status": status, "comment": comment,
            "environment": { "comment": format!("QEMU, the {} profile", build.profile) },
        });
        if let Some(s) = &build.start_time {
            t["start_time"] = json!(s);
        }
        if let Some(e) = excerpt_text {
            t["log_excerpt"] = json!(excerpt(&e));
        }
        t
    };
    let mut tests = vec![{
        let mut t = test(root.clone(), status(v.outcome, &v.end), Some(v.to_string()), v.outcome.to_string());
        t["misc"] = json!({ "outcome": v.outcome.to_string(), "end": v.end });
        t
    }];
    tests.extend(step_tests(v, &root, not_built.is_some()).into_iter().map(|(p, s, e, c)| test(p, s, e, c)));
    json!({
        "version": { "major": 5, "minor": 3 },
        "checkouts": [checkout],
        "builds": [b],
        "tests": tests,
    })
}

type TestRow = (String, &'static str, Option<String>, String);

/// A test per step (MISS when it never ran), per expectation, and one for
/// the kernel's reports about the module.
fn step_tests(v: &Verdict, root: &str, not_built: bool) -> Vec<TestRow> {
    let mut rows = Vec::new();
    for s in &v.steps {
        let failed: Vec<String> = v
            .checks
            .iter()
            .filter(|c| c.step == s.name && !c.held)
            .map(|c| format!("{}: {}", c.description, c.detail.as_deref().unwrap_or("")))
            .collect();
        let status = match (s.exit, failed.is_empty()) {
            (None, _) => "MISS",
            (Some(_), true) => "PASS",
            (Some(_), false) => "FAIL",
        };
        let comment = format!("step {} exited {}", s.name, s.exit.map_or("-".into(), |e| e.to_string()));
        rows.push((format!("{root}.step.{}", component(&s.name)), status, Some(failed.join("\n")), comment));
    }
    for (k, c) in v.checks.iter().enumerate() {
        let status = match (not_built, c.held) {
            (true, _) => "MISS",
            (false, true) => "PASS",
            (false, false) => "FAIL",
        };
        let path = format!("{root}.expect.{}_{}", k + 1, component(&c.step));
        rows.push((path, status, c.detail.clone(), format!("{}: {}", c.step, c.description)));
    }
    let reports: Vec<String> = v.events.iter().map(|e| e.block.join("\n")).collect();
    let status = if not_built {
        "MISS"
    } else if reports.is_empty() {
        "PASS"
    } else {
        "FAIL"
    };
    let comment = format!("{} kernel report(s) about the module", reports.len());
    rows.push((format!("{root}.kernel"), status, Some(reports.join("\n\n")), comment));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_bounded_and_keep_the_end() {
        let long = format!("{}{}", "é".repeat(MAX_EXCERPT), "the end");
        let e = excerpt(&long);
        assert!(e.len() <= MAX_EXCERPT && e.ends_with("the end"));
        assert_eq!(excerpt("a\0b"), "ab");
    }

    #[test]
    fn every_outcome_has_a_status() {
        let done = RunEnd::Completed;
        assert_eq!(status(Outcome::Passed, &done), "PASS");
        assert_eq!(status(Outcome::Failed, &done), "FAIL");
        assert_eq!(status(Outcome::Crashed, &RunEnd::Panicked), "FAIL");
        assert_eq!(status(Outcome::TimedOut, &RunEnd::TimedOut { after_secs: 1 }), "ERROR");
        assert_eq!(status(Outcome::NeedsTheBoard, &done), "SKIP");
        assert_eq!(status(Outcome::Failed, &RunEnd::NotBuilt { error: "x".into() }), "MISS");
        assert_eq!(component("unit/insmod#2"), "unit_insmod_2");
    }

    /// docs/kcidb.md's table says what [`status`] does, row for row.
    #[test]
    fn the_docs_table_is_the_map() {
        let doc = std::fs::read_to_string(crate::repo_root().join("docs/kcidb.md")).unwrap();
        let rows: Vec<(String, String)> = doc
            .split("## Our outcomes as KCIDB statuses")
            .nth(1)
            .unwrap()
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells.len() > 3 && cells[2].chars().all(|c| c.is_ascii_uppercase()) && !cells[2].is_empty())
                    .then(|| (cells[1].to_string(), cells[2].to_string()))
            })
            .collect();
        let end = |o: &str| match o {
            "NOT-BUILT" => RunEnd::NotBuilt { error: String::new() },
            _ => RunEnd::Completed,
        };
        let outcome = |o: &str| match o {
            "PASSED" => Outcome::Passed,
            "CRASHED" => Outcome::Crashed,
            "TIMED-OUT" => Outcome::TimedOut,
            "NEEDS-THE-BOARD" => Outcome::NeedsTheBoard,
            _ => Outcome::Failed,
        };
        assert_eq!(rows.len(), 6, "{rows:?}");
        for (ours, theirs) in &rows {
            assert_eq!(status(outcome(ours), &end(ours)), theirs, "docs/kcidb.md's row for {ours}");
        }
    }
}
