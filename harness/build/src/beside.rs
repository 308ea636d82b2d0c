//! The files beside a module's folder that its sources include: a lesson
//! keeps its board header next to its modules (`#include
//! "../include/board.h"`, `ccflags-y += -I$(src)/../inc`), and `make -C
//! KDIR M=$PWD` on the board finds it there. The build here runs in a copy
//! of the folder, so those files come along into the run directory, at the
//! same place relative to the copy, read-only.
//!
//! The user's tree is the module folder's parent: nothing beyond it is ever
//! copied (a lesson from the internet may name `../../.ssh/id_rsa`), nor a
//! hidden file, a symlink or anything when that parent is the home folder or
//! `/`. An include that still cannot be found is named with the reason.

use anyhow::{bail, Context, Result};
use regex::Regex;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

/// What the module's sources reach beside its folder.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Beside {
    /// Files and folders to copy, relative to the module folder's parent.
    pub found: Vec<PathBuf>,
    /// Includes that are not copied, each with why.
    pub missing: Vec<Missing>,
}

/// An include the copy will not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// `led.c:3` or `Makefile:5`, relative to the module folder.
    pub at: String,
    /// As written: `../../include/board.h`, `-I$(src)/../inc`.
    pub include: String,
    pub why: String,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} includes {}: {}", self.at, self.include, self.why)
    }
}

static INCLUDE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"^\s*#\s*include\s*"([^"]+)""#).unwrap());
/// An include directory kbuild resolves against the module folder.
static FLAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-I\s*\$[({](?:src|obj|M|PWD|CURDIR)[)}]/([^\s)'\x22]+)").unwrap());

/// The most files a folder named by `-I` may bring (a header folder, not a
/// whole tree).
const MAX_FILES: usize = 500;

/// Run-directory names a file beside the module may not take.
const RESERVED: [&str; 3] = ["module", "programs", "gdb"];

/// `a/b/../c` to `a/c`, without touching the filesystem (a missing file
/// has no canonical path).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Where the parent of `src` (canonical) may be a user's tree: not `/`,
/// not the home folder itself.
fn tree_of(src: &Path) -> Option<&Path> {
    let parent = src.parent()?;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    (parent.parent().is_some() && home.as_deref() != Some(parent)).then_some(parent)
}

/// Reads the module folder `src` (canonical) for what it includes from
/// beside it.
pub fn find(src: &Path) -> Result<Beside> {
    let mut b = Beside::default();
    let mut queue: Vec<PathBuf> = Vec::new();
    sources(src, &mut queue)?;
    let mut seen: Vec<PathBuf> = Vec::new();
    while let Some(file) = queue.pop() {
        if seen.contains(&file) {
            continue;
        }
        seen.push(file.clone());
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let kbuild = matches!(file.file_name().and_then(|n| n.to_str()), Some("Kbuild" | "Makefile"));
        let shown = file
            .strip_prefix(src)
            .or_else(|_| file.strip_prefix(src.parent().unwrap_or(src)))
            .unwrap_or(&file)
            .display()
            .to_string();
        for (n, line) in text.lines().enumerate() {
            let at = format!("{shown}:{}", n + 1);
            if kbuild {
                for c in FLAG.captures_iter(line) {
                    let target = normalize(&src.join(&c[1]));
                    b.reach(src, &target, &at, &c[0], true, &mut queue)?;
                }
            } else if let Some(c) = INCLUDE.captures(line).filter(|c| c[1].contains("..")) {
                let target = normalize(&file.parent().unwrap_or(src).join(&c[1]));
                b.reach(src, &target, &at, &c[1], false, &mut queue)?;
            }
        }
    }
    Ok(b)
}

impl Beside {
    /// Takes `target`, which `at` names as `include`, if it is beside the
    /// module folder; says why not otherwise. A header found is read in its
    /// turn (it may include another).
    fn reach(
        &mut self,
        src: &Path,
        target: &Path,
        at: &str,
        include: &str,
        folder: bool,
        queue: &mut Vec<PathBuf>,
    ) -> Result<()> {
        if target.starts_with(src) {
            return Ok(());
        }
        let mut missing =
            |why: String| self.missing.push(Missing { at: at.to_string(), include: include.to_string(), why });
        let Some(tree) = tree_of(src) else {
            missing(format!(
                "the module folder's parent ({}) is not copied: it is the home folder or the root",
                src.parent().unwrap_or(src).display()
            ));
            return Ok(());
        };
        let Ok(rel) = target.strip_prefix(tree) else {
            missing(format!(
                "{} is beyond the module folder's parent ({}), which is never copied; copy it into the module folder",
                target.display(),
                tree.display()
            ));
            return Ok(());
        };
        let rel = rel.to_path_buf();
        if rel.components().any(|c| c.as_os_str().to_string_lossy().starts_with('.')) {
            missing("a hidden file or folder is never copied".into());
            return Ok(());
        }
        let top = rel.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
        if RESERVED.contains(&top.as_str()) {
            missing(format!(
                "`{top}` beside the module folder has the name of the harness's own folder in the run \
                directory; rename it"
            ));
            return Ok(());
        }
        match std::fs::symlink_metadata(target) {
            Err(_) => missing(format!("there is no {} beside the module folder", rel.display())),
            Ok(m) if m.file_type().is_symlink() => {
                missing("a symlink beside the module folder is never followed".into())
            }
            Ok(m) if m.is_dir() != folder => {
                missing(format!("{} is not a {}", rel.display(), if folder { "folder" } else { "file" }))
            }
            Ok(_) => {
                // A header comes with its folder (it includes its
                // neighbours by bare name), unless it lies in the parent
                // itself: then alone.
                let (take, whole) = match rel.parent().filter(|p| !p.as_os_str().is_empty()) {
                    Some(dir) if !folder => (dir.to_path_buf(), true),
                    _ => (rel.clone(), folder),
                };
                if !self.found.iter().any(|f| take.starts_with(f)) {
                    if whole {
                        sources(&tree.join(&take), queue)?;
                    } else {
                        queue.push(target.to_path_buf());
                    }
                    self.found.retain(|f| !f.starts_with(&take));
                    self.found.push(take);
                }
            }
        }
        Ok(())
    }

    /// Copies what was found from beside `src` (canonical) to beside the
    /// build copy `copy`, read-only; returns the top paths copied, for the
    /// sandbox to seal.
    pub fn copy(&self, src: &Path, copy: &Path) -> Result<Vec<PathBuf>> {
        let (Some(tree), Some(to)) = (tree_of(src), copy.parent()) else {
            return Ok(Vec::new());
        };
        let mut sealed: Vec<PathBuf> = Vec::new();
        for rel in &self.found {
            let (from, dest) = (tree.join(rel), to.join(rel));
            copy_read_only(&from, &dest, &mut 0)?;
            let top = to.join(rel.components().next().map(|c| c.as_os_str()).unwrap_or_default());
            if !sealed.contains(&top) {
                sealed.push(top);
            }
        }
        Ok(sealed)
    }

    /// The digest of what was found, for the module cache's key.
    pub fn digest(&self, src: &Path) -> Result<String> {
        let Some(tree) = tree_of(src) else {
            return Ok(String::new());
        };
        let mut parts: Vec<String> = Vec::new();
        for rel in &self.found {
            let mut files = Vec::new();
            list(&tree.join(rel), &mut files)?;
            for f in files {
                let bytes = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
                parts.push(format!(
                    "{}\0{}",
                    f.strip_prefix(tree).unwrap_or(&f).display(),
                    crate::cache::digest([bytes])
                ));
            }
        }
        Ok(crate::cache::digest(parts))
    }
}

/// The files a build reads in `dir`: C sources and headers, and the kbuild
/// files (their `-I` flags); recursively, build products and VCS left out.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut files = Vec::new();
    list(dir, &mut files)?;
    out.extend(files.into_iter().filter(|f| {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        matches!(name, "Kbuild" | "Makefile") || [".c", ".h", ".S"].iter().any(|s| name.ends_with(s))
    }));
    Ok(())
}

/// Every regular file under `p` (or `p` itself), no hidden ones, no
/// symlinks, at most [`MAX_FILES`].
fn list(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let m = std::fs::symlink_metadata(p).with_context(|| format!("reading {}", p.display()))?;
    if m.is_file() {
        out.push(p.to_path_buf());
    } else if m.is_dir() {
        let mut entries: Vec<_> =
            std::fs::read_dir(p).with_context(|| format!("reading {}", p.display()))?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            list(&e.path(), out)?;
            if out.len() > MAX_FILES {
                bail!(
                    "{}: more than {MAX_FILES} files; an include folder beside the module is copied whole, so keep \
                    it to headers",
                    p.display()
                );
            }
        }
    }
    Ok(())
}

/// Copies `from` (a file or folder) to `dest`, files read-only (folders
/// stay writable, so that the run directory can be removed).
fn copy_read_only(from: &Path, dest: &Path, count: &mut usize) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = Vec::new();
    list(from, &mut files)?;
    for f in files {
        let to = dest.join(f.strip_prefix(from).unwrap_or(Path::new("")));
        let to = if to.as_os_str().is_empty() || f == from { dest.to_path_buf() } else { to };
        if let Some(d) = to.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        std::fs::copy(&f, &to).with_context(|| format!("copying {} beside the module's copy", f.display()))?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o444))
            .with_context(|| format!("sealing {}", to.display()))?;
        *count += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap().join("lessons");
        let w = |p: &str, s: &str| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        w(
            "led/led.c",
            "#include <linux/module.h>\n#include \"../include/board.h\"\n#include \"../../secret.h\"\n\
             #include \"../nope.h\"\n#include \"local.h\"\n",
        );
        w("led/local.h", "");
        w("led/Makefile", "obj-m += led.o\nccflags-y += -I$(src)/../inc -I$(src)/../.hidden\n");
        w("include/board.h", "#include \"pins.h\"\n#include \"../inc/more.h\"\n");
        w("include/pins.h", "");
        w("inc/more.h", "");
        w("inc/sub/deep.h", "");
        w(".hidden/x.h", "");
        w("unrelated/big.c", "");
        std::fs::write(d.path().join("secret.h"), "key").unwrap();
        (d, root)
    }

    #[test]
    fn what_the_sources_include_beside_the_folder_is_found_and_what_is_beyond_is_named() {
        let (_d, root) = tree();
        let b = find(&root.join("led")).unwrap();
        let mut found: Vec<String> = b.found.iter().map(|p| p.display().to_string()).collect();
        found.sort();
        assert_eq!(
            found,
            ["inc", "include"],
            "a header comes with its folder (board.h includes pins.h by bare name): {b:?}"
        );
        let said: Vec<String> = b.missing.iter().map(|m| m.to_string()).collect();
        assert_eq!(said.len(), 3, "{said:#?}");
        assert!(
            said.iter().any(|m| m.starts_with("led.c:3 includes ../../secret.h: ")
                && m.contains("beyond the module folder's parent")),
            "{said:#?}"
        );
        assert!(
            said.iter()
                .any(|m| m.starts_with("led.c:4 includes ../nope.h: there is no nope.h beside the module folder")),
            "{said:#?}"
        );
        assert!(said.iter().any(|m| m.starts_with("Makefile:2 includes -I$(src)/../.hidden: a hidden")), "{said:#?}");
    }

    #[test]
    fn the_copy_is_beside_the_build_copy_and_read_only() {
        let (_d, root) = tree();
        let src = root.join("led");
        let b = find(&src).unwrap();
        let work = tempfile::tempdir().unwrap();
        let copy = work.path().join("module");
        std::fs::create_dir_all(&copy).unwrap();
        let sealed = b.copy(&src, &copy).unwrap();
        let mut sealed = sealed;
        sealed.sort();
        assert_eq!(sealed, vec![work.path().join("inc"), work.path().join("include")]);
        let board = work.path().join("include/board.h");
        assert!(
            board.is_file()
                && work.path().join("include/pins.h").is_file()
                && work.path().join("inc/sub/deep.h").is_file()
        );
        assert!(std::fs::OpenOptions::new().write(true).open(&board).is_err() || nix_root(), "read-only");
        assert!(!work.path().join("unrelated").exists() && !work.path().join("secret.h").exists());
        let before = b.digest(&src).unwrap();
        std::fs::write(root.join("inc/more.h"), "changed").unwrap();
        assert_ne!(b.digest(&src).unwrap(), before, "the cache key follows what is beside");
    }

    /// root writes through a 0444 mode; the sandbox's read-only bind is
    /// what holds then.
    fn nix_root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    }
}
