//! One `check`: validate everything, then build, boot, watch and judge.

use crate::console::{ConsoleMsg, ConsoleReader};
use crate::event::{classify, EventKind};
use crate::expect::Expectations;
use crate::kernel::{self, BuildOptions, Source};
use crate::module;
use crate::packages;
use crate::profile::Profile;
use crate::qemu::{self, BootImages, Qemu};
use crate::report::Report;
use crate::rootfs;
use crate::symbols::ModuleSymbols;
use crate::step::{split_timestamp, Marker, Transcript};
use crate::verdict::{self, RunEnd, Verdict};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The steps `/init` runs (rootfs/steps.sh), which expectations may name;
/// `leaks` runs only on kernels with kmemleak.
pub const GUEST_STEPS: &[&str] = &["insmod", "rmmod", "gone", "leaks"];

#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub profile: String,
    pub module_dir: PathBuf,
    /// Instead of building `module_dir`, load this module from the kernel
    /// build (a path relative to it, e.g. `lib/list-test.ko`).
    pub kernel_module: Option<PathBuf>,
    pub expect: Option<PathBuf>,
    pub kernel_src: Option<PathBuf>,
    pub cross_compile: Option<String>,
    pub keep: bool,
    /// Overrides of the profile's (or the built-in) limits.
    pub limits: LimitOverrides,
    pub jobs: usize,
    /// Write the whole verdict as JSON here.
    pub json: Option<PathBuf>,
    /// Write a JUnit XML report here.
    pub junit: Option<PathBuf>,
}

impl CheckOptions {
    pub fn defaults() -> CheckOptions {
        CheckOptions {
            profile: "exynos4210".into(),
            module_dir: crate::repo_root().join("kmod"),
            kernel_module: None,
            expect: None,
            kernel_src: None,
            cross_compile: None,
            keep: false,
            limits: LimitOverrides::default(),
            jobs: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            json: None,
            junit: None,
        }
    }
}

/// What a check produced, beyond the verdict: where to look.
pub struct CheckReport {
    pub verdict: Verdict,
    /// The run directory, if it was kept (`--keep`, or the check failed).
    pub run_dir: Option<PathBuf>,
    pub kernel_built_now: bool,
}

/// Prints each pipeline stage as it completes, with the time since the check
/// began, and records how long each took.
struct Stages {
    started: Instant,
    last: std::cell::Cell<Instant>,
    timings: std::cell::RefCell<Vec<(String, f64)>>,
}

impl Stages {
    fn new() -> Stages {
        let now = Instant::now();
        Stages { started: now, last: now.into(), timings: Default::default() }
    }

    fn say(&self, stage: &str, what: impl std::fmt::Display) {
        let now = Instant::now();
        self.timings.borrow_mut().push((stage.to_string(), (now - self.last.get()).as_secs_f64()));
        self.last.set(now);
        eprintln!("harness: [{:>6.1}s] {stage:<7} {what}", self.started.elapsed().as_secs_f64());
    }
}

/// Runs a whole check. `Err` means the check could not be carried out (bad
/// input, a missing tool, a build failure); a verdict, passing or not, is `Ok`.
pub fn check(opts: &CheckOptions) -> Result<CheckReport> {
    let stages = Stages::new();
    let root = crate::repo_root();
    let configs = root.join("configs");

    // Everything that can be wrong with the input is found before any build.
    let profile = Profile::load(&opts.profile, &configs)?;
    let module_dir = opts.module_dir.clone();
    let (expectations, module_label) = match &opts.kernel_module {
        Some(rel) => {
            if rel.is_absolute() || rel.extension().is_none_or(|e| e != "ko") {
                bail!("--kernel-module {}: give a .ko path relative to the kernel build, e.g. lib/list-test.ko", rel.display());
            }
            let exp = match &opts.expect {
                Some(p) => Expectations::load(p, GUEST_STEPS)?,
                None => Expectations::exit_codes_only(&["insmod", "rmmod", "gone"]),
            };
            (exp, rel.display().to_string())
        }
        None => {
            if !module_dir.is_dir() {
                bail!("--module {}: no such directory", module_dir.display());
            }
            module::recipe(&module_dir)?;
            let expect_path = opts.expect.clone().unwrap_or_else(|| module_dir.join("expect.toml"));
            if !expect_path.is_file() {
                bail!(
                    "no expectations file at {}: pass --expect FILE or add expect.toml to the module directory",
                    expect_path.display()
                );
            }
            (Expectations::load(&expect_path, GUEST_STEPS)?, module_dir.display().to_string())
        }
    };
    let cross = opts.cross_compile.clone().unwrap_or_else(|| profile.cross_compile.clone());
    stages.say("config", format!("profile {} ({}), module {module_label}", profile.name, profile.qemu.machine));

    // An explicit source is checked now; the default one may need installing.
    let explicit_source = opts.kernel_src.as_deref().map(|p| Source::resolve(Some(p))).transpose()?;

    setup(&cross, opts.kernel_src.is_none())?;
    let source = match explicit_source {
        Some(s) => s,
        None => Source::resolve(None)?,
    };

    let kernel = kernel::get(
        &profile,
        &BuildOptions { source: &source, cross_compile: &cross, configs_dir: &configs, jobs: opts.jobs },
    )?;
    stages.say(
        "kernel",
        format!("{} {} ({})", kernel.release, if kernel.built_now { "built" } else { "cached" }, kernel.build_dir.display()),
    );

    let run_dir = new_run_dir(&format!(
        "{}-{}-",
        profile.name,
        Path::new(&module_label).file_stem().unwrap_or_default().to_string_lossy()
    ))?;

    let module = match &opts.kernel_module {
        Some(rel) => module::prebuilt(&kernel.build_dir.join(rel), &kernel)?,
        None => module::build(&module_dir, &kernel, run_dir.path(), opts.jobs)?,
    };
    for w in &module.modpost_warnings {
        eprintln!("harness: build warning: {w}");
    }
    stages.say("module", format!("{} ({})", module.ko.display(), module.vermagic));

    let busybox = rootfs::busybox()?;
    let initramfs = run_dir.path().join("initramfs.cpio");
    rootfs::write_initramfs(&root.join("rootfs"), &busybox, &module, &initramfs)?;
    stages.say("rootfs", initramfs.display());

    let images = BootImages {
        kernel: kernel.image(&profile),
        dtb: kernel.dtb(&profile.qemu.dtb),
        initramfs,
    };
    stages.say("boot", format!("qemu-system-arm -M {} -smp {}", profile.qemu.machine, profile.qemu.smp));
    let booted = boot(&profile, &images, run_dir.path(), opts.limits.resolve(&profile))?;
    let symbols = ModuleSymbols::load(&module.ko, &module.name, &booted.transcript.sections)?;
    let ctx = verdict::Context {
        console_log: run_dir.path().join("console.log"),
        module: Some(module.name.clone()),
        symbols: Some(symbols),
        registers: booted.registers,
    };
    let verdict = verdict::judge(&booted.transcript, &expectations, booted.end, ctx);
    stages.say("verdict", verdict.outcome);
    let timings = stages.timings.borrow().clone();
    let report = Report {
        profile: &profile.name,
        module: &module_label,
        kernel_release: &kernel.release,
        timings: &timings,
        verdict: &verdict,
    };
    if let Some(p) = &opts.json {
        report.write_json(p)?;
    }
    if let Some(p) = &opts.junit {
        report.write_junit(p)?;
    }

    let keep = opts.keep || !verdict.passed();
    let kept = keep.then(|| run_dir.keep());
    Ok(CheckReport { verdict, run_dir: kept, kernel_built_now: kernel.built_now })
}

/// A fresh run directory under `HARNESS_RUN_DIR` (default
/// `target/harness-runs`), deleted on drop unless kept.
pub fn new_run_dir(prefix: &str) -> Result<tempfile::TempDir> {
    let runs = match std::env::var_os("HARNESS_RUN_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => crate::repo_root().join("target").join("harness-runs"),
    };
    std::fs::create_dir_all(&runs).with_context(|| format!("creating {}", runs.display()))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&runs)
        .with_context(|| format!("creating a run directory in {}", runs.display()))
}

/// Installs what a check needs: host packages, the default kernel source
/// when `default_source`, and the guest's busybox. Idempotent and quick when
/// everything is there.
pub fn setup(cross_compile: &str, default_source: bool) -> Result<()> {
    let mut needs = packages::for_check(cross_compile);
    // Any installed linux-source-* will do; only ask for 6.12 if none is.
    if default_source && Source::resolve(None).is_err() {
        needs.push(packages::Need::file("/usr/src/linux-source-6.12.tar.xz", "linux-source-6.12"));
    }
    packages::ensure(&needs, &crate::cache::root().join("logs"))?;
    rootfs::busybox()?;
    Ok(())
}

/// How long the guest may take to power off after `/init` says it is done.
const POWEROFF_GRACE: Duration = Duration::from_secs(15);
/// How long to keep reading after "Kernel panic" for the rest of the report.
const PANIC_GRACE: Duration = Duration::from_secs(2);

/// Limits given on the command line; `None` takes the profile's value, or
/// the built-in default (300 s in all, 60 s a step, 120 s of silence).
#[derive(Debug, Clone, Copy, Default)]
pub struct LimitOverrides {
    pub total: Option<Duration>,
    pub step: Option<Duration>,
    pub silence: Option<Duration>,
}

impl LimitOverrides {
    pub fn resolve(&self, profile: &Profile) -> Limits {
        let pick = |o: Option<Duration>, p: Option<u64>, d: u64| o.unwrap_or(Duration::from_secs(p.unwrap_or(d)));
        Limits {
            total: pick(self.total, profile.qemu.timeout, 300),
            step: pick(self.step, profile.qemu.step_timeout, 60),
            silence: pick(self.silence, profile.qemu.silence_timeout, 120),
        }
    }
}

/// The deadlines of one boot.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole boot, from QEMU's start to its exit.
    pub total: Duration,
    /// One step, from its begin marker to its end marker.
    pub step: Duration,
    /// No console output at all.
    pub silence: Duration,
}

/// What one boot produced.
pub struct Boot {
    pub transcript: Transcript,
    pub end: RunEnd,
    /// `info registers -a`, taken from a hung guest before it was killed.
    pub registers: Option<String>,
}

/// Boots the guest and supervises it until it powers off, panics, stops, hangs
/// or runs out of time. QEMU is killed and reaped on every path.
pub fn boot(profile: &Profile, images: &BootImages, run_dir: &Path, limits: Limits) -> Result<Boot> {
    for (what, p) in [("kernel image", &images.kernel), ("dtb", &images.dtb), ("initramfs", &images.initramfs)] {
        if !p.is_file() {
            bail!("the {what} {} does not exist", p.display());
        }
    }
    // Unix socket paths are limited to 108 bytes; without a monitor, a hang
    // is still reported, only without the registers.
    let socket = run_dir.join("monitor.sock");
    let monitor = (socket.as_os_str().len() < 100).then_some(socket.as_path());
    let cmdline = qemu::kernel_cmdline(profile);
    let argv = qemu::argv(profile, images, &cmdline, monitor);
    let shown: Vec<String> = argv.iter().map(|a| shell_quote(&a.to_string_lossy())).collect();
    std::fs::write(run_dir.join("qemu-command.txt"), format!("{} {}\n", profile.qemu.binary, shown.join(" ")))
        .context("writing qemu-command.txt")?;
    let stderr_log = run_dir.join("qemu.stderr");
    let (guest, pipe) = Qemu::spawn(&profile.qemu.binary, &argv, &stderr_log)?;
    let console = ConsoleReader::start(pipe, &run_dir.join("console.log"))?;

    let started = Instant::now();
    let deadline = started + limits.total;
    let mut transcript = Transcript::new();
    let mut last_output = started;
    let mut step_started: Option<(String, Instant)> = None;
    let mut panicked: Option<Instant> = None;
    let mut done: Option<Instant> = None;
    let end = loop {
        let mut until = deadline.min(last_output + limits.silence);
        if let Some((_, at)) = &step_started {
            until = until.min(*at + limits.step);
        }
        if let Some(p) = panicked {
            until = until.min(p + PANIC_GRACE);
        }
        if let Some(d) = done {
            until = until.min(d + POWEROFF_GRACE);
        }
        let msg = console.lines.recv_timeout(until.saturating_duration_since(Instant::now()));
        match msg {
            Ok(ConsoleMsg::Line(line)) => {
                last_output = Instant::now();
                match transcript.push(&line) {
                    Some(Marker::Begin { step }) => step_started = Some((step, last_output)),
                    Some(Marker::End { .. }) => step_started = None,
                    _ => {}
                }
                if transcript.done && done.is_none() {
                    done = Some(last_output);
                }
                if panicked.is_none() && classify(split_timestamp(&line).1) == Some(EventKind::Panic) {
                    panicked = Some(last_output);
                }
            }
            Ok(ConsoleMsg::Closed) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let status = guest.wait_until(Instant::now() + Duration::from_secs(5))?;
                break if transcript.done {
                    RunEnd::Completed
                } else if panicked.is_some() {
                    RunEnd::Panicked
                } else {
                    RunEnd::ExitedEarly { status: status.and_then(|s| s.code()) }
                };
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                if panicked.is_some() {
                    break RunEnd::Panicked;
                }
                if done.is_some() {
                    // /init finished; a machine that cannot power off is not
                    // the module's fault.
                    break RunEnd::Completed;
                }
                if let Some((step, at)) = &step_started {
                    if now >= *at + limits.step {
                        break RunEnd::StepTimedOut { step: step.clone(), after_secs: limits.step.as_secs() };
                    }
                }
                if now >= last_output + limits.silence {
                    break RunEnd::Silent { after_secs: limits.silence.as_secs() };
                }
                if now >= deadline {
                    break RunEnd::TimedOut { after_secs: limits.total.as_secs() };
                }
            }
        }
    };
    // Ask a hung guest what it was doing before it is killed.
    let hung = matches!(end, RunEnd::StepTimedOut { .. } | RunEnd::Silent { .. } | RunEnd::TimedOut { .. });
    let registers = match (hung, monitor) {
        (true, Some(sock)) => match qemu::monitor_command(sock, "info registers -a", Duration::from_secs(5)) {
            Ok(r) => Some(r),
            Err(e) => Some(format!("(could not read the registers: {e:#})")),
        },
        _ => None,
    };
    guest.kill()?;
    drop(guest);
    console.join();

    // A QEMU that never started the guest is an environment problem, not a
    // verdict on the module: report it as an error with QEMU's own words.
    if transcript.lines.is_empty() {
        if let RunEnd::ExitedEarly { status } = end {
            let stderr = std::fs::read_to_string(&stderr_log).unwrap_or_default();
            bail!(
                "{} exited (status {}) before printing anything:\n{}",
                profile.qemu.binary,
                status.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into()),
                stderr.trim()
            );
        }
    }
    Ok(Boot { transcript, end, registers })
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_is_minimal_and_safe() {
        assert_eq!(shell_quote("-M"), "-M");
        assert_eq!(shell_quote("console=ttySAC0,115200n8 rdinit=/init"), "'console=ttySAC0,115200n8 rdinit=/init'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn guest_steps_match_the_step_script() {
        let script = std::fs::read_to_string(crate::repo_root().join("rootfs/steps.sh")).unwrap();
        for step in GUEST_STEPS {
            assert!(script.contains(&format!("harness_step {step} ")), "steps.sh does not run {step}");
        }
    }
}
