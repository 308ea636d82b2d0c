//! KTAP, the test output format of KUnit: `ok`/`not ok` lines, plans,
//! `# Subtest:` headers and indentation for nesting. A KUnit module loaded in
//! the guest prints it on the console; this turns it into a tree of results.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    NotOk,
    Skip,
    /// A suite whose result line never came (the kernel died mid-run).
    Incomplete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestResult {
    pub name: String,
    pub status: Status,
    pub subtests: Vec<TestResult>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub incomplete: usize,
    /// Results a plan (`1..N`) announced that never came.
    pub missing: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.passed + self.failed + self.skipped + self.incomplete
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ktap {
    pub tests: Vec<TestResult>,
    pub bailed_out: bool,
    /// Plans that got fewer results than they announced: what, planned, got.
    pub short_plans: Vec<(String, usize, usize)>,
}

impl Ktap {
    pub fn is_empty(&self) -> bool {
        self.tests.is_empty()
    }

    /// Counts of the leaf tests (the cases), which is what KUnit reports.
    pub fn counts(&self) -> Counts {
        fn walk(t: &TestResult, c: &mut Counts) {
            if t.subtests.is_empty() || t.status == Status::Incomplete {
                match t.status {
                    Status::Ok => c.passed += 1,
                    Status::NotOk => c.failed += 1,
                    Status::Skip => c.skipped += 1,
                    Status::Incomplete => c.incomplete += 1,
                }
            }
            for s in &t.subtests {
                walk(s, c);
            }
        }
        let mut c = Counts::default();
        for t in &self.tests {
            walk(t, &mut c);
        }
        c.missing = self.short_plans.iter().map(|(_, planned, got)| planned - got).sum();
        c
    }

    /// Full names (`suite.case`) of the failed leaf tests.
    pub fn failures(&self) -> Vec<String> {
        fn walk(t: &TestResult, prefix: &str, out: &mut Vec<String>) {
            let name = if prefix.is_empty() { t.name.clone() } else { format!("{prefix}.{}", t.name) };
            if t.subtests.is_empty() && t.status == Status::NotOk {
                out.push(name.clone());
            }
            for s in &t.subtests {
                walk(s, &name, out);
            }
        }
        let mut out = Vec::new();
        for t in &self.tests {
            walk(t, "", &mut out);
        }
        out
    }
}

/// A result line: `ok 1 - name # SKIP why`, `not ok 2 name`.
fn result_line(text: &str) -> Option<(Status, String)> {
    let (ok, rest) =
        if let Some(r) = text.strip_prefix("not ok ") { (false, r) } else { (true, text.strip_prefix("ok ")?) };
    let (num, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    num.parse::<u32>().ok()?;
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let (name, directive) = match rest.split_once(" # ") {
        Some((n, d)) => (n, Some(d)),
        None => match rest.strip_prefix("# ") {
            Some(d) => ("", Some(d)),
            None => (rest, None),
        },
    };
    let skip = directive.is_some_and(|d| d.trim_start().to_ascii_uppercase().starts_with("SKIP"));
    let status = match (ok, skip) {
        (_, true) => Status::Skip,
        (true, false) => Status::Ok,
        (false, false) => Status::NotOk,
    };
    Some((status, name.trim().to_string()))
}

struct Level {
    indent: usize,
    /// The `# Subtest:` name announced at this level, for incomplete suites.
    name: Option<String>,
    /// The level's plan, `1..N`.
    plan: Option<usize>,
    results: Vec<TestResult>,
}

impl Level {
    fn new(indent: usize) -> Level {
        Level { indent, name: None, plan: None, results: Vec::new() }
    }

    /// (name, planned, got) if the level got fewer results than planned.
    fn short(&self) -> Option<(String, usize, usize)> {
        let planned = self.plan?;
        (self.results.len() < planned)
            .then(|| (self.name.clone().unwrap_or_else(|| "(top level)".into()), planned, self.results.len()))
    }
}

/// Parses KTAP out of console messages (other lines are skipped, so printk
/// from the code under test may interleave freely).
pub fn parse<'a>(messages: impl IntoIterator<Item = &'a str>) -> Ktap {
    let mut stack: Vec<Level> = Vec::new();
    let mut short_plans = Vec::new();
    let mut bailed_out = false;
    let mut seen = false;
    for raw in messages {
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        let text = raw.trim();
        let header = text.starts_with("KTAP version") || text.starts_with("TAP version");
        let subtest = text.strip_prefix("# Subtest:").map(|s| s.trim().to_string());
        let result = result_line(text);
        if text.starts_with("Bail out!") {
            bailed_out = true;
            continue;
        }
        let plan = text.strip_prefix("1..").and_then(|n| n.parse::<usize>().ok());
        if let (Some(n), false) = (plan, stack.is_empty()) {
            if indent > stack.last().expect("non-empty").indent {
                stack.push(Level::new(indent));
            }
            stack.last_mut().expect("non-empty").plan = Some(n);
            continue;
        }
        if !(header || subtest.is_some() || result.is_some()) {
            continue;
        }
        if !seen && !header && subtest.is_none() {
            // An `ok` line before any KTAP header is not KTAP.
            continue;
        }
        seen = true;
        if stack.is_empty() {
            stack.push(Level::new(indent));
        }
        if header || subtest.is_some() {
            if indent > stack.last().expect("non-empty").indent {
                stack.push(Level::new(indent));
            }
            if let Some(name) = subtest {
                stack.last_mut().expect("non-empty").name = Some(name);
            }
            continue;
        }
        let (status, name) = result.expect("checked above");
        // A result at a shallower indent closes the deeper levels: their
        // results are this test's subtests.
        let mut children = Vec::new();
        while stack.len() > 1 && stack.last().expect("non-empty").indent > indent {
            let level = stack.pop().expect("non-empty");
            short_plans.extend(level.short());
            children = level.results;
        }
        if indent > stack.last().expect("non-empty").indent {
            stack.push(Level::new(indent));
        }
        stack.last_mut().expect("non-empty").results.push(TestResult { name, status, subtests: children });
    }
    // Levels still open never got their result line: the run stopped inside them.
    while stack.len() > 1 {
        let level = stack.pop().expect("non-empty");
        let parent = stack.last_mut().expect("non-empty");
        parent.results.push(TestResult {
            name: level.name.unwrap_or_else(|| "(unnamed suite)".into()),
            status: Status::Incomplete,
            subtests: level.results,
        });
    }
    let top = stack.pop();
    short_plans.extend(top.as_ref().and_then(Level::short));
    Ktap { tests: top.map(|l| l.results).unwrap_or_default(), bailed_out, short_plans }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_with_fewer_results_is_short() {
        let k = parse("KTAP version 1\n1..3\nok 1 a\nok 2 b\n".lines());
        assert_eq!(k.short_plans, vec![("(top level)".to_string(), 3, 2)]);
        assert_eq!(k.counts().missing, 1);
        let nested = "KTAP version 1\n1..1\n    # Subtest: s\n    1..2\n    ok 1 x\nok 1 s\n";
        assert_eq!(parse(nested.lines()).short_plans, vec![("s".to_string(), 2, 1)]);
        assert!(parse("KTAP version 1\n1..2\nok 1 a\nok 2 b\n".lines()).short_plans.is_empty());
    }

    const LIST_TEST: &str = "\
KTAP version 1
1..1
    KTAP version 1
    # Subtest: list-kernel-test
    # module: list_test
    1..4
    ok 1 list_test_list_init
    not ok 2 list_test_list_add
    ok 3 list_test_list_del # SKIP not on this arch
        KTAP version 1
        # Subtest: param_case
        ok 1 param-0
        ok 2 param-1
    ok 4 param_case
# list-kernel-test: pass:2 fail:1 skip:1 total:4
not ok 1 list-kernel-test";

    #[test]
    fn nested_results_with_skip_and_failure() {
        let k = parse(LIST_TEST.lines());
        assert_eq!(k.tests.len(), 1);
        let suite = &k.tests[0];
        assert_eq!((suite.name.as_str(), suite.status), ("list-kernel-test", Status::NotOk));
        assert_eq!(suite.subtests.len(), 4);
        assert_eq!(suite.subtests[2].status, Status::Skip);
        assert_eq!(suite.subtests[3].subtests.len(), 2);
        assert_eq!(k.counts(), Counts { passed: 3, failed: 1, skipped: 1, incomplete: 0, missing: 0 });
        assert_eq!(k.failures(), vec!["list-kernel-test.list_test_list_add"]);
    }

    #[test]
    fn interleaved_printk_is_ignored() {
        let mut lines: Vec<&str> = Vec::new();
        for l in LIST_TEST.lines() {
            lines.push(l);
            lines.push("random: crng init done");
        }
        assert_eq!(parse(lines).counts().total(), 5);
    }

    #[test]
    fn a_crash_mid_suite_leaves_it_incomplete() {
        let cut: Vec<&str> = LIST_TEST.lines().take(8).collect();
        let k = parse(cut);
        assert_eq!(k.tests.len(), 1);
        assert_eq!(k.tests[0].status, Status::Incomplete);
        assert_eq!(k.tests[0].name, "list-kernel-test");
        assert_eq!(k.tests[0].subtests.len(), 2);
        let c = k.counts();
        assert_eq!((c.passed, c.failed, c.incomplete), (1, 1, 1));
    }

    #[test]
    fn plain_ok_lines_outside_ktap_are_not_tests() {
        assert!(parse(["ok 1 something", "not ok 2 else"]).is_empty());
        assert!(parse(["process:insmod"]).is_empty());
    }

    #[test]
    fn result_lines_parse() {
        assert_eq!(result_line("ok 1 - a b"), Some((Status::Ok, "a b".into())));
        assert_eq!(result_line("not ok 12 x # TODO later"), Some((Status::NotOk, "x".into())));
        assert_eq!(result_line("ok 3 y # SKIP no hw"), Some((Status::Skip, "y".into())));
        assert_eq!(result_line("ok x y"), None);
        assert_eq!(result_line("okay"), None);
    }
}
