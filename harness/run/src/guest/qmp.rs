//! QMP, QEMU's machine protocol (JSON lines on a Unix socket): how the
//! harness asks a hung or panicked guest what its CPUs were doing, and for
//! its memory, before killing it.
//!
//! QMP has no command of its own for CPU registers, so the one question
//! goes through `human-monitor-command`; but the answer is a JSON string,
//! not a terminal screen to scrape for prompts and echoes.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The longest QMP message read: `info registers -a` of four cores is about
/// 10 KiB; a larger one is refused rather than held.
const MAX_MESSAGE: u64 = 1 << 20;

/// Runs one human-monitor command over the QMP socket at `socket` and
/// returns its output, waiting at most `timeout` in all.
pub fn human_command(socket: &Path, command: &str, timeout: Duration) -> Result<String> {
    let answer = command_on(
        socket,
        &json!({ "execute": "human-monitor-command", "arguments": { "command-line": command } }),
        timeout,
    )?;
    match answer.as_str() {
        Some(text) => Ok(text.replace('\r', "")),
        None => bail!("qemu answered `{command}` with {answer}, not text"),
    }
}

/// Runs the QMP command `execute` (with `arguments`, if any) and returns
/// its `return` value, waiting at most `timeout` in all.
pub fn command(socket: &Path, execute: &str, arguments: Option<Value>, timeout: Duration) -> Result<Value> {
    let request = match arguments {
        Some(a) => json!({ "execute": execute, "arguments": a }),
        None => json!({ "execute": execute }),
    };
    command_on(socket, &request, timeout)
}

/// The format of a guest memory dump: kdump-compressed with zlib, which
/// every QEMU build has (QEMU 7.2 writes it in makedumpfile's flattened
/// form). Measured on smdkc210's 1 GiB (a guest hung in a module's init):
/// 0.7 s and 15 MiB, against 1.0 s and 1 GiB for an ELF core (zero and
/// free pages cost nothing compressed).
pub const DUMP_FORMAT: &str = "kdump-zlib";

/// Writes the guest's memory to `file` (QMP `dump-guest-memory`, physical
/// memory without paging; the VM stands still meanwhile), waiting at most
/// `timeout`.
pub fn dump_memory(socket: &Path, file: &Path, timeout: Duration) -> Result<()> {
    let mut protocol = String::from("file:");
    protocol.push_str(file.to_str().with_context(|| format!("{} is not UTF-8, which QMP needs", file.display()))?);
    let arguments = json!({ "paging": false, "protocol": protocol, "format": DUMP_FORMAT });
    let request = json!({ "execute": "dump-guest-memory", "arguments": arguments });
    command_on(socket, &request, timeout).map(|_| ())
}

/// Connects to the QMP socket at `socket`, negotiates, sends `request` and
/// returns its `return` value, waiting at most `timeout` in all.
fn command_on(socket: &Path, request: &Value, timeout: Duration) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    let stream =
        UnixStream::connect(socket).with_context(|| format!("connecting to qemu's QMP socket {}", socket.display()))?;
    let mut writer = stream.try_clone().context("cloning the QMP socket")?;
    let mut reader = BufReader::new(stream);
    let greeting = read_message(&mut reader, deadline, timeout)?;
    if greeting.get("QMP").is_none() {
        bail!("qemu's QMP socket {} did not greet with QMP: {greeting}", socket.display());
    }
    execute(&mut reader, &mut writer, &json!({ "execute": "qmp_capabilities" }), deadline, timeout)?;
    execute(&mut reader, &mut writer, request, deadline, timeout)
}

/// Sends `request` and returns its `return` value; events that QEMU sends
/// in between (`{"event": …}`) are skipped.
fn execute(
    reader: &mut BufReader<UnixStream>,
    writer: &mut UnixStream,
    request: &Value,
    deadline: Instant,
    timeout: Duration,
) -> Result<Value> {
    writer.write_all(format!("{request}\n").as_bytes()).context("writing to qemu's QMP socket")?;
    loop {
        let mut message = read_message(reader, deadline, timeout)?;
        if let Some(v) = message.get_mut("return") {
            return Ok(v.take());
        }
        if let Some(e) = message.get("error") {
            bail!("qemu refused {}: {}", request["execute"], e["desc"].as_str().unwrap_or("(no description)"));
        }
    }
}

/// One JSON message (QMP puts each on a line of its own).
fn read_message(reader: &mut BufReader<UnixStream>, deadline: Instant, timeout: Duration) -> Result<Value> {
    let mut line = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("qemu's QMP socket did not answer within {} s", timeout.as_secs());
        }
        reader.get_ref().set_read_timeout(Some(left)).context("setting a QMP read timeout")?;
        let room = MAX_MESSAGE - line.len() as u64;
        match reader.by_ref().take(room).read_until(b'\n', &mut line) {
            Ok(0) if line.is_empty() => bail!("qemu closed its QMP socket"),
            Ok(_) if line.ends_with(b"\n") || line.len() as u64 >= MAX_MESSAGE => break,
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e).context("reading from qemu's QMP socket"),
        }
    }
    if line.len() as u64 >= MAX_MESSAGE && !line.ends_with(b"\n") {
        bail!("a QMP message from qemu was over {MAX_MESSAGE} bytes");
    }
    serde_json::from_slice(&line).with_context(|| {
        format!("qemu sent a QMP line that is not JSON: {}", String::from_utf8_lossy(&line).trim_end())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A stand-in QEMU: greets, then answers each request line with the
    /// next of `answers` (several lines each), then is silent; it returns
    /// the requests.
    fn fake_qemu(
        answers: Vec<&'static str>,
    ) -> (tempfile::TempDir, std::path::PathBuf, std::thread::JoinHandle<Vec<Value>>) {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            w.write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7}}, \"capabilities\": [\"oob\"]}}\r\n")
                .unwrap();
            let mut r = BufReader::new(s);
            let mut got = Vec::new();
            for a in answers {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                got.push(serde_json::from_str(&line).unwrap());
                w.write_all(a.as_bytes()).unwrap();
            }
            // Past its answers it stays connected and says nothing.
            let mut rest = String::new();
            while r.read_line(&mut rest).unwrap_or(0) > 0 {}
            got
        });
        (dir, sock, t)
    }

    #[test]
    fn a_human_command_goes_through_qmp_and_events_are_skipped() {
        let (_dir, sock, t) = fake_qemu(vec![
            "{\"return\": {}}\r\n",
            "{\"timestamp\": {\"seconds\": 1}, \"event\": \"RESUME\"}\r\n\
             {\"return\": \"CPU#0\\r\\nR00=00000000\\r\\n\"}\r\n",
        ]);
        let out = human_command(&sock, "info registers -a", Duration::from_secs(5)).unwrap();
        assert_eq!(out, "CPU#0\nR00=00000000\n");
        let sent = t.join().unwrap();
        assert_eq!(sent[0], json!({"execute": "qmp_capabilities"}));
        assert_eq!(
            sent[1],
            json!({"execute": "human-monitor-command", "arguments": {"command-line": "info registers -a"}})
        );
    }

    #[test]
    fn a_memory_dump_asks_for_a_compressed_dump_into_the_file() {
        let (_dir, sock, t) = fake_qemu(vec!["{\"return\": {}}\r\n", "{\"return\": {}}\r\n"]);
        dump_memory(&sock, Path::new("/run/x/memory.kdump"), Duration::from_secs(5)).unwrap();
        let sent = t.join().unwrap();
        assert_eq!(
            sent[1],
            json!({"execute": "dump-guest-memory", "arguments": {
                "paging": false, "protocol": "file:/run/x/memory.kdump", "format": "kdump-zlib"
            }})
        );
    }

    #[test]
    fn an_error_a_silence_and_garbage_are_errors() {
        let (_dir, sock, _t) =
            fake_qemu(vec!["{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no such thing\"}}\r\n"]);
        let e = human_command(&sock, "x", Duration::from_secs(5)).unwrap_err().to_string();
        assert!(e.contains("no such thing"), "{e}");
        let (_dir, sock, _t) = fake_qemu(vec!["{\"return\": {}}\r\n"]);
        let t0 = Instant::now();
        let e = human_command(&sock, "x", Duration::from_millis(300)).unwrap_err().to_string();
        assert!(e.contains("did not answer within"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(3));
        let (_dir, sock, _t) = fake_qemu(vec!["(qemu) not json\r\n"]);
        let e = human_command(&sock, "x", Duration::from_secs(5)).unwrap_err().to_string();
        assert!(e.contains("not JSON"), "{e}");
    }
}
