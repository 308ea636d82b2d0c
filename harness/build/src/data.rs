//! Where the data the harness ships is: the default profiles and kernel
//! fragments (`configs/`), the rootfs overlay (`rootfs/`), the 3.5 layer
//! and the virtual board's module (`compat35/`) and the default module
//! (`kmod/`). Found at run time, so that one binary works from any
//! directory:
//!
//! 1. `HARNESS_DATA_DIR`, when set;
//! 2. else the nearest directory above the executable that holds both
//!    `configs/` and `rootfs/` (a checkout's `target/release/tiny4412-harness`,
//!    or an install that keeps the data beside the binary);
//! 3. else the copy built into the binary (build.rs), unpacked once into
//!    the user's cache directory under its content's hash: what an installed
//!    binary (`cargo install`) uses, with or without the checkout.
//!
//! In cases 1 and 2 the data is a checkout, whose `target/` keeps the caches
//! and runs as before; in case 3 they go to the user's cache directory
//! ([`user_cache`]). Kernel cache keys hash the files' contents, never their
//! paths, so both find the same kernels.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

/// The variable that names the data directory.
pub const ENV: &str = "HARNESS_DATA_DIR";

/// The installed binary's name, and its folder in the user's cache.
pub const NAME: &str = "tiny4412-harness";

/// The shipped directories, gzip'd by build.rs.
static BUNDLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/data.bin.gz"));

/// What starts an uncompressed bundle (build.rs writes it).
const MAGIC: &[u8] = b"tiny4412-harness data 1\n";

/// The data directory, and whether it is a checkout (cases 1 and 2).
struct Found {
    root: PathBuf,
    checkout: bool,
}

fn found() -> &'static Found {
    static FOUND: OnceLock<Found> = OnceLock::new();
    FOUND.get_or_init(|| match find(std::env::var_os(ENV), std::env::current_exe().ok().as_deref()) {
        Some(root) => Found { root, checkout: true },
        None => match unpack(BUNDLE, &user_cache().join("data")) {
            Ok(root) => Found { root, checkout: false },
            Err(e) => {
                // Nothing of the harness works without its data; say why and how to help it.
                eprintln!("error: {e:#}; or point {ENV} at a checkout of the harness");
                std::process::exit(2)
            }
        },
    })
}

/// The data directory, looked up once per process (see the module's doc).
pub fn root() -> &'static Path {
    &found().root
}

/// The checkout the data is in (cases 1 and 2), None for the built-in copy.
pub fn checkout() -> Option<&'static Path> {
    let f = found();
    f.checkout.then_some(f.root.as_path())
}

/// The user's cache directory for the harness: `HARNESS_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/tiny4412-harness`, else `~/.cache/tiny4412-harness`.
pub fn user_cache() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    user_cache_from(var("HARNESS_CACHE_DIR"), var("XDG_CACHE_HOME"), var("HOME"))
}

fn user_cache_from(harness: Option<PathBuf>, xdg: Option<PathBuf>, home: Option<PathBuf>) -> PathBuf {
    harness
        .or_else(|| xdg.map(|x| x.join(NAME)))
        .or_else(|| home.map(|h| h.join(".cache").join(NAME)))
        .unwrap_or_else(|| std::env::temp_dir().join(NAME))
}

/// Whether `dir` holds the harness's data.
fn holds_data(dir: &Path) -> bool {
    dir.join("configs").is_dir() && dir.join("rootfs").is_dir()
}

/// Cases 1 and 2, given the variable and the executable's path.
fn find(env: Option<OsString>, exe: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = env.filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    exe.and_then(|exe| exe.ancestors().skip(1).find(|d| holds_data(d))).map(Path::to_path_buf)
}

/// The built-in copy's key: the first 16 hex digits of its hash.
fn key(gz: &[u8]) -> String {
    Sha256::digest(gz)[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Removes the unpacked data of other versions from `cache`'s `data/`
/// (`cache gc`), keeping this binary's own and any unpacking under way
/// (`.tmp-`); returns what it removed. Another version finds its copy gone
/// and unpacks it again.
pub fn gc(cache: &Path) -> Result<Vec<PathBuf>> {
    gc_keeping(&cache.join("data"), &key(BUNDLE))
}

fn gc_keeping(data: &Path, keep: &str) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(data) else { return Ok(Vec::new()) };
    let mut gone = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", data.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == keep || name.contains(".tmp-") {
            continue;
        }
        std::fs::remove_dir_all(entry.path()).with_context(|| format!("removing {}", entry.path().display()))?;
        gone.push(entry.path());
    }
    Ok(gone)
}

/// Unpacks the gzip'd bundle into `into/KEY` (KEY from its hash), once: a
/// later call, or another process, finds it there. Written into a
/// temporary directory and renamed, so a half-unpacked copy is never used.
fn unpack(gz: &[u8], into: &Path) -> Result<PathBuf> {
    let key = key(gz);
    let dir = into.join(&key);
    if dir.is_dir() {
        return Ok(dir);
    }
    std::fs::create_dir_all(into).with_context(|| format!("creating {}", into.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{key}.tmp-"))
        .tempdir_in(into)
        .with_context(|| format!("creating a directory in {}", into.display()))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut bytes)
        .context("the built-in data is not gzip: the binary is damaged, reinstall it")?;
    for (name, mode, content) in entries(&bytes)? {
        let path = tmp.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o755))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    match std::fs::rename(tmp.path(), &dir) {
        Ok(()) => {
            // Renamed away: nothing left for the guard to remove.
            let _ = tmp.keep();
            Ok(dir)
        }
        // Another process unpacked it first; ours is dropped.
        Err(_) if dir.is_dir() => Ok(dir),
        Err(e) => Err(e).with_context(|| format!("unpacking the harness's data into {}", dir.display())),
    }
}

/// The files of an uncompressed bundle: (relative path, mode, content).
fn entries(mut b: &[u8]) -> Result<Vec<(&str, u32, &[u8])>> {
    b = b.strip_prefix(MAGIC).context("the built-in data has no header: the binary is damaged, reinstall it")?;
    let mut out = Vec::new();
    while !b.is_empty() {
        let (name, rest) = field(b, 4)?;
        let name = std::str::from_utf8(name).context("a file name in the built-in data is not UTF-8")?;
        let safe = Path::new(name).components().all(|c| matches!(c, Component::Normal(_)));
        if name.is_empty() || !safe {
            bail!("the built-in data names {name:?}, not a plain relative path");
        }
        let (mode, rest) = rest.split_at_checked(4).context("the built-in data ends inside an entry")?;
        let (content, rest) = field(rest, 8)?;
        out.push((name, u32::from_le_bytes(mode.try_into()?), content));
        b = rest;
    }
    Ok(out)
}

/// A length (little endian, `width` bytes) and that many bytes.
fn field(b: &[u8], width: usize) -> Result<(&[u8], &[u8])> {
    let (len, rest) = b.split_at_checked(width).context("the built-in data ends inside an entry")?;
    let mut le = [0u8; 8];
    le[..width].copy_from_slice(len);
    let len = usize::try_from(u64::from_le_bytes(le))?;
    rest.split_at_checked(len).context("the built-in data ends inside a file")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn data_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for sub in ["configs", "rootfs", "bin/deep"] {
            std::fs::create_dir_all(d.path().join(sub)).unwrap();
        }
        d
    }

    /// The checkout these tests run from (harness/build/ is two deep).
    fn checkout_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().to_path_buf()
    }

    #[test]
    fn the_variable_wins_then_the_executables_ancestors_then_the_built_in_copy() {
        let d = data_dir();
        let exe = d.path().join("bin/deep/harness");
        assert_eq!(find(Some("/elsewhere".into()), Some(&exe)), Some(PathBuf::from("/elsewhere")));
        // An empty variable is unset.
        assert_eq!(find(Some("".into()), Some(&exe)).as_deref(), Some(d.path()));
        assert_eq!(find(None, Some(&exe)).as_deref(), Some(d.path()));
        // A directory with configs/ but no rootfs/ is not the data: no
        // checkout is found, and the built-in copy is used.
        let other = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(other.path().join("configs")).unwrap();
        assert_eq!(find(None, Some(&other.path().join("harness"))), None);
        assert_eq!(find(None, None), None);
    }

    #[test]
    fn the_tests_find_their_checkout() {
        assert_eq!(checkout(), Some(checkout_dir().as_path()));
    }

    #[test]
    fn the_cache_is_the_variable_then_xdg_then_home() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(user_cache_from(p("/c"), p("/x"), p("/h")), PathBuf::from("/c"));
        assert_eq!(user_cache_from(None, p("/x"), p("/h")), PathBuf::from("/x/tiny4412-harness"));
        assert_eq!(user_cache_from(None, None, p("/h")), PathBuf::from("/h/.cache/tiny4412-harness"));
    }

    /// The built-in copy is the checkout's files, byte for byte and with
    /// their modes, every one of them, and nothing else.
    #[test]
    fn the_built_in_copy_unpacks_to_the_checkouts_files_once() {
        let cache = tempfile::tempdir().unwrap();
        let dir = unpack(BUNDLE, cache.path()).unwrap();
        let mut n = 0;
        for sub in ["configs", "rootfs", "compat35", "kmod"] {
            for rel in tracked(sub) {
                let (want, got) = (checkout_dir().join(&rel), dir.join(&rel));
                assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&want).unwrap(), "{rel}");
                let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o111;
                assert_eq!(mode(&got), mode(&want), "{rel}");
                n += 1;
            }
        }
        let unpacked = walk(&dir);
        assert_eq!(unpacked, n, "files in the copy that the checkout does not track");
        // A second call finds it; nothing else is left in the cache.
        let mtime = std::fs::metadata(dir.join("configs")).unwrap().modified().unwrap();
        assert_eq!(unpack(BUNDLE, cache.path()).unwrap(), dir);
        assert_eq!(std::fs::metadata(dir.join("configs")).unwrap().modified().unwrap(), mtime);
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1);
    }

    /// The checkout's files under `sub`, as git lists them.
    fn tracked(sub: &str) -> Vec<String> {
        let out = std::process::Command::new("git").arg("-C").arg(checkout_dir()).args(["ls-files", sub]).output();
        let out = out.unwrap();
        String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect()
    }

    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).map(|p| if p.is_dir() { walk(&p) } else { 1 }).sum()
    }

    fn gz(raw: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(raw).unwrap();
        e.finish().unwrap()
    }

    fn entry(name: &str, content: &[u8]) -> Vec<u8> {
        let mut v = (name.len() as u32).to_le_bytes().to_vec();
        v.extend(name.as_bytes());
        v.extend(0o644u32.to_le_bytes());
        v.extend((content.len() as u64).to_le_bytes());
        v.extend(content);
        v
    }

    #[test]
    fn gc_removes_other_versions_data_but_not_its_own_nor_an_unpacking() {
        let cache = tempfile::tempdir().unwrap();
        let data = cache.path().join("data");
        let own = unpack(BUNDLE, &data).unwrap();
        for other in ["0123456789abcdef/configs", "fedcba9876543210.tmp-Ab12/configs"] {
            std::fs::create_dir_all(data.join(other)).unwrap();
        }
        assert_eq!(gc(cache.path()).unwrap(), [data.join("0123456789abcdef")]);
        assert!(own.join("configs").is_dir() && data.join("fedcba9876543210.tmp-Ab12").is_dir());
        assert!(gc(tempfile::tempdir().unwrap().path()).unwrap().is_empty(), "no data/ at all");
    }

    #[test]
    fn a_bundle_cannot_write_outside_its_directory_nor_be_cut_short() {
        let cache = tempfile::tempdir().unwrap();
        for bad in ["../escape", "/abs", "a/../../b", ""] {
            let raw = [MAGIC, &entry(bad, b"x")].concat();
            let err = format!("{:#}", unpack(&gz(&raw), cache.path()).unwrap_err());
            assert!(err.contains("not a plain relative path"), "{bad}: {err}");
        }
        let whole = [MAGIC, &entry("a/b", b"hello")].concat();
        let err = format!("{:#}", unpack(&gz(&whole[..whole.len() - 1]), cache.path()).unwrap_err());
        assert!(err.contains("ends inside a file"), "{err}");
        assert!(!cache.path().parent().unwrap().join("escape").exists());
        let dir = unpack(&gz(&whole), cache.path()).unwrap();
        assert_eq!(std::fs::read(dir.join("a/b")).unwrap(), b"hello");
    }
}
