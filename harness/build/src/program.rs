//! User-space test programs: the `app.c` a driver lesson ships, built as a
//! static ARM executable with the profile's cross compiler (the guest and the
//! board have no libc the harness could rely on), and put on the guest's PATH
//! under its stem.

use crate::kernel::Kernel;
use crate::module::error_lines;
use crate::process;
use crate::sandbox::{Policy, Sandbox};
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Program {
    /// The command name on the guest: the source's stem.
    pub name: String,
    pub path: PathBuf,
}

/// Linked into every program, so that a lesson's endless app can be the
/// test, its source as it is (a constructor runs before `main`):
/// - stdout is line-buffered: the app prints to a pipe (the step's output
///   file), where C's stdio keeps a whole 4 KiB block, all lost when the
///   app is stopped; and the guest has no `stdbuf`;
/// - SIGINT ends it, as Ctrl-C does on the board's terminal: a shell without
///   job control starts a background program with SIGINT ignored, and a
///   `stop` step sends SIGINT first.
const PROGRAM_START: &str = "/* written by the harness (harness/build/src/program.rs) */\n\
#include <signal.h>\n\
#include <stdio.h>\n\
__attribute__((constructor)) static void harness_program_start(void)\n\
{\n\
\tsetvbuf(stdout, NULL, _IOLBF, 0);\n\
\tsignal(SIGINT, SIG_DFL);\n\
}\n";

/// The file holding [`PROGRAM_START`], beside the programs.
const PROGRAM_START_FILE: &str = "harness-program-start.c";

/// The compiler's arguments for one program (`extra`: the harness's own
/// source linked in); pure, for testing.
pub fn argv(source: &Path, extra: &Path, out: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        // No shared libc on the guest or the board: link everything in.
        "-static".into(),
        "-O2".into(),
        "-Wall".into(),
        // No symbols: a smaller file to copy over a board's serial console.
        "-s".into(),
    ];
    // A lesson's header shared by the module and its app (ioctl numbers).
    if let Some(dir) = source.parent() {
        a.push(format!("-I{}", dir.display()).into());
    }
    a.extend(["-o".into(), out.into(), source.into(), extra.into()]);
    a
}

/// Builds each of `sources` (relative to `dir`, the module's copy) into
/// `work/programs/` with `kernel`'s cross compiler, sandboxed as the
/// module was; a compile error reads like a module's.
pub fn build(dir: &Path, sources: &[String], kernel: &Kernel, work: &Path, sandbox: Sandbox) -> Result<Vec<Program>> {
    let out_dir = work.join("programs");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let start = out_dir.join(PROGRAM_START_FILE);
    std::fs::write(&start, PROGRAM_START).with_context(|| format!("writing {}", start.display()))?;
    let gcc = format!("{}gcc", kernel.cross_compile);
    let policy = Policy { dir: dir.to_path_buf(), ..Policy::for_build(kernel, work, &[]) };
    let mut programs = Vec::new();
    for src in sources {
        let source = dir.join(src);
        if !source.is_file() {
            bail!("programs: {src} is not in the module directory (expected {})", source.display());
        }
        let name = Path::new(src).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if programs.iter().any(|p: &Program| p.name == name) {
            bail!("programs: two sources would both be installed as {name}");
        }
        let path = out_dir.join(&name);
        let log = work.join(format!("program-{name}.log"));
        let (program, args) = sandbox.command(&policy, &gcc, &argv(&source, &start, &path));
        if let Err(e) = process::Logged::new(&program, &args, &log, Duration::from_secs(300)).dir(dir).run(|_| {}) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let errors = error_lines(&text, 20);
            if errors.is_empty() {
                return Err(e.context(format!("building the program {src}")));
            }
            bail!(
                "the program {src} does not compile:\n{}\nfull log: {}",
                errors.iter().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n"),
                log.display()
            );
        }
        programs.push(Program { name, path });
    }
    Ok(programs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_static_and_see_the_lessons_headers() {
        let a: Vec<String> =
            argv(Path::new("/run/module/app.c"), Path::new("/run/s.c"), Path::new("/run/programs/app"))
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
        assert_eq!(
            a,
            [
                "-static",
                "-O2",
                "-Wall",
                "-s",
                "-I/run/module",
                "-o",
                "/run/programs/app",
                "/run/module/app.c",
                "/run/s.c"
            ]
        );
    }
}
