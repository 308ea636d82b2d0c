//! The module under test: built with kbuild against the cached kernel, in a
//! copy inside the run directory, so that parallel runs against different
//! kernels never share build products and the user's tree stays clean.

use crate::api::Api;
use crate::judge::step::Transcript;
use crate::kernel::Kernel;
use crate::process;
use crate::sandbox::{Policy, Sandbox};
use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection, ObjectSymbol};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Module {
    pub ko: PathBuf,
    /// The name insmod registers (`name=` in .modinfo), which rmmod takes.
    pub name: String,
    pub vermagic: String,
    /// The modules it needs loaded first (modinfo `depends`).
    pub depends: Vec<String>,
    /// `WARNING:` lines modpost printed.
    pub modpost_warnings: Vec<String>,
    /// Where its sources were compiled and are now; `None` for a module
    /// built elsewhere (the kernel's own, a prebuilt .ko).
    pub sources: Option<Sources>,
}

/// The directory a module's build ran in, which its debug info's file names
/// name (a run directory since removed, for a build kept in the module
/// cache), and the directory holding the same sources now (this run's copy):
/// what gdb's `set substitute-path` needs to show source lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    pub built_in: PathBuf,
    pub now: PathBuf,
}

/// Checks that `dir` is a module directory kbuild can read: a `Kbuild` file
/// or a `Makefile` (read by kbuild as a kbuild file, never run).
pub fn check_dir(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        bail!("--module {}: no such directory", dir.display());
    }
    if !dir.join("Kbuild").is_file() && !dir.join("Makefile").is_file() {
        bail!("module directory {} has no Kbuild or Makefile: add a Kbuild file with `obj-m := NAME.o`", dir.display());
    }
    Ok(())
}

/// The one way a module directory is built: kbuild's own external-module
/// build, `make -C KDIR M=DIR modules`. kbuild reads the directory's Kbuild
/// or Makefile as a kbuild file (obj-m, <mod>-y, ccflags-y), so a tutorial
/// Makefile's `all:` rule (which may run `sudo insmod` or the vendor's
/// compiler) and its hard-coded LINUX_SRC are never used. Pure, for testing.
pub fn make_argv(module_dir: &Path, kernel: &Kernel, jobs: usize) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "-C".into(),
        kernel.build_dir.clone().into(),
        format!("M={}", module_dir.display()).into(),
        format!("ARCH={}", kernel.arch).into(),
        format!("CROSS_COMPILE={}", kernel.cross_compile).into(),
    ];
    // The kernel's own make variables (a 3.5 tree's compiler and flags):
    // the module must be compiled as the kernel was.
    let mut kcflags = String::new();
    for var in &kernel.make_vars {
        match var.strip_prefix("KCFLAGS=") {
            Some(flags) => kcflags = format!(" {flags}"),
            None => a.push(var.into()),
        }
    }
    // Debug information in the module's objects whatever the kernel's
    // config (it costs the kernel nothing): reports name file.c:LINE
    // (judge/lines.rs). The guest gets the .ko without it (split_debug).
    a.push(format!("KCFLAGS=-g{kcflags}").into());
    a.extend([format!("-j{jobs}").into(), "modules".into()]);
    a
}

/// Copies `src` to `dest`, leaving out VCS data and build products. A
/// symlink is followed when what it names is inside `root` (the module
/// directory) and refused otherwise: kept as a link, it would let the build
/// write through it into the user's tree, or read what lies outside.
fn copy_sources(root: &Path, src: &Path, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    for entry in std::fs::read_dir(src).with_context(|| format!("reading module directory {}", src.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let product =
            [".o", ".ko", ".mod", ".mod.c", ".a", ".o_shipped", ".symvers", ".order"].iter().any(|s| name.ends_with(s))
                || (name.starts_with('.') && name.ends_with(".cmd"));
        if name == "target" || name == ".git" || product {
            continue;
        }
        let mut from = entry.path();
        let to = dest.join(&name);
        let mut ft = entry.file_type()?;
        if ft.is_symlink() {
            from = symlink_inside(root, &from)?;
            ft = std::fs::metadata(&from).with_context(|| format!("reading {}", from.display()))?.file_type();
        }
        if ft.is_dir() {
            copy_sources(root, &from, &to)?;
        } else {
            std::fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
        }
    }
    Ok(())
}

/// What the symlink `link` names, if that is inside `root` (itself not
/// inside the link's own directory chain, which would copy forever).
fn symlink_inside(root: &Path, link: &Path) -> Result<PathBuf> {
    let target = std::fs::read_link(link).unwrap_or_default();
    let refuse = |why: &str| {
        anyhow::anyhow!(
            "{}: a symlink to {}, {why}: the build sees only the module directory's own files; copy the file in \
                instead",
            link.display(),
            target.display()
        )
    };
    let resolved = link.canonicalize().map_err(|_| refuse("which does not exist"))?;
    if !resolved.starts_with(root) {
        return Err(refuse("outside the module directory"));
    }
    if link.parent().is_some_and(|p| p.starts_with(&resolved)) {
        return Err(refuse("a directory that holds the link itself"));
    }
    Ok(resolved)
}

/// A failed module build: the compiler's error lines, and where the whole
/// log is. The run directory holding the log must be kept.
#[derive(Debug)]
pub struct BuildError {
    pub dir: PathBuf,
    pub errors: Vec<String>,
    pub log: PathBuf,
    /// Known kernel changes since 3.5 the log shows (changes.rs).
    pub explanations: Vec<String>,
    /// Under `--api 3.5`, the port list from the layer's marks the log has
    /// so far: printed whatever the outcome, a build error too.
    pub ports: Vec<crate::changes::Port>,
    /// The tools the module's own Makefile or Kbuild sets, which kbuild must
    /// take from the kernel's build (see [`tool_overrides`]).
    pub overrides: Vec<ToolOverride>,
    /// Includes of files beside the module folder that were not copied,
    /// each with why (beside.rs).
    pub missing: Vec<crate::beside::Missing>,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The headline is the first error line, never a command line.
        match self.errors.first() {
            Some(first) => writeln!(f, "the module in {} does not compile: {first}", self.dir.display())?,
            None => writeln!(f, "the module in {} does not compile:", self.dir.display())?,
        }
        for l in &self.errors {
            writeln!(f, "  | {l}")?;
        }
        for m in &self.missing {
            writeln!(f, "not copied into the build: {m}")?;
        }
        for o in &self.overrides {
            writeln!(
                f,
                "{o}: kbuild takes {} from the kernel's build ({}), and the module's file overrides it; remove that \
                    line (on the board, `make -C KDIR M=$PWD` with that tool installed would build with it)",
                o.var, o.ours
            )?;
        }
        if !self.ports.is_empty() {
            writeln!(
                f,
                "built with --api 3.5: the layer gave back {} API(s) of Linux 3.5 that this kernel lacks; a \
                port to it changes these:",
                self.ports.len()
            )?;
            for p in &self.ports {
                for l in p.to_string().lines() {
                    writeln!(f, "  {l}")?;
                }
            }
        }
        if !self.explanations.is_empty() {
            writeln!(f, "what changed since Linux 3.5:")?;
            for e in &self.explanations {
                for l in e.lines() {
                    writeln!(f, "  {l}")?;
                }
            }
        }
        write!(f, "full log: {}", self.log.display())
    }
}

impl std::error::Error for BuildError {}

/// The error lines in a build log, at most `max`: the compiler's, a tool
/// the shell could not find (`/bin/sh: 1: arm-hisiv100nptl-linux-gcc: not
/// found`), then make's own (`make[2]: *** … Error 127`), in log order.
pub fn error_lines(log: &str, max: usize) -> Vec<String> {
    log.lines()
        .filter(|l| {
            l.contains("error:")
                || l.contains("error[")
                || l.contains("No such file or directory")
                || l.ends_with(": not found")
                || l.ends_with(": command not found")
                || (l.starts_with("make") && l.contains(": *** "))
        })
        .take(max)
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// The variables of kbuild's toolchain that a module's file must not set:
/// kbuild takes them from the kernel's build (the command line sets ARCH and
/// CROSS_COMPILE, which a plain assignment cannot override, but CC and LD it
/// reads from the kernel's Makefile, and a module's `CC = …` wins there).
pub const TOOL_VARIABLES: [&str; 4] = ["CC", "LD", "ARCH", "CROSS_COMPILE"];

/// A module's Makefile or Kbuild setting one of [`TOOL_VARIABLES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOverride {
    /// `Makefile:3`, relative to the module directory.
    pub at: String,
    pub var: &'static str,
    /// The value as written.
    pub value: String,
    /// What the harness's build gives it instead.
    pub ours: String,
}

impl std::fmt::Display for ToolOverride {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} sets {} = {}", self.at, self.var, self.value)
    }
}

/// Each assignment to a [`TOOL_VARIABLES`] name in the kbuild files of
/// `dir` (`Kbuild`, `Makefile`): `CC = x`, `CC := x`, `override CC = x`,
/// `export CROSS_COMPILE ?= x`. Pure but for reading the two files.
pub fn tool_overrides(dir: &Path, kernel: &Kernel) -> Vec<ToolOverride> {
    let ours = |var: &str| match var {
        "CC" => format!("{}gcc", kernel.cross_compile),
        "LD" => format!("{}ld", kernel.cross_compile),
        "ARCH" => kernel.arch.clone(),
        _ => kernel.cross_compile.clone(),
    };
    let mut found = Vec::new();
    for file in ["Kbuild", "Makefile"] {
        let Ok(text) = std::fs::read_to_string(dir.join(file)) else { continue };
        for (n, line) in text.lines().enumerate() {
            let words = line.trim_start().trim_start_matches("override ").trim_start_matches("export ").trim_start();
            let Some(var) = TOOL_VARIABLES.iter().find(|v| words.starts_with(**v)) else { continue };
            let rest = words[var.len()..].trim_start();
            let Some(value) = ["=", ":=", "::=", "?=", "+="].iter().find_map(|op| rest.strip_prefix(op)) else {
                continue;
            };
            found.push(ToolOverride {
                at: format!("{file}:{}", n + 1),
                var,
                value: value.trim().to_string(),
                ours: ours(var),
            });
        }
    }
    found
}

/// What a module directory's build made: its modules in load order, and
/// under `--api 3.5` the port list (the 3.5 APIs the layer gave back).
#[derive(Debug, Clone)]
pub struct ModuleBuild {
    pub modules: Vec<Module>,
    pub ports: Vec<crate::changes::Port>,
    /// Under `--api 3.5`: the names its own code uses that the board's 3.5
    /// lacks (board_api.rs), which would not build or load there.
    pub lacks: Vec<crate::board_api::Lack>,
    /// Taken from the module cache: the same sources were built before.
    pub cached: bool,
}

/// How a module directory is built.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// make's -j.
    pub jobs: usize,
    pub api: Api,
    pub sandbox: Sandbox,
    /// Built with gcov (`--coverage`): kbuild's GCOV_PROFILE=y for every
    /// object of the folder, the user's Makefile untouched.
    pub coverage: bool,
}

/// Builds the modules in `src` against `kernel` as `opts` say, in
/// `work/module`, and returns them in load order: a module after those it
/// depends on (modinfo `depends`), otherwise in kbuild's `modules.order`.
pub fn build(src: &Path, kernel: &Kernel, work: &Path, opts: &Options) -> Result<ModuleBuild> {
    let Options { jobs, api, sandbox, coverage } = *opts;
    check_dir(src)?;
    let src = src.canonicalize().with_context(|| format!("--module {}: no such directory", src.display()))?;
    let dir = work.join("module");
    copy_sources(&src, &src, &dir)?;
    // What its sources include from beside its folder, copied beside the
    // copy, read-only (beside.rs).
    let beside = crate::beside::find(&src)?;
    let sealed = beside.copy(&src, &dir)?;
    if api == Api::Linux35 {
        crate::api::wrap(&dir, &crate::api::layer_dir())?;
    }
    let gcov = |mut argv: Vec<OsString>| {
        if api == Api::Linux35 {
            // 3.5's modpost only warned of a symbol no kernel exports: such a
            // module built, and failed at insmod ("Unknown symbol …"), on
            // the board; 6.12's fails the build unless told to warn.
            argv.insert(argv.len() - 1, "KBUILD_MODPOST_WARN=1".into());
        }
        if coverage {
            // A command-line variable: it wins over the folder's own
            // GCOV_PROFILE and reaches kbuild's sub-makes, the Makefile as
            // it is. kbuild adds -fprofile-arcs -ftest-coverage only on a
            // kernel with CONFIG_GCOV_KERNEL; the .gcno files land beside
            // the objects.
            argv.insert(argv.len() - 1, "GCOV_PROFILE=y".into());
        }
        argv
    };
    let argv = gcov(make_argv(&dir, kernel, jobs));
    // The key takes the command without the run's own directory in it, and
    // what was copied from beside the folder.
    let mut key_argv = gcov(make_argv(Path::new("M"), kernel, 1));
    key_argv.push(format!("beside={}", beside.digest(&src)?).into());
    let (entry, found) = crate::module_cache::entry(&src, &dir, kernel, api, &key_argv)?;
    let log = work.join("module-build.log");
    if found {
        entry.restore(&dir, &log)?;
        let built_in = entry.built_in()?;
        let built = finish(&dir, &log, &built_in, kernel, api)?;
        let checked = board_check(built, (&src, &dir), &built_in, kernel, (work, Some(&entry.dir)), opts)?;
        return Ok(ModuleBuild { cached: true, ..checked });
    }
    // A Rust module's cargo target dir is kept per source directory, so its
    // dependencies are not rebuilt on every run.
    let cargo_target = crate::cache::root().join("cargo").join(crate::cache::digest([src.display().to_string()]));
    std::fs::create_dir_all(&cargo_target).with_context(|| format!("creating {}", cargo_target.display()))?;
    let envs = [("CARGO_TARGET_DIR", OsString::from(&cargo_target))];
    let policy = Policy { sealed, ..Policy::for_build(kernel, work, std::slice::from_ref(&cargo_target)) };
    let (program, args) = sandbox.command(&policy, "make", &argv);
    let result = process::Logged::new(&program, &args, &log, Duration::from_secs(15 * 60)).envs(&envs).run(|_| {});
    if let Err(e) = result {
        return Err(build_error(&src, &dir, &log, kernel, api, e, beside.missing));
    }
    if api == Api::Linux35 {
        layer_safety(&src, &dir, &log)?;
        timer_layout(&src, &dir, &log, work, kernel)?;
    }
    let mut kos: Vec<PathBuf> = Vec::new();
    collect_kos(&dir, &mut kos)?;
    if kos.is_empty() {
        bail!(
            "building {} produced no .ko: does its Kbuild or Makefile say `obj-m += NAME.o`? (log: {})",
            src.display(),
            log.display()
        );
    }
    for ko in &kos {
        split_debug(ko, kernel, work)?;
    }
    // Only for the next run: a failure to keep it is said, not fatal.
    if let Err(e) = crate::module_cache::publish(&entry, &dir, &log) {
        eprintln!("harness: warning: keeping the module build: {e:#}");
    }
    let built = finish(&dir, &log, &dir, kernel, api)?;
    board_check(built, (&src, &dir), &dir, kernel, (work, Some(&entry.dir)), opts)
}

/// Under `--api 3.5`, what of the board's API the module in `dir` lacks
/// (board_api.rs), added to `built`; its kbuild commands name `built_in`.
/// `src` is the user's directory: the layer's own modules (the virtual
/// board) use this kernel's API on purpose, and are not checked. `kept`,
/// the build's cache entry, keeps the answer for the next run of the
/// same build (preprocessing took a warm check's longest 0.3 s).
fn board_check(
    built: ModuleBuild,
    (src, dir): (&Path, &Path),
    built_in: &Path,
    kernel: &Kernel,
    (work, kept): (&Path, Option<&Path>),
    opts: &Options,
) -> Result<ModuleBuild> {
    if opts.api != Api::Linux35 || src.starts_with(crate::api::layer_dir()) {
        return Ok(built);
    }
    // What the kernel must export: the undefined symbols that no module of
    // the directory defines.
    let (mut imports, mut own) = (Vec::new(), std::collections::HashSet::new());
    for m in &built.modules {
        imports.extend(imports_of(&m.ko)?);
        own.extend(definitions(&m.ko)?);
    }
    imports.retain(|s| !own.contains(s));
    let key = lacks_key(&imports)?;
    let file = kept.map(|k| k.join("board-api.json"));
    if let Some(lacks) = file.as_deref().and_then(|f| kept_lacks(f, &key)) {
        return Ok(ModuleBuild { lacks, ..built });
    }
    let lacks = crate::board_api::check(dir, built_in, kernel, work, opts.sandbox, &imports)
        .context("checking the module against the board's Linux 3.5 API")?;
    if let Some(f) = file {
        // Only for the next run: a failure to keep it costs that run 0.3 s.
        let text = serde_json::json!({ "key": key, "lacks": lacks }).to_string();
        let _ = std::fs::write(f, text);
    }
    Ok(ModuleBuild { lacks, ..built })
}

/// What a kept answer of the board-API check must have been made with: this
/// harness (its executable, whose code checks), the board's index and
/// forms, the module's imports.
fn lacks_key(imports: &[String]) -> Result<String> {
    let configs = crate::repo_root().join("configs");
    let exe = std::env::current_exe().context("finding the harness's own executable")?;
    let mut parts = vec![crate::cache::stamp(&exe).into_bytes(), imports.join(" ").into_bytes()];
    for f in [crate::board_api::INDEX, crate::board_api::FORMS] {
        parts.push(std::fs::read(configs.join(f)).with_context(|| format!("reading {}", configs.join(f).display()))?);
    }
    Ok(crate::cache::digest(parts))
}

/// The answer kept in `file`, if it was made with `key`.
fn kept_lacks(file: &Path, key: &str) -> Option<Vec<crate::judge::lack::Lack>> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file).ok()?).ok()?;
    (v["key"] == key).then(|| serde_json::from_value(v["lacks"].clone()).ok()).flatten()
}

/// A failed build's error: its first error lines (or, when the log has
/// none, why make stopped, never its command line), the tool variables the
/// module's own files set, the known changes, and the port list so far.
fn build_error(
    src: &Path,
    copy: &Path,
    log: &Path,
    kernel: &Kernel,
    api: Api,
    e: anyhow::Error,
    missing: Vec<crate::beside::Missing>,
) -> anyhow::Error {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut errors = error_lines(&text, 20);
    if errors.is_empty() {
        // The runner's message names the sandbox's whole command line: only
        // its reason and the log's last lines are kept.
        let why = format!("{e:#}");
        let why = why.strip_prefix('`').and_then(|w| w.split_once("` ")).map_or(why.as_str(), |(_, w)| w);
        errors.push(format!("make stopped without an error line: {}", why.lines().next().unwrap_or("")));
    }
    let overrides: Vec<ToolOverride> = tool_overrides(src, kernel).into_iter().filter(|o| o.value != o.ours).collect();
    let mut explanations = crate::changes::explain_build(&text, api, &copy.display().to_string());
    // A name of the module's that the kernel declares, on the board too.
    if let Ok(board) = crate::board_api::load(&crate::repo_root().join("configs")) {
        explanations.extend(crate::board_api::clashes(&board, &text));
    }
    let ports = match api {
        Api::Linux35 => crate::changes::load(&crate::repo_root().join("configs"))
            .map(|t| t.ports(&text, &copy.display().to_string()))
            .unwrap_or_default(),
        Api::Native => Vec::new(),
    };
    BuildError { dir: src.to_path_buf(), errors, log: log.to_path_buf(), explanations, ports, overrides, missing }
        .into()
}

/// Under `--api 3.5` a warning that names one of the layer's types is an
/// error (changes::layer_type_errors): the build stops, before its modules
/// are kept or loaded.
fn layer_safety(src: &Path, copy: &Path, log: &Path) -> Result<()> {
    let text = std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let errors = crate::changes::layer_type_errors(&text, 20);
    if errors.is_empty() {
        return Ok(());
    }
    Err(layer_stop(src, copy, log, &text, errors, crate::changes::LAYER_TYPE_EXPLANATION))
}

/// A build one of the layer's guards stopped: its errors, the guard's
/// explanation, and the port list the log gives.
fn layer_stop(src: &Path, copy: &Path, log: &Path, text: &str, errors: Vec<String>, why: &str) -> anyhow::Error {
    let ports = crate::changes::load(&crate::repo_root().join("configs"))
        .map(|t| t.ports(text, &copy.display().to_string()))
        .unwrap_or_default();
    let explanations = vec![why.to_string()];
    let (overrides, missing) = (Vec::new(), Vec::new());
    BuildError { dir: src.to_path_buf(), errors, log: log.to_path_buf(), explanations, ports, overrides, missing }
        .into()
}

/// Under `--api 3.5` no kernel structure may hold the layer's 3.5-shaped
/// timer (timer_guard.rs): a unit that read a kernel header embedding a
/// struct timer_list after the layer renamed it stops the build, the
/// header named. `work` holds the copy and what came from beside it.
fn timer_layout(src: &Path, copy: &Path, log: &Path, work: &Path, kernel: &Kernel) -> Result<()> {
    if src.starts_with(crate::api::layer_dir()) {
        return Ok(());
    }
    let found = crate::timer_guard::check(copy, work, &crate::api::layer_dir(), &kernel.build_dir)
        .context("checking that no kernel structure holds the 3.5 layer's timer")?;
    if found.is_empty() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let errors = found.iter().take(20).map(|e| e.to_string()).collect();
    Err(layer_stop(src, copy, log, &text, errors, crate::timer_guard::EXPLANATION))
}

/// Moves a .ko's debug information aside: the .ko the guest loads (or the
/// board receives over its serial line, at 11 KiB/s) is stripped of it, a
/// fifth of the size; the whole one, beside it as `NAME.ko.debug`, gives
/// reports their source lines ([`symbols`]).
fn split_debug(ko: &Path, kernel: &Kernel, work: &Path) -> Result<()> {
    let debug = debug_file(ko);
    std::fs::copy(ko, &debug).with_context(|| format!("copying {} to {}", ko.display(), debug.display()))?;
    let strip = format!("{}strip", kernel.cross_compile);
    let args: Vec<OsString> = vec!["--strip-debug".into(), ko.into()];
    process::Logged::new(&strip, &args, &work.join("strip.log"), Duration::from_secs(60)).run(|_| {})
}

/// Where [`split_debug`] keeps a .ko's whole copy.
pub fn debug_file(ko: &Path) -> PathBuf {
    let mut name = ko.as_os_str().to_owned();
    name.push(".debug");
    PathBuf::from(name)
}

/// The modules a build made in `tree` (now, or kept in the module cache),
/// in load order, with the warnings and the port list its `log` shows; the
/// log's paths name `built_in`, the directory the build ran in.
fn finish(tree: &Path, log: &Path, built_in: &Path, kernel: &Kernel, api: Api) -> Result<ModuleBuild> {
    let text = std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let warnings: Vec<String> = text.lines().filter(|l| l.contains("WARNING:")).map(|l| l.trim().to_string()).collect();
    let mut kos: Vec<PathBuf> = Vec::new();
    collect_kos(tree, &mut kos)?;
    let order = std::fs::read_to_string(tree.join("modules.order")).unwrap_or_default();
    let mut modules = Vec::new();
    for ko in kos {
        let mut m = prebuilt(&ko, kernel)?;
        m.modpost_warnings = warnings.clone();
        m.sources = Some(Sources { built_in: built_in.to_path_buf(), now: tree.to_path_buf() });
        modules.push(m);
    }
    let ports = match api {
        Api::Linux35 => {
            crate::changes::load(&crate::repo_root().join("configs"))?.ports(&text, &built_in.display().to_string())
        }
        Api::Native => Vec::new(),
    };
    Ok(ModuleBuild { modules: load_order(modules, &order), ports, lacks: Vec::new(), cached: false })
}

/// Every .ko under `dir` (a module directory may build into subdirectories).
fn collect_kos(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if e.file_type()?.is_dir() {
            collect_kos(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "ko") {
            out.push(p);
        }
    }
    Ok(())
}

/// Sorts modules so that each comes after the modules of the set it depends
/// on; otherwise as kbuild's `modules.order` lists them (the obj-m order).
pub fn load_order(mut modules: Vec<Module>, order: &str) -> Vec<Module> {
    let rank = |m: &Module| {
        let stem = m.ko.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        order
            .lines()
            .position(|l| {
                let f = l.trim().rsplit('/').next().unwrap_or("");
                f.strip_suffix(".o").or_else(|| f.strip_suffix(".ko")) == Some(stem.as_str())
            })
            .unwrap_or(usize::MAX)
    };
    modules.sort_by_key(|m| rank(m));
    let mut sorted: Vec<Module> = Vec::new();
    while !modules.is_empty() {
        let names: Vec<String> = modules.iter().map(|m| m.name.clone()).collect();
        // The first whose dependencies in the set are all placed; on a cycle
        // (which insmod could not load anyway), the first left.
        let i = modules.iter().position(|m| m.depends.iter().all(|d| !names.contains(d) || d == &m.name)).unwrap_or(0);
        sorted.push(modules.remove(i));
    }
    sorted
}

/// A .ko that is already built (by the kernel build, or by hand), checked
/// against the kernel it will be loaded into.
pub fn prebuilt(ko: &Path, kernel: &Kernel) -> Result<Module> {
    if !ko.is_file() {
        bail!("{}: no such module (is it enabled as =m in the profile's fragments?)", ko.display());
    }
    let info = modinfo(ko)?;
    let name = info.name()?;
    let vermagic = info.require("vermagic")?;
    if vermagic.split_whitespace().next() != Some(kernel.release.as_str()) {
        bail!("{}: vermagic {vermagic:?} does not match the kernel release {}", ko.display(), kernel.release);
    }
    let depends = info
        .get("depends")
        .map(|d| d.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    Ok(Module { ko: ko.to_path_buf(), name, vermagic, depends, modpost_warnings: Vec::new(), sources: None })
}

/// The kernel symbols a .ko imports (its undefined symbols).
pub fn imports(ko: &Path) -> Result<Vec<String>> {
    imports_of(ko)
}

fn imports_of(ko: &Path) -> Result<Vec<String>> {
    let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
    let file = object::File::parse(&*data).with_context(|| format!("{} is not an ELF object", ko.display()))?;
    Ok(file
        .symbols()
        .filter(|s| s.is_undefined())
        .filter_map(|s| s.name().ok().filter(|n| !n.is_empty()).map(str::to_string))
        .collect())
}

/// The names a .ko holds as C strings in its data (`.rodata*`, `.data`):
/// runs of 3 to 64 identifier characters (letters, digits, `_`, `-`, `.`)
/// that end at a NUL, such as a platform device's or driver's name; at most
/// `limit` of them.
pub fn data_names(ko: &Path, limit: usize) -> Result<Vec<String>> {
    use object::{Object, ObjectSection};
    let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
    let file = object::File::parse(&*data).with_context(|| format!("{} is not an ELF object", ko.display()))?;
    let mut names = Vec::new();
    for section in file.sections() {
        let name = section.name().unwrap_or("");
        if !(name.starts_with(".rodata") || name == ".data") {
            continue;
        }
        let Ok(bytes) = section.data() else { continue };
        for run in bytes.split(|b| *b == 0) {
            let word = |b: &u8| b.is_ascii_alphanumeric() || b"_-.".contains(b);
            if (3..=64).contains(&run.len()) && run.iter().all(word) && run.iter().any(u8::is_ascii_alphabetic) {
                names.push(String::from_utf8_lossy(run).into_owned());
                if names.len() >= limit {
                    return Ok(names);
                }
            }
        }
    }
    Ok(names)
}

/// The symbols a .ko defines (its own functions and data, exported or
/// not): a name one module of a directory imports from another is its own.
pub fn definitions(ko: &Path) -> Result<Vec<String>> {
    let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
    let file = object::File::parse(&*data).with_context(|| format!("{} is not an ELF object", ko.display()))?;
    Ok(file
        .symbols()
        .filter(|s| s.is_definition())
        .filter_map(|s| s.name().ok().filter(|n| !n.is_empty()).map(str::to_string))
        .collect())
}

/// A .ko's `.modinfo` section: its `key=value` pairs.
pub struct ModInfo {
    ko: PathBuf,
    pairs: Vec<(String, String)>,
}

impl ModInfo {
    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of `key`, which the module must have.
    pub fn require(&self, key: &str) -> Result<String> {
        self.get(key).map(str::to_string).with_context(|| format!("{}: no {key}= in .modinfo", self.ko.display()))
    }

    /// The name insmod registers: `name=` where modpost writes it (4.x and
    /// later); Linux 3.5's has none, and the name is then kbuild's
    /// KBUILD_MODNAME, the file's stem with `-` made `_`.
    pub fn name(&self) -> Result<String> {
        if let Some(n) = self.get("name") {
            return Ok(n.to_string());
        }
        let stem = self
            .ko
            .file_stem()
            .with_context(|| format!("{}: no name= in .modinfo and no file name", self.ko.display()))?;
        Ok(stem.to_string_lossy().replace('-', "_"))
    }
}

/// Reads the `.modinfo` section of `ko`.
pub fn modinfo(ko: &Path) -> Result<ModInfo> {
    let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
    let file = object::File::parse(&*data).with_context(|| format!("{}: not an ELF object", ko.display()))?;
    let section = file.section_by_name(".modinfo").with_context(|| format!("{}: no .modinfo section", ko.display()))?;
    let bytes = section.data().with_context(|| format!("{}: unreadable .modinfo", ko.display()))?;
    let pairs = bytes
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let s = String::from_utf8_lossy(kv);
            let (k, v) = s.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect();
    Ok(ModInfo { ko: ko.to_path_buf(), pairs })
}

/// The symbols of `ko` (module `name`), placed where the steps of `unit`
/// in `t` said it was loaded: for naming bare addresses in kernel reports.
pub fn symbols(
    ko: &Path,
    name: &str,
    t: &Transcript,
    unit: Option<&str>,
) -> Result<crate::judge::symbols::ModuleSymbols> {
    // The whole copy, with the debug information, where the build kept one.
    let debug = debug_file(ko);
    let ko = if debug.is_file() { debug.as_path() } else { ko };
    let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
    crate::judge::symbols::ModuleSymbols::parse(&data, name, &t.sections_of(unit, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel() -> Kernel {
        Kernel {
            build_dir: "/cache/k".into(),
            source_dir: "/cache/src".into(),
            release: "6.12.117".into(),
            arch: "arm".into(),
            cross_compile: "arm-linux-gnueabihf-".into(),
            make_vars: Vec::new(),
            built_now: false,
        }
    }

    fn strings(v: Vec<OsString>) -> Vec<String> {
        v.into_iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn directories_need_a_kbuild_file_or_makefile() {
        let root = crate::repo_root();
        check_dir(&root.join("kmod")).unwrap();
        check_dir(&root.join("kmod/c-twin")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = check_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("has no Kbuild or Makefile"), "{err}");
        let err = check_dir(&dir.path().join("nope")).unwrap_err().to_string();
        assert!(err.contains("no such directory"), "{err}");
    }

    /// The tutorial's module (kmod/, Rust and its C twin) is an ordinary
    /// module: nothing in its sources, Kbuild, Makefiles or README names the
    /// harness, QEMU, the marker protocol or the virtual board. Its
    /// expect.toml is the harness's file by design, and Cargo.toml's comments
    /// say why it is stand-alone.
    #[test]
    fn the_tutorial_module_knows_nothing_of_the_harness_or_qemu() {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                let name = e.file_name();
                if p.is_dir() && name != "target" {
                    walk(&p, out);
                } else if p.is_file() && !["expect.toml", "Cargo.toml", "Cargo.lock"].contains(&name.to_str().unwrap())
                {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(&crate::repo_root().join("kmod"), &mut files);
        assert!(files.iter().any(|f| f.ends_with("kmod/shim.c")), "{files:?}");
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap().to_lowercase();
            for word in ["harness", "qemu", "@@", "nonce", "tiny4412-board", "tiny4412_board"] {
                assert!(!text.contains(word), "{} names {word:?}", f.display());
            }
        }
    }

    #[test]
    fn kbuild_argv_is_the_ordinary_command_whatever_the_makefile() {
        let a = strings(make_argv(Path::new("/run/module"), &kernel(), 2));
        assert_eq!(
            a,
            [
                "-C",
                "/cache/k",
                "M=/run/module",
                "ARCH=arm",
                "CROSS_COMPILE=arm-linux-gnueabihf-",
                "KCFLAGS=-g",
                "-j2",
                "modules"
            ]
        );
    }

    fn module(name: &str, depends: &[&str]) -> Module {
        Module {
            ko: format!("/m/{name}.ko").into(),
            name: name.into(),
            vermagic: String::new(),
            depends: depends.iter().map(|s| s.to_string()).collect(),
            modpost_warnings: vec![],
            sources: None,
        }
    }

    #[test]
    fn modules_load_after_their_dependencies_else_in_obj_m_order() {
        let names = |v: Vec<Module>| v.into_iter().map(|m| m.name).collect::<Vec<_>>();
        // modules.order lists the consumer first; depends puts the exporter first.
        let order = "/m/consumer.o\n/m/exporter.o\n/m/other.o\n";
        let got =
            load_order(vec![module("other", &[]), module("exporter", &[]), module("consumer", &["exporter"])], order);
        assert_eq!(names(got), ["exporter", "consumer", "other"]);
        // Without dependencies, the obj-m order; dependencies outside the set
        // (the kernel's own modules) do not count.
        let got = load_order(vec![module("b", &["videodev"]), module("a", &[])], "a.ko\nb.ko\n");
        assert_eq!(names(got), ["a", "b"]);
    }

    /// A lesson's Makefile for the vendor's SDK names its compiler: the
    /// headline is the shell's error, never make's command line, and the
    /// Makefile's line is named.
    #[test]
    fn a_makefile_that_sets_cc_is_named_and_the_headline_is_the_first_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Makefile"),
            "CROSS = arm-hisiv100nptl-linux-\nCC = arm-hisiv100nptl-linux-gcc\noverride LD := $(CROSS)ld\nARCHIVE = \
                x\nobj-m += led.o\n",
        )
        .unwrap();
        let o = tool_overrides(dir.path(), &kernel());
        let said: Vec<String> = o.iter().map(|o| o.to_string()).collect();
        assert_eq!(said, ["Makefile:2 sets CC = arm-hisiv100nptl-linux-gcc", "Makefile:3 sets LD = $(CROSS)ld"]);
        assert_eq!(o[0].ours, "arm-linux-gnueabihf-gcc");
        let log = "make: Entering directory '/cache/k'\n  CC [M]  /run/module/led.o\n/bin/sh: 1: \
            arm-hisiv100nptl-linux-gcc: not found\n\
                   make[3]: *** [scripts/Makefile.build:229: /run/module/led.o] Error 127\nmake[2]: *** \
                       [/cache/k/Makefile:1945: /run/module] Error 2\n";
        let errors = error_lines(log, 20);
        assert_eq!(errors[0], "/bin/sh: 1: arm-hisiv100nptl-linux-gcc: not found");
        assert_eq!(errors.len(), 3);
        let e = BuildError {
            dir: "/m".into(),
            errors,
            log: "/l".into(),
            explanations: vec![],
            ports: vec![],
            overrides: o,
            missing: vec![],
        };
        let text = e.to_string();
        let headline = text.lines().next().unwrap();
        assert_eq!(headline, "the module in /m does not compile: /bin/sh: 1: arm-hisiv100nptl-linux-gcc: not found");
        assert!(
            text.contains(
                "Makefile:2 sets CC = arm-hisiv100nptl-linux-gcc: kbuild takes CC from the kernel's \
            build (arm-linux-gnueabihf-gcc)"
            ),
            "{text}"
        );
    }

    #[test]
    fn copy_leaves_build_products_behind() {
        let src = tempfile::tempdir().unwrap();
        for f in ["Kbuild", "shim.c", "shim.o", "x.ko", ".shim.o.cmd", "r.o_shipped"] {
            std::fs::write(src.path().join(f), "x").unwrap();
        }
        std::fs::create_dir_all(src.path().join("target/debug")).unwrap();
        std::fs::create_dir_all(src.path().join("src")).unwrap();
        std::fs::write(src.path().join("src/lib.rs"), "x").unwrap();
        let dest = tempfile::tempdir().unwrap();
        copy_sources(src.path(), src.path(), &dest.path().join("m")).unwrap();
        let mut got: Vec<String> = std::fs::read_dir(dest.path().join("m"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        got.sort();
        assert_eq!(got, ["Kbuild", "shim.c", "src"]);
    }

    /// A link to a file or directory inside the module directory is copied
    /// as what it names; one that leads outside it, or nowhere, or to a
    /// directory holding the link, is refused with its name.
    #[test]
    fn symlinks_are_followed_inside_the_directory_and_refused_outside() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.h"), "x").unwrap();
        let src = tempfile::tempdir().unwrap();
        let root = src.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("include")).unwrap();
        std::fs::write(root.join("include/common.h"), "#define X 1").unwrap();
        symlink("include/common.h", root.join("common.h")).unwrap();
        symlink(root.join("include"), root.join("inc")).unwrap();
        let dest = tempfile::tempdir().unwrap();
        copy_sources(&root, &root, &dest.path().join("m")).unwrap();
        let copied = dest.path().join("m");
        assert!(!copied.join("common.h").is_symlink() && !copied.join("inc").is_symlink());
        assert_eq!(std::fs::read_to_string(copied.join("inc/common.h")).unwrap(), "#define X 1");

        for (name, target, why) in [
            ("secret.h", outside.path().join("secret.h"), "outside the module directory"),
            ("gone.h", root.join("nothing-here"), "which does not exist"),
            ("loop", root.clone(), "a directory that holds the link itself"),
        ] {
            let src = tempfile::tempdir().unwrap();
            let root2 = src.path().canonicalize().unwrap();
            std::fs::write(root2.join("Kbuild"), "obj-m += a.o").unwrap();
            let target = if name == "loop" { root2.clone() } else { target };
            symlink(&target, root2.join(name)).unwrap();
            let err =
                copy_sources(&root2, &root2, &tempfile::tempdir().unwrap().path().join("m")).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(why), "{name}: {err}");
        }
    }
}
