//! Preparation shared by every subcommand that runs a module somewhere
//! (`check`, `replay`, `board-image`, the emulated board): validate the
//! input, install what is missing, get the kernel, build the modules and
//! programs, plan the steps, and time each stage.

use crate::expect::Expectations;
use crate::kernel::{self, BuildOptions, Kernel, Source};
use crate::module::{self, Module};
use crate::options::{KernelArgs, ModuleArgs};
use crate::packages;
use crate::plan::{self, Plan, PlanModule};
use crate::profile::Profile;
use crate::program::{self, Program};
use crate::rootfs;
use anyhow::{bail, Context, Result};
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Prints each stage as it completes, with the time since the run began,
/// and records how long each took.
pub struct Stages {
    started: Instant,
    last: Cell<Instant>,
    timings: RefCell<Vec<(String, f64)>>,
}

impl Default for Stages {
    fn default() -> Self {
        Self::new()
    }
}

impl Stages {
    pub fn new() -> Stages {
        let now = Instant::now();
        Stages { started: now, last: now.into(), timings: Default::default() }
    }

    pub fn say(&self, stage: &str, what: impl std::fmt::Display) {
        let now = Instant::now();
        self.timings.borrow_mut().push((stage.to_string(), (now - self.last.get()).as_secs_f64()));
        self.last.set(now);
        eprintln!("harness: [{:>6.1}s] {stage:<7} {what}", self.started.elapsed().as_secs_f64());
    }

    /// (stage, seconds) so far.
    pub fn timings(&self) -> Vec<(String, f64)> {
        self.timings.borrow().clone()
    }
}

/// Installs what building a kernel and booting it needs: host packages, the
/// default kernel source when `default_source`, the guest's busybox.
/// Idempotent and quick when everything is there.
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

/// The profile's kernel: loaded, set up, built or taken from the cache.
pub fn kernel(args: &KernelArgs, stages: &Stages) -> Result<(Profile, Kernel)> {
    let configs = crate::repo_root().join("configs");
    let profile = Profile::load(&args.profile, &configs)?;
    let cross = args.cross_compile.clone().unwrap_or_else(|| profile.cross_compile.clone());
    // An explicit source is checked now; the default one may need installing.
    let explicit = args.kernel_src.as_deref().map(|p| Source::resolve(Some(p))).transpose()?;
    setup(&cross, explicit.is_none())?;
    let source = match explicit {
        Some(s) => s,
        None => Source::resolve(None)?,
    };
    let k = kernel::get(&profile, &BuildOptions { source: &source, cross_compile: &cross, configs_dir: &configs, jobs: args.jobs() })?;
    stages.say("kernel", format!("{} {} {} ({})", profile.name, k.release, if k.built_now { "built" } else { "cached" }, k.build_dir.display()));
    Ok((profile, k))
}

/// The expectations of `args`: the file, or the defaults.
pub fn expectations(args: &ModuleArgs) -> Result<Expectations> {
    match args.expect_path() {
        Some(p) => {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("reading expectations file {}: pass --expect FILE, or leave it out for the defaults", p.display()))?;
            Expectations::parse(&text, &p.display().to_string())
        }
        None => Ok(Expectations::defaults()),
    }
}

/// What is checked before anything is built: the module directory or the
/// kernel module paths, the expectations, the programs' sources.
pub fn validate(args: &ModuleArgs) -> Result<(Expectations, String)> {
    let exp = expectations(args)?;
    let label = if args.kernel_modules.is_empty() {
        let dir = args.module_dir();
        module::check_dir(&dir)?;
        for p in &exp.programs {
            if !dir.join(p).is_file() {
                bail!("programs: {p} is not in the module directory {}", dir.display());
            }
        }
        dir.display().to_string()
    } else {
        for rel in &args.kernel_modules {
            if rel.is_absolute() || rel.extension().is_none_or(|e| e != "ko") {
                bail!("--kernel-module {}: give a .ko path relative to the kernel build, e.g. lib/list-test.ko", rel.display());
            }
        }
        if !exp.programs.is_empty() {
            bail!("programs need a module directory to be built from; give --module DIR");
        }
        args.kernel_modules.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    };
    Ok((exp, label))
}

/// Everything a run needs, built.
pub struct Prepared {
    pub profile: Profile,
    pub kernel: Kernel,
    /// In load order.
    pub modules: Vec<Module>,
    pub programs: Vec<Program>,
    pub expectations: Expectations,
    pub plan: Plan,
    pub run_dir: tempfile::TempDir,
    /// What is under test, for messages and reports.
    pub label: String,
}

impl Prepared {
    /// The plan's view of the modules: name and file name.
    pub fn plan_modules(modules: &[Module]) -> Vec<PlanModule> {
        modules.iter().map(|m| PlanModule { name: m.name.clone(), file: format!("{}.ko", m.name) }).collect()
    }
}

/// Validates, gets the kernel, builds the modules and programs and plans
/// the run. A failure after the run directory exists keeps it, so that the
/// logs the error names are there.
pub fn prepare(kernel_args: &KernelArgs, module_args: &ModuleArgs, stages: &Stages) -> Result<Prepared> {
    let (expectations, label) = validate(module_args)?;
    let configs = crate::repo_root().join("configs");
    let profile_name = Profile::load(&kernel_args.profile, &configs)?.name;
    stages.say("config", format!("profile {profile_name}, {label}{}", if expectations.defaults { " (default expectations)" } else { "" }));
    let (profile, kernel) = self::kernel(kernel_args, stages)?;
    let stem = Path::new(label.split(", ").next().unwrap_or("module")).file_stem().unwrap_or_default().to_string_lossy().into_owned();
    let run_dir = new_run_dir(&format!("{}-{stem}-", profile.name))?;
    match build(&kernel, module_args, &expectations, run_dir.path(), kernel_args.jobs(), stages) {
        Ok((modules, programs, plan)) => Ok(Prepared { profile, kernel, modules, programs, expectations, plan, run_dir, label }),
        Err(e) => {
            let kept = run_dir.keep();
            Err(e.context(format!("run directory kept: {}", kept.display())))
        }
    }
}

fn build(
    kernel: &Kernel,
    args: &ModuleArgs,
    exp: &Expectations,
    work: &Path,
    jobs: usize,
    stages: &Stages,
) -> Result<(Vec<Module>, Vec<Program>, Plan)> {
    let modules = if args.kernel_modules.is_empty() {
        module::build(&args.module_dir(), kernel, work, jobs)?
    } else {
        args.kernel_modules.iter().map(|rel| module::prebuilt(&kernel.build_dir.join(rel), kernel)).collect::<Result<_>>()?
    };
    if let Some(w) = modules.first().map(|m| &m.modpost_warnings) {
        for w in w {
            eprintln!("harness: build warning: {w}");
        }
    }
    let names: Vec<String> = modules.iter().map(|m| format!("{} ({})", m.name, m.vermagic.trim())).collect();
    stages.say("module", names.join(", "));
    let programs = program::build(&work.join("module"), &exp.programs, &kernel.cross_compile, work)?;
    if !programs.is_empty() {
        stages.say("program", programs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "));
    }
    let plan = plan::plan(&Prepared::plan_modules(&modules), exp)?;
    Ok((modules, programs, plan))
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
