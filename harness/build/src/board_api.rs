//! The board's API: what FriendlyARM's Linux 3.5 provides (the index that
//! scripts/index-linux35 made from its tree, configs/linux35-index.tsv),
//! and the names a module's own code uses that it does not. Under `--api
//! 3.5` a module builds against the test kernel through the layer, which
//! would let a module written for a newer kernel pass; this check names
//! what would not compile or load on the board.
//!
//! It reads each C unit as the board's compiler would see it: preprocessed
//! by kbuild's own command for that unit, with `-fdirectives-only` (the
//! conditionals and includes are taken, macros stay as written, so a
//! `timer_setup` call is still `timer_setup`) and with 3.5's
//! LINUX_VERSION_CODE, so a `#if LINUX_VERSION_CODE` branch counts only
//! when the board's compiler would take it. Only the lines of the module's
//! own files count (the layer's headers use the test kernel's API on
//! purpose); a name counts when the test kernel's headers in that unit
//! name it (or the module imports it) and the index does not hold it.

// The finding itself is a pure type the judge reads (judge/lack.rs).
pub use crate::judge::lack::{Lack, NameKind};
use crate::kernel::Kernel;
use crate::process;
use crate::sandbox::{Policy, Sandbox};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The index's file in configs/ (gzip: 5 MB of text, 1 MB stored).
pub const INDEX: &str = "linux35-index.tsv.gz";
/// Versions and 3.5 forms of names the board lacks, in configs/.
pub const FORMS: &str = "linux35-forms.toml";

/// 3.5.0, as the board's <linux/version.h> says it.
const VERSION_H: &str = "/* The board's Linux 3.5 (written by the harness for its API check). */\n\
#define LINUX_VERSION_CODE 197888\n\
#define KERNEL_VERSION(a,b,c) (((a) << 16) + ((b) << 8) + ((c) > 255 ? 255 : (c)))\n";

/// How a name appears in the board's tree (the index's letters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexEntry {
    pub kinds: String,
    /// The header it first appears in.
    pub header: Option<String>,
    /// Every header it appears in as a function, macro or type (numbers
    /// into [`Index::files`]): one of them must be reached by a unit's
    /// includes on the board.
    pub headers: Vec<u32>,
}

impl IndexEntry {
    fn has(&self, k: char) -> bool {
        self.kinds.contains(k)
    }
    /// A macro or a header's static inline function on the board:
    /// compiled into the module there, so no export is needed.
    fn compiled_in(&self) -> bool {
        self.has('m') || self.has('i')
    }
    /// Whether the board's headers have the name in the role `kind` needs:
    /// a type as a type (3.5 has `proc_ops` only as a parameter's name), a
    /// call as a function or macro.
    fn serves(&self, kind: NameKind, call: bool) -> bool {
        match kind {
            NameKind::Type => self.has('t') || self.has('m'),
            _ if call => self.has('f') || self.has('m'),
            _ => true,
        }
    }
}

/// The index of the board's tree: name to how it appears.
#[derive(Debug, Default)]
pub struct Index {
    /// The board's defconfig the index was made with (what "leaves out" means).
    pub defconfig: String,
    pub names: HashMap<String, IndexEntry>,
    /// The board's headers, relative to its tree, with those its build
    /// generates.
    pub files: Vec<String>,
    /// Each header's #includes, resolved as 3.5's kbuild resolves them.
    pub includes: HashMap<u32, Vec<u32>>,
    number: HashMap<String, u32>,
}

impl Index {
    /// Parses the index's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Index> {
        let mut lines = text.lines().filter(|l| !l.starts_with('#'));
        let field = |lines: &mut dyn Iterator<Item = &str>, key: &str| -> Result<String> {
            let l = lines.next().unwrap_or_default();
            l.strip_prefix(key).and_then(|v| v.strip_prefix('\t')).map(str::to_string).with_context(|| {
                format!("{origin}: expected `{key}<TAB>…`, found {l:?}: remake it with scripts/index-linux35")
            })
        };
        let defconfig = field(&mut lines, "defconfig")?;
        let number = |v: String| v.parse::<usize>().with_context(|| format!("{origin}: {v:?} is not a count"));
        let (n_names, n_files) = (number(field(&mut lines, "names")?)?, number(field(&mut lines, "files")?)?);
        let files: Vec<String> = lines.by_ref().take(n_files).map(str::to_string).collect();
        let numbers = |v: &str| -> Vec<u32> { v.split(',').filter_map(|n| n.parse().ok()).collect() };
        let n_includes = number(field(&mut lines, "includes")?)?;
        let mut includes = HashMap::with_capacity(n_includes);
        for l in lines.by_ref().take(n_includes) {
            let Some((from, to)) = l.split_once('\t') else {
                bail!("{origin}: malformed include line {l:?}: remake it with scripts/index-linux35");
            };
            let from = from.parse::<u32>().with_context(|| format!("{origin}: include line {l:?}"))?;
            includes.insert(from, numbers(to));
        }
        let mut names = HashMap::with_capacity(n_names);
        for l in lines {
            let mut cols = l.split('\t');
            let (Some(name), Some(kinds)) = (cols.next(), cols.next()) else {
                bail!("{origin}: malformed line {l:?}: remake it with scripts/index-linux35");
            };
            let headers = numbers(cols.next().unwrap_or_default());
            let header = headers.first().and_then(|&n| files.get(n as usize).cloned());
            names.insert(name.to_string(), IndexEntry { kinds: kinds.to_string(), header, headers });
        }
        if names.len() != n_names {
            bail!(
                "{origin}: holds {} names, its header says {n_names}: remake it with scripts/index-linux35",
                names.len()
            );
        }
        let number = files.iter().enumerate().map(|(n, f)| (f.clone(), n as u32)).collect();
        Ok(Index { defconfig, names, files, includes, number })
    }

    /// The board's header that `#include <spelling>` finds, as 3.5's ARM
    /// kbuild's include path finds it (the top Makefile's LINUXINCLUDE, then
    /// the machine's and platform's directories).
    pub fn resolve(&self, spelling: &str) -> Option<u32> {
        const PATH: &[&str] = &[
            "arch/arm/include",
            "arch/arm/include/generated",
            "include",
            "arch/arm/mach-exynos/include",
            "arch/arm/plat-samsung/include",
        ];
        PATH.iter().find_map(|d| self.number.get(&format!("{d}/{spelling}")).copied())
    }

    /// Every header the board's compiler reads for a unit that includes `roots`.
    pub fn reach(&self, roots: &[u32]) -> HashSet<u32> {
        let mut seen = HashSet::new();
        let mut todo = roots.to_vec();
        while let Some(n) = todo.pop() {
            if seen.insert(n) {
                todo.extend(self.includes.get(&n).into_iter().flatten().copied());
            }
        }
        seen
    }

    pub fn get(&self, name: &str) -> Option<&IndexEntry> {
        self.names.get(name)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Form {
    name: String,
    since: String,
    instead: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormsFile {
    name: Vec<Form>,
}

/// The index and the forms, as shipped in configs/.
pub struct BoardApiTables {
    pub index: Index,
    forms: Vec<Form>,
}

/// The shipped index and forms (configs/).
pub fn load(configs: &Path) -> Result<BoardApiTables> {
    let path = configs.join(INDEX);
    let file = std::fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(file), &mut text).with_context(|| {
        format!("reading {}: not the gzip of an index? remake it with scripts/index-linux35", path.display())
    })?;
    let index = Index::parse(&text, &path.display().to_string())?;
    let path = configs.join(FORMS);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let forms: FormsFile =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
    Ok(BoardApiTables { index, forms: forms.name })
}

/// The shipped index, read once per process: a run checks each of its
/// module directories, and reading the index takes about a second.
fn shipped() -> Result<&'static BoardApiTables> {
    static BOARD: std::sync::OnceLock<BoardApiTables> = std::sync::OnceLock::new();
    if let Some(b) = BOARD.get() {
        return Ok(b);
    }
    let b = load(&crate::repo_root().join("configs"))?;
    Ok(BOARD.get_or_init(|| b))
}

/// One preprocessed unit: its text, and whose each of its files is.
pub struct PreprocessedUnit<'a> {
    pub text: &'a str,
    /// The module's directory: places are given relative to it.
    pub own_dir: &'a str,
    /// The kernel's, the layer's and the harness's own include directories:
    /// a line from a file under one of them, from a relative path (the
    /// kernel's build directory, where kbuild runs) or from `<built-in>` is
    /// the kernel's. Any other line is the module's own: its directory, and
    /// the headers beside it (beside.rs).
    pub kernel_dirs: &'a [String],
}

impl PreprocessedUnit<'_> {
    /// Whether lines of `file` (as a line marker names it) are the module's.
    fn own(&self, file: &str) -> bool {
        file.starts_with('/') && !self.kernel_dirs.iter().any(|d| file.starts_with(d.as_str()))
    }

    /// `file:line` relative to the module directory.
    fn place(&self, file: &str, line: usize) -> String {
        place(self.own_dir, file, line)
    }
}

/// `file:line` relative to the module directory `own_dir` (`../x.h:3` for a
/// header beside it).
fn place(own_dir: &str, file: &str, line: usize) -> String {
    let dir = Path::new(own_dir);
    let rel = match Path::new(file).strip_prefix(dir) {
        Ok(r) => r.display().to_string(),
        Err(_) => match dir.parent().and_then(|p| Path::new(file).strip_prefix(p).ok()) {
            Some(r) => format!("../{}", r.display()),
            None => file.to_string(),
        },
    };
    format!("{rel}:{line}")
}

/// A C token of the module's own lines, with its place.
#[derive(Debug, Clone)]
struct Tok {
    text: String,
    at: String,
}

/// A use of a name in the module's own lines, with what stands either side.
struct Use {
    name: String,
    at: String,
    before: String,
    call: bool,
}

/// What the units hold: the module's own uses and the names it defines,
/// and what the test kernel's headers in them name (identifiers, macros,
/// typedefs).
#[derive(Default)]
struct Scan {
    uses: Vec<Use>,
    own: HashSet<String>,
    own_macros: HashSet<String>,
    header_names: HashSet<String>,
    header_macros: HashSet<String>,
    header_typedefs: HashSet<String>,
    /// The module's own files the units read, each with its module
    /// directory (places are relative to it).
    own_files: Vec<(String, String)>,
}

impl Scan {
    /// A use of a name that is not the module's own: whether it is a
    /// member access, and whether it is a kernel's macro, which is the
    /// kernel's even where the module seems to declare it
    /// (`int x __ro_after_init;` expands there). None for the module's own.
    fn not_own(&self, u: &Use) -> Option<(bool, bool)> {
        let member = u.before == "." || u.before == "->";
        let kernel_macro = self.header_macros.contains(&u.name) && !member;
        let own = self.own_macros.contains(&u.name) || (self.own.contains(&u.name) && !kernel_macro);
        (!own).then_some((member, kernel_macro))
    }
}

/// An #include of a kernel header in one of the module's own files.
struct Include {
    /// As written between the brackets or quotes.
    spelled: String,
    at: String,
    /// Taken on the board for certain: outside any conditional, or in a
    /// branch 3.5's LINUX_VERSION_CODE takes. An include under another
    /// condition still counts as reached (the reading errs on the side
    /// of the module) but is never called missing.
    certain: bool,
}

/// C's keywords and GCC's: never a kernel's name (3.5's index leaves them
/// out, so they must never be looked up in it).
const KEYWORDS: &[&str] = &[
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    "_Bool",
    "defined",
    "asm",
    "__asm__",
    "__asm",
    "__attribute__",
    "__attribute",
    "typeof",
    "__typeof__",
    "__typeof",
    "__inline__",
    "__inline",
    "__volatile__",
    "__volatile",
    "__extension__",
    "__label__",
    "__alignof__",
    "__alignof",
    "_Alignof",
    "_Alignas",
    "_Static_assert",
    "__restrict",
    "__restrict__",
    "__const",
    "__const__",
    "__signed__",
    "__signed",
    "_Generic",
    "__int128",
    "__auto_type",
    "__real__",
    "__imag__",
    "_Noreturn",
    "_Thread_local",
    "__thread",
    "_Complex",
    "__complex__",
    "__func__",
    "__FUNCTION__",
    "__PRETTY_FUNCTION__",
    "__VA_ARGS__",
];

fn keyword(t: &str) -> bool {
    KEYWORDS.contains(&t) || t.starts_with("__builtin_")
}

/// Words after which a name is an operand, never a declarator
/// (`return x;`, `case X:`).
const NOT_A_TYPE: &[&str] = &["return", "case", "goto", "else", "do", "sizeof", "typeof", "__typeof__", "defined"];

/// Words that start a declaration.
const DECL_START: &[&str] = &[
    "auto",
    "char",
    "const",
    "double",
    "enum",
    "extern",
    "float",
    "inline",
    "int",
    "long",
    "register",
    "short",
    "signed",
    "static",
    "struct",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "_Bool",
    "__inline__",
];

/// C tokens of one line, comments and literals left out; `in_comment`
/// carries a block comment over lines. Each token with its text.
fn tokens(line: &str, in_comment: &mut bool) -> Vec<String> {
    let b = line.as_bytes();
    let (mut i, mut out) = (0, Vec::new());
    while i < b.len() {
        if *in_comment {
            match line[i..].find("*/") {
                Some(p) => {
                    i += p + 2;
                    *in_comment = false;
                }
                None => break,
            }
            continue;
        }
        let c = b[i];
        if line[i..].starts_with("/*") {
            *in_comment = true;
            i += 2;
        } else if line[i..].starts_with("//") {
            break;
        } else if c == b'"' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push("\"".to_string());
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(line[s..i].to_string());
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            out.push("0".to_string());
        } else if line[i..].starts_with("->") {
            out.push("->".to_string());
            i += 2;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else {
            out.push((c as char).to_string());
            i += 1;
        }
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

/// The module's own lines of the units: its code's tokens (directives
/// apart) and each of its `#define`s.
#[derive(Default)]
struct Own {
    code: Vec<Tok>,
    defines: Vec<Define>,
}

/// One of the module's own `#define`s (or `#undef`s): its name, its
/// parameters when it takes any, and its body's tokens.
#[derive(Default)]
struct Define {
    name: String,
    params: Vec<String>,
    body: Vec<Tok>,
}

impl Define {
    /// From the directive's raw first line and its tokens (`#`, `define`,
    /// the name, …).
    fn new(line: &str, toks: Vec<Tok>) -> Define {
        let name = toks.get(2).map(|t| t.text.clone()).unwrap_or_default();
        let after = line.trim_start().trim_start_matches('#').trim_start();
        let after = after.split_once(char::is_whitespace).map_or("", |(_, a)| a).trim_start();
        let function_like = after.strip_prefix(name.as_str()).is_some_and(|a| a.starts_with('('));
        let mut rest = toks.into_iter().skip(3).peekable();
        let mut params = Vec::new();
        if function_like {
            for t in rest.by_ref() {
                if t.text == ")" {
                    break;
                }
                if is_ident(&t.text) {
                    params.push(t.text);
                }
            }
        }
        Define { name, params, body: rest.collect() }
    }
}

/// Reads one preprocessed unit: GCC's line markers say which file each
/// line is from. The kernel's lines go to `out`, the module's to `own`.
fn scan(unit: &PreprocessedUnit, out: &mut Scan, own: &mut Own) {
    let (mut file, mut line_no, mut in_comment, mut is_own) = (String::new(), 0usize, false, false);
    let mut typedef = Typedef::default();
    // A directive continued on the next line (`\`): an own #define's
    // tokens so far, or None for any other.
    let mut continued: Option<Option<(String, Vec<Tok>)>> = None;
    for line in unit.text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            // `# 12 "file" flags`: the next line is line 12 of file.
            let mut parts = rest.splitn(2, ' ');
            if let (Some(n), Some(f)) = (parts.next().and_then(|n| n.parse().ok()), parts.next()) {
                line_no = n;
                file = f.split('"').nth(1).unwrap_or_default().to_string();
                is_own = unit.own(&file);
                if is_own && !out.own_files.iter().any(|(f, _)| *f == file) {
                    out.own_files.push((file.clone(), unit.own_dir.to_string()));
                }
                (in_comment, continued) = (false, None);
                continue;
            }
        }
        let this_line = line_no;
        line_no += 1;
        let more = line.ends_with('\\');
        let toks = tokens(line.trim_end_matches('\\'), &mut in_comment);
        if let Some(define) = continued.take() {
            let define = define.map(|(first, mut d)| {
                let at = unit.place(&file, this_line);
                d.extend(toks.iter().map(|t| Tok { text: t.clone(), at: at.clone() }));
                (first, d)
            });
            finish_directive(more, define, &mut continued, own);
            continue;
        }
        if line.trim_start().starts_with('#') {
            let define = toks.get(1).is_some_and(|d| d == "define" || d == "undef");
            let name = if define { toks.get(2).cloned() } else { None };
            let d = match (is_own, name) {
                (true, Some(_)) => {
                    let at = unit.place(&file, this_line);
                    Some((line.to_string(), toks.iter().map(|t| Tok { text: t.clone(), at: at.clone() }).collect()))
                }
                (false, Some(n)) => {
                    out.header_macros.insert(n);
                    None
                }
                _ => None,
            };
            finish_directive(more, d, &mut continued, own);
            continue;
        }
        if is_own {
            let at = unit.place(&file, this_line);
            own.code.extend(toks.into_iter().map(|text| Tok { text, at: at.clone() }));
        } else {
            header_tokens(&toks, &mut typedef, out);
        }
    }
}

/// 3.5.0's LINUX_VERSION_CODE.
const BOARD_VERSION_CODE: u32 = 197888;

/// Whether 3.5 takes `#if COND`, where this can tell: a comparison of
/// LINUX_VERSION_CODE with KERNEL_VERSION(a, b, c), either way round, or
/// a plain 0 or 1.
fn version_condition(cond: &str) -> Option<bool> {
    const SIDE: &str = r"(LINUX_VERSION_CODE|KERNEL_VERSION\s*\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\))";
    let re = regex::Regex::new(&format!(r"^\(?\s*{SIDE}\s*(<=|>=|==|!=|<|>)\s*{SIDE}\s*\)?$")).expect("a valid regex");
    match cond.trim() {
        "0" => return Some(false),
        "1" => return Some(true),
        _ => {}
    }
    let c = re.captures(cond.trim())?;
    let side = |whole: usize, a: usize| -> Option<u32> {
        if &c[whole] == "LINUX_VERSION_CODE" {
            return Some(BOARD_VERSION_CODE);
        }
        let n = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
        Some((n(a)? << 16) + (n(a + 1)? << 8) + n(a + 2)?.min(255))
    };
    let (l, r) = (side(1, 2)?, side(6, 7)?);
    Some(match &c[5] {
        "<" => l < r,
        "<=" => l <= r,
        ">" => l > r,
        ">=" => l >= r,
        "==" => l == r,
        _ => l != r,
    })
}

/// The kernel includes of the module's own files, each with whether 3.5
/// takes it for certain. A quoted name found beside the including file is
/// the module's own, and is read in turn when a unit read it.
fn own_includes(files: &[(String, String)], source: &dyn Fn(&str) -> Option<String>) -> Vec<Include> {
    let directive = regex::Regex::new(r#"^\s*#\s*(\w+)\s*(.*)$"#).expect("a valid regex");
    let include = regex::Regex::new(r#"^([<"])([^>"]+)[>"]"#).expect("a valid regex");
    let mut out = Vec::new();
    for (file, own_dir) in files {
        let Some(text) = source(file) else { continue };
        // Each open conditional: (this branch: taken, not, or unknown;
        // whether an earlier branch was taken).
        let mut stack: Vec<(Option<bool>, bool)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let Some(d) = directive.captures(line) else { continue };
            let rest = d[2].trim();
            match &d[1] {
                "if" => {
                    let v = version_condition(rest);
                    stack.push((v, v == Some(true)));
                }
                "ifdef" | "ifndef" => stack.push((None, false)),
                "elif" => {
                    if let Some(top) = stack.last_mut() {
                        let v = if top.1 { Some(false) } else { version_condition(rest) };
                        *top = (v, top.1 || v == Some(true));
                    }
                }
                "else" => {
                    if let Some(top) = stack.last_mut() {
                        top.0 = if top.1 { Some(false) } else { top.0.map(|v| !v) };
                    }
                }
                "endif" => {
                    stack.pop();
                }
                "include" => {
                    if stack.iter().any(|f| f.0 == Some(false)) {
                        continue;
                    }
                    let Some(i) = include.captures(rest) else { continue };
                    let beside = Path::new(file).parent().map(|p| p.join(&i[2]));
                    if &i[1] == "\"" && beside.as_ref().is_some_and(|p| p.exists()) {
                        continue;
                    }
                    let certain = stack.iter().all(|f| f.0 == Some(true));
                    out.push(Include { spelled: i[2].to_string(), at: place(own_dir, file, n + 1), certain });
                }
                _ => {}
            }
        }
    }
    out
}

/// How a module includes one of the board's headers (`file`, relative to
/// its tree): what follows its include directory, `<linux/gpio.h>` for
/// include/linux/gpio.h, `<asm/errno.h>` for its generated wrapper.
fn spelling(file: &str) -> String {
    let rel = match file.rfind("include/") {
        Some(i) if i == 0 || file[..i].ends_with('/') => &file[i + "include/".len()..],
        _ => file,
    };
    let rel = rel.strip_prefix("generated/").filter(|r| r.starts_with("asm/")).unwrap_or(rel);
    format!("<{rel}>")
}

/// A directive's line read: continued on the next (`more`), or ended (an
/// own #define kept).
fn finish_directive(
    more: bool,
    define: Option<(String, Vec<Tok>)>,
    continued: &mut Option<Option<(String, Vec<Tok>)>>,
    own: &mut Own,
) {
    match (more, define) {
        (true, d) => *continued = Some(d),
        (false, Some((first, toks))) => own.defines.push(Define::new(&first, toks)),
        (false, None) => {}
    }
}

/// What may follow a declarator: `int x;`, `x,`, `x =`, `x[`, `f(`, a
/// parameter's `)`, a bit-field's `:`.
const AFTER_DECLARATOR: &[&str] = &[";", ",", "=", "[", ")", "(", ":"];

/// The names the module's own code defines, read from its tokens: its
/// declarators (functions, variables, parameters, struct members), the
/// struct, union and enum tags it defines, its enumerators, typedefs and
/// labels, and what a `DEFINE_…(name)` or `DECLARE_…(name)` defines. It
/// errs on the side of the module: a name wrongly taken for the module's
/// is one finding fewer, a module's name taken for the kernel's is a
/// wrong FAILED.
fn own_definitions(toks: &[Tok]) -> HashSet<String> {
    let t = |i: usize| toks.get(i).map_or("", |t| t.text.as_str());
    let mut own = HashSet::new();
    let mut typedef = Typedef::default();
    // Per open brace: the enclosing statement's state, and whether the
    // brace opens an enum's body.
    let mut stack: Vec<(Option<usize>, bool)> = Vec::new();
    // The current statement, when it is a declaration: the paren depth it
    // began at (its `, name` declarators are there).
    let (mut decl, mut start, mut parens, mut in_enum, mut enum_next) = (None, true, 0usize, false, false);
    for i in 0..toks.len() {
        let (prev, cur, next) = (if i > 0 { t(i - 1) } else { "" }, t(i), t(i + 1));
        if let Some(name) = typedef.feed(cur) {
            own.insert(name);
        }
        if start && cur != ";" {
            let typed = is_ident(cur) && !keyword(cur) && (is_ident(next) || next == "*");
            decl = (DECL_START.contains(&cur) || typed).then_some(parens);
            start = false;
        }
        match cur {
            "{" => {
                stack.push((decl, in_enum));
                (in_enum, enum_next, start, decl) = (enum_next, false, true, None);
            }
            "}" => {
                let (d, e) = stack.pop().unwrap_or_default();
                in_enum = e;
                // `} x;` and `}, …` go on with the statement the brace was in.
                let goes_on = [";", ",", ")"].contains(&next) || (is_ident(next) && !keyword(next));
                (decl, start) = if goes_on { (d, false) } else { (None, true) };
            }
            ";" => (decl, start) = (None, true),
            "(" => parens += 1,
            ")" => parens = parens.saturating_sub(1),
            "enum" => enum_next = next == "{" || t(i + 2) == "{",
            _ if is_ident(cur) && !keyword(cur) => {
                let tag = ["struct", "union", "enum"].contains(&prev);
                let typed = (is_ident(prev) && !tag && !NOT_A_TYPE.contains(&prev)) || prev == "*";
                let listed = decl == Some(parens) && (prev == "," || (prev == "*" && t(i - 2) == ","));
                let defined = (tag && next == "{")
                    || (in_enum && parens == 0 && (prev == "{" || prev == ","))
                    || (typed && AFTER_DECLARATOR.contains(&next))
                    || (listed && AFTER_DECLARATOR.contains(&next) && next != ")")
                    || (next == ":" && t(i + 2) != ":" && ["", ";", "{", "}"].contains(&prev))
                    || (prev == "(" && i >= 2 && (t(i - 2).starts_with("DEFINE_") || t(i - 2).starts_with("DECLARE_")));
                if defined {
                    own.insert(cur.to_string());
                }
            }
            _ => {}
        }
    }
    own
}

/// The uses of names in `toks` (the module's code or a #define's body):
/// every name but C's and GCC's keywords and what an `__attribute__((…))`
/// or `asm(…)` holds (attribute names and assembler operands).
fn uses_in(toks: &[Tok], out: &mut Vec<Use>) {
    let mut skip: Option<usize> = None; // the parens still open of an attribute or asm
    let mut armed = false; // an attribute or asm keyword seen, its `(` not yet
    for (i, tok) in toks.iter().enumerate() {
        let cur = tok.text.as_str();
        if let Some(depth) = skip.as_mut() {
            match cur {
                "(" => *depth += 1,
                ")" => *depth -= 1,
                _ => {}
            }
            if *depth == 0 {
                skip = None;
            }
            continue;
        }
        if armed && cur == "(" {
            (armed, skip) = (false, Some(1));
            continue;
        }
        if ["__attribute__", "__attribute", "asm", "__asm__", "__asm"].contains(&cur) {
            armed = true;
            continue;
        }
        if !is_ident(cur) || keyword(cur) {
            continue;
        }
        out.push(Use {
            name: cur.to_string(),
            at: tok.at.clone(),
            before: if i > 0 { toks[i - 1].text.clone() } else { String::new() },
            call: toks.get(i + 1).is_some_and(|n| n.text == "("),
        });
    }
}
/// A typedef's name as its tokens arrive: the statement ends at a `;`
/// outside braces (`typedef struct { … } NAME;`), and the name is the
/// `(*NAME)` of a function pointer type, else the last name outside braces.
#[derive(Default)]
struct Typedef {
    open: bool,
    depth: usize,
    parens: usize,
    fnptr: Option<String>,
    last: Option<String>,
    prev_paren: bool,
    after_paren_star: bool,
}

impl Typedef {
    /// Feeds one token; the typedef's name when it ends.
    fn feed(&mut self, t: &str) -> Option<String> {
        if !self.open {
            if t == "typedef" {
                *self = Typedef { open: true, ..Typedef::default() };
            }
            return None;
        }
        match t {
            "{" => self.depth += 1,
            "}" => self.depth = self.depth.saturating_sub(1),
            "(" if self.depth == 0 => self.parens += 1,
            ")" if self.depth == 0 => self.parens = self.parens.saturating_sub(1),
            ";" if self.depth == 0 && self.parens == 0 => {
                self.open = false;
                return self.fnptr.take().or_else(|| self.last.take());
            }
            _ if self.depth == 0 && is_ident(t) => {
                // A parameter's name is inside parentheses: only `(*NAME)`
                // and a name outside them are the typedef's.
                if self.parens == 0 {
                    self.last = Some(t.to_string());
                } else if self.fnptr.is_none() && self.after_paren_star {
                    self.fnptr = Some(t.to_string());
                }
            }
            _ => {}
        }
        self.after_paren_star = t == "*" && self.prev_paren;
        self.prev_paren = t == "(";
        None
    }
}

/// The test kernel's names in one header line, and its typedef names.
fn header_tokens(toks: &[String], typedef: &mut Typedef, out: &mut Scan) {
    for t in toks {
        if is_ident(t) {
            out.header_names.insert(t.clone());
        }
        if let Some(name) = typedef.feed(t) {
            out.header_typedefs.insert(name);
        }
    }
}

impl BoardApiTables {
    /// The names the module's own lines in `units` use that the board
    /// lacks, each once with all its places, in the order first used.
    /// `imports` are the module's undefined symbols (what it needs
    /// exported). A name the module defines anywhere in its units is its
    /// own in all of them (a header of its own declares what another of its
    /// files defines).
    ///
    /// `source` reads a module file (its #include lines are read from its
    /// text: the preprocessor's output omits a header already included,
    /// as the layer's forced include has included most of them).
    pub fn lacks(
        &self,
        units: &[PreprocessedUnit],
        imports: &[String],
        source: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<Lack> {
        let (mut s, mut own) = (Scan::default(), Own::default());
        for unit in units {
            let mut unit_own = Own::default();
            scan(unit, &mut s, &mut unit_own);
            // A unit's declarations are read on their own: a statement
            // does not run on from one unit into the next.
            s.own.extend(own_definitions(&unit_own.code));
            own.code.extend(unit_own.code);
            own.defines.extend(unit_own.defines);
        }
        for d in &own.defines {
            s.own_macros.insert(d.name.clone());
            s.own.extend(d.params.iter().cloned());
        }
        uses_in(&own.code, &mut s.uses);
        for d in &own.defines {
            uses_in(&d.body, &mut s.uses);
        }
        let includes = own_includes(&s.own_files, source);
        let mut found: Vec<Lack> = self.missing_headers(&includes);
        let reached = self.reached(&includes);
        for u in &s.uses {
            let Some((kind, note)) = self.judge(u, &s, imports).or_else(|| self.unreached(u, &s, reached.as_ref()))
            else {
                continue;
            };
            match found.iter_mut().find(|l| l.name == u.name) {
                Some(l) if !l.at.contains(&u.at) => l.at.push(u.at.clone()),
                Some(_) => {}
                None => {
                    let form = self.forms.iter().find(|f| f.name == u.name);
                    found.push(Lack {
                        name: u.name.clone(),
                        kind,
                        at: vec![u.at.clone()],
                        since: form.map(|f| f.since.clone()),
                        instead: form.map(|f| f.instead.clone()),
                        note,
                    });
                }
            }
        }
        found
    }

    /// The includes of headers the board's tree does not have: its
    /// compiler stops at the first, before any name.
    fn missing_headers(&self, includes: &[Include]) -> Vec<Lack> {
        let mut found: Vec<Lack> = Vec::new();
        for Include { spelled, at, certain } in includes {
            if !certain || self.index.resolve(spelled).is_some() {
                continue;
            }
            let name = format!("<{spelled}>");
            match found.iter_mut().find(|l| l.name == name) {
                Some(l) if !l.at.contains(at) => l.at.push(at.clone()),
                Some(_) => {}
                None => {
                    let form = self.forms.iter().find(|f| f.name == name);
                    found.push(Lack {
                        name,
                        kind: NameKind::Header,
                        at: vec![at.clone()],
                        since: form.map(|f| f.since.clone()),
                        instead: form.map(|f| f.instead.clone()),
                        note: Some(
                            "FriendlyARM's Linux 3.5 has no such header: the board's compiler stops here".into(),
                        ),
                    });
                }
            }
        }
        found
    }

    /// The board's headers the units' includes reach there (and the
    /// <linux/kconfig.h> its kbuild includes first), or None when the
    /// module includes no kernel header at all.
    fn reached(&self, includes: &[Include]) -> Option<HashSet<u32>> {
        let mut roots: Vec<u32> = includes.iter().filter_map(|i| self.index.resolve(&i.spelled)).collect();
        if roots.is_empty() {
            return None;
        }
        roots.extend(self.index.resolve("linux/kconfig.h"));
        Some(self.index.reach(&roots))
    }

    /// A kernel function or macro the board declares, but only in headers
    /// the units' includes do not reach there: 3.5's kbuild makes an
    /// implicit declaration an error (`-Werror-implicit-function-declaration`),
    /// and an undeclared name is one anyway. 6.12's headers include more of
    /// each other, so the stand-in compiles what the board does not. Types
    /// are not judged (a pointer to an undeclared struct compiles), nor
    /// what the compiler or kbuild's command line defines.
    fn unreached(&self, u: &Use, s: &Scan, reached: Option<&HashSet<u32>>) -> Option<(NameKind, Option<String>)> {
        let reached = reached?;
        let (member, kernel_macro) = s.not_own(u)?;
        let predefined = u.name.starts_with("__builtin")
            || u.name.starts_with("CONFIG_")
            || u.name.starts_with("KBUILD_")
            || u.name == "MODULE"
            || (u.name.starts_with("__") && u.name.ends_with("__"));
        if member
            || predefined
            || ["struct", "union", "enum"].contains(&u.before.as_str())
            || s.header_typedefs.contains(&u.name)
            || !(s.header_names.contains(&u.name) || kernel_macro)
        {
            return None;
        }
        let e = self.index.get(&u.name)?;
        // Calls, macros and enumerators: the index places no variable
        // (`jiffies` is only a use in <linux/jiffies.h>).
        let enumerator = e.has('n') && !u.call && !kernel_macro;
        if !((u.call || kernel_macro) && (e.has('f') || e.has('m') || e.has('i')) || enumerator) || e.headers.is_empty()
        {
            return None;
        }
        if e.headers.iter().any(|h| reached.contains(h)) {
            return None;
        }
        let kind = if kernel_macro {
            NameKind::Macro
        } else if enumerator {
            NameKind::Name
        } else {
            NameKind::Function
        };
        Some((kind, Some(self.where_declared(e, u.call))))
    }

    /// Where the board has a name its includes do not reach: a few of its
    /// headers, <linux/…> first.
    fn where_declared(&self, e: &IndexEntry, call: bool) -> String {
        let mut headers: Vec<String> =
            e.headers.iter().filter_map(|&h| self.index.files.get(h as usize)).map(|f| spelling(f)).collect();
        headers.sort_by_key(|h| (!h.starts_with("<linux/"), h.len()));
        headers.dedup();
        let more = if headers.len() > 3 { ", …" } else { "" };
        headers.truncate(3);
        let stop = if call { "an implicit declaration" } else { "an undeclared name" };
        format!(
            "the board's 3.5 has it only in headers this module's includes do not reach there ({}{more}): the \
             board's compiler stops at {stop}; include the one that declares it",
            headers.join(", ")
        )
    }

    /// Whether one use is of a name the board lacks, and of which kind.
    fn judge(&self, u: &Use, s: &Scan, imports: &[String]) -> Option<(NameKind, Option<String>)> {
        let defconfig = &self.index.defconfig;
        let imported = imports.contains(&u.name);
        let (member, kernel_macro) = s.not_own(u)?;
        if !(s.header_names.contains(&u.name) || kernel_macro || imported) {
            // A name the test kernel does not have either.
            return None;
        }
        let kind = if member {
            NameKind::StructMember
        } else if kernel_macro {
            NameKind::Macro
        } else if ["struct", "union", "enum"].contains(&u.before.as_str()) || s.header_typedefs.contains(&u.name) {
            NameKind::Type
        } else if u.call || imported {
            NameKind::Function
        } else {
            NameKind::Name
        };
        match self.index.get(&u.name) {
            None => Some((kind, None)),
            Some(e) if !e.serves(kind, u.call) => Some((kind, None)),
            Some(e) if e.has('x') && !e.has('e') => Some((
                kind,
                Some(format!("declared on the board only under a CONFIG_ option its {defconfig} leaves out")),
            )),
            // Exported only by code the board's defconfig leaves out. (A name
            // its headers declare and no EXPORT_SYMBOL names is not held
            // against the module: 3.5 makes some exports with macros, e.g.
            // param_set_int's, which a reading of the text does not see.)
            Some(e) if imported && e.has('E') && !e.has('e') && !e.compiled_in() => Some((
                NameKind::ExportedSymbol,
                Some(format!(
                    "the board exports it only from code its {defconfig} leaves out: insmod would fail \
                    with \"Unknown symbol\""
                )),
            )),
            Some(_) => None,
        }
    }
}

/// A C unit kbuild compiled, from its `.NAME.o.cmd` file: the command and
/// the source.
struct Compiled {
    argv: Vec<String>,
    source: PathBuf,
}

/// The C units of the module built in `dir`: kbuild's saved command for
/// each object whose source is a C file of the directory (not the
/// generated `.mod.c`).
/// A build kept in the module cache ran in another directory, `built_in`:
/// its commands are moved to `dir`, where its sources are now.
fn compiled_units(dir: &Path, built_in: &Path, walk: &Path, out: &mut Vec<Compiled>) -> Result<()> {
    let mut entries: Vec<_> =
        std::fs::read_dir(walk).with_context(|| format!("reading {}", walk.display()))?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type()?.is_dir() {
            compiled_units(dir, built_in, &p, out)?;
            continue;
        }
        if !(name.starts_with('.') && name.ends_with(".o.cmd")) {
            continue;
        }
        let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        let Some(cmd) = text.lines().next().and_then(|l| l.split_once(" := ")).map(|(_, c)| c) else {
            continue;
        };
        let (from, to) = (built_in.display().to_string(), dir.display().to_string());
        let Some(argv) = shlex::split(cmd).map(|a| a.into_iter().map(|w| w.replace(&from, &to)).collect::<Vec<_>>())
        else {
            continue;
        };
        let Some(source) = argv.last().map(PathBuf::from) else {
            continue;
        };
        let c_file = source.extension().is_some_and(|x| x == "c") && !source.to_string_lossy().ends_with(".mod.c");
        if c_file && argv.iter().any(|a| a == "-c") && source.starts_with(dir) {
            out.push(Compiled { argv, source });
        }
    }
    Ok(())
}

/// kbuild's command for a unit turned into one that writes the unit as
/// the board's compiler would see it to `out`: directives only, with the
/// board's <linux/version.h> first on the include path.
fn preprocess_argv(argv: &[String], version_dir: &Path, out: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut skip = false;
    let mut put_include = true;
    for a in &argv[1..argv.len() - 1] {
        if std::mem::take(&mut skip) {
            continue;
        }
        match a.as_str() {
            "-c" => continue,
            "-o" => {
                skip = true;
                continue;
            }
            _ if a.starts_with("-Wp,-MMD") || a.starts_with("-Wp,-MD") => continue,
            _ if a.starts_with("-I") && put_include => {
                args.push(format!("-I{}", version_dir.display()).into());
                put_include = false;
            }
            _ => {}
        }
        args.push(a.into());
    }
    args.extend([
        "-E".into(),
        "-fdirectives-only".into(),
        "-o".into(),
        out.into(),
        argv[argv.len() - 1].clone().into(),
    ]);
    args
}

/// The check for a module built in `dir` (the copy, after kbuild): each C
/// unit preprocessed in the sandbox as the board's compiler would see it,
/// then [`BoardApiTables::lacks`]. `work` holds the outputs.
pub fn check(
    dir: &Path,
    built_in: &Path,
    kernel: &Kernel,
    work: &Path,
    sandbox: Sandbox,
    imports: &[String],
) -> Result<Vec<Lack>> {
    let board = shipped()?;
    let mut units = Vec::new();
    compiled_units(dir, built_in, dir, &mut units)?;
    let out_dir = work.join("board-api");
    let version_dir = out_dir.join("include");
    std::fs::create_dir_all(version_dir.join("linux"))
        .with_context(|| format!("creating {}", version_dir.display()))?;
    std::fs::write(version_dir.join("linux/version.h"), VERSION_H)
        .with_context(|| format!("writing in {}", version_dir.display()))?;
    // kbuild runs its commands in the kernel's build directory (the
    // include paths are relative to it).
    let policy = Policy { dir: kernel.build_dir.clone(), ..Policy::for_build(kernel, work, &[]) };
    let mut texts = Vec::new();
    for (n, u) in units.iter().enumerate() {
        let out = out_dir.join(format!("unit{n}.i"));
        let (program, args) = sandbox.command(&policy, &u.argv[0], &preprocess_argv(&u.argv, &version_dir, &out));
        let log = out_dir.join(format!("unit{n}.log"));
        process::Logged::new(&program, &args, &log, Duration::from_secs(120))
            .dir(&kernel.build_dir)
            .run(|_| {})
            .with_context(|| {
                format!("preprocessing {} as the board's compiler would (log: {})", u.source.display(), log.display())
            })?;
        texts.push(std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?);
    }
    let own = dir.display().to_string();
    let kernel_dirs: Vec<String> = [&kernel.build_dir, &kernel.source_dir, &crate::api::layer_dir(), &version_dir]
        .iter()
        .map(|d| format!("{}/", d.display().to_string().trim_end_matches('/')))
        .collect();
    let units: Vec<PreprocessedUnit> =
        texts.iter().map(|t| PreprocessedUnit { text: t, own_dir: &own, kernel_dirs: &kernel_dirs }).collect();
    Ok(board.lacks(&units, imports, &|f| std::fs::read_to_string(f).ok()))
}

/// Compile errors that say a module's own name is one the kernel declares
/// (`static int key_init(void)` against `<linux/key.h>`'s): when the
/// board's 3.5 declares it too, renaming is the fix on both kernels. Each
/// such name once, as a sentence for the build error's explanations.
pub fn clashes(board: &BoardApiTables, log: &str) -> Vec<String> {
    // gcc quotes with ‘…’ in a UTF-8 locale and '…' in the C one.
    let patterns = [
        r"error: conflicting types for ['‘](\w+)['’]",
        r"error: static declaration of ['‘](\w+)['’] follows non-static declaration",
        r"error: ['‘](\w+)['’] redeclared as different kind of symbol",
        r"error: redefinition of ['‘](\w+)['’]",
        r#"error: macro "(\w+)" (?:passed \d+ arguments, but takes just|requires \d+ arguments, but only) \d+"#,
    ];
    let res: Vec<regex::Regex> = patterns.iter().map(|p| regex::Regex::new(p).expect("a valid regex")).collect();
    let mut out: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for line in log.lines() {
        let Some(name) = res.iter().find_map(|r| r.captures(line)).map(|c| c[1].to_string()) else {
            continue;
        };
        let Some(e) = board.index.get(&name) else {
            continue;
        };
        if !(e.has('f') || e.has('m') || e.has('t')) || !seen.insert(name.clone()) {
            continue;
        }
        let header = e.header.as_deref().map(|h| format!(" ({h} declares it)")).unwrap_or_default();
        out.push(format!(
            "{name}: this name is the kernel's own on the board too{header}: rename it (e.g. mydrv_{name}); the \
                module's own definition clashes with the kernel's there as here\n  seen in: {}",
            line.trim()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    /// The shipped index and forms: the facts the check runs on.
    fn board() -> &'static BoardApiTables {
        static BOARD: OnceLock<BoardApiTables> = OnceLock::new();
        BOARD.get_or_init(|| load(&crate::repo_root().join("configs")).unwrap_or_else(|e| panic!("{e:#}")))
    }

    const KERNEL_DIRS: &[&str] = &["/k/", "/layer/"];

    /// The lacks of one unit: `headers` as the test kernel's (from /k/),
    /// then `module` as the module's own hello.c (in /m).
    fn lacks_of(headers: &str, module: &str) -> Vec<Lack> {
        let text = format!("# 1 \"/k/include/linux/x.h\" 1\n{headers}\n# 1 \"/m/hello.c\"\n{module}\n");
        let dirs: Vec<String> = KERNEL_DIRS.iter().map(|d| d.to_string()).collect();
        board().lacks(&[PreprocessedUnit { text: &text, own_dir: "/m", kernel_dirs: &dirs }], &[], &|_| None)
    }

    fn names(lacks: &[Lack]) -> Vec<&str> {
        lacks.iter().map(|l| l.name.as_str()).collect()
    }

    /// The test kernel's side of the held-out module, as 6.12's headers
    /// declare it.
    const MODERN_HEADERS: &str = "\
#define timer_setup(timer, callback, flags) __init_timer((timer), (callback), (flags))
struct timer_list { void (*function)(struct timer_list *); unsigned int flags; };
int mod_timer(struct timer_list *timer, unsigned long expires);
struct proc_ops { int (*proc_open)(struct inode *, struct file *); loff_t (*proc_lseek)(struct file *, loff_t, int); };
struct proc_dir_entry *proc_create(const char *name, umode_t mode, struct proc_dir_entry *parent,
                                   const struct proc_ops *proc_ops);
typedef long long time64_t;
struct timespec64 { time64_t tv_sec; long tv_nsec; };
void ktime_get_real_ts64(struct timespec64 *tv);";

    /// 3.5's headers make some functions by pasting (page-flags.h's
    /// `PAGEFLAG(Reserved, reserved)` makes SetPageReserved; buffer_head.h's
    /// `BUFFER_FNS(Uptodate, uptodate)` makes set_buffer_uptodate): no
    /// header spells them, and the mmap lesson's SetPageReserved() was
    /// called a name the board lacks until the index expanded the pastes.
    #[test]
    fn names_3_5_s_headers_make_by_pasting_are_in_the_index() {
        for name in ["SetPageReserved", "ClearPageReserved", "PageReserved", "set_buffer_uptodate", "__SetPageTail"] {
            let e = board().index.get(name).unwrap_or_else(|| panic!("{name} is not in the index"));
            assert!(e.serves(NameKind::Function, true), "{name}: {e:?}");
        }
        let held =
            |n: &str| lacks_of("#define SetPageReserved(page) set_bit(PG_reserved, &(page)->flags)", n).is_empty();
        assert!(held("static void f(struct page *p) { SetPageReserved(p); }"));
    }

    #[test]
    fn the_modern_module_is_named_with_each_version_and_3_5_form() {
        let module = "\
static struct timer_list t;
static struct timespec64 stamp;
static void fn(struct timer_list *unused)
{
\tktime_get_real_ts64(&stamp);
}
static int op(struct inode *inode, struct file *file) { return 0; }
static const struct proc_ops ops = {
\t.proc_open = op,
};
static int __init hello_init(void)
{
\ttimer_setup(&t, fn, 0);
\tproc_create(\"x\", 0444, NULL, &ops);
\treturn 0;
}";
        let lacks = lacks_of(MODERN_HEADERS, module);
        assert_eq!(names(&lacks), ["timespec64", "ktime_get_real_ts64", "proc_ops", "proc_open", "timer_setup"]);
        let find = |n: &str| lacks.iter().find(|l| l.name == n).unwrap();
        let (setup, ops, ts) = (find("timer_setup"), find("proc_ops"), find("ktime_get_real_ts64"));
        assert_eq!(
            (setup.kind, setup.at.as_slice(), setup.since.as_deref()),
            (NameKind::Macro, &["hello.c:13".to_string()][..], Some("4.14"))
        );
        assert!(setup.instead.as_deref().unwrap().starts_with("setup_timer(t, fn, data)"), "{setup}");
        assert_eq!((ops.kind, ops.since.as_deref()), (NameKind::Type, Some("5.6")));
        assert!(ops.instead.as_deref().unwrap().starts_with("struct file_operations"), "{ops}");
        assert_eq!((ts.kind, ts.at[0].as_str(), ts.since.as_deref()), (NameKind::Function, "hello.c:5", Some("3.17")));
        assert!(ts.instead.as_deref().unwrap().starts_with("getnstimeofday(&ts)"), "{ts}");
        // The text names the version and the form.
        let shown = setup.to_string();
        assert!(shown.contains("since Linux 4.14") && shown.contains("on 3.5 and here: setup_timer("), "{shown}");
    }

    /// 6.12's headers use these names and 3.5's index lacks them all: each
    /// is defined by the module below in one way only.
    const OWN_HEADERS: &str = "\
struct pinctrl_desc { const char *name; unsigned int npins; struct fwnode_handle *fwnode; };
struct k { int folio, swnode, devlink, xa_node, maple_tree, kunit_case, regmap_field, led_pattern, ida_alloc,
           gpiod_table; };
#define DEFINE_MUTEX(m) struct mutex m = { }
void mutex_lock(struct mutex *lock);";

    /// What the lead saw taken for the kernel's (led-platform's member
    /// `npins`, declared after a comma), and every other way a module
    /// defines a name: never the kernel's.
    #[test]
    fn a_module_s_own_names_are_never_the_kernel_s() {
        let module = "\
struct led_platform_data {
\tunsigned int first_pin, npins;
};
struct regmap_field { int x; };
typedef struct { int x; } led_pattern;
enum { devlink, xa_node };
static struct led_platform_data *pdata;
static DEFINE_MUTEX(fwnode);
#define gpiod_table 4
#define MY_NPINS(swnode) ((swnode)->npins)
static int ida_alloc(void) { return gpiod_table; }
static int count(struct led_platform_data *folio)
{
\tint i, n = devlink + xa_node + ida_alloc();
\tint kunit_case = sizeof(struct regmap_field) + sizeof(led_pattern);
\tmutex_lock(&fwnode);
\tfor (i = 0; i < pdata->npins; i++)
\t\tn += MY_NPINS(folio);
\tif (!n)
\t\tgoto maple_tree;
\treturn n + kunit_case;
maple_tree:
\treturn 0;
}";
        assert_eq!(names(&lacks_of(OWN_HEADERS, module)), Vec::<&str>::new());
        // The kernel's own uses of such names are named: the test sees them.
        let lacks =
            lacks_of(OWN_HEADERS, "static int f(struct pinctrl_desc *d)\n{\n\treturn d->npins + !!d->fwnode;\n}");
        assert_eq!(names(&lacks), ["pinctrl_desc", "npins", "fwnode"]);
        assert_eq!((lacks[0].kind, lacks[1].kind), (NameKind::Type, NameKind::StructMember));
    }

    /// kmod's `__attribute__((noreturn))`: GCC's words and what an
    /// attribute or asm holds are never names.
    #[test]
    fn gcc_keywords_attributes_and_asm_are_not_names() {
        // 3.5's index leaves GCC's words out, and lacks these attribute names.
        let headers = "void panic(const char *fmt, ...) __attribute__((__cold__, noreturn, __alloc_size__(1)));\n\
                       struct s { int n; int v[] __attribute__((__counted_by__(n))); };\n\
                       #define swap(a, b) do { typeof(a) __tmp = (a); (a) = (b); (b) = __tmp; } while (0)\n\
                       static inline int xa_node(void) { typeof(int) x = 0; return x; }";
        let module = "void mmc_shim_bug(void) __attribute__((noreturn, __alloc_size__(1)));\n\
                      static int f(int x)\n{\n\ttypeof(x) y = x;\n\
                      \tasm volatile(\"\" : : \"r\"(__counted_by__));\n\treturn __builtin_expect(y, 0);\n}";
        assert_eq!(names(&lacks_of(headers, module)), Vec::<&str>::new());
    }

    /// A kernel's macro where a declarator could stand is the kernel's: it
    /// expands there (`__ro_after_init`, 4.6).
    #[test]
    fn a_kernel_macro_after_a_declarator_is_the_kernel_s() {
        let headers = "#define __ro_after_init __attribute__((__section__(\".data..ro_after_init\")))";
        let lacks = lacks_of(headers, "static int debug __ro_after_init;");
        assert_eq!(names(&lacks), ["__ro_after_init"]);
        assert_eq!(lacks[0].kind, NameKind::Macro);
    }

    /// A module's own macro body counts (it is the module's code), and a
    /// name the module defines in one unit is its own in another.
    #[test]
    fn own_macro_bodies_count_and_own_names_span_units() {
        let lacks = lacks_of(MODERN_HEADERS, "#define MY_SETUP(tm, f) \\\n\ttimer_setup(tm, f, 0)\n");
        assert_eq!(names(&lacks), ["timer_setup"]);
        assert_eq!(lacks[0].at, ["hello.c:2"]);
        let dirs: Vec<String> = KERNEL_DIRS.iter().map(|d| d.to_string()).collect();
        let a = format!("# 1 \"/k/x.h\"\n{OWN_HEADERS}\n# 1 \"/m/a.c\"\nstruct own_s {{ int folio; }};\n");
        let b =
            format!("# 1 \"/k/x.h\"\n{OWN_HEADERS}\n# 1 \"/m/b.c\"\nint g(struct own_s *s) {{ return s->folio; }}\n");
        let units = [
            PreprocessedUnit { text: &a, own_dir: "/m", kernel_dirs: &dirs },
            PreprocessedUnit { text: &b, own_dir: "/m", kernel_dirs: &dirs },
        ];
        assert_eq!(names(&board().lacks(&units, &[], &|_| None)), Vec::<&str>::new());
    }

    /// Whose a line is: the kernel's and the layer's directories, kbuild's
    /// relative paths and GCC's own are not the module's; a header beside
    /// the module's folder is, named from the folder.
    #[test]
    fn lines_are_the_module_s_unless_the_kernel_s() {
        let dirs: Vec<String> = KERNEL_DIRS.iter().map(|d| d.to_string()).collect();
        let u = PreprocessedUnit { text: "", own_dir: "/w/module", kernel_dirs: &dirs };
        assert!(u.own("/w/module/led.c") && u.own("/w/include/board.h"));
        assert!(!u.own("/k/include/linux/timer.h") && !u.own("/layer/include/compat35/timer.h"));
        assert!(!u.own("./arch/arm/include/generated/asm/x.h") && !u.own("<built-in>") && !u.own("<command-line>"));
        assert_eq!(u.place("/w/module/led.c", 3), "led.c:3");
        assert_eq!(u.place("/w/include/board.h", 7), "../include/board.h:7");
    }

    /// Every name the forms give a version and a form to is one the index
    /// does not hold as a function, macro or type: a form never reaches a
    /// name the check cannot flag as such.
    #[test]
    fn the_forms_are_for_names_the_index_lacks() {
        let b = board();
        assert!(b.index.names.len() > 200_000, "{}", b.index.names.len());
        for f in &b.forms {
            if let Some(e) = b.index.get(&f.name) {
                assert!(!(e.has('t') || e.has('f') || e.has('m')), "{} is in the index as {}", f.name, e.kinds);
            }
        }
    }

    #[test]
    fn a_malformed_index_names_the_fix() {
        let err = Index::parse("defconfig\td\nnames\t2\nfiles\t0\nincludes\t0\na\tf\t\n", "x.tsv").unwrap_err();
        assert!(format!("{err:#}").contains("holds 1 names, its header says 2: remake it"), "{err:#}");
        let err = Index::parse("nonsense\n", "x.tsv").unwrap_err();
        assert!(format!("{err:#}").contains("expected `defconfig<TAB>…`"), "{err:#}");
    }

    /// `#if` on the kernel's version, as 3.5.0 takes it; anything else is unknown.
    #[test]
    fn version_conditions_are_taken_as_on_3_5() {
        for (cond, want) in [
            ("LINUX_VERSION_CODE >= KERNEL_VERSION(4, 11, 0)", Some(false)),
            ("LINUX_VERSION_CODE < KERNEL_VERSION(3,10,0)", Some(true)),
            ("(LINUX_VERSION_CODE == KERNEL_VERSION(3,5,0))", Some(true)),
            ("KERNEL_VERSION(2,6,36) <= LINUX_VERSION_CODE", Some(true)),
            ("0", Some(false)),
            ("1", Some(true)),
            ("defined(CONFIG_OF)", None),
            ("LINUX_VERSION_CODE >= KERNEL_VERSION(4,11,0) && defined(X)", None),
        ] {
            assert_eq!(version_condition(cond), want, "{cond}");
        }
    }

    /// A module's own includes, read from its text: certain outside any
    /// conditional and in a branch 3.5 takes; left out of a branch it does
    /// not; counted but never called missing under another condition. A
    /// quoted header beside the file is the module's own.
    #[test]
    fn own_includes_are_read_with_3_5_s_branches() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mine.h"), "").unwrap();
        let file = dir.path().join("m.c").display().to_string();
        let text = "#include <linux/module.h>\n#include \"mine.h\"\n\
            #if LINUX_VERSION_CODE >= KERNEL_VERSION(4, 11, 0)\n#include <linux/sched/signal.h>\n\
            #else\n#include <linux/sched.h>\n#endif\n\
            #ifdef CONFIG_OF\n#include <linux/of.h>\n#endif\n  #  include \"asm/io.h\"\n";
        let own_dir = dir.path().display().to_string();
        let got = own_includes(&[(file.clone(), own_dir)], &|f| (f == file).then(|| text.to_string()));
        let got: Vec<(&str, &str, bool)> = got.iter().map(|i| (i.spelled.as_str(), i.at.as_str(), i.certain)).collect();
        assert_eq!(
            got,
            [
                ("linux/module.h", "m.c:1", true),
                ("linux/sched.h", "m.c:6", true),
                ("linux/of.h", "m.c:9", false),
                ("asm/io.h", "m.c:11", true)
            ]
        );
    }

    /// 3.5's include path and graph, from the shipped index: the generated
    /// headers are there, <linux/interrupt.h> reaches <mach/irqs.h> (what
    /// 3.5's ARM headers did for a module), and <linux/sched/signal.h>
    /// (Linux 4.11) is not there at all.
    #[test]
    fn the_index_resolves_and_reaches_as_3_5_s_kbuild() {
        let index = &board().index;
        let file = |s: &str| index.resolve(s).map(|n| index.files[n as usize].as_str());
        assert_eq!(file("linux/gpio.h"), Some("include/linux/gpio.h"));
        assert_eq!(file("asm/io.h"), Some("arch/arm/include/asm/io.h"));
        assert_eq!(file("asm/errno.h"), Some("arch/arm/include/generated/asm/errno.h"));
        assert_eq!(file("mach/gpio.h"), Some("arch/arm/mach-exynos/include/mach/gpio.h"));
        assert_eq!(file("plat/gpio-cfg.h"), Some("arch/arm/plat-samsung/include/plat/gpio-cfg.h"));
        assert_eq!(file("linux/version.h"), Some("include/linux/version.h"));
        assert_eq!(file("linux/sched/signal.h"), None);
        let reach = index.reach(&[index.resolve("linux/interrupt.h").unwrap()]);
        assert!(reach.contains(&index.resolve("mach/irqs.h").unwrap()));
        let errno = index.reach(&[index.resolve("asm/errno.h").unwrap()]);
        assert!(errno.contains(&index.resolve("asm-generic/errno.h").unwrap()), "the wrapper includes its header");
    }

    /// The five fixtures the comparison with 3.5 itself found not to build
    /// there each lacked an include that 6.12's headers make for them; one
    /// such module, and a header 3.5 does not have at all.
    #[test]
    fn a_name_3_5_s_headers_declare_but_the_module_s_includes_do_not_reach_is_named() {
        const HEADERS: &str = "int gpio_get_value(unsigned gpio);\nstruct task_struct;\n\
            void send_sig(int sig, struct task_struct *p, int priv);\nenum { IRQ_TYPE_EDGE_BOTH = 3 };";
        let lacks = |includes: &str| {
            let module = "static int f(void)\n{\n\treturn gpio_get_value(1) + IRQ_TYPE_EDGE_BOTH;\n}";
            let text = format!("# 1 \"/k/include/linux/x.h\" 1\n{HEADERS}\n# 1 \"/m/hello.c\"\n{module}\n");
            let source = format!("{includes}{module}\n");
            let dirs: Vec<String> = KERNEL_DIRS.iter().map(|d| d.to_string()).collect();
            let unit = PreprocessedUnit { text: &text, own_dir: "/m", kernel_dirs: &dirs };
            board().lacks(&[unit], &[], &|f| (f == "/m/hello.c").then(|| source.clone()))
        };
        let found = lacks("#include <linux/module.h>\n#include <linux/sched/signal.h>\n");
        let got: Vec<(&str, NameKind)> = found.iter().map(|l| (l.name.as_str(), l.kind)).collect();
        assert_eq!(
            got,
            [
                ("<linux/sched/signal.h>", NameKind::Header),
                ("gpio_get_value", NameKind::Function),
                ("IRQ_TYPE_EDGE_BOTH", NameKind::Name)
            ],
            "{found:#?}"
        );
        assert_eq!(found[0].at, ["hello.c:2"]);
        let instead = found[0].instead.as_deref().unwrap_or_default();
        assert!(instead.starts_with("<linux/sched.h>, "), "the form from linux35-forms.toml: {instead}");
        let note = found[1].note.as_deref().unwrap();
        assert!(note.contains("(<linux/gpio.h>, "), "{note}");
        assert!(note.contains("stops at an implicit declaration"), "{note}");
        assert!(found[2].note.as_deref().unwrap().contains("(<linux/irq.h>)"), "{found:#?}");
        // With the includes 3.5 needs, nothing.
        let found = lacks("#include <linux/module.h>\n#include <linux/gpio.h>\n#include <linux/irq.h>\n");
        assert_eq!(names(&found), Vec::<&str>::new(), "{found:#?}");
    }

    /// The `key_init` clash, as gcc words it (either quotes).
    #[test]
    fn a_clash_with_a_kernel_name_says_rename_it() {
        for log in [
            "hello_key.c:13:12: error: conflicting types for \u{2018}key_init\u{2019}; have \u{2018}int(void)\u{2019}",
            "hello_key.c:13:12: error: conflicting types for 'key_init'; have 'int(void)'",
        ] {
            let said = clashes(board(), log);
            assert_eq!(said.len(), 1, "{log}: {said:?}");
            let want = "key_init: this name is the kernel's own on the board too (include/linux/key.h declares it): \
                        rename it";
            assert!(said[0].starts_with(want), "{}", said[0]);
        }
        assert!(clashes(board(), "x.c:1:1: error: conflicting types for 'my_own_thing'").is_empty());
    }
}
