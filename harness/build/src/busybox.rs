//! The guest's busybox, host-side work: a static ARM busybox from
//! Debian's `busybox-static:armhf`, downloaded with `apt-get download` (the
//! armhf architecture added to apt where the harness may) and extracted,
//! not installed, into the cache once; or `HARNESS_BUSYBOX`. `guest/rootfs.rs`
//! puts it into the initramfs.

use crate::packages::{self, Privilege};
use crate::process;
use anyhow::{bail, Context, Result};
use object::Object;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The static ARM busybox: `HARNESS_BUSYBOX` if set, otherwise Debian's
/// `busybox-static:armhf` package, downloaded and extracted (not installed)
/// into the cache once.
pub fn get() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("HARNESS_BUSYBOX").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        check_arm_static(&p).with_context(|| format!("HARNESS_BUSYBOX={}", p.display()))?;
        return Ok(p);
    }
    // The entry's name carries the harness version and the recipe, so that
    // a changed way of fetching it is never served from an old entry.
    let recipe = concat!("busybox-recipe-1 harness-", env!("CARGO_PKG_VERSION"));
    let entry = crate::cache::root().join(format!("busybox-static-armhf-{}", crate::cache::digest([recipe])));
    // Logs go beside the cache, not into the temporary: a failed fetch
    // removes the temporary, and a warning printed on the way names its log.
    let logs = crate::cache::logs_dir(&entry);
    let (dir, _) = crate::cache::get_or_build(&entry, "fetching busybox", |tmp| fetch_busybox(tmp, &logs))?;
    Ok(dir.join("busybox"))
}

fn fetch_busybox(tmp: &Path, logs: &Path) -> Result<()> {
    eprintln!("harness: fetching busybox-static:armhf with apt-get download");
    std::fs::create_dir_all(logs).with_context(|| format!("creating {}", logs.display()))?;
    let log = logs.join("apt-download.log");
    let download = || {
        let args: [OsString; 2] = ["download".into(), "busybox-static:armhf".into()];
        process::Logged::new("apt-get", &args, &log, Duration::from_secs(10 * 60)).dir(tmp).run(|_| {})
    };
    if let Err(first) = download() {
        // apt only knows armhf packages once the architecture is added.
        let foreign = process::output("dpkg", &["--print-foreign-architectures"]).unwrap_or_default();
        let fix = "sudo dpkg --add-architecture armhf && sudo apt-get update";
        if foreign.lines().any(|a| a == "armhf") {
            return Err(first.context("downloading busybox-static:armhf"));
        }
        let refused = std::env::var("HARNESS_NO_INSTALL").map(|v| !v.is_empty() && v != "0").unwrap_or(false);
        let privilege = packages::privilege();
        if refused || privilege == Privilege::None {
            bail!(
                "busybox-static:armhf cannot be downloaded until apt knows the armhf architecture; run:\n  {fix}\n\
                 (or point HARNESS_BUSYBOX at a static ARM busybox)"
            );
        }
        eprintln!("harness: adding the armhf architecture to apt (dpkg --add-architecture armhf)");
        packages::as_root(
            privilege,
            &["dpkg", "--add-architecture", "armhf"],
            &logs.join("dpkg-arch.log"),
            Duration::from_secs(60),
        )?;
        packages::apt_update(privilege, logs);
        download().context("downloading busybox-static:armhf after adding armhf")?;
    }
    let deb = std::fs::read_dir(tmp)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download produced no .deb")?;
    let root = tmp.join("deb");
    let args: [OsString; 3] = ["-x".into(), deb.clone().into(), root.clone().into()];
    process::Logged::new("dpkg-deb", &args, &logs.join("dpkg-deb.log"), Duration::from_secs(120)).run(|_| {})?;
    let bin = root.join("bin/busybox");
    check_arm_static(&bin)?;
    std::fs::rename(&bin, tmp.join("busybox")).context("placing busybox")?;
    std::fs::remove_dir_all(&root).ok();
    std::fs::remove_file(&deb).ok();
    Ok(())
}

/// A dynamically linked or x86 busybox would make the guest die with "Kernel
/// panic - not syncing: No working init found": refuse it here instead.
fn check_arm_static(path: &Path) -> Result<()> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file = object::File::parse(&*data).with_context(|| format!("{}: not an ELF binary", path.display()))?;
    if file.architecture() != object::Architecture::Arm {
        bail!("{}: a {:?} binary, not 32-bit ARM", path.display(), file.architecture());
    }
    if file.section_by_name(".interp").is_some() {
        bail!("{}: dynamically linked; the initramfs has no libc, so busybox must be static", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_binary_is_refused_as_busybox() {
        let err = check_arm_static(Path::new("/bin/sh")).unwrap_err().to_string();
        assert!(err.contains("not 32-bit ARM"), "{err}");
    }
}
