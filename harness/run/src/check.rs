//! One `check`: prepare (kernel, modules, programs, plan), write the
//! initramfs, boot QEMU under the watch, judge.

use crate::guest::console::{ConsoleMsg, ConsoleReader};
use crate::guest::qemu::{self, BootImages, Qemu};
use crate::guest::qmp;
use crate::guest::rootfs;
use crate::guest::snapshot::{self, Snapshot, Start};
use crate::judge::marker::{marker_line, Marker};
use crate::judge::report::Report;
use crate::judge::step::Transcript;
use crate::judge::symbols::ModuleSymbols;
use crate::judge::verdict::{self, RunEnd, Verdict};
use crate::judge::watch::{Limits, Watch};
use crate::options::CheckOptions;
use crate::prepare::{self, Stages};
use crate::profile::Profile;
use crate::supervisor::{self, DriveEnd, LineSource, Next};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// What a check produced, beyond the verdict: where to look.
pub struct CheckReport {
    /// The verdict of the (first) module directory.
    pub verdict: Verdict,
    /// Every module directory's verdict, in order, with its label (one
    /// entry, labelled "", for a single directory).
    pub units: Vec<(String, Verdict)>,
    /// The run directory, if it was kept (`--keep`, or the check failed).
    pub run_dir: Option<PathBuf>,
    pub kernel_built_now: bool,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        self.units.iter().all(|(_, v)| v.passed())
    }
}

/// Runs a whole check. `Err` means the check could not be carried out (bad
/// input, a missing tool, a build failure); a verdict, passing or not, is `Ok`.
pub fn check(opts: &CheckOptions) -> Result<CheckReport> {
    let stages = Stages::new();
    let interactive = opts.shell || opts.shell_on_failure;
    if interactive {
        crate::guest::terminal::require()?;
    }
    if opts.gdb {
        crate::packages::ensure(&crate::packages::for_gdb(), &crate::cache::root().join("logs"))?;
    }
    let mut p = prepare::prepare(&prepare::coverage_kernel(&opts.kernel, &opts.module)?, &opts.module, &stages)?;
    p.add_virtual_board(opts.kernel.jobs(), crate::sandbox::Sandbox::from_flag(opts.module.no_sandbox), &stages)?;
    if interactive && p.units.len() > 1 {
        bail!(
            "--shell and --shell-on-failure open one shell, in one unit's steps: give one --module (or \
            --kernel-module)"
        );
    }
    let nonce = prepare::new_nonce();
    let busybox = crate::busybox::get()?;
    let (modules, programs) = (p.guest_modules(), p.all_programs());
    let plan = crate::plan::Plan { shell: opts.shell, shell_on_failure: opts.shell_on_failure, ..p.guest_plan() };
    let loader = crate::loader::get(&p.kernel.cross_compile)?;
    let census = crate::loader::census(&p.kernel.cross_compile)?;
    let guest = rootfs::Guest {
        modules: &modules,
        programs: &programs,
        plan: &plan,
        nonce: &nonce,
        loader: Some(&loader),
        census: Some(&census),
    };
    // Under gdb the guest stands still at each breakpoint: no deadline
    // but a day's (and a panic's).
    let limits = if opts.gdb { Limits::held() } else { opts.limits.resolve(&p.profile) };
    let ready = Ready { opts, p: &p, stages: &stages, guest: &guest, busybox: &busybox, helpers: (&loader, &census) };
    let booted = run_guest(&ready, limits)?;
    let views = unit_views(&p, &booted.transcript);
    let mut units = judge_units(&p, &booted, &views, &p.run_dir.path().join("console.log"))?;
    add_coverage(&p, &booted, &mut units);
    units.extend(
        p.unbuilt.iter().map(|(label, error)| (label.clone(), unbuilt(error, &p.run_dir.path().join("console.log")))),
    );
    let last = units.last().map(|(_, v)| v.outcome.to_string()).unwrap_or_default();
    stages.say(
        "verdict",
        if units.len() == 1 { last } else { format!("{} units (module directories and kernel modules)", units.len()) },
    );
    write_all(opts, &p, &stages, &units, &html_units(&p, &booted.transcript, &views, &units), &nonce)?;
    let passed = units.iter().all(|(_, v)| v.passed());
    let keep = opts.output.keep || !passed || p.coverage;
    let kept = keep.then(|| p.run_dir.keep());
    let verdict = units[0].1.clone();
    Ok(CheckReport { verdict, units, run_dir: kept, kernel_built_now: p.kernel.built_now })
}

/// How long a resumed guest may take to begin its first step: about a
/// second on an idle machine (the inbox's poll, the cpio, /init's set-up),
/// so this allows a machine thirty times busier before the check boots
/// instead, where the silence limit would have waited 120 s.
const RESUMED_START: Duration = Duration::from_secs(30);

/// What a check's guest is started with.
struct Ready<'a> {
    opts: &'a CheckOptions,
    p: &'a prepare::Prepared,
    stages: &'a Stages,
    guest: &'a rootfs::Guest<'a>,
    busybox: &'a Path,
    /// The loader and the census.
    helpers: (&'a Path, &'a Path),
}

/// The check's guest, resumed from its kernel's snapshot, or booted when it
/// cannot be (the `boot` stage says which, and why), run to its end.
fn run_guest(r: &Ready, limits: Limits) -> Result<Boot> {
    let p = r.p;
    let machine = format!("qemu-system-arm -M {} -smp {}", p.profile.qemu.machine, p.profile.qemu.smp);
    let kernel = p.kernel.image(&p.profile);
    let dtb = p.profile.qemu.dtb.as_ref().map(|d| p.kernel.dtb(d));
    let resumed = match start_of(r.opts, p, r.busybox, r.helpers) {
        Start::Resume(snapshot) => {
            let made = if snapshot.made_now { ", saved now" } else { "" };
            r.stages.say("boot", format!("{machine}, resumed from {}{made}", snapshot.dir.display()));
            let payload = rootfs::payload(r.guest)?;
            let images = BootImages { kernel: kernel.clone(), dtb: dtb.clone(), initramfs: snapshot.initramfs.clone() };
            let launch = Launch { images: &images, resume: Some((&snapshot, &payload)) };
            // Its boot is done: a run it has not begun soon it did not get.
            // Under --gdb the user holds it, for as long as they like.
            let resumed = if r.opts.gdb { limits } else { Limits { start: Some(RESUMED_START), ..limits } };
            let attach = attach_of(r.opts, p, r.guest.plan);
            match boot(&p.profile, &launch, p.run_dir.path(), resumed, r.guest.nonce, attach) {
                Ok(b) if !b.transcript.steps.is_empty() => Ok(b),
                Ok(_) => Err(format!("the resumed guest began no step within {} s", RESUMED_START.as_secs())),
                Err(e) => Err(format!("{e:#}")),
            }
        }
        Start::Boot(why) => Err(why),
    };
    let why = match resumed {
        Ok(b) => return Ok(b),
        Err(why) => why,
    };
    let initramfs = p.run_dir.path().join("initramfs.cpio");
    rootfs::write_initramfs(&crate::repo_root().join("rootfs"), r.busybox, r.guest, &initramfs)?;
    r.stages.say("rootfs", initramfs.display());
    let images = BootImages { kernel, dtb, initramfs };
    r.stages.say("boot", format!("{machine}, booted: {why}"));
    let launch = Launch { images: &images, resume: None };
    boot(&p.profile, &launch, p.run_dir.path(), limits, r.guest.nonce, attach_of(r.opts, p, r.guest.plan))
}

/// Whether this check resumes a saved guest (the snapshot, made now if
/// need be) or boots, and why.
fn start_of(opts: &CheckOptions, p: &prepare::Prepared, busybox: &Path, (loader, census): (&Path, &Path)) -> Start {
    if opts.no_resume {
        return Start::Boot("--no-resume".into());
    }
    let reader = match crate::loader::inbox(&p.kernel.cross_compile) {
        Ok(r) => r,
        Err(e) => return Start::Boot(format!("{e:#}")),
    };
    let (kernel, dtb) = (p.kernel.image(&p.profile), p.profile.qemu.dtb.as_ref().map(|d| p.kernel.dtb(d)));
    let entry = p.kernel.build_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    snapshot::get(&snapshot::Inputs {
        profile: &p.profile,
        kernel: &kernel,
        dtb: dtb.as_deref(),
        busybox,
        loader,
        census,
        reader: &reader,
        kernel_entry: &entry,
    })
}

/// What the user attaches to this check's guest.
fn attach_of(opts: &CheckOptions, p: &prepare::Prepared, plan: &crate::plan::Plan) -> UserAttach {
    let shell = match (opts.shell, opts.shell_on_failure) {
        (_, true) => {
            UserShell::OnFailure(OnFailure { expectations: p.units[0].expectations.clone(), planned: plan.names() })
        }
        (true, false) => UserShell::AfterSteps,
        (false, false) => UserShell::No,
    };
    let gdb = opts.gdb.then(|| Gdb {
        vmlinux: p.kernel.build_dir.join("vmlinux"),
        modules: p.units.iter().flat_map(|u| u.modules.clone()).collect(),
    });
    UserAttach { shell, gdb }
}

/// The run's reports: `--json` and `--junit` where asked, the page in the
/// run directory and where `--report` says.
fn write_all(
    opts: &CheckOptions,
    p: &prepare::Prepared,
    stages: &Stages,
    units: &[(String, Verdict)],
    pages: &[crate::html::UnitForPage],
    nonce: &str,
) -> Result<()> {
    let timings = stages.timings();
    let reports: Vec<Report> = units
        .iter()
        .map(|(label, v)| Report {
            profile: &p.profile.name,
            module: if label.is_empty() { &p.label } else { label },
            kernel_release: &p.kernel.release,
            timings: &timings,
            verdict: v,
        })
        .collect();
    write_reports(&opts.output, &reports)?;
    if let Some(path) = &opts.output.kcidb {
        write_kcidb(path, opts, p, units, nonce)?;
    }
    let page = crate::html::Run { profile: &p.profile.name, kernel_release: &p.kernel.release, title: &p.label };
    crate::html::write(p.run_dir.path(), &page, pages)?;
    if let Some(file) = &opts.report {
        crate::html::write_to(file, p.run_dir.path(), &page, pages)?;
        stages.say("report", file.display());
    }
    Ok(())
}

/// Each unit's coverage (`--coverage`), from the files the guest sent; the
/// run directory is kept, for its coverage.info (genhtml, editors).
fn add_coverage(p: &prepare::Prepared, booted: &Boot, units: &mut [(String, Verdict)]) {
    if !p.coverage {
        return;
    }
    for (u, (label, v)) in p.units.iter().zip(units.iter_mut()) {
        let name = u.modules.first().map(|m| m.name.as_str()).unwrap_or(label.as_str());
        let c = crate::coverage::unit(&booted.transcript, &u.modules, p.run_dir.path(), &p.kernel.cross_compile, name);
        v.coverage = Some(c);
    }
}

/// The KCIDB report of every unit: each one's source found from its module
/// folder (a unit's label is its folder's name; a kernel's own module has none).
fn write_kcidb(
    path: &Path,
    opts: &CheckOptions,
    p: &prepare::Prepared,
    units: &[(String, Verdict)],
    nonce: &str,
) -> Result<()> {
    let dirs = &opts.module.module_dirs;
    let sources = units
        .iter()
        .map(|(label, v)| {
            let dir = if label.is_empty() {
                dirs.first()
            } else {
                dirs.iter().find(|d| d.file_name().is_some_and(|n| n.to_string_lossy() == *label))
            };
            let name = if label.is_empty() { &p.label } else { label };
            Ok((crate::kcidb::source(dir.map(PathBuf::as_path), name)?, v))
        })
        .collect::<Result<Vec<_>>>()?;
    let build = crate::judge::kcidb::Build {
        profile: p.profile.name.clone(),
        kernel_release: p.kernel.release.clone(),
        compiler: format!("{}gcc", p.kernel.cross_compile),
        start_time: None,
    };
    crate::kcidb::write(path, &sources, &build, nonce)
}

/// The verdict of a unit that did not build (its error whole, as a
/// check), when others of the boot did and ran.
fn unbuilt(error: &str, log: &Path) -> Verdict {
    let end = RunEnd::NotBuilt { error: error.to_string() };
    let exp = crate::judge::expect::Expectations::defaults();
    let mut v = verdict::judge(&Transcript::default(), &exp, &[], end, verdict::Context::new(log.to_path_buf()));
    v.checks.insert(
        0,
        crate::judge::expect::Check {
            step: "build".into(),
            description: "its modules and programs build".into(),
            held: false,
            detail: Some(error.to_string()),
        },
    );
    v
}

/// Each unit's verdict from the one boot: its steps, its stretch of the
/// console, the shared leaks step, its expectations. A unit whose steps all
/// finished is judged as completed even if a later unit crashed the guest.
fn judge_units(
    p: &prepare::Prepared,
    booted: &Boot,
    views: &[Option<Transcript>],
    log: &Path,
) -> Result<Vec<(String, Verdict)>> {
    let t = &booted.transcript;
    let unit_of = |u| p.unit_name(u);
    // Each unit's modules, named from where its own steps said they were
    // loaded (two units may load modules of the same name).
    let symbols: Vec<Vec<ModuleSymbols>> = p
        .units
        .iter()
        .map(|u| {
            u.modules.iter().map(|m| crate::module::symbols(&m.ko, &m.name, t, unit_of(u))).collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    let kernel_lines = kernel_lines(&p.kernel.build_dir.join("vmlinux"), t);
    let unmodelled = crate::judge::access::attribute(t, &booted.accesses, &memory_map(&p.profile)?);
    let memory = booted.memory.as_ref().map(|dump| match dump {
        Ok((file, seconds)) => memory_line(p, file, *seconds),
        Err(e) => format!("none: {e}"),
    });
    Ok(p.units
        .iter()
        .enumerate()
        .map(|(k, u)| {
            let (t, end) = match &views[k] {
                Some(view) => (view, unit_end(u, view, &booted.end)),
                None => (t, booted.end.clone()),
            };
            let ctx = verdict::Context {
                console_log: log.to_path_buf(),
                unit: unit_of(u).map(str::to_string),
                modules: u.modules.iter().map(|m| m.name.clone()).collect(),
                // The unit's own modules first: an unloaded module's bare
                // addresses may have been reused by a later one.
                symbols: symbols[k]
                    .iter()
                    .chain(symbols.iter().enumerate().filter(|(j, _)| *j != k).flat_map(|(_, s)| s))
                    .cloned()
                    .collect(),
                registers: end.is_hang().then(|| booted.registers.clone()).flatten(),
                memory: (end.is_hang() || end == RunEnd::Panicked).then(|| memory.clone()).flatten(),
                kernel_lines: kernel_lines.clone(),
                unmodelled: unmodelled.iter().filter(|a| a.unit.as_deref() == unit_of(u)).cloned().collect(),
                explain: crate::changes::load_explanations(t),
                api: u.api.to_string(),
                ports: u.ports.clone(),
                lacks: u.lacks.clone(),
            };
            (u.label.clone(), verdict::judge(t, &u.expectations, &u.plan.names(), end, ctx))
        })
        .collect())
}

/// Each unit's part of the page: its verdict, its stretch of the console
/// (an empty one for a unit that did not build), its expectations and the
/// folders of its sources.
fn html_units<'a>(
    p: &'a prepare::Prepared,
    whole: &'a Transcript,
    views: &'a [Option<Transcript>],
    units: &'a [(String, Verdict)],
) -> Vec<crate::html::UnitForPage<'a>> {
    units
        .iter()
        .enumerate()
        .map(|(k, (label, verdict))| match p.units.get(k) {
            Some(u) => crate::html::UnitForPage {
                label,
                verdict,
                transcript: Some(views[k].as_ref().unwrap_or(whole)),
                expectations: Some(&u.expectations),
                dirs: u.modules.iter().filter_map(|m| Some(m.sources.as_ref()?.now.clone())).collect(),
            },
            // The units that did not build come after those that did.
            None => crate::html::UnitForPage { label, verdict, transcript: None, expectations: None, dirs: Vec::new() },
        })
        .collect()
}

/// Each unit's stretch of the console and its own steps, when several
/// share the boot (`None`: the one unit's is the whole transcript).
fn unit_views(p: &prepare::Prepared, t: &Transcript) -> Vec<Option<Transcript>> {
    let unit_of = |u| p.unit_name(u);
    let starts: Vec<Option<usize>> = p.units.iter().map(|u| unit_of(u).and_then(|l| t.first_line_of(l))).collect();
    p.units
        .iter()
        .enumerate()
        .map(|(k, u)| {
            unit_of(u).map(|label| {
                let from = if k == 0 { 0 } else { starts[k].unwrap_or(t.lines.len()) };
                let to = starts[k + 1..].iter().flatten().next().copied().unwrap_or(t.lines.len());
                t.unit_view(label, from, to)
            })
        })
        .collect()
}

/// The verdict's line for a memory dump at `file`, which it first
/// completes for drgn (guest/kdump.rs): the kernel's release and machine and
/// the RAM's base in its header, the VMCOREINFO beside it.
fn memory_line(p: &prepare::Prepared, file: &Path, seconds: f64) -> String {
    use crate::guest::kdump;
    let mib = std::fs::metadata(file).map(|m| m.len() as f64 / (1 << 20) as f64).unwrap_or(0.0);
    let info = file.with_extension("vmcoreinfo");
    let completed = (|| -> Result<()> {
        let dtb = p
            .profile
            .qemu
            .dtb
            .as_ref()
            .context("the guest booted without a device tree, which says where its RAM starts")?;
        let phys_base = kdump::ram_base(&p.kernel.dtb(dtb))?;
        kdump::complete(
            file,
            &kdump::DumpedKernel { release: &p.kernel.release, machine: &p.profile.arch, phys_base },
        )?;
        let map = p.kernel.build_dir.join("System.map");
        let text = std::fs::read_to_string(&map).with_context(|| format!("reading {}", map.display()))?;
        std::fs::write(&info, kdump::vmcoreinfo(&p.kernel.release, &text)?)
            .with_context(|| format!("writing {}", info.display()))
    })();
    let how = match completed {
        Ok(()) => {
            // The kernel and every module under test, with their debug
            // information (the kernel's needs the exynos4210-gdb profile).
            let mut symbols = vec![p.kernel.build_dir.join("vmlinux")];
            symbols.extend(
                p.units
                    .iter()
                    .flat_map(|u| &u.modules)
                    .map(|m| crate::module::debug_file(&m.ko))
                    .filter(|d| d.is_file()),
            );
            let symbols: Vec<String> =
                symbols.iter().map(|s| format!("-s {}", crate::plan::quote(&s.to_string_lossy()))).collect();
            format!("open with: drgn -c {} --vmcoreinfo {} {}", file.display(), info.display(), symbols.join(" "))
        }
        Err(e) => format!("its header is QEMU's own ({e:#})"),
    };
    format!("{} ({}, {mib:.0} MiB, {seconds:.1} s; {how})", file.display(), qmp::DUMP_FORMAT)
}

/// The profile's memory map (`configs/memory-maps/`), or an empty one.
fn memory_map(profile: &Profile) -> Result<crate::judge::access::MemoryMap> {
    let Some(name) = &profile.qemu.memory_map else { return Ok(Default::default()) };
    let path = crate::repo_root().join("configs/memory-maps").join(name);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: invalid memory map: {}", path.display(), e.to_string().trim_end()))
}

/// The kernel's debug information, for the source lines of its frames in
/// the run's reports: only when there is a report, and the kernel has it
/// (the exynos4210-gdb profile; a vmlinux without costs one read of its
/// 10 MiB).
fn kernel_lines(vmlinux: &Path, t: &Transcript) -> Option<std::rc::Rc<crate::judge::lines::KernelLines>> {
    if crate::judge::event::scan(t, &|_| None).is_empty() {
        return None;
    }
    let data = std::fs::read(vmlinux).ok()?;
    match crate::judge::lines::KernelLines::parse(&data) {
        Ok(lines) => lines.map(std::rc::Rc::new),
        Err(e) => {
            eprintln!("harness: warning: no source lines for the kernel's frames: {}: {e:#}", vmlinux.display());
            None
        }
    }
}

/// How the boot ended, as one of several units sees it: completed if all
/// its own steps finished, whatever a later unit did; a step timeout named
/// without the unit when it is the unit's own step, with it when another's.
fn unit_end(u: &prepare::Unit, view: &Transcript, end: &RunEnd) -> RunEnd {
    let finished = u
        .plan
        .steps
        .iter()
        .filter(|s| s.action != crate::plan::Action::Leaks)
        // A second-round step that never began was skipped by the guest
        // (steps.sh: no second load after the first oopsed): the unit ended.
        .all(|s| {
            view.step(&s.name).is_some_and(|r| r.rc.is_some())
                || (crate::judge::step::round(&s.name).is_some() && view.step(&s.name).is_none())
        });
    match end {
        _ if finished => RunEnd::Completed,
        RunEnd::StepTimedOut { step, unit, after_secs } if unit.as_deref() == Some(u.label.as_str()) => {
            RunEnd::StepTimedOut { step: step.clone(), unit: None, after_secs: *after_secs }
        }
        other => other.clone(),
    }
}

/// What one boot produced.
pub struct Boot {
    pub transcript: Transcript,
    pub end: RunEnd,
    /// `info registers -a`, taken from a hung guest before it was killed.
    pub registers: Option<String>,
    /// What became of the guest's memory when the run ended in a hang or a
    /// panic with QEMU still there: the dump and how long it took, or why
    /// there is none.
    pub memory: Option<Result<(PathBuf, f64), String>>,
    /// The device accesses QEMU rejected, each after the number of console
    /// lines seen before it.
    pub accesses: Vec<(usize, crate::judge::access::Access)>,
}

/// Whether the user's terminal becomes the guest's shell, and when.
pub enum UserShell {
    No,
    /// `--shell`: before the unload steps (the plan says where).
    AfterSteps,
    /// `--shell-on-failure`: at the first step that fails; each step is
    /// judged as it ends against these.
    OnFailure(OnFailure),
}

/// `check --gdb`: the kernel whose symbols gdb loads, and the modules
/// whose symbols it adds where they are loaded.
pub struct Gdb {
    pub vmlinux: PathBuf,
    pub modules: Vec<crate::module::Module>,
}

/// What the user attaches to the run: their terminal as the guest's shell,
/// gdb, both or neither.
pub struct UserAttach {
    pub shell: UserShell,
    pub gdb: Option<Gdb>,
}

pub struct OnFailure {
    pub expectations: crate::judge::expect::Expectations,
    /// The planned step names, for [`Expectations::evaluate`].
    pub planned: Vec<String>,
}

/// Refuses an initramfs larger than the profile's room for it: past it the
/// kernel would hang before its console, with nothing to say why.
fn initramfs_fits(profile: &Profile, initramfs: &Path) -> Result<()> {
    let Some(max_mb) = profile.qemu.initramfs_max_mb else { return Ok(()) };
    let size =
        std::fs::metadata(initramfs).with_context(|| format!("reading the size of {}", initramfs.display()))?.len();
    if size > max_mb << 20 {
        bail!(
            "the initramfs {} is {} MB, over the {max_mb} MB that profile {} can boot (initramfs_max_mb in {}): \
             make the module directory's programs and files smaller, or use a profile with a smaller vmalloc= \
             and a larger initramfs_max_mb",
            initramfs.display(),
            size >> 20,
            profile.name,
            profile.path.display()
        );
    }
    Ok(())
}

/// Boots the guest and watches it until it powers off, panics, stops, hangs
/// or runs out of time. QEMU is killed and reaped on every path. With a
/// `shell`, the user's terminal is the guest's shell between the shell
/// markers (guest/terminal.rs), and is put back however the run ends. With
/// `gdb`, QEMU waits for gdb before the guest's first instruction.
pub fn boot(
    profile: &Profile,
    launch: &Launch,
    run_dir: &Path,
    limits: Limits,
    nonce: &str,
    attach: UserAttach,
) -> Result<Boot> {
    let UserAttach { shell, gdb } = attach;
    let images = launch.images;
    images_exist(images)?;
    initramfs_fits(profile, &images.initramfs)?;
    // Unix socket paths are limited to 108 bytes, which a run directory in a
    // deep checkout exceeds: the QMP (and gdb) sockets live in a short
    // private directory of their own, removed with it.
    let sock_dir =
        tempfile::Builder::new().prefix("harness-qmp-").tempdir().context("creating the QMP socket's directory")?;
    let socket = sock_dir.path().join("qmp.sock");
    let qmp_socket = (socket.as_os_str().len() < 100).then_some(socket.as_path());
    let errors_log = run_dir.join("guest-errors.log");
    let held = gdb.is_some();
    let (argv, gdb_says) = command_line(profile, launch, run_dir, (qmp_socket, sock_dir.path()), &errors_log, gdb)?;
    let stderr_log = run_dir.join("qemu.stderr");
    let interactive = !matches!(shell, UserShell::No);
    let (input, to_guest) = serial_input(interactive)?;
    let (guest, pipe) = start_qemu(
        profile,
        launch,
        (&argv, &stderr_log, input),
        (qmp_socket, &sock_dir.path().join(GDB_SOCKET)),
        held,
    )?;
    if let Some(says) = gdb_says {
        eprintln!("{says}");
    }
    let shell_marker = |open| marker_line(nonce, &Marker::Shell { open });
    let tee = interactive.then(|| (shell_marker(true), shell_marker(false)));
    let console = ConsoleReader::start_with_tee(pipe, &run_dir.join("console.log"), tee)?;
    // Raw only once QEMU runs; restored when `_raw` drops, on every path.
    let _raw = if interactive { Some(crate::guest::terminal::RawTerminal::enter()?) } else { None };
    let answer = match (shell, &to_guest) {
        (UserShell::OnFailure(f), Some(w)) => Some((f, w.try_clone().context("sharing the serial input pipe")?)),
        _ => None,
    };
    let relay = to_guest.map(crate::guest::terminal::Relay::start).transpose()?;

    let mut watch = Watch::new(Transcript::new(nonce), limits, Instant::now());
    let mut lines = GuestLines {
        console: &console,
        guest: &guest,
        answer,
        errors_log: &errors_log,
        marks: crate::judge::access::LogMarks::default(),
        qmp: qmp_socket,
        log_stopped: false,
        log_checked: Instant::now(),
    };
    let driven = supervisor::drive(&mut watch, &mut lines);
    let marks = std::mem::take(&mut lines.marks);
    if let Some(r) = relay {
        r.stop();
    }
    drop(_raw);
    let end = match driven? {
        DriveEnd::Closed(status) => watch.closed(status),
        DriveEnd::Ended(end) => end,
    };
    let (registers, memory) = post_mortem(&end, qmp_socket, &guest, run_dir)?;
    guest.kill()?;
    drop(guest);
    console.join();
    let transcript = watch.into_transcript();

    started(profile, &transcript, &end, &stderr_log)?;
    let accesses = crate::judge::access::placed(&read_bounded(&errors_log, GUEST_ERRORS_READ)?, &marks);
    Ok(Boot { transcript, end, registers, memory, accesses })
}

/// The serial input's pipe, QEMU's end and ours, for an interactive run.
fn serial_input(interactive: bool) -> Result<(Option<os_pipe::PipeReader>, Option<os_pipe::PipeWriter>)> {
    if !interactive {
        return Ok((None, None));
    }
    let (r, w) = os_pipe::pipe().context("creating the serial input pipe")?;
    Ok((Some(r), Some(w)))
}

/// The guest's console bytes: a resumed guest's begin with the boot its
/// snapshot saw.
type Console = std::io::Chain<std::io::Cursor<Vec<u8>>, os_pipe::PipeReader>;

/// QEMU started on `argv` (its stderr to the log, its serial input from
/// `input`); a resumed guest's run written in through the gdb stub and the
/// guest let go (unless `held` for the user's gdb), over the QMP and gdb
/// sockets.
fn start_qemu(
    profile: &Profile,
    launch: &Launch,
    (argv, stderr_log, input): (&[std::ffi::OsString], &Path, Option<os_pipe::PipeReader>),
    (qmp_socket, gdb_socket): (Option<&Path>, &Path),
    held: bool,
) -> Result<(Qemu, Console)> {
    let prelude = match launch.resume {
        Some((s, _)) => std::fs::read(&s.boot_log).with_context(|| format!("reading {}", s.boot_log.display()))?,
        None => Vec::new(),
    };
    let (guest, pipe) = Qemu::spawn_with_input(&profile.qemu.binary, argv, stderr_log, input)?;
    if let Some((snapshot, payload)) = launch.resume {
        let spec = profile.qemu.resume.as_ref().context("the profile has no [qemu.resume]")?;
        resume(qmp_socket, gdb_socket, &guest, (spec, snapshot), payload, held)?;
    }
    Ok((guest, std::io::Read::chain(std::io::Cursor::new(prelude), pipe)))
}

fn images_exist(images: &BootImages) -> Result<()> {
    for (what, p) in
        [("kernel image", Some(&images.kernel)), ("dtb", images.dtb.as_ref()), ("initramfs", Some(&images.initramfs))]
    {
        let Some(p) = p else { continue };
        if !p.is_file() {
            bail!("the {what} {} does not exist", p.display());
        }
    }
    Ok(())
}

/// A QEMU that never started the guest is an environment problem, not a
/// verdict on the module: an error with QEMU's own words.
fn started(profile: &Profile, transcript: &Transcript, end: &RunEnd, stderr_log: &Path) -> Result<()> {
    if transcript.lines.is_empty() {
        if let RunEnd::ExitedEarly { status } = end {
            let stderr = std::fs::read_to_string(stderr_log).unwrap_or_default();
            bail!(
                "{} exited (status {}) before printing anything:\n{}",
                profile.qemu.binary,
                status.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into()),
                stderr.trim()
            );
        }
    }
    Ok(())
}

/// QEMU's argv for this boot, also written to the run directory's
/// `qemu-command.txt`: the profile's machine, QMP on `sockets.0`, the
/// guest-error log, and with `gdb` its stub in `sockets.1` (the script
/// written and its command printed).
fn command_line(
    profile: &Profile,
    launch: &Launch,
    run_dir: &Path,
    sockets: (Option<&Path>, &Path),
    errors_log: &Path,
    gdb: Option<Gdb>,
) -> Result<(Vec<std::ffi::OsString>, Option<String>)> {
    let cmdline = qemu::kernel_cmdline(profile);
    let mut argv = qemu::with_guest_errors(&qemu::argv(profile, launch.images, &cmdline, sockets.0), errors_log);
    let socket = sockets.1.join(GDB_SOCKET);
    let mut says = None;
    if let Some(g) = gdb {
        let session = crate::guest::gdb::Session { vmlinux: g.vmlinux, socket: socket.clone(), modules: g.modules };
        let script = crate::guest::gdb::write(&session, &run_dir.join("gdb"))?;
        argv = crate::guest::gdb::qemu_args(&argv, &socket);
        // Said once QEMU runs (a resumed guest: once its run is written
        // in through the same stub, which takes one client at a time).
        says = Some(format!(
            "harness: gdb      the guest waits for gdb; in another terminal run:\n\n    {}\n",
            crate::guest::gdb::command(&script)
        ));
    }
    if let Some((snapshot, _)) = launch.resume {
        argv = qemu::resumed(&argv, &snapshot.state, &socket);
    }
    let shown: Vec<String> = argv.iter().map(|a| crate::plan::quote(&a.to_string_lossy())).collect();
    std::fs::write(run_dir.join("qemu-command.txt"), format!("{} {}\n", profile.qemu.binary, shown.join(" ")))
        .context("writing qemu-command.txt")?;
    Ok((argv, says))
}

/// The gdb stub's socket in a boot's socket directory: `check --gdb`'s,
/// and a resumed guest's for writing its run in.
const GDB_SOCKET: &str = "gdb.sock";

/// How a boot starts its guest: from the kernel, booting `images`; or
/// resumed from a snapshot of that boot (`images` are then the ones it
/// was made with: migration needs the same machine), with this run (a newc
/// cpio: rootfs::payload) written into its inbox before it runs on.
pub struct Launch<'a> {
    pub images: &'a BootImages,
    pub resume: Option<(&'a Snapshot, &'a [u8])>,
}

/// A resumed QEMU: waits until it holds the loaded guest, writes the run
/// into the guest's inbox, and lets it run on (under `check --gdb`, the
/// user's gdb does, as in a booted run).
fn resume(
    qmp_socket: Option<&Path>,
    gdb_socket: &Path,
    guest: &Qemu,
    (spec, snapshot): (&crate::profile::ResumeSpec, &Snapshot),
    payload: &[u8],
    held: bool,
) -> Result<()> {
    let qmp = qmp_socket.context("no QMP socket (its path is too long), which resuming needs")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    snapshot::wait_incoming(qmp, guest, deadline).with_context(|| format!("resuming {}", snapshot.state.display()))?;
    crate::guest::inbox::deliver(gdb_socket, spec, payload, Duration::from_secs(30))?;
    if !held {
        qmp::command(qmp, "cont", None, Duration::from_secs(10))?;
    }
    Ok(())
}

/// A memory dump of the guest, written or not: its file and the seconds it
/// took, or why there is none.
type Dump = Option<Result<(PathBuf, f64), String>>;

/// What a hung guest was doing (its CPUs' registers), and the memory of a
/// hung or panicked one (smdkc210 does not reset on a panic: QEMU is still
/// up), asked of QEMU before it is killed, each with a deadline.
fn post_mortem(
    end: &RunEnd,
    qmp_socket: Option<&Path>,
    guest: &Qemu,
    run_dir: &Path,
) -> Result<(Option<String>, Dump)> {
    let Some(sock) = qmp_socket else { return Ok((None, None)) };
    let registers =
        end.is_hang().then(|| match qmp::human_command(sock, "info registers -a", Duration::from_secs(5)) {
            Ok(r) => r,
            Err(e) => format!("(could not read the registers: {e:#})"),
        });
    // Under a second on smdkc210 (qmp.rs).
    let alive = guest.wait_until(Instant::now())?.is_none();
    let memory = ((end.is_hang() || *end == RunEnd::Panicked) && alive).then(|| dump_memory(sock, run_dir));
    Ok((registers, memory))
}

/// How much of QEMU's guest-error log is read, and written: a boot writes
/// about 100 KiB (smdkc210's clock controller, mostly); a module that
/// hammers an unmodelled register writes far more (measured: 156 MB in the
/// 3 s of an ADC busy-poll), and what lies past this is not needed to say
/// that it did, so QEMU's logging is turned off there (over QMP).
const GUEST_ERRORS_READ: u64 = 8 << 20;
/// How often the log's size is looked at: at 50 MB/s it overshoots the
/// bound by a few MB.
const LOG_CHECK: Duration = Duration::from_millis(100);

/// The first `limit` bytes of `path` as text; empty if it does not exist.
fn read_bounded(path: &Path, limit: u64) -> Result<String> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes).with_context(|| format!("reading {}", path.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Dumps the guest's memory into `run_dir`: the file and the seconds it
/// took, or why there is none.
fn dump_memory(socket: &Path, run_dir: &Path) -> Result<(PathBuf, f64), String> {
    let file = run_dir.join("memory.kdump");
    let started = Instant::now();
    match qmp::dump_memory(socket, &file, Duration::from_secs(10)) {
        Ok(()) => Ok((file, started.elapsed().as_secs_f64())),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// QEMU's console as the supervisor's line source, and under
/// `--shell-on-failure` the guest's serial input for its answers.
struct GuestLines<'a> {
    console: &'a ConsoleReader,
    guest: &'a Qemu,
    answer: Option<(OnFailure, os_pipe::PipeWriter)>,
    /// QEMU's guest-error log, and its length as each console line came:
    /// what places each rejected device access after a console line
    /// (judge/access.rs).
    errors_log: &'a Path,
    marks: crate::judge::access::LogMarks,
    /// QEMU's QMP socket, to turn the log off once it reaches
    /// [`GUEST_ERRORS_READ`]: a driver that busy-polls a register QEMU does
    /// not model (an ADC's end of conversion) logs some 50 MB a second.
    qmp: Option<&'a Path>,
    log_stopped: bool,
    log_checked: Instant,
}

impl GuestLines<'_> {
    /// Ten times a second, in silence too (a busy-polling driver prints
    /// nothing): the log's size, and logging off past the bound.
    fn bound_the_log(&mut self) {
        if self.log_stopped || self.log_checked.elapsed() < LOG_CHECK {
            return;
        }
        self.log_checked = Instant::now();
        let size = std::fs::metadata(self.errors_log).map(|m| m.len()).unwrap_or(0);
        if let (true, Some(sock)) = (size >= GUEST_ERRORS_READ, self.qmp) {
            self.log_stopped = true;
            match qmp::human_command(sock, "log none", Duration::from_secs(5)) {
                Ok(_) => eprintln!(
                    "harness: QEMU's guest-error log reached {} MiB; it is off for the rest of this boot (accesses to \
                        missing hardware after this are not seen)",
                    size >> 20
                ),
                Err(e) => eprintln!("harness: warning: could not turn QEMU's guest-error log off: {e:#}"),
            }
        }
    }
}

impl LineSource for GuestLines<'_> {
    fn next(&mut self, deadline: Instant) -> Result<Next> {
        self.bound_the_log();
        // Back soon even in silence, for the log's bound (an early Quiet is
        // only a look at the deadlines).
        let until = deadline.min(Instant::now() + LOG_CHECK);
        match self.console.lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(ConsoleMsg::Line(line)) => {
                // Kept as the log's changes (bounded with the log); a
                // missing log (nothing rejected yet) is empty.
                self.marks.push(std::fs::metadata(self.errors_log).map(|m| m.len()).unwrap_or(0));
                Ok(Next::Line(line))
            }
            Ok(ConsoleMsg::Closed) | Err(RecvTimeoutError::Disconnected) => {
                let status = self.guest.wait_until(Instant::now() + Duration::from_secs(5))?;
                Ok(Next::Closed(status.and_then(|s| s.code())))
            }
            Err(RecvTimeoutError::Timeout) => Ok(Next::Quiet),
        }
    }

    /// A step the guest waits on is judged now, on what the run said so
    /// far: "shell" if one of its expectations failed, else "go".
    fn after_line(&mut self, watch: &mut Watch) -> Result<()> {
        let (Some(step), Some((f, to_guest))) = (watch.take_await(), self.answer.as_mut()) else { return Ok(()) };
        let checks = f.expectations.evaluate(&f.planned, watch.transcript());
        let failed = checks.iter().any(|c| c.step == step.name && !c.held);
        to_guest.write_all(if failed { b"shell\n" } else { b"go\n" }).context("answering the guest on its serial input")
    }
}

/// The `--json` and `--junit` files of a run's reports (a check's units,
/// or a replay's one), where asked for.
pub fn write_reports(output: &crate::options::OutputArgs, reports: &[Report]) -> Result<()> {
    if let Some(path) = &output.json {
        std::fs::write(path, Report::json_all(reports)?).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &output.junit {
        std::fs::write(path, Report::junit_all(reports)?).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_initramfs_past_the_profiles_room_is_refused_before_booting() {
        let profile = Profile::load("exynos4210", &crate::repo_root().join("configs")).unwrap();
        let max = profile.qemu.initramfs_max_mb.expect("exynos4210 states its room for the initramfs");
        let dir = tempfile::tempdir().unwrap();
        let cpio = dir.path().join("initramfs.cpio");
        let file = std::fs::File::create(&cpio).unwrap();
        file.set_len(max << 20).unwrap();
        initramfs_fits(&profile, &cpio).unwrap();
        file.set_len((max << 20) + 1).unwrap();
        let err = initramfs_fits(&profile, &cpio).unwrap_err().to_string();
        assert!(err.contains("initramfs_max_mb") && err.contains("exynos4210"), "{err}");
    }
}
