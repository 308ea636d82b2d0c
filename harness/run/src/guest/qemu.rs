//! The QEMU command line, and the one process the harness must never lose.
//!
//! The argv and the kernel command line are pure functions so that each flag
//! can be unit-tested and carries its reason. [`Qemu`] owns the spawned process:
//! dropping it kills and reaps QEMU, whatever path the run took.

use crate::profile::Profile;
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The artifacts one boot needs.
#[derive(Debug, Clone)]
pub struct BootImages {
    pub kernel: PathBuf,
    /// None: the machine's board id (ATAGs) describes it, as 3.5 boots.
    pub dtb: Option<PathBuf>,
    pub initramfs: PathBuf,
}

/// The kernel command line for a harness boot, one argument per element.
pub fn kernel_cmdline(profile: &Profile) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        // Kernel messages go to the serial port that QEMU connects to our pipe.
        format!("console={}", profile.qemu.console).into(),
        // Our cpio's /init runs the steps; never fall back to a root device.
        "rdinit=/init".into(),
        // Step markers are written to /dev/kmsg so that they interleave with
        // printk in true order; the default ratelimit would drop some of them.
        "printk.devkmsg=on".into(),
        // A quiet boot but for warnings and errors (and the markers, which
        // /dev/kmsg writes at KERN_WARNING): hundreds of info lines cost
        // emulated time on the UART. /init raises the level to 7 before the
        // first step, so every printk up to KERN_INFO of the steps reaches
        // the console the verdict reads.
        "loglevel=5".into(),
        // rmmod (and the boot) wait out RCU grace periods, which take ticks
        // of emulated time each; expedited ones are as correct and take a
        // fraction (an rmmod step took 1.0 s of guest time, 0.3 s with it).
        "rcupdate.rcu_expedited=1".into(),
        // Reboot at once on panic: with -no-reboot QEMU then exits where the
        // machine supports reset (vexpress); elsewhere the harness kills it.
        "panic=-1".into(),
    ];
    args.extend(profile.qemu.cmdline.iter().map(OsString::from));
    if let Some(r) = &profile.qemu.resume {
        // The top of RAM is the resumed guest's inbox (guest/inbox.rs): the
        // kernel must never hand it out. A booted guest has the same, so
        // that both run the very same kernel setup.
        args.push(format!("mem={}", r.mem).into());
    }
    args
}

/// `argv` for a guest resumed from a snapshot: the same machine (migration
/// needs the same devices), its state read from `state` by `cat` (QEMU
/// 7.2's `-incoming` has no `file:`), the gdb stub on `gdb_socket` for
/// writing the run into the inbox, and the CPUs held until the harness has.
pub fn resumed(argv: &[OsString], state: &Path, gdb_socket: &Path) -> Vec<OsString> {
    let mut out = argv.to_vec();
    let mut incoming = OsString::from("exec:cat ");
    incoming.push(crate::plan::quote(&state.to_string_lossy()));
    out.extend(["-incoming".into(), incoming]);
    // `check --gdb` has its stub already (guest/gdb.rs): the harness
    // writes through it before the user's gdb connects.
    if !out.iter().any(|a| a == "-gdb") {
        let mut spec = OsString::from("unix:");
        spec.push(gdb_socket);
        spec.push(",server=on,wait=off");
        out.extend(["-gdb".into(), spec]);
    }
    // Held after the state is loaded: the run is written in first.
    if !out.iter().any(|a| a == "-S") {
        out.push("-S".into());
    }
    out
}

/// Joins the command line into the single `-append` argument.
pub fn join_cmdline(args: &[OsString]) -> OsString {
    let mut out = OsString::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(" ");
        }
        out.push(a);
    }
    out
}

/// The argv (without the program) for booting `images` on `profile`'s machine,
/// with QEMU's QMP socket at `qmp` if given.
pub fn argv(profile: &Profile, images: &BootImages, cmdline: &[OsString], qmp: Option<&Path>) -> Vec<OsString> {
    let q = &profile.qemu;
    let mut a: Vec<OsString> = Vec::new();
    fn push(a: &mut Vec<OsString>, flag: &str, value: OsString) {
        a.push(flag.into());
        a.push(value);
    }
    // The board model; everything else follows from it.
    push(&mut a, "-M", q.machine.clone().into());
    // Cores as on the real SoC, so SMP races in a module can show.
    push(&mut a, "-smp", q.smp.to_string().into());
    if let Some(mem) = &q.memory {
        // Only for boards whose RAM size is configurable.
        push(&mut a, "-m", mem.into());
    }
    // Direct kernel boot: no firmware or bootloader in the loop.
    push(&mut a, "-kernel", images.kernel.clone().into());
    if let Some(dtb) = &images.dtb {
        push(&mut a, "-dtb", dtb.clone().into());
    }
    push(&mut a, "-initrd", images.initramfs.clone().into());
    push(&mut a, "-append", join_cmdline(cmdline));
    // No default devices (monitor, parallel port, extra serial muxing): the
    // only channel is the one declared next.
    a.push("-nodefaults".into());
    // UART0, the kernel console, on QEMU's stdout, which the harness pipes.
    push(&mut a, "-serial", "stdio".into());
    // No window, no VNC: CI has no display.
    push(&mut a, "-display", "none".into());
    // No network: a module test must not depend on, or reach, anything outside.
    push(&mut a, "-nic", "none".into());
    // A guest reboot (panic=-1, a triple fault) ends the run instead of looping.
    a.push("-no-reboot".into());
    if let Some(sock) = qmp {
        // QMP (qmp.rs), to ask a hung guest what its CPUs are doing before
        // killing it; JSON, not a screen to scrape. wait=off: QEMU must not
        // wait for us to connect before it boots.
        let mut spec = OsString::from("unix:");
        spec.push(sock);
        spec.push(",server=on,wait=off");
        push(&mut a, "-qmp", spec);
    }
    a
}

/// `argv` with QEMU logging each guest access to an address that no
/// device model claims (`Invalid write at addr 0x110002E0, size 4, …`) to
/// `log`: smdkc210 has no GPIO, watchdog or ADC model, and such a write
/// otherwise vanishes without a trace (judge/access.rs reads the log).
pub fn with_guest_errors(argv: &[OsString], log: &Path) -> Vec<OsString> {
    let mut out = argv.to_vec();
    // guest_errors: only the guest's invalid accesses and device misuse,
    // not QEMU's own tracing (a few thousand lines a boot, most of them
    // smdkc210's clock controller).
    out.extend(["-d".into(), "guest_errors".into(), "-D".into(), log.as_os_str().to_owned()]);
    out
}

/// `argv` with the guest's serial port on a pseudo-terminal instead of
/// QEMU's stdout: QEMU prints `char device redirected to /dev/pts/N (label
/// serial0)` and the guest's console is then a tty that a serial-port client
/// (the board replay) opens like a USB serial adapter.
pub fn serial_on_pty(argv: &[OsString]) -> Vec<OsString> {
    let mut out = argv.to_vec();
    for i in 1..out.len() {
        if out[i - 1] == "-serial" {
            out[i] = "pty".into();
        }
    }
    out
}

/// A running QEMU. Dropping it kills and reaps the process, so no code path,
/// not even a panic unwinding through the run, can leave a guest behind.
pub struct Qemu {
    handle: duct::Handle,
    pid: u32,
    /// Lets the signal handler kill this guest on Ctrl-C or SIGTERM.
    _registered: crate::process::Registered,
}

impl Qemu {
    /// Spawns `program argv` directly (never through a shell: a shell would be
    /// the child we kill, and QEMU its orphaned grandchild). Its stdout, the
    /// guest's serial console, is returned as a pipe for the console reader;
    /// stderr goes to `stderr_log`.
    pub fn spawn(program: &str, argv: &[OsString], stderr_log: &Path) -> Result<(Qemu, os_pipe::PipeReader)> {
        Qemu::spawn_with_input(program, argv, stderr_log, None)
    }

    /// [`Qemu::spawn`], with `input` as QEMU's stdin, the serial port's
    /// input with `-serial stdio` (`check --shell`); else stdin is null.
    pub fn spawn_with_input(
        program: &str,
        argv: &[OsString],
        stderr_log: &Path,
        input: Option<os_pipe::PipeReader>,
    ) -> Result<(Qemu, os_pipe::PipeReader)> {
        let (reader, writer) = os_pipe::pipe().context("creating the console pipe")?;
        let cmd = duct::cmd(program, argv).stdout_file(writer).stderr_path(stderr_log).unchecked();
        let cmd = match input {
            Some(pipe) => cmd.stdin_file(pipe),
            None => cmd.stdin_null(),
        };
        // Own process group + PDEATHSIG: see process::supervise.
        let expr = crate::process::supervise(cmd);
        let handle = expr.start().with_context(|| format!("starting {program}"))?;
        // Our copy of the pipe's write end lives in `expr`; drop it so that the
        // reader sees EOF as soon as QEMU exits.
        drop(expr);
        let pid = handle.pids()[0];
        let registered = crate::process::register(pid);
        Ok((Qemu { handle, pid, _registered: registered }, reader))
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits until QEMU exits or `deadline` passes; `None` means still running.
    pub fn wait_until(&self, deadline: Instant) -> Result<Option<std::process::ExitStatus>> {
        let out = self.handle.wait_deadline(deadline).context("waiting for qemu")?;
        Ok(out.map(|o| o.status))
    }

    /// Kills QEMU and reaps it, waiting at most a few seconds.
    pub fn kill(&self) -> Result<()> {
        if self.handle.try_wait().context("polling qemu")?.is_some() {
            return Ok(());
        }
        self.handle.kill().context("killing qemu")?;
        self.handle
            .wait_timeout(Duration::from_secs(10))
            .context("reaping qemu")?
            .context("qemu did not exit within 10 s of SIGKILL")?;
        Ok(())
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Err(e) = self.kill() {
            eprintln!("harness: could not stop qemu (pid {}): {e:#}", self.pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(name: &str) -> Profile {
        Profile::load(name, &crate::repo_root().join("configs")).unwrap()
    }

    fn images() -> BootImages {
        BootImages {
            kernel: "/k/zImage".into(),
            dtb: Some("/k/board.dtb".into()),
            initramfs: "/r/initramfs.cpio".into(),
        }
    }

    fn strings(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    fn value_of<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
        argv.iter().position(|a| a == flag).map(|i| argv[i + 1].as_str())
    }

    #[test]
    fn exynos_cmdline_has_console_and_profile_args() {
        let c = strings(&kernel_cmdline(&profile("exynos4210")));
        assert_eq!(c[0], "console=ttySAC0,115200n8");
        for want in ["rdinit=/init", "printk.devkmsg=on", "cpuidle.off=1", "cryptomgr.notests", "panic=-1"] {
            assert!(c.iter().any(|a| a == want), "{want} missing from {c:?}");
        }
    }

    #[test]
    fn exynos_argv_boots_smdkc210_without_network_or_display() {
        let p = profile("exynos4210");
        let argv = strings(&argv(&p, &images(), &kernel_cmdline(&p), None));
        assert_eq!(value_of(&argv, "-M"), Some("smdkc210"));
        assert_eq!(value_of(&argv, "-smp"), Some("2"));
        assert_eq!(value_of(&argv, "-m"), None, "smdkc210 RAM is fixed");
        assert_eq!(value_of(&argv, "-kernel"), Some("/k/zImage"));
        assert_eq!(value_of(&argv, "-dtb"), Some("/k/board.dtb"));
        assert_eq!(value_of(&argv, "-initrd"), Some("/r/initramfs.cpio"));
        assert_eq!(value_of(&argv, "-serial"), Some("stdio"));
        assert_eq!(value_of(&argv, "-nic"), Some("none"));
        assert_eq!(value_of(&argv, "-display"), Some("none"));
        assert!(argv.contains(&"-no-reboot".to_string()));
        assert!(argv.contains(&"-nodefaults".to_string()));
        let append = value_of(&argv, "-append").unwrap();
        assert!(append.starts_with("console=ttySAC0,115200n8 rdinit=/init"), "{append}");
        assert!(!argv.iter().any(|a| a == "sh" || a == "-c"), "never through a shell");
        assert_eq!(value_of(&argv, "-qmp"), None);
        let with = strings(&super::argv(&p, &images(), &kernel_cmdline(&p), Some(Path::new("/run/q.sock"))));
        assert_eq!(value_of(&with, "-qmp"), Some("unix:/run/q.sock,server=on,wait=off"));
        assert_eq!(value_of(&with, "-monitor"), None, "no human monitor to scrape");
    }

    #[test]
    fn vexpress_argv_sets_memory_and_four_cores() {
        let p = profile("vexpress-a9");
        let argv = strings(&argv(&p, &images(), &kernel_cmdline(&p), None));
        assert_eq!(value_of(&argv, "-M"), Some("vexpress-a9"));
        assert_eq!(value_of(&argv, "-smp"), Some("4"));
        assert_eq!(value_of(&argv, "-m"), Some("1024M"));
        assert!(value_of(&argv, "-append").unwrap().starts_with("console=ttyAMA0,115200 "));
    }

    #[test]
    fn serial_on_pty_changes_only_the_serial_backend() {
        let p = profile("vexpress-a9");
        let plain = strings(&argv(&p, &images(), &kernel_cmdline(&p), None));
        let pty = strings(&serial_on_pty(&argv(&p, &images(), &kernel_cmdline(&p), None)));
        assert_eq!(value_of(&pty, "-serial"), Some("pty"));
        let differ: Vec<usize> = (0..plain.len()).filter(|&i| plain[i] != pty[i]).collect();
        assert_eq!(plain.len(), pty.len());
        assert_eq!(differ.len(), 1, "{pty:?}");
    }

    #[test]
    fn cmdline_join_is_space_separated_in_order() {
        let j = join_cmdline(&["a=1".into(), "b".into()]);
        assert_eq!(j, OsString::from("a=1 b"));
    }

    /// The guard kills on drop: spawn a long sleeper as the "qemu" and check
    /// that the process is gone once the guard is dropped.
    #[test]
    fn dropping_the_guard_kills_and_reaps() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _pipe) = Qemu::spawn("sleep", &["600".into()], &dir.path().join("err")).unwrap();
        let pid = q.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(q);
        // Reaped, not a zombie: the /proc entry is gone.
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "pid {pid} survived the guard");
    }
}
