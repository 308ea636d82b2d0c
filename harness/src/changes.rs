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
    covered: bool,
    layer: String,
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
    /// Whether the 3.5 layer (compat35/) gives the module 3.5's API back.
    pub covered: bool,
    /// How the layer covers it, or why it cannot.
    pub layer: String,
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
    pub covered: bool,
    pub layer: String,
}

/// One 3.5 API a module built under `--api 3.5` used that the test kernel
/// lacks: what a port to the test kernel must change, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Port {
    pub id: String,
    pub what: String,
    pub instead: String,
    /// `file:line` of each use the build named (relative to the module
    /// directory), in the order first seen; empty for a use without a place
    /// (the module's name).
    pub at: Vec<String>,
    /// What the layer did instead.
    pub layer: String,
    /// What the mark said of this module beyond its id ("module.ko is built
    /// as module35.ko").
    pub note: Option<String>,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            writeln!(f, "{}", self.what)?;
        } else {
            writeln!(f, "{} ({})", self.what, self.at.join(", "))?;
        }
        if let Some(n) = &self.note {
            writeln!(f, "  here: {n}")?;
        }
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
        if self.covered {
            writeln!(f, "  --api 3.5 builds it unchanged: {}", self.layer)?;
        } else {
            writeln!(f, "  the 3.5 layer does not cover it: {}", self.layer)?;
        }
        Ok(())
    }
}

/// The prefix of every mark the layer's headers and kbuild.mk print
/// (compat35/include/compat35/mark.h), followed by the change's id.
pub const MARK: &str = "linux-3.5 API: ";

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
            changes.push(Change {
                id: e.id,
                stage: e.stage,
                patterns,
                what: e.what,
                instead: e.instead,
                checked: e.checked,
                covered: e.covered,
                layer: e.layer,
            });
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
                Some(Explanation {
                    id: c.id.clone(),
                    evidence: line.to_string(),
                    what: c.what.clone(),
                    instead: c.instead.clone(),
                    covered: c.covered,
                    layer: c.layer.clone(),
                })
            })
            .collect()
    }

    /// The port list in a module build's log under `--api 3.5`: each
    /// covered change whose mark the build printed, in the order first
    /// seen, with the places of its uses. `module_dir` (the copy that was
    /// built) is taken off the paths. A mark printed inside one of the
    /// layer's headers (`<mach/gpio.h>`) is placed where the module
    /// included it: the last `In file included from` line before it. Marks
    /// whose id is not a covered change (a module may print any warning)
    /// are left out.
    /// The port-list entry `id` with its places and note, as a replay's
    /// `port` marker gives them back (`recheck`); none if `id` is not a
    /// covered entry (a forged or foreign marker).
    pub fn port(&self, id: &str, at: &[String], note: Option<&str>) -> Option<Port> {
        let c = self.changes.iter().find(|c| c.id == id && c.covered)?;
        Some(Port {
            id: c.id.clone(),
            what: c.what.clone(),
            instead: c.instead.clone(),
            at: at.to_vec(),
            layer: c.layer.clone(),
            note: note.map(str::to_string),
        })
    }

    pub fn ports(&self, log: &str, module_dir: &str) -> Vec<Port> {
        let place = Regex::new(r"^(?:In file included from |\s+from )?(?P<file>[^\s:][^:]*):(?P<line>\d+)[:,]").expect("a valid regex");
        let prefix = format!("{}/", module_dir.trim_end_matches('/'));
        let relative = |file: &str, line: &str| format!("{}:{line}", file.strip_prefix(&prefix).unwrap_or(file));
        let mut ports: Vec<Port> = Vec::new();
        let mut included_from: Option<String> = None;
        let lines: Vec<&str> = log.lines().collect();
        // A mark whose place is a macro's definition in the layer's header
        // (a helper with a `warning` attribute called inside proc_create()): the module's
        // line is the first `in expansion of macro` note in the module's
        // files that follows, before the next warning.
        let expanded_at = |from: usize| {
            lines[from + 1..]
                .iter()
                .take_while(|l| !l.contains(": warning: "))
                .filter(|l| l.starts_with(&prefix) && l.contains(": note: in expansion of macro"))
                .find_map(|l| place.captures(l).map(|c| relative(&c["file"], &c["line"])))
        };
        for (n, l) in lines.iter().copied().enumerate() {
            let Some(at) = l.find(MARK) else {
                if l.starts_with("In file included from ") || l.starts_with("                 from ") {
                    if let Some(c) = place.captures(l) {
                        included_from = Some(relative(&c["file"], &c["line"]));
                    }
                } else {
                    included_from = None;
                }
                continue;
            };
            let id: String = l[at + MARK.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
            let Some(change) = self.changes.iter().find(|c| c.id == id && c.covered) else { continue };
            let here = place.captures(l).map(|c| {
                let file = &c["file"];
                // Inside a header of the layer's: where the module included it.
                match (&included_from, file.starts_with(&prefix)) {
                    (Some(from), false) => from.clone(),
                    (None, false) => expanded_at(n).unwrap_or_else(|| relative(file, &c["line"])),
                    _ => relative(file, &c["line"]),
                }
            });
            included_from = None;
            let port = match ports.iter_mut().find(|p| p.id == id) {
                Some(p) => p,
                None => {
                    ports.push(Port {
                        id: id.clone(),
                        what: change.what.clone(),
                        instead: change.instead.clone(),
                        at: Vec::new(),
                        layer: change.layer.clone(),
                        note: None,
                    });
                    ports.last_mut().expect("just pushed")
                }
            };
            let rest = l[at + MARK.len() + id.len()..].trim_start_matches(':').trim();
            if !rest.is_empty() && !rest.starts_with('[') && port.note.is_none() {
                port.note = Some(rest.to_string());
            }
            if let Some(h) = here {
                if !port.at.contains(&h) {
                    port.at.push(h);
                }
            }
        }
        ports
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
        let t = crate::judge::step::Transcript::from_log(&log, crate::judge::marker::FIXTURE_NONCE);
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

    /// The port list from a build log as gcc 12 and make print it: a mark
    /// in a macro's expansion, a helper's `warning` attribute, a mark inside one of the
    /// layer's headers (placed where the module included it), make's note of
    /// a renamed module; marks of changes not covered, or unknown, are left
    /// out.
    #[test]
    fn the_port_list_names_each_covered_change_once_with_its_places() {
        let dir = "/runs/x/module";
        let log = format!(
            "linux-3.5 API: module-named-module: module.ko is built as module35.ko\n\
             {dir}/hello.c:17:9: warning: linux-3.5 API: timer\n   17 |         setup_timer(&t, fn, 1);\n\
             {dir}/hello.c:18:9: warning: linux-3.5 API: timer\n\
             {dir}/hello.c:17:9: warning: linux-3.5 API: timer\n\
             {dir}/hello.c: In function 'hello_init':\n\
             /src/compat35/include/compat35/proc.h:380:14: warning: call to 'compat35_proc_create_fops' declared with attribute warning: linux-3.5 API: proc-fops [-Wattribute-warning]\n\
             /src/compat35/include/compat35/proc.h:373:46: note: in expansion of macro 'proc_create_data'\n\
             {dir}/hello.c:30:16: note: in expansion of macro 'proc_create'\n\
             In file included from /src/compat35/include/mach/regs-gpio.h:14,\n                 from {dir}/hello.c:6:\n\
             /src/compat35/include/mach/map.h:11:1: warning: linux-3.5 API: mach-headers\n\
             {dir}/hello.c:40:1: warning: linux-3.5 API: fops-ioctl\n\
             {dir}/hello.c:41:1: warning: linux-3.5 API: no-such-change\n"
        );
        let ports = table().ports(&log, dir);
        let got: Vec<(&str, Vec<&str>, Option<&str>)> =
            ports.iter().map(|p| (p.id.as_str(), p.at.iter().map(String::as_str).collect(), p.note.as_deref())).collect();
        assert_eq!(
            got,
            [
                ("module-named-module", vec![], Some("module.ko is built as module35.ko")),
                ("timer", vec!["hello.c:17", "hello.c:18"], None),
                ("proc-fops", vec!["hello.c:30"], None),
                ("mach-headers", vec!["hello.c:6"], None),
            ]
        );
        assert!(ports[1].to_string().contains("(hello.c:17, hello.c:18)"), "{}", ports[1]);
    }

    /// Each mark the layer's files print is a covered entry of the table,
    /// and each covered entry but the forced includes has a mark.
    #[test]
    fn the_layers_marks_and_the_table_agree() {
        let t = table();
        let mut marks = Vec::new();
        let mut stack = vec![crate::repo_root().join("compat35")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(text) = std::fs::read_to_string(&p) {
                    for (i, _) in text.match_indices(MARK) {
                        let id: String = text[i + MARK.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
                        if !id.is_empty() {
                            marks.push(id);
                        }
                    }
                }
            }
        }
        for m in &marks {
            assert!(t.changes.iter().any(|c| c.id == *m && c.covered), "compat35/ marks {m:?}, which is not a covered entry");
        }
        for c in t.changes.iter().filter(|c| c.covered && c.id != "transitive-headers") {
            assert!(marks.contains(&c.id), "{} is covered but compat35/ never marks it", c.id);
        }
    }

    #[test]
    fn a_bad_table_names_the_entry() {
        let err = Table::parse("[[change]]\nid='x'\nstage='compile'\nmatches=['(']\nwhat='w'\ninstead='i'\nchecked='c'\ncovered=false\nlayer='l'\n", "t.toml")
            .unwrap_err();
        assert!(format!("{err:#}").contains("t.toml: change \"x\": invalid regex"), "{err:#}");
        assert!(Table::parse("[[change]]\nid='x'\nstage='boot'\n", "t.toml").is_err());
    }
}
