//! The module under test: built with kbuild against the cached kernel, in a
//! copy inside the run directory, so that parallel runs against different
//! kernels never share build products and the user's tree stays clean.

use crate::kernel::Kernel;
use crate::process;
use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Module {
    pub ko: PathBuf,
    /// The name insmod registers (`name=` in .modinfo), which rmmod takes.
    pub name: String,
    pub vermagic: String,
    /// `WARNING:` lines modpost printed.
    pub modpost_warnings: Vec<String>,
}

/// How a module directory wants to be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipe {
    /// `make -C KDIR M=DIR modules`: a Kbuild file, or a kbuild-only Makefile.
    Kbuild,
    /// The directory's own Makefile, tutorial style, which calls kbuild itself
    /// with the kernel directory from LINUX_SRC, KDIR or KERNEL_DIR.
    OwnMakefile,
}

pub fn recipe(dir: &Path) -> Result<Recipe> {
    if dir.join("Kbuild").is_file() {
        return Ok(Recipe::Kbuild);
    }
    let makefile = dir.join("Makefile");
    if !makefile.is_file() {
        bail!(
            "module directory {} has no Kbuild or Makefile: add a Kbuild file with `obj-m := NAME.o`",
            dir.display()
        );
    }
    let text = std::fs::read_to_string(&makefile).with_context(|| format!("reading {}", makefile.display()))?;
    let calls_kbuild = ["LINUX_SRC", "KDIR", "KERNEL_DIR", "KERN_DIR"].iter().any(|v| text.contains(v))
        && text.contains("M=");
    Ok(if calls_kbuild { Recipe::OwnMakefile } else { Recipe::Kbuild })
}

/// The make invocation for `recipe`; pure, for testing.
pub fn make_argv(recipe: Recipe, module_dir: &Path, kernel: &Kernel, jobs: usize) -> Vec<OsString> {
    let kdir = kernel.build_dir.display().to_string();
    let mut a: Vec<OsString> = match recipe {
        Recipe::Kbuild => vec![
            "-C".into(),
            kdir.clone().into(),
            format!("M={}", module_dir.display()).into(),
        ],
        // Tutorial Makefiles name the kernel tree differently; give all three.
        Recipe::OwnMakefile => vec![
            "-C".into(),
            module_dir.into(),
            format!("LINUX_SRC={kdir}").into(),
            format!("KDIR={kdir}").into(),
            format!("KERNEL_DIR={kdir}").into(),
        ],
    };
    a.push(format!("ARCH={}", kernel.arch).into());
    a.push(format!("CROSS_COMPILE={}", kernel.cross_compile).into());
    a.push(format!("-j{jobs}").into());
    if recipe == Recipe::Kbuild {
        a.push("modules".into());
    }
    a
}

/// Copies `src` to `dest`, leaving out VCS data and build products.
fn copy_sources(src: &Path, dest: &Path) -> Result<()> {
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
        let from = entry.path();
        let to = dest.join(&name);
        let ft = entry.file_type()?;
        if ft.is_dir() {
            copy_sources(&from, &to)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&from)?;
            std::os::unix::fs::symlink(target, &to).with_context(|| format!("copying {}", from.display()))?;
        } else {
            std::fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
        }
    }
    Ok(())
}

/// Builds the module in `src` against `kernel`, in `work/module`.
pub fn build(src: &Path, kernel: &Kernel, work: &Path, jobs: usize) -> Result<Module> {
    let src = src.canonicalize().with_context(|| format!("--module {}: no such directory", src.display()))?;
    if !src.is_dir() {
        bail!("--module {}: not a directory", src.display());
    }
    let recipe = recipe(&src)?;
    let dir = work.join("module");
    copy_sources(&src, &dir)?;
    let log = work.join("module-build.log");
    // A Rust module's cargo target dir is kept per source directory, so its
    // dependencies are not rebuilt on every run.
    let cargo_target = crate::cache::root().join("cargo").join(crate::cache::digest([src.display().to_string()]));
    let envs = [("CARGO_TARGET_DIR", OsString::from(&cargo_target))];
    let mut warnings = Vec::new();
    let result = process::run("make", &make_argv(recipe, &dir, kernel, jobs), None, &envs, &log, Duration::from_secs(15 * 60), |l| {
        if l.contains("WARNING:") {
            warnings.push(l.trim().to_string());
        }
    });
    if let Err(e) = result {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let errors: Vec<&str> =
            text.lines().filter(|l| l.contains("error:") || l.contains("error[")).take(20).collect();
        if errors.is_empty() {
            return Err(e.context(format!("building the module in {}", src.display())));
        }
        bail!(
            "the module in {} does not compile:\n{}\nfull log: {}",
            src.display(),
            errors.iter().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n"),
            log.display()
        );
    }
    let kos: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ko"))
        .collect();
    let ko = match kos.as_slice() {
        [one] => one.clone(),
        [] => bail!("building {} produced no .ko (log: {})", src.display(), log.display()),
        many => bail!("building {} produced {} .ko files; the harness loads one module per run", src.display(), many.len()),
    };
    let mut m = prebuilt(&ko, kernel)?;
    m.modpost_warnings = warnings;
    Ok(m)
}

/// A .ko that is already built (by the kernel build, or by hand), checked
/// against the kernel it will be loaded into.
pub fn prebuilt(ko: &Path, kernel: &Kernel) -> Result<Module> {
    if !ko.is_file() {
        bail!("{}: no such module (is it enabled as =m in the profile's fragments?)", ko.display());
    }
    let info = modinfo(ko)?;
    let get = |k: &str| info.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let name = get("name").with_context(|| format!("{}: no name= in .modinfo", ko.display()))?;
    let vermagic = get("vermagic").with_context(|| format!("{}: no vermagic= in .modinfo", ko.display()))?;
    if vermagic.split_whitespace().next() != Some(kernel.release.as_str()) {
        bail!("{}: vermagic {vermagic:?} does not match the kernel release {}", ko.display(), kernel.release);
    }
    Ok(Module { ko: ko.to_path_buf(), name, vermagic, modpost_warnings: Vec::new() })
}

/// The `key=value` pairs of a .ko's `.modinfo` section.
pub fn modinfo(ko: &Path) -> Result<Vec<(String, String)>> {
    let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
    let file = object::File::parse(&*data).with_context(|| format!("{}: not an ELF object", ko.display()))?;
    let section = file.section_by_name(".modinfo").with_context(|| format!("{}: no .modinfo section", ko.display()))?;
    let bytes = section.data().with_context(|| format!("{}: unreadable .modinfo", ko.display()))?;
    Ok(bytes
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let s = String::from_utf8_lossy(kv);
            let (k, v) = s.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect())
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
            built_now: false,
        }
    }

    fn strings(v: Vec<OsString>) -> Vec<String> {
        v.into_iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn recipes_follow_the_directory() {
        let root = crate::repo_root();
        assert_eq!(recipe(&root.join("kmod")).unwrap(), Recipe::Kbuild);
        assert_eq!(recipe(&root.join("kmod/c-twin")).unwrap(), Recipe::OwnMakefile);
        let dir = tempfile::tempdir().unwrap();
        let err = recipe(dir.path()).unwrap_err().to_string();
        assert!(err.contains("has no Kbuild or Makefile"), "{err}");
        std::fs::write(dir.path().join("Makefile"), "obj-m := x.o\n").unwrap();
        assert_eq!(recipe(dir.path()).unwrap(), Recipe::Kbuild);
    }

    #[test]
    fn kbuild_argv_is_the_ordinary_command() {
        let a = strings(make_argv(Recipe::Kbuild, Path::new("/run/module"), &kernel(), 2));
        assert_eq!(a, ["-C", "/cache/k", "M=/run/module", "ARCH=arm", "CROSS_COMPILE=arm-linux-gnueabihf-", "-j2", "modules"]);
    }

    #[test]
    fn own_makefile_gets_every_kernel_dir_spelling() {
        let a = strings(make_argv(Recipe::OwnMakefile, Path::new("/run/module"), &kernel(), 1));
        for want in ["LINUX_SRC=/cache/k", "KDIR=/cache/k", "KERNEL_DIR=/cache/k", "ARCH=arm"] {
            assert!(a.contains(&want.to_string()), "{want} missing from {a:?}");
        }
        assert_eq!(&a[..2], ["-C", "/run/module"]);
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
        copy_sources(src.path(), &dest.path().join("m")).unwrap();
        let mut got: Vec<String> = std::fs::read_dir(dest.path().join("m"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        got.sort();
        assert_eq!(got, ["Kbuild", "shim.c", "src"]);
    }
}
