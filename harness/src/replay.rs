//! `replay`: the check's steps on a real board, over its serial console, and
//! `recheck`: the verdict again from a saved serial transcript.
//!
//! The replay gets a shell on the console ([`shell`]), copies
//! `rootfs/steps.sh` and the module over it ([`transfer`]), writes a start
//! line with a fresh nonce to `/dev/kmsg`, runs the same `harness_run_steps`
//! as the QEMU guest's `/init`, and dumps `dmesg` framed by `@@DMESG0@@` /
//! `@@DMESGEND0@@`. The kernel log lines after the start line are the
//! transcript, judged by [`crate::verdict::judge`] exactly as a QEMU run's
//! console is. The live verdict is computed from the recorded serial bytes
//! by the same function `recheck` uses, so both give the same answer.
//!
//! The board is left as found: the module unloaded (a failed rmmod is tried
//! once more), the files the replay wrote removed, `/dev/kmsg`'s rate limit
//! restored; the kernel log is never cleared.

pub mod emulated;
pub mod link;
pub mod shell;
pub mod transfer;

use crate::console::LineSplitter;
use crate::event::{classify, EventKind};
use crate::expect::Expectations;
use crate::kernel::{self, BuildOptions, Source};
use crate::module;
use crate::profile::Profile;
use crate::run::GUEST_STEPS;
use crate::step::{done_line, parse_replay_start, replay_start_line, split_timestamp, Marker, Transcript};
use crate::symbols::ModuleSymbols;
use crate::verdict::{self, RunEnd, Verdict};
use anyhow::{bail, Context, Result};
use link::Link;
use shell::{quote, Login, Shell};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use transfer::Encoding;

/// Where the replay's files go on the board; all named `harness-*`.
const BOARD_DIR: &str = "/tmp";
/// The sentinels around the kernel log dump. `echo @@DMESG$((0))@@` prints
/// `@@DMESG0@@`, while the tty's echo of the command shows `$((0))`: only
/// the real dump is found in a raw transcript.
const DUMP_BEGIN: &str = "@@DMESG0@@";
const DUMP_END: &str = "@@DMESGEND0@@";
/// Short housekeeping commands (uname, grep, rm).
const QUICK: Duration = Duration::from_secs(20);
/// Reading back the kernel log: a 1 MiB ring buffer takes 90 s at 115200 baud.
const DUMP_TIMEOUT: Duration = Duration::from_secs(180);
/// How long to keep reading after "Kernel panic" for the rest of the report.
const PANIC_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub serial: PathBuf,
    pub baud: u32,
    /// The profile whose kernel `module_dir` is built against.
    pub profile: String,
    /// The module to build, and where `expect.toml` is by default.
    pub module_dir: PathBuf,
    /// A module built already: not built again.
    pub ko: Option<PathBuf>,
    /// The module is on the board already, at this path: nothing is copied.
    pub board_path: Option<String>,
    /// The module's name, when there is no local module to read it from.
    pub module_name: Option<String>,
    pub expect: Option<PathBuf>,
    pub kernel_src: Option<PathBuf>,
    pub cross_compile: Option<String>,
    pub jobs: usize,
    pub user: String,
    pub password: Option<String>,
    /// `None`: base64 where the board has it, else printf.
    pub transfer: Option<Encoding>,
    /// Record the serial session here (else in the run directory).
    pub transcript: Option<PathBuf>,
    pub limits: ReplayLimits,
    pub keep: bool,
}

impl ReplayOptions {
    pub fn new(serial: PathBuf) -> ReplayOptions {
        let defaults = crate::run::CheckOptions::defaults();
        ReplayOptions {
            serial,
            baud: 115200,
            profile: defaults.profile,
            module_dir: defaults.module_dir,
            ko: None,
            board_path: None,
            module_name: None,
            expect: None,
            kernel_src: None,
            cross_compile: None,
            jobs: defaults.jobs,
            user: "root".into(),
            password: None,
            transfer: None,
            transcript: None,
            limits: ReplayLimits::default(),
            keep: false,
        }
    }
}

/// The deadlines of a replay.
#[derive(Debug, Clone, Copy)]
pub struct ReplayLimits {
    /// Getting a shell prompt, from opening the port.
    pub prompt: Duration,
    /// One step, from its begin marker on the console.
    pub step: Duration,
    /// All the steps together.
    pub total: Duration,
}

impl Default for ReplayLimits {
    fn default() -> Self {
        ReplayLimits { prompt: Duration::from_secs(60), step: Duration::from_secs(60), total: Duration::from_secs(300) }
    }
}

pub struct ReplayReport {
    pub verdict: Verdict,
    /// The raw serial session.
    pub transcript: PathBuf,
    /// The run directory, if it was kept (`--keep`, or the replay failed).
    pub run_dir: Option<PathBuf>,
    /// What the replay had to do to leave the board as found, or could not.
    pub notes: Vec<String>,
}

/// Prints each stage with the time since the replay began, as `check` does.
struct Stages(Instant);

impl Stages {
    fn say(&self, stage: &str, what: impl std::fmt::Display) {
        eprintln!("harness: [{:>6.1}s] {stage:<7} {what}", self.0.elapsed().as_secs_f64());
    }
}

/// The module as the harness has it locally.
struct Local {
    ko: PathBuf,
    name: String,
    vermagic: String,
}

/// Runs the steps on the board at `opts.serial`. `Err` means the replay could
/// not be carried out (bad input, no shell, a failed copy); a verdict,
/// passing or not, is `Ok`.
pub fn replay(opts: &ReplayOptions) -> Result<ReplayReport> {
    let stages = Stages(Instant::now());
    let root = crate::repo_root();

    // Everything that can be wrong with the input is found before any build
    // and before the board is touched.
    let expect_path = opts.expect.clone().unwrap_or_else(|| opts.module_dir.join("expect.toml"));
    if !expect_path.is_file() {
        bail!("no expectations file at {}: pass --expect FILE or --module DIR with an expect.toml", expect_path.display());
    }
    let expectations = Expectations::load(&expect_path, GUEST_STEPS)?;
    if let Some(p) = &opts.board_path {
        if !p.starts_with('/') || p.contains(['\n', '\r', '\t']) {
            bail!("--board-path {p:?}: give the module's absolute path on the board, e.g. /mnt/sdcard/mmc_byte.ko");
        }
    }
    if let Some(ko) = &opts.ko {
        if !ko.is_file() {
            bail!("--ko {}: no such file", ko.display());
        }
    }
    let build = opts.ko.is_none() && !(opts.board_path.is_some() && opts.module_name.is_some());
    if build {
        if !opts.module_dir.is_dir() {
            bail!("--module {}: no such directory", opts.module_dir.display());
        }
        module::recipe(&opts.module_dir)?;
    }
    if !opts.serial.exists() {
        bail!("--serial {}: no such device (is the USB serial adapter plugged in?)", opts.serial.display());
    }
    let steps_path = root.join("rootfs").join("steps.sh");
    let steps_sh = std::fs::read(&steps_path).with_context(|| format!("reading {}", steps_path.display()))?;

    let run_dir = crate::run::new_run_dir("replay-")?;

    let local = if let Some(ko) = &opts.ko {
        let info = module::modinfo(ko)?;
        let get = |k: &str| info.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let name = get("name").with_context(|| format!("{}: no name= in .modinfo", ko.display()))?;
        Some(Local { ko: ko.clone(), name, vermagic: get("vermagic").unwrap_or_default() })
    } else if build {
        let configs = root.join("configs");
        let profile = Profile::load(&opts.profile, &configs)?;
        let cross = opts.cross_compile.clone().unwrap_or_else(|| profile.cross_compile.clone());
        let explicit = opts.kernel_src.as_deref().map(|p| Source::resolve(Some(p))).transpose()?;
        crate::run::setup(&cross, explicit.is_none())?;
        let source = match explicit {
            Some(s) => s,
            None => Source::resolve(None)?,
        };
        let kernel = kernel::get(&profile, &BuildOptions { source: &source, cross_compile: &cross, configs_dir: &configs, jobs: opts.jobs })?;
        stages.say("kernel", format!("{} {} ({})", profile.name, kernel.release, kernel.build_dir.display()));
        let m = module::build(&opts.module_dir, &kernel, run_dir.path(), opts.jobs)?;
        for w in &m.modpost_warnings {
            eprintln!("harness: build warning: {w}");
        }
        Some(Local { ko: m.ko, name: m.name, vermagic: m.vermagic })
    } else {
        None
    };
    let name = match (&opts.module_name, &local) {
        (Some(n), _) => n.clone(),
        (None, Some(l)) => l.name.clone(),
        (None, None) => bail!("give --module-name NAME with --board-path when there is no local module"),
    };
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
        bail!("module name {name:?}: only letters, digits, _ and - are possible");
    }
    match &local {
        Some(l) => stages.say("module", format!("{} ({})", l.ko.display(), l.vermagic.trim())),
        None => stages.say("module", format!("{name}, on the board at {}", opts.board_path.as_deref().unwrap_or("?"))),
    }

    let transcript = opts.transcript.clone().unwrap_or_else(|| run_dir.path().join("serial.log"));
    let link = Link::open(&opts.serial, opts.baud, &transcript)?;
    stages.say("serial", format!("{}, recording to {}", link.describe(), transcript.display()));
    let (nonce, seed) = nonce();
    let login = Login { user: opts.user.clone(), password: opts.password.clone() };
    let session = Shell::attach(link, &login, opts.limits.prompt, seed).map(|shell| {
        stages.say("shell", "prompt");
        let mut board = Board { shell, files: Vec::new(), devkmsg: None, loaded: false, responsive: true };
        let ran = run_on_board(&mut board, opts, &stages, &name, local.as_ref(), &steps_sh, &nonce);
        if ran.is_err() {
            // Whatever failed may have left a command running: get the
            // prompt back before cleaning up.
            board.responsive = false;
        }
        let notes = board.restore(&name);
        (ran, notes, board.shell.link.seen)
    });
    // On an error, the serial log (and the module build) are what the user
    // needs to see what happened: the run directory stays if it has them.
    let failed = |e: anyhow::Error, run_dir: tempfile::TempDir| -> anyhow::Error {
        let empty = std::fs::read_dir(run_dir.path()).map(|mut d| d.next().is_none()).unwrap_or(true);
        let kept = if empty { String::new() } else { format!("; run directory {}", run_dir.keep().display()) };
        anyhow::anyhow!("{e:#}\n(the serial session is recorded in {}{kept})", transcript.display())
    };
    let (ran, notes, seen) = match session {
        Ok(x) => x,
        Err(e) => return Err(failed(e, run_dir)),
    };
    for n in &notes {
        eprintln!("harness: {n}");
    }
    let ran = match ran {
        Ok(r) => r,
        Err(e) => return Err(failed(e, run_dir)),
    };

    let ko = local.as_ref().map(|l| l.ko.as_path());
    let verdict = match ran {
        Ran::Finished => {
            let dump = extract_dump(&seen).context("the board's kernel log dump was not found in what it sent")?;
            judge_dump(&dump, Some(&nonce), &expectations, Some(&name), ko, &transcript)?
        }
        Ran::Stopped { end, transcript: live } => {
            let symbols = ko.map(|k| ModuleSymbols::load(k, &name, &live.sections)).transpose()?;
            let ctx = verdict::Context { console_log: transcript.clone(), module: Some(name.clone()), symbols, registers: None };
            verdict::judge(&live, &expectations, end, ctx)
        }
    };
    stages.say("verdict", verdict.outcome);
    let keep = opts.keep || !verdict.passed();
    let kept = keep.then(|| run_dir.keep());
    Ok(ReplayReport { verdict, transcript, run_dir: kept, notes })
}

/// A nonce for the start line, and a seed for the command numbers.
fn nonce() -> (String, u64) {
    use sha2::Digest;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let h = sha2::Sha256::digest(format!("{}:{}:{:?}", now.as_nanos(), std::process::id(), std::thread::current().id()));
    let seed = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
    (h[8..12].iter().map(|b| format!("{b:02x}")).collect(), seed)
}

/// How the steps ended.
enum Ran {
    /// The steps command returned and the kernel log was dumped.
    Finished,
    /// The board stopped answering (a hang, a panic): judged from the
    /// kernel messages its console showed.
    Stopped { end: RunEnd, transcript: Transcript },
}

/// The board, and what the replay changed on it so far.
struct Board {
    shell: Shell,
    /// Files written on the board.
    files: Vec<String>,
    /// `/proc/sys/kernel/printk_devkmsg` before the replay set it to `on`.
    devkmsg: Option<String>,
    /// The steps ran: the module may be loaded.
    loaded: bool,
    /// The shell answers commands.
    responsive: bool,
}

fn run_on_board(
    b: &mut Board,
    opts: &ReplayOptions,
    stages: &Stages,
    name: &str,
    local: Option<&Local>,
    steps_sh: &[u8],
    nonce: &str,
) -> Result<Ran> {
    let release = b.shell.run_ok("uname -r", QUICK)?.trim().to_string();
    stages.say("board", format!("Linux {release}"));
    if let Some(l) = local {
        let built_for = l.vermagic.split_whitespace().next().unwrap_or("");
        if !built_for.is_empty() && built_for != release {
            eprintln!(
                "harness: warning: the module was built for {built_for} but the board runs {release}: insmod will refuse it \
                 (build against the board's kernel; see README, \"On the real board\")"
            );
        }
    }
    // A module of that name already loaded is the user's: insmod would fail
    // and the clean-up would unload it. Refuse instead.
    if b.shell.run(&format!("grep -q '^{name} ' /proc/modules"), QUICK)?.status == 0 {
        bail!("a module named {name} is already loaded on the board: unload it first (rmmod {name})");
    }

    let tools = transfer::detect(&mut b.shell, opts.transfer)?;
    let how = format!(
        "{}, checked with {}",
        match tools.encoding {
            Encoding::Base64 => "base64 -d",
            Encoding::Printf => "printf",
        },
        tools.checksum.command()
    );
    let steps_dest = format!("{BOARD_DIR}/harness-steps.sh");
    b.files.push(steps_dest.clone());
    // Also sent through the checked copy, rather than a heredoc: the line
    // editor and PS2 prompts cannot garble it, and a bad copy is caught.
    transfer::copy(&mut b.shell, steps_sh, &steps_dest, tools)?;
    b.files.push(format!("{BOARD_DIR}/harness-step.out"));
    let ko_path = match &opts.board_path {
        Some(p) => {
            if b.shell.run(&format!("[ -f {} ]", quote(p)), QUICK)?.status != 0 {
                bail!("--board-path {p}: no such file on the board");
            }
            if let Some(l) = local {
                let data = std::fs::read(&l.ko).with_context(|| format!("reading {}", l.ko.display()))?;
                let theirs = transfer::board_sum(&mut b.shell, p, tools.checksum)?;
                if theirs != tools.checksum.local(&data) {
                    eprintln!("harness: warning: {p} on the board differs from {} here", l.ko.display());
                }
            }
            stages.say("copy", format!("steps.sh ({how}); module at {p} on the board"));
            p.clone()
        }
        None => {
            let l = local.context("internal error: no local module to copy")?;
            let data = std::fs::read(&l.ko).with_context(|| format!("reading {}", l.ko.display()))?;
            let dest = format!("{BOARD_DIR}/harness-{name}.ko");
            b.files.push(dest.clone());
            let n = transfer::copy(&mut b.shell, &data, &dest, tools)?;
            stages.say("copy", format!("steps.sh and {} ({} bytes, {n} commands, {how}) to {dest}", l.ko.display(), data.len()));
            dest
        }
    };

    // A 6.x kernel booted without printk.devkmsg=on rate-limits writes to
    // /dev/kmsg (3.5 has no such limit): the step markers would be dropped.
    let devkmsg = b.shell.run("cat /proc/sys/kernel/printk_devkmsg 2>/dev/null", QUICK)?;
    if devkmsg.status == 0 && devkmsg.output.trim() == "ratelimit" {
        if b.shell.run("echo on > /proc/sys/kernel/printk_devkmsg", QUICK)?.status == 0 {
            b.devkmsg = Some("ratelimit".into());
        } else {
            eprintln!("harness: warning: /dev/kmsg is rate-limited on the board and could not be switched off; markers may be lost");
        }
    }

    // In a subshell: the step script's functions and variables do not stay
    // in the user's shell.
    let cmd = format!(
        "( . {steps}; MODULE_KO={ko}; MODULE_NAME={name}; echo {start} > /dev/kmsg; harness_run_steps; echo {done} > /dev/kmsg )",
        steps = quote(&steps_dest),
        ko = quote(&ko_path),
        start = quote(&replay_start_line(nonce, name)),
        done = quote(&done_line()),
    );
    stages.say("steps", format!("insmod, rmmod, gone (start line @@harness replay {nonce})"));
    b.loaded = true;
    let p = b.shell.start(&cmd)?;
    let started = Instant::now();
    let deadline = started + opts.limits.total;
    // Follows the kernel messages the console shows while the steps run,
    // to see a step hang or the kernel panic. (A board whose console log
    // level hides them is still bounded by the total deadline.)
    let mut splitter = LineSplitter::default();
    let mut fed = p.mark;
    let mut live: Option<Transcript> = None;
    let mut step_started: Option<(String, Instant)> = None;
    let mut panicked: Option<Instant> = None;
    let end = loop {
        let polled = b.shell.poll(&p, Duration::from_millis(200));
        if matches!(polled, Ok(Some(_))) {
            break None;
        }
        let now = Instant::now();
        for line in splitter.feed(&b.shell.link.seen[fed..]) {
            if parse_replay_start(&line).is_some_and(|(n, _)| n == nonce) {
                live = Some(Transcript::new());
                continue;
            }
            let Some(t) = live.as_mut() else { continue };
            match t.push(&line) {
                Some(Marker::Begin { step }) => step_started = Some((step, now)),
                Some(Marker::End { .. }) => step_started = None,
                _ => {}
            }
            if panicked.is_none() && classify(split_timestamp(&line).1) == Some(EventKind::Panic) {
                panicked = Some(now);
            }
        }
        fed = b.shell.link.seen.len();
        if let Err(e) = polled {
            // A board that panicked may reboot, or (QEMU with -no-reboot)
            // vanish with its line: the panic is the verdict, not the line.
            if panicked.is_some() {
                break Some(RunEnd::Panicked);
            }
            return Err(e);
        }
        if panicked.is_some_and(|p| now >= p + PANIC_GRACE) {
            break Some(RunEnd::Panicked);
        }
        if let Some((step, at)) = &step_started {
            if now >= *at + opts.limits.step {
                break Some(RunEnd::StepTimedOut { step: step.clone(), after_secs: opts.limits.step.as_secs() });
            }
        }
        if now >= deadline {
            break Some(RunEnd::TimedOut { after_secs: opts.limits.total.as_secs() });
        }
    };
    if let Some(end) = end {
        b.responsive = false;
        return Ok(Ran::Stopped { end, transcript: live.unwrap_or_default() });
    }
    stages.say("dmesg", "reading the kernel log back");
    b.shell.run_ok("echo @@DMESG$((0))@@; dmesg; echo @@DMESGEND$((0))@@", DUMP_TIMEOUT)?;
    Ok(Ran::Finished)
}

impl Board {
    /// Leaves the board as found, as far as it answers; returns what it did
    /// beyond the expected, or could not do.
    fn restore(&mut self, name: &str) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.responsive {
            if !self.shell.recover(Duration::from_secs(10)) {
                notes.push(format!(
                    "the board does not answer since the steps stopped: {name} may still be loaded and {} may remain; reset the board",
                    self.files.join(", ")
                ));
                return notes;
            }
            self.responsive = true;
        }
        let sh = &mut self.shell;
        if self.loaded {
            match sh.run(&format!("grep -q '^{name} ' /proc/modules"), QUICK) {
                Ok(a) if a.status == 0 => {
                    eprintln!("harness: {name} is still loaded after the steps: trying rmmod once more");
                    match sh.run(&format!("rmmod {name} 2>&1"), QUICK) {
                        Ok(a) if a.status == 0 => notes.push(format!("{name} was still loaded after the steps; a second rmmod unloaded it")),
                        Ok(a) => notes.push(format!(
                            "{name} is still loaded: a second rmmod failed too ({}); it stays until the board reboots",
                            a.output.trim()
                        )),
                        Err(e) => notes.push(format!("could not unload {name}: {e:#}")),
                    }
                }
                Ok(_) => {}
                Err(e) => notes.push(format!("could not check whether {name} is still loaded: {e:#}")),
            }
        }
        if !self.files.is_empty() {
            let words: Vec<String> = self.files.iter().map(|f| quote(f)).collect();
            match sh.run(&format!("rm -f {}", words.join(" ")), QUICK) {
                Ok(a) if a.status == 0 => {}
                Ok(a) => notes.push(format!("could not remove {} on the board: {}", self.files.join(", "), a.output.trim())),
                Err(e) => notes.push(format!("could not remove {} on the board: {e:#}", self.files.join(", "))),
            }
        }
        if let Some(old) = &self.devkmsg {
            if let Err(e) = sh.run_ok(&format!("echo {old} > /proc/sys/kernel/printk_devkmsg"), QUICK) {
                notes.push(format!("could not set /proc/sys/kernel/printk_devkmsg back to {old}: {e:#}"));
            }
        }
        notes
    }
}

/// The kernel log lines of the last complete dump in a raw serial session:
/// those between a `@@DMESG0@@` line and the next `@@DMESGEND0@@` line.
pub fn extract_dump(raw: &[u8]) -> Option<Vec<String>> {
    let mut s = LineSplitter::default();
    let mut lines = s.feed(raw);
    lines.extend(s.finish());
    let end = lines.iter().rposition(|l| l.contains(DUMP_END))?;
    let begin = lines[..end].iter().rposition(|l| l.contains(DUMP_BEGIN))?;
    Some(lines[begin + 1..end].to_vec())
}

/// Judges a replay's kernel log dump: the lines after its start line (the
/// last one, or the one with `nonce`), through the same verdict as `check`.
pub fn judge_dump(
    dump: &[String],
    nonce: Option<&str>,
    expectations: &Expectations,
    module: Option<&str>,
    ko: Option<&Path>,
    log: &Path,
) -> Result<Verdict> {
    let Some(at) = dump.iter().rposition(|l| parse_replay_start(l).is_some()) else {
        bail!(
            "the kernel log dump has no `@@harness replay` start line: the board's log buffer dropped it (a small \
             log_buf_len and a chatty module), or the dump is not from a replay"
        );
    };
    let (found, named) = parse_replay_start(&dump[at]).expect("found above");
    if let Some(n) = nonce {
        if found != n {
            bail!("the last replay start line in the kernel log is {found}, not this replay's {n}: did another replay run at the same time?");
        }
    }
    let mut t = Transcript::new();
    for l in &dump[at + 1..] {
        t.push(l);
    }
    let module = module.map(str::to_string).or(named);
    let symbols = match (ko, &module) {
        (Some(ko), Some(m)) => Some(ModuleSymbols::load(ko, m, &t.sections)?),
        _ => None,
    };
    let end = if t.done {
        RunEnd::Completed
    } else if t.lines.iter().any(|l| classify(&l.message) == Some(EventKind::Panic)) {
        RunEnd::Panicked
    } else {
        // The step script stopped without saying done (its shell was killed).
        RunEnd::ExitedEarly { status: None }
    };
    let ctx = verdict::Context { console_log: log.to_path_buf(), module, symbols, registers: None };
    Ok(verdict::judge(&t, expectations, end, ctx))
}

#[derive(Debug, Clone)]
pub struct RecheckOptions {
    pub transcript: PathBuf,
    pub expect: Option<PathBuf>,
    /// Where `expect.toml` is when `expect` is not given.
    pub module_dir: PathBuf,
    pub module_name: Option<String>,
    /// The module, to name addresses in reports.
    pub ko: Option<PathBuf>,
}

/// Judges a saved serial transcript again, offline.
pub fn recheck(o: &RecheckOptions) -> Result<Verdict> {
    let expect_path = o.expect.clone().unwrap_or_else(|| o.module_dir.join("expect.toml"));
    if !expect_path.is_file() {
        bail!("no expectations file at {}: pass --expect FILE or --module DIR with an expect.toml", expect_path.display());
    }
    let expectations = Expectations::load(&expect_path, GUEST_STEPS)?;
    let raw = std::fs::read(&o.transcript).with_context(|| format!("reading the transcript {}", o.transcript.display()))?;
    let name = match (&o.module_name, &o.ko) {
        (Some(n), _) => Some(n.clone()),
        (None, Some(ko)) => module::modinfo(ko)?.into_iter().find(|(k, _)| k == "name").map(|(_, v)| v),
        (None, None) => None,
    };
    let dump = extract_dump(&raw).with_context(|| {
        format!(
            "{}: no complete kernel log dump ({DUMP_BEGIN} … {DUMP_END}) in it: the replay stopped before the steps \
             finished, so only its live verdict exists",
            o.transcript.display()
        )
    })?;
    judge_dump(&dump, None, &expectations, name.as_deref(), o.ko.as_deref(), &o.transcript)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Outcome;

    fn exp() -> Expectations {
        Expectations::load(&crate::repo_root().join("kmod/expect.toml"), GUEST_STEPS).unwrap()
    }

    const DUMP: &str = "[    0.000000] Booting Linux\r\n\
        [   10.000000] @@harness replay 0badcafe mmc_byte\r\n\
        [   10.100000] @@harness begin insmod\r\n\
        [   10.100000] process:insmod\r\n\
        [   10.200000] @@harness end insmod rc=0\r\n\
        [   10.300000] @@harness begin rmmod\r\n\
        [   10.300000] mmc exit!\r\n\
        [   10.400000] @@harness end rmmod rc=0\r\n\
        [   10.500000] @@harness begin gone\r\n\
        [   10.600000] @@harness end gone rc=0\r\n\
        [   10.700000] @@harness done\r\n";

    /// A session as the serial line carries it: the echo of the command
    /// (with `$((0))`), the dump, and console noise around it.
    fn session(dump: &str) -> Vec<u8> {
        let earlier = DUMP.replace("0badcafe", "0ldrun00").replace("process:insmod", "process:old");
        format!(
            "[root@FriendlyARM /]# echo @@B$((77+0))@@; echo @@DMESG$((0))@@; dmesg; echo @@DMESGEND$((0))@@; echo @@E$((77+0)):$?@@\r\n\
             @@B77@@\r\n@@DMESG0@@\r\n{earlier}@@DMESGEND0@@\r\n@@E77:0@@\r\n\
             [root@FriendlyARM /]# echo @@B$((78+0))@@; echo @@DMESG$((0))@@; dmesg; echo @@DMESGEND$((0))@@; echo @@E$((78+0)):$?@@\r\n\
             @@B78@@\r\n@@DMESG0@@\r\n{dump}@@DMESGEND0@@\r\n@@E78:0@@\r\n[root@FriendlyARM /]# "
        )
        .into_bytes()
    }

    #[test]
    fn the_last_complete_dump_is_extracted() {
        let lines = extract_dump(&session(DUMP)).unwrap();
        assert_eq!(lines.first().map(String::as_str), Some("[    0.000000] Booting Linux"));
        assert_eq!(lines.last().map(String::as_str), Some("[   10.700000] @@harness done"));
        assert!(lines.iter().all(|l| !l.contains('\r')));
        assert!(lines.iter().any(|l| l.contains("0badcafe")));
        // A dump cut short (the replay stopped) is not taken; the earlier
        // complete one is.
        let mut cut = session(DUMP);
        cut.extend_from_slice(b"@@DMESG0@@\r\n[ 1.0] partial\r\n");
        assert!(extract_dump(&cut).unwrap().iter().any(|l| l.contains("0badcafe")));
        // The echo of the command is not a dump.
        assert_eq!(extract_dump(b"# echo @@DMESG$((0))@@; dmesg; echo @@DMESGEND$((0))@@\r\n"), None);
    }

    #[test]
    fn a_dump_is_judged_from_its_last_start_line() {
        let dump = extract_dump(&session(DUMP)).unwrap();
        let v = judge_dump(&dump, Some("0badcafe"), &exp(), None, None, Path::new("t.log")).unwrap();
        assert_eq!(v.outcome, Outcome::Passed, "{v}");
        assert_eq!(v.end, RunEnd::Completed);
        assert_eq!(v.steps.len(), 3);
        let err = judge_dump(&dump, Some("feedf00d"), &exp(), None, None, Path::new("t.log")).unwrap_err().to_string();
        assert!(err.contains("not this replay's feedf00d"), "{err}");
        // Lines from before the start (an earlier run) are not the replay's.
        let bad = DUMP.replace("[    0.000000] Booting Linux", "[ 0.0] process:insmod\r\n[ 0.1] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x4");
        let v = judge_dump(&extract_dump(&session(&bad)).unwrap(), None, &exp(), None, None, Path::new("t.log")).unwrap();
        assert_eq!(v.outcome, Outcome::Passed, "{v}");
    }

    #[test]
    fn a_dump_without_its_start_line_is_an_error_and_a_bad_one_fails() {
        let no_start = DUMP.replace("@@harness replay 0badcafe mmc_byte", "something");
        let dump = extract_dump(&session(&no_start)).unwrap();
        let err = judge_dump(&dump, None, &exp(), None, None, Path::new("t.log")).unwrap_err().to_string();
        assert!(err.contains("no `@@harness replay` start line"), "{err}");
        let failing = DUMP.replace("mmc exit!", "mmc bye");
        let v = judge_dump(&extract_dump(&session(&failing)).unwrap(), None, &exp(), None, None, Path::new("t.log")).unwrap();
        assert_eq!(v.outcome, Outcome::Failed, "{v}");
        assert!(v.to_string().contains("console log: t.log"));
    }

    #[test]
    fn recheck_reads_a_transcript_file() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("board.log");
        std::fs::write(&t, session(DUMP)).unwrap();
        let o = RecheckOptions {
            transcript: t.clone(),
            expect: None,
            module_dir: crate::repo_root().join("kmod"),
            module_name: None,
            ko: None,
        };
        let v = recheck(&o).unwrap();
        assert_eq!(v.outcome, Outcome::Passed, "{v}");
        std::fs::write(&t, b"[root@FriendlyARM /]# \r\n").unwrap();
        let err = format!("{:#}", recheck(&o).unwrap_err());
        assert!(err.contains("no complete kernel log dump"), "{err}");
    }

    #[test]
    fn nonces_differ() {
        let (a, _) = nonce();
        std::thread::sleep(Duration::from_millis(1));
        let (b, _) = nonce();
        assert_eq!(a.len(), 8);
        assert_ne!(a, b);
    }
}
