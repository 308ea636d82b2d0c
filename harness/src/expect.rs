//! Expectations: a TOML file beside the module that says, per step, the exit
//! status and the lines that must appear, in order.
//!
//! ```toml
//! [[step]]
//! name = "insmod"
//! exit = 0
//! expect = [{ line = "process:insmod" }, { regex = "^mmc_byte: .*ok$" }]
//! ```
//!
//! `line` matches a whole message (printk timestamp removed, surrounding
//! blanks ignored); `regex` matches anywhere in a message unless anchored.

use crate::step::Transcript;
use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    step: Vec<StepSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSpec {
    name: String,
    exit: Option<i32>,
    #[serde(default)]
    expect: Vec<PatternSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternSpec {
    line: Option<String>,
    regex: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Pattern {
    Line(String),
    Regex(Regex),
}

impl Pattern {
    pub fn matches(&self, message: &str) -> bool {
        match self {
            Pattern::Line(l) => message.trim() == l.trim(),
            Pattern::Regex(r) => r.is_match(message),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Line(l) => write!(f, "line {l:?}"),
            Pattern::Regex(r) => write!(f, "regex /{}/", r.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StepExpectation {
    pub name: String,
    pub exit: Option<i32>,
    pub patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
pub struct Expectations {
    pub steps: Vec<StepExpectation>,
}

/// The result of one expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub step: String,
    pub description: String,
    pub held: bool,
    /// Why it failed, when it did.
    pub detail: Option<String>,
}

impl Expectations {
    /// Loads and validates `path`; `known_steps` are the steps the guest runs,
    /// so a typo in a step name fails here, before anything boots.
    pub fn load(path: &Path, known_steps: &[&str]) -> Result<Expectations> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading expectations file {}", path.display()))?;
        Self::parse(&text, &path.display().to_string(), known_steps)
    }

    pub fn parse(text: &str, origin: &str, known_steps: &[&str]) -> Result<Expectations> {
        let file: File = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{origin}: invalid expectations: {}", e.to_string().trim_end()))?;
        if file.step.is_empty() {
            bail!("{origin}: no [[step]] tables: an expectations file must check at least one step");
        }
        let mut steps = Vec::new();
        for (i, s) in file.step.into_iter().enumerate() {
            let at = format!("{origin}: step {} ({:?})", i + 1, s.name);
            if !known_steps.contains(&s.name.as_str()) {
                bail!("{at}: unknown step; the guest runs {}", known_steps.join(", "));
            }
            let mut patterns = Vec::new();
            for (j, p) in s.expect.into_iter().enumerate() {
                patterns.push(match (p.line, p.regex) {
                    (Some(l), None) => Pattern::Line(l),
                    (None, Some(r)) => Pattern::Regex(
                        Regex::new(&r).map_err(|e| anyhow::anyhow!("{at}: expect[{j}]: invalid regex {r:?}: {e}"))?,
                    ),
                    _ => bail!("{at}: expect[{j}] needs exactly one of `line` or `regex`"),
                });
            }
            steps.push(StepExpectation { name: s.name, exit: s.exit, patterns });
        }
        Ok(Expectations { steps })
    }

    /// The expectations used when none are given: every step exits 0.
    pub fn exit_codes_only(steps: &[&str]) -> Expectations {
        Expectations {
            steps: steps
                .iter()
                .map(|s| StepExpectation { name: s.to_string(), exit: Some(0), patterns: Vec::new() })
                .collect(),
        }
    }

    /// Judges the transcript. Patterns of a step must match its lines in
    /// order: each one after the line the previous one matched.
    pub fn evaluate(&self, t: &Transcript) -> Vec<Check> {
        let mut checks = Vec::new();
        for exp in &self.steps {
            let record = t.step(&exp.name);
            let ran = record.map(|r| r.rc.is_some()).unwrap_or(false);
            checks.push(Check {
                step: exp.name.clone(),
                description: format!("{} ran to completion", exp.name),
                held: ran,
                detail: match record {
                    None => Some("the step never started".into()),
                    Some(r) if r.rc.is_none() => Some("the step started but never finished".into()),
                    _ => None,
                },
            });
            if let Some(want) = exp.exit {
                let got = record.and_then(|r| r.rc);
                checks.push(Check {
                    step: exp.name.clone(),
                    description: format!("{} exits {want}", exp.name),
                    held: got == Some(want),
                    detail: match got {
                        Some(rc) if rc != want => Some(format!("it exited {rc}")),
                        None => Some("no exit status was reported".into()),
                        _ => None,
                    },
                });
            }
            let lines: &[String] = record.map(|r| r.lines.as_slice()).unwrap_or(&[]);
            let mut from = 0;
            for p in &exp.patterns {
                let found = lines[from..].iter().position(|l| p.matches(l));
                let description = format!("{} prints {p}", exp.name);
                match found {
                    Some(k) => {
                        from += k + 1;
                        checks.push(Check { step: exp.name.clone(), description, held: true, detail: None });
                    }
                    None => {
                        let detail = if from > 0 && lines[..from].iter().any(|l| p.matches(l)) {
                            "it appeared, but not after the previous expected line".to_string()
                        } else {
                            format!("not among the {} line(s) the step printed", lines.len())
                        };
                        checks.push(Check { step: exp.name.clone(), description, held: false, detail: Some(detail) });
                    }
                }
            }
        }
        checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: &[&str] = &["insmod", "rmmod", "gone"];

    fn transcript() -> Transcript {
        Transcript::from_log(
            "[ 2.0] @@harness begin insmod\n\
             [ 2.1] process:insmod\n\
             [ 2.1] second\n\
             [ 2.3] @@harness end insmod rc=0\n\
             [ 2.5] @@harness begin rmmod\n\
             [ 2.6] mmc exit!\n\
             [ 2.7] @@harness end rmmod rc=0\n",
        )
    }

    fn failed(checks: &[Check]) -> Vec<&str> {
        checks.iter().filter(|c| !c.held).map(|c| c.description.as_str()).collect()
    }

    #[test]
    fn the_shipped_expectations_parse() {
        for p in ["kmod/expect.toml", "kmod/c-twin/expect.toml"] {
            Expectations::load(&crate::repo_root().join(p), STEPS).unwrap_or_else(|e| panic!("{e:#}"));
        }
    }

    #[test]
    fn passing_transcript_holds_every_check() {
        let e = Expectations::parse(
            "[[step]]\nname='insmod'\nexit=0\nexpect=[{line='process:insmod'},{regex='^sec'}]\n\
             [[step]]\nname='rmmod'\nexit=0\nexpect=[{line='mmc exit!'}]\n",
            "e.toml",
            STEPS,
        )
        .unwrap();
        let checks = e.evaluate(&transcript());
        assert_eq!(checks.len(), 7);
        assert!(failed(&checks).is_empty(), "{checks:?}");
    }

    #[test]
    fn order_exit_and_missing_steps_fail_with_reasons() {
        let e = Expectations::parse(
            "[[step]]\nname='insmod'\nexit=1\nexpect=[{line='second'},{line='process:insmod'}]\n\
             [[step]]\nname='gone'\nexit=0\n",
            "e.toml",
            STEPS,
        )
        .unwrap();
        let checks = e.evaluate(&transcript());
        assert_eq!(
            failed(&checks),
            vec!["insmod exits 1", "insmod prints line \"process:insmod\"", "gone ran to completion", "gone exits 0"]
        );
        let order = checks.iter().find(|c| c.description.contains("process:insmod")).unwrap();
        assert_eq!(order.detail.as_deref(), Some("it appeared, but not after the previous expected line"));
        let exit = checks.iter().find(|c| c.description == "insmod exits 1").unwrap();
        assert_eq!(exit.detail.as_deref(), Some("it exited 0"));
    }

    #[test]
    fn bad_files_name_the_place_and_the_fix() {
        let err = Expectations::parse("[[step]]\nname='insmod'\nexpect=[{regex='('}]\n", "e.toml", STEPS)
            .unwrap_err()
            .to_string();
        assert!(err.contains("e.toml: step 1 (\"insmod\"): expect[0]: invalid regex \"(\""), "{err}");
        let err = Expectations::parse("[[step]]\nname='insmd'\n", "e.toml", STEPS).unwrap_err().to_string();
        assert!(err.contains("unknown step; the guest runs insmod, rmmod, gone"), "{err}");
        let err = Expectations::parse("[[step]\n", "e.toml", STEPS).unwrap_err().to_string();
        assert!(err.starts_with("e.toml: invalid expectations"), "{err}");
        let err = Expectations::parse("[[step]]\nname='insmod'\nexpect=[{line='a', regex='b'}]\n", "e.toml", STEPS)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exactly one of `line` or `regex`"), "{err}");
    }
}
