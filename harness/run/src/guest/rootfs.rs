//! The guest's root filesystem: the static ARM busybox (`busybox.rs`), the `/init`
//! and step script from `rootfs/`, and the module, written as a newc cpio by
//! [`crate::guest::cpio`]. No root and no loop mounts are needed at any point.

use crate::guest::cpio::{self, CpioMember};
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
pub fn skeleton(busybox: &[u8]) -> Vec<CpioMember> {
    let dir = |p: &str| CpioMember::Dir { path: p.into(), mode: 0o755 };
    vec![
        dir("bin"),
        dir("sbin"),
        dir("usr"),
        dir("usr/bin"),
        dir("usr/sbin"),
        dir("dev"),
        // The kernel opens /dev/console before /init runs, long before
        // devtmpfs is mounted: it must be in the archive.
        CpioMember::CharDev { path: "dev/console".into(), mode: 0o600, major: 5, minor: 1 },
        CpioMember::CharDev { path: "dev/null".into(), mode: 0o666, major: 1, minor: 3 },
        dir("etc"),
        dir("proc"),
        dir("sys"),
        dir("root"),
        CpioMember::Dir { path: "tmp".into(), mode: 0o1777 },
        CpioMember::File { path: BUSYBOX.into(), mode: 0o755, data: busybox.to_vec() },
        CpioMember::Symlink { path: "bin/sh".into(), target: "busybox".into() },
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
    /// The compiled census (`rootfs/programs/census.c`), as /harness/census;
    /// steps.sh's shell functions without it.
    pub census: Option<&'a Path>,
}

pub use crate::plan::GUEST_DIR;

/// Everything that goes into a booted guest's archive, in order (parents
/// first): the base every guest of the kernel has, then the run's own.
pub fn entries(rootfs_dir: &Path, busybox: &[u8], guest: &Guest) -> Result<Vec<CpioMember>> {
    let mut e = base_entries(rootfs_dir, busybox, (guest.loader, guest.census), None)?;
    let run = run_entries(guest, &e)?;
    e.extend(run);
    Ok(e)
}

/// What a resumed guest's inbox is: where, how large, and the nonce of the
/// one marker the snapshot's guest writes (`ready`).
pub struct Inbox<'a> {
    pub reader: &'a Path,
    pub spec: &'a crate::profile::ResumeSpec,
    pub nonce: &'a str,
}

/// What every guest of a kernel has, whatever it runs: busybox, `/init`,
/// the step library, the loader and the census (`helpers`), the overlay;
/// and for the snapshot's guest (`inbox`) the inbox's reader and where it
/// is (`harness/base.env`).
pub fn base_entries(
    rootfs_dir: &Path,
    busybox: &[u8],
    helpers: (Option<&Path>, Option<&Path>),
    inbox: Option<&Inbox>,
) -> Result<Vec<CpioMember>> {
    let read = |name: &str| -> Result<Vec<u8>> {
        let p = rootfs_dir.join(name);
        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
    };
    let mut e = skeleton(busybox);
    e.extend([
        CpioMember::Dir { path: "harness".into(), mode: 0o755 },
        CpioMember::File { path: "init".into(), mode: 0o755, data: read("init")? },
        CpioMember::File { path: "harness/steps.sh".into(), mode: 0o644, data: read("steps.sh")? },
    ]);
    let program = |guest: &str, host: &Path| -> Result<CpioMember> {
        let data = std::fs::read(host).with_context(|| format!("reading {}", host.display()))?;
        Ok(CpioMember::File { path: guest.into(), mode: 0o755, data })
    };
    if let Some(loader) = helpers.0 {
        e.push(program("harness/insmod", loader)?);
    }
    if let Some(census) = helpers.1 {
        e.push(program("harness/census", census)?);
    }
    if let Some(i) = inbox {
        e.push(program("harness/inbox", i.reader)?);
        let env = format!(
            "HARNESS_INBOX={:#x}\nHARNESS_INBOX_SIZE={:#x}\nHARNESS_READY_NONCE={}\n",
            i.spec.inbox, i.spec.inbox_size, i.nonce
        );
        e.push(CpioMember::File { path: "harness/base.env".into(), mode: 0o644, data: env.into_bytes() });
    }
    let overlay = rootfs_dir.join("overlay");
    if overlay.is_dir() {
        add_overlay(&overlay, &overlay, &mut e)?;
    }
    Ok(e)
}

/// What one run adds to the base (`base`: its entries, whose directories
/// are not made again): its nonce and the host's clock (`harness/env`),
/// fresh random bytes for the guest's pool (`harness/seed`), the scenario,
/// the modules and the programs. A booted guest has them in its archive; a
/// resumed one gets them in its inbox (guest/inbox.rs).
pub fn run_entries(guest: &Guest, base: &[CpioMember]) -> Result<Vec<CpioMember>> {
    let epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut env = format!("HARNESS_NONCE={}\nHARNESS_EPOCH={epoch}\n", guest.nonce);
    if guest.loader.is_some() {
        env.push_str("HARNESS_INSMOD=/harness/insmod\n");
    }
    if guest.census.is_some() {
        env.push_str("HARNESS_CENSUS=/harness/census\n");
    }
    let mut seed = [0u8; 64];
    getrandom::fill(&mut seed).context("reading the host's random source for the guest's seed")?;
    // As one line of hex: the guest writes it to /dev/urandom with its
    // shell's builtins (no cat, a fork), and the pool mixes the text in.
    let mut seed: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    seed.push('\n');
    let mut e = vec![
        CpioMember::File { path: "harness/env".into(), mode: 0o644, data: env.into_bytes() },
        CpioMember::File { path: "harness/seed".into(), mode: 0o600, data: seed.into_bytes() },
        CpioMember::File {
            path: "harness/scenario.sh".into(),
            mode: 0o644,
            data: crate::plan::script(guest.plan, GUEST_DIR).into_bytes(),
        },
    ];
    let mut dirs: Vec<String> =
        base.iter().filter(|x| matches!(x, CpioMember::Dir { .. })).map(|x| x.path().to_string()).collect();
    for (file, ko) in guest.modules {
        if let Some((unit, _)) = file.rsplit_once('/') {
            let dir = format!("harness/{unit}");
            if !dirs.contains(&dir) {
                e.push(CpioMember::Dir { path: dir.clone(), mode: 0o755 });
                dirs.push(dir);
            }
        }
        let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
        e.push(CpioMember::File { path: format!("harness/{file}"), mode: 0o644, data });
    }
    // Under their stems, in their directory (on PATH).
    for (p, dir) in guest.programs {
        let dir = dir.trim_matches('/');
        let mut path = String::new();
        for part in dir.split('/') {
            path = if path.is_empty() { part.to_string() } else { format!("{path}/{part}") };
            if !dirs.contains(&path) {
                e.push(CpioMember::Dir { path: path.clone(), mode: 0o755 });
                dirs.push(path.clone());
            }
        }
        let data = std::fs::read(&p.path).with_context(|| format!("reading {}", p.path.display()))?;
        e.push(CpioMember::File { path: format!("{dir}/{}", p.name), mode: 0o755, data });
    }
    Ok(e)
}

/// Files under `rootfs/overlay/` go to the same path in the guest.
fn add_overlay(base: &Path, dir: &Path, out: &mut Vec<CpioMember>) -> Result<()> {
    let mut items: Vec<_> =
        std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.flatten().collect();
    items.sort_by_key(|e| e.file_name());
    for item in items {
        let path = item.path();
        let rel = path.strip_prefix(base).expect("under base").to_string_lossy().into_owned();
        use std::os::unix::fs::PermissionsExt;
        let meta = item.metadata()?;
        if meta.is_dir() {
            out.push(CpioMember::Dir { path: rel, mode: 0o755 });
            add_overlay(base, &path, out)?;
        } else {
            let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            out.push(CpioMember::File { path: rel, mode: meta.permissions().mode() & 0o777, data });
        }
    }
    Ok(())
}

/// The run's files as a resumed guest gets them: a newc cpio of
/// [`run_entries`] over the base's directories.
pub fn payload(guest: &Guest) -> Result<Vec<u8>> {
    let base = [CpioMember::Dir { path: "harness".into(), mode: 0o755 }];
    let mut dirs: Vec<CpioMember> = skeleton(&[]).into_iter().filter(|e| matches!(e, CpioMember::Dir { .. })).collect();
    dirs.extend(base);
    let entries = run_entries(guest, &dirs)?;
    let mut buf = Vec::new();
    cpio::write_archive(&mut buf, &entries).context("writing the run's cpio archive")?;
    Ok(buf)
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

    /// A guest of `modules` and `plan` alone, with a fixed nonce.
    fn test_guest<'a>(modules: &'a [(String, PathBuf)], plan: &'a Plan) -> Guest<'a> {
        Guest { modules, programs: &[], plan, nonce: "0123456789abcdef", loader: None, census: None }
    }

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
        let guest = test_guest(&files, &plan);
        let e = entries(&crate::repo_root().join("rootfs"), b"BB", &guest).unwrap();
        let at = |p: &str| e.iter().position(|x| x.path() == p).unwrap_or_else(|| panic!("{p} missing"));
        assert!(matches!(&e[at("harness/lesson1/hello.ko")], CpioMember::File { data, .. } if data == b"A"));
        assert!(matches!(&e[at("harness/lesson2/hello.ko")], CpioMember::File { data, .. } if data == b"B"));
        assert!(matches!(&e[at("harness/lesson1")], CpioMember::Dir { .. }));
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
        let guest = Guest {
            modules: &files,
            programs: &programs,
            plan: &plan,
            nonce: "0123456789abcdef",
            loader: None,
            census: None,
        };
        let e = entries(&crate::repo_root().join("rootfs"), b"BB", &guest).unwrap();
        let find = |p: &str| e.iter().find(|x| x.path() == p).unwrap_or_else(|| panic!("{p} missing"));
        assert_eq!(
            find("dev/console"),
            &CpioMember::CharDev { path: "dev/console".into(), mode: 0o600, major: 5, minor: 1 }
        );
        assert!(matches!(find("init"), CpioMember::File { mode: 0o755, .. }));
        assert!(matches!(find("harness/mmc_byte.ko"), CpioMember::File { data, .. } if data == b"KO"));
        assert!(matches!(find("usr/bin/app"), CpioMember::File { mode: 0o755, data, .. } if data == b"APP"));
        match find("harness/env") {
            CpioMember::File { data, .. } => {
                let env = String::from_utf8_lossy(data);
                assert!(env.starts_with("HARNESS_NONCE=0123456789abcdef\nHARNESS_EPOCH="), "{env}");
            }
            other => panic!("{other:?}"),
        }
        match find("harness/scenario.sh") {
            CpioMember::File { data, .. } => {
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

    /// A snapshot's guest boots the base: nothing of a run is in it (its
    /// nonce, seed, scenario, modules), and the run's payload has them.
    #[test]
    fn the_base_has_nothing_of_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let reader = dir.path().join("inbox");
        std::fs::write(&reader, b"INBOX").unwrap();
        let spec = crate::profile::ResumeSpec { mem: "960M".into(), inbox: 0x7c000000, inbox_size: 0x4000000 };
        let inbox = Inbox { reader: &reader, spec: &spec, nonce: "00ff" };
        let base = base_entries(&crate::repo_root().join("rootfs"), b"BB", (None, None), Some(&inbox)).unwrap();
        let paths: Vec<&str> = base.iter().map(CpioMember::path).collect();
        assert!(paths.contains(&"harness/inbox") && paths.contains(&"harness/base.env"), "{paths:?}");
        for run in ["harness/env", "harness/seed", "harness/scenario.sh"] {
            assert!(!paths.contains(&run), "{run} in the base");
        }
        let files = [("hello.ko".to_string(), module(dir.path()).ko)];
        let exp = crate::judge::expect::Expectations::defaults();
        let plan = crate::plan::plan(&crate::prepare::Prepared::plan_modules(&[module(dir.path())]), &exp).unwrap();
        let guest = test_guest(&files, &plan);
        let run = run_entries(&guest, &base).unwrap();
        let run: Vec<&str> = run.iter().map(CpioMember::path).collect();
        assert_eq!(run, ["harness/env", "harness/seed", "harness/scenario.sh", "harness/hello.ko"]);
        let a = payload(&guest).unwrap();
        let b = payload(&guest).unwrap();
        assert_ne!(a, b, "each run's seed is its own");
    }
}
