//! Supervised child processes: every build tool the harness runs goes through
//! [`run`], which logs its output, gives it a deadline and kills its whole
//! process group on timeout or when the harness is interrupted.

use anyhow::{bail, Context, Result};
use nix::sys::signal::{killpg, signal, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{setpgid, Pid};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// How a child's process group is stopped when the harness must stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStop {
    /// SIGKILL: builds and guests, which a kill cannot damage.
    Kill,
    /// SIGTERM, and time to finish before SIGKILL: apt and dpkg, which a
    /// SIGKILL can leave "interrupted" with a half-configured package.
    Gentle,
}

/// How long a gently stopped group may take before it is killed.
const GENTLE_GRACE: Duration = Duration::from_secs(60);

/// Process groups of the children running now, for the signal handler.
static GROUPS: Mutex<BTreeMap<i32, GroupStop>> = Mutex::new(BTreeMap::new());
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// What the signal handler runs before it exits, which runs no destructors:
/// the run side registers putting back a terminal it lent to a guest's
/// shell (guest/terminal.rs), so this build-side module names none of it.
static AT_INTERRUPT: Mutex<Vec<fn()>> = Mutex::new(Vec::new());
/// The write end of the pipe to the watchdog, if one was started.
static WATCHDOG: Mutex<Option<File>> = Mutex::new(None);

thread_local! {
    /// Where this thread's children's process groups are recorded, while it
    /// builds into a cache temporary (see [`record_groups_in`]).
    static RECORD: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Installs the SIGINT/SIGTERM/SIGHUP handler: it stops every supervised
/// child group and exits 130, so a Ctrl-C or a CI cancel leaves no QEMU or
/// make behind. Temporary build directories left by the kill are removed by
/// the next run, under the cache lock.
pub fn install_signal_handler() -> Result<()> {
    ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("\nharness: interrupted, stopping child processes");
        let groups: Vec<(i32, GroupStop)> =
            GROUPS.lock().map(|g| g.iter().map(|(k, v)| (*k, *v)).collect()).unwrap_or_default();
        stop_groups(&groups);
        reap(&groups);
        // exit runs no destructors: a terminal lent to a guest's shell is
        // put back here.
        let hooks: Vec<fn()> = AT_INTERRUPT.lock().map(|h| h.clone()).unwrap_or_default();
        hooks.iter().for_each(|hook| hook());
        std::process::exit(130);
    })
    .context("installing the signal handler")
}

/// Runs `hook` in the signal handler before it exits (see
/// [`AT_INTERRUPT`]); a hook registered twice runs once.
pub fn at_interrupt(hook: fn()) {
    let mut hooks = AT_INTERRUPT.lock().unwrap_or_else(|e| e.into_inner());
    if !hooks.iter().any(|h| std::ptr::fn_addr_eq(*h, hook)) {
        hooks.push(hook);
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Whether any process of group `pgid` is alive.
fn group_alive(pgid: i32) -> bool {
    // No signal: only whether the group exists.
    killpg(Pid::from_raw(pgid), None).is_ok()
}

/// Stops every group: SIGKILL, or SIGTERM and a grace period for gentle ones.
fn stop_groups(groups: &[(i32, GroupStop)]) {
    for &(pgid, stop) in groups {
        let signal = if stop == GroupStop::Gentle { Signal::SIGTERM } else { Signal::SIGKILL };
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
    let deadline = Instant::now() + GENTLE_GRACE;
    for &(pgid, stop) in groups {
        if stop == GroupStop::Gentle {
            while group_alive(pgid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

/// Reaps the group leaders (our children) before exiting: a child that
/// outlives us unreaped is handed to PID 1, which in a container may never
/// reap it, and a zombie QEMU is still a QEMU left behind.
fn reap(groups: &[(i32, GroupStop)]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    for &(pid, _) in groups {
        loop {
            // Our own child; ECHILD if another thread (duct's) already
            // reaped it, which ends the wait too.
            let alive = matches!(waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)), Ok(WaitStatus::StillAlive));
            if !alive || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts the watchdog: this program again (`harness __watchdog`), in a
/// process group of its own, reading the groups the harness registers from
/// a pipe. When the pipe closes (the harness exited, or was killed even by
/// SIGKILL, when no handler and no destructor runs) it stops every group
/// still registered. PR_SET_PDEATHSIG alone reaches only a group's leader:
/// make's sub-makes and compilers, and apt's dpkg, would live on.
pub fn start_watchdog() -> Result<()> {
    let exe = std::env::current_exe().context("finding the harness executable for the watchdog")?;
    // Both ends are close-on-exec: no other child holds the write end open.
    let (reader, writer) = os_pipe::pipe().context("creating the watchdog's pipe")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("__watchdog").stdin(reader).stdout(std::process::Stdio::null());
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe syscalls between fork and exec. Its
    // own group: a Ctrl-C to the harness's does not stop it first.
    unsafe {
        cmd.pre_exec(|| setpgid(Pid::from_raw(0), Pid::from_raw(0)).map_err(std::io::Error::from));
    }
    // Not waited for: it ends when the pipe closes, that is just after the
    // harness; it is then PID 1's child.
    cmd.spawn().context("starting the watchdog")?;
    *WATCHDOG.lock().map_err(|_| anyhow::anyhow!("watchdog lock poisoned"))? =
        Some(File::from(std::os::fd::OwnedFd::from(writer)));
    Ok(())
}

/// The watchdog's body (`harness __watchdog`): reads `+PGID`, `~PGID`
/// (gentle) and `-PGID` lines until end of input, then stops what is left.
pub fn watchdog_main() -> Result<()> {
    // SAFETY: ignoring terminal signals (no handler runs); the pipe is
    // what ends it.
    unsafe {
        let _ = signal(Signal::SIGINT, SigHandler::SigIgn);
        let _ = signal(Signal::SIGHUP, SigHandler::SigIgn);
    }
    let mut groups: BTreeMap<i32, GroupStop> = BTreeMap::new();
    // Lines are a few bytes; a broken writer cannot make one unbounded.
    for line in BufReader::new(std::io::stdin().lock().take(u64::MAX)).split(b'\n') {
        let Ok(line) = line else { break };
        let line = String::from_utf8_lossy(&line[..line.len().min(32)]).into_owned();
        let (op, num) = line.split_at(line.len().min(1));
        let Ok(pgid) = num.trim().parse::<i32>() else { continue };
        match op {
            "+" => {
                groups.insert(pgid, GroupStop::Kill);
            }
            "~" => {
                groups.insert(pgid, GroupStop::Gentle);
            }
            "-" => {
                groups.remove(&pgid);
            }
            _ => {}
        }
    }
    let left: Vec<(i32, GroupStop)> = groups.into_iter().filter(|(g, _)| group_alive(*g)).collect();
    stop_groups(&left);
    Ok(())
}

fn tell_watchdog(line: String) {
    if let Ok(mut w) = WATCHDOG.lock() {
        if let Some(f) = w.as_mut() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// While `dir` is `Some`, the process groups this thread starts are also
/// recorded in `dir/harness-pgids` (pgid and start time): a later run that
/// finds the directory left behind stops them before removing it.
pub fn record_groups_in(dir: Option<PathBuf>) {
    RECORD.with(|r| *r.borrow_mut() = dir);
}

/// The file in a build directory that lists its process groups.
pub const PGIDS_FILE: &str = "harness-pgids";

/// A process's start time (clock ticks since boot), which tells it from a
/// later process that got the same pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which may contain spaces.
    let rest = stat.rsplit_once(") ")?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Stops the process groups recorded in `dir` by a run that is gone, if
/// they are still the same processes, and waits (bounded) until they are.
pub fn stop_recorded(dir: &Path) {
    let Ok(text) = std::fs::read_to_string(dir.join(PGIDS_FILE)) else { return };
    let mut stopped = Vec::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        let (Some(Ok(pgid)), Some(Ok(start))) = (w.next().map(str::parse::<i32>), w.next().map(str::parse::<u64>))
        else {
            continue;
        };
        if start_time(pgid) == Some(start) && group_alive(pgid) {
            eprintln!("harness: stopping process group {pgid} of the interrupted build in {}", dir.display());
            // The group that build started (same leader, same start time).
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            stopped.push(pgid);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while stopped.iter().any(|g| group_alive(*g)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Registers a child's process group for the signal handler and the
/// watchdog; the returned token unregisters it when dropped.
pub struct Registered(i32);

pub fn register(pgid: u32) -> Registered {
    register_as(pgid, GroupStop::Kill)
}

pub fn register_as(pgid: u32, stop: GroupStop) -> Registered {
    let pgid = pgid as i32;
    if let Ok(mut g) = GROUPS.lock() {
        g.insert(pgid, stop);
    }
    tell_watchdog(format!("{}{pgid}\n", if stop == GroupStop::Gentle { '~' } else { '+' }));
    RECORD.with(|r| {
        if let (Some(dir), Some(start)) = (r.borrow().as_ref(), start_time(pgid)) {
            use std::io::Write as _;
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(PGIDS_FILE)) {
                let _ = writeln!(f, "{pgid} {start}");
            }
        }
    });
    Registered(pgid)
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut g) = GROUPS.lock() {
            g.remove(&self.0);
        }
        tell_watchdog(format!("-{}\n", self.0));
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
                setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                Ok(())
            });
        }
        Ok(())
    })
}

/// A command whose output goes to a log: `program args`, with stdout and
/// stderr merged into `log` and handed to `run`'s callback line by line,
/// in its own process group, killed if it outlives `timeout`. A failure
/// names the command and shows the last lines it printed.
pub struct Logged<'a> {
    program: &'a str,
    args: &'a [OsString],
    log: &'a Path,
    timeout: Duration,
    dir: Option<&'a Path>,
    envs: &'a [(&'a str, OsString)],
    stop: GroupStop,
}

impl<'a> Logged<'a> {
    pub fn new(program: &'a str, args: &'a [OsString], log: &'a Path, timeout: Duration) -> Logged<'a> {
        Logged { program, args, log, timeout, dir: None, envs: &[], stop: GroupStop::Kill }
    }

    /// Its working directory.
    pub fn dir(self, dir: &'a Path) -> Logged<'a> {
        Logged { dir: Some(dir), ..self }
    }

    /// Environment variables it gets beside the harness's own.
    pub fn envs(self, envs: &'a [(&'a str, OsString)]) -> Logged<'a> {
        Logged { envs, ..self }
    }

    /// How its group is stopped on a timeout, a signal, or the harness's
    /// death ([`GroupStop::Gentle`] for apt and dpkg).
    pub fn stop(self, stop: GroupStop) -> Logged<'a> {
        Logged { stop, ..self }
    }

    /// Runs it to the end, or to its deadline.
    pub fn run(self, on_line: impl FnMut(&str)) -> Result<()> {
        run_logged(self, on_line)
    }
}

fn run_logged(cmd: Logged, mut on_line: impl FnMut(&str)) -> Result<()> {
    let Logged { program, args, log, timeout, dir, envs, stop } = cmd;
    let shown = format!("{program} {}", args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "));
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
    let _reg = register_as(handle.pids()[0], stop);
    let (rx, pump) = line_pump(reader);
    let deadline = Instant::now() + timeout;
    let mut tail: std::collections::VecDeque<String> = Default::default();
    let kill = |why: &str| -> anyhow::Error {
        // The group is the child's own, created in supervise().
        stop_groups(&[(handle.pids()[0] as i32, stop)]);
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
        bail!(
            "`{shown}` failed with exit status {code}; its last lines:\n{}\nfull log: {}",
            lines.join("\n"),
            log.display()
        );
    }
    Ok(())
}

/// A thread that reads `reader` into lines (without `\r\n`) for the
/// receiver, until the pipe closes or the receiver is dropped.
fn line_pump(reader: os_pipe::PipeReader) -> (mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    // Bounded: a slow `on_line` slows the command, not memory.
    let (tx, rx) = mpsc::sync_channel::<String>(1024);
    let pump = std::thread::spawn(move || {
        for line in BufReader::new(reader).split(b'\n').map_while(Result::ok) {
            if tx.send(String::from_utf8_lossy(&line).trim_end_matches('\r').to_string()).is_err() {
                break;
            }
        }
    });
    (rx, pump)
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
    let expr = expr.stdin_null().stderr_null().stdout_capture();
    let Some(out) = wait_bounded(expr, Duration::from_secs(60)).with_context(|| format!("running {program}"))? else {
        bail!("{program} {} did not answer within 60 s and was killed", args.join(" "));
    };
    if !out.status.success() {
        bail!("`{program} {}` failed with {}", args.join(" "), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs `expr` in a process group of its own, registered, and waits at
/// most `timeout`: its output, or `None` when it was still running then
/// (killed and reaped, not abandoned). A non-zero exit is an output.
pub fn wait_bounded(expr: duct::Expression, timeout: Duration) -> std::io::Result<Option<std::process::Output>> {
    let handle = supervise(expr).unchecked().start()?;
    let _reg = register(handle.pids()[0]);
    match handle.wait_timeout(timeout)? {
        Some(out) => Ok(Some(out.clone())),
        None => {
            stop_groups(&[(handle.pids()[0] as i32, GroupStop::Kill)]);
            let _ = handle.wait_timeout(Duration::from_secs(10));
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_lines_and_reports_failure_with_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let mut seen = Vec::new();
        let err =
            Logged::new("sh", &["-c".into(), "echo one; echo two >&2; exit 3".into()], &log, Duration::from_secs(20))
                .run(|l| seen.push(l.to_string()))
                .unwrap_err()
                .to_string();
        seen.sort();
        assert_eq!(seen, vec!["one", "two"]);
        assert!(err.contains("failed with exit status 3"), "{err}");
        assert!(err.contains("  | one"), "{err}");
        assert!(std::fs::read_to_string(&log).unwrap().contains("two"));
    }

    /// `bwrap true` (the sandbox's probe) and the version probes wait with
    /// a deadline: what outlives it is killed, not waited for.
    #[test]
    fn a_bounded_wait_kills_what_outlives_it() {
        let start = Instant::now();
        assert!(wait_bounded(duct::cmd!("sleep", "30"), Duration::from_secs(1)).unwrap().is_none());
        assert!(start.elapsed() < Duration::from_secs(15), "waited {:?}", start.elapsed());
        let failed = wait_bounded(duct::cmd!("sh", "-c", "exit 3"), Duration::from_secs(20)).unwrap();
        assert_eq!(failed.map(|o| o.status.code()), Some(Some(3)));
    }

    #[test]
    fn a_deadline_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let start = Instant::now();
        let err = Logged::new("sh", &["-c".into(), script.into()], &dir.path().join("log"), Duration::from_secs(2))
            .run(|_| {})
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
        let err = Logged::new("no-such-tool-xyz", &[], &dir.path().join("log"), Duration::from_secs(5))
            .run(|_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("no-such-tool-xyz is not installed"), "{err}");
    }
}
