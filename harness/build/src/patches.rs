//! A profile's patch series (`configs/patches/NAME/*.patch`): the project's
//! own changes that let an old vendor tree (FriendlyARM's Linux 3.5) build
//! with today's compiler and boot on QEMU's board. Each patch says in its
//! header what it fixes and why. They are applied, in name order, to a copy
//! of the tree in the cache (the tarball extracted there, or the user's
//! tree copied), never to the user's tree itself.

use crate::cache;
use crate::process;
use crate::profile::Profile;
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The profile's patches, in the order they apply, with their text; none
/// when it has no series.
pub fn series(profile: &Profile, configs_dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let Some(name) = &profile.kernel.patches else {
        return Ok(Vec::new());
    };
    let dir = configs_dir.join("patches").join(name);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing the patch series {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("{}: the profile's patch series has no *.patch file", dir.display());
    }
    paths
        .into_iter()
        .map(|p| Ok((p.clone(), std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?)))
        .collect()
}

/// The tree with `series` applied: built once into the cache under the
/// source's identity and the patches' text. `fill` puts the unpatched tree
/// at its argument (extracting or copying it).
pub fn patched_tree(
    identity: &str,
    series: &[(PathBuf, String)],
    root: &Path,
    fill: impl FnOnce(&Path, &Path) -> Result<()>,
) -> Result<PathBuf> {
    let mut key = vec![identity.to_string()];
    key.extend(series.iter().map(|(_, text)| text.clone()));
    let entry = root.join("sources").join(format!("patched-{}", cache::digest(&key)));
    let logs = cache::logs_dir_under(root, &entry);
    let (dir, _) = cache::get_or_build(&entry, "patching a copy of the kernel source", |tmp| {
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let tree = tmp.join("linux");
        fill(&tree, &logs)?;
        for (patch, _) in series {
            apply(patch, &tree, &logs)?;
        }
        Ok(())
    })?;
    Ok(dir.join("linux"))
}

/// Copies the user's tree `src` to `dest` (reflinked where the file
/// system can): the series goes on the copy.
pub fn copy_tree(src: &Path, dest: &Path, logs: &Path) -> Result<()> {
    eprintln!("harness: copying {} to patch it", src.display());
    let args: Vec<OsString> = vec!["-a".into(), "--reflink=auto".into(), src.into(), dest.into()];
    process::Logged::new("cp", &args, &logs.join("copy.log"), Duration::from_secs(20 * 60))
        .run(|_| {})
        .with_context(|| format!("copying the kernel tree {}", src.display()))
}

/// `patch -p1` of one file of the series onto `tree`.
fn apply(patch: &Path, tree: &Path, logs: &Path) -> Result<()> {
    let name = patch.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let args: Vec<OsString> =
        vec!["-p1".into(), "--batch".into(), "--forward".into(), "-d".into(), tree.into(), "-i".into(), patch.into()];
    process::Logged::new("patch", &args, &logs.join(format!("{name}.log")), Duration::from_secs(60))
        .run(|_| {})
        .with_context(|| {
            format!(
                "applying {} to a copy of the kernel source: is it the tree the series is made for (the profile's \
                kernel.source)?",
                patch.display()
            )
        })
}

/// `VERSION.PATCHLEVEL` from a tree's top Makefile.
pub fn tree_version(tree: &Path) -> Result<String> {
    let path = tree.join("Makefile");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let var = |name: &str| -> Option<String> {
        text.lines().take(10).find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    match (var("VERSION"), var("PATCHLEVEL")) {
        (Some(v), Some(p)) => Ok(format!("{v}.{p}")),
        _ => bail!("{}: no VERSION and PATCHLEVEL at its top: not a kernel Makefile", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs() -> PathBuf {
        crate::repo_root().join("configs")
    }

    /// Every patch of every series says what it fixes before its diff, and
    /// is a diff `patch -p1` takes (a/ and b/ paths).
    #[test]
    fn every_patch_has_a_header_saying_what_it_fixes() {
        let mut seen = 0;
        for name in Profile::available(&configs()) {
            let profile = Profile::load(&name, &configs()).unwrap();
            for (path, text) in series(&profile, &configs()).unwrap() {
                let header = &text[..text.find("\n--- ").unwrap_or_else(|| panic!("{}: no diff", path.display()))];
                assert!(
                    header.split_whitespace().count() >= 30,
                    "{}: the header must say what it fixes and why:\n{header}",
                    path.display()
                );
                assert!(text.contains("\n+++ b/"), "{}: not a -p1 diff", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 5, "the 3.5 series was read ({seen})");
    }

    #[test]
    fn the_version_comes_from_the_top_makefile() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Makefile"), "VERSION = 3\nPATCHLEVEL = 5\nSUBLEVEL = 0\n").unwrap();
        assert_eq!(tree_version(dir.path()).unwrap(), "3.5");
        std::fs::write(dir.path().join("Makefile"), "all:\n").unwrap();
        assert!(tree_version(dir.path()).unwrap_err().to_string().contains("not a kernel Makefile"));
    }

    /// The series goes on the copy; the tree it was copied from is not
    /// touched, and a patch that does not apply names itself.
    #[test]
    fn the_series_is_applied_to_a_copy_and_never_to_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(tree.join("a.txt"), "old\n").unwrap();
        let patch = dir.path().join("0001-a.patch");
        std::fs::write(
            &patch,
            "Changes a.txt: a test of the series.\n\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-old\n+new\n",
        )
        .unwrap();
        let series = vec![(patch.clone(), std::fs::read_to_string(&patch).unwrap())];
        let root = dir.path().join("cache");
        let out = patched_tree("id", &series, &root, |dest, logs| copy_tree(&tree, dest, logs)).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("a.txt")).unwrap(), "new\n");
        assert_eq!(std::fs::read_to_string(tree.join("a.txt")).unwrap(), "old\n", "the user's tree was patched");
        std::fs::write(tree.join("a.txt"), "other\n").unwrap();
        let err = format!(
            "{:#}",
            patched_tree("id2", &series, &root, |dest, logs| copy_tree(&tree, dest, logs)).unwrap_err()
        );
        assert!(err.contains("0001-a.patch"), "{err}");
    }
}
