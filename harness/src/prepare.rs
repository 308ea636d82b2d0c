//! Preparation shared by every subcommand that runs a module somewhere
//! (`check`, `replay`, `board-image`, the emulated board): validate the
//! input, install what is missing, get the kernel, build the modules and
//! programs, plan the steps, and time each stage.

use crate::judge::expect::Expectations;
use crate::kernel::{self, BuildOptions, Kernel, Source};
use crate::module::{self, Module};
use crate::options::{KernelArgs, ModuleArgs};
use crate::packages;
use crate::plan::{self, Plan, PlanModule};
use crate::profile::Profile;
use crate::program::{self, Program};
use crate::guest::rootfs;
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
    install(packages::for_check(cross_compile), default_source)?;
    rootfs::busybox()?;
    Ok(())
}

/// Installs `needs`, and the default kernel source when `default_source`
/// and none is installed.
fn install(mut needs: Vec<packages::Need>, default_source: bool) -> Result<()> {
    // Any installed linux-source-* will do; only ask for 6.12 if none is.
    if default_source && Source::resolve(None).is_err() {
        needs.push(packages::Need::file("/usr/src/linux-source-6.12.tar.xz", "linux-source-6.12"));
    }
    packages::ensure(&needs, &crate::cache::root().join("logs"))
}

/// `harness setup`: everything the README's two commands need, installed
/// (or the exact command printed): a check's packages, the default kernel
/// source and busybox, kmod/'s Rust target, the cross C library for test
/// programs, and what the test suite uses.
pub fn setup_all(cross_compile: &str) -> Result<()> {
    setup(cross_compile, true)?;
    let logs = crate::cache::root().join("logs");
    crate::toolchain::ensure(&crate::repo_root().join("kmod"), &logs)?;
    let mut needs = packages::for_programs(cross_compile);
    needs.extend(packages::for_suite());
    packages::ensure(&needs, &logs)
}

/// The profile's kernel: loaded, set up for a check, built or taken from
/// the cache.
pub fn kernel(args: &KernelArgs, stages: &Stages) -> Result<(Profile, Kernel)> {
    get_kernel(args, stages, true)
}

/// `harness kernel`: only the kernel (no QEMU, no busybox needed).
pub fn kernel_only(args: &KernelArgs, stages: &Stages) -> Result<(Profile, Kernel)> {
    get_kernel(args, stages, false)
}

fn get_kernel(args: &KernelArgs, stages: &Stages, for_check: bool) -> Result<(Profile, Kernel)> {
    let configs = crate::repo_root().join("configs");
    let profile = Profile::load(&args.profile, &configs)?;
    let cross = args.cross_compile.clone().unwrap_or_else(|| profile.cross_compile.clone());
    // An explicit source is checked now; the default one may need installing.
    let explicit = args.kernel_src.as_deref().map(|p| Source::resolve(Some(p))).transpose()?;
    if for_check {
        setup(&cross, explicit.is_none())?;
    } else {
        install(packages::for_kernel(&cross), explicit.is_none())?;
    }
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

/// One module directory's part of a run: its modules, programs,
/// expectations and steps. A run has one unit, or several (`--module`
/// given more than once) that run one after another in the same boot.
pub struct Unit {
    /// The directory's name, which prefixes its steps when there are
    /// several units (`fault_leak/insmod`); empty for a single unit.
    pub label: String,
    /// In load order.
    pub modules: Vec<Module>,
    pub programs: Vec<Program>,
    pub expectations: Expectations,
    /// The steps, named as the unit's own expectations name them.
    pub plan: Plan,
}

/// Everything a run needs, built.
pub struct Prepared {
    pub profile: Profile,
    pub kernel: Kernel,
    pub units: Vec<Unit>,
    pub run_dir: tempfile::TempDir,
    /// What is under test, for messages and reports.
    pub label: String,
}

impl Prepared {
    /// The plan's view of the modules: name and file name.
    pub fn plan_modules(modules: &[Module]) -> Vec<PlanModule> {
        modules.iter().map(|m| PlanModule { name: m.name.clone(), file: format!("{}.ko", m.name) }).collect()
    }

    /// The one unit, for the subcommands that take one module directory.
    pub fn single(&self) -> Result<&Unit> {
        match self.units.as_slice() {
            [one] => Ok(one),
            _ => bail!("give one --module DIR here (several run only under `check`)"),
        }
    }

    /// Every module of every unit, in load order.
    pub fn all_modules(&self) -> Vec<Module> {
        self.units.iter().flat_map(|u| u.modules.iter().cloned()).collect()
    }

    /// Where a unit's programs go in the guest: /usr/bin for a single unit,
    /// else a directory of the unit's own (put first on its commands' PATH),
    /// so that two lessons may each have an `app`.
    pub fn bin_dir(&self, unit: &Unit) -> String {
        if self.units.len() > 1 {
            format!("{}/bin/{}", crate::guest::rootfs::GUEST_DIR, unit.label)
        } else {
            "/usr/bin".to_string()
        }
    }

    /// Every program of every unit, with the guest directory it goes to.
    pub fn all_programs(&self) -> Vec<(Program, String)> {
        self.units.iter().flat_map(|u| u.programs.iter().map(move |p| (p.clone(), self.bin_dir(u)))).collect()
    }

    /// The guest's plan: each unit's steps in turn (prefixed with its label
    /// when there are several), then one leaks step for all.
    pub fn guest_plan(&self) -> Plan {
        let several = self.units.len() > 1;
        let mut steps = Vec::new();
        for u in &self.units {
            for st in u.plan.steps.iter().filter(|s| s.action != plan::Action::Leaks) {
                let mut st = st.clone();
                if several {
                    st.name = format!("{}/{}", u.label, st.name);
                    if let plan::Action::Run { bin, .. } = &mut st.action {
                        *bin = Some(self.bin_dir(u));
                    }
                }
                steps.push(st);
            }
        }
        steps.push(plan::PlannedStep { name: crate::judge::step::LEAKS.into(), action: plan::Action::Leaks });
        Plan { steps }
    }
}

/// Validates, gets the kernel, builds the modules and programs and plans
/// the run. A failure after the run directory exists keeps it, so that the
/// logs the error names are there.
pub fn prepare(kernel_args: &KernelArgs, module_args: &ModuleArgs, stages: &Stages) -> Result<Prepared> {
    let dirs = module_args.module_dirs();
    let several = dirs.len() > 1 && module_args.kernel_modules.is_empty();
    if several && module_args.expect.is_some() {
        bail!("--expect names one expectations file; with several --module, each directory's expect.toml is used");
    }
    let mut checked = Vec::new();
    if several {
        for d in &dirs {
            let (exp, label) = validate(&module_args.with_dir(d.clone()))?;
            let name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| label.clone());
            if checked.iter().any(|(n, _, _): &(String, _, _)| *n == name) {
                bail!("two --module directories are both named {name:?}: their steps would have the same names");
            }
            checked.push((name, exp, d.clone()));
        }
    } else {
        let (exp, _) = validate(module_args)?;
        checked.push((String::new(), exp, module_args.module_dir()));
    }
    let label = if module_args.kernel_modules.is_empty() {
        dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
    } else {
        module_args.kernel_modules.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    };
    let configs = crate::repo_root().join("configs");
    let profile_name = Profile::load(&kernel_args.profile, &configs)?.name;
    let defaults = checked.iter().any(|(_, e, _)| e.defaults);
    stages.say("config", format!("profile {profile_name}, {label}{}", if defaults { " (default expectations)" } else { "" }));
    // A Rust module's target before the kernel, which may take minutes to
    // build: a missing one is added, or its command shown, at once.
    if module_args.kernel_modules.is_empty() {
        for (_, _, dir) in &checked {
            crate::toolchain::ensure(dir, &crate::cache::root().join("logs"))?;
        }
    }
    let (profile, kernel) = self::kernel(kernel_args, stages)?;
    let stem = Path::new(label.split(", ").next().unwrap_or("module")).file_stem().unwrap_or_default().to_string_lossy().into_owned();
    let run_dir = new_run_dir(&format!("{}-{stem}-", profile.name))?;
    let mut units = Vec::new();
    for (i, (name, exp, dir)) in checked.into_iter().enumerate() {
        let work = if several { run_dir.path().join(format!("unit-{i}-{name}")) } else { run_dir.path().to_path_buf() };
        let built = std::fs::create_dir_all(&work)
            .with_context(|| format!("creating {}", work.display()))
            .and_then(|_| build(&kernel, &module_args.with_dir(dir), &exp, &work, kernel_args.jobs(), stages));
        match built {
            Ok((modules, programs, plan)) => units.push(Unit { label: name, modules, programs, expectations: exp, plan }),
            Err(e) => {
                let kept = run_dir.keep();
                return Err(anyhow::anyhow!("{e:#}\n(run directory kept: {})", kept.display()));
            }
        }
    }
    // One guest: module names must not collide across units (programs go
    // to a directory per unit).
    let mut seen = std::collections::BTreeSet::new();
    for u in &units {
        for m in &u.modules {
            if !seen.insert(m.name.clone()) {
                bail!("two --module directories both build a module named {}: run them separately", m.name);
            }
        }
    }
    Ok(Prepared { profile, kernel, units, run_dir, label })
}

/// Builds one unit's modules and programs, and plans its steps.
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
    if !exp.programs.is_empty() {
        packages::ensure(&packages::for_programs(&kernel.cross_compile), &crate::cache::root().join("logs"))?;
    }
    let programs = program::build(&work.join("module"), &exp.programs, &kernel.cross_compile, work)?;
    if !programs.is_empty() {
        stages.say("program", programs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "));
    }
    let plan = plan::plan(&Prepared::plan_modules(&modules), exp)?;
    Ok((modules, programs, plan))
}

/// A fresh nonce: 16 hex digits from the clock, the pid and the thread.
pub fn new_nonce() -> String {
    use sha2::Digest;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let h = sha2::Sha256::digest(format!("{}:{}:{:?}", now.as_nanos(), std::process::id(), std::thread::current().id()));
    h[..8].iter().map(|b| format!("{b:02x}")).collect()
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
