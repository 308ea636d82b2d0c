//! Machine-readable results: `--json` (the whole verdict) and `--junit` (one
//! test case per step, expectation, kernel report and KUnit case, so CI
//! systems show them natively).

use crate::ktap::{Status, TestResult};
use crate::verdict::Verdict;
use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct Report<'a> {
    pub profile: &'a str,
    pub module: &'a str,
    pub kernel_release: &'a str,
    /// Seconds each pipeline stage took.
    pub timings: &'a [(String, f64)],
    pub verdict: &'a Verdict,
}

impl Report<'_> {
    /// The whole report as JSON (the caller writes it: the judge does no I/O).
    pub fn json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self).context("serializing the verdict")? + "\n")
    }

    pub fn junit(&self) -> quick_junit::Report {
        let v = self.verdict;
        let mut suite = TestSuite::new(format!("harness.{}.{}", self.profile, self.module));
        let total: f64 = self.timings.iter().map(|(_, s)| s).sum();
        suite.set_time(Duration::from_secs_f64(total));
        add_steps_and_checks(v, &mut suite);
        add_findings(v, &mut suite);
        add_stock(v, &mut suite);
        if let Some(k) = &v.ktap {
            for t in &k.results.tests {
                add_kunit(&mut suite, t, "kunit");
            }
        }
        let mut report = quick_junit::Report::new("harness");
        report.add_test_suite(suite);
        report
    }

    /// Several reports (one per module directory of a run) as JSON: the
    /// report itself when there is one, else an array.
    pub fn json_all(reports: &[Report]) -> Result<String> {
        match reports {
            [one] => one.json(),
            many => Ok(serde_json::to_string_pretty(many).context("serializing the verdicts")? + "\n"),
        }
    }

    /// Several reports as one JUnit document, a test suite each.
    pub fn junit_all(reports: &[Report]) -> Result<String> {
        let mut all = quick_junit::Report::new("harness");
        for r in reports {
            all.add_test_suites(r.junit().test_suites);
        }
        all.to_string().context("serializing JUnit XML")
    }
}

/// JUnit's cases for the steps (passed unless never finished) and the
/// expectations.
fn add_steps_and_checks(v: &Verdict, suite: &mut TestSuite) {
    for step in &v.steps {
        let status = if step.exit.is_some() {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(format!("step {} never finished", step.name));
            s
        };
        let mut case = TestCase::new(format!("step {}", step.name), status);
        case.set_classname("steps");
        if let Some(secs) = step.seconds {
            case.set_time(Duration::from_secs_f64(secs.max(0.0)));
        }
        suite.add_test_case(case);
    }
    for c in &v.checks {
        let status = if c.held {
            TestCaseStatus::success()
        } else if v.board_may_change.contains(&c.description) {
            // Failed at or after hardware the emulated board lacks: the
            // board decides it, as the outcome says (docs/verdicts.md).
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("needs the board: {}", c.detail.as_deref().unwrap_or("did not hold")));
            s
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(c.detail.clone().unwrap_or_else(|| "did not hold".into()));
            s
        };
        let mut case = TestCase::new(c.description.clone(), status);
        case.set_classname("expectations");
        suite.add_test_case(case);
    }
}

/// JUnit's cases for what the run found: kernel reports, hardware the
/// emulated board lacks, the port list and what the board's 3.5 lacks.
fn add_findings(v: &Verdict, suite: &mut TestSuite) {
    for e in &v.events {
        let mut s = TestCaseStatus::non_success(if e.kind.is_crash() {
            NonSuccessKind::Error
        } else {
            NonSuccessKind::Failure
        });
        s.set_message(e.headline().to_string());
        s.set_description(e.block.join("\n"));
        let mut case = TestCase::new(format!("no {} (console line {})", e.title(), e.line), s);
        case.set_classname("kernel-reports");
        suite.add_test_case(case);
    }
    // Hardware the emulated board lacks: the run says nothing either way
    // of what the module does with it, so skipped, not failed.
    if !v.unmodelled.is_empty() {
        let mut s = TestCaseStatus::skipped();
        s.set_message(format!("needs the board: {}", v.unmodelled[0]));
        let mut case = TestCase::new("runs on the emulated board's hardware", s);
        case.set_classname("board");
        case.set_system_out(v.unmodelled.iter().map(|a| a.to_string()).collect::<Vec<_>>().join("\n"));
        suite.add_test_case(case);
    }
    // The port list: what the 3.5 layer gave back. Not failures (the
    // module ran as on the board), so they pass, with the text to read.
    for p in &v.ports {
        let mut case = TestCase::new(
            format!("linux-3.5 API {} (a port to this kernel changes it)", p.id),
            TestCaseStatus::success(),
        );
        case.set_classname("port");
        case.set_system_out(p.to_string());
        suite.add_test_case(case);
    }
    // What the board's 3.5 lacks: a failure each (the module would not
    // build or load on the board), with its places and 3.5 form.
    for l in &v.lacks {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_message(format!("{} ({}) is not in the board's Linux 3.5, used at {}", l.name, l.kind, l.at.join(", ")));
        s.set_description(l.to_string());
        let mut case = TestCase::new(format!("on the board's Linux 3.5: {}", l.name), s);
        case.set_classname("board-api");
        suite.add_test_case(case);
    }
}

/// The stock image's drivers (judge/stock.rs): what the module asked of
/// theirs. Refused here as on the image (`[board] stock-drivers = true`):
/// the expectations judged that, so the note passes with its text. Not held
/// (the default): this run cannot tell what the image would do, which
/// refuses it, so skipped with the note as message, as the verdict's text
/// notes it.
fn add_stock(v: &Verdict, suite: &mut TestSuite) {
    for n in &v.stock {
        let status = if n.refused {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::skipped();
            s.set_message(n.to_string());
            s
        };
        let mut case = TestCase::new(format!("on the stock image: {} ({})", n.resource, n.what), status);
        case.set_classname("stock-image");
        case.set_system_out(format!("{}\n{n}", crate::stock::assumed(v.stock_drivers)));
        suite.add_test_case(case);
    }
}

fn add_kunit(suite: &mut TestSuite, t: &TestResult, prefix: &str) {
    let name = format!("{prefix}.{}", t.name);
    if !t.subtests.is_empty() && t.status != Status::Incomplete {
        for s in &t.subtests {
            add_kunit(suite, s, &name);
        }
        return;
    }
    let status = match t.status {
        Status::Ok => TestCaseStatus::success(),
        Status::Skip => TestCaseStatus::skipped(),
        Status::NotOk => TestCaseStatus::non_success(NonSuccessKind::Failure),
        Status::Incomplete => TestCaseStatus::non_success(NonSuccessKind::Error),
    };
    let mut case = TestCase::new(name, status);
    case.set_classname("kunit");
    suite.add_test_case(case);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Expectations;
    use crate::step::Transcript;
    use crate::verdict::{judge, Context, RunEnd};

    #[test]
    fn junit_and_json_carry_steps_expectations_events_and_kunit() {
        let exp =
            Expectations::parse("[[step]]\nname='insmod'\nexit=0\nexpect=[{line='process:insmod'}]\n", "e").unwrap();
        let log = "@@harness begin insmod\nprocess:insmod\nWARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x4 [m]\n---[ end \
            trace 0 ]---\n\
                   KTAP version 1\n1..1\n    # Subtest: s\n    1..1\n    not ok 1 c\nnot ok 1 s\n@@harness end insmod \
                       rc=0\n@@harness done\n";
        let t = Transcript::from_log(&crate::marker::with_nonce(log, "00000000000000ff"), "00000000000000ff");
        let v = judge(&t, &exp, &["insmod".to_string()], RunEnd::Completed, Context::new("log".into()));
        let timings = vec![("boot".to_string(), 1.5)];
        let r = Report { profile: "p", module: "m", kernel_release: "6.12", timings: &timings, verdict: &v };
        let xml = r.junit().to_string().unwrap();
        for want in [
            "step insmod",
            "insmod prints line &quot;process:insmod&quot;",
            "no WARNING (console line 3)",
            "kunit.s.c",
            "<failure",
        ] {
            assert!(xml.contains(want), "{want} missing from {xml}");
        }
        let back = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(back.test_suites[0].test_cases.len(), 6, "1 step + 3 checks + 1 report + 1 KUnit case");
        let json: serde_json::Value = serde_json::from_str(&r.json().unwrap()).unwrap();
        assert_eq!(json["verdict"]["outcome"], "FAILED");
        assert_eq!(json["verdict"]["events"][0]["kind"]["class"], "warning");
        assert_eq!(json["verdict"]["ktap"]["counts"]["failed"], 1);
        assert_eq!(json["timings"][0][1], 1.5);
    }

    /// The stock image's notes and what the board's 3.5 lacks reach the
    /// JUnit as the text says them: a note skipped (the image would refuse
    /// it) or passed (refused here as there), a lack failed.
    #[test]
    fn junit_carries_stock_notes_and_the_board_s_lacks() {
        use crate::lack::{Lack, NameKind};
        use crate::stock::StockNote;
        let exp = Expectations::parse("[[step]]\nname='insmod'\nexit=0\n", "e").unwrap();
        let log = "@@harness begin insmod\n@@harness end insmod rc=0\n@@harness done\n";
        let t = Transcript::from_log(&crate::marker::with_nonce(log, "00000000000000ff"), "00000000000000ff");
        let mut v = judge(&t, &exp, &["insmod".to_string()], RunEnd::Completed, Context::new("log".into()));
        let note = |refused| StockNote {
            resource: "LED1".into(),
            what: "GPM4_0".into(),
            driver: "leds".into(),
            option: "CONFIG_TINY4412_LEDS".into(),
            when: "from boot".into(),
            step: Some("insmod".into()),
            refused,
            dev_name: false,
        };
        v.stock = vec![note(false)];
        v.lacks = vec![Lack {
            name: "timer_setup".into(),
            kind: NameKind::Macro,
            at: vec!["m.c:3".into()],
            since: Some("4.14".into()),
            instead: Some("setup_timer(t, fn, data)".into()),
            note: None,
        }];
        let timings = Vec::new();
        let r = Report { profile: "p", module: "m", kernel_release: "6.12", timings: &timings, verdict: &v };
        let back = quick_junit::Report::deserialize_from_str(&r.junit().to_string().unwrap()).unwrap();
        let cases = &back.test_suites[0].test_cases;
        let stock = cases.iter().find(|c| c.classname.as_deref() == Some("stock-image")).expect("a stock-image case");
        assert_eq!(stock.name.as_str(), "on the stock image: LED1 (GPM4_0)");
        match &stock.status {
            TestCaseStatus::Skipped { message, .. } => {
                let m = message.as_deref().unwrap_or_default();
                assert!(m.contains("fails with -EBUSY") && m.contains("CONFIG_TINY4412_LEDS"), "{m}");
            }
            s => panic!("{s:?}"),
        }
        assert!(stock.system_out.as_deref().unwrap_or_default().contains("not modelled as holding anything"));
        let lack = cases.iter().find(|c| c.classname.as_deref() == Some("board-api")).expect("a board-api case");
        assert!(matches!(lack.status, TestCaseStatus::NonSuccess { kind: NonSuccessKind::Failure, .. }));
        // Held here as on the image: the note passes.
        v.stock = vec![note(true)];
        v.stock_drivers = true;
        let r = Report { profile: "p", module: "m", kernel_release: "6.12", timings: &timings, verdict: &v };
        let back = quick_junit::Report::deserialize_from_str(&r.junit().to_string().unwrap()).unwrap();
        let stock =
            back.test_suites[0].test_cases.iter().find(|c| c.classname.as_deref() == Some("stock-image")).unwrap();
        assert!(matches!(stock.status, TestCaseStatus::Success { .. }), "{:?}", stock.status);
        assert!(stock.system_out.as_deref().unwrap_or_default().contains("stock-drivers = true"));
    }
}
