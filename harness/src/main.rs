//! `harness`: build a kernel and an out-of-tree module, boot them under QEMU,
//! run insmod/rmmod and judge the console.
//!
//! Exit status: 0 the check passed, 1 it failed (FAILED, CRASHED or
//! TIMED-OUT), 2 it could not be carried out (usage or environment).

use clap::{Parser, Subcommand};
use harness::options::{CheckOptions, KernelArgs, ModuleArgs};
use harness::replay::{RecheckOptions, ReplayOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "tiny4412-harness",
    version,
    about = "QEMU integration tests for out-of-tree kernel modules on the Tiny4412 family"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the kernel and the module, boot, run the steps, and judge.
    Check(CheckOptions),
    /// Write a starter expect.toml for the module in DIR (default: the
    /// current directory), its steps named from the folder's obj-m;
    /// an existing one is left alone.
    Init {
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print where the harness reads its data and writes its caches and runs.
    Paths,
    /// Build everything a real board needs (zImage, dtb, zImage-dtb, uImage,
    /// the modules and programs, optionally a uInitrd) into one folder, with
    /// boot commands.
    BoardImage(BoardImageArgs),
    /// Install everything the README's commands need: host packages, kernel
    /// source, busybox, kmod/'s Rust target, the cross C library, the suite's tools.
    Setup {
        #[arg(long, value_name = "PREFIX", default_value = "arm-linux-gnueabihf-")]
        cross_compile: String,
    },
    /// Run the check's steps on a real board over its serial console
    /// (scripts/board-replay wraps this): same steps, same verdict.
    Replay(ReplayOptions),
    /// Judge a transcript saved by `replay --transcript` again, offline; or
    /// the log of a LAVA job written by `lava-job` (`--lava-log`).
    Recheck(RecheckOptions),
    /// Write a LAVA job for the check's scenario: for LAVA's `qemu` device,
    /// or a Tiny4412 in a lab (configs/lava/tiny4412.jinja2). See docs/lava.md.
    LavaJob(harness::lava::LavaJobOptions),
    /// Boot an emulated FriendlyARM board (QEMU, serial on a pty) to try
    /// `replay` without a board; prints the pty and runs until Ctrl-C.
    EmulateBoard {
        /// A profile whose UART takes input under QEMU as the replay sends
        /// it (vexpress-a9's does; smdkc210's loses a burst of more than
        /// 128 bytes, see guest/terminal.rs).
        #[arg(long)]
        profile: String,
    },
    /// Get the profile's kernel (build it, or take it from the cache) and
    /// print its build directory: to prebuild kernels, e.g. for a CI cache.
    Kernel(KernelCmd),
    /// The kernel cache: `list` its builds, `gc` old ones.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// The watchdog the harness starts for itself (see process.rs).
    #[command(name = "__watchdog", hide = true)]
    Watchdog,
    /// Print one key covering the kernel builds of the given profiles (all
    /// shipped ones by default), for CI caches such as actions/cache.
    CacheKey {
        #[arg(long = "profile", value_name = "NAME")]
        profiles: Vec<String>,
        #[arg(long, value_name = "DIR|TARBALL")]
        kernel_src: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CacheCommand {
    /// The kernel builds in the cache: profile, size, last use.
    List,
    /// Remove kernel builds: all but the newest --keep of each profile, and
    /// with --older-than, those unused for that many days.
    Gc {
        #[arg(long, default_value_t = 1)]
        keep: usize,
        #[arg(long, value_name = "DAYS")]
        older_than: Option<u64>,
    },
}

#[derive(clap::Args)]
struct KernelCmd {
    #[command(flatten)]
    kernel: KernelArgs,
    /// Only configure it: write the profile's .config (defconfig, fragments,
    /// every requested symbol checked) into DIR, and build nothing.
    #[arg(long, value_name = "DIR")]
    config_only: Option<PathBuf>,
}

#[derive(clap::Args)]
struct BoardImageArgs {
    /// A board from configs/boards/ [default: the only one there, tiny4412].
    #[arg(long)]
    board: Option<String>,
    /// Output folder [default: target/board-image/BOARD in a checkout, else
    /// board-image/BOARD in the cache directory].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    module: ModuleArgs,
    /// The kernel profile to build the image from [default: the board's
    /// `kernel_profile`]; it must build the board's dtb.
    #[arg(long)]
    profile: Option<String>,
    /// The kernel of the board's `kernel_profile`, built so.
    #[command(flatten)]
    build: harness::options::BuildArgs,
    /// Also write the harness's initramfs as a U-Boot ramdisk (uInitrd), so the
    /// board runs the same steps as the QEMU guest.
    #[arg(long)]
    initramfs: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Watchdog = cli.command {
        return exit_on_error(harness::process::watchdog_main());
    }
    if let Err(e) = harness::process::install_signal_handler().and_then(|_| harness::process::start_watchdog()) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    match cli.command {
        Command::BoardImage(a) => exit_on_error(board_image(a)),
        Command::Setup { cross_compile } => exit_on_error(harness::prepare::setup_all(&cross_compile)),
        Command::CacheKey { profiles, kernel_src } => exit_on_error(cache_key(profiles, kernel_src)),
        Command::Replay(o) => {
            finish(harness::replay::replay(&o).map(|r| (vec![(String::new(), r.verdict)], r.run_dir)))
        }
        Command::Recheck(o) => finish(harness::replay::recheck(&o).map(|v| (vec![(String::new(), v)], None))),
        Command::LavaJob(o) => exit_on_error(harness::lava::lava_job(&o).map(|out| {
            println!("LAVA job in {}", out.join("job.yaml").display());
        })),
        Command::EmulateBoard { profile } => exit_on_error(emulate_board(&profile)),
        Command::Kernel(KernelCmd { kernel, config_only: Some(dir) }) => {
            exit_on_error(harness::prepare::kernel_config(&kernel, &dir).map(|c| println!("{}", c.display())))
        }
        Command::Kernel(KernelCmd { kernel, config_only: None }) => exit_on_error(
            harness::prepare::kernel_only(&kernel, &harness::prepare::Stages::new())
                .map(|(_, k)| println!("{}", k.build_dir.display())),
        ),
        Command::Watchdog => ExitCode::SUCCESS,
        Command::Cache(c) => exit_on_error(cache(c)),
        Command::Check(o) => finish(harness::check::check(&module_here(o)).map(|r| (r.units, r.run_dir))),
        Command::Init { dir } => exit_on_error(init(dir)),
        Command::Paths => {
            println!("data: {}", harness::repo_root().display());
            println!("cache: {}", harness::cache::root().display());
            println!("runs: {}", harness::prepare::runs_root().display());
            ExitCode::SUCCESS
        }
    }
}

/// Prints the verdicts (one per module directory; the label is empty for a
/// single one) and where the run directory was kept, and turns them into the
/// exit status: 0 all passed, 1 not, 2 the run could not be made, 3 none
/// failed but some need the board (NEEDS-THE-BOARD).
/// Verdicts by module directory, and the run directory if it was kept.
type Outcome = (Vec<(String, harness::judge::verdict::Verdict)>, Option<PathBuf>);

fn finish(result: anyhow::Result<Outcome>) -> ExitCode {
    if harness::process::interrupted() {
        // The signal handler is stopping the children and will exit 130;
        // whatever the run saw meanwhile is not a result.
        std::thread::sleep(Duration::from_secs(30));
        return ExitCode::from(130);
    }
    match result {
        Ok((verdicts, run_dir)) => {
            for (label, verdict) in &verdicts {
                if !label.is_empty() {
                    println!("== {label}");
                }
                println!("{verdict}\n");
            }
            if verdicts.len() > 1 {
                let passed = verdicts.iter().filter(|(_, v)| v.passed()).count();
                println!("{passed} of {} passed, in one boot", verdicts.len());
                for (label, v) in &verdicts {
                    println!("  {:<9} {label}", v.outcome.to_string());
                }
            }
            if let Some(dir) = run_dir {
                println!("run directory: {}", dir.display());
            }
            use harness::judge::verdict::Outcome as O;
            if verdicts.iter().all(|(_, v)| v.passed()) {
                ExitCode::SUCCESS
            } else if verdicts.iter().all(|(_, v)| matches!(v.outcome, O::Passed | O::NeedsTheBoard)) {
                // Nothing failed; some of it needs the real board.
                ExitCode::from(3)
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

/// `check` without --module (nor --kernel-module) checks the current
/// directory when it is a module folder, as in a module's own repository;
/// else kmod/, saying why (but at the checkout's root, where kmod/ is the
/// README's first command).
fn module_here(mut o: CheckOptions) -> CheckOptions {
    if o.module.module_dirs.is_empty() && o.module.kernel_modules.is_empty() {
        let here = std::env::current_dir().map_err(|e| format!("it cannot be read: {e}"));
        let at_root = here.as_ref().is_ok_and(|d| harness::data::checkout() == Some(d.as_path()));
        match here.and_then(|d| harness::init::module_here(&d)) {
            Ok(dir) => o.module.module_dirs.push(dir),
            Err(_) if at_root => {}
            Err(why) => eprintln!(
                "harness: the current directory is not a module folder ({why}); checking the default module, \
                 kmod/ (give --module DIR)"
            ),
        }
    }
    o
}

fn init(dir: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = match dir {
        Some(d) => d,
        None => std::env::current_dir()?,
    };
    let path = harness::init::write(&dir)?;
    println!("wrote {}: edit its steps, then run tiny4412-harness check", path.display());
    Ok(())
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

fn cache(c: CacheCommand) -> anyhow::Result<()> {
    use harness::cache;
    let entries = cache::entries()?;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let ago = |t: std::time::SystemTime| {
        t.elapsed().map(|d| format!("{:.1} days ago", d.as_secs_f64() / 86400.0)).unwrap_or_default()
    };
    match c {
        CacheCommand::List => {
            println!("{:<20} {:>10}  {:<15} path", "profile", "MiB", "last used");
            for e in &entries {
                println!("{:<20} {:>10.0}  {:<15} {}", e.profile, mib(e.bytes), ago(e.last_used), e.path.display());
            }
            println!(
                "{} build(s), {:.0} MiB in {}",
                entries.len(),
                mib(entries.iter().map(|e| e.bytes).sum()),
                cache::root().display()
            );
        }
        CacheCommand::Gc { keep, older_than } => {
            let age = older_than.map(|d| Duration::from_secs(d * 86400));
            let gone = cache::to_collect(&entries, keep, age, std::time::SystemTime::now());
            for e in &gone {
                cache::remove(e)?;
                println!("removed {} ({:.0} MiB, last used {})", e.path.display(), mib(e.bytes), ago(e.last_used));
            }
            println!("{} build(s) removed, {:.0} MiB freed", gone.len(), mib(gone.iter().map(|e| e.bytes).sum()));
            for dir in harness::data::gc(&cache::root())? {
                println!("removed {} (another version's data)", dir.display());
            }
        }
    }
    Ok(())
}

fn cache_key(mut profiles: Vec<String>, kernel_src: Option<PathBuf>) -> anyhow::Result<()> {
    use harness::kernel::{cache_key, BuildOptions, KernelSource};
    use harness::profile::Profile;
    let configs = harness::repo_root().join("configs");
    let named = !profiles.is_empty();
    if profiles.is_empty() {
        profiles = Profile::available(&configs);
    }
    let source = KernelSource::resolve(kernel_src.as_deref())?;
    let mut keys = Vec::new();
    for name in &profiles {
        let p = Profile::load(name, &configs)?;
        // A profile built from the user's own source (FriendlyARM's 3.5)
        // is keyed by that source; left out of the default list without one.
        let own = match harness::kernel::profile_source(&p, kernel_src.as_deref()) {
            Ok(own) => own,
            Err(e) if named => return Err(e),
            Err(_) => continue,
        };
        let source = own.as_ref().unwrap_or(&source);
        let opts = BuildOptions { source, cross_compile: &p.cross_compile, configs_dir: &configs, jobs: 1 };
        keys.push(format!("{name}={}", cache_key(&p, &opts)?));
    }
    println!("{}", harness::cache::digest(&keys));
    Ok(())
}

fn board_image(a: BoardImageArgs) -> anyhow::Result<()> {
    use harness::real_board::{build_image, Board};
    let root = harness::repo_root();
    let name = match &a.board {
        Some(b) => b.clone(),
        None => Board::default_name(&root.join("configs"))?,
    };
    let (board, profile) = Board::load(&name, a.profile.as_deref(), &root.join("configs"))?;
    let mkimage = [harness::packages::Need::program("mkimage", "u-boot-tools")];
    harness::packages::ensure(&mkimage, &harness::cache::root().join("logs"))?;
    let kernel = KernelArgs { profile: profile.name.clone(), build: a.build };
    let p = harness::prepare::prepare(&kernel, &a.module, &harness::prepare::Stages::new())?;
    let out = a.out.unwrap_or_else(|| harness::cache::scratch("board-image").join(&board.name));
    let image = build_image(&board, &p, &out, a.initramfs)?;
    println!("board image for {} in {}:", board.name, image.dir.display());
    for f in &image.files {
        println!("  {}", f.file_name().unwrap_or_default().to_string_lossy());
    }
    println!("\n{}", image.boot_text);
    Ok(())
}

fn emulate_board(profile: &str) -> anyhow::Result<()> {
    let board = harness::guest::emulated::EmulatedBoard::start(profile, Duration::from_secs(60))?;
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
