//! The guest's root filesystem: the static ARM busybox (`busybox.rs`), the `/init`
//! and step script from `rootfs/`, and the module, written as a newc cpio by
//! [`crate::guest::cpio`]. No root and no loop mounts are needed at any point.

use crate::guest::cpio::{self, Entry};
use crate::plan::Plan;
use crate::program::Program;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Where busybox lives in the guest, and the applet links `/init` needs
/// before it can run `busybox --install`.
const BUSYBOX: &str = "bin/busybox";

/// What every guest archive starts with: the directories busybox installs
/// its applets into, the device nodes the kernel needs before /init runs,
/// and busybox itself with `/bin/sh`.
pub fn skeleton(busybox: &[u8]) -> Vec<Entry> {
    let dir = |p: &str| Entry::Dir { path: p.into(), mode: 0o755 };
    vec![
        dir("bin"),
        dir("sbin"),
        dir("usr"),
        dir("usr/bin"),
        dir("usr/sbin"),
        dir("dev"),
        // The kernel opens /dev/console before /init runs, long before
        // devtmpfs is mounted: it must be in the archive.
        Entry::CharDev { path: "dev/console".into(), mode: 0o600, major: 5, minor: 1 },
        Entry::CharDev { path: "dev/null".into(), mode: 0o666, major: 1, minor: 3 },
        dir("etc"),
        dir("proc"),
        dir("sys"),
        dir("root"),
        Entry::Dir { path: "tmp".into(), mode: 0o1777 },
        Entry::File { path: BUSYBOX.into(), mode: 0o755, data: busybox.to_vec() },
        Entry::Symlink { path: "bin/sh".into(), target: "busybox".into() },
    ]
}

/// What one guest runs: the modules, the programs, the plan and the run's
/// nonce.
pub struct Guest<'a> {
    /// Each .ko on the host and its file under [`GUEST_DIR`]
    /// (`NAME.ko`, or `UNIT/NAME.ko` when several units share the guest).
    pub modules: &'a [(String, PathBuf)],
    /// The programs and the guest directory each goes to (/usr/bin, or a
    /// unit's own directory when several share the guest).
    pub programs: &'a [(Program, String)],
    pub plan: &'a Plan,
    pub nonce: &'a str,
    /// The loader that makes one init_module per insmod (`loader.rs`),
    /// as /harness/insmod; busybox's insmod without it.
    pub loader: Option<&'a Path>,
}

pub use crate::plan::GUEST_DIR;

/// Everything that goes into the archive, in order (parents first).
pub fn entries(rootfs_dir: &Path, busybox: &[u8], guest: &Guest) -> Result<Vec<Entry>> {
    let read = |name: &str| -> Result<Vec<u8>> {
        let p = rootfs_dir.join(name);
        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
    };
    let mut env = format!("HARNESS_NONCE={}\n", guest.nonce);
    if guest.loader.is_some() {
        env.push_str("HARNESS_INSMOD=/harness/insmod\n");
    }
    let mut e = skeleton(busybox);
    e.extend([
        Entry::Dir { path: "harness".into(), mode: 0o755 },
        Entry::File { path: "init".into(), mode: 0o755, data: read("init")? },
        Entry::File { path: "harness/steps.sh".into(), mode: 0o644, data: read("steps.sh")? },
        Entry::File { path: "harness/env".into(), mode: 0o644, data: env.into_bytes() },
        Entry::File {
            path: "harness/scenario.sh".into(),
            mode: 0o644,
            data: crate::plan::script(guest.plan, GUEST_DIR).into_bytes(),
        },
    ]);
    if let Some(loader) = guest.loader {
        let data = std::fs::read(loader).with_context(|| format!("reading {}", loader.display()))?;
        e.push(Entry::File { path: "harness/insmod".into(), mode: 0o755, data });
    }
    for (file, ko) in guest.modules {
        if let Some((unit, _)) = file.rsplit_once('/') {
            let dir = format!("harness/{unit}");
            if !e.iter().any(|x| x.path() == dir) {
                e.push(Entry::Dir { path: dir, mode: 0o755 });
            }
        }
        let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
        e.push(Entry::File { path: format!("harness/{file}"), mode: 0o644, data });
    }
    // Under their stems, in their directory (on PATH).
    let mut dirs: Vec<String> =
        e.iter().filter(|x| matches!(x, Entry::Dir { .. })).map(|x| x.path().to_string()).collect();
    for (p, dir) in guest.programs {
        let dir = dir.trim_matches('/');
        let mut path = String::new();
        for part in dir.split('/') {
            path = if path.is_empty() { part.to_string() } else { format!("{path}/{part}") };
            if !dirs.contains(&path) {
                e.push(Entry::Dir { path: path.clone(), mode: 0o755 });
                dirs.push(path.clone());
            }
        }
        let data = std::fs::read(&p.path).with_context(|| format!("reading {}", p.path.display()))?;
        e.push(Entry::File { path: format!("{dir}/{}", p.name), mode: 0o755, data });
    }
    let overlay = rootfs_dir.join("overlay");
    if overlay.is_dir() {
        add_overlay(&overlay, &overlay, &mut e)?;
    }
    Ok(e)
}

/// Files under `rootfs/overlay/` go to the same path in the guest.
fn add_overlay(base: &Path, dir: &Path, out: &mut Vec<Entry>) -> Result<()> {
    let mut items: Vec<_> =
        std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.flatten().collect();
    items.sort_by_key(|e| e.file_name());
    for item in items {
        let path = item.path();
        let rel = path.strip_prefix(base).expect("under base").to_string_lossy().into_owned();
        use std::os::unix::fs::PermissionsExt;
        let meta = item.metadata()?;
        if meta.is_dir() {
            out.push(Entry::Dir { path: rel, mode: 0o755 });
            add_overlay(base, &path, out)?;
        } else {
            let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            out.push(Entry::File { path: rel, mode: meta.permissions().mode() & 0o777, data });
        }
    }
    Ok(())
}

/// Writes the initramfs for `guest` to `out`.
pub fn write_initramfs(rootfs_dir: &Path, busybox: &Path, guest: &Guest, out: &Path) -> Result<()> {
    let bb = std::fs::read(busybox).with_context(|| format!("reading {}", busybox.display()))?;
    let entries = entries(rootfs_dir, &bb, guest)?;
    let mut buf = Vec::new();
    cpio::write_archive(&mut buf, &entries).context("writing the cpio archive")?;
    std::fs::write(out, buf).with_context(|| format!("writing {}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::Module;

    fn module(dir: &Path) -> Module {
        let ko = dir.join("mmc_byte.ko");
        std::fs::write(&ko, b"KO").unwrap();
        Module {
            ko,
            name: "mmc_byte".into(),
            vermagic: "6.12.117 SMP".into(),
            depends: vec![],
            modpost_warnings: vec![],
            sources: None,
        }
    }

    #[test]
    fn two_units_modules_of_the_same_name_get_a_directory_each() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.ko"), dir.path().join("b.ko"));
        std::fs::write(&a, b"A").unwrap();
        std::fs::write(&b, b"B").unwrap();
        let files = [("lesson1/hello.ko".to_string(), a), ("lesson2/hello.ko".to_string(), b)];
        let plan = crate::plan::Plan {
            steps: Vec::new(),
            shell: false,
            shell_on_failure: false,
            board: None,
            stock: Vec::new(),
            coverage: false,
        };
        let guest = Guest { modules: &files, programs: &[], plan: &plan, nonce: "0123456789abcdef", loader: None };
        let e = entries(&crate::repo_root().join("rootfs"), b"BB", &guest).unwrap();
        let at = |p: &str| e.iter().position(|x| x.path() == p).unwrap_or_else(|| panic!("{p} missing"));
        assert!(matches!(&e[at("harness/lesson1/hello.ko")], Entry::File { data, .. } if data == b"A"));
        assert!(matches!(&e[at("harness/lesson2/hello.ko")], Entry::File { data, .. } if data == b"B"));
        assert!(matches!(&e[at("harness/lesson1")], Entry::Dir { .. }));
        assert!(at("harness/lesson2") < at("harness/lesson2/hello.ko"));
    }

    #[test]
    fn archive_has_console_init_busybox_module_program_and_scenario() {
        let dir = tempfile::tempdir().unwrap();
        let modules = [module(dir.path())];
        let app = dir.path().join("app");
        std::fs::write(&app, b"APP").unwrap();
        let programs = [(Program { name: "app".into(), path: app }, "/usr/bin".to_string())];
        let exp = crate::judge::expect::Expectations::defaults();
        let plan = crate::plan::plan(&crate::prepare::Prepared::plan_modules(&modules), &exp).unwrap();
        let files: Vec<(String, PathBuf)> = modules.iter().map(|m| (format!("{}.ko", m.name), m.ko.clone())).collect();
        let guest =
            Guest { modules: &files, programs: &programs, plan: &plan, nonce: "0123456789abcdef", loader: None };
        let e = entries(&crate::repo_root().join("rootfs"), b"BB", &guest).unwrap();
        let find = |p: &str| e.iter().find(|x| x.path() == p).unwrap_or_else(|| panic!("{p} missing"));
        assert_eq!(
            find("dev/console"),
            &Entry::CharDev { path: "dev/console".into(), mode: 0o600, major: 5, minor: 1 }
        );
        assert!(matches!(find("init"), Entry::File { mode: 0o755, .. }));
        assert!(matches!(find("harness/mmc_byte.ko"), Entry::File { data, .. } if data == b"KO"));
        assert!(matches!(find("usr/bin/app"), Entry::File { mode: 0o755, data, .. } if data == b"APP"));
        match find("harness/env") {
            Entry::File { data, .. } => assert_eq!(String::from_utf8_lossy(data), "HARNESS_NONCE=0123456789abcdef\n"),
            other => panic!("{other:?}"),
        }
        match find("harness/scenario.sh") {
            Entry::File { data, .. } => {
                assert!(String::from_utf8_lossy(data).contains("harness_insmod /harness/mmc_byte.ko mmc_byte"))
            }
            other => panic!("{other:?}"),
        }
        // Parents precede children, as the kernel's unpacker requires.
        for (i, entry) in e.iter().enumerate() {
            if let Some((parent, _)) = entry.path().rsplit_once('/') {
                let pos = e
                    .iter()
                    .position(|x| x.path() == parent)
                    .unwrap_or_else(|| panic!("no parent for {}", entry.path()));
                assert!(pos < i, "{} before its parent", entry.path());
            }
        }
    }
}
