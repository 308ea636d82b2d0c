//! `lava-job`: the check's scenario as a LAVA job (a `qemu` device, or a
//! Tiny4412 in a lab), and `recheck --lava-log`: our verdict from the log
//! of such a job. The job's text is the judge's (judge/lava.rs); here are
//! the artifacts, the files and the record that ties a log to its job.

use crate::guest::qemu::{self, BootImages};
use crate::guest::rootfs;
use crate::judge::expect::Expectations;
use crate::judge::lava::{self, Deploy, Scenario};
use crate::judge::step::Transcript;
use crate::judge::verdict::{RunEnd, Verdict};
use crate::options::{KernelArgs, LimitArgs, ModuleArgs};
use crate::prepare::{self, Stages};
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where the job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Device {
    /// LAVA's `qemu` device type: what a LAVA worker or tuxrun runs.
    Qemu,
    /// A FriendlyARM Tiny4412 in a lab (device type `tiny4412`, template
    /// configs/lava/tiny4412.jinja2), booted by its U-Boot.
    Tiny4412,
}

#[derive(clap::Args, Debug, Clone)]
pub struct LavaJobOptions {
    #[command(flatten)]
    pub kernel: KernelArgs,
    #[command(flatten)]
    pub module: ModuleArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[arg(long, value_enum, default_value = "qemu")]
    pub device: Device,
    /// How a Tiny4412 gets its images: `tftp` needs a U-Boot with a network
    /// driver (FriendlyARM's has none), `flasher` an SD-mux.
    #[arg(long, value_enum, default_value = "flasher")]
    pub deploy: Deploy,
    /// Output folder: job.yaml, the images, lava-job.json (for `recheck
    /// --lava-log`), and for `qemu` a device.yaml and dispatcher.yaml for a
    /// local `lava-run` [default: target/lava/DEVICE].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Where the lab serves the output folder's files [default: file:// URLs
    /// of the output folder, for a worker on this machine].
    #[arg(long, value_name = "URL")]
    pub url_base: Option<String>,
    /// A Tiny4412's kernel profile [default: the board's own, `tiny4412`],
    /// as `board-image --profile`: it must build the board's dtb.
    #[arg(long, value_name = "NAME")]
    pub board_profile: Option<String>,
}

/// What `recheck --lava-log` needs of the job: written beside job.yaml.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobRecord {
    pub nonce: String,
    /// The modules the job loads, for the verdict's plan.
    pub names: Vec<String>,
    /// The module folder whose expectations judge the log.
    pub module_dir: Option<PathBuf>,
    pub steps: Vec<String>,
    /// The build, for `recheck --lava-log --kcidb`.
    #[serde(default)]
    pub profile: String,
    #[serde(default)]
    pub kernel_release: String,
    #[serde(default)]
    pub compiler: String,
    /// The job's test timeout: a log LAVA says timed out ran this long.
    #[serde(default)]
    pub timeout_secs: u64,
}

pub const RECORD: &str = "lava-job.json";

/// Writes the job and everything it names into the output folder, and
/// returns that folder.
pub fn lava_job(o: &LavaJobOptions) -> Result<PathBuf> {
    let device = match o.device {
        Device::Qemu => "qemu",
        Device::Tiny4412 => "tiny4412",
    };
    let out = o.out.clone().unwrap_or_else(|| crate::repo_root().join("target/lava").join(device));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let out = out.canonicalize().with_context(|| format!("resolving {}", out.display()))?;
    let url = |file: &str| match &o.url_base {
        Some(base) => format!("{}/{file}", base.trim_end_matches('/')),
        None => format!("file://{}", out.join(file).display()),
    };
    let job = match o.device {
        Device::Qemu => qemu_job(o, &out, &url)?,
        Device::Tiny4412 => board_job(o, &out, &url)?,
    };
    let path = out.join("job.yaml");
    std::fs::write(&path, lava::to_yaml(&job)).with_context(|| format!("writing {}", path.display()))?;
    Ok(out)
}

fn write_record(out: &Path, o: &LavaJobOptions, p: &prepare::Prepared, s: &Scenario) -> Result<()> {
    let unit = p.single()?;
    let record = JobRecord {
        nonce: s.nonce.clone(),
        names: unit.modules.iter().map(|m| m.name.clone()).collect(),
        module_dir: o.module.module_dirs.first().map(|d| d.canonicalize().unwrap_or_else(|_| d.clone())),
        steps: s.steps.clone(),
        timeout_secs: s.timeout_minutes * 60,
        profile: p.profile.name.clone(),
        kernel_release: p.kernel.release.clone(),
        compiler: format!("{}gcc", p.kernel.cross_compile),
    };
    let path = out.join(RECORD);
    std::fs::write(&path, serde_json::to_string_pretty(&record)?).with_context(|| format!("writing {}", path.display()))
}

fn scenario(p: &prepare::Prepared, nonce: &str, limits: &LimitArgs) -> Scenario {
    let total = limits.resolve(&p.profile).total.as_secs();
    Scenario {
        name: format!("harness check {} ({})", p.label, p.profile.name),
        nonce: nonce.to_string(),
        steps: p.guest_plan().names(),
        timeout_minutes: total.div_ceil(60).max(1),
    }
}

fn copy(from: &Path, out: &Path, name: &str) -> Result<()> {
    std::fs::copy(from, out.join(name))
        .with_context(|| format!("copying {} into {}", from.display(), out.display()))?;
    Ok(())
}

/// The `qemu` job: the check's kernel, dtb and initramfs (with the job's
/// nonce), and for a local `lava-run` the device and dispatcher.
fn qemu_job(o: &LavaJobOptions, out: &Path, url: &dyn Fn(&str) -> String) -> Result<serde_json::Value> {
    let stages = Stages::new();
    let mut p = prepare::prepare(&o.kernel, &o.module, &stages)?;
    p.add_virtual_board(o.kernel.jobs(), crate::sandbox::Sandbox::from_flag(o.module.no_sandbox), &stages)?;
    let nonce = prepare::new_nonce();
    let (modules, programs, plan) = (p.guest_modules(), p.all_programs(), p.guest_plan());
    let loader = crate::loader::get(&p.kernel.cross_compile)?;
    let guest =
        // The census of steps.sh's shell functions: a LAVA device may be a
        // board with a C library of its own.
        rootfs::Guest {
            modules: &modules,
            programs: &programs,
            plan: &plan,
            nonce: &nonce,
            loader: Some(&loader),
            census: None,
        };
    let initramfs = out.join("initramfs.cpio");
    rootfs::write_initramfs(&crate::repo_root().join("rootfs"), &crate::busybox::get()?, &guest, &initramfs)?;
    copy(&p.kernel.image(&p.profile), out, "zImage")?;
    let dtb = p.profile.qemu.dtb.as_ref().map(|d| p.kernel.dtb(d));
    if let Some(d) = &dtb {
        copy(d, out, "board.dtb")?;
    }
    let images = BootImages { kernel: "zImage".into(), dtb: dtb.as_ref().map(|_| "board.dtb".into()), initramfs };
    let cmdline = qemu::join_cmdline(&qemu::kernel_cmdline(&p.profile)).to_string_lossy().into_owned();
    let argv = qemu::argv(&p.profile, &images, &[], None);
    let device = lava::qemu_device(&machine_options(&argv));
    std::fs::write(out.join("device.yaml"), lava::to_yaml(&device)).context("writing device.yaml")?;
    std::fs::write(out.join("dispatcher.yaml"), "{}\n").context("writing dispatcher.yaml")?;
    let s = scenario(&p, &nonce, &o.limits);
    write_record(out, o, &p, &s)?;
    let images = lava::QemuImages {
        kernel: url("zImage"),
        dtb: dtb.map(|_| url("board.dtb")),
        initrd: url("initramfs.cpio"),
        cmdline,
    };
    Ok(lava::qemu_job(&s, &images))
}

/// QEMU's argv as `check` gives it, less the images and the command line
/// (the job's to give), as the device's options: one flag with its value
/// per entry.
pub fn machine_options(argv: &[OsString]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = argv.iter().map(|a| a.to_string_lossy().into_owned()).peekable();
    while let Some(flag) = it.next() {
        let value = it.next_if(|v| !v.starts_with('-'));
        if ["-kernel", "-dtb", "-initrd", "-append"].contains(&flag.as_str()) {
            continue;
        }
        out.push(match value {
            Some(v) => format!("{flag} {v}"),
            None => flag,
        });
    }
    out
}

/// The Tiny4412 job: the board image's uImage (dtb appended) and the
/// initramfs as a uInitrd, from the board's own kernel (`board-image`).
fn board_job(o: &LavaJobOptions, out: &Path, url: &dyn Fn(&str) -> String) -> Result<serde_json::Value> {
    use crate::real_board::{build_image_with, Board};
    let configs = crate::repo_root().join("configs");
    let (board, profile) = Board::load(&Board::default_name(&configs)?, o.board_profile.as_deref(), &configs)?;
    let kernel = KernelArgs { profile: profile.name.clone(), build: o.kernel.build.clone() };
    let p = prepare::prepare(&kernel, &o.module, &Stages::new())?;
    let nonce = prepare::new_nonce();
    build_image_with(&board, &p, out, Some(&nonce))?;
    let s = scenario(&p, &nonce, &o.limits);
    write_record(out, o, &p, &s)?;
    let bootargs = format!("console={} rdinit=/init printk.devkmsg=on loglevel=5 panic=-1", board.console);
    let uinitrd = out.join("uInitrd");
    let ramdisk_bytes = std::fs::metadata(&uinitrd).with_context(|| format!("reading {}", uinitrd.display()))?.len();
    let images = lava::BoardImages { kernel: url("uImage"), ramdisk: url("uInitrd"), ramdisk_bytes, bootargs };
    Ok(lava::tiny4412_job(&s, &images, o.deploy))
}

/// `recheck --lava-log`'s options (flattened into `recheck`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LavaLogArgs {
    /// A LAVA job's log (the dispatcher's stderr, or the server's job.log)
    /// of a job `lava-job` wrote.
    #[arg(long, value_name = "FILE", conflicts_with = "transcript")]
    pub lava_log: Option<PathBuf>,
    /// The job's lava-job.json [default: beside the log].
    #[arg(long, value_name = "FILE", requires = "lava_log")]
    pub lava_job: Option<PathBuf>,
    /// Also write the verdict as a KCIDB v5.3 report (docs/kcidb.md).
    #[arg(long, value_name = "FILE", requires = "lava_log")]
    pub kcidb: Option<PathBuf>,
}

/// The most of a LAVA log read: a job's log is a few MiB; more is not one.
const MAX_LOG: u64 = 256 << 20;

/// Judges a LAVA job's log with the rules of the replay's recheck: only
/// this job's nonce opens and closes steps, the run ended as the markers
/// (and LAVA's own lines) say, a marker inside a line is a line.
pub fn recheck_lava(log: &Path, record: &Path, module: &ModuleArgs, kcidb: Option<&Path>) -> Result<Verdict> {
    let rec: JobRecord = serde_json::from_str(
        &std::fs::read_to_string(record)
            .with_context(|| format!("reading {} (give --lava-job FILE)", record.display()))?,
    )
    .with_context(|| format!("{}: not a lava-job.json", record.display()))?;
    use std::io::Read;
    let mut text = Vec::new();
    std::fs::File::open(log)
        .with_context(|| format!("reading the LAVA log {}", log.display()))?
        .take(MAX_LOG + 1)
        .read_to_end(&mut text)?;
    if text.len() as u64 > MAX_LOG {
        bail!("{}: more than {} MiB: not one job's log", log.display(), MAX_LOG >> 20);
    }
    let parsed = lava::read_log(&String::from_utf8_lossy(&text));
    let module = match (&rec.module_dir, module.module_dirs.is_empty() && module.kernel_modules.is_empty()) {
        (Some(dir), true) => module.with_dir(dir.clone()),
        _ => module.clone(),
    };
    let expectations = prepare::expectations(&module)?;
    let v = judge_lava(&parsed, &rec, &expectations, log)?;
    if let Some(path) = kcidb {
        let dir = module.module_dirs.first();
        let name = dir.and_then(|d| d.file_name()).map_or("module".into(), |n| n.to_string_lossy().into_owned());
        let source = crate::kcidb::source(dir.map(PathBuf::as_path), &name)?;
        let build = crate::judge::kcidb::Build {
            profile: rec.profile.clone(),
            kernel_release: rec.kernel_release.clone(),
            compiler: rec.compiler.clone(),
            start_time: None,
        };
        crate::kcidb::write(path, &[(source, &v)], &build, &rec.nonce)?;
    }
    Ok(v)
}

/// The verdict on a read LAVA log.
pub fn judge_lava(parsed: &lava::LavaLog, rec: &JobRecord, exp: &Expectations, log: &Path) -> Result<Verdict> {
    let mut t = Transcript::new(&rec.nonce);
    for l in &parsed.console {
        t.push(l);
    }
    if t.steps.is_empty() && !t.done {
        bail!(
            "{}: no step marker with the job's nonce {} ({} console lines): the log is of another job, or the \
             guest never ran its steps",
            log.display(),
            rec.nonce,
            parsed.console.len()
        );
    }
    let panicked = t
        .lines
        .iter()
        .any(|l| crate::judge::event::classify(&l.message) == Some(crate::judge::event::EventKind::Panic));
    let end = if t.done {
        RunEnd::Completed
    } else if panicked {
        RunEnd::Panicked
    } else if parsed.timed_out {
        RunEnd::TimedOut { after_secs: rec.timeout_secs }
    } else {
        RunEnd::ExitedEarly { status: None }
    };
    crate::replay::judge_transcript(&t, end, exp, &rec.names, &[], log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::verdict::Outcome;

    const NONCE: &str = "00000000000badca";

    /// A dispatcher's log of kmod/'s steps, as target records.
    fn log(lines: &[&str], extra: &str) -> lava::LavaLog {
        let mut text = String::from("{\"dt\": \"t\", \"lvl\": \"info\", \"msg\": \"start: 3 lava-test-monitor\"}\n");
        for l in lines {
            let msg = l.replace("@@harness ", &format!("@@harness {NONCE} "));
            text.push_str(&format!("{{\"dt\": \"t\", \"lvl\": \"target\", \"msg\": \"[   10.0] {msg}\"}}\n"));
        }
        text.push_str(extra);
        lava::read_log(&text)
    }

    fn judge(l: &lava::LavaLog) -> Result<Verdict> {
        let exp = Expectations::parse(
            &std::fs::read_to_string(crate::repo_root().join("kmod/expect.toml")).unwrap(),
            "kmod/expect.toml",
        )
        .unwrap();
        let rec = JobRecord {
            nonce: NONCE.into(),
            names: vec!["mmc_byte".into()],
            module_dir: None,
            steps: vec![],
            profile: String::new(),
            kernel_release: String::new(),
            compiler: String::new(),
            timeout_secs: 300,
        };
        judge_lava(l, &rec, &exp, Path::new("job.log"))
    }

    /// How the run ended comes from the markers, the kernel's panic, or
    /// LAVA's own record of a timeout; never from the target's words.
    #[test]
    fn a_lava_log_ends_as_its_markers_and_lava_say() {
        let insmod =
            ["@@harness begin census", "@@harness end census rc=0", "@@harness begin insmod", "process:insmod"];
        let lava_timeout =
            "{\"dt\": \"t\", \"lvl\": \"warning\", \"msg\": \"err: lava test monitoring has timed out\"}\n";
        let v = judge(&log(&insmod, lava_timeout)).unwrap();
        assert_eq!((v.outcome, v.end.clone()), (Outcome::TimedOut, RunEnd::TimedOut { after_secs: 300 }), "{v}");
        // The target saying so is a console line, and the run ended early.
        let said = "{\"dt\": \"t\", \"lvl\": \"target\", \"msg\": \"lava test monitoring has timed out\"}\n";
        assert_eq!(judge(&log(&insmod, said)).unwrap().end, RunEnd::ExitedEarly { status: None });
        let mut panicked = insmod.to_vec();
        panicked.push("Kernel panic - not syncing: Fatal exception");
        let v = judge(&log(&panicked, "")).unwrap();
        assert_eq!((v.outcome, v.end.clone()), (Outcome::Crashed, RunEnd::Panicked), "{v}");
        // Markers of another run only: refused.
        let other = lava::read_log("{\"lvl\": \"target\", \"msg\": \"@@harness 000000000000beef begin insmod\"}");
        let err = judge(&other).unwrap_err().to_string();
        assert!(err.contains("no step marker with the job's nonce"), "{err}");
    }

    #[test]
    fn the_device_options_are_checks_argv_without_the_images() {
        let argv: Vec<OsString> = [
            "-M",
            "smdkc210",
            "-smp",
            "2",
            "-kernel",
            "k",
            "-dtb",
            "d",
            "-initrd",
            "i",
            "-append",
            "a b",
            "-nodefaults",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(machine_options(&argv), ["-M smdkc210", "-smp 2", "-nodefaults"]);
    }
}
