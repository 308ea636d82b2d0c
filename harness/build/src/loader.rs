//! The QEMU guest's module loader (`rootfs/insmod.c`): one init_module(2)
//! per load, as the board's busybox makes on Linux 3.5. busybox's own insmod
//! tries finit_module(2) first and falls back to init_module(2) on any
//! failure, so on 6.x a module whose init fails had its init run twice.
//! Built once with the kernel's cross compiler (static) into the cache.

use crate::process;
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The loader's source, in the guest's own folder.
pub fn source() -> PathBuf {
    crate::repo_root().join("rootfs").join("insmod.c")
}

/// gcc's arguments for the loader: static and freestanding (no C library:
/// the cross compiler alone builds it), small. Pure, for testing.
pub fn argv(source: &Path, out: &Path) -> Vec<OsString> {
    ["-static", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-Os", "-s", "-Wall", "-Werror", "-o"]
        .iter()
        .map(OsString::from)
        .chain([out.into(), source.into()])
        .collect()
}

/// The static ARM loader for a kernel built with `cross_compile`: built on
/// first use into the cache, keyed by its source and the compiler.
pub fn get(cross_compile: &str) -> Result<PathBuf> {
    helper("insmod", cross_compile)
}

/// The resumed guest's reader of its inbox (`rootfs/inbox.c`), built as
/// the loader is.
pub fn inbox(cross_compile: &str) -> Result<PathBuf> {
    helper("inbox", cross_compile)
}

/// `rootfs/NAME.c` as a static ARM program, built on first use into the
/// cache, keyed by its source and the compiler.
fn helper(name: &str, cross_compile: &str) -> Result<PathBuf> {
    let src = crate::repo_root().join("rootfs").join(format!("{name}.c"));
    let text = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
    let gcc = format!("{cross_compile}gcc");
    let key = crate::cache::digest([text.as_slice(), gcc.as_bytes(), env!("CARGO_PKG_VERSION").as_bytes()]);
    let entry = crate::cache::root().join(format!("{name}-{key}"));
    let logs = crate::cache::logs_dir(&entry);
    let (dir, _) = crate::cache::get_or_build(&entry, &format!("building the guest's {name}"), |tmp| {
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let args = argv(&src, &tmp.join(name));
        process::Logged::new(&gcc, &args, &logs.join("gcc.log"), Duration::from_secs(120)).run(|_| {})
    })?;
    Ok(dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loader_is_static_and_its_source_makes_one_call() {
        let a: Vec<String> = argv(Path::new("/r/insmod.c"), Path::new("/o/insmod"))
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(a[0], "-static");
        let text = std::fs::read_to_string(source()).unwrap();
        assert!(
            text.contains("#define NR_init_module 128") && !text.contains("NR_finit_module"),
            "one init_module, never finit_module"
        );
    }
}
