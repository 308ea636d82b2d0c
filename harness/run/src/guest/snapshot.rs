//! A booted guest, saved: the boot is the same for every check of a kernel,
//! so it is paid once, and each check resumes the saved guest instead.
//!
//! A snapshot is QEMU's migration stream of a guest that booted the base
//! initramfs (busybox, /init, the step library, the loader, the inbox's
//! reader; no run) and waits, polling its inbox (guest/inbox.rs). It lives
//! in the cache under the kernel's entry name and a key of everything that
//! decides that guest: the harness's version, QEMU's command line, the
//! kernel, dtb and QEMU binary, the base initramfs's bytes. Any change is
//! a new key, so a stale snapshot is never found; a damaged one fails its
//! checksum, is removed, and the run boots, saying why.

use crate::guest::console::{ConsoleMsg, ConsoleReader};
use crate::guest::qemu::{self, BootImages, Qemu};
use crate::guest::{cpio, qmp, rootfs};
use crate::judge::marker::{self, Marker};
use crate::profile::Profile;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A snapshot found whole.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub dir: PathBuf,
    /// QEMU's migration stream of the waiting guest.
    pub state: PathBuf,
    /// The base initramfs it booted: the resumed QEMU is given the same
    /// command line.
    pub initramfs: PathBuf,
    /// What its guest printed on its console before it was saved (the
    /// kernel's boot): a resumed run's console log begins with it, as a
    /// booted run's does.
    pub boot_log: PathBuf,
    pub bytes: u64,
    /// Whether this check made it (the first on this machine).
    pub made_now: bool,
}

/// What decides the snapshot's guest.
pub struct Inputs<'a> {
    pub profile: &'a Profile,
    pub kernel: &'a Path,
    pub dtb: Option<&'a Path>,
    pub busybox: &'a Path,
    pub loader: &'a Path,
    pub census: &'a Path,
    pub reader: &'a Path,
    /// The kernel's cache entry: its snapshots are kept under its name, and
    /// go with it (`cache gc`).
    pub kernel_entry: &'a str,
}

/// How a check starts its guest.
#[derive(Debug)]
pub enum Start {
    Resume(Snapshot),
    /// Booted, and why it could not resume.
    Boot(String),
}

/// `meta.json` beside the stream: the key it was made for, and the
/// stream's length and CRC-32, checked before every resume.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Meta {
    key: String,
    bytes: u64,
    crc32: u32,
    /// The boot log's CRC-32.
    boot_crc32: u32,
    /// How long the boot and the save took.
    seconds: f64,
}

/// The layout of a snapshot's folder: a new one is a new key.
const FORMAT: &str = "2: state.bin base.cpio boot.log meta.json";
const STATE: &str = "state.bin";
const BASE: &str = "base.cpio";
const META: &str = "meta.json";
const BOOT_LOG: &str = "boot.log";

/// The snapshot for `inputs`: found and checked, or made now; or why the
/// run must boot instead.
pub fn get(inputs: &Inputs) -> Start {
    if inputs.profile.qemu.resume.is_none() {
        let why = inputs.profile.qemu.no_resume.as_deref().unwrap_or("it has no [qemu.resume]");
        return Start::Boot(format!("profile {} does not resume: {why}", inputs.profile.name));
    }
    let found = (|| -> Result<Snapshot> {
        let key = key(inputs)?;
        let dir = crate::cache::snapshots().join(inputs.kernel_entry).join(&key);
        if dir.is_dir() {
            return check(&dir, &key).map_err(|e| {
                remove(&dir);
                e.context(format!("the snapshot {} is damaged; removed, the next check makes it again", dir.display()))
            });
        }
        std::fs::create_dir_all(dir.parent().expect("under snapshots/"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let logs = crate::cache::logs_dir(&dir);
        let (dir, made) = crate::cache::get_or_build(&dir, "saving a booted guest", |tmp| {
            std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
            make(tmp, inputs, &key, &logs)
        })?;
        if made {
            remove_others(&dir);
        }
        Ok(Snapshot { made_now: made, ..check(&dir, &key)? })
    })();
    match found {
        Ok(s) => Start::Resume(s),
        Err(e) => Start::Boot(format!("{e:#}")),
    }
}

/// The key of everything that decides the snapshot's guest.
fn key(inputs: &Inputs) -> Result<String> {
    let p = inputs.profile;
    // The command line as a snapshot's boot has it, the initramfs by name
    // (its bytes are in the key below).
    let images = BootImages {
        kernel: inputs.kernel.to_path_buf(),
        dtb: inputs.dtb.map(Path::to_path_buf),
        initramfs: BASE.into(),
    };
    let argv = qemu::argv(p, &images, &qemu::kernel_cmdline(p), None);
    let argv: Vec<String> = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let binary = find_on_path(&p.qemu.binary).unwrap_or_else(|| PathBuf::from(&p.qemu.binary));
    let mut stamps = String::new();
    for f in [Some(inputs.kernel), inputs.dtb, Some(binary.as_path())].into_iter().flatten() {
        stamps.push_str(&crate::cache::stamp(f));
        stamps.push('\n');
    }
    let base = base_archive(inputs, "0")?;
    Ok(crate::cache::digest([
        FORMAT.as_bytes(),
        env!("CARGO_PKG_VERSION").as_bytes(),
        argv.join("\n").as_bytes(),
        stamps.as_bytes(),
        base.as_slice(),
    ]))
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}

/// The base initramfs, whose `ready` marker carries `nonce`.
fn base_archive(inputs: &Inputs, nonce: &str) -> Result<Vec<u8>> {
    let spec = inputs.profile.qemu.resume.as_ref().context("the profile has no [qemu.resume]")?;
    let busybox = std::fs::read(inputs.busybox).with_context(|| format!("reading {}", inputs.busybox.display()))?;
    let inbox = rootfs::Inbox { reader: inputs.reader, spec, nonce };
    let entries = rootfs::base_entries(
        &crate::repo_root().join("rootfs"),
        &busybox,
        (Some(inputs.loader), Some(inputs.census)),
        Some(&inbox),
    )?;
    let mut bytes = Vec::new();
    cpio::write_archive(&mut bytes, &entries).context("writing the base initramfs")?;
    Ok(bytes)
}

/// The snapshot in `dir` if its meta has `key` and its stream its length
/// and checksum.
fn check(dir: &Path, key: &str) -> Result<Snapshot> {
    let meta_path = dir.join(META);
    let text = std::fs::read_to_string(&meta_path).with_context(|| format!("reading {}", meta_path.display()))?;
    let meta: Meta =
        serde_json::from_str(&text).with_context(|| format!("{} is not a snapshot's", meta_path.display()))?;
    if meta.key != key {
        bail!("{} was made for key {}, not {key}", meta_path.display(), meta.key);
    }
    let state = dir.join(STATE);
    let (bytes, crc32) = checksum(&state)?;
    if (bytes, crc32) != (meta.bytes, meta.crc32) {
        bail!(
            "{} has {bytes} bytes and CRC-32 {crc32:08x}, not the {} and {:08x} it was saved with",
            state.display(),
            meta.bytes,
            meta.crc32
        );
    }
    let boot_log = dir.join(BOOT_LOG);
    let (_, boot_crc32) = checksum(&boot_log)?;
    if boot_crc32 != meta.boot_crc32 {
        bail!("{} has CRC-32 {boot_crc32:08x}, not the {:08x} it was saved with", boot_log.display(), meta.boot_crc32);
    }
    Ok(Snapshot { dir: dir.to_path_buf(), state, initramfs: dir.join(BASE), boot_log, bytes, made_now: false })
}

/// A file's length and CRC-32.
fn checksum(path: &Path) -> Result<(u64, u32)> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            return Ok((bytes, h.finalize()));
        }
        h.update(&buf[..n]);
        bytes += n as u64;
    }
}

/// Boots the base initramfs in `tmp`, waits for its guest's `ready`, and
/// saves it there; QEMU's console and errors go to `logs`.
fn make(tmp: &Path, inputs: &Inputs, key: &str, logs: &Path) -> Result<()> {
    let started = Instant::now();
    let p = inputs.profile;
    let nonce = crate::prepare::new_nonce();
    let initramfs = tmp.join(BASE);
    std::fs::write(&initramfs, base_archive(inputs, &nonce)?)
        .with_context(|| format!("writing {}", initramfs.display()))?;
    let sockets = tempfile::Builder::new().prefix("harness-snap-").tempdir().context("creating a socket directory")?;
    let (qmp_sock, out_sock) = (sockets.path().join("qmp.sock"), sockets.path().join("state.sock"));
    let images = BootImages { kernel: inputs.kernel.to_path_buf(), dtb: inputs.dtb.map(Path::to_path_buf), initramfs };
    let argv = qemu::argv(p, &images, &qemu::kernel_cmdline(p), Some(&qmp_sock));
    let (guest, pipe) = Qemu::spawn(&p.qemu.binary, &argv, &logs.join("qemu.stderr"))?;
    let console = ConsoleReader::start(pipe, &logs.join("console.log"))?;
    let boot_limit = Duration::from_secs(p.qemu.timeout.unwrap_or(300));
    wait_ready(&console, &nonce, Instant::now() + boot_limit)
        .with_context(|| format!("its console is {}", logs.join("console.log").display()))?;
    let boot_log = boot_lines(&logs.join("console.log"), &nonce)?;
    std::fs::write(tmp.join(BOOT_LOG), &boot_log)
        .with_context(|| format!("writing {}", tmp.join(BOOT_LOG).display()))?;
    // Stopped first: one consistent copy, no pages sent twice.
    qmp::command(&qmp_sock, "stop", None, Duration::from_secs(10))?;
    let listener = std::os::unix::net::UnixListener::bind(&out_sock).context("creating the state's socket")?;
    let state = tmp.join(STATE);
    let writer = receive(listener, state.clone());
    let uri = format!("unix:{}", out_sock.display());
    qmp::command(&qmp_sock, "migrate", Some(serde_json::json!({ "uri": uri })), Duration::from_secs(10))?;
    wait_migrated(&qmp_sock, Instant::now() + Duration::from_secs(120))?;
    let (bytes, crc32) = writer.join().map_err(|_| anyhow::anyhow!("the state's writer panicked"))??;
    guest.kill()?;
    drop(guest);
    console.join();
    let meta = Meta {
        key: key.to_string(),
        bytes,
        crc32,
        boot_crc32: crc32fast::hash(&boot_log),
        seconds: started.elapsed().as_secs_f64(),
    };
    let text = serde_json::to_string_pretty(&meta).context("writing the snapshot's meta")?;
    std::fs::write(tmp.join(META), text).with_context(|| format!("writing {}", tmp.join(META).display()))
}

/// The console log at `log` up to the line of the `ready` marker (of
/// `nonce`): the boot, without the marker, whose nonce is no run's.
fn boot_lines(log: &Path, nonce: &str) -> Result<Vec<u8>> {
    let bytes = std::fs::read(log).with_context(|| format!("reading {}", log.display()))?;
    let ready = marker::marker_line(nonce, &Marker::Ready);
    let at = memchr::memmem::find(&bytes, ready.as_bytes()).context("the console log lacks the ready marker")?;
    let start = bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |n| n + 1);
    Ok(bytes[..start].to_vec())
}

/// Reads the guest's console until its `ready` marker (of `nonce`).
fn wait_ready(console: &ConsoleReader, nonce: &str, deadline: Instant) -> Result<()> {
    let mut last: std::collections::VecDeque<String> = Default::default();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match console.lines.recv_timeout(left) {
            Ok(ConsoleMsg::Line(line)) => {
                let (_, message) = marker::split_timestamp(&line);
                if marker::parse_marker(message, nonce) == Some(Marker::Ready) {
                    return Ok(());
                }
                if last.len() == 8 {
                    last.pop_front();
                }
                last.push_back(line);
            }
            Ok(ConsoleMsg::Closed) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let tail: Vec<String> = last.into_iter().collect();
                bail!("the guest stopped before it was ready; it last said:\n{}", tail.join("\n"))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                bail!("the guest was not ready within its profile's timeout")
            }
        }
    }
}

/// Copies QEMU's migration stream, on its one connection to `listener`,
/// into `file`: its length and CRC-32 at its end.
fn receive(listener: std::os::unix::net::UnixListener, file: PathBuf) -> std::thread::JoinHandle<Result<(u64, u32)>> {
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().context("accepting qemu's migration")?;
        // Bounded by QEMU: it closes the stream when the migration ends,
        // and the caller kills it if that does not come.
        conn.set_read_timeout(Some(Duration::from_secs(120))).context("setting the state's read timeout")?;
        let mut out = std::fs::File::create(&file).with_context(|| format!("creating {}", file.display()))?;
        let mut h = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            let n = conn.read(&mut buf).context("reading qemu's migration stream")?;
            if n == 0 {
                out.sync_all().with_context(|| format!("writing {}", file.display()))?;
                return Ok((bytes, h.finalize()));
            }
            std::io::Write::write_all(&mut out, &buf[..n]).with_context(|| format!("writing {}", file.display()))?;
            h.update(&buf[..n]);
            bytes += n as u64;
        }
    })
}

/// Polls `query-migrate` until the migration completed.
fn wait_migrated(qmp_sock: &Path, deadline: Instant) -> Result<()> {
    loop {
        let status = qmp::command(qmp_sock, "query-migrate", None, Duration::from_secs(10))?;
        match status["status"].as_str() {
            Some("completed") => return Ok(()),
            Some(s @ ("failed" | "cancelled")) => {
                bail!("qemu's migration {s}: {}", status["error-desc"].as_str().unwrap_or("(no reason given)"))
            }
            _ if Instant::now() > deadline => bail!("qemu's migration did not complete in time: {status}"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Waits until a resumed QEMU (QMP at `qmp_sock`) has read its state and
/// holds the guest; `guest` is polled, so that a QEMU that failed to load
/// it (and exited) is an error at once.
pub fn wait_incoming(qmp_sock: &Path, guest: &Qemu, deadline: Instant) -> Result<()> {
    loop {
        if let Some(status) = guest.wait_until(Instant::now())? {
            bail!("qemu exited ({status}) while loading the snapshot (its stderr is in the run directory)");
        }
        // The socket exists once QEMU has parsed its command line.
        if let Ok(v) = qmp::command(qmp_sock, "query-status", None, Duration::from_secs(5)) {
            match v["status"].as_str() {
                Some("inmigrate") => {}
                Some("paused" | "prelaunch") => return Ok(()),
                other => bail!("the resumed guest is {other:?}, not held"),
            }
        }
        if Instant::now() > deadline {
            bail!("qemu did not load the snapshot in time");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn remove(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("harness: warning: could not remove {}: {e}", dir.display());
    }
}

/// The kernel's other snapshots (of an older harness or initramfs): a
/// running check that resumes one has its file open, which survives this.
fn remove_others(dir: &Path) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else { return };
    for e in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let n = e.file_name();
        let s = n.to_string_lossy();
        if n != name && !s.contains(".tmp-") && !s.ends_with(".lock") && e.path().is_dir() {
            remove(&e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_dir(state: &[u8]) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE), state).unwrap();
        std::fs::write(dir.path().join(BOOT_LOG), b"[    0.000000] Booting Linux\n").unwrap();
        let (bytes, crc32) = checksum(&dir.path().join(STATE)).unwrap();
        let boot_crc32 = checksum(&dir.path().join(BOOT_LOG)).unwrap().1;
        let meta = Meta { key: "k1".into(), bytes, crc32, boot_crc32, seconds: 1.0 };
        std::fs::write(dir.path().join(META), serde_json::to_string(&meta).unwrap()).unwrap();
        (dir, "k1".into())
    }

    #[test]
    fn a_whole_snapshot_is_taken() {
        let (dir, key) = meta_dir(b"QEVM state");
        let s = check(dir.path(), &key).unwrap();
        assert_eq!(s.bytes, 10);
        assert_eq!(s.state, dir.path().join(STATE));
    }

    #[test]
    fn a_damaged_or_foreign_snapshot_is_refused() {
        let (dir, key) = meta_dir(b"QEVM state");
        std::fs::write(dir.path().join(STATE), b"QEVM stbte").unwrap();
        let e = check(dir.path(), &key).unwrap_err().to_string();
        assert!(e.contains("CRC-32"), "{e}");
        let (dir, _) = meta_dir(b"QEVM state");
        let e = check(dir.path(), "k2").unwrap_err().to_string();
        assert!(e.contains("made for key k1"), "{e}");
        let (dir, key) = meta_dir(b"QEVM state");
        std::fs::write(dir.path().join(STATE), b"QEVM state and more").unwrap();
        assert!(check(dir.path(), &key).is_err(), "a longer stream");
        let (dir, key) = meta_dir(b"QEVM state");
        std::fs::write(dir.path().join(BOOT_LOG), b"[    0.000000] Booting Linux!\n").unwrap();
        assert!(check(dir.path(), &key).unwrap_err().to_string().contains("boot.log"), "a changed boot log");
    }

    #[test]
    fn the_boot_log_ends_before_the_ready_marker() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        let ready = marker::marker_line("00ff", &Marker::Ready);
        std::fs::write(&log, format!("[    0.1] Linux\r\n[    1.2] {ready}\r\n")).unwrap();
        assert_eq!(boot_lines(&log, "00ff").unwrap(), b"[    0.1] Linux\r\n");
        assert!(boot_lines(&log, "00fe").is_err(), "another nonce's marker");
    }
}
