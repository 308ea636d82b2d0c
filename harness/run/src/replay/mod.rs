//! `replay`: the check's steps on a real board, over its serial console, and
//! `recheck`: the verdict again from a saved serial transcript.
//!
//! The replay gets a shell on the console ([`shell`]), copies
//! `rootfs/steps.sh` and the module over it ([`transfer`]), writes a start
//! line with a fresh nonce to `/dev/kmsg`, runs the same generated scenario
//! (`harness_scenario`) as the QEMU guest's `/init`, and dumps `dmesg` framed by `@@DMESG0@@` /
//! `@@DMESGEND0@@`. The kernel log lines after the start line are the
//! transcript, judged by [`crate::judge::verdict::judge`] exactly as a QEMU run's
//! console is. The live verdict is computed from the recorded serial bytes
//! by the same function `recheck` uses, so both give the same answer.
//!
//! The board is left as found: the module unloaded (a failed rmmod is tried
//! once more), the files the replay wrote removed, `/dev/kmsg`'s rate limit
//! restored; the kernel log is never cleared.

pub mod attach;
mod board_changes;
pub mod link;
pub mod recheck;
pub mod shell;
pub mod transfer;
pub mod vermagic;

use board_changes::ReplayedBoard;
pub use recheck::{extract_dump, judge_dump, judge_transcript, recheck, RecheckOptions};

use crate::judge::expect::Expectations;
use crate::judge::gcov::Coverage;
use crate::judge::report::Report;
use crate::judge::step::Transcript;
use crate::judge::verdict::{self, RunEnd, Verdict};
use crate::judge::watch::{self, Limits, Watch};
use crate::module;
use crate::options::{BuildArgs, KernelArgs, ModuleArgs, OutputArgs};
use crate::plan::{self, quote, Plan, PlanModule};
use crate::prepare::{self, Stages};
use crate::program::Program;
use crate::supervisor::{self, DriveEnd, LineSource, Next};
use anyhow::{bail, Context, Result};
use link::{Lines, Link};
use shell::{BoardShell, Login};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use transfer::Encoding;

/// Where the replay's files go on the board; all named `harness-*`.
const BOARD_DIR: &str = "/tmp";
/// The programs' directory on the board, put first on PATH for the steps.
const BOARD_BIN: &str = "/tmp/harness-bin";
/// The sentinels around the kernel log dump. `echo @@DMESG$((0))@@` prints
/// `@@DMESG0@@`, while the tty's echo of the command shows `$((0))`: only
/// the real dump is found in a raw transcript.
const DUMP_BEGIN: &str = "@@DMESG0@@";
const DUMP_END: &str = "@@DMESGEND0@@";
/// Short housekeeping commands (uname, grep, rm).
const QUICK: Duration = Duration::from_secs(20);
/// Reading back the kernel log: a 1 MiB ring buffer takes 90 s at 115200 baud.
const DUMP_TIMEOUT: Duration = Duration::from_secs(180);

/// The replay's defaults, each written once (the flags and
/// [`ReplayOptions::new`] read them).
pub const DEFAULT_BAUD: u32 = 115200;
pub const DEFAULT_USER: &str = "root";
pub const DEFAULT_PROMPT_SECS: u64 = 60;
pub const DEFAULT_PRESS_SECS: u64 = 20;

/// `replay`: the check's steps on a real board, over its serial console.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplayOptions {
    /// The serial device on the board's console, e.g. /dev/ttyUSB0.
    #[arg(long, value_name = "DEVICE")]
    pub serial: PathBuf,
    /// The console's baud rate (the Tiny4412's U-Boot and kernel use 115200).
    #[arg(long, default_value_t = DEFAULT_BAUD)]
    pub baud: u32,
    /// The profile whose kernel --module is built against [default: the
    /// board's kernel_profile, tiny4412: the kernel board-image writes].
    #[arg(long)]
    pub profile: Option<String>,
    #[command(flatten)]
    pub build: BuildArgs,
    #[command(flatten)]
    pub module: ModuleArgs,
    /// A module built already (e.g. against the vendor kernel), instead of
    /// building --module; may be given more than once (load order).
    #[arg(long, value_name = "FILE")]
    pub ko: Vec<PathBuf>,
    /// The module is on the board already (SD card, NFS) at this path: nothing is copied.
    #[arg(long, value_name = "PATH")]
    pub board_path: Option<String>,
    /// The module's name, with --board-path when there is no local module (nothing is built then).
    #[arg(long, value_name = "NAME")]
    pub module_name: Option<String>,
    /// The user to log in as, if the board asks.
    #[arg(long = "login", default_value = DEFAULT_USER, value_name = "USER")]
    pub user: String,
    /// The password, if the board asks for one.
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// How to copy files over the console [default: base64 if the board has it, else printf].
    #[arg(long, value_enum)]
    pub transfer: Option<Encoding>,
    /// Record the whole serial session (every byte received) to FILE, for `recheck`.
    #[arg(long, value_name = "FILE")]
    pub transcript: Option<PathBuf>,
    /// Nobody is at the board: steps that ask a person to act (press,
    /// release, click, adc) are skipped, and say so.
    #[arg(long)]
    pub unattended: bool,
    /// The seconds a person has for each action a step asks at the board.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_PRESS_SECS)]
    pub press_within: u64,
    #[command(flatten)]
    pub limits: ReplayLimits,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl ReplayOptions {
    /// The kernel to build against: `--profile`, else the default board's
    /// (a module built for the emulated board's kernel has another vermagic
    /// than the board's, and would not load there).
    pub fn kernel(&self) -> Result<KernelArgs> {
        let profile = match &self.profile {
            Some(p) => p.clone(),
            None => {
                let configs = crate::repo_root().join("configs");
                crate::real_board::Board::load(&crate::real_board::Board::default_name(&configs)?, None, &configs)?
                    .0
                    .kernel_profile
            }
        };
        Ok(KernelArgs { profile, build: self.build.clone() })
    }

    pub fn new(serial: PathBuf) -> ReplayOptions {
        ReplayOptions {
            serial,
            baud: DEFAULT_BAUD,
            profile: None,
            build: BuildArgs::default(),
            module: ModuleArgs::default(),
            ko: Vec::new(),
            board_path: None,
            module_name: None,
            user: DEFAULT_USER.into(),
            password: None,
            transfer: None,
            transcript: None,
            unattended: false,
            press_within: DEFAULT_PRESS_SECS,
            limits: ReplayLimits::default(),
            output: OutputArgs::default(),
        }
    }
}

/// The deadlines of a replay, in seconds.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct ReplayLimits {
    /// Give up when no shell prompt answers within this long.
    #[arg(long = "prompt-timeout", value_name = "SECS", default_value_t = DEFAULT_PROMPT_SECS)]
    pub prompt: u64,
    /// Give up when one step (insmod, a command, rmmod, …) runs longer than this.
    #[arg(long = "step-timeout", value_name = "SECS", default_value_t = watch::DEFAULT_STEP)]
    pub step: u64,
    /// Give up when the steps together run longer than this (TIMED-OUT).
    #[arg(long = "timeout", value_name = "SECS", default_value_t = watch::DEFAULT_TOTAL)]
    pub total: u64,
}

impl Default for ReplayLimits {
    fn default() -> Self {
        ReplayLimits { prompt: DEFAULT_PROMPT_SECS, step: watch::DEFAULT_STEP, total: watch::DEFAULT_TOTAL }
    }
}

impl ReplayLimits {
    /// The watch's limits: a board's console may stay quiet for long (its log
    /// level may hide printk), so silence is bounded by the total only.
    fn watch(&self) -> Limits {
        let total = Duration::from_secs(self.total);
        Limits { total, step: Duration::from_secs(self.step), silence: total, start: None }
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

/// A module as the harness has it locally (or only its name, when it is on
/// the board already).
struct Local {
    ko: Option<PathBuf>,
    name: String,
    vermagic: String,
}

/// What the replay loads and runs.
struct Scenario {
    modules: Vec<Local>,
    programs: Vec<Program>,
    expectations: Expectations,
    plan: Plan,
    /// The module API it was built for, and the port list (none for a
    /// module given as a .ko or on the board: it was not built here).
    api: crate::api::Api,
    ports: Vec<crate::changes::Port>,
    /// The module folder whose expectations these are (absolute), said in
    /// the transcript for `recheck`.
    dir: Option<PathBuf>,
    /// `--coverage` with a profile whose kernel has gcov: the modules were
    /// built with it, and the board's counters are read with their notes.
    gcov: Option<GcovBuilt>,
}

/// The modules as built with gcov, and the compiler prefix whose gcov
/// reads their counters.
struct GcovBuilt {
    modules: Vec<module::Module>,
    cross: String,
}

/// The modules and programs of the replay: built like `check`'s (the same
/// `prepare`), taken from --ko, or named with --board-path. With
/// `--coverage` the module is built with gcov when the profile's kernel has
/// it (a board booted with `board-image --profile exynos4210` runs such a
/// kernel), else as usual (FriendlyARM's 3.5 and the tiny4412 profile have
/// none); the board is asked for its counters either way (docs/coverage.md).
fn scenario(opts: &ReplayOptions, stages: &Stages) -> Result<(Scenario, tempfile::TempDir)> {
    if let Some(p) = &opts.board_path {
        if !p.starts_with('/') || p.contains(['\n', '\r', '\t', '\'']) {
            bail!("--board-path {p:?}: give the module's absolute path on the board, e.g. /mnt/sdcard/mmc_byte.ko");
        }
    }
    for ko in &opts.ko {
        if !ko.is_file() {
            bail!("--ko {}: no such file", ko.display());
        }
    }
    let build = opts.ko.is_empty() && !(opts.board_path.is_some() && opts.module_name.is_some());
    if !opts.serial.exists() {
        bail!("--serial {}: no such device (is the USB serial adapter plugged in?)", opts.serial.display());
    }
    if build {
        return built_scenario(opts, stages);
    }
    let (expectations, _) = prepare::validate(&opts.module)?;
    if !expectations.programs.is_empty() {
        bail!("programs are built from --module DIR; with --ko or --board-path give them no `programs` (or build)");
    }
    let run_dir = prepare::new_run_dir("replay-")?;
    let modules: Vec<Local> = if opts.ko.is_empty() {
        vec![Local { ko: None, name: opts.module_name.clone().unwrap_or_default(), vermagic: String::new() }]
    } else {
        opts.ko
            .iter()
            .map(|ko| {
                let info = module::modinfo(ko)?;
                Ok(Local {
                    ko: Some(ko.clone()),
                    name: info.name()?,
                    vermagic: info.get("vermagic").unwrap_or_default().to_string(),
                })
            })
            .collect::<Result<_>>()?
    };
    if opts.board_path.is_some() && modules.len() != 1 {
        bail!("--board-path names one module on the board; give one --ko (or none, with --module-name)");
    }
    let names: Vec<String> = modules.iter().map(|m| m.name.clone()).collect();
    let mut plan = plan::plan(&board_modules(&names, opts.board_path.as_deref()), &expectations)?;
    // Built elsewhere, it has no notes here; the board is asked all the
    // same, and its answer (no gcov, or counters without notes) said.
    plan.coverage = opts.module.coverage;
    let dir = std::fs::canonicalize(opts.module.module_dir()).ok();
    Ok((
        Scenario {
            modules,
            programs: Vec::new(),
            expectations,
            plan,
            api: crate::api::Api::Native,
            ports: Vec::new(),
            dir,
            gcov: None,
        },
        run_dir,
    ))
}

/// The scenario of a module folder built here, like `check`'s (the same
/// `prepare`); with gcov when `--coverage` and the profile's kernel has it.
fn built_scenario(opts: &ReplayOptions, stages: &Stages) -> Result<(Scenario, tempfile::TempDir)> {
    let kernel = opts.kernel()?;
    let configs = crate::repo_root().join("configs");
    let gcov = opts.module.coverage && prepare::builds_gcov(&crate::profile::Profile::load(&kernel.profile, &configs)?);
    let mut p = prepare::prepare(&kernel, &ModuleArgs { coverage: gcov, ..opts.module.clone() }, stages)?;
    p.single()?;
    let u = p.units.remove(0);
    let gcov = gcov.then(|| GcovBuilt { modules: u.modules.clone(), cross: p.kernel.cross_compile.clone() });
    let modules = u
        .modules
        .iter()
        .map(|m| Local { ko: Some(m.ko.clone()), name: m.name.clone(), vermagic: m.vermagic.clone() })
        .collect();
    // The same steps as the guest's, with the modules where the board has them.
    let names: Vec<String> = u.modules.iter().map(|m| m.name.clone()).collect();
    let mut plan = plan::plan(&board_modules(&names, opts.board_path.as_deref()), &u.expectations)?;
    plan.coverage = opts.module.coverage;
    let dir = std::fs::canonicalize(opts.module.module_dir()).ok();
    let s = Scenario {
        modules,
        programs: u.programs,
        expectations: u.expectations,
        plan,
        api: u.api,
        ports: u.ports,
        dir,
        gcov,
    };
    Ok((s, p.run_dir))
}

/// The modules as the plan sees them on the board.
fn board_modules(names: &[String], board_path: Option<&str>) -> Vec<PlanModule> {
    names
        .iter()
        .map(|n| PlanModule {
            name: n.clone(),
            file: board_path.map(str::to_string).unwrap_or_else(|| format!("harness-{n}.ko")),
        })
        .collect()
}

/// Runs the steps on the board at `opts.serial`. `Err` means the replay could
/// not be carried out (bad input, no shell, a failed copy); a verdict,
/// passing or not, is `Ok`.
pub fn replay(opts: &ReplayOptions) -> Result<ReplayReport> {
    let stages = Stages::new();
    let steps_path = crate::repo_root().join("rootfs").join("steps.sh");
    let steps_sh = std::fs::read(&steps_path).with_context(|| format!("reading {}", steps_path.display()))?;
    let (sc, run_dir) = scenario(opts, &stages)?;
    check_module_names(&sc, opts, &stages)?;

    let transcript = opts.transcript.clone().unwrap_or_else(|| run_dir.path().join("serial.log"));
    let link = Link::open(&opts.serial, opts.baud, &transcript)?;
    stages.say("serial", format!("{}, recording to {}", link.describe(), transcript.display()));
    let nonce = prepare::new_nonce();
    let seed = u64::from_str_radix(&nonce[..12], 16).unwrap_or(0);
    let login = Login { user: opts.user.clone(), password: opts.password.clone() };
    let session = BoardShell::attach(link, &login, Duration::from_secs(opts.limits.prompt), seed).map(|shell| {
        stages.say("shell", "prompt");
        let mut board = ReplayedBoard::new(shell);
        let ran = run_on_board(&mut board, opts, &stages, &sc, &steps_sh, &nonce);
        if ran.is_err() {
            // Whatever failed may have left a command running: get the
            // prompt back before cleaning up.
            board.responsive = false;
        }
        let notes = board.restore();
        (ran, notes, board.shell.link.since(0).to_vec())
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

    let kos: Vec<(String, PathBuf)> = sc.modules.iter().filter_map(|m| Some((m.name.clone(), m.ko.clone()?))).collect();
    let names: Vec<String> = sc.modules.iter().map(|m| m.name.clone()).collect();
    // The judged transcript, for the page; `seen` stays the board's bytes.
    let (mut verdict, judged) = match ran {
        Ran::Finished => {
            let dump = extract_dump(&seen).context("the board's kernel log dump was not found in what it sent")?;
            judge_dump(&dump, Some(&nonce), &sc.expectations, &names, &kos, &transcript)?
        }
        Ran::Stopped { end, transcript: live } => {
            // Beside the session, for `recheck`: the board's bytes cannot say how it ended.
            let lines = live.seen();
            recheck::Stopped { nonce: nonce.clone(), names: names.clone(), end: end.clone(), lines }
                .write(&transcript)?;
            (judge_transcript(&live, end, &sc.expectations, &names, &kos, &transcript)?, *live)
        }
    };
    // What the layer gave back is known from the build, not the board.
    verdict.api = sc.api.to_string();
    verdict.ports = sc.ports.clone();
    let label = names.join(", ");
    if opts.module.coverage {
        verdict.coverage = Some(board_coverage(&sc, &seen, &nonce, run_dir.path(), &label));
    }
    stages.say("verdict", verdict.outcome);
    let timings = stages.timings();
    let report = Report { profile: "board", module: &label, kernel_release: "", timings: &timings, verdict: &verdict };
    crate::check::write_reports(&opts.output, &[report])?;
    write_page(run_dir.path(), &label, &verdict, &judged, &sc)?;
    // A coverage.info is kept for genhtml and editors, as check's is.
    let covered = verdict.coverage.as_ref().is_some_and(|c| c.info.is_some());
    let keep = opts.output.keep || !verdict.passed() || covered;
    let kept = keep.then(|| run_dir.keep());
    Ok(ReplayReport { verdict, transcript, run_dir: kept, notes })
}

/// `--coverage`'s result: the counters in the board's kernel log dump,
/// read with the modules' notes when they were built here with gcov, or
/// what is missing said plainly (coverage.rs).
fn board_coverage(sc: &Scenario, seen: &[u8], nonce: &str, run_dir: &Path, label: &str) -> Coverage {
    let dump = extract_dump(seen).unwrap_or_default().join("\n");
    let built = sc.gcov.as_ref().map(|g| crate::coverage::BoardGcovBuild {
        modules: &g.modules,
        run_dir,
        cross: &g.cross,
        name: label,
    });
    crate::coverage::board(&Transcript::from_log(&dump, nonce), built.as_ref())
}

/// The replay's page, report.html in its run directory (the module folder's
/// sources beside its verdict, when it was built here).
fn write_page(run_dir: &Path, label: &str, verdict: &Verdict, seen: &Transcript, sc: &Scenario) -> Result<()> {
    let unit = crate::html::UnitForPage {
        label: "",
        verdict,
        transcript: Some(seen),
        expectations: Some(&sc.expectations),
        dirs: sc.dir.iter().cloned().collect(),
    };
    crate::html::write(run_dir, &crate::html::Run { title: label, profile: "board", kernel_release: "" }, &[unit])?;
    Ok(())
}

/// The modules' names are words the board's shell takes as they are; a
/// module already on the board is said where it is.
fn check_module_names(sc: &Scenario, opts: &ReplayOptions, stages: &Stages) -> Result<()> {
    for m in &sc.modules {
        if m.name.is_empty() || !m.name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
            bail!(
                "module name {:?}: only letters, digits, _ and - are possible (give --module-name with --board-path)",
                m.name
            );
        }
    }
    if sc.modules.iter().all(|m| m.ko.is_none()) {
        stages.say(
            "module",
            format!("{}, on the board at {}", sc.modules[0].name, opts.board_path.as_deref().unwrap_or("?")),
        );
    }
    Ok(())
}

/// The judge's context: the modules, and their symbols where the .ko is here.
fn context(log: &Path, names: &[String], kos: &[(String, PathBuf)], t: &Transcript) -> Result<verdict::Context> {
    let symbols = kos.iter().map(|(name, ko)| module::symbols(ko, name, t, None)).collect::<Result<Vec<_>>>()?;
    Ok(verdict::Context { modules: names.to_vec(), symbols, ..verdict::Context::new(log.to_path_buf()) })
}

/// How the steps ended.
enum Ran {
    /// The steps command returned and the kernel log was dumped.
    Finished,
    /// The board stopped answering (a hang, a panic): judged from the
    /// kernel messages its console showed.
    Stopped { end: RunEnd, transcript: Box<Transcript> },
}

fn run_on_board(
    b: &mut ReplayedBoard,
    opts: &ReplayOptions,
    stages: &Stages,
    sc: &Scenario,
    steps_sh: &[u8],
    nonce: &str,
) -> Result<Ran> {
    check_board(b, sc, stages)?;
    let tools = transfer::detect(&mut b.shell, opts.transfer)?;
    let how = tools.describe();
    let (steps_dest, scenario_dest, copied) = copy_files(b, opts, sc, steps_sh, tools)?;
    stages.say("copy", format!("steps.sh, scenario, {} ({how})", copied.join(", ")));
    unlimit_devkmsg(b)?;

    let names: Vec<String> = sc.modules.iter().map(|m| m.name.clone()).collect();
    // In a subshell: the step script's functions and variables do not stay
    // in the user's shell. The start marker names the modules, so that
    // `recheck` can plan the same steps from a transcript.
    // A board step asks the person at the board (steps.sh's
    // harness_person), or skips when nobody is there.
    let person = format!(
        "HARNESS_PERSON=1; HARNESS_PRESS_WITHIN={}; {}",
        opts.press_within,
        if opts.unattended { "HARNESS_UNATTENDED=1; " } else { "" }
    );
    let cmd = format!(
        "( HARNESS_NONCE={nonce}; HARNESS_TMP={BOARD_DIR}; PATH={BOARD_BIN}:$PATH; {person}. {steps}; . {scenario}; \
            harness_mark start {label}; harness_build; harness_scenario )",
        steps = quote(&steps_dest),
        scenario = quote(&scenario_dest),
        label = names.join(","),
    );
    let physical: Vec<String> = sc
        .plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, crate::plan::Action::Board { .. }))
        .map(|s| s.name.clone())
        .collect();
    if !physical.is_empty() {
        stages.say(
            "person",
            if opts.unattended {
                format!("--unattended: the steps that need a person at the board are skipped: {}", physical.join(", "))
            } else {
                format!(
                    "steps {} ask the person at the board to act, {} s each",
                    physical.join(", "),
                    opts.press_within
                )
            },
        );
    }
    stages.say("steps", format!("{} (start marker @@harness {nonce} start)", sc.plan.names().join(", ")));
    b.loaded = names;
    let p = b.shell.start(&cmd)?;
    let end = watch_steps(b, &p, nonce, opts)?;
    if let Some((end, transcript)) = end {
        b.responsive = false;
        b.reset = end == RunEnd::Reset;
        return Ok(Ran::Stopped { end, transcript: Box::new(transcript) });
    }
    stages.say("dmesg", "reading the kernel log back");
    b.shell.run_ok("echo @@DMESG$((0))@@; dmesg; echo @@DMESGEND$((0))@@", DUMP_TIMEOUT)?;
    Ok(Ran::Finished)
}

/// The board's kernel against the modules' (vermagic.rs): a module that
/// cannot load there is refused before the first step, in one line, with
/// what would load; a module of the same name already loaded is refused
/// (it is the user's).
fn check_board(b: &mut ReplayedBoard, sc: &Scenario, stages: &Stages) -> Result<()> {
    let uname = b.shell.run_ok("uname -r -v", QUICK)?;
    let kernel = vermagic::BoardKernel::parse(&uname)
        .with_context(|| format!("the board's `uname -r -v` said {:?}, not a release and a version", uname.trim()))?;
    stages.say("board", format!("Linux {} {}", kernel.release, kernel.version));
    // Which of the stock image's drivers the board runs (their /dev names
    // in /proc/misc), against what the expectations assumed.
    let misc = b.shell.run("cat /proc/misc", QUICK)?.output;
    stages.say("stock", crate::judge::stock::on_board(&misc, sc.expectations.stock_drivers));
    for l in &sc.modules {
        if let Some(why) = vermagic::refusal(&kernel, &l.vermagic) {
            bail!(
                "{} cannot load on this board: {why}, and insmod would refuse it (\"invalid module format\"); {}",
                l.name,
                vermagic::advice(&kernel, &vermagic::cached())
            );
        }
        // A module of that name already loaded is the user's: insmod would
        // fail and the clean-up would unload it. Refuse instead.
        if b.shell.run(&format!("grep -q '^{} ' /proc/modules", l.name), QUICK)?.status == 0 {
            bail!("a module named {0} is already loaded on the board: unload it first (rmmod {0})", l.name);
        }
    }
    Ok(())
}

/// Copies the step library, the scenario, the modules (unless on the board
/// already) and the programs; returns where the first two went and what
/// was copied, for the message.
fn copy_files(
    b: &mut ReplayedBoard,
    opts: &ReplayOptions,
    sc: &Scenario,
    steps_sh: &[u8],
    tools: transfer::Tools,
) -> Result<(String, String, Vec<String>)> {
    // Sent through the checked copy, rather than a heredoc: the line editor
    // and PS2 prompts cannot garble them, and a bad copy is caught.
    let steps_dest = format!("{BOARD_DIR}/harness-steps.sh");
    b.files.push(steps_dest.clone());
    transfer::copy(&mut b.shell, steps_sh, &steps_dest, tools)?;
    let scenario_dest = format!("{BOARD_DIR}/harness-scenario.sh");
    b.files.push(scenario_dest.clone());
    let scenario = plan::script(&sc.plan, BOARD_DIR) + &build_markers(sc);
    transfer::copy(&mut b.shell, scenario.as_bytes(), &scenario_dest, tools)?;
    b.files.push(format!("{BOARD_DIR}/harness-step.out"));
    // The census's lists (steps.sh, harness_census).
    b.files.push(format!("{BOARD_DIR}/harness-census"));
    // A background step's output and pid (steps.sh, harness_start): a
    // replay of a lesson whose app runs in the background left both.
    for st in sc.plan.steps.iter().filter(|s| matches!(s.action, plan::Action::Run { background: true, .. })) {
        let key = plan::background_key(&st.id());
        b.files.extend(["out", "pid"].map(|ext| format!("{BOARD_DIR}/harness-bg.{key}.{ext}")));
    }
    let mut copied = Vec::new();
    match &opts.board_path {
        Some(p) => {
            if b.shell.run(&format!("[ -f {} ]", quote(p)), QUICK)?.status != 0 {
                bail!("--board-path {p}: no such file on the board");
            }
            if let Some(ko) = sc.modules.first().and_then(|m| m.ko.as_ref()) {
                let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
                let theirs = transfer::board_sum(&mut b.shell, p, tools.checksum)?;
                if theirs != tools.checksum.local(&data) {
                    eprintln!("harness: warning: {p} on the board differs from {} here", ko.display());
                }
            }
            copied.push(format!("module at {p} on the board"));
        }
        None => {
            for m in &sc.modules {
                let ko = m.ko.as_ref().context("internal error: no local module to copy")?;
                let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
                let dest = format!("{BOARD_DIR}/harness-{}.ko", m.name);
                b.files.push(dest.clone());
                let n = transfer::copy(&mut b.shell, &data, &dest, tools)?;
                copied.push(format!("{} ({} bytes, {n} commands)", ko.display(), data.len()));
            }
        }
    }
    if !sc.programs.is_empty() {
        b.shell.run_ok(&format!("mkdir -p {BOARD_BIN}"), QUICK)?;
        b.files.push(BOARD_BIN.into());
        for p in &sc.programs {
            let data = std::fs::read(&p.path).with_context(|| format!("reading {}", p.path.display()))?;
            let dest = format!("{BOARD_BIN}/{}", p.name);
            let n = transfer::copy(&mut b.shell, &data, &dest, tools)?;
            b.shell.run_ok(&format!("chmod 755 {}", quote(&dest)), QUICK)?;
            copied.push(format!("{} ({} bytes, {n} commands)", p.name, data.len()));
        }
    }
    Ok((steps_dest, scenario_dest, copied))
}

/// `harness_build`, a shell function for the scenario: markers that say
/// what the build gave (the API, the port list), so that `recheck` can tell
/// them from the transcript alone. A place that is not one word is left
/// out, and at most 20 are kept (a kernel log line holds about 1 KiB).
fn build_markers(sc: &Scenario) -> String {
    let mut s = format!("harness_build() {{\n    harness_mark api {}\n", quote(&sc.api.to_string()));
    // The module folder whose expectations judge the run: one line of the
    // kernel log, so a path of at most 512 bytes with no line break.
    if let Some(dir) = sc
        .dir
        .as_deref()
        .and_then(Path::to_str)
        .filter(|d| d.starts_with('/') && d.len() <= 512 && !d.contains(['\n', '\r']))
    {
        s.push_str(&format!("    harness_mark dir {}\n", quote(dir)));
    }
    for p in &sc.ports {
        let at: Vec<&str> =
            p.at.iter()
                .map(String::as_str)
                .filter(|a| !a.is_empty() && !a.contains([' ', ',', '\t']))
                .take(20)
                .collect();
        let at = if at.is_empty() { "-".to_string() } else { at.join(",") };
        let note = p.note.as_deref().map(|n| format!(" {}", quote(n))).unwrap_or_default();
        s.push_str(&format!("    harness_mark port {} {}{note}\n", quote(&p.id), quote(&at)));
    }
    s.push_str("}\n");
    s
}

/// A 6.x kernel booted without printk.devkmsg=on rate-limits writes to
/// /dev/kmsg (3.5 has no such limit): the step markers would be dropped.
/// Switched on for the replay (and back by the clean-up).
fn unlimit_devkmsg(b: &mut ReplayedBoard) -> Result<()> {
    let devkmsg = b.shell.run("cat /proc/sys/kernel/printk_devkmsg 2>/dev/null", QUICK)?;
    if devkmsg.status == 0 && devkmsg.output.trim() == "ratelimit" {
        if b.shell.run("echo on > /proc/sys/kernel/printk_devkmsg", QUICK)?.status == 0 {
            b.devkmsg = Some("ratelimit".into());
        } else {
            eprintln!(
                "harness: warning: /dev/kmsg is rate-limited on the board and could not be switched off; \
                markers may be lost"
            );
        }
    }
    Ok(())
}

/// Follows the kernel messages the console shows while the steps run, to
/// see a step hang or the kernel panic, through the same watch and loop as
/// a QEMU guest. (A board whose console log level hides them is still
/// bounded by the total deadline.) `None` when the steps' command returned.
fn watch_steps(
    b: &mut ReplayedBoard,
    p: &shell::Pending,
    nonce: &str,
    opts: &ReplayOptions,
) -> Result<Option<(RunEnd, Transcript)>> {
    let mut watch = Watch::new(Transcript::after_start(nonce), opts.limits.watch(), Instant::now());
    let mut source = BoardLines {
        shell: &mut b.shell,
        pending: p,
        lines: Lines::from(p.mark),
        queue: VecDeque::new(),
        failed: None,
        nonce,
    };
    match supervisor::drive(&mut watch, &mut source)? {
        DriveEnd::Closed(_) => Ok(None),
        DriveEnd::Ended(end) => Ok(Some((end, watch.into_transcript()))),
    }
}

/// A board's console, while the steps' command runs, as the supervisor's
/// line source: it closes when the command returns.
struct BoardLines<'a> {
    shell: &'a mut BoardShell,
    pending: &'a shell::Pending,
    lines: Lines,
    /// Lines received but not yet handed out.
    queue: VecDeque<String>,
    /// A failed read, given out once the lines before it are.
    failed: Option<anyhow::Error>,
    /// The run's, to know a step's prompt to the person at the board.
    nonce: &'a str,
}

impl BoardLines<'_> {
    /// A line to hand out; a prompt for the person at the board is shown
    /// on the terminal as it comes (the steps wait for them).
    fn give(&self, line: String) -> Next {
        if let Some(crate::judge::marker::Marker::Prompt { text }) =
            crate::judge::marker::parse_marker(crate::judge::marker::split_timestamp(&line).1, self.nonce)
        {
            eprintln!("harness: at the board: {text}");
        }
        Next::Line(line)
    }
}

impl LineSource for BoardLines<'_> {
    fn next(&mut self, deadline: Instant) -> Result<Next> {
        if let Some(line) = self.queue.pop_front() {
            return Ok(self.give(line));
        }
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let wait = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(200));
        let polled = self.shell.poll(self.pending, wait);
        if matches!(polled, Ok(Some(_))) {
            return Ok(Next::Closed(None));
        }
        self.queue.extend(self.lines.take(&self.shell.link));
        // The lines that came before a failure are fed first: a panic among
        // them makes the failure the panic's.
        self.failed = polled.err();
        match self.queue.pop_front() {
            Some(line) => Ok(self.give(line)),
            None => self.failed.take().map_or(Ok(Next::Quiet), Err),
        }
    }
}
