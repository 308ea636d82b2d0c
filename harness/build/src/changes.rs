//! Known kernel changes since Linux 3.5 (configs/kernel-changes.toml): a
//! module written for the Tiny4412's 3.5 kernel that fails to compile, or to
//! load, on the test kernel because of one of them gets told what changed,
//! in which version, and what works on both kernels. The matching is a pure
//! function over the compiler's or the loader's text.

// A port is a pure type the judge reads (judge/port.rs).
pub use crate::judge::port::Port;
use crate::judge::step::{StepKind, Transcript};
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
    #[serde(default)]
    policy: bool,
    #[serde(default)]
    fallback: bool,
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
    /// Covered by 3.5's compiler policy (compat35/kbuild.mk), not by a
    /// header: the build shows it as the compiler's own warning, which is
    /// its mark.
    pub policy: bool,
    /// Explains a failure only when no other entry does (a general entry,
    /// whose lines are often the consequence of another's: a function left
    /// without its return by an earlier error).
    pub fallback: bool,
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

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.what)?;
        writeln!(f, "  seen in: {}", self.evidence.trim())?;
        crate::judge::port::write_instead(f, &self.instead)?;
        if self.covered {
            writeln!(f, "  --api 3.5 builds it unchanged: {}", self.layer)?;
        } else {
            writeln!(f, "  the 3.5 layer does not cover it: {}", self.layer)?;
        }
        Ok(())
    }
}

impl Change {
    /// Whether `line` shows this change.
    pub fn matches(&self, line: &str) -> bool {
        self.patterns.iter().any(|p| p.is_match(line))
    }
}

impl Explanation {
    /// The explanation of a build that failed under `api`. Under `--api
    /// 3.5` a covered change did not save this build, so it must not be
    /// told that the layer builds it: it is told that this use is one the
    /// layer's cover does not reach.
    pub fn shown(&self, api: crate::api::Api) -> String {
        let text = self.to_string();
        if api == crate::api::Api::Native || !self.covered {
            return text;
        }
        let native = format!("  --api 3.5 builds it unchanged: {}", self.layer);
        text.replace(
            &native,
            &format!(
                "  the 3.5 layer covers this change, but not this use of it: this build was under --api 3.5 (the \
                    layer: {})",
                self.layer
            ),
        )
    }
}

/// The diagnostics 6.12's kbuild makes errors and 3.5's only warned about
/// (3.5's top Makefile: -Werror-implicit-function-declaration alone; 6.12's
/// scripts/Makefile.extrawarn). Under `--api 3.5` they are warnings again
/// (compat35/kbuild.mk), and each is in the port list.
pub const DEMOTED: &[&str] =
    &["incompatible-pointer-types", "strict-prototypes", "implicit-int", "return-type", "date-time", "designated-init"];

/// Whether `line` is a compiler warning of a class in [`DEMOTED`].
fn is_demoted_warning(line: &str) -> bool {
    line.contains(": warning: ") && DEMOTED.iter().any(|d| line.contains(&format!("[-W{d}]")))
}

/// The first diagnostic blocks of a build log under `--api 3.5` (at most
/// `max`) whose warning names one of the layer's own types (`compat35_…`,
/// in the warning or its notes): a module handing the layer's 3.5-shaped
/// structure where the kernel's is expected, or a callback whose type the
/// layer's trampoline relies on. 3.5's compiler policy makes the warning
/// a warning; the layer's safety makes it an error. The layer's marks
/// (which name its helpers) are not such warnings.
pub fn layer_type_errors(log: &str, max: usize) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if !is_demoted_warning(l) || l.contains(MARK) {
            continue;
        }
        // The warning and its notes; not the source lines gcc quotes, which
        // may show the layer's code around a warning that is not about it.
        let block: Vec<&str> = std::iter::once(*l)
            .chain(
                lines[i + 1..]
                    .iter()
                    .copied()
                    .take_while(|n| !n.contains(": warning: ") && !n.contains(": error: ") && !n.ends_with("':"))
                    .filter(|n| n.contains(": note: ")),
            )
            .collect();
        if let Some(naming) = block.iter().find(|b| b.contains("compat35_") && !b.contains(MARK)) {
            out.push(l.trim_end().to_string());
            if naming != l {
                out.push(naming.trim_end().to_string());
            }
            if out.len() >= max {
                break;
            }
        }
    }
    out
}

/// What a build under `--api 3.5` that [`layer_type_errors`] stopped is told.
pub const LAYER_TYPE_EXPLANATION: &str = "A type of the 3.5 layer's own (compat35_…) met a type it does not take.
  Under --api 3.5 some structures a 3.5 module defines and hands to the kernel (struct i2c_driver, struct kobj_type,
  struct timer_list) are the layer's 3.5-shaped ones, with 3.5's callback types, the kernel's structure \
  inside and trampolines.
  The layer never converts a pointer: such a structure handed where the kernel's is expected, or a callback of
  another type than 3.5's (a newer kernel's form), stops the build, though the compiler only warns.
  works on 3.5 and here: 3.5's form for a 3.5 module; a module written for the newer kernel builds with --api native.";

/// The first identifier a compiler error line calls unknown, with its
/// place: an undeclared name, an undeclared function, an unknown type, a
/// missing member or header.
pub fn first_unknown(log: &str) -> Option<(String, String)> {
    let forms = Regex::new(concat!(
        r"^(?P<place>[^\s:][^:]*:\d+):\d+: (?:fatal )?error: (?:.(?P<a>\w+). undeclared",
        r"|implicit declaration of function .(?P<b>\w+).|unknown type name .(?P<c>\w+).",
        r"|.*has no member named .(?P<d>\w+).|(?P<e>[\w./-]+\.h): No such file)",
    ))
    .expect("a valid regex");
    log.lines().find_map(|l| {
        let c = forms.captures(l)?;
        let name = ["a", "b", "c", "d", "e"].iter().find_map(|k| c.name(k))?.as_str().to_string();
        Some((name, c["place"].to_string()))
    })
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
                policy: e.policy,
                fallback: e.fallback,
            });
        }
        Ok(Table { changes })
    }

    /// The changes of `stage` that `text` shows, each once, in table order.
    /// A line an earlier entry matches is that entry's, not a later one's
    /// (the policy entries, last in the table, take what no other explains).
    pub fn explain(&self, stage: Stage, text: &str) -> Vec<Explanation> {
        let staged: Vec<&Change> = self.changes.iter().filter(|c| c.stage == stage).collect();
        let found = self.explain_among(&staged, text);
        if found.iter().any(|e| !self.is_fallback(&e.id)) {
            return found.into_iter().filter(|e| !self.is_fallback(&e.id)).collect();
        }
        found
    }

    fn is_fallback(&self, id: &str) -> bool {
        self.changes.iter().any(|c| c.id == id && c.fallback)
    }

    fn explain_among(&self, staged: &[&Change], text: &str) -> Vec<Explanation> {
        staged
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let earlier = |l: &str| staged[..i].iter().any(|e| e.matches(l));
                let line = text.lines().find(|l| c.matches(l) && !earlier(l))?;
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
        let place = Regex::new(r"^(?:In file included from |\s+from )?(?P<file>[^\s:][^:]*):(?P<line>\d+)[:,]")
            .expect("a valid regex");
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
            if is_demoted_warning(l) && !l.contains(MARK) {
                self.policy_port(&mut ports, l, &place, &relative);
                included_from = None;
                continue;
            }
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
            let id: String = l[at + MARK.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
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
            let port = port_entry(&mut ports, &id, change);
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

/// The port list's entry for `id`, made from `change` when it is new.
fn port_entry<'p>(ports: &'p mut Vec<Port>, id: &str, change: &Change) -> &'p mut Port {
    let i = match ports.iter().position(|p| p.id == id) {
        Some(i) => i,
        None => {
            ports.push(Port {
                id: id.to_string(),
                what: change.what.clone(),
                instead: change.instead.clone(),
                at: Vec::new(),
                layer: change.layer.clone(),
                note: None,
            });
            ports.len() - 1
        }
    };
    &mut ports[i]
}

impl Table {
    /// The port-list entry of a warning that 3.5's compiler policy keeps a
    /// warning: the first policy entry that matches it, with its place, and
    /// the warning as the board's compiler shows it as its note.
    fn policy_port(&self, ports: &mut Vec<Port>, line: &str, place: &Regex, relative: &dyn Fn(&str, &str) -> String) {
        // The entries' patterns are the native build's errors: the warning spelt as one.
        let as_error = line.replace("[-W", "[-Werror=").replace(": warning: ", ": error: ");
        let Some(change) = self.changes.iter().find(|c| c.policy && c.covered && c.matches(&as_error)) else { return };
        let here = place.captures(line).map(|c| relative(&c["file"], &c["line"]));
        let shown = match (&here, line.find(": warning: ")) {
            (Some(h), Some(w)) => format!("{h}: warning: {}", &line[w + ": warning: ".len()..]),
            _ => line.trim().to_string(),
        };
        let port = port_entry(ports, &change.id, change);
        match &mut port.note {
            Some(n) if !n.contains(&shown) => {
                n.push_str("\n        ");
                n.push_str(&shown);
            }
            Some(_) => {}
            None => port.note = Some(shown),
        }
        if let Some(h) = here {
            if !port.at.contains(&h) {
                port.at.push(h);
            }
        }
    }
}

/// The table shipped in `configs_dir`.
pub fn load(configs_dir: &Path) -> Result<Table> {
    let path = configs_dir.join("kernel-changes.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Table::parse(&text, &path.display().to_string())
}

/// Explanations of a module build's failed log under `api`, as text for
/// the build error: each known change it shows, worded by what the layer
/// covers (never "--api 3.5 builds it" of a build under --api 3.5); when
/// none, that no entry explains it, with the first unknown identifier.
pub fn explain_build(log: &str, api: crate::api::Api, module_dir: &str) -> Vec<String> {
    let table = match load(&crate::repo_root().join("configs")) {
        Ok(t) => t,
        Err(e) => return vec![format!("(the table of kernel changes could not be read: {e:#})")],
    };
    let shown: Vec<String> = table.explain(Stage::Compile, log).iter().map(|e| e.shown(api)).collect();
    if !shown.is_empty() {
        return shown;
    }
    let prefix = format!("{}/", module_dir.trim_end_matches('/'));
    let unknown = match first_unknown(log) {
        Some((name, place)) => {
            format!("; the first unknown identifier is `{name}` ({})", place.strip_prefix(&prefix).unwrap_or(&place))
        }
        None => String::new(),
    };
    vec![format!(
        "no known change explains these errors (no entry of configs/kernel-changes.toml matches them){unknown}.\n  \
         A misspelt name, a header the module does not include, or an API the table does not know."
    )]
}

/// Explanations for `text` at `stage` from the shipped table, as text for a
/// message; none if the table cannot be read (it only adds to an error).
pub fn explain(stage: Stage, text: &str) -> Vec<String> {
    match load(&crate::repo_root().join("configs")) {
        Ok(t) => t.explain(stage, text).iter().map(|e| e.to_string()).collect(),
        Err(e) => vec![format!("(the table of kernel changes could not be read: {e:#})")],
    }
}

/// Known kernel changes that explain what the loading steps printed (a
/// module named `module`, say).
pub fn load_explanations(t: &Transcript) -> Vec<String> {
    let text: Vec<String> = t
        .steps
        .iter()
        .filter(|s| s.kind() == StepKind::Insmod)
        .flat_map(|s| t.kernel_lines(s).chain(t.output_lines(s)).map(str::to_string).collect::<Vec<_>>())
        .collect();
    explain(Stage::Load, &text.join("\n"))
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
            (
                "create_proc_entry",
                "hello.c:14:35: error: implicit declaration of function 'create_proc_entry' \
                [-Werror=implicit-function-declaration]",
            ),
            ("create_proc_entry", "hello.c:18:10: error: invalid use of undefined type 'struct proc_dir_entry'"),
            (
                "timer",
                "hello.c:17:9: error: implicit declaration of function 'setup_timer'; did you mean \
                'timer_setup'? [-Werror=implicit-function-declaration]",
            ),
            ("class_create", "hello.c:12:15: error: too many arguments to function 'class_create'"),
            (
                "ioremap_nocache",
                "hello.c:12:16: error: implicit declaration of function 'ioremap_nocache'; did you \
                mean 'ioremap_cache'? [-Werror=implicit-function-declaration]",
            ),
            ("mach-headers", "hello.c:5:10: fatal error: mach/gpio.h: No such file or directory"),
            (
                "do_gettimeofday",
                "hello.c:11:9: error: implicit declaration of function 'do_gettimeofday' \
                [-Werror=implicit-function-declaration]",
            ),
            ("fops-ioctl", "hello.c:14:10: error: 'const struct file_operations' has no member named 'ioctl'"),
            (
                "devinit",
                "hello.c:7:23: error: expected '=', ',', ';', 'asm' or '__attribute__' before \
                'hello_probe'\n    7 | static int __devinit hello_probe(struct platform_device *pdev)",
            ),
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
        assert_eq!(crate::changes::load_explanations(&t), [shown]);
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
             /src/compat35/include/compat35/proc.h:380:14: warning: call to 'compat35_proc_create_fops' declared with \
                 attribute warning: linux-3.5 API: proc-fops [-Wattribute-warning]\n\
             /src/compat35/include/compat35/proc.h:373:46: note: in expansion of macro 'proc_create_data'\n\
             {dir}/hello.c:30:16: note: in expansion of macro 'proc_create'\n\
             In file included from /src/compat35/include/mach/regs-gpio.h:14,\n                 from {dir}/hello.c:6:\n\
             /src/compat35/include/mach/map.h:11:1: warning: linux-3.5 API: mach-headers\n\
             {dir}/hello.c:40:1: warning: linux-3.5 API: fops-ioctl\n\
             {dir}/hello.c:41:1: warning: linux-3.5 API: no-such-change\n"
        );
        let ports = table().ports(&log, dir);
        let got: Vec<(&str, Vec<&str>, Option<&str>)> = ports
            .iter()
            .map(|p| (p.id.as_str(), p.at.iter().map(String::as_str).collect(), p.note.as_deref()))
            .collect();
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
                        let id: String = text[i + MARK.len()..]
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                            .collect();
                        if !id.is_empty() {
                            marks.push(id);
                        }
                    }
                }
            }
        }
        for m in &marks {
            assert!(
                t.changes.iter().any(|c| c.id == *m && c.covered),
                "compat35/ marks {m:?}, which is not a covered entry"
            );
        }
        // Policy entries are marked by the compiler's own warning.
        for c in t.changes.iter().filter(|c| c.covered && !c.policy && c.id != "transitive-headers") {
            assert!(marks.contains(&c.id), "{} is covered but compat35/ never marks it", c.id);
        }
    }

    /// 3.5's compiler policy: each demoted warning is in the port list with
    /// the compiler's words, under its own entry or the general one; a line
    /// a specific entry explains is not the general entry's too.
    #[test]
    fn a_warning_3_5_only_gave_is_a_port_with_the_compilers_words() {
        let dir = "/runs/x/module";
        let log = format!(
            "{dir}/hello.c:26:31: warning: initialization of 'void (*)(struct platform_device *)' from incompatible \
                pointer type 'int (*)(struct platform_device *)' [-Wincompatible-pointer-types]\n\
             {dir}/hello.c:10:13: warning: function declaration isn't a prototype [-Wstrict-prototypes]\n\
             {dir}/hello.c:40:9: warning: passing argument 1 of 'foo' from incompatible pointer type \
                 [-Wincompatible-pointer-types]\n\
             {dir}/hello.c:41:9: warning: unused variable 'x' [-Wunused-variable]\n"
        );
        let ports = table().ports(&log, dir);
        let got: Vec<(&str, Vec<&str>)> =
            ports.iter().map(|p| (p.id.as_str(), p.at.iter().map(String::as_str).collect())).collect();
        assert_eq!(
            got,
            [
                ("platform-remove-int", vec!["hello.c:26"]),
                ("strict-prototypes", vec!["hello.c:10"]),
                ("werror-3.5", vec!["hello.c:40"])
            ]
        );
        assert_eq!(
            ports[1].note.as_deref(),
            Some("hello.c:10: warning: function declaration isn't a prototype [-Wstrict-prototypes]")
        );
        let native = log.replace("[-W", "[-Werror=").replace(": warning: ", ": error: ");
        let ids: Vec<String> = table().explain(Stage::Compile, &native).into_iter().map(|e| e.id).collect();
        // The general entry only where no other explains the build.
        assert_eq!(ids, ["platform-remove-int", "strict-prototypes"]);
        let general = table().explain(Stage::Compile, native.lines().nth(2).unwrap());
        assert_eq!(general.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["werror-3.5"]);
        let one = table().explain(Stage::Compile, native.lines().next().unwrap());
        assert_eq!(one.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["platform-remove-int"]);
    }

    /// Under --api 3.5 a covered change that a build still failed on is
    /// never told "--api 3.5 builds it unchanged".
    #[test]
    fn a_build_under_the_layer_is_not_told_the_layer_builds_it() {
        let line = "hello.c:17:9: error: implicit declaration of function 'setup_timer' \
            [-Werror=implicit-function-declaration]";
        let e = &table().explain(Stage::Compile, line)[0];
        assert!(e.shown(crate::api::Api::Native).contains("--api 3.5 builds it unchanged"));
        let under = e.shown(crate::api::Api::Linux35);
        assert!(!under.contains("builds it unchanged") && under.contains("but not this use of it"), "{under}");
    }

    #[test]
    fn the_first_unknown_identifier_is_named_with_its_place() {
        let log = "make -C /k M=/m\n/m/a.c:3:1: warning: x\n/m/a.c:8:9: error: implicit declaration of function \
            'printkk'; did you mean 'printk'? [-Werror=implicit-function-declaration]\n/m/a.c:9:9: error: 'FOO' \
                undeclared (first use in this function)\n";
        assert_eq!(first_unknown(log), Some(("printkk".into(), "/m/a.c:8".into())));
        assert_eq!(
            first_unknown("/m/b.c:2:10: fatal error: mach/foo.h: No such file or directory"),
            Some(("mach/foo.h".into(), "/m/b.c:2".into()))
        );
        assert_eq!(
            first_unknown("/m/b.c:5:3: error: 'struct s' has no member named 'data'"),
            Some(("data".into(), "/m/b.c:5".into()))
        );
    }

    /// A warning naming a layer type, in itself or its notes, is an error;
    /// the layer's own marks (which name its helpers) and other warnings are not.
    #[test]
    fn a_warning_naming_a_layer_type_is_an_error() {
        let log = "a.c:13:54: warning: initialization of 'const struct kobj_type *' from incompatible pointer type \
            'struct compat35_kobj_type *' [-Wincompatible-pointer-types]\n\
                   a.c:13:54: note: (near initialization for 'k.kobj.ktype')\n\
                   a.c:20:5: warning: passing argument 1 of 'f' from incompatible pointer type \
                       [-Wincompatible-pointer-types]\n\
                   a.c:20:5: note: expected 'struct platform_driver *' but argument is of type 'struct \
                       compat35_i2c_driver *'\n\
                   proc.h:380:14: warning: call to 'compat35_proc_create_fops' declared with attribute warning: \
                       linux-3.5 API: proc-fops [-Wattribute-warning]\n\
                   a.c:30:1: warning: unused variable 'compat' [-Wunused-variable]\n";
        let errors = layer_type_errors(log, 20);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].starts_with("a.c:13:54")
                && errors[1].starts_with("a.c:20:5: warning")
                && errors[2].contains("note: expected"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_bad_table_names_the_entry() {
        let table = "[[change]]\nid='x'\nstage='compile'\nmatches=['(']\nwhat='w'\ninstead='i'\nchecked='c'\n\
                     covered=false\nlayer='l'\n";
        let err = Table::parse(table, "t.toml").unwrap_err();
        assert!(format!("{err:#}").contains("t.toml: change \"x\": invalid regex"), "{err:#}");
        assert!(Table::parse("[[change]]\nid='x'\nstage='boot'\n", "t.toml").is_err());
    }
}
