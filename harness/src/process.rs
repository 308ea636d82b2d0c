//! Supervised child processes: every build tool the harness runs goes through
//! [`run`], which logs its output, gives it a deadline and kills its whole
//! process group on timeout or when the harness is interrupted.

use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// Process groups of the children running now, for the signal handler.
static GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the SIGINT/SIGTERM/SIGHUP handler: it kills every supervised
/// child group and exits 130, so a Ctrl-C or a CI cancel leaves no QEMU or
/// make behind. Temporary build directories left by the kill are removed by
/// the next run, under the cache lock.
pub fn install_signal_handler() -> Result<()> {
    ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("\nharness: interrupted, stopping child processes");
        kill_all();
        std::process::exit(130);
    })
    .context("installing the signal handler")
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

fn kill_all() {
    let groups: Vec<i32> = GROUPS.lock().map(|g| g.iter().copied().collect()).unwrap_or_default();
    for &pgid in &groups {
        // SAFETY: plain syscall on a process group we created.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
    // Reap them before exiting: a child that outlives us unreaped is handed
    // to PID 1, which in a container may never reap it, and a zombie QEMU is
    // still a QEMU left behind. The group leader's pid is the group id.
    let deadline = Instant::now() + Duration::from_secs(5);
    for pid in groups {
        loop {
            let mut status = 0;
            // SAFETY: waitpid on our own child; ECHILD if another thread
            // (duct's) already reaped it.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r != 0 || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Registers a child's process group for the signal handler; the returned
/// token unregisters it when dropped.
pub struct Registered(i32);

pub fn register(pgid: u32) -> Registered {
    let pgid = pgid as i32;
    if let Ok(mut g) = GROUPS.lock() {
        g.insert(pgid);
    }
    Registered(pgid)
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut g) = GROUPS.lock() {
            g.remove(&self.0);
        }
    }
}

/// Makes the child the leader of a new process group (so that killing the
/// group reaches make's compilers too) and asks the kernel to SIGKILL it if
/// the harness dies without running any destructor.
pub fn supervise(expr: duct::Expression) -> duct::Expression {
    expr.before_spawn(|cmd| {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setpgid(0, 0) != 0 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(())
    })
}

/// Runs `program args`, with stdout and stderr merged into `log` and handed to
/// `on_line` line by line, killing it if it outlives `timeout`. A failure
/// names the command and shows the last lines it printed.
pub fn run(
    program: &str,
    args: &[OsString],
    dir: Option<&Path>,
    envs: &[(&str, OsString)],
    log: &Path,
    timeout: Duration,
    mut on_line: impl FnMut(&str),
) -> Result<()> {
    let shown = format!(
        "{program} {}",
        args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
    );
    let mut log_file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let _ = writeln!(log_file, "$ {shown}");
    let (reader, writer) = os_pipe::pipe().context("creating a pipe")?;
    let writer2 = writer.try_clone().context("duplicating a pipe")?;
    let mut expr = duct::cmd(program, args).stdin_null().stdout_file(writer).stderr_file(writer2).unchecked();
    if let Some(d) = dir {
        expr = expr.dir(d);
    }
    for (k, v) in envs {
        expr = expr.env(k, v);
    }
    let expr = supervise(expr);
    let handle = match expr.start() {
        Ok(h) => h,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{program} is not installed (needed to run `{shown}`)")
        }
        Err(e) => return Err(e).with_context(|| format!("starting `{shown}`")),
    };
    drop(expr);
    let _reg = register(handle.pids()[0]);

    let (tx, rx) = mpsc::channel::<String>();
    let pump = std::thread::spawn(move || {
        for line in BufReader::new(reader).split(b'\n').map_while(Result::ok) {
            if tx.send(String::from_utf8_lossy(&line).trim_end_matches('\r').to_string()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut tail: std::collections::VecDeque<String> = Default::default();
    let kill = |why: &str| -> anyhow::Error {
        // SAFETY: the group is the child's own, created in supervise().
        unsafe {
            libc::killpg(handle.pids()[0] as i32, libc::SIGKILL);
        }
        let _ = handle.wait_timeout(Duration::from_secs(10));
        anyhow::anyhow!("`{shown}` {why}; log: {}", log.display())
    };
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(kill(&format!("did not finish within {} s and was killed", timeout.as_secs())));
        }
        match rx.recv_timeout(deadline - now) {
            Ok(line) => {
                let _ = writeln!(log_file, "{line}");
                on_line(&line);
                tail.push_back(line);
                if tail.len() > 25 {
                    tail.pop_front();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = pump.join();
    let status = match handle.wait_deadline(deadline).with_context(|| format!("waiting for `{shown}`"))? {
        Some(out) => out.status,
        None => return Err(kill("closed its output but did not exit in time")),
    };
    if !status.success() {
        let code = status.code().map(|c| c.to_string()).unwrap_or_else(|| "a signal".into());
        let lines: Vec<String> = tail.iter().map(|l| format!("  | {l}")).collect();
        bail!("`{shown}` failed with exit status {code}; its last lines:\n{}\nfull log: {}", lines.join("\n"), log.display());
    }
    Ok(())
}

/// Runs a short command and returns its stdout, trimmed; for version probes.
pub fn output(program: &str, args: &[&str]) -> Result<String> {
    output_in(None, program, args)
}

/// [`output`], run in `dir` (tools such as rustup answer per directory).
pub fn output_in(dir: Option<&Path>, program: &str, args: &[&str]) -> Result<String> {
    let mut expr = duct::cmd(program, args);
    if let Some(d) = dir {
        expr = expr.dir(d);
    }
    let out = supervise(expr)
        .stdin_null()
        .stderr_null()
        .stdout_capture()
        .unchecked()
        .start()
        .with_context(|| format!("running {program}"))?;
    let out = out
        .wait_timeout(Duration::from_secs(60))
        .with_context(|| format!("waiting for {program}"))?
        .with_context(|| format!("{program} {} did not answer within 60 s", args.join(" ")))?;
    if !out.status.success() {
        bail!("`{program} {}` failed with {}", args.join(" "), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_lines_and_reports_failure_with_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let mut seen = Vec::new();
        let err = run(
            "sh",
            &["-c".into(), "echo one; echo two >&2; exit 3".into()],
            None,
            &[],
            &log,
            Duration::from_secs(20),
            |l| seen.push(l.to_string()),
        )
        .unwrap_err()
        .to_string();
        seen.sort();
        assert_eq!(seen, vec!["one", "two"]);
        assert!(err.contains("failed with exit status 3"), "{err}");
        assert!(err.contains("  | one"), "{err}");
        assert!(std::fs::read_to_string(&log).unwrap().contains("two"));
    }

    #[test]
    fn a_deadline_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let start = Instant::now();
        let err = run("sh", &["-c".into(), script.into()], None, &[], &dir.path().join("log"), Duration::from_secs(2), |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("did not finish within 2 s"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(15));
        // The grandchild got the group kill too.
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();
        std::thread::sleep(Duration::from_millis(200));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(stat.is_empty() || stat.contains(") Z "), "grandchild {pid} still alive: {stat}");
    }

    #[test]
    fn missing_program_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = run("no-such-tool-xyz", &[], None, &[], &dir.path().join("log"), Duration::from_secs(5), |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("no-such-tool-xyz is not installed"), "{err}");
    }
}
