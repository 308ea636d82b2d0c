//! An emulated FriendlyARM board, to test `replay` without one: a profile's
//! cached kernel under QEMU with an initramfs whose init behaves like the
//! vendor's root filesystem (`rootfs/friendlyarm-init`), and the guest's
//! serial port on a pseudo-terminal that `replay --serial` opens like a USB
//! serial adapter.
//!
//! Only machines whose UART takes input under QEMU as the replay sends it
//! will do: vexpress-a9's PL011 does; smdkc210's Exynos UART loses a burst
//! of more than 128 bytes (guest/terminal.rs measured it; `check --shell`
//! paces its input, the replay does not).

use crate::guest::cpio::{self, CpioMember};
use crate::guest::qemu::{self, BootImages, Qemu};
use crate::profile::Profile;
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running emulated board. Dropping it stops QEMU (through [`Qemu`]).
/// How much of QEMU's stdout the emulated board keeps (the newest).
const STDOUT_WINDOW: usize = 64 << 10;

pub struct EmulatedBoard {
    qemu: Qemu,
    /// The guest's serial console, e.g. `/dev/pts/3`.
    pub pty: PathBuf,
    /// Holds the initramfs and QEMU's stderr while the board runs.
    pub dir: tempfile::TempDir,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl EmulatedBoard {
    /// Boots `profile`'s kernel (from the cache; it is built first if it is
    /// not there) and waits at most `timeout` for QEMU to name the pty.
    pub fn start(profile: &str, timeout: Duration) -> Result<EmulatedBoard> {
        let root = crate::repo_root();
        let args = crate::options::KernelArgs { profile: profile.to_string(), ..Default::default() };
        let (profile, kernel) = crate::prepare::kernel(&args, &crate::prepare::Stages::new())?;
        // With the run directories: a board stopped by Ctrl-C (the signal
        // handler exits without destructors) leaves its files where an
        // interrupted check's are, not in /tmp.
        let dir = crate::prepare::new_run_dir("emulated-board-")?;
        let busybox = crate::busybox::get()?;
        let initramfs = dir.path().join("initramfs.cpio");
        // Its buttons and LEDs: the virtual board, built for its kernel.
        let (model, _) = crate::prepare::build_virtual_board(
            &kernel,
            &dir.path().join("board"),
            2,
            crate::sandbox::Sandbox::from_flag(false),
        )?;
        write_initramfs(&root.join("rootfs"), &busybox, Some(&model.ko), &initramfs)?;
        let images = BootImages {
            kernel: kernel.image(&profile),
            dtb: profile.qemu.dtb.as_ref().map(|d| kernel.dtb(d)),
            initramfs,
        };
        // A board restarts when reset (a watchdog): no -no-reboot here.
        let argv: Vec<OsString> = qemu::serial_on_pty(&qemu::argv(&profile, &images, &board_cmdline(&profile), None))
            .into_iter()
            .filter(|a| a != "-no-reboot")
            .collect();
        let stderr_log = dir.path().join("qemu.stderr");
        let (qemu, mut pipe) = Qemu::spawn(&profile.qemu.binary, &argv, &stderr_log)?;

        // QEMU 7 prints the pty's name on stdout, later versions on stderr:
        // watch both.
        let stdout = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = Arc::clone(&stdout);
        let reader = std::thread::Builder::new()
            .name("emulated-board-stdout".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    // Read for the board's whole life (QEMU must never
                    // block on a full pipe), kept in a window: the pty's
                    // name is looked for as it arrives.
                    if let Ok(mut s) = sink.lock() {
                        s.extend_from_slice(&buf[..n]);
                        let over = s.len().saturating_sub(STDOUT_WINDOW);
                        s.drain(..over);
                    }
                }
            })
            .context("starting the qemu output reader")?;
        let mut board = EmulatedBoard { qemu, pty: PathBuf::new(), dir, reader: Some(reader) };
        let deadline = Instant::now() + timeout;
        loop {
            let out = stdout.lock().map(|s| String::from_utf8_lossy(&s).into_owned()).unwrap_or_default();
            let err = std::fs::read_to_string(&stderr_log).unwrap_or_default();
            if let Some(p) = pty_name(&out).or_else(|| pty_name(&err)) {
                board.pty = p;
                return Ok(board);
            }
            if board.qemu.wait_until(Instant::now())?.is_some() {
                bail!("{} exited before naming its pty:\n{}{}", profile.qemu.binary, out.trim(), err.trim());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} named no pty within {} s; it printed:\n{}{}",
                    profile.qemu.binary,
                    timeout.as_secs(),
                    out.trim(),
                    err.trim()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.qemu.pid()
    }

    /// Whether the guest has stopped (a poweroff; a panicked board hangs,
    /// as a real one does).
    pub fn exited(&self) -> Result<bool> {
        Ok(self.qemu.wait_until(Instant::now())?.is_some())
    }

    /// Stops QEMU and waits for it.
    pub fn stop(mut self) -> Result<()> {
        self.qemu.kill()?;
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
        Ok(())
    }
}

/// The path in QEMU's `char device redirected to /dev/pts/N (label serial0)`.
pub fn pty_name(output: &str) -> Option<PathBuf> {
    output.lines().find_map(|l| {
        let rest = l.split("char device redirected to ").nth(1)?;
        let (path, label) = rest.split_once(' ')?;
        label.contains("serial0").then(|| PathBuf::from(path))
    })
}

/// The harness guest's command line, less what only the harness sets: a
/// board boots without `printk.devkmsg=on`, so the replay must cope with the
/// kernel's default rate limit on `/dev/kmsg`, as on a real 6.x board;
/// without `panic=-1`: a board stops at a panic (the replay must see it
/// stop), and restarts only when reset (a watchdog), which QEMU does here,
/// run without -no-reboot; and without `loglevel=5`: the vendor's kernel
/// prints its whole boot, whose first line tells the replay that the board
/// started over.
pub fn board_cmdline(profile: &Profile) -> Vec<OsString> {
    let harness_only = ["printk.devkmsg=on", "panic=-1", "loglevel=5"];
    qemu::kernel_cmdline(profile).into_iter().filter(|a| !harness_only.iter().any(|h| a == h)).collect()
}

/// The board's root filesystem: busybox, `friendlyarm-init` as /init, and
/// the virtual board's module (`/emulated/`), its hardware.
pub fn entries(rootfs_dir: &Path, busybox: &[u8], model: Option<Vec<u8>>) -> Result<Vec<CpioMember>> {
    let init_path = rootfs_dir.join("friendlyarm-init");
    let init = std::fs::read(&init_path).with_context(|| format!("reading {}", init_path.display()))?;
    let mut e = crate::guest::rootfs::skeleton(busybox);
    e.push(CpioMember::File { path: "init".into(), mode: 0o755, data: init });
    if let Some(data) = model {
        e.push(CpioMember::Dir { path: "emulated".into(), mode: 0o755 });
        e.push(CpioMember::File { path: "emulated/tiny4412_board.ko".into(), mode: 0o644, data });
    }
    Ok(e)
}

fn write_initramfs(rootfs_dir: &Path, busybox: &Path, model: Option<&Path>, out: &Path) -> Result<()> {
    let bb = std::fs::read(busybox).with_context(|| format!("reading {}", busybox.display()))?;
    let model = model.map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display()))).transpose()?;
    let mut buf = Vec::new();
    cpio::write_archive(&mut buf, &entries(rootfs_dir, &bb, model)?).context("writing the cpio archive")?;
    std::fs::write(out, buf).with_context(|| format!("writing {}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pty_names_are_found_in_qemu_output() {
        assert_eq!(
            pty_name("qemu-system-arm: warning: x\nchar device redirected to /dev/pts/7 (label serial0)\n"),
            Some(PathBuf::from("/dev/pts/7"))
        );
        assert_eq!(pty_name("char device redirected to /dev/pts/2 (label compat_monitor0)"), None);
        assert_eq!(pty_name(""), None);
    }

    #[test]
    fn the_board_archive_has_its_own_init_and_no_steps() {
        let e = entries(&crate::repo_root().join("rootfs"), b"BB", Some(b"KO".to_vec())).unwrap();
        let init = e.iter().find(|x| x.path() == "init").expect("init");
        let CpioMember::File { mode, data, .. } = init else { panic!("init is not a file: {init:?}") };
        assert!(*mode == 0o755 && String::from_utf8_lossy(data).contains("askfirst"));
        assert!(
            !e.iter().any(|x| x.path().starts_with("harness")),
            "a board has no harness files until the replay sends them"
        );
        assert!(e.iter().any(|x| x.path() == "emulated/tiny4412_board.ko"), "its hardware, the virtual board");
    }

    #[test]
    fn the_board_boots_without_the_harness_kmsg_setting() {
        let p = Profile::load("vexpress-a9", &crate::repo_root().join("configs")).unwrap();
        let c: Vec<String> = board_cmdline(&p).iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert!(c.iter().any(|a| a.starts_with("console=ttyAMA0")), "{c:?}");
        assert!(!c.iter().any(|a| a.contains("devkmsg")), "{c:?}");
        assert!(!c.iter().any(|a| a.starts_with("panic=")), "a board stops at a panic: {c:?}");
    }

    /// The person at the emulated board (friendlyarm-init) does what the
    /// prompts steps.sh writes ask, as the judge's control lines say it
    /// (judge/board_parts.rs), and only for the replay's own nonce (marker.rs):
    /// steps.sh's wording, friendlyarm-init's patterns and the Rust
    /// definitions are tied here.
    #[test]
    fn the_person_at_the_emulated_board_does_what_this_runs_prompts_ask() {
        use crate::judge::board_parts::{step, BoardKeys, BoardStep};
        use crate::judge::marker::{marker_line, parse_marker, Marker};
        let adc = std::collections::BTreeMap::from([("AIN0".to_string(), 2048)]);
        let keys = BoardKeys {
            press: Some("K1"),
            click: Some("K2"),
            release: Some("K3"),
            adc: Some(&adc),
            ..Default::default()
        };
        let Some(BoardStep::Act(acts)) = step(&keys).unwrap() else { panic!("not an action") };
        let rootfs = crate::repo_root().join("rootfs");
        let dir = tempfile::tempdir().unwrap();
        let kmsg = dir.path().join("kmsg");
        let nonce = "0123456789abcdef";
        // steps.sh's prompts (the wait for the pin left out).
        let script = ". \"$STEPS\"; harness_person_wait() { :; }; harness_board \"$@\"";
        let args = ["-c", script, "sh"].into_iter().map(String::from).chain(acts.iter().cloned());
        duct::cmd("sh", args)
            .env("STEPS", rootfs.join("steps.sh"))
            .env("HARNESS_NONCE", nonce)
            .env("HARNESS_KMSG", &kmsg)
            .env("HARNESS_PERSON", "1")
            .stdout_null()
            .run()
            .unwrap();
        let prompts = std::fs::read_to_string(&kmsg).unwrap();
        let prompts: Vec<&str> = prompts.lines().collect();
        assert_eq!(prompts.len(), acts.len(), "{prompts:?}");
        for p in &prompts {
            assert!(matches!(parse_marker(p, nonce), Some(Marker::Prompt { .. })), "{p}");
        }
        // The kernel log as /dev/kmsg gives it: the replay's start, another
        // run's prompt and a module's printk holding this run's (ordinary
        // lines), then the prompts.
        let other = |text: &str| Marker::Prompt { text: text.into() };
        let mut log = vec![
            marker_line(nonce, &Marker::Start { label: "m".into() }),
            marker_line("fedcba9876543210", &other("press K4 and hold it within 20 s")),
            format!("m: {}", marker_line(nonce, &other("release K4 within 20 s"))),
        ];
        log.extend(prompts.iter().map(|p| p.to_string()));
        let records: String = log.iter().enumerate().map(|(i, m)| format!("6,{i},0,-;{m}\n")).collect();
        let done = duct::cmd!("sh", rootfs.join("friendlyarm-init"), "--person", "/dev/stdout", "0")
            .stdin_bytes(records)
            .stdout_capture()
            .run()
            .unwrap();
        let lines: Vec<String> = String::from_utf8_lossy(&done.stdout).lines().map(String::from).collect();
        assert_eq!(lines, acts);
        // Before a start marker, no prompt is taken.
        let early: String = prompts.iter().map(|p| format!("6,0,0,-;{p}\n")).collect();
        let done = duct::cmd!("sh", rootfs.join("friendlyarm-init"), "--person", "/dev/stdout", "0")
            .stdin_bytes(early)
            .stdout_capture()
            .run()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&done.stdout), "");
    }
}
