//! `--kcidb FILE`: the run's verdicts as one KCIDB v5.3 report (the
//! judge's kcidb.rs makes it). Here: what identifies the module's source,
//! read from its folder without running anything in it (git's own config
//! in a module's repository may name commands: its files are read instead).

use crate::judge::kcidb::{self, Build, ModuleSource};
use crate::judge::verdict::Verdict;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The most of a module folder hashed: a module is a few source files.
const MAX_FILES: usize = 2000;
const MAX_FILE: u64 = 16 << 20;
/// The most of a git file read (HEAD, a ref, packed-refs).
const MAX_GIT_FILE: u64 = 1 << 20;

fn read_small(path: &Path, max: u64) -> Option<String> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(path).ok()?.take(max).read_to_string(&mut s).ok()?;
    Some(s)
}

/// The commit checked out in the git repository holding `dir`, and its
/// branch, from the repository's files (HEAD, the ref, packed-refs).
pub fn git_head(dir: &Path) -> Option<(String, Option<String>)> {
    let dot = dir.ancestors().map(|d| d.join(".git")).find(|g| g.exists())?;
    // A worktree's (or submodule's) .git is a file naming its git
    // directory, whose `commondir` holds the shared refs.
    let git =
        match read_small(&dot, MAX_GIT_FILE).and_then(|s| s.strip_prefix("gitdir: ").map(|p| p.trim().to_string())) {
            Some(p) => dot.parent()?.join(p),
            None => dot,
        };
    let common = match read_small(&git.join("commondir"), MAX_GIT_FILE) {
        Some(c) => git.join(c.trim()),
        None => git.clone(),
    };
    let head = read_small(&git.join("HEAD"), MAX_GIT_FILE)?;
    let head = head.trim();
    let is_hash = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let Some(reference) = head.strip_prefix("ref: ") else {
        return is_hash(head).then(|| (head.to_string(), None));
    };
    // A ref outside refs/ (or climbing out of .git) is not git's.
    if !reference.starts_with("refs/") || reference.split('/').any(|c| c == ".." || c.is_empty()) {
        return None;
    }
    let branch = reference.strip_prefix("refs/heads/").map(str::to_string);
    let loose = read_small(&common.join(reference), MAX_GIT_FILE).map(|s| s.trim().to_string());
    let commit = loose.filter(|c| is_hash(c)).or_else(|| {
        read_small(&common.join("packed-refs"), MAX_GIT_FILE)?
            .lines()
            .find_map(|l| l.strip_suffix(reference).map(|h| h.trim().to_string()).filter(|h| is_hash(h)))
    })?;
    Some((commit, branch))
}

/// A digest of the folder's files (names and contents, hidden ones and
/// the harness's outputs left out), in name order.
pub fn content_hash(dir: &Path) -> Result<String> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for rel in &files {
        let path = dir.join(rel);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len > MAX_FILE {
            anyhow::bail!("{}: over {} MiB, not a module's source", path.display(), MAX_FILE >> 20);
        }
        parts.push(rel.to_string_lossy().as_bytes().to_vec());
        parts.push(std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
    }
    Ok(crate::cache::digest(parts))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let built = [".o", ".ko", ".cmd", ".mod", ".mod.c", ".order", ".symvers"].iter().any(|s| name.ends_with(s));
        if name.starts_with('.') || built || name == "target" {
            continue;
        }
        let kind = e.file_type()?;
        if kind.is_dir() {
            walk(root, &e.path(), out)?;
        } else if kind.is_file() {
            if out.len() >= MAX_FILES {
                anyhow::bail!("{}: over {MAX_FILES} files, not a module's folder", root.display());
            }
            out.push(e.path().strip_prefix(root).unwrap_or(&e.path()).to_path_buf());
        }
    }
    Ok(())
}

/// What identifies the source of a unit judged from `dir` (none for a
/// kernel's own module, identified by its name).
pub fn source(dir: Option<&Path>, name: &str) -> Result<ModuleSource> {
    let Some(dir) = dir else {
        return Ok(ModuleSource {
            module: name.to_string(),
            git_commit: None,
            git_url: None,
            git_branch: None,
            content_hash: crate::cache::digest([name]),
        });
    };
    let head = git_head(dir);
    Ok(ModuleSource {
        module: name.to_string(),
        git_commit: head.as_ref().map(|(c, _)| c.clone()),
        git_url: None,
        git_branch: head.and_then(|(_, b)| b),
        content_hash: content_hash(dir)?,
    })
}

/// Writes one report holding every unit's checkout, build and tests.
pub fn write(path: &Path, units: &[(ModuleSource, &Verdict)], build: &Build, run: &str) -> Result<()> {
    let mut doc =
        serde_json::json!({ "version": { "major": 5, "minor": 3 }, "checkouts": [], "builds": [], "tests": [] });
    for (src, v) in units {
        let r = kcidb::report(src, build, v, run);
        for key in ["checkouts", "builds", "tests"] {
            let have = doc[key].as_array_mut().expect("made as an array");
            for item in r[key].as_array().into_iter().flatten() {
                // Two units of one checkout (or build) name it once.
                if !have.iter().any(|h| h["id"] == item["id"]) {
                    have.push(item.clone());
                }
            }
        }
    }
    std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_is_read_from_the_repositorys_files() {
        let d = tempfile::tempdir().unwrap();
        let git = d.path().join(".git");
        let module = d.path().join("lessons/leds");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        std::fs::create_dir_all(&module).unwrap();
        let c = "0123456789abcdef0123456789abcdef01234567";
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(git.join("refs/heads/main"), format!("{c}\n")).unwrap();
        assert_eq!(git_head(&module), Some((c.to_string(), Some("main".to_string()))));
        // A packed ref.
        std::fs::remove_file(git.join("refs/heads/main")).unwrap();
        std::fs::write(git.join("packed-refs"), format!("# pack-refs\n{c} refs/heads/main\n")).unwrap();
        assert_eq!(git_head(&module).unwrap().0, c);
        // A detached HEAD; a HEAD that climbs out of .git is refused.
        std::fs::write(git.join("HEAD"), format!("{c}\n")).unwrap();
        assert_eq!(git_head(&module), Some((c.to_string(), None)));
        std::fs::write(git.join("HEAD"), "ref: refs/../../etc/passwd\n").unwrap();
        assert_eq!(git_head(&module), None);
        // A worktree: .git a file, HEAD in its own directory, refs shared.
        let wt = d.path().join("wt");
        std::fs::create_dir_all(git.join("worktrees/wt")).unwrap();
        std::fs::create_dir_all(&wt).unwrap();
        std::fs::write(wt.join(".git"), format!("gitdir: {}\n", git.join("worktrees/wt").display())).unwrap();
        std::fs::write(git.join("worktrees/wt/commondir"), "../..\n").unwrap();
        std::fs::write(git.join("worktrees/wt/HEAD"), "ref: refs/heads/main\n").unwrap();
        assert_eq!(git_head(&wt), Some((c.to_string(), Some("main".to_string()))));
        // The content hash follows the files, not the build's outputs.
        std::fs::write(module.join("leds.c"), "int x;").unwrap();
        let h = content_hash(&module).unwrap();
        std::fs::write(module.join("leds.ko"), "built").unwrap();
        assert_eq!(content_hash(&module).unwrap(), h);
        std::fs::write(module.join("leds.c"), "int y;").unwrap();
        assert_ne!(content_hash(&module).unwrap(), h);
    }
}
