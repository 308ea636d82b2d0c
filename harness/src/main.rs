//! `harness`: build a kernel and an out-of-tree module, boot them under QEMU,
//! run insmod/rmmod and judge the console.
//!
//! Exit status: 0 the check passed, 1 it failed (FAILED, CRASHED or
//! TIMED-OUT), 2 it could not be carried out (usage or environment).

use clap::{Parser, Subcommand};
use harness::run::{self, CheckOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "harness", version, about = "QEMU integration tests for out-of-tree kernel modules on the Tiny4412 family")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the kernel and the module, boot, insmod/rmmod, and judge.
    Check(CheckArgs),
    /// Build everything a real board needs (zImage, dtb, zImage-dtb, uImage,
    /// the module, optionally a uInitrd) into one folder, with boot commands.
    BoardImage(BoardImageArgs),
    /// Install the host packages, kernel source and busybox a check needs.
    Setup {
        #[arg(long, value_name = "PREFIX", default_value = "arm-linux-gnueabihf-")]
        cross_compile: String,
    },
    /// Run the check's steps on a real board over its serial console
    /// (scripts/board-replay wraps this): same steps, same verdict.
    Replay(ReplayArgs),
    /// Judge a transcript saved by `replay --transcript` again, offline.
    Recheck(RecheckArgs),
    /// Boot an emulated FriendlyARM board (QEMU, serial on a pty) to try
    /// `replay` without a board; prints the pty and runs until Ctrl-C.
    EmulateBoard {
        /// A profile whose UART takes input under QEMU (vexpress-a9's does;
        /// smdkc210's does not).
        #[arg(long)]
        profile: String,
    },
    /// Print one key covering the kernel builds of the given profiles (all
    /// shipped ones by default), for CI caches such as actions/cache.
    CacheKey {
        #[arg(long = "profile", value_name = "NAME")]
        profiles: Vec<String>,
        #[arg(long, value_name = "DIR|TARBALL")]
        kernel_src: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct BoardImageArgs {
    /// A board from configs/boards/.
    #[arg(long, default_value = "tiny4412")]
    board: String,
    /// Output folder [default: target/board-image/BOARD].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Module directory [default: kmod/].
    #[arg(long, value_name = "DIR")]
    module: Option<PathBuf>,
    /// Kernel source tree or tarball [default: newest /usr/src/linux-source-*.tar.xz].
    #[arg(long, value_name = "DIR|TARBALL")]
    kernel_src: Option<PathBuf>,
    /// Cross compiler prefix [default: the kernel profile's].
    #[arg(long, value_name = "PREFIX")]
    cross_compile: Option<String>,
    /// Also write the harness's initramfs as a U-Boot ramdisk (uInitrd), so the
    /// board runs the same /init steps as the QEMU guest.
    #[arg(long)]
    initramfs: bool,
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// The serial device on the board's console, e.g. /dev/ttyUSB0.
    #[arg(long, value_name = "DEVICE")]
    serial: PathBuf,
    /// The console's baud rate (the Tiny4412's U-Boot and kernel use 115200).
    #[arg(long, default_value_t = 115200)]
    baud: u32,
    /// Profile whose kernel --module is built against.
    #[arg(long, default_value = "exynos4210")]
    profile: String,
    /// Module directory to build; its expect.toml is the default expectations [default: kmod/].
    #[arg(long, value_name = "DIR")]
    module: Option<PathBuf>,
    /// A module built already (e.g. against the vendor kernel), instead of building --module.
    #[arg(long, value_name = "FILE")]
    ko: Option<PathBuf>,
    /// The module is on the board already (SD card, NFS) at this path: nothing is copied.
    #[arg(long, value_name = "PATH")]
    board_path: Option<String>,
    /// The module's name, with --board-path when there is no local module (nothing is built then).
    #[arg(long, value_name = "NAME")]
    module_name: Option<String>,
    /// Expectations file [default: expect.toml in the module directory].
    #[arg(long, value_name = "FILE")]
    expect: Option<PathBuf>,
    /// Kernel source tree or tarball to build --module against, as for `check`.
    #[arg(long, value_name = "DIR|TARBALL")]
    kernel_src: Option<PathBuf>,
    /// Cross compiler prefix [default: the profile's].
    #[arg(long, value_name = "PREFIX")]
    cross_compile: Option<String>,
    /// The user to log in as, if the board asks.
    #[arg(long, default_value = "root", value_name = "USER")]
    login: String,
    /// The password, if the board asks for one.
    #[arg(long, value_name = "PASSWORD")]
    password: Option<String>,
    /// How to copy files over the console [default: base64 if the board has it, else printf].
    #[arg(long, value_enum)]
    transfer: Option<harness::replay::transfer::Encoding>,
    /// Record the whole serial session (every byte received) to FILE, for `recheck`.
    #[arg(long, value_name = "FILE")]
    transcript: Option<PathBuf>,
    /// Give up when no shell prompt answers within this long.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    prompt_timeout: u64,
    /// Give up when one step (insmod, rmmod, …) runs longer than this.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    step_timeout: u64,
    /// Give up when the steps together run longer than this (TIMED-OUT).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    timeout: u64,
    /// Keep the run directory (serial log, module build) even on success.
    #[arg(long)]
    keep: bool,
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
}

#[derive(clap::Args)]
struct RecheckArgs {
    /// A transcript written by `replay --transcript`.
    #[arg(long, value_name = "FILE")]
    transcript: PathBuf,
    /// Expectations file [default: expect.toml in the module directory].
    #[arg(long, value_name = "FILE")]
    expect: Option<PathBuf>,
    /// Module directory whose expect.toml to use [default: kmod/].
    #[arg(long, value_name = "DIR")]
    module: Option<PathBuf>,
    /// The module's name [default: the one the replay wrote in its start line].
    #[arg(long, value_name = "NAME")]
    module_name: Option<String>,
    /// The .ko that was replayed, to name addresses in kernel reports.
    #[arg(long, value_name = "FILE")]
    ko: Option<PathBuf>,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Machine profile: a name from configs/profiles/ or a .toml path.
    #[arg(long, default_value = "exynos4210")]
    profile: String,
    /// Module directory with a Kbuild file or a tutorial-style Makefile [default: kmod/].
    #[arg(long, value_name = "DIR")]
    module: Option<PathBuf>,
    /// Load this module from the kernel build instead of building --module:
    /// a path relative to the build, e.g. lib/list-test.ko (a KUnit suite).
    #[arg(long, value_name = "PATH", conflicts_with = "module")]
    kernel_module: Option<PathBuf>,
    /// Expectations file [default: expect.toml in the module directory; for
    /// --kernel-module, every step must exit 0].
    #[arg(long, value_name = "FILE")]
    expect: Option<PathBuf>,
    /// Kernel source tree or tarball [default: newest /usr/src/linux-source-*.tar.xz].
    #[arg(long, value_name = "DIR|TARBALL")]
    kernel_src: Option<PathBuf>,
    /// Cross compiler prefix [default: the profile's, arm-linux-gnueabihf-].
    #[arg(long, value_name = "PREFIX")]
    cross_compile: Option<String>,
    /// Keep the run directory (console log, initramfs, module build) even on success.
    #[arg(long)]
    keep: bool,
    /// Give up on the guest after this many seconds in all (TIMED-OUT)
    /// [default: the profile's, else 300].
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Give up when one step (insmod, rmmod, …) runs longer than this
    /// [default: the profile's, else 60].
    #[arg(long, value_name = "SECS")]
    step_timeout: Option<u64>,
    /// Give up when the console prints nothing for this long
    /// [default: the profile's, else 120].
    #[arg(long, value_name = "SECS")]
    silence_timeout: Option<u64>,
    /// Write the whole verdict (steps, expectations, events, KUnit, timings) as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report: one test case per step, expectation and report.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Parallel make jobs [default: number of CPUs].
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = harness::process::install_signal_handler() {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    match cli.command {
        Command::BoardImage(a) => exit_on_error(board_image(a)),
        Command::Setup { cross_compile } => exit_on_error(run::setup(&cross_compile, true)),
        Command::CacheKey { profiles, kernel_src } => exit_on_error(cache_key(profiles, kernel_src)),
        Command::Replay(a) => replay(a),
        Command::Recheck(a) => recheck(a),
        Command::EmulateBoard { profile } => exit_on_error(emulate_board(&profile)),
        Command::Check(a) => {
            let defaults = CheckOptions::defaults();
            let opts = CheckOptions {
                profile: a.profile,
                module_dir: a.module.unwrap_or(defaults.module_dir),
                kernel_module: a.kernel_module,
                expect: a.expect,
                kernel_src: a.kernel_src,
                cross_compile: a.cross_compile,
                keep: a.keep,
                limits: run::LimitOverrides {
                    total: a.timeout.map(Duration::from_secs),
                    step: a.step_timeout.map(Duration::from_secs),
                    silence: a.silence_timeout.map(Duration::from_secs),
                },
                jobs: a.jobs.unwrap_or(defaults.jobs).max(1),
                json: a.json,
                junit: a.junit,
            };
            finish(run::check(&opts).map(|r| (r.verdict, r.run_dir)))
        }
    }
}

/// Prints a verdict (and where its run directory was kept) and turns it into
/// the exit status: 0 passed, 1 not passed, 2 the run could not be made.
fn finish(result: anyhow::Result<(harness::verdict::Verdict, Option<PathBuf>)>) -> ExitCode {
    if harness::process::interrupted() {
        // The signal handler is stopping the children and will exit 130;
        // whatever the run saw meanwhile is not a result.
        std::thread::sleep(Duration::from_secs(30));
        return ExitCode::from(130);
    }
    match result {
        Ok((verdict, run_dir)) => {
            println!("{verdict}");
            if let Some(dir) = run_dir {
                println!("run directory: {}", dir.display());
            }
            if verdict.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn exit_on_error(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn cache_key(mut profiles: Vec<String>, kernel_src: Option<PathBuf>) -> anyhow::Result<()> {
    use harness::kernel::{cache_key, BuildOptions, Source};
    use harness::profile::Profile;
    let configs = harness::repo_root().join("configs");
    if profiles.is_empty() {
        profiles = Profile::available(&configs);
    }
    let source = Source::resolve(kernel_src.as_deref())?;
    let mut keys = Vec::new();
    for name in &profiles {
        let p = Profile::load(name, &configs)?;
        let opts = BuildOptions { source: &source, cross_compile: &p.cross_compile, configs_dir: &configs, jobs: 1 };
        keys.push(format!("{name}={}", cache_key(&p, &opts)?));
    }
    println!("{}", harness::cache::digest(&keys));
    Ok(())
}

fn board_image(a: BoardImageArgs) -> anyhow::Result<()> {
    use harness::board::{build_image, Board, ImageOptions};
    let root = harness::repo_root();
    let (board, profile) = Board::load(&a.board, &root.join("configs"))?;
    let module_dir = a.module.unwrap_or_else(|| root.join("kmod"));
    harness::module::recipe(&module_dir)?;
    let explicit = a.kernel_src.as_deref().map(|p| harness::kernel::Source::resolve(Some(p))).transpose()?;
    let cross = a.cross_compile.clone().unwrap_or_else(|| profile.cross_compile.clone());
    run::setup(&cross, explicit.is_none())?;
    let mkimage = [harness::packages::Need::program("mkimage", "u-boot-tools")];
    harness::packages::ensure(&mkimage, &harness::cache::root().join("logs"))?;
    let source = match explicit {
        Some(s) => s,
        None => harness::kernel::Source::resolve(None)?,
    };
    let out = a.out.unwrap_or_else(|| root.join("target").join("board-image").join(&board.name));
    let jobs = a.jobs.unwrap_or(CheckOptions::defaults().jobs).max(1);
    let image = build_image(
        &board,
        &profile,
        &ImageOptions { source: &source, cross_compile: a.cross_compile.as_deref(), module_dir: &module_dir, out: &out, initramfs: a.initramfs, jobs },
    )?;
    println!("board image for {} in {}:", board.name, image.dir.display());
    for f in &image.files {
        println!("  {}", f.file_name().unwrap_or_default().to_string_lossy());
    }
    println!("\n{}", image.boot_text);
    Ok(())
}

fn replay(a: ReplayArgs) -> ExitCode {
    use harness::replay::{ReplayLimits, ReplayOptions};
    let defaults = ReplayOptions::new(a.serial.clone());
    let opts = ReplayOptions {
        baud: a.baud,
        profile: a.profile,
        module_dir: a.module.unwrap_or(defaults.module_dir.clone()),
        ko: a.ko,
        board_path: a.board_path,
        module_name: a.module_name,
        expect: a.expect,
        kernel_src: a.kernel_src,
        cross_compile: a.cross_compile,
        jobs: a.jobs.unwrap_or(defaults.jobs).max(1),
        user: a.login,
        password: a.password,
        transfer: a.transfer,
        transcript: a.transcript,
        limits: ReplayLimits {
            prompt: Duration::from_secs(a.prompt_timeout),
            step: Duration::from_secs(a.step_timeout),
            total: Duration::from_secs(a.timeout),
        },
        keep: a.keep,
        ..defaults
    };
    finish(harness::replay::replay(&opts).map(|r| (r.verdict, r.run_dir)))
}

fn recheck(a: RecheckArgs) -> ExitCode {
    let opts = harness::replay::RecheckOptions {
        transcript: a.transcript,
        expect: a.expect,
        module_dir: a.module.unwrap_or_else(|| harness::repo_root().join("kmod")),
        module_name: a.module_name,
        ko: a.ko,
    };
    finish(harness::replay::recheck(&opts).map(|v| (v, None)))
}

fn emulate_board(profile: &str) -> anyhow::Result<()> {
    let board = harness::replay::emulated::EmulatedBoard::start(profile, Duration::from_secs(60))?;
    println!("emulated board ({profile}) on {}", board.pty.display());
    println!("try: scripts/board-replay {} --profile {profile}", board.pty.display());
    println!("Ctrl-C stops it.");
    // The signal handler kills QEMU (registered by its guard) and exits.
    while !board.exited()? {
        std::thread::sleep(Duration::from_secs(1));
    }
    println!("the emulated board stopped (a kernel panic or a poweroff)");
    board.stop()
}
