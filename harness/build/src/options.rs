//! The options of the subcommands, as clap parses them and as the library
//! takes them: one struct per group, shared by the subcommands that take the
//! group, so each flag and each default is written once.

use crate::judge::watch::Limits;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// The profile used when none is given.
pub const DEFAULT_PROFILE: &str = "exynos4210";

/// Which kernel: a profile, and how to build it.
#[derive(Args, Debug, Clone)]
pub struct KernelArgs {
    /// Machine profile: a name from configs/profiles/ or a .toml path.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    pub profile: String,
    #[command(flatten)]
    pub build: BuildArgs,
}

/// How a kernel is built, whatever names its profile (`--profile`, or a
/// board's `kernel_profile` for board-image).
#[derive(Args, Debug, Clone, Default)]
pub struct BuildArgs {
    /// Kernel source tree or tarball [default: newest /usr/src/linux-source-*.tar.xz].
    #[arg(long, value_name = "DIR|TARBALL")]
    pub kernel_src: Option<PathBuf>,
    /// Cross compiler prefix [default: the profile's, arm-linux-gnueabihf-].
    #[arg(long, value_name = "PREFIX")]
    pub cross_compile: Option<String>,
    /// Parallel make jobs [default: number of CPUs].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

impl KernelArgs {
    pub fn jobs(&self) -> usize {
        self.build.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)).max(1)
    }
}

impl Default for KernelArgs {
    fn default() -> Self {
        KernelArgs { profile: DEFAULT_PROFILE.into(), build: BuildArgs::default() }
    }
}

/// Which modules, and what they must do.
#[derive(Args, Debug, Clone, Default)]
pub struct ModuleArgs {
    /// Module directory, built with kbuild (`make -C KDIR M=DIR modules`;
    /// its Makefile is read by kbuild, never run) [default: the current
    /// directory when its Kbuild or Makefile names obj-m, else kmod/;
    /// none when only --kernel-module is given]. Given more than once, the
    /// directories run one after another in one boot, each with its own
    /// expect.toml and its own verdict.
    #[arg(long = "module", value_name = "DIR")]
    pub module_dirs: Vec<PathBuf>,
    /// A module from the kernel build, relative to it, e.g. lib/list-test.ko
    /// (a KUnit suite). May be given more than once, and beside --module:
    /// each runs as a unit of its own, with the default expectations (a
    /// module joins the unit of another given one it depends on), after the
    /// directories.
    #[arg(long = "kernel-module", value_name = "PATH")]
    pub kernel_modules: Vec<PathBuf>,
    /// Expectations file [default: expect.toml in the module directory; if
    /// there is none, the defaults: every step exits 0, no kernel report].
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
    /// The module API to build for: 3.5 (the board's, through the
    /// compatibility layer in compat35/; what differs is listed as the port
    /// list) or native (the test kernel's own: exactly what a port must fix)
    /// [default: the expectations file's `api`, else the profile's].
    #[arg(long, value_enum, value_name = "API")]
    pub api: Option<crate::api::Api>,
    /// The --module directories are one unit: each built with its own
    /// Makefile, their modules loaded in the order given in one boot (a
    /// platform device in one folder, its driver in another), unloaded in
    /// reverse, judged as one. Its expectations: --expect, else the one
    /// expect.toml among the directories.
    #[arg(long)]
    pub together: bool,
    /// Build modules and programs without the sandbox (bubblewrap) that
    /// keeps a module's Makefile and compiler away from your home, the
    /// repository and the network; for machines where it cannot start
    /// (also HARNESS_NO_SANDBOX=1). Said when used.
    #[arg(long)]
    pub no_sandbox: bool,
    /// Line coverage of the modules' C sources: build them with gcov
    /// (kbuild's GCOV_PROFILE=y) and, after the last step, read what ran
    /// from the guest's debugfs; the verdict lists each file's lines that ran
    /// and the functions that never did, and the run directory gets
    /// coverage.info (lcov). Needs a kernel with gcov, as the default
    /// profile's is. See docs/coverage.md.
    #[arg(long)]
    pub coverage: bool,
}

impl ModuleArgs {
    /// The module directories: those given, else kmod/ (unless only kernel
    /// modules are given).
    pub fn module_dirs(&self) -> Vec<PathBuf> {
        if self.module_dirs.is_empty() && self.kernel_modules.is_empty() {
            vec![crate::repo_root().join("kmod")]
        } else {
            self.module_dirs.clone()
        }
    }

    /// The first (usually the only) module directory.
    pub fn module_dir(&self) -> PathBuf {
        self.module_dirs().into_iter().next().unwrap_or_else(|| crate::repo_root().join("kmod"))
    }

    /// One module directory, with the same expectations file.
    pub fn with_dir(&self, dir: PathBuf) -> ModuleArgs {
        ModuleArgs { module_dirs: vec![dir], kernel_modules: Vec::new(), ..self.clone() }
    }

    /// Kernel modules only, with the same expectations file.
    pub fn with_kernel_modules(&self, kernel_modules: Vec<PathBuf>) -> ModuleArgs {
        ModuleArgs { module_dirs: Vec::new(), kernel_modules, ..self.clone() }
    }

    /// The expectations file to read for the first module directory, if any.
    pub fn expect_path(&self) -> Option<PathBuf> {
        if let Some(p) = &self.expect {
            return Some(p.clone());
        }
        if self.module_dirs.is_empty() && !self.kernel_modules.is_empty() {
            return None;
        }
        Some(self.module_dir().join("expect.toml")).filter(|p| p.is_file())
    }
}

/// How long a run may take.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct LimitArgs {
    /// Give up after this many seconds in all (TIMED-OUT) [default: the
    /// profile's, else 300].
    #[arg(long = "timeout", value_name = "SECS")]
    pub total: Option<u64>,
    /// Give up when one step (insmod, a command, rmmod, …) runs longer than
    /// this [default: the profile's, else 60].
    #[arg(long = "step-timeout", value_name = "SECS")]
    pub step: Option<u64>,
    /// Give up when the console prints nothing for this long [default: the
    /// profile's, else 120].
    #[arg(long = "silence-timeout", value_name = "SECS")]
    pub silence: Option<u64>,
}

impl LimitArgs {
    /// The limits: these, else the profile's, else the built-in ones.
    pub fn resolve(&self, profile: &crate::profile::Profile) -> Limits {
        let pick = |o: Option<u64>, p: Option<u64>, d: u64| Duration::from_secs(o.or(p).unwrap_or(d));
        Limits {
            total: pick(self.total, profile.qemu.timeout, crate::judge::watch::DEFAULT_TOTAL),
            step: pick(self.step, profile.qemu.step_timeout, crate::judge::watch::DEFAULT_STEP),
            silence: pick(self.silence, profile.qemu.silence_timeout, crate::judge::watch::DEFAULT_SILENCE),
            start: None,
        }
    }
}

/// What a run leaves behind.
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Keep the run directory (console log, initramfs, module build) even on success.
    #[arg(long)]
    pub keep: bool,
    /// Write the whole verdict (steps, expectations, events, KUnit, timings) as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a JUnit XML report: one test case per step, expectation and report.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a KCIDB v5.3 report (KernelCI's database): the module's
    /// checkout, its build, a test per step, expectation and kernel report
    /// (docs/kcidb.md).
    #[arg(long, value_name = "FILE")]
    pub kcidb: Option<PathBuf>,
}

/// `check`: build, boot under QEMU, run the steps, judge.
#[derive(Args, Debug, Clone, Default)]
pub struct CheckOptions {
    #[command(flatten)]
    pub kernel: KernelArgs,
    #[command(flatten)]
    pub module: ModuleArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Write the run's one-page HTML report here too (it is always written
    /// as report.html in the run directory, which --keep keeps).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// After the module's load and command steps, before it is unloaded,
    /// make this terminal the guest's shell (busybox sh, the modules loaded,
    /// the programs on PATH); leaving it (exit) runs the rest and prints the
    /// verdict. Needs a terminal; one module directory.
    #[arg(long)]
    pub shell: bool,
    /// Make this terminal the guest's shell at the first step that fails its
    /// expectations (the modules as that step left them); leaving it runs
    /// the rest. Needs a terminal; one module directory.
    #[arg(long, conflicts_with = "shell")]
    pub shell_on_failure: bool,
    /// Start QEMU with its gdb stub and wait: the harness prints the one
    /// command to run (`gdb-multiarch -x RUN/gdb/harness.gdb`), whose script
    /// loads vmlinux, connects, and adds each module's symbols where the
    /// kernel loads it, before its init runs. The run's deadlines wait while
    /// gdb holds the guest. Combines with --shell.
    #[arg(long)]
    pub gdb: bool,
    /// Boot the guest instead of resuming the booted one the harness saves
    /// per kernel (docs/resume.md); the verdict is the same either way.
    #[arg(long)]
    pub no_resume: bool,
}

impl CheckOptions {
    /// A check of the module in `dir` on `profile`, everything else default.
    pub fn new(profile: &str, dir: impl Into<PathBuf>) -> CheckOptions {
        let mut o = CheckOptions::default();
        o.kernel.profile = profile.into();
        o.module.module_dirs = vec![dir.into()];
        o
    }
}
