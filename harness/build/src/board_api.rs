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
pub use crate::judge::lack::{Kind, Lack};
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
pub struct Entry {
    pub kinds: String,
    /// The header it first appears in.
    pub header: Option<String>,
}

impl Entry {
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
    fn serves(&self, kind: Kind, call: bool) -> bool {
        match kind {
            Kind::Type => self.has('t') || self.has('m'),
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
    pub names: HashMap<String, Entry>,
}

impl Index {
    /// Parses the index's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Index> {
        let mut lines = text.lines().filter(|l| !l.starts_with('#'));
        let mut field = |key: &str| -> Result<String> {
            let l = lines.next().unwrap_or_default();
            l.strip_prefix(key).and_then(|v| v.strip_prefix('\t')).map(str::to_string).with_context(|| {
                format!("{origin}: expected `{key}<TAB>…`, found {l:?}: remake it with scripts/index-linux35")
            })
        };
        let defconfig = field("defconfig")?;
        let number = |v: String| v.parse::<usize>().with_context(|| format!("{origin}: {v:?} is not a count"));
        let (n_names, n_files) = (number(field("names")?)?, number(field("files")?)?);
        let files: Vec<String> = lines.by_ref().take(n_files).map(str::to_string).collect();
        let mut names = HashMap::with_capacity(n_names);
        for l in lines {
            let mut cols = l.split('\t');
            let (Some(name), Some(kinds)) = (cols.next(), cols.next()) else {
                bail!("{origin}: malformed line {l:?}: remake it with scripts/index-linux35");
            };
            let header = cols.next().and_then(|n| n.parse::<usize>().ok()).and_then(|n| files.get(n).cloned());
            names.insert(name.to_string(), Entry { kinds: kinds.to_string(), header });
        }
        if names.len() != n_names {
            bail!(
                "{origin}: holds {} names, its header says {n_names}: remake it with scripts/index-linux35",
                names.len()
            );
        }
        Ok(Index { defconfig, names })
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
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
pub struct Board {
    pub index: Index,
    forms: Vec<Form>,
}

/// The shipped index and forms (configs/).
pub fn load(configs: &Path) -> Result<Board> {
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
    Ok(Board { index, forms: forms.name })
}

/// One preprocessed unit: its text, and the directory whose files are the
/// module's own.
pub struct Unit<'a> {
    pub text: &'a str,
    pub own_dir: &'a str,
}

/// A C token of the module's own lines, with what stands either side.
struct Use {
    name: String,
    at: String,
    before: String,
    call: bool,
}

/// What one unit holds: the module's own uses and macros, and what the test
/// kernel's headers in it name (identifiers, macros, typedefs).
#[derive(Default)]
struct Scan {
    uses: Vec<Use>,
    own_macros: HashSet<String>,
    own_types: HashSet<String>,
    header_names: HashSet<String>,
    header_macros: HashSet<String>,
    header_typedefs: HashSet<String>,
}

const KEYWORDS: &[&str] = &[
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern", "float",
    "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed", "sizeof",
    "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "_Bool", "defined",
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

/// Reads one preprocessed unit: GCC's line markers say which file each
/// line is from.
fn scan(unit: &Unit, out: &mut Scan) {
    let (mut file, mut line_no, mut in_comment) = (String::new(), 0usize, false);
    let own_prefix = format!("{}/", unit.own_dir.trim_end_matches('/'));
    let (mut typedef, mut own_typedef) = (Typedef::default(), Typedef::default());
    for line in unit.text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            // `# 12 "file" flags`: the next line is line 12 of file.
            let mut parts = rest.splitn(2, ' ');
            if let (Some(n), Some(f)) = (parts.next().and_then(|n| n.parse().ok()), parts.next()) {
                line_no = n;
                file = f.split('"').nth(1).unwrap_or_default().to_string();
                in_comment = false;
                continue;
            }
        }
        let own = file.starts_with(&own_prefix);
        let this_line = line_no;
        line_no += 1;
        let trimmed = line.trim_start();
        if let Some(d) = trimmed.strip_prefix("#define ").or_else(|| trimmed.strip_prefix("#undef ")) {
            let name: String = d.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if own {
                out.own_macros.insert(name);
            } else {
                out.header_macros.insert(name);
                continue;
            }
        }
        let toks = tokens(line, &mut in_comment);
        if !own {
            header_tokens(&toks, &mut typedef, out);
            continue;
        }
        let at = format!("{}:{this_line}", file.strip_prefix(&own_prefix).unwrap_or(&file));
        for t in &toks {
            if let Some(name) = own_typedef.feed(t) {
                out.own_types.insert(name);
            }
        }
        for (i, t) in toks.iter().enumerate() {
            if !is_ident(t) || KEYWORDS.contains(&t.as_str()) {
                continue;
            }
            let before = if i > 0 { toks[i - 1].clone() } else { String::new() };
            let call = toks.get(i + 1).is_some_and(|n| n == "(");
            out.uses.push(Use { name: t.clone(), at: at.clone(), before, call });
        }
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

impl Board {
    /// The names the module's own lines in `units` use that the board
    /// lacks, each once with all its places, in the order first used.
    /// `imports` are the module's undefined symbols (what it needs
    /// exported).
    pub fn lacks(&self, units: &[Unit], imports: &[String]) -> Vec<Lack> {
        let mut found: Vec<Lack> = Vec::new();
        for unit in units {
            let mut s = Scan::default();
            scan(unit, &mut s);
            for u in &s.uses {
                let Some((kind, note)) = self.judge(u, &s, imports) else {
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
        }
        found
    }

    /// Whether one use is of a name the board lacks, and of which kind.
    fn judge(&self, u: &Use, s: &Scan, imports: &[String]) -> Option<(Kind, Option<String>)> {
        let defconfig = &self.index.defconfig;
        let imported = imports.contains(&u.name);
        if s.own_macros.contains(&u.name)
            || s.own_types.contains(&u.name)
            || !(s.header_names.contains(&u.name) || s.header_macros.contains(&u.name) || imported)
        {
            // The module's own name, or one the test kernel does not have either.
            return None;
        }
        let kind = if s.header_macros.contains(&u.name) {
            Kind::Macro
        } else if ["struct", "union", "enum"].contains(&u.before.as_str()) || s.header_typedefs.contains(&u.name) {
            Kind::Type
        } else if u.before == "." || u.before == "->" {
            Kind::StructMember
        } else if u.call || imported {
            Kind::Function
        } else {
            Kind::Name
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
                Kind::ExportedSymbol,
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
/// then [`Board::lacks`]. `work` holds the outputs.
pub fn check(
    dir: &Path,
    built_in: &Path,
    kernel: &Kernel,
    work: &Path,
    sandbox: Sandbox,
    imports: &[String],
) -> Result<Vec<Lack>> {
    let board = load(&crate::repo_root().join("configs"))?;
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
    let units: Vec<Unit> = texts.iter().map(|t| Unit { text: t, own_dir: &own }).collect();
    Ok(board.lacks(&units, imports))
}

/// Compile errors that say a module's own name is one the kernel declares
/// (`static int key_init(void)` against `<linux/key.h>`'s): when the
/// board's 3.5 declares it too, renaming is the fix on both kernels. Each
/// such name once, as a sentence for the build error's explanations.
pub fn clashes(board: &Board, log: &str) -> Vec<String> {
    let patterns = [
        r"error: conflicting types for '(\w+)'",
        r"error: static declaration of '(\w+)' follows non-static declaration",
        r"error: '(\w+)' redeclared as different kind of symbol",
        r"error: redefinition of '(\w+)'",
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
