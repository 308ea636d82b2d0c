//! The module build cache: a module directory's `.ko` files, kept under the
//! digest of everything its build reads (the sources as copied and wrapped
//! for the API, the kernel build, the compiler, the Rust toolchain, the
//! make command). A warm check of an unchanged module does no kbuild work,
//! about 1 s of kbuild's own start-up on a 2-core machine, which was most of
//! what a warm check spent beyond the bare boot.
//!
//! An entry is a directory `modules/GROUP-KEY` under the cache root: GROUP
//! is the module directory and kernel build, KEY what was built. It holds
//! the build's tree (sources, objects, `.ko` files), its log (the warnings
//! and the 3.5 port list are read from it again) and `built-in.txt`, the
//! directory the log's paths name. A hit is copied into the run directory,
//! as a build would have left it there: the run never reads the cache
//! again, so removing an entry cannot pull a module from under a run.
//! Publishing an entry removes its group's entries unused for a while, so
//! each module directory keeps about one per kernel, whatever the edits.

use crate::api::Api;
use crate::kernel::Kernel;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Changed when the way a module is built changes in a way the other parts
/// of the key do not show.
const RECIPE: &str = "module-cache-1";

/// A group's entries older than this go when a new one is published: no
/// check that started with an older one is still reading it by then.
const KEEP_OLDER: Duration = Duration::from_secs(10 * 60);

/// A build found in the cache, or the place to publish one.
pub struct ModuleCacheEntry {
    pub dir: PathBuf,
}

impl ModuleCacheEntry {
    /// The build's tree.
    pub fn tree(&self) -> PathBuf {
        self.dir.join("module")
    }
    /// Puts the kept build where a build would have left it: its tree over
    /// `tree` (the sources, copied), its log at `log`.
    pub fn restore(&self, tree: &Path, log: &Path) -> Result<()> {
        self.touch();
        copy_tree(&self.tree(), tree)?;
        std::fs::copy(self.log(), log)
            .with_context(|| format!("copying {} to {}", self.log().display(), log.display()))?;
        Ok(())
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("module-build.log")
    }
    /// Marks the entry used now: its group's newer builds remove only
    /// entries unused for a while.
    pub fn touch(&self) {
        let _ = std::fs::File::open(&self.dir).and_then(|f| f.set_modified(std::time::SystemTime::now()));
    }
    /// The directory the build ran in, which the log's paths name.
    pub fn built_in(&self) -> Result<PathBuf> {
        let f = self.dir.join("built-in.txt");
        Ok(std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?.trim_end().into())
    }
}

/// The entry for building `tree` (the sources copied and wrapped) from the
/// module directory `src` against `kernel`, found or not.
pub fn entry(
    src: &Path,
    tree: &Path,
    kernel: &Kernel,
    api: Api,
    make_argv: &[std::ffi::OsString],
) -> Result<(ModuleCacheEntry, bool)> {
    entry_with_layer(src, tree, kernel, api, make_argv, &crate::api::layer_dir())
}

/// [`entry`], with the 3.5 layer read from `layer`.
fn entry_with_layer(
    src: &Path,
    tree: &Path,
    kernel: &Kernel,
    api: Api,
    make_argv: &[std::ffi::OsString],
    layer: &Path,
) -> Result<(ModuleCacheEntry, bool)> {
    let group = crate::cache::digest([src.display().to_string(), kernel.build_dir.display().to_string()]);
    let mut h = Sha256::new();
    let mut part = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    part(RECIPE.as_bytes());
    part(kernel.release.as_bytes());
    part(format!("{api:?}").as_bytes());
    for a in make_argv {
        part(a.as_encoded_bytes());
    }
    if tree.join("Cargo.toml").is_file() {
        // rust-toolchain.toml may say "stable", which moves.
        let rustc =
            crate::process::output_in(Some(tree), "rustc", &["--version"]).context("asking rustc its version")?;
        part(rustc.as_bytes());
    }
    hash_tree(tree, tree, &mut h)?;
    if api == Api::Linux35 {
        // The layer's headers and kbuild.mk are read by the build too: a
        // changed layer must not reuse a build made with the old one.
        hash_tree(layer, layer, &mut h)?;
    }
    let key: String = h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    let dir = crate::cache::root().join("modules").join(format!("{group}-{key}"));
    let found = dir.join("built-in.txt").is_file();
    Ok((ModuleCacheEntry { dir }, found))
}

/// Every file under `dir`, in name order: its path relative to `root` and
/// its bytes, streamed (a module directory is the user's, of any size).
fn hash_tree(root: &Path, dir: &Path, h: &mut Sha256) -> Result<()> {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap_or(&p).as_os_str().as_encoded_bytes().to_vec();
        if e.file_type()?.is_dir() {
            h.update(b"d");
            h.update((rel.len() as u64).to_le_bytes());
            h.update(&rel);
            hash_tree(root, &p, h)?;
        } else {
            let mut f = std::fs::File::open(&p).with_context(|| format!("reading {}", p.display()))?;
            h.update(b"f");
            h.update((rel.len() as u64).to_le_bytes());
            h.update(&rel);
            h.update(f.metadata()?.len().to_le_bytes());
            std::io::copy(&mut f, h).with_context(|| format!("reading {}", p.display()))?;
        }
    }
    Ok(())
}

/// Keeps the build made in `built` and its `log` as `entry`. Another run
/// may publish the same entry at the same time: either copy is the same
/// build.
pub fn publish(entry: &ModuleCacheEntry, built: &Path, log: &Path) -> Result<()> {
    let parent = entry.dir.parent().context("module cache entry has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = tempfile::tempdir_in(parent).with_context(|| format!("creating a directory in {}", parent.display()))?;
    copy_tree(built, &tmp.path().join("module"))?;
    std::fs::copy(log, tmp.path().join("module-build.log")).with_context(|| format!("copying {}", log.display()))?;
    std::fs::write(tmp.path().join("built-in.txt"), format!("{}\n", built.display()))?;
    let tmp = tmp.keep();
    if std::fs::rename(&tmp, &entry.dir).is_err() {
        // Published meanwhile by another run.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    remove_older(entry, parent);
    Ok(())
}

/// Copies the files and directories under `from` into `to` (a build tree
/// has no links: the sources' were followed when they were copied).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))?.flatten() {
        let (src, dest) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type()?;
        if ft.is_dir() {
            copy_tree(&src, &dest)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dest).with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
        }
    }
    Ok(())
}

/// Removes the entries of `entry`'s group last used before
/// [`KEEP_OLDER`]: the builds of earlier versions of the same sources.
fn remove_older(entry: &ModuleCacheEntry, parent: &Path) {
    let name = entry.dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let Some((group, _)) = name.split_once('-') else { return };
    let Ok(dir) = std::fs::read_dir(parent) else { return };
    for e in dir.flatten() {
        let other = e.file_name().to_string_lossy().into_owned();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > KEEP_OLDER);
        if other != name && other.split_once('-').is_some_and(|(g, _)| g == group) && old {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(build_dir: &str) -> Kernel {
        Kernel {
            build_dir: build_dir.into(),
            source_dir: "/s".into(),
            release: "6.12.118-emulated".into(),
            arch: "arm".into(),
            cross_compile: "arm-linux-gnueabihf-".into(),
            make_vars: Vec::new(),
            built_now: false,
        }
    }

    fn key_of(tree: &Path, k: &Kernel, api: Api) -> String {
        let (e, _) = entry(Path::new("/src/m"), tree, k, api, &["modules".into()]).unwrap();
        e.dir.file_name().unwrap().to_string_lossy().into_owned()
    }

    #[test]
    fn the_key_follows_every_input_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("m.c"), "int x;").unwrap();
        std::fs::write(d.path().join("sub/h.h"), "").unwrap();
        let k = kernel("/k/a");
        let first = key_of(d.path(), &k, Api::Native);
        assert_eq!(key_of(d.path(), &k, Api::Native), first, "same inputs, same entry");
        let (group, _) = first.split_once('-').unwrap();

        let mut seen = vec![first.clone()];
        let mut differs = |what: &str, key: String| {
            assert!(!seen.contains(&key), "{what} did not change the key");
            seen.push(key);
        };
        differs("the API", key_of(d.path(), &k, Api::Linux35));
        let mut other = kernel("/k/a");
        other.release = "6.12.118-debug".into();
        differs("the kernel release", key_of(d.path(), &other, Api::Native));
        std::fs::write(d.path().join("m.c"), "int y;").unwrap();
        differs("a file's bytes", key_of(d.path(), &k, Api::Native));
        std::fs::write(d.path().join("sub/g.h"), "").unwrap();
        differs("a new empty file", key_of(d.path(), &k, Api::Native));
        std::fs::rename(d.path().join("sub/g.h"), d.path().join("sub/f.h")).unwrap();
        let renamed = key_of(d.path(), &k, Api::Native);
        differs("a renamed file", renamed.clone());
        assert!(renamed.starts_with(group), "the same directory and kernel stay one group");
        let elsewhere = key_of(d.path(), &kernel("/k/b"), Api::Native);
        assert!(!elsewhere.starts_with(group), "another kernel build is another group");
    }

    /// A build under --api 3.5 reads the layer: a changed layer header is a
    /// new entry for it, and nothing to a native build.
    #[test]
    fn a_changed_layer_is_a_new_entry_for_3_5_builds_only() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("m.c"), "int x;").unwrap();
        let layer = tempfile::tempdir().unwrap();
        std::fs::write(layer.path().join("kbuild.mk"), "# one").unwrap();
        let k = kernel("/k/a");
        let key = |api| {
            let (e, _) =
                entry_with_layer(Path::new("/src/m"), d.path(), &k, api, &["modules".into()], layer.path()).unwrap();
            e.dir.file_name().unwrap().to_string_lossy().into_owned()
        };
        let (before35, before_native) = (key(Api::Linux35), key(Api::Native));
        std::fs::write(layer.path().join("kbuild.mk"), "# two").unwrap();
        assert_ne!(key(Api::Linux35), before35, "the layer's change did not change the 3.5 key");
        assert_eq!(key(Api::Native), before_native, "a native build does not read the layer");
    }

    #[test]
    fn a_published_build_is_found_and_replaces_its_groups_older_ones() {
        let root = tempfile::tempdir().unwrap();
        let modules = root.path().join("modules");
        let built = root.path().join("work/module");
        std::fs::create_dir_all(built.join("sub")).unwrap();
        std::fs::write(built.join("sub/a.ko"), "ko").unwrap();
        std::fs::write(built.join("modules.order"), "sub/a.o\n").unwrap();
        std::fs::write(built.join("a.o"), "not kept").unwrap();
        let log = root.path().join("work/module-build.log");
        std::fs::write(&log, "WARNING: x\n").unwrap();
        // An older build of the same group, and another group's.
        let old = modules.join("g1-00");
        let other = modules.join("g2-00");
        for d in [&old, &other] {
            std::fs::create_dir_all(d).unwrap();
            let f = std::fs::File::open(d).unwrap();
            f.set_modified(std::time::SystemTime::now() - 2 * KEEP_OLDER).unwrap();
        }
        let e = ModuleCacheEntry { dir: modules.join("g1-11") };
        publish(&e, &built, &log).unwrap();
        assert_eq!(e.built_in().unwrap(), built);
        assert!(!old.exists(), "the group's older build is gone");
        assert!(other.exists(), "another group's build stays");
        // Published again (a parallel run): the first copy stays, no error.
        publish(&e, &built, &log).unwrap();
        assert_eq!(std::fs::read_dir(&modules).unwrap().count(), 2, "no temporary left behind");

        // Restored into the next run's copy of the sources, as built.
        let next = root.path().join("next/module");
        std::fs::create_dir_all(&next).unwrap();
        std::fs::write(next.join("m.c"), "source").unwrap();
        let next_log = root.path().join("next/module-build.log");
        e.restore(&next, &next_log).unwrap();
        assert_eq!(std::fs::read_to_string(next.join("sub/a.ko")).unwrap(), "ko");
        assert_eq!(std::fs::read_to_string(next.join("a.o")).unwrap(), "not kept", "the objects come back too");
        assert!(next.join("modules.order").is_file() && next.join("m.c").is_file());
        assert_eq!(std::fs::read_to_string(&next_log).unwrap(), "WARNING: x\n");
        // The run's copy is its own: the entry removed (cache gc, a newer
        // build of the group), the run still has its modules.
        std::fs::remove_dir_all(&e.dir).unwrap();
        assert_eq!(std::fs::read_to_string(next.join("sub/a.ko")).unwrap(), "ko", "the module went with the cache");
        assert_eq!(std::fs::read_to_string(&next_log).unwrap(), "WARNING: x\n");
    }
}
