//! The 3.5 layer's `struct timer_list` must not reach a kernel structure.
//!
//! Under `--api 3.5`, `struct timer_list` in a module is the layer's
//! 3.5-shaped timer (compat35/include/compat35/timer.h): a macro renames the
//! tag, as the forced header's last line (`compat35/timer-rename.h`). A
//! kernel header first read after that line, whose structures hold a
//! `struct timer_list` by value (`struct delayed_work`, `struct input_dev`,
//! `struct sock`, …), would get the layer's timer in them: the module would
//! see those structures with another layout than the kernel's, silently.
//! The layer reads each such header of the test kernel through a shadow
//! of its own (compat35/shadow/, first in the include path, written by
//! scripts/timer-shadows) that suspends the renaming around it; this guard
//! makes any other way in loud: a header the shadows lack (another kernel's
//! header, a new one), or one reached by a quoted include, which the
//! include path does not see. kbuild keeps each object's dependencies in
//! its `.NAME.o.cmd`, in the order the compiler first opened them, so every
//! header listed after `timer-rename.h` was first read after the renaming,
//! and one read through its shadow comes right after the shadow. Each
//! kernel header read after the renaming, not through its shadow, is read
//! for a `struct timer_list` held by value (or its `sizeof`).

use anyhow::{Context, Result};
use regex::Regex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// The header that renames the tag; nothing else is in it.
pub const RENAME: &str = "include/compat35/timer-rename.h";

/// The shadows' directory in the layer (its own -I, first).
pub const SHADOWS: &str = "shadow";

/// A kernel header, read after the renaming, that holds a timer by value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embedder {
    /// The unit (the object's source) that read it.
    pub unit: String,
    pub header: PathBuf,
    pub line: usize,
    pub text: String,
}

impl std::fmt::Display for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {} (read by {} after the 3.5 layer renamed struct timer_list)",
            self.header.display(),
            self.line,
            self.text,
            self.unit
        )
    }
}

/// What a build the guard stopped is told.
pub const EXPLANATION: &str = "A kernel header that holds a struct timer_list in its structures was read \
    after the 3.5 layer renamed the type.
  Under --api 3.5 `struct timer_list` in the module is the layer's 3.5-shaped timer (.function(unsigned long), .data),
  with the kernel's inside; a kernel header whose structures hold a timer is read through the layer's shadow of it
  (compat35/shadow/), which suspends the renaming, so that those structures keep the kernel's timer. The \
  header above was read
  without one (the shadows lack it, or a quoted #include reached it): its structures would have the layer's \
  timer in them,
  another layout than the kernel's, so the build stops rather than load a module that reads them wrongly.
  works on 3.5 and here: scripts/timer-shadows writes the shadows from the kernel's headers; include the \
  header with <…>;
  or build the module with --api native after porting its timers.";

/// Largest header read: a kernel header is far below it.
const MAX_HEADER: u64 = 4 << 20;

/// A timer held by value: a member or variable (`struct timer_list t;`,
/// `t1, t2;`, `t[4];`), or its size.
static BY_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bstruct\s+timer_list\s+[A-Za-z_]\w*\s*(\[[^\]]*\]\s*)?[;,]|\bsizeof\s*\(\s*struct\s+timer_list\s*\)")
        .expect("a valid regex")
});

/// The kernel headers that the units built in `dir` read after the
/// layer's renaming (`layer` is compat35/) and that hold a timer by value.
/// A relative dependency is the kernel build's own (`kernel_build`);
/// headers under `own` (the module's copy and what came from beside it)
/// and the layer's are the module's and the layer's, renamed on purpose.
pub fn check(dir: &Path, own: &Path, layer: &Path, kernel_build: &Path) -> Result<Vec<Embedder>> {
    let rename = layer.join(RENAME);
    let shadows = layer.join(SHADOWS);
    let mut found = Vec::new();
    let mut scanned: HashMap<PathBuf, Option<(usize, String)>> = HashMap::new();
    for cmd in cmd_files(dir)? {
        let text = std::fs::read_to_string(&cmd).with_context(|| format!("reading {}", cmd.display()))?;
        let unit = unit_of(&text).unwrap_or_else(|| cmd.display().to_string());
        let deps = after_rename(&text, &rename);
        for (i, dep) in deps.iter().enumerate() {
            let path = if dep.is_absolute() { dep.clone() } else { kernel_build.join(dep) };
            if path.starts_with(own) || path.starts_with(layer) || through_shadow(&path, &deps[..i], &shadows) {
                continue;
            }
            let hit = match scanned.get(&path) {
                Some(h) => h.clone(),
                None => {
                    let h = by_value(&path)?;
                    scanned.insert(path.clone(), h.clone());
                    h
                }
            };
            if let Some((line, text)) = hit {
                found.push(Embedder { unit: unit.clone(), header: path, line, text });
            }
        }
    }
    Ok(found)
}

/// Whether `header` was read through its shadow: the shadow of the same
/// name (`linux/input.h` for `…/include/linux/input.h`) opened before it.
fn through_shadow(header: &Path, before: &[PathBuf], shadows: &Path) -> bool {
    before
        .iter()
        .filter_map(|d| d.strip_prefix(shadows).ok())
        .any(|rel| header.ends_with(Path::new("include").join(rel)))
}

/// The `.NAME.o.cmd` files under `dir` (kbuild's saved command and
/// dependencies of each object), in a stable order.
fn cmd_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let kind = e.file_type()?;
            if kind.is_dir() {
                todo.push(e.path());
            } else if kind.is_file() && name.starts_with('.') && name.ends_with(".o.cmd") {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The source file a .cmd's object was compiled from (`source_X.o := FILE`).
fn unit_of(cmd: &str) -> Option<String> {
    let line = cmd.lines().find(|l| l.starts_with("source_"))?;
    let file = line.split_once(":=")?.1.trim();
    Some(Path::new(file).file_name()?.to_string_lossy().into_owned())
}

/// The dependencies listed after `rename` in a .cmd's `deps_…` list,
/// without kbuild's `$(wildcard include/config/…)` entries. Empty when the
/// unit did not read the layer (a unit built without it renames nothing).
fn after_rename(cmd: &str, rename: &Path) -> Vec<PathBuf> {
    let rename = rename.to_string_lossy();
    let mut lines = cmd.lines().skip_while(|l| !l.starts_with("deps_"));
    let mut out = Vec::new();
    let mut seen = false;
    for l in lines.by_ref().skip(1) {
        let dep = l.trim().trim_end_matches('\\').trim();
        if dep.is_empty() {
            break;
        }
        if dep == rename {
            seen = true;
        } else if seen && !dep.starts_with("$(") {
            out.push(PathBuf::from(dep));
        }
    }
    out
}

/// The first line of `header` (comments left out) that holds a struct
/// timer_list by value, with its number; None for a header without one,
/// or one that is gone or too large to be a header.
fn by_value(header: &Path) -> Result<Option<(usize, String)>> {
    match std::fs::metadata(header) {
        Ok(m) if m.is_file() && m.len() <= MAX_HEADER => {}
        _ => return Ok(None),
    }
    let text = std::fs::read_to_string(header).with_context(|| format!("reading {}", header.display()))?;
    let code = without_comments(&text);
    Ok(code
        .lines()
        .enumerate()
        .find(|(_, l)| BY_VALUE.is_match(l))
        .map(|(i, l)| (i + 1, l.split_whitespace().collect::<Vec<_>>().join(" "))))
}

/// `text` with its C comments blanked, line breaks kept (so line numbers
/// stay the file's).
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('/', Some('*')) => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                    }
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
                out.push(' ');
            }
            ('/', Some('/')) => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build's tree: the layer, a kernel with three headers, a module
    /// whose unit read them in `order` (the .cmd's dependency list).
    fn tree(order: &[&str]) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let (layer, kernel, module) = (t.path().join("compat35"), t.path().join("linux"), t.path().join("w/module"));
        for d in [layer.join("include/compat35"), kernel.join("include/linux"), module.clone()] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(layer.join(RENAME), "#define timer_list compat35_timer_list\n").unwrap();
        let headers = [
            ("input.h", "struct input_dev {\n\tint x;\n\tstruct timer_list timer;\n};\n"),
            (
                "ptr.h",
                "struct p { struct timer_list *t; };\nvoid f(struct timer_list *t);\n/* struct timer_list old; */\n",
            ),
            ("ax25.h", "struct ax { struct timer_list\tt1timer, t2timer; };\n"),
        ];
        for (name, text) in headers {
            std::fs::write(kernel.join("include/linux").join(name), text).unwrap();
        }
        std::fs::write(module.join("own.h"), "struct mine { struct timer_list t; };\n").unwrap();
        let source = module.join("hello.c");
        let mut cmd = format!("savedcmd_x.o := gcc …\n\nsource_x.o := {}\n\ndeps_x.o := \\\n", source.display());
        for o in order {
            let p = match *o {
                "rename" => layer.join(RENAME),
                "own.h" => module.join("own.h"),
                "generated" => PathBuf::from("include/generated/autoconf.h"),
                h if h.starts_with("shadow ") => layer.join(SHADOWS).join("linux").join(&h[7..]),
                h => kernel.join("include/linux").join(h),
            };
            cmd.push_str(&format!("  {} \\\n", p.display()));
        }
        cmd.push_str("    $(wildcard include/config/X) \\\n\nx.o: $(deps_x.o)\n\n$(deps_x.o):\n");
        std::fs::write(module.join(".x.o.cmd"), cmd).unwrap();
        (t, layer, kernel, module)
    }

    #[test]
    fn a_kernel_header_that_embeds_a_timer_after_the_rename_is_named() {
        let (_t, layer, kernel, module) = tree(&["ptr.h", "rename", "own.h", "generated", "input.h", "ax25.h"]);
        let found = check(&module, module.parent().unwrap(), &layer, &kernel).unwrap();
        let names: Vec<_> = found.iter().map(|e| (e.header.file_name().unwrap().to_str().unwrap(), e.line)).collect();
        assert_eq!(names, [("input.h", 3), ("ax25.h", 1)]);
        assert_eq!(found[0].text, "struct timer_list timer;");
        assert_eq!(found[0].unit, "hello.c");
        assert!(found[0].to_string().ends_with("(read by hello.c after the 3.5 layer renamed struct timer_list)"));
    }

    #[test]
    fn headers_read_before_the_rename_pointers_and_the_modules_own_are_not() {
        // input.h first read before the rename keeps the kernel's layout.
        let (_t, layer, kernel, module) = tree(&["input.h", "ax25.h", "rename", "ptr.h", "own.h"]);
        assert_eq!(check(&module, module.parent().unwrap(), &layer, &kernel).unwrap(), []);
        // A unit that never read the layer renamed nothing.
        let (_t, layer, kernel, module) = tree(&["input.h", "ax25.h"]);
        assert_eq!(check(&module, module.parent().unwrap(), &layer, &kernel).unwrap(), []);
    }

    #[test]
    fn a_header_read_through_its_shadow_is_not_and_without_it_is() {
        let (_t, layer, kernel, module) = tree(&["rename", "shadow input.h", "input.h", "shadow ax25.h", "ptr.h"]);
        std::fs::create_dir_all(layer.join("shadow/linux")).unwrap();
        assert_eq!(check(&module, module.parent().unwrap(), &layer, &kernel).unwrap(), []);
        // A quoted include reads ax25.h before (or without) its shadow.
        let (_t, layer, kernel, module) = tree(&["rename", "ax25.h", "shadow ax25.h", "shadow input.h", "input.h"]);
        let found = check(&module, module.parent().unwrap(), &layer, &kernel).unwrap();
        assert_eq!(
            found.iter().map(|e| e.header.file_name().unwrap().to_str().unwrap()).collect::<Vec<_>>(),
            ["ax25.h"]
        );
    }

    #[test]
    fn comments_are_blanked_and_lines_kept() {
        assert_eq!(without_comments("a /* b\nc */ d // e\nf"), "a \n  d \nf");
        assert!(!BY_VALUE.is_match("struct timer_list *t;"));
        assert!(BY_VALUE.is_match("struct timer_list t[4];"));
        assert!(BY_VALUE.is_match("x = sizeof(struct timer_list);"));
    }
}
