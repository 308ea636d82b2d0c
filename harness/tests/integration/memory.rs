//! A guest that floods its console cannot take the harness's memory: a line
//! is cut at 64 KiB (the rest is in the console log only), the transcript
//! keeps at most 16 MiB of text and counts the rest. Measured as the peak
//! resident size (VmHWM) of a process that does nothing else.

use crate::common::repo;
use harness::guest::console::{ConsoleMsg, ConsoleReader};
use harness::judge::step::Transcript;
use std::io::Read;
use std::time::{Duration, Instant};

/// Set in the child that measures the console flood.
const FLOOD_CHILD: &str = "HARNESS_TEST_FLOOD_CHILD";

/// Peak resident set of process `pid`, in KiB.
fn hwm_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.split_whitespace().next()?.parse().ok()
}

/// A console that prints `no_newline` bytes without a newline, then
/// `lines` lines of 100 bytes.
struct Flood {
    no_newline: usize,
    lines: usize,
    sent: usize,
}

impl Read for Flood {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let total = self.no_newline + self.lines * 100;
        let n = buf.len().min(total - self.sent);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let at = self.sent + i;
            *b = if at >= self.no_newline && (at - self.no_newline) % 100 == 99 { b'\n' } else { b'x' };
        }
        self.sent += n;
        Ok(n)
    }
}

/// 100 MB without a newline, then 100 MB of lines, through the console
/// reader and the transcript as a boot feeds them: the peak resident size
/// grows by far less than what came in.
#[test]
fn a_console_flood_is_held_in_bounded_memory() {
    // Measured in a process of its own: VmHWM is the whole process's peak,
    // and `cargo test` runs other tests as threads of this one. The test
    // binary runs this test again, alone, as the child that measures.
    if std::env::var_os(FLOOD_CHILD).is_none() {
        let name = "memory::a_console_flood_is_held_in_bounded_memory";
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(FLOOD_CHILD, "1")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "the measuring child failed:\n{text}");
        assert!(
            text.contains("peak resident size grew by") && text.contains("1 passed"),
            "the child did not measure:\n{text}"
        );
        return;
    }
    let before = hwm_kib("self").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let flood = Flood { no_newline: 100 << 20, lines: 1 << 20, sent: 0 };
    let reader = ConsoleReader::start(flood, &dir.path().join("console.log")).unwrap();
    let mut t = Transcript::new("0123456789abcdef");
    let mut first: Option<String> = None;
    while let ConsoleMsg::Line(l) = reader.lines.recv_timeout(Duration::from_secs(60)).unwrap() {
        if first.is_none() {
            first = Some(l[l.len() - 100..].to_string());
        }
        t.push(&l);
    }
    reader.join();
    let grew_mib = (hwm_kib("self").unwrap() - before) / 1024;
    eprintln!("peak resident size grew by {grew_mib} MiB for 200 MB of console");
    assert!(first.unwrap().contains("[harness: line cut at 65536 bytes"), "the long line says it was cut");
    assert!(t.dropped > 0, "the transcript stopped keeping lines");
    assert_eq!(
        std::fs::metadata(dir.path().join("console.log")).unwrap().len(),
        (200 << 20) as u64,
        "the log has everything"
    );
    assert!(grew_mib < 80, "the flood took {grew_mib} MiB");
}

/// A real guest: a command step writes 5 MB without a newline straight to
/// the console. The check still passes, the harness's peak resident size
/// stays bounded, and the verdict shows the cut line.
#[test]
fn a_guest_flooding_its_console_does_not_take_the_harness_memory() {
    let dir = tempfile::tempdir().unwrap();
    let expect = dir.path().join("expect.toml");
    std::fs::write(
        &expect,
        "[[step]]\nname = \"flood\"\nrun = \"head -c 5000000 /dev/zero | tr '\\\\0' x > /dev/console; echo > \
            /dev/console\"\n",
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
        .args(["check", "--timeout", "600", "--step-timeout", "300", "--silence-timeout", "300", "--module"])
        .arg(repo().join("kmod/c-twin"))
        .arg("--expect")
        .arg(&expect)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(900);
    while child.try_wait().unwrap().is_none() {
        peak = peak.max(hwm_kib(&pid).unwrap_or(0));
        assert!(Instant::now() < deadline, "the check did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(child.wait().unwrap().success(), "{out}");
    eprintln!("the harness's peak resident size: {} MiB", peak / 1024);
    assert!(peak / 1024 < 100, "the harness took {} MiB for a 5 MB line", peak / 1024);
}
