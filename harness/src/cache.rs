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

/// `HARNESS_CACHE_DIR`, or `target/harness-cache` in the repository.
pub fn root() -> PathBuf {
    match std::env::var_os("HARNESS_CACHE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => crate::repo_root().join("target").join("harness-cache"),
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
            std::fs::remove_dir_all(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Where the logs of building the cache entry `entry` go: outside its
/// temporary directory, so that they outlive a failed build.
pub fn logs_dir(entry: &Path) -> PathBuf {
    let name = entry.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    root().join("logs").join(name)
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
        assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp-")));
    }
}
