//! Preparation shared by every subcommand that runs a module somewhere
//! (`check`, `replay`, `board-image`, the emulated board): validate the
//! input, install what is missing, get the kernel, build the modules and
//! programs, plan the steps, and time each stage.

use crate::api::{self, Api};
use crate::changes::Port;
use crate::judge::expect::Expectations;
use crate::judge::step::StepKind;
use crate::kernel::{self, BuildOptions, Kernel, KernelSource};
use crate::module::{self, Module};
use crate::options::{KernelArgs, ModuleArgs};
use crate::packages;
use crate::plan::{self, Plan, PlanModule};
use crate::profile::Profile;
use crate::program::{self, Program};
use crate::sandbox::Sandbox;
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
/// kernel source package `source` (the profile's) when no source is
/// installed, the guest's busybox. Idempotent and quick when everything is
/// there.
pub fn setup(cross_compile: &str, source: Option<&str>) -> Result<()> {
    install(packages::for_check(cross_compile), source)?;
    crate::busybox::get()?;
    Ok(())
}

/// Installs `needs`, and the source package `source` when no kernel source
/// is installed.
fn install(mut needs: Vec<packages::Need>, source: Option<&str>) -> Result<()> {
    // Any installed linux-source-* will do; only ask for the profile's if none is.
    if let Some(package) = source.filter(|_| KernelSource::resolve(None).is_err()) {
        let tarball = format!("/usr/src/{package}.tar.xz");
        needs.push(packages::Need::file(&tarball, package));
    }
    packages::ensure(&needs, &crate::cache::root().join("logs"))
}

/// `harness setup`: everything the README's two commands need, installed
/// (or the exact command printed): a check's packages, the default kernel
/// source and busybox, kmod/'s Rust target, the cross C library for test
/// programs, the build sandbox, what the test suite uses, and gdb-multiarch.
pub fn setup_all(cross_compile: &str) -> Result<()> {
    let default = Profile::load(crate::options::DEFAULT_PROFILE, &crate::repo_root().join("configs"))?;
    setup(cross_compile, default.kernel.source_package.as_deref())?;
    let logs = crate::cache::root().join("logs");
    crate::toolchain::ensure(&crate::repo_root().join("kmod"), &logs)?;
    let mut needs = packages::for_programs(cross_compile);
    needs.extend(packages::for_sandbox());
    needs.extend(packages::for_suite());
    needs.extend(packages::for_gdb());
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
    let (profile, source, cross) = kernel_inputs(args, for_check)?;
    let configs = crate::repo_root().join("configs");
    let k = kernel::get(
        &profile,
        &BuildOptions { source: &source, cross_compile: &cross, configs_dir: &configs, jobs: args.jobs() },
    )?;
    stages.say(
        "kernel",
        format!(
            "{} {} {} ({})",
            profile.name,
            k.release,
            if k.built_now { "built" } else { "cached" },
            k.build_dir.display()
        ),
    );
    Ok((profile, k))
}

/// The fragment that gives a kernel gcov (`check --coverage`).
const COVERAGE_FRAGMENT: &str = "coverage.config";

/// The kernel arguments of a `--coverage` run: the profile itself when it
/// builds the kernel's gcov (coverage.config among its fragments, as the
/// default profile does), else its `-coverage` variant when a profile of
/// that name exists (a user's own); said when it switches. Without
/// `--coverage`, `args` as they are.
pub fn coverage_kernel(args: &KernelArgs, module_args: &ModuleArgs) -> Result<KernelArgs> {
    if !module_args.coverage {
        return Ok(args.clone());
    }
    let configs = crate::repo_root().join("configs");
    let profile = Profile::load(&args.profile, &configs)?;
    if builds_gcov(&profile) {
        return Ok(args.clone());
    }
    let variant = format!("{}-coverage", profile.name);
    if !configs.join("profiles").join(format!("{variant}.toml")).is_file() {
        bail!(
            "--coverage needs a kernel with gcov (CONFIG_GCOV_KERNEL), and profile {} has none, nor a {variant} \
            variant: add fragments/{COVERAGE_FRAGMENT} to a copy of configs/profiles/{}.toml, or use the default \
            profile, exynos4210",
            profile.name,
            profile.name
        );
    }
    eprintln!("harness: --coverage: profile {variant} (the {} kernel with gcov, built once and cached)", profile.name);
    Ok(KernelArgs { profile: variant, ..args.clone() })
}

/// Whether the profile's kernel is built with gcov's support
/// (coverage.config among its fragments): a module built with gcov for it
/// gives its counters there, under QEMU or on a board that runs it
/// (`board-image --profile P`).
pub fn builds_gcov(profile: &Profile) -> bool {
    profile.kernel.fragments.iter().any(|f| f == COVERAGE_FRAGMENT)
}

/// The kernel of a `--coverage` run has gcov, as its .config says.
fn require_gcov(profile: &Profile, kernel: &Kernel) -> Result<()> {
    let config = kernel.build_dir.join(".config");
    let text = std::fs::read_to_string(&config).with_context(|| format!("reading {}", config.display()))?;
    if !text.lines().any(|l| l.trim() == "CONFIG_GCOV_KERNEL=y") {
        bail!(
            "--coverage: the {} kernel ({}) has no CONFIG_GCOV_KERNEL=y: add fragments/{COVERAGE_FRAGMENT} to the \
            profile",
            profile.name,
            config.display()
        );
    }
    Ok(())
}

/// `harness kernel --config-only DIR`: the profile's `.config` written into
/// `out`, every requested symbol checked, nothing built.
pub fn kernel_config(args: &KernelArgs, out: &Path) -> Result<PathBuf> {
    let (profile, source, cross) = kernel_inputs(args, false)?;
    let configs = crate::repo_root().join("configs");
    kernel::configure_only(
        &profile,
        &BuildOptions { source: &source, cross_compile: &cross, configs_dir: &configs, jobs: 1 },
        out,
    )
}

/// The profile, the source and the cross prefix a kernel is made from, with
/// what making it needs installed (and, `for_check`, what booting it needs).
fn kernel_inputs(args: &KernelArgs, for_check: bool) -> Result<(Profile, KernelSource, String)> {
    let configs = crate::repo_root().join("configs");
    let profile = Profile::load(&args.profile, &configs)?;
    let cross = args.build.cross_compile.clone().unwrap_or_else(|| profile.cross_compile.clone());
    // An explicit source is checked now; the default one may need installing.
    let explicit = kernel::profile_source(&profile, args.build.kernel_src.as_deref())?;
    let package = profile.kernel.source_package.as_deref().filter(|_| explicit.is_none());
    if for_check {
        setup(&cross, package)?;
    } else {
        install(packages::for_kernel(&cross), package)?;
    }
    let source = match explicit {
        Some(s) => s,
        None => KernelSource::resolve(None)?,
    };
    Ok((profile, source, cross))
}

/// The expectations of `args`: the file, or the defaults.
pub fn expectations(args: &ModuleArgs) -> Result<Expectations> {
    match args.expect_path() {
        Some(p) => {
            let text = std::fs::read_to_string(&p).with_context(|| {
                format!(
                    "reading expectations file {}: pass --expect FILE, or leave it out for the defaults",
                    p.display()
                )
            })?;
            Expectations::parse(&text, &p.display().to_string())
        }
        None => Ok(Expectations::defaults()),
    }
}

/// What is checked before anything is built: the module directory or the
/// kernel module paths, the expectations, the programs' sources.
pub fn validate(args: &ModuleArgs) -> Result<(Expectations, String)> {
    let exp = expectations(args)?;
    let label = if !args.module_dirs.is_empty() || args.kernel_modules.is_empty() {
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
                bail!(
                    "--kernel-module {}: give a .ko path relative to the kernel build, e.g. lib/list-test.ko",
                    rel.display()
                );
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
    /// The module API it was built for (a module directory's; kernel
    /// modules are the kernel's own).
    pub api: Api,
    /// Under `--api 3.5`: the 3.5 APIs the layer gave back, which a port to
    /// the test kernel must change.
    pub ports: Vec<Port>,
    /// Under `--api 3.5`: what the module uses that the board's 3.5 lacks.
    pub lacks: Vec<crate::board_api::Lack>,
}

/// Everything a run needs, built.
pub struct Prepared {
    pub profile: Profile,
    pub kernel: Kernel,
    pub units: Vec<Unit>,
    pub run_dir: tempfile::TempDir,
    /// What is under test, for messages and reports.
    pub label: String,
    /// The virtual board's module (QEMU only): see [`Prepared::add_virtual_board`].
    pub board: Option<Module>,
    /// The units that did not build (their label and the error), when
    /// several share the boot: the others run, and these fail.
    pub unbuilt: Vec<Unbuilt>,
    /// `--coverage`: the modules are built with gcov and the guest sends
    /// their counters after the last step.
    pub coverage: bool,
}

/// A unit that did not build: its label and the error, whole.
pub type Unbuilt = (String, String);

/// Where the virtual board's module goes in the guest, under [`plan::GUEST_DIR`].
pub const BOARD_FILE: &str = "board/tiny4412_board.ko";

/// How a module reaches the virtual board, as prefixes of the kernel
/// functions it would import: the 3.5 layer's ioremap() (`__symbol_get`,
/// which asks the model for a register range), gpiolib by number
/// (`gpio_request`, and `gpio_to_desc` under the inline
/// `gpio_get_value`/`gpio_to_irq`), gpio descriptors, and an interrupt
/// (`request_threaded_irq` under `request_irq`, `request_any_context_irq`,
/// their devm_ forms), a clock by 3.5's name (`clk_get`, which the board
/// registers).
const BOARD_REACHED_BY: &[&str] = &[
    "__symbol_get",
    "gpio",
    "devm_gpio",
    "request_threaded_irq",
    "request_any_context_irq",
    "devm_request_threaded_irq",
    "devm_request_any_context_irq",
    "clk_get",
    "devm_clk_get",
];

impl Prepared {
    /// The plan's view of the modules: name and file name.
    pub fn plan_modules(modules: &[Module]) -> Vec<PlanModule> {
        modules.iter().map(|m| PlanModule { name: m.name.clone(), file: format!("{}.ko", m.name) }).collect()
    }

    /// The unit its steps' markers name (`unit/step`): the unit's label
    /// when several share the boot, none for a single one.
    pub fn unit_name<'a>(&self, unit: &'a Unit) -> Option<&'a str> {
        (self.units.len() > 1).then_some(unit.label.as_str())
    }

    /// Builds the virtual board (`compat35/board/`) for a QEMU guest (a
    /// real board is the board) when a unit's steps act on the board, or
    /// one of its modules can reach it: it imports a kernel function of
    /// [`BOARD_REACHED_BY`]. A module that cannot is not made to wait for
    /// its load.
    pub fn add_virtual_board(&mut self, jobs: usize, sandbox: Sandbox, stages: &Stages) -> Result<()> {
        let reaches = |m: &Module| -> Result<bool> {
            Ok(module::imports(&m.ko)?.iter().any(|s| BOARD_REACHED_BY.iter().any(|p| s.starts_with(p))))
        };
        let acts = self.units.iter().find(|u| u.expectations.uses_board() || u.expectations.stock_drivers);
        if self.profile.qemu.virtual_board == Some(false) {
            // Its modules' accesses to the board's registers are QEMU's
            // rejected accesses (NEEDS-THE-BOARD); only steps that press a
            // key or read the LEDs cannot run at all.
            if let Some(u) = acts {
                bail!(
                    "{}: its steps act on the board (keys, LEDs, ADC), and the {} profile's kernel has no virtual \
                        Tiny4412 (compat35/board/ is written for the stand-in kernel): check it on the board \
                            (replay), or on the stand-in with --profile exynos4210",
                    if u.label.is_empty() { &self.label } else { &u.label },
                    self.profile.name
                );
            }
            return Ok(());
        }
        // A unit that asks for the stock image's drivers (their /dev names, if nothing else).
        let mut needed = acts.is_some();
        for m in self.units.iter().flat_map(|u| &u.modules) {
            needed = needed || reaches(m)?;
        }
        if !needed {
            return Ok(());
        }
        let (m, cached) = build_virtual_board(&self.kernel, &self.run_dir.path().join("board"), jobs, sandbox)?;
        stages.say("board", format!("the virtual Tiny4412 ({})", if cached { "kept build" } else { "built" }));
        self.board = Some(m);
        Ok(())
    }

    /// The one unit, for the subcommands that take one module directory.
    pub fn single(&self) -> Result<&Unit> {
        match self.units.as_slice() {
            [one] => Ok(one),
            _ => bail!("give one --module DIR here (several run only under `check`)"),
        }
    }

    /// Every module of every unit, in load order, with its file in the
    /// guest: a directory per unit when there are several, since two units
    /// may each have a module of the same name.
    pub fn guest_modules(&self) -> Vec<(String, PathBuf)> {
        self.units
            .iter()
            .flat_map(|u| u.modules.iter().map(move |m| (self.guest_file(u, &format!("{}.ko", m.name)), m.ko.clone())))
            .chain(self.board.iter().map(|m| (BOARD_FILE.to_string(), m.ko.clone())))
            .collect()
    }

    fn guest_file(&self, unit: &Unit, file: &str) -> String {
        if self.units.len() > 1 {
            format!("{}/{file}", unit.label)
        } else {
            file.to_string()
        }
    }

    /// Where a unit's programs go in the guest: /usr/bin for a single unit,
    /// else a directory of the unit's own (put first on its commands' PATH),
    /// so that two lessons may each have an `app`.
    pub fn bin_dir(&self, unit: &Unit) -> String {
        if self.units.len() > 1 {
            format!("{}/bin/{}", crate::plan::GUEST_DIR, unit.label)
        } else {
            "/usr/bin".to_string()
        }
    }

    /// Every program of every unit, with the guest directory it goes to.
    pub fn all_programs(&self) -> Vec<(Program, String)> {
        self.units.iter().flat_map(|u| u.programs.iter().map(move |p| (p.clone(), self.bin_dir(u)))).collect()
    }

    /// The guest's plan: each unit's steps in turn (each carrying its unit
    /// when there are several), then one leaks step for all.
    pub fn guest_plan(&self) -> Plan {
        let several = self.units.len() > 1;
        let mut steps = Vec::new();
        for u in &self.units {
            for st in u.plan.steps.iter().filter(|s| s.action != plan::Action::Leaks) {
                let mut st = st.clone();
                if several {
                    st.unit = self.unit_name(u).map(str::to_string);
                    match &mut st.action {
                        plan::Action::Run { bin, .. } => *bin = Some(self.bin_dir(u)),
                        plan::Action::Insmod { file, .. } if !file.starts_with('/') => *file = self.guest_file(u, file),
                        plan::Action::Reload { modules, .. } => {
                            for (_, file) in modules.iter_mut().filter(|(_, f)| !f.starts_with('/')) {
                                *file = self.guest_file(u, file);
                            }
                        }
                        _ => {}
                    }
                }
                steps.push(st);
            }
        }
        steps.push(plan::PlannedStep::new(StepKind::Leaks.word(), plan::Action::Leaks));
        let stock =
            self.units.iter().map(|u| (self.unit_name(u).map(str::to_string), u.expectations.stock_drivers)).collect();
        Plan {
            steps,
            shell: false,
            shell_on_failure: false,
            board: self.board.as_ref().map(|_| format!("{}/{}", plan::GUEST_DIR, BOARD_FILE)),
            stock,
            coverage: self.coverage,
        }
    }
}

/// The virtual board's module (`compat35/board/`) for `kernel`, built in
/// `work` (or kept from the module cache: the bool). It builds as a 3.5
/// module, for the layer's `<mach/*.h>` numbers.
pub fn build_virtual_board(kernel: &Kernel, work: &Path, jobs: usize, sandbox: Sandbox) -> Result<(Module, bool)> {
    let opts = module::Options { jobs, api: Api::Linux35, sandbox, coverage: false };
    let built = std::fs::create_dir_all(work)
        .with_context(|| format!("creating {}", work.display()))
        .and_then(|_| module::build(&crate::repo_root().join("compat35/board"), kernel, work, &opts))
        .context(
            "building the virtual board (compat35/board/); a module that builds for this kernel should too, so \
            this is the harness's bug",
        )?;
    let cached = built.cached;
    let m = built.modules.into_iter().next().context("compat35/board/ built no .ko")?;
    Ok((m, cached))
}

/// What a unit is made from.
enum Origin {
    /// A module directory, built with kbuild.
    Dir(PathBuf),
    /// Several directories as one unit (`--together`), each built with its
    /// own Makefile; `programs` is the one whose expectations hold the
    /// programs.
    Dirs { dirs: Vec<PathBuf>, programs: usize },
    /// Modules of the kernel build: one given module, with any other given
    /// one it depends on.
    Kernel(Vec<Module>),
}

/// Validates, gets the kernel, builds the modules and programs and plans
/// the run. A failure after the run directory exists keeps it, so that the
/// logs the error names are there.
///
/// Each module directory is a unit, and so is each kernel module (with the
/// given ones it depends on), after the directories: several units share
/// one boot, each with its own steps and verdict.
pub fn prepare(kernel_args: &KernelArgs, module_args: &ModuleArgs, stages: &Stages) -> Result<Prepared> {
    let dirs = module_args.module_dirs();
    let kernel_only = dirs.is_empty();
    // Everything that can be checked before the kernel is.
    let checked = check_units(module_args, &dirs)?;
    let kernel_exp = if kernel_only {
        Some(validate(module_args)?.0)
    } else if module_args.kernel_modules.is_empty() {
        None
    } else {
        Some(validate(&module_args.with_kernel_modules(module_args.kernel_modules.clone()))?.0)
    };
    let label =
        dirs.iter().chain(&module_args.kernel_modules).map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
    let configs = crate::repo_root().join("configs");
    let profile_name = Profile::load(&kernel_args.profile, &configs)?.name;
    let defaults = checked.iter().any(|(_, e, _)| e.defaults) || kernel_exp.as_ref().is_some_and(|e| e.defaults);
    stages.say(
        "config",
        format!("profile {profile_name}, {label}{}", if defaults { " (default expectations)" } else { "" }),
    );
    // A Rust module's target before the kernel, which may take minutes to
    // build: a missing one is added, or its command shown, at once.
    for (_, _, dir) in &checked {
        crate::toolchain::ensure(dir, &crate::cache::root().join("logs"))?;
    }
    let sandbox = Sandbox::from_flag(module_args.no_sandbox);
    if !checked.is_empty() {
        sandbox.ready()?;
    }
    let (profile, kernel) = self::kernel(kernel_args, stages)?;
    if module_args.coverage {
        require_gcov(&profile, &kernel)?;
    }

    let mut origins: Vec<(String, Expectations, Origin)> = checked
        .into_iter()
        .map(|(name, exp, dir)| {
            let origin = if module_args.together {
                Origin::Dirs { programs: dirs.iter().position(|d| *d == dir).unwrap_or(0), dirs: dirs.clone() }
            } else {
                Origin::Dir(dir)
            };
            (name, exp, origin)
        })
        .collect();
    if let Some(exp) = kernel_exp {
        add_kernel_modules(&mut origins, &module_args.kernel_modules, &exp, &kernel)?;
    }
    let several = origins.len() > 1;
    if several && module_args.expect.is_some() {
        bail!(
            "--expect names one expectations file, but the kernel modules given do not depend on each other: they \
            run as {} units, each with the default expectations",
            origins.len()
        );
    }
    let stem = Path::new(label.split(", ").next().unwrap_or("module"))
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let run_dir = new_run_dir(&format!("{}-{stem}-", profile.name))?;
    let built =
        build_units(origins, &kernel, &profile, run_dir.path(), &Build { kernel_args, module_args, sandbox, stages });
    let (units, unbuilt) = match built {
        Ok(built) => built,
        Err(e) => {
            let kept = run_dir.keep();
            return Err(anyhow::anyhow!("{e:#}\n(run directory kept: {})", kept.display()));
        }
    };
    // Two units may load modules of the same name (every lesson's `hello`):
    // see guest_modules() and Transcript::unit_view().
    Ok(Prepared { profile, kernel, units, run_dir, label, board: None, unbuilt, coverage: module_args.coverage })
}

/// The units' directories checked before the kernel: how --together and
/// --expect go with them, and each one's expectations (one for all with
/// --together).
fn check_units(module_args: &ModuleArgs, dirs: &[PathBuf]) -> Result<Vec<(String, Expectations, PathBuf)>> {
    // Known before the kernel: more than one unit for sure (kernel modules
    // may still merge into one by their dependencies, found after it).
    if let (true, Some(ko)) = (module_args.together, module_args.kernel_modules.first()) {
        bail!(
            "--together joins --module directories, each built here with its own Makefile, into one unit; \
            --kernel-module {} is a module of the kernel build, which always runs as a unit of its own: drop \
            --together, or check the kernel module in a run of its own",
            ko.display()
        );
    }
    if module_args.together && dirs.len() < 2 {
        bail!("--together joins several --module directories into one unit: give two or more ({} given)", dirs.len());
    }
    if module_args.expect.is_some()
        && !module_args.together
        && (dirs.len() > 1 || (!dirs.is_empty() && !module_args.kernel_modules.is_empty()))
    {
        bail!(
            "--expect names one expectations file; with several --module (or --kernel-module beside --module), each \
            directory's expect.toml is used (or give --together: the directories are one unit)"
        );
    }
    if module_args.together {
        Ok(vec![together(module_args, dirs)?])
    } else {
        validate_dirs(module_args, dirs)
    }
}

/// The directories of `--together` validated as one unit: its name joins
/// theirs with `+`; its expectations are --expect's, else the one
/// directory's expect.toml among them (two are refused: which would
/// judge?); the directory returned is the one the programs are in.
fn together(module_args: &ModuleArgs, dirs: &[PathBuf]) -> Result<(String, Expectations, PathBuf)> {
    let mut chosen: Option<(Expectations, PathBuf)> = None;
    let mut names = Vec::new();
    for d in dirs {
        let own = ModuleArgs { expect: None, ..module_args.with_dir(d.clone()) };
        let (exp, label) = validate(&own)?;
        names.push(d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(label));
        if exp.defaults || module_args.expect.is_some() {
            continue;
        }
        if let Some((_, first)) = &chosen {
            bail!(
                "--together: {} and {} both have an expectations file; keep one (it judges the whole unit), or give \
                --expect",
                first.display(),
                d.display()
            );
        }
        chosen = Some((exp, d.clone()));
    }
    let (exp, dir) = match (&module_args.expect, chosen) {
        (Some(_), _) => {
            let exp = expectations(module_args)?;
            let has_all = |d: &&PathBuf| exp.programs.iter().all(|p| d.join(p).is_file());
            let Some(dir) = dirs.iter().find(has_all).cloned() else {
                bail!("--together: no one of the directories holds every program --expect names");
            };
            (exp, dir)
        }
        (None, Some(c)) => c,
        (None, None) => (Expectations::defaults(), dirs[0].clone()),
    };
    let name = names.join("+");
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!(
            "--together: the directories' names label the unit's steps, so they cannot hold spaces: rename or link \
            them"
        );
    }
    Ok((name, exp, dir))
}

/// What building the units takes from the command line.
struct Build<'a> {
    kernel_args: &'a KernelArgs,
    module_args: &'a ModuleArgs,
    sandbox: Sandbox,
    stages: &'a Stages,
}

/// Builds each unit (its modules, programs and plan) in `run_dir`, in a
/// directory of its own when there are several.
fn build_units(
    origins: Vec<(String, Expectations, Origin)>,
    kernel: &Kernel,
    profile: &Profile,
    run_dir: &Path,
    b: &Build,
) -> Result<(Vec<Unit>, Vec<Unbuilt>)> {
    let several = origins.len() > 1;
    let mut units = Vec::new();
    let mut unbuilt = Vec::new();
    for (i, (name, exp, origin)) in origins.into_iter().enumerate() {
        let api = api::resolve(b.module_args.api, exp.api, profile.api);
        // On a kernel that has the API itself (3.5's own), no layer.
        let api = if Some(api) == profile.kernel_api { Api::Native } else { api };
        let opts =
            module::Options { jobs: b.kernel_args.jobs(), api, sandbox: b.sandbox, coverage: b.module_args.coverage };
        let work = if several { run_dir.join(format!("unit-{i}-{name}")) } else { run_dir.to_path_buf() };
        let built = std::fs::create_dir_all(&work)
            .with_context(|| format!("creating {}", work.display()))
            .and_then(|_| build(kernel, origin, &exp, &work, &opts, b.stages));
        match built {
            Ok((built, programs, plan)) => units.push(Unit {
                label: if several { name } else { String::new() },
                modules: built.modules,
                programs,
                expectations: exp,
                plan,
                api: opts.api,
                ports: built.ports,
                lacks: built.lacks,
            }),
            // One unit's build error does not stop the others: it is that
            // unit's verdict (a course's lessons in one boot).
            Err(e) if several => {
                eprintln!("harness: {name} does not build; the other units run: {}", first_line(&e));
                unbuilt.push((name, format!("{e:#}")));
            }
            Err(e) => return Err(e),
        }
    }
    if units.is_empty() {
        let errors = unbuilt.iter().map(|(n, e)| format!("{n}: {e}")).collect::<Vec<_>>().join("\n\n");
        bail!("no unit builds:\n{errors}");
    }
    if units.len() > 1 {
        for hint in together_hints(&units) {
            eprintln!("harness: note: {hint}");
        }
    }
    Ok((units, unbuilt))
}

/// Each module directory validated (its expectations and label), named by
/// its last component; two of one name are refused, since their steps
/// would be named alike.
fn validate_dirs(module_args: &ModuleArgs, dirs: &[PathBuf]) -> Result<Vec<(String, Expectations, PathBuf)>> {
    let mut checked: Vec<(String, Expectations, PathBuf)> = Vec::new();
    for d in dirs {
        let (exp, label) = validate(&module_args.with_dir(d.clone()))?;
        let name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(label);
        if checked.iter().any(|(n, _, _)| *n == name) {
            bail!("two --module directories are both named {name:?}: their steps would have the same names");
        }
        // The name becomes the unit of every step's marker, one word.
        if dirs.len() + module_args.kernel_modules.len() > 1
            && (name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            bail!(
                "--module {}: with several directories each one's name labels its steps, so it cannot hold spaces: \
                rename or link it",
                d.display()
            );
        }
        if dirs.len() + module_args.kernel_modules.len() > 1 && exp.expects_reset() {
            bail!(
                "--module {}: its steps end with the board reset, which ends the boot for every unit after it: \
                check it on its own",
                d.display()
            );
        }
        checked.push((name, exp, d.clone()));
    }
    Ok(checked)
}

/// The kernel's own modules (`--kernel-module`, relative to its build) as
/// units after the directories: one per group of modules that depend on
/// each other, with the expectations `exp`.
fn add_kernel_modules(
    origins: &mut Vec<(String, Expectations, Origin)>,
    rels: &[PathBuf],
    exp: &Expectations,
    kernel: &Kernel,
) -> Result<()> {
    let modules =
        rels.iter().map(|rel| module::prebuilt(&kernel.build_dir.join(rel), kernel)).collect::<Result<Vec<_>>>()?;
    for group in by_dependency(rels, modules) {
        let name = group
            .iter()
            .map(|(rel, _)| rel.file_stem().unwrap_or_default().to_string_lossy())
            .collect::<Vec<_>>()
            .join("+");
        if origins.iter().any(|(n, _, _)| *n == name) {
            bail!(
                "a --module directory and a --kernel-module are both named {name:?}: their steps would have the \
                same names"
            );
        }
        origins.push((name, exp.clone(), Origin::Kernel(group.into_iter().map(|(_, m)| m).collect())));
    }
    Ok(())
}

/// The given kernel modules grouped so that a module shares a unit with any
/// given module it depends on (loaded first): the groups are the connected
/// parts of the `depends` graph, in the order of their first module.
fn by_dependency(paths: &[PathBuf], modules: Vec<Module>) -> Vec<Vec<(PathBuf, Module)>> {
    let mut group: Vec<usize> = (0..modules.len()).collect();
    // A few modules at most: merge until nothing changes.
    loop {
        let mut changed = false;
        for (i, m) in modules.iter().enumerate() {
            for (j, other) in modules.iter().enumerate() {
                if m.depends.contains(&other.name) && group[i] != group[j] {
                    let (keep, gone) = (group[i].min(group[j]), group[i].max(group[j]));
                    group.iter_mut().filter(|g| **g == gone).for_each(|g| *g = keep);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut out: Vec<(usize, Vec<(PathBuf, Module)>)> = Vec::new();
    for ((g, p), m) in group.into_iter().zip(paths).zip(modules) {
        match out.iter_mut().find(|(id, _)| *id == g) {
            Some((_, v)) => v.push((p.clone(), m)),
            None => out.push((g, vec![(p.clone(), m)])),
        }
    }
    out.into_iter().map(|(_, v)| v).collect()
}

/// Builds one unit's modules and programs, and plans its steps.
fn build(
    kernel: &Kernel,
    origin: Origin,
    exp: &Expectations,
    work: &Path,
    opts: &module::Options,
    stages: &Stages,
) -> Result<(module::ModuleBuild, Vec<Program>, Plan)> {
    let mut program_dir = work.join("module");
    let (built, from_dir) = match origin {
        Origin::Dir(dir) => (module::build(&dir, kernel, work, opts)?, true),
        Origin::Dirs { dirs, programs } => {
            program_dir = part_dir(work, programs).join("module");
            (build_together(&dirs, kernel, work, opts)?, true)
        }
        // Dependencies first, else in the order given.
        Origin::Kernel(modules) => {
            let given = modules.iter().map(|m| m.ko.display().to_string()).collect::<Vec<_>>().join("\n");
            (
                module::ModuleBuild {
                    modules: module::load_order(modules, &given),
                    ports: Vec::new(),
                    lacks: Vec::new(),
                    cached: false,
                },
                false,
            )
        }
    };
    let modules = &built.modules;
    if let Some(w) = modules.first().map(|m| &m.modpost_warnings) {
        for w in w {
            eprintln!("harness: build warning: {w}");
        }
    }
    let names: Vec<String> = modules.iter().map(|m| format!("{} ({})", m.name, m.vermagic.trim())).collect();
    let ported = if built.ports.is_empty() {
        String::new()
    } else {
        format!("; --api 3.5 gave back {} API(s) of Linux 3.5", built.ports.len())
    };
    let kept = if built.cached { " (kept build: the same sources were built for this kernel before)" } else { "" };
    stages.say("module", format!("{}{ported}{kept}", names.join(", ")));
    // A directory's programs are built from its copy (validate() refuses
    // programs for kernel modules).
    let programs = if from_dir && !exp.programs.is_empty() {
        packages::ensure(&packages::for_programs(&kernel.cross_compile), &crate::cache::root().join("logs"))?;
        program::build(&program_dir, &exp.programs, kernel, work, opts.sandbox)?
    } else {
        Vec::new()
    };
    if !programs.is_empty() {
        stages.say("program", programs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "));
    }
    let plan = plan::plan(&Prepared::plan_modules(modules), exp)?;
    Ok((built, programs, plan))
}

/// The kernel functions that register a platform device, and a driver.
const REGISTERS_DEVICE: &[&str] =
    &["platform_device_register", "platform_device_add", "platform_device_register_full", "platform_add_devices"];
const REGISTERS_DRIVER: &[&str] = &["__platform_driver_register", "platform_driver_register"];

/// Units that only make sense together, as separate units they never
/// meet (the first is unloaded before the second loads): one registers a
/// platform device and a later one a platform driver, and both hold the
/// same name (the one the driver binds by). A note each, naming the flag.
fn together_hints(units: &[Unit]) -> Vec<String> {
    let facts: Vec<(bool, bool, Vec<String>)> = units
        .iter()
        .map(|u| {
            let mut imports = Vec::new();
            let mut names = Vec::new();
            for m in &u.modules {
                imports.extend(module::imports(&m.ko).unwrap_or_default());
                names.extend(module::data_names(&m.ko, 4096).unwrap_or_default());
            }
            let has = |list: &[&str]| imports.iter().any(|i| list.contains(&i.as_str()));
            (has(REGISTERS_DEVICE), has(REGISTERS_DRIVER), names)
        })
        .collect();
    let mut hints = Vec::new();
    for (i, (device, _, names)) in facts.iter().enumerate() {
        for (j, (_, driver, other)) in facts.iter().enumerate() {
            if i == j || !*device || !*driver || facts[i].1 || facts[j].0 {
                continue;
            }
            if let Some(name) = names.iter().find(|n| other.contains(n)) {
                hints.push(format!(
                    "{} registers a platform device and {} a platform driver, both named {name:?}: as separate units \
                    they never meet; run them as one with --together",
                    units[i].label, units[j].label
                ));
            }
        }
    }
    hints
}

/// An error's first line, for a one-line message.
fn first_line(e: &anyhow::Error) -> String {
    format!("{e:#}").lines().next().unwrap_or_default().to_string()
}

/// Where the `i`th directory of a `--together` unit is built.
fn part_dir(work: &Path, i: usize) -> PathBuf {
    work.join(format!("part-{i}"))
}

/// The directories of a `--together` unit, each built with its own
/// Makefile; their modules in the order given (each directory's own load
/// order within it), their port lists and lacks joined.
fn build_together(
    dirs: &[PathBuf],
    kernel: &Kernel,
    work: &Path,
    opts: &module::Options,
) -> Result<module::ModuleBuild> {
    let mut all = module::ModuleBuild { modules: Vec::new(), ports: Vec::new(), lacks: Vec::new(), cached: true };
    for (i, dir) in dirs.iter().enumerate() {
        let part = part_dir(work, i);
        std::fs::create_dir_all(&part).with_context(|| format!("creating {}", part.display()))?;
        let built = module::build(dir, kernel, &part, opts).with_context(|| format!("building {}", dir.display()))?;
        for m in &built.modules {
            if all.modules.iter().any(|o| o.name == m.name) {
                bail!("--together: two directories build a module named {}: one unit loads each name once", m.name);
            }
        }
        all.modules.extend(built.modules);
        all.ports.extend(built.ports);
        all.lacks.extend(built.lacks);
        all.cached &= built.cached;
    }
    Ok(all)
}

/// A fresh nonce: 16 hex digits from the OS's random source, so that
/// nothing a guest or a board could know ahead (a clock, a pid) predicts it.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 8];
    // getrandom(2) fails only on kernels older than 3.17 without /dev/urandom.
    getrandom::fill(&mut bytes).expect("the OS has a random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where run directories go: `HARNESS_RUN_DIR`, else `harness-runs` beside
/// the caches (see [`crate::cache::scratch`]).
pub fn runs_root() -> PathBuf {
    match std::env::var_os("HARNESS_RUN_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => crate::cache::scratch("harness-runs"),
    }
}

/// A fresh run directory under `HARNESS_RUN_DIR` (default
/// `target/harness-runs` in a checkout, else `harness-runs` in the user's
/// cache directory), deleted on drop unless kept.
pub fn new_run_dir(prefix: &str) -> Result<tempfile::TempDir> {
    let runs = runs_root();
    std::fs::create_dir_all(&runs).with_context(|| format!("creating {}", runs.display()))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&runs)
        .with_context(|| format!("creating a run directory in {}", runs.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--coverage` keeps a profile with gcov (the default), and stops on one
    /// without it or a gcov variant, naming the fix.
    #[test]
    fn coverage_takes_a_profile_with_gcov() {
        let on = ModuleArgs { coverage: true, ..ModuleArgs::default() };
        let with = |p: &str| KernelArgs { profile: p.into(), ..KernelArgs::default() };
        assert_eq!(coverage_kernel(&with("exynos4210"), &on).unwrap().profile, "exynos4210");
        assert_eq!(coverage_kernel(&with("exynos4210"), &ModuleArgs::default()).unwrap().profile, "exynos4210");
        let e = format!("{:#}", coverage_kernel(&with("vexpress-a9"), &on).unwrap_err());
        assert!(e.contains("fragments/coverage.config"), "{e}");
    }

    /// Which kernels have gcov, as `replay --coverage` asks before it
    /// builds: the default's (a board booted with `board-image --profile
    /// exynos4210` runs it), not the real board's own nor the small
    /// emulated board's.
    #[test]
    fn the_default_kernel_builds_gcov_and_the_boards_do_not() {
        let configs = crate::repo_root().join("configs");
        let gcov = |p: &str| builds_gcov(&Profile::load(p, &configs).unwrap());
        assert!(gcov("exynos4210") && gcov("exynos4210-gdb"));
        assert!(!gcov("tiny4412") && !gcov("vexpress-a9-small") && !gcov("tiny4412-3.5"));
    }

    fn module(name: &str, depends: &[&str]) -> (PathBuf, Module) {
        let ko = PathBuf::from(format!("lib/{name}.ko"));
        let m = Module {
            ko: ko.clone(),
            name: name.into(),
            vermagic: "6.12.117".into(),
            depends: depends.iter().map(|d| d.to_string()).collect(),
            modpost_warnings: Vec::new(),
            sources: None,
        };
        (ko, m)
    }

    fn groups(given: &[(PathBuf, Module)]) -> Vec<Vec<String>> {
        let (paths, modules): (Vec<_>, Vec<_>) = given.iter().cloned().unzip();
        by_dependency(&paths, modules).into_iter().map(|g| g.into_iter().map(|(_, m)| m.name).collect()).collect()
    }

    #[test]
    fn kernel_modules_are_units_of_their_own_unless_one_needs_another() {
        let independent = [module("list_test", &[]), module("kmemleak_test", &[])];
        assert_eq!(groups(&independent), [vec!["list_test"], vec!["kmemleak_test"]]);
        // The user before its provider, and a third module between them.
        let given = [module("user", &["provider", "kunit"]), module("other", &[]), module("provider", &[])];
        assert_eq!(groups(&given), [vec!["user", "provider"], vec!["other"]]);
        // A chain through a module given last joins all three.
        let chain = [module("a", &["c"]), module("b", &[]), module("c", &["b"])];
        assert_eq!(groups(&chain), [vec!["a", "b", "c"]]);
    }
}
