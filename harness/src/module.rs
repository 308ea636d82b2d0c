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
        bail!(
            "module directory {} has no Kbuild or Makefile: add a Kbuild file with `obj-m := NAME.o`",
            dir.display()
        );
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
        let product = [".o", ".ko", ".mod", ".mod.c", ".a", ".o_shipped", ".symvers", ".order"]
            .iter()
            .any(|s| name.ends_with(s))
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
            "{}: a symlink to {}, {why}: the build sees only the module directory's own files; copy the file in instead",
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
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "the module in {} does not compile:", self.dir.display())?;
        for l in &self.errors {
            writeln!(f, "  | {l}")?;
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

/// The compiler's error lines in a build log, at most `max`.
pub fn error_lines(log: &str, max: usize) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("error:") || l.contains("error[") || l.contains("No such file or directory"))
        .take(max)
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// What a module directory's build made: its modules in load order, and
/// under `--api 3.5` the port list (the 3.5 APIs the layer gave back).
#[derive(Debug, Clone)]
pub struct Built {
    pub modules: Vec<Module>,
    pub ports: Vec<crate::changes::Port>,
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
}

/// Builds the modules in `src` against `kernel` as `opts` say, in
/// `work/module`, and returns them in load order: a module after those it
/// depends on (modinfo `depends`), otherwise in kbuild's `modules.order`.
pub fn build(src: &Path, kernel: &Kernel, work: &Path, opts: &Options) -> Result<Built> {
    let Options { jobs, api, sandbox } = *opts;
    check_dir(src)?;
    let src = src.canonicalize().with_context(|| format!("--module {}: no such directory", src.display()))?;
    let dir = work.join("module");
    copy_sources(&src, &src, &dir)?;
    if api == Api::Linux35 {
        crate::api::wrap(&dir, &crate::api::layer_dir())?;
    }
    let argv = make_argv(&dir, kernel, jobs);
    // The key takes the command without the run's own directory in it.
    let (entry, found) = crate::module_cache::entry(&src, &dir, kernel, api, &make_argv(Path::new("M"), kernel, 1))?;
    let log = work.join("module-build.log");
    if found {
        entry.restore(&dir, &log)?;
        return Ok(Built { cached: true, ..finish(&dir, &log, &entry.built_in()?, kernel, api)? });
    }
    // A Rust module's cargo target dir is kept per source directory, so its
    // dependencies are not rebuilt on every run.
    let cargo_target = crate::cache::root().join("cargo").join(crate::cache::digest([src.display().to_string()]));
    std::fs::create_dir_all(&cargo_target).with_context(|| format!("creating {}", cargo_target.display()))?;
    let envs = [("CARGO_TARGET_DIR", OsString::from(&cargo_target))];
    let policy = Policy::for_build(kernel, work, std::slice::from_ref(&cargo_target));
    let (program, args) = sandbox.command(&policy, "make", &argv);
    let result = process::Logged::new(&program, &args, &log, Duration::from_secs(15 * 60)).envs(&envs).run(|_| {});
    if let Err(e) = result {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let errors = error_lines(&text, 20);
        if errors.is_empty() {
            return Err(e.context(format!("building the module in {}", src.display())));
        }
        let explanations = crate::changes::explain(crate::changes::Stage::Compile, &text);
        return Err(BuildError { dir: src, errors, log, explanations }.into());
    }
    let mut kos: Vec<PathBuf> = Vec::new();
    collect_kos(&dir, &mut kos)?;
    if kos.is_empty() {
        bail!("building {} produced no .ko: does its Kbuild or Makefile say `obj-m += NAME.o`? (log: {})", src.display(), log.display());
    }
    for ko in &kos {
        split_debug(ko, kernel, work)?;
    }
    // Only for the next run: a failure to keep it is said, not fatal.
    if let Err(e) = crate::module_cache::publish(&entry, &dir, &log) {
        eprintln!("harness: warning: keeping the module build: {e:#}");
    }
    finish(&dir, &log, &dir, kernel, api)
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
fn finish(tree: &Path, log: &Path, built_in: &Path, kernel: &Kernel, api: Api) -> Result<Built> {
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
        Api::Linux35 => crate::changes::load(&crate::repo_root().join("configs"))?.ports(&text, &built_in.display().to_string()),
        Api::Native => Vec::new(),
    };
    Ok(Built { modules: load_order(modules, &order), ports, cached: false })
}

/// Every .ko under `dir` (a module directory may build into subdirectories).
fn collect_kos(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.flatten().collect();
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
        let i = modules
            .iter()
            .position(|m| m.depends.iter().all(|d| !names.contains(d) || d == &m.name))
            .unwrap_or(0);
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
    let depends = info.get("depends").map(|d| d.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()).unwrap_or_default();
    Ok(Module { ko: ko.to_path_buf(), name, vermagic, depends, modpost_warnings: Vec::new(), sources: None })
}

/// The kernel symbols a .ko imports (its undefined symbols).
pub fn imports(ko: &Path) -> Result<Vec<String>> {
    let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
    let file = object::File::parse(&*data).with_context(|| format!("{} is not an ELF object", ko.display()))?;
    Ok(file.symbols().filter(|s| s.is_undefined()).filter_map(|s| s.name().ok().filter(|n| !n.is_empty()).map(str::to_string)).collect())
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
        let stem = self.ko.file_stem().with_context(|| format!("{}: no name= in .modinfo and no file name", self.ko.display()))?;
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
pub fn symbols(ko: &Path, name: &str, t: &Transcript, unit: Option<&str>) -> Result<crate::judge::symbols::ModuleSymbols> {
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

    #[test]
    fn kbuild_argv_is_the_ordinary_command_whatever_the_makefile() {
        let a = strings(make_argv(Path::new("/run/module"), &kernel(), 2));
        assert_eq!(a, ["-C", "/cache/k", "M=/run/module", "ARCH=arm", "CROSS_COMPILE=arm-linux-gnueabihf-", "KCFLAGS=-g", "-j2", "modules"]);
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
        let got = load_order(vec![module("other", &[]), module("exporter", &[]), module("consumer", &["exporter"])], order);
        assert_eq!(names(got), ["exporter", "consumer", "other"]);
        // Without dependencies, the obj-m order; dependencies outside the set
        // (the kernel's own modules) do not count.
        let got = load_order(vec![module("b", &["videodev"]), module("a", &[])], "a.ko\nb.ko\n");
        assert_eq!(names(got), ["a", "b"]);
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
            let err = copy_sources(&root2, &root2, &tempfile::tempdir().unwrap().path().join("m")).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(why), "{name}: {err}");
        }
    }
}
