//! `--coverage` on the host: the `.gcda` files the guest sent (taken whole
//! by the judge, judge/src/gcov.rs) put beside the `.gcno` files of the
//! module's build, the cross gcov run on them (its JSON, not its text), and
//! the result as the verdict's coverage and an lcov `coverage.info`.

use crate::judge::gcov::{self, Coverage, GcdaFile};
use crate::judge::step::Transcript;
use crate::module::Module;
use anyhow::{bail, Context, Result};
use std::path::{Component, Path, PathBuf};

/// The lcov file's name, in the unit's directory (the run directory when
/// one unit runs).
pub const INFO: &str = "coverage.info";

/// The coverage of the unit whose `modules` were built in one folder, from
/// the files in `t`; `run_dir` is the run directory, `cross` the compiler
/// prefix whose gcov matches the gcc that built them. What cannot be done
/// (no gcov in the kernel, a refused transfer, gcov failing) is a note.
pub fn unit(t: &Transcript, modules: &[Module], run_dir: &Path, cross: &str, name: &str) -> Coverage {
    let mut transfers = t.gcov.clone();
    transfers.finish();
    let mut c = Coverage { notes: transfers.refused.clone(), ..Coverage::default() };
    if transfers.no_gcov {
        c.notes.push(
            "the kernel has no gcov in debugfs (CONFIG_GCOV_KERNEL, CONFIG_DEBUG_FS): no coverage; see \
             docs/coverage.md"
                .into(),
        );
        return c;
    }
    let Some(sources) = modules.iter().find_map(|m| m.sources.as_ref()) else {
        c.notes.push("no module built from sources here (a prebuilt .ko has no .gcno): no coverage".into());
        return c;
    };
    let built_in = sources.built_in.display().to_string();
    let mine: Vec<&GcdaFile> = transfers.files.iter().filter(|f| relative(&f.path, &built_in).is_some()).collect();
    if mine.is_empty() {
        c.notes.push(format!(
            "no .gcda file of {} came from the guest: was it built with gcov, and loaded?",
            sources.now.display()
        ));
        return c;
    }
    match run_gcov(&mine, &built_in, &sources.now, cross).and_then(|docs| gcov::from_gcov_json(&docs, &built_in)) {
        Ok(files) => c.files = files,
        Err(e) => c.notes.push(format!("gcov: {e:#}")),
    }
    if !c.files.is_empty() {
        let dir = sources.now.parent().unwrap_or(run_dir);
        let info = dir.join(INFO);
        match std::fs::write(&info, gcov::lcov(name, &c.files)) {
            Ok(()) => c.info = Some(info.strip_prefix(run_dir).unwrap_or(&info).display().to_string()),
            Err(e) => c.notes.push(format!("writing {}: {e}", info.display())),
        }
    }
    c
}

/// A replay's modules as built here with gcov, for the board's counters:
/// the unit's modules (their .gcno files beside the objects), the run
/// directory, the compiler prefix whose gcov matches them, the unit's name.
pub struct BoardGcovBuild<'a> {
    pub modules: &'a [Module],
    pub run_dir: &'a Path,
    pub cross: &'a str,
    pub name: &'a str,
}

/// What a board replay (`replay --coverage`) says of coverage. When the
/// modules were built here with gcov (`built`: the profile's kernel has
/// gcov, and the board runs that kernel) and the board sent their counters,
/// they are read as a check's are; otherwise what is missing is said
/// plainly: the board's kernel without gcov, no data, or a build here for a
/// kernel without gcov.
pub fn board(t: &Transcript, built: Option<&BoardGcovBuild>) -> Coverage {
    let mut transfers = t.gcov.clone();
    transfers.finish();
    if let Some(b) = built.filter(|_| !transfers.no_gcov && !transfers.files.is_empty()) {
        return unit(t, b.modules, b.run_dir, b.cross, b.name);
    }
    let mut c = Coverage { notes: transfers.refused.clone(), ..Coverage::default() };
    c.notes.push(if transfers.no_gcov {
        "the board's kernel has no gcov (no /sys/kernel/debug/gcov: CONFIG_GCOV_KERNEL and CONFIG_DEBUG_FS, which \
         FriendlyARM's 3.5 kernel is built without): no coverage on the board; check --coverage gives it under QEMU"
            .to_string()
    } else if transfers.files.is_empty() {
        "no coverage data came from the board (did the steps finish?)".to_string()
    } else {
        format!(
            "{} .gcda file(s) came from the board, but the module was built here for a profile whose kernel has no \
             gcov (no .gcno to read them with): replay --profile with the profile of the kernel the board runs, one \
             with fragments/coverage.config (board-image --profile exynos4210); see docs/coverage.md",
            transfers.files.len()
        )
    });
    c
}

/// `path` (a guest's .gcda, named as its object was built) relative to the
/// folder built in `built_in`, when it is inside it: no `..`, no root.
fn relative(path: &str, built_in: &str) -> Option<PathBuf> {
    let rel = Path::new(path.strip_prefix(built_in)?.strip_prefix('/')?);
    rel.components().all(|c| matches!(c, Component::Normal(_))).then(|| rel.to_path_buf())
}

/// Each file written beside its .gcno in the build's tree `now`, and gcov's
/// JSON of it (`--stdout`: nothing is written beside the sources).
fn run_gcov(files: &[&GcdaFile], built_in: &str, now: &Path, cross: &str) -> Result<Vec<String>> {
    let gcov = format!("{cross}gcov");
    let mut docs = Vec::new();
    for f in files {
        let rel = relative(&f.path, built_in).context("a .gcda outside the module folder")?;
        let dest = now.join(&rel);
        let gcno = dest.with_extension("gcno");
        if !gcno.is_file() {
            bail!("{} has no {} beside it: the build kept no notes file", rel.display(), gcno.display());
        }
        std::fs::write(&dest, &f.data).with_context(|| format!("writing {}", dest.display()))?;
        let dir = dest.parent().unwrap_or(now);
        let (dir_s, dest_s) = (dir.display().to_string(), dest.display().to_string());
        let out = crate::process::output_in(
            Some(dir),
            &gcov,
            &["--json-format", "--stdout", "--object-directory", &dir_s, &dest_s],
        )
        .with_context(|| format!("is {gcov} installed (gcc's cross package), of the gcc that built the module?"))?;
        docs.extend(out.lines().filter(|l| l.starts_with('{')).map(str::to_string));
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A board without gcov (FriendlyARM's 3.5) is said so, plainly.
    #[test]
    fn a_board_without_gcov_is_said_so() {
        let nonce = "0123456789abcdef";
        let log = format!("[ 9.0] @@harness {nonce} gcov none\n[ 9.1] @@harness {nonce} done\n");
        let c = board(&Transcript::from_log(&log, nonce), None);
        assert!(c.files.is_empty() && c.info.is_none());
        assert_eq!(c.notes.len(), 1, "{:?}", c.notes);
        assert!(c.notes[0].starts_with("the board's kernel has no gcov"), "{:?}", c.notes);
        let c = board(&Transcript::from_log(&format!("[ 9.1] @@harness {nonce} done\n"), nonce), None);
        assert!(c.notes[0].starts_with("no coverage data came from the board"), "{:?}", c.notes);
    }

    #[test]
    fn a_gcda_path_is_taken_only_inside_the_module_folder() {
        assert_eq!(relative("/run/module/sub/a.gcda", "/run/module"), Some(PathBuf::from("sub/a.gcda")));
        assert_eq!(relative("/run/module/../etc/a.gcda", "/run/module"), None);
        assert_eq!(relative("/run/modulex/a.gcda", "/run/module"), None);
        assert_eq!(relative("/other/a.gcda", "/run/module"), None);
    }
}
