//! The sandbox of the module and program builds. kbuild reads a user's
//! Makefile as a kbuild file and make expands its `$(shell …)` while it
//! reads it, on the host, with the user's rights; the cross gcc runs
//! whatever `#include` names. So both run under bubblewrap (`bwrap`), with
//! the module's copy (the run directory) writable and everything else
//! read-only or hidden: the home, the repository, the harness's cache but
//! for the kernel build, `/run`'s sockets, and the network.
//!
//! Where bubblewrap cannot start (a container without namespaces), a build
//! is refused with the way out: `--no-sandbox` or `HARNESS_NO_SANDBOX=1`,
//! which the harness then says once, never silently.

use crate::kernel::Kernel;
use anyhow::{bail, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Whether builds run sandboxed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sandbox {
    On,
    /// Asked for with `--no-sandbox` or `HARNESS_NO_SANDBOX=1`.
    Off,
}

/// The environment variable that turns the sandbox off, as `--no-sandbox` does.
pub const ENV: &str = "HARNESS_NO_SANDBOX";

impl Sandbox {
    /// The flag, else the environment.
    pub fn from_flag(no_sandbox: bool) -> Sandbox {
        if no_sandbox || std::env::var(ENV).is_ok_and(|v| v == "1") {
            Sandbox::Off
        } else {
            Sandbox::On
        }
    }

    /// Ready to build: bubblewrap installed and able to start here (probed
    /// once per process), or, turned off, said so once.
    pub fn ready(self) -> Result<()> {
        static SAID: OnceLock<()> = OnceLock::new();
        static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
        match self {
            Sandbox::Off => {
                SAID.get_or_init(|| {
                    eprintln!(
                        "harness: building modules and programs WITHOUT a sandbox (--no-sandbox or {ENV}=1): a \
                            module's Makefile and sources run with your rights, your files and the network"
                    )
                });
                Ok(())
            }
            Sandbox::On => {
                crate::packages::ensure(&crate::packages::for_sandbox(), &crate::cache::root().join("logs"))?;
                match PROBE.get_or_init(probe) {
                    Ok(()) => Ok(()),
                    Err(why) => bail!(
                        "the build sandbox (bubblewrap) cannot start here: {why}\n\
                         it keeps a module's Makefile ($(shell …)) and its compiler away from your files and the \
                             network; \
                         where namespaces are not allowed (a container), rerun with --no-sandbox or {ENV}=1 to build \
                             without it"
                    ),
                }
            }
        }
    }

    /// `program args` as run under this mode and `policy`: bwrap's argv, or
    /// the command itself.
    pub fn command(self, policy: &Policy, program: &str, args: &[OsString]) -> (String, Vec<OsString>) {
        match self {
            Sandbox::On => ("bwrap".into(), argv(policy, program, args)),
            Sandbox::Off => (program.into(), args.to_vec()),
        }
    }
}

/// How long the probe may take: `bwrap true` exits in milliseconds.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The smallest sandbox of the real policy, run once: whether this machine
/// lets bwrap make its namespaces.
fn probe() -> Result<(), String> {
    let policy = Policy {
        writable: Vec::new(),
        readable: Vec::new(),
        hidden: Vec::new(),
        sealed: Vec::new(),
        dir: PathBuf::from("/"),
    };
    let probe = duct::cmd("bwrap", argv(&policy, "true", &[])).stdin_null().stdout_null().stderr_capture();
    match crate::process::wait_bounded(probe, PROBE_TIMEOUT) {
        Ok(Some(o)) if o.status.success() => Ok(()),
        Ok(Some(o)) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Ok(None) => Err(format!("bwrap did not exit within {} s", PROBE_TIMEOUT.as_secs())),
        Err(e) => Err(format!("running bwrap: {e}")),
    }
}

/// What a sandboxed command sees: all of `/` read-only, `hidden` as empty
/// directories, then `readable` (read-only) and `writable` shown again
/// inside them, and `dir` as its working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub writable: Vec<PathBuf>,
    pub readable: Vec<PathBuf>,
    pub hidden: Vec<PathBuf>,
    /// Read-only inside a writable path (bound after it): the files beside
    /// a module's folder that its sources include, copied into the run.
    pub sealed: Vec<PathBuf>,
    pub dir: PathBuf,
}

impl Policy {
    /// A module or program build against `kernel` in `work`: `work` (the
    /// copy, the logs' directory, the programs' output) and `also_writable`
    /// (a Rust module's cargo target directory) writable; the kernel build
    /// and its source, the 3.5 layer, the cross toolchain and Rust's
    /// toolchain readable; the rest of the home, the repository and the
    /// cache hidden.
    pub fn for_build(kernel: &Kernel, work: &Path, also_writable: &[PathBuf]) -> Policy {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let rust_home = |var: &str, default: &str| {
            std::env::var_os(var).map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(default)))
        };
        let mut hidden: Vec<PathBuf> = [
            // Other users' files, and sockets (docker's, dbus's: a socket
            // read-only is still one to connect to).
            "/home", "/root", "/run", "/tmp", "/var/tmp", "/mnt", "/media",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        hidden.extend(home.clone());
        hidden.push(crate::repo_root());
        hidden.push(crate::cache::root());
        let mut readable = vec![kernel.build_dir.clone(), kernel.source_dir.clone(), crate::api::layer_dir()];
        // rustup's toolchains and cargo (a Rust module's Kbuild runs cargo).
        readable.extend([rust_home("RUSTUP_HOME", ".rustup"), rust_home("CARGO_HOME", ".cargo")].into_iter().flatten());
        // A vendor cross compiler given as a path (/opt/… or ~/…/arm-linux-).
        if let Some(dir) = Path::new(&kernel.cross_compile).parent().filter(|d| d.is_absolute()) {
            readable.push(dir.parent().unwrap_or(dir).to_path_buf());
        }
        let mut writable = vec![work.to_path_buf()];
        writable.extend(also_writable.iter().cloned());
        Policy { writable, readable, hidden, sealed: Vec::new(), dir: work.to_path_buf() }
    }
}

/// bwrap's arguments to run `program args` under `policy`. Pure, for
/// testing. Mounts apply in order, so each list goes shortest path first
/// (a parent before what is inside it), and paths that do not exist are
/// left out (bwrap refuses to bind a missing source).
pub fn argv(policy: &Policy, program: &str, args: &[OsString]) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(OsString::from));
    // Killed with the harness: its child is the group leader's, not ours.
    push(&["--die-with-parent"]);
    // No network (its own loopback only), no view of the host's processes,
    // IPC or abstract sockets.
    push(&["--unshare-all"]);
    // A session of its own: no TIOCSTI into the user's terminal.
    push(&["--new-session"]);
    // Everything read-only first: the compilers, headers and make in /usr.
    push(&["--ro-bind", "/", "/"]);
    // A fresh /dev (null, zero, urandom, tty) and a /proc of its own namespace.
    push(&["--dev", "/dev", "--proc", "/proc"]);
    let sorted = |v: &[PathBuf]| {
        let mut v: Vec<PathBuf> = v.iter().filter(|p| p.exists()).cloned().collect();
        v.sort_by(|x, y| (x.components().count(), x).cmp(&(y.components().count(), y)));
        v.dedup();
        v
    };
    // Hidden: an empty tmpfs in place of each. Then shown again inside
    // them, read-only or writable; bwrap takes a bind's source from the
    // host, so what a tmpfs hid can still be bound.
    for h in sorted(&policy.hidden) {
        a.extend(["--tmpfs".into(), h.into_os_string()]);
    }
    for r in sorted(&policy.readable) {
        a.extend(["--ro-bind".into(), r.clone().into_os_string(), r.into_os_string()]);
    }
    for w in sorted(&policy.writable) {
        a.extend(["--bind".into(), w.clone().into_os_string(), w.into_os_string()]);
    }
    for r in sorted(&policy.sealed) {
        a.extend(["--ro-bind".into(), r.clone().into_os_string(), r.into_os_string()]);
    }
    a.extend(["--chdir".into(), policy.dir.clone().into_os_string(), "--".into(), program.into()]);
    a.extend(args.iter().cloned());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: Vec<OsString>) -> Vec<String> {
        v.into_iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    /// Hidden parents go before what is shown inside them, read-only before
    /// writable, missing paths are left out, and the command comes last.
    #[test]
    fn mounts_go_parents_first_and_the_command_last() {
        let d = tempfile::tempdir().unwrap();
        let p = |s: &str| {
            let p = d.path().join(s);
            std::fs::create_dir_all(&p).unwrap();
            p
        };
        let policy = Policy {
            writable: vec![p("home/cache/runs/one")],
            readable: vec![p("home/cache/kernel"), d.path().join("missing")],
            hidden: vec![p("home/cache"), p("home")],
            sealed: vec![p("home/cache/runs/one/include")],
            dir: p("home/cache/runs/one"),
        };
        let a = strings(argv(&policy, "make", &["-C".into(), "k".into()]));
        // What is sealed inside the writable run directory is bound after
        // it, read-only, so a build cannot write the user's headers.
        let sealed = s_at(&a, &d.path().join("home/cache/runs/one/include").display().to_string());
        assert_eq!(a[sealed - 2], "--ro-bind", "{a:?}");
        assert!(sealed > a.iter().position(|y| y == "--bind").unwrap(), "after the writable bind: {a:?}");
        let s = |x: &str| d.path().join(x).display().to_string();
        let at = |x: &str| a.iter().position(|y| *y == x).unwrap_or_else(|| panic!("{x} not in {a:?}"));
        assert!(at(&s("home")) < at(&s("home/cache")), "{a:?}");
        assert!(at(&s("home/cache")) < at(&s("home/cache/kernel")), "{a:?}");
        assert!(at(&s("home/cache/kernel")) < at(&s("home/cache/runs/one")), "{a:?}");
        assert!(!a.iter().any(|x| x.contains("missing")), "{a:?}");
        assert_eq!(a[a.len() - 4..], ["--", "make", "-C", "k"]);
        for flag in ["--unshare-all", "--die-with-parent", "--new-session"] {
            assert!(a.contains(&flag.to_string()), "{flag}: {a:?}");
        }
    }

    fn s_at(a: &[String], x: &str) -> usize {
        a.iter().rposition(|y| y == x).unwrap_or_else(|| panic!("{x} not in {a:?}"))
    }

    #[test]
    fn off_runs_the_command_itself() {
        let policy = Policy { writable: vec![], readable: vec![], hidden: vec![], sealed: vec![], dir: "/".into() };
        let (p, a) = Sandbox::Off.command(&policy, "make", &["x".into()]);
        assert_eq!((p.as_str(), strings(a)), ("make", vec!["x".to_string()]));
        let (p, _) = Sandbox::On.command(&policy, "make", &["x".into()]);
        assert_eq!(p, "bwrap");
    }
}
