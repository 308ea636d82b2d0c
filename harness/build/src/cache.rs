//! The artifact cache: kernel builds, extracted sources and busybox, shared by
//! every run and every parallel test.
//!
//! An entry is a directory that exists only once complete: it is built under
//! a per-entry file lock into `NAME.tmp-PID` and renamed into place. A build
//! killed halfway leaves only a `.tmp-` directory, which no reader ever looks
//! at and the next builder removes.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `HARNESS_CACHE_DIR`; else `target/harness-cache` in a checkout, and
/// the user's cache directory for an installed binary (see data.rs).
pub fn root() -> PathBuf {
    match std::env::var_os("HARNESS_CACHE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => match crate::data::checkout() {
            Some(checkout) => checkout.join("target").join("harness-cache"),
            None => crate::data::user_cache(),
        },
    }
}

/// Where the harness writes its own files named `name` (caches, runs,
/// board images) by default: `target/NAME` in a checkout, else
/// `NAME` in the user's cache directory. Never the module's folder.
pub fn scratch(name: &str) -> PathBuf {
    match crate::data::checkout() {
        Some(checkout) => checkout.join("target").join(name),
        None => crate::data::user_cache().join(name),
    }
}

/// The longest a cache entry's build may run (a kernel's `make`; the
/// builder kills it then).
pub const BUILD_DEADLINE: Duration = Duration::from_secs(120 * 60);

/// How long a run waits for another run's build of the same entry: as long
/// as that build may take, with its configuring and extracting on top, so
/// that a waiter never gives up on a build that is still allowed to finish.
const LOCK_WAIT: Duration = Duration::from_secs(BUILD_DEADLINE.as_secs() + 30 * 60);

/// An exclusive lock, released on drop (the kernel releases it if we die).
pub struct Lock {
    _file: File,
}

pub fn lock(path: &Path, what: &str) -> Result<Lock> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    let start = Instant::now();
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Lock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
        if !told {
            eprintln!("harness: waiting for another run to finish {what}");
            told = true;
        }
        if start.elapsed() > LOCK_WAIT {
            bail!("gave up waiting {} s for the lock on {} ({what})", LOCK_WAIT.as_secs(), path.display());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Returns `dir`, building it first with `build` if it does not exist yet.
/// `build` receives a fresh temporary directory to fill; on success it is
/// renamed to `dir` atomically. Concurrent callers build once: the others
/// wait on the lock and then find the entry complete.
pub fn get_or_build(dir: &Path, what: &str, build: impl FnOnce(&Path) -> Result<()>) -> Result<(PathBuf, bool)> {
    if dir.is_dir() {
        return Ok((dir.to_path_buf(), false));
    }
    let name = dir.file_name().context("cache entry has no name")?.to_string_lossy().into_owned();
    let parent = dir.parent().context("cache entry has no parent")?;
    let _lock = lock(&parent.join(format!("{name}.lock")), what)?;
    if dir.is_dir() {
        return Ok((dir.to_path_buf(), false));
    }
    remove_stale_temporaries(parent, &name)?;
    let tmp = parent.join(format!("{name}.tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    // The build's process groups are written into the temporary: if this
    // run dies, the next one stops them before it removes the directory.
    crate::process::record_groups_in(Some(tmp.clone()));
    let built = build(&tmp);
    crate::process::record_groups_in(None);
    if let Err(e) = built {
        // Its logs are outside the temporary (see `logs_dir`).
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, dir).with_context(|| format!("publishing {} as {}", tmp.display(), dir.display()))?;
    Ok((dir.to_path_buf(), true))
}

/// Removes `NAME.tmp-*` left by builds that were killed. Only called with the
/// entry's lock held, so no live build owns them.
fn remove_stale_temporaries(parent: &Path, name: &str) -> Result<()> {
    let prefix = format!("{name}.tmp-");
    for entry in std::fs::read_dir(parent).with_context(|| format!("listing {}", parent.display()))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            // Its builder is gone (we hold the lock), but its sub-makes and
            // compilers may not be: they would write into what we remove.
            crate::process::stop_recorded(&entry.path());
            eprintln!("harness: removing {} left by an interrupted build", entry.path().display());
            std::fs::remove_dir_all(entry.path()).with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Notes that `entry` was used now, in `last-used/` beside the entries (not
/// inside the entry: a warm run writes nothing in a kernel build).
pub fn touch(entry: &Path) {
    let Some(name) = entry.file_name() else { return };
    let dir = root().join("last-used");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join(name), b"");
    }
}

/// One published kernel build in the cache.
#[derive(Debug, Clone)]
pub struct CachedKernel {
    pub path: PathBuf,
    /// The profile it was built for (the name before the key).
    pub profile: String,
    pub bytes: u64,
    /// When a run last used it (or when it was built).
    pub last_used: std::time::SystemTime,
}

/// The published kernel builds, most recently used first.
pub fn entries() -> Result<Vec<CachedKernel>> {
    let kernels = root().join("kernels");
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(&kernels) else { return Ok(out) };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if !path.is_dir() || name.contains(".tmp-") {
            continue;
        }
        let Some((profile, _key)) = name.rsplit_once('-') else { continue };
        let stamp = root().join("last-used").join(&name);
        let last_used =
            stamp.metadata().or_else(|_| path.metadata()).and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
        out.push(CachedKernel { bytes: dir_size(&path), path, profile: profile.to_string(), last_used });
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.last_used));
    Ok(out)
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                Err(_) => {}
            }
        }
    }
    total
}

/// The entries `gc` removes: all but the `keep` most recently used of each
/// profile, and, with `older_than`, any not used for that long. Pure.
pub fn to_collect(
    entries: &[CachedKernel],
    keep: usize,
    older_than: Option<Duration>,
    now: std::time::SystemTime,
) -> Vec<CachedKernel> {
    let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut out = Vec::new();
    for e in entries {
        let n = seen.entry(e.profile.as_str()).or_default();
        *n += 1;
        let stale = older_than.is_some_and(|age| now.duration_since(e.last_used).unwrap_or_default() > age);
        if *n > keep || stale {
            out.push(e.clone());
        }
    }
    out
}

/// Where the booted guests saved from each kernel are (run's
/// guest/snapshot.rs), a folder per kernel entry: they go with it.
/// `HARNESS_SNAPSHOTS` puts them elsewhere (a test that damages one).
pub fn snapshots() -> PathBuf {
    match std::env::var_os("HARNESS_SNAPSHOTS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => root().join("snapshots"),
    }
}

/// Removes `entry` under its lock (never one being built), and the guests
/// saved from it.
pub fn remove(entry: &CachedKernel) -> Result<()> {
    let name = entry.path.file_name().context("cache entry has no name")?.to_string_lossy().into_owned();
    let _lock = lock(&entry.path.with_file_name(format!("{name}.lock")), "removing a cache entry")?;
    std::fs::remove_dir_all(&entry.path).with_context(|| format!("removing {}", entry.path.display()))?;
    let saved = snapshots().join(&name);
    if saved.is_dir() {
        std::fs::remove_dir_all(&saved).with_context(|| format!("removing {}", saved.display()))?;
    }
    let _ = std::fs::remove_file(root().join("last-used").join(&name));
    Ok(())
}

/// Where the logs of building the cache entry `entry` go: outside its
/// temporary directory, so that they outlive a failed build.
pub fn logs_dir(entry: &Path) -> PathBuf {
    logs_dir_under(&root(), entry)
}

/// [`logs_dir`] for a cache rooted at `root`.
pub fn logs_dir_under(root: &Path, entry: &Path) -> PathBuf {
    let name = entry.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    root.join("logs").join(name)
}

/// A file's path, size and modification time, for a key over a file too
/// large to read for every run (a kernel image, QEMU, the harness itself):
/// a rebuild or an upgrade changes the time. A missing file has neither.
pub fn stamp(path: &Path) -> String {
    let m = std::fs::metadata(path).ok();
    let mtime = m
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos());
    format!("{}:{}:{}", path.display(), m.map(|m| m.len()).unwrap_or(0), mtime.unwrap_or(0))
}

/// A short stable hex digest of some parts, for cache keys.
pub fn digest<I, T>(parts: I) -> String
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    let mut h = Sha256::new();
    for p in parts {
        let p = p.as_ref();
        // Length-prefix each part so ("ab","c") and ("a","bc") differ.
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn gc_keeps_the_newest_of_each_profile_and_drops_the_stale() {
        let t0 = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let e = |profile: &str, key: &str, age_days: u64| CachedKernel {
            path: PathBuf::from(format!("/c/kernels/{profile}-{key}")),
            profile: profile.into(),
            bytes: 1,
            last_used: t0 - Duration::from_secs(age_days * 86400),
        };
        // Most recently used first, as entries() gives them.
        let all =
            [e("exynos4210", "a", 0), e("exynos4210", "b", 3), e("vexpress-a9", "c", 40), e("exynos4210", "d", 50)];
        let names = |v: Vec<CachedKernel>| v.iter().map(|x| x.path.display().to_string()).collect::<Vec<_>>();
        assert_eq!(names(to_collect(&all, 1, None, t0)), ["/c/kernels/exynos4210-b", "/c/kernels/exynos4210-d"]);
        assert_eq!(
            names(to_collect(&all, 2, Some(Duration::from_secs(30 * 86400)), t0)),
            ["/c/kernels/vexpress-a9-c", "/c/kernels/exynos4210-d"]
        );
        assert!(to_collect(&all, 5, None, t0).is_empty());
    }

    #[test]
    fn digest_is_stable_and_separates_parts() {
        assert_eq!(digest(["a", "bc"]), digest(["a", "bc"]));
        assert_ne!(digest(["ab", "c"]), digest(["a", "bc"]));
        assert_eq!(digest(["x"]).len(), 16);
    }

    #[test]
    fn concurrent_callers_build_once_and_all_see_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("entry");
        let builds = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (entry, builds) = (entry.clone(), builds.clone());
                std::thread::spawn(move || {
                    get_or_build(&entry, "test entry", |tmp| {
                        builds.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(300));
                        std::fs::write(tmp.join("done"), "yes")?;
                        Ok(())
                    })
                    .unwrap()
                })
            })
            .collect();
        for t in threads {
            let (path, _) = t.join().unwrap();
            assert_eq!(std::fs::read_to_string(path.join("done")).unwrap(), "yes");
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_killed_build_leaves_nothing_that_looks_finished() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("kernel");
        // What a SIGKILLed builder leaves: a half-filled temporary.
        let stale = dir.path().join("kernel.tmp-999999");
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join("half"), "x").unwrap();
        assert!(!entry.exists());
        let (_, built) = get_or_build(&entry, "test", |tmp| Ok(std::fs::write(tmp.join("ok"), "")?)).unwrap();
        assert!(built);
        assert!(!stale.exists(), "stale temporary removed");
        assert!(entry.join("ok").exists());
        let failed = dir.path().join("other");
        assert!(get_or_build(&failed, "test", |_| anyhow::bail!("boom")).is_err());
        assert!(!failed.exists());
        assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp-")));
    }
}
