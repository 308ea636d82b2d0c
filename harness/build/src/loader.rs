//! The QEMU guest's module loader (`rootfs/programs/insmod.c`): one init_module(2)
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
    crate::repo_root().join("rootfs/programs/insmod.c")
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

/// The resumed guest's reader of its inbox (`rootfs/programs/inbox.c`), built as
/// the loader is.
pub fn inbox(cross_compile: &str) -> Result<PathBuf> {
    helper("inbox", cross_compile)
}

/// The guest's census (`rootfs/programs/census.c`): steps.sh's lists and trees,
/// compiled; static, with the cross compiler's C library.
pub fn census(cross_compile: &str) -> Result<PathBuf> {
    build("census", cross_compile, &["-static", "-Os", "-s", "-Wall", "-Werror", "-o"])
}

/// `rootfs/programs/NAME.c` as a static, freestanding ARM program, built on first
/// use into the cache, keyed by its source and the compiler.
fn helper(name: &str, cross_compile: &str) -> Result<PathBuf> {
    build(name, cross_compile, &[])
}

/// `rootfs/programs/NAME.c` built with gcc's `flags` (ending in `-o`; none: the
/// loader's, [`argv`]) into the cache, keyed by its source, the compiler
/// and the flags.
fn build(name: &str, cross_compile: &str, flags: &[&str]) -> Result<PathBuf> {
    let src = crate::repo_root().join("rootfs/programs").join(format!("{name}.c"));
    let text = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
    let gcc = format!("{cross_compile}gcc");
    let joined = flags.join(" ");
    // The freestanding programs' shared header is part of their source.
    let header = crate::repo_root().join("rootfs/programs/freestanding.h");
    let shared = std::fs::read(&header).with_context(|| format!("reading {}", header.display()))?;
    let key = crate::cache::digest([
        text.as_slice(),
        shared.as_slice(),
        gcc.as_bytes(),
        env!("CARGO_PKG_VERSION").as_bytes(),
        joined.as_bytes(),
    ]);
    let entry = crate::cache::root().join(format!("{name}-{key}"));
    let logs = crate::cache::logs_dir(&entry);
    let (dir, _) = crate::cache::get_or_build(&entry, &format!("building the guest's {name}"), |tmp| {
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let args = if flags.is_empty() {
            argv(&src, &tmp.join(name))
        } else {
            flags.iter().map(OsString::from).chain([tmp.join(name).into(), src.clone().into()]).collect()
        };
        process::Logged::new(&gcc, &args, &logs.join("gcc.log"), Duration::from_secs(120)).run(|_| {})
    })?;
    Ok(dir.join(name))
}

/// census.c built for the host in `dir`, for the host-side tests that run
/// it (here, and plan.rs's, which run steps.sh's census steps with it).
#[cfg(test)]
pub(crate) fn host_census(dir: &Path) -> PathBuf {
    let exe = dir.join("census");
    let src = crate::repo_root().join("rootfs/programs/census.c");
    let cc = std::process::Command::new("cc")
        .args(["-Wall", "-Werror", "-O2", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("the host's cc");
    assert!(cc.status.success(), "{}", String::from_utf8_lossy(&cc.stderr));
    exe
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

    /// A stand-in /proc, /sys and /dev with what the census must get right:
    /// the blanks of /proc's lists, an interrupt's counts, a requested pin's
    /// padded name, dot files, a pid, `/dev/fd`, and names whose sort order
    /// differs by whole path (`a-b/c` before `a/z`).
    fn stand_in(root: &Path) {
        let files = [
            ("proc/devices", "Character devices:\n  1 mem\n  4 /dev/vc/0\n 10 misc\n\nBlock devices:\n259 blkext\n"),
            ("proc/misc", " 130 watchdog\n 63 vga_arbiter\n"),
            (
                "proc/interrupts",
                "           CPU0       CPU1       \n 29:       1001        998     GIC-0  29 Level     twd\n\
                 416:          1          0  tiny4412-board  26 Edge      K1, hello\n\
                 IPI0:          0          1  CPU wakeup interrupts\nErr:          0\n",
            ),
            ("sys/kernel/debug/debug_objects/stats", "max_chain     :10\nwarnings      :3\nfixups        :0\n"),
            (
                "sys/kernel/debug/gpio",
                "gpiochip0: GPIOs 0-7, parent: platform/11400000.pinctrl, gpa0:\n \
                 gpio-220 (                    |led1  ) out hi \n gpio-221 (K1 | buttons) in  lo IRQ\n\n\
                 gpiochip1: GPIOs 8-13, gpa1:\n",
            ),
            ("proc/cpuinfo", ""),
            ("proc/driver/rtc", ""),
            ("proc/1/status", ""),
            ("dev/null", ""),
            ("dev/.hidden", ""),
            ("dev/input/event0", ""),
            ("dev/fd/0", ""),
            ("dev/pts/0", ""),
        ];
        for (path, text) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        for d in [
            "proc/self",
            "proc/thread-self",
            "sys/class/input/input0",
            "sys/class/input/event0",
            "sys/class/a/z",
            "sys/class/a-b/c",
            "sys/class/tty/tty0",
            "sys/kernel/debug/tracing",
            "sys/bus/platform/devices/11400000.pinctrl",
            "sys/bus/platform/drivers/samsung-pinctrl",
            "sys/bus/i2c/drivers/at24",
            "sys/bus/i2c-mux/drivers/pca954x",
            "sys/bus/spi/devices",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
    }

    /// census.c prints what steps.sh's census functions print, line for
    /// line: both run on the same stand-in tree (census.c built for the
    /// host; the functions under the host's sh).
    #[test]
    fn the_compiled_census_prints_what_the_shell_census_prints() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        stand_in(&root);
        let exe = host_census(dir.path());
        let c = std::process::Command::new(&exe).arg(&root).output().unwrap();
        let steps = crate::repo_root().join("rootfs/steps.sh");
        let script = format!(
            ". {}; set -f; harness_census_lists; set +f; harness_census_trees",
            crate::plan::quote(&steps.to_string_lossy())
        );
        let sh = std::process::Command::new("sh").args(["-c", &script]).env("HARNESS_ROOT", &root).output().unwrap();
        let (c, sh) = (String::from_utf8_lossy(&c.stdout), String::from_utf8_lossy(&sh.stdout));
        assert!(sh.lines().count() > 30, "{sh}");
        for want in [
            "chrdev 4 /dev/vc/0",
            "irq 416 tiny4412-board 26 Edge K1, hello",
            "odebug 3",
            "gpio gpio-220 (|led1)",
            "gpio gpio-221 (K1 | buttons)",
            "dev fd",
            "driver i2c-mux/pca954x",
        ] {
            assert!(sh.lines().any(|l| l == want), "{want:?} not in the shell's census:\n{sh}");
        }
        assert_eq!(c, sh, "census.c and steps.sh differ");
    }
}
