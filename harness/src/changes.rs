//! Known kernel changes since Linux 3.5 (configs/kernel-changes.toml): a
//! module written for the Tiny4412's 3.5 kernel that fails to compile, or to
//! load, on the test kernel because of one of them gets told what changed,
//! in which version, and what works on both kernels. The matching is a pure
//! function over the compiler's or the loader's text.

use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::Deserialize;
use std::fmt;
use std::path::Path;

/// Where a change shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// In the module build's log.
    Compile,
    /// In insmod's output and the kernel's lines while it ran.
    Load,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    change: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    stage: Stage,
    matches: Vec<String>,
    what: String,
    instead: String,
    checked: String,
}

#[derive(Debug)]
pub struct Change {
    pub id: String,
    pub stage: Stage,
    patterns: Vec<Regex>,
    pub what: String,
    pub instead: String,
    /// Where the fact was checked (for maintainers; not shown to users).
    pub checked: String,
}

#[derive(Debug)]
pub struct Table {
    pub changes: Vec<Change>,
}

/// One change that explains a failure, with the line that shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub id: String,
    pub evidence: String,
    pub what: String,
    pub instead: String,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.what)?;
        writeln!(f, "  seen in: {}", self.evidence.trim())?;
        write!(f, "  works on 3.5 and here: ")?;
        let mut lines = self.instead.lines();
        if let Some(first) = lines.next() {
            writeln!(f, "{first}")?;
        }
        for l in lines {
            writeln!(f, "    {l}")?;
        }
        Ok(())
    }
}

impl Table {
    /// Parses the table's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Table> {
        let file: File = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{origin}: invalid kernel-changes table: {}", e.to_string().trim_end()))?;
        let mut changes = Vec::new();
        for e in file.change {
            let patterns = e
                .matches
                .iter()
                .map(|m| Regex::new(m).with_context(|| format!("{origin}: change {:?}: invalid regex {m:?}", e.id)))
                .collect::<Result<Vec<_>>>()?;
            if patterns.is_empty() {
                bail!("{origin}: change {:?} matches nothing: give it `matches`", e.id);
            }
            changes.push(Change { id: e.id, stage: e.stage, patterns, what: e.what, instead: e.instead, checked: e.checked });
        }
        Ok(Table { changes })
    }

    /// The changes of `stage` that `text` shows, each once, in table order.
    pub fn explain(&self, stage: Stage, text: &str) -> Vec<Explanation> {
        self.changes
            .iter()
            .filter(|c| c.stage == stage)
            .filter_map(|c| {
                let line = text.lines().find(|l| c.patterns.iter().any(|p| p.is_match(l)))?;
                Some(Explanation { id: c.id.clone(), evidence: line.to_string(), what: c.what.clone(), instead: c.instead.clone() })
            })
            .collect()
    }
}

/// The table shipped in `configs_dir`.
pub fn load(configs_dir: &Path) -> Result<Table> {
    let path = configs_dir.join("kernel-changes.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Table::parse(&text, &path.display().to_string())
}

/// Explanations for `text` at `stage` from the shipped table, as text for a
/// message; none if the table cannot be read (it only adds to an error).
pub fn explain(stage: Stage, text: &str) -> Vec<String> {
    match load(&crate::repo_root().join("configs")) {
        Ok(t) => t.explain(stage, text).iter().map(|e| e.to_string()).collect(),
        Err(e) => vec![format!("(the table of kernel changes could not be read: {e:#})")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        load(&crate::repo_root().join("configs")).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Messages as gcc 12 and kbuild print them for the fixtures in
    /// fixtures/api-changes/ (the integration test builds them for real).
    #[test]
    fn each_compile_message_is_explained_by_its_change() {
        let t = table();
        for (id, message) in [
            ("create_proc_entry", "hello.c:14:35: error: implicit declaration of function 'create_proc_entry' [-Werror=implicit-function-declaration]"),
            ("create_proc_entry", "hello.c:18:10: error: invalid use of undefined type 'struct proc_dir_entry'"),
            ("timer", "hello.c:17:9: error: implicit declaration of function 'setup_timer'; did you mean 'timer_setup'? [-Werror=implicit-function-declaration]"),
            ("class_create", "hello.c:12:15: error: too many arguments to function 'class_create'"),
            ("ioremap_nocache", "hello.c:12:16: error: implicit declaration of function 'ioremap_nocache'; did you mean 'ioremap_cache'? [-Werror=implicit-function-declaration]"),
            ("mach-headers", "hello.c:5:10: fatal error: mach/gpio.h: No such file or directory"),
            ("do_gettimeofday", "hello.c:11:9: error: implicit declaration of function 'do_gettimeofday' [-Werror=implicit-function-declaration]"),
            ("fops-ioctl", "hello.c:14:10: error: 'const struct file_operations' has no member named 'ioctl'"),
            ("devinit", "hello.c:7:23: error: expected '=', ',', ';', 'asm' or '__attribute__' before 'hello_probe'\n    7 | static int __devinit hello_probe(struct platform_device *pdev)"),
        ] {
            let got: Vec<String> = t.explain(Stage::Compile, message).into_iter().map(|e| e.id).collect();
            assert_eq!(got, [id], "{message}");
            assert!(t.explain(Stage::Load, message).is_empty(), "{message} is not a load message");
        }
    }

    #[test]
    fn a_module_named_module_is_explained_from_the_captured_log() {
        let p = crate::repo_root().join("harness/tests/fixtures/console/exynos4210-module-named-module.log");
        let log = std::fs::read_to_string(&p).unwrap();
        // What the judge hands over: the insmod step's messages.
        let t = crate::judge::step::Transcript::from_log(&log, crate::judge::step::FIXTURE_NONCE);
        let insmod = t.step("insmod").unwrap();
        let text: Vec<&str> = t.kernel_lines(insmod).chain(t.output_lines(insmod)).collect();
        let ex = table().explain(Stage::Load, &text.join("\n"));
        assert_eq!(ex.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["module-named-module"]);
        assert!(ex[0].evidence.contains("module: module is already loaded"), "{:?}", ex[0]);
        let shown = ex[0].to_string();
        assert!(shown.contains("Give the module another name"), "{shown}");
        assert_eq!(crate::check::load_explanations(&t), [shown]);
    }

    #[test]
    fn every_entry_says_what_changed_when_what_works_and_where_it_was_checked() {
        let t = table();
        assert!(t.changes.len() >= 9);
        let version = Regex::new(r"\b[2-6]\.\d+").unwrap();
        for c in &t.changes {
            assert!(version.is_match(&c.what), "{}: no version in {:?}", c.id, c.what);
            assert!(!c.instead.trim().is_empty() && !c.checked.trim().is_empty(), "{}", c.id);
        }
        let mut ids: Vec<&str> = t.changes.iter().map(|c| c.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), t.changes.len(), "ids are unique");
    }

    #[test]
    fn a_bad_table_names_the_entry() {
        let err = Table::parse("[[change]]\nid='x'\nstage='compile'\nmatches=['(']\nwhat='w'\ninstead='i'\nchecked='c'\n", "t.toml")
            .unwrap_err();
        assert!(format!("{err:#}").contains("t.toml: change \"x\": invalid regex"), "{err:#}");
        assert!(Table::parse("[[change]]\nid='x'\nstage='boot'\n", "t.toml").is_err());
    }
}
