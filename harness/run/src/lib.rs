//! The run side: the QEMU guest ([`guest`]), a real board over its serial
//! console ([`replay`]), the loop that feeds the console to the judge
//! ([`supervisor`]), `check` itself and the board image. It depends on the
//! build side (harness-build) and the judge (harness-judge), never the
//! other way round.

pub mod check;
pub mod coverage;
pub mod guest;
pub mod html;
pub mod kcidb;
pub mod lava;
pub mod real_board;
pub mod replay;
pub mod splitter;
pub mod supervisor;

// The layers below, under the paths this side's files (and the command
// line's) name them by.
pub use harness_build::{
    api, beside, board_api, busybox, cache, changes, data, init, judge, kconfig, kernel, loader, module, module_cache,
    options, packages, patches, plan, prepare, process, profile, program, progress, repo_root, sandbox, timer_guard,
    toolchain,
};

/// The tests' look at the harness's own code, for the rules the crate graph
/// cannot hold (which file of a crate may do what).
#[cfg(test)]
pub(crate) mod code_scan {
    use std::path::{Path, PathBuf};

    /// The lines (`file:line: text`) of the command line's, the run side's
    /// and the build side's Rust files, but the files ending in one of
    /// `except`, that hold one of `needles`. Comment lines are skipped;
    /// macro bodies are read like any code.
    pub fn lines_naming(needles: &[&str], except: &[&str]) -> Vec<String> {
        let harness = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness/run/ is in harness/");
        let mut files = Vec::new();
        for src in ["src", "run/src", "build/src"] {
            rust_files(&harness.join(src), &mut files);
        }
        assert!(files.len() > 50, "the sources were not found: {files:?}");
        let mut found = Vec::new();
        for f in files.iter().filter(|f| !except.iter().any(|e| f.ends_with(e))) {
            let text = std::fs::read_to_string(f).unwrap();
            for (n, l) in text.lines().enumerate() {
                if !l.trim_start().starts_with("//") && needles.iter().any(|w| l.contains(w)) {
                    found.push(format!("{}:{}: {}", f.display(), n + 1, l.trim()));
                }
            }
        }
        found
    }

    /// Each public type of the workspace's four crates has a name of its
    /// own, which says what it is where two would otherwise repeat (a
    /// `Stop` of a process group, of a background program, of the drive
    /// loop). A re-export is the same type, and is not a definition here.
    #[test]
    fn no_two_public_types_share_a_name() {
        let harness = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness/run/ is in harness/");
        let mut files = Vec::new();
        for src in ["src", "run/src", "build/src", "judge/src"] {
            rust_files(&harness.join(src), &mut files);
        }
        let mut seen: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for f in &files {
            for (n, l) in std::fs::read_to_string(f).unwrap().lines().enumerate() {
                let l = l.trim_start();
                let Some(rest) = ["pub ", "pub(crate) ", "pub(super) "].iter().find_map(|p| l.strip_prefix(p)) else {
                    continue;
                };
                let Some((kind, rest)) = rest.split_once(' ') else { continue };
                if ["struct", "enum", "type", "trait"].contains(&kind) {
                    let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    seen.entry(name).or_default().push(format!("{}:{}", f.display(), n + 1));
                }
            }
        }
        assert!(seen.len() > 100, "the types were not found: {}", seen.len());
        let twice: Vec<_> = seen.iter().filter(|(_, at)| at.len() > 1).collect();
        assert!(twice.is_empty(), "public types sharing a name: {twice:#?}");
    }

    /// `configs/` is data: no profile, board, fragment or source package it
    /// names is written in the harness's code (tests aside), but the default
    /// profile's name, and the fragment `--coverage` adds. LAVA's device type
    /// `tiny4412` is LAVA's name (its template's), not the board file's.
    #[test]
    fn no_name_of_configs_is_written_in_code_but_the_defaults() {
        let configs = crate::repo_root().join("configs");
        let stems = |dir: &str| -> Vec<String> {
            let files = std::fs::read_dir(configs.join(dir)).unwrap().flatten();
            files.map(|e| e.file_name().to_string_lossy().trim_end_matches(".toml").to_string()).collect()
        };
        let mut names: Vec<String> = [stems("profiles"), stems("boards"), stems("fragments")].concat();
        for p in crate::profile::Profile::available(&configs) {
            let text = std::fs::read_to_string(configs.join("profiles").join(format!("{p}.toml"))).unwrap();
            let package = text.lines().find_map(|l| l.strip_prefix("source_package = ")).map(|v| v.trim_matches('"'));
            names.extend(package.map(String::from));
        }
        assert!(names.len() > 20, "{names:?}");
        let allowed = [
            ("build/src/options.rs", "exynos4210"),
            ("build/src/prepare.rs", "coverage.config"),
            ("judge/src/lava.rs", "tiny4412"),
            ("run/src/lava.rs", "tiny4412"),
        ];
        let mut found = Vec::new();
        for (f, l) in non_test_code() {
            for n in names.iter().filter(|n| l.contains(&format!("\"{n}\""))) {
                if !allowed.iter().any(|(file, name)| f.ends_with(file) && n == name) {
                    found.push(format!("{}: {n}: {}", f.display(), l.trim()));
                }
            }
        }
        assert!(found.is_empty(), "names of configs/ in code: {found:#?}");
    }

    /// No kind of step is told by comparing its name outside
    /// `StepKind::of`: no builtin step's word is compared with, matched or
    /// cut off as a literal in the four crates' code (tests aside). The
    /// leak's `comm` in event.rs is a process's name (the insmod and rmmod
    /// programs), not a step's.
    #[test]
    fn no_kind_of_step_is_told_by_its_name_outside_stepkind_of() {
        let forms = |w: &str| {
            [
                format!("== \"{w}"),
                format!("!= \"{w}"),
                format!("with(\"{w}"),
                format!("fix(\"{w}"),
                format!("\"{w}\" =>"),
                format!("\"{w}\" |"),
                format!("| \"{w}\""),
            ]
        };
        let words = ["insmod", "rmmod", "gone", "leaks", "census"];
        let mut found = Vec::new();
        for (f, l) in non_test_code() {
            let told = words.iter().any(|w| forms(w).iter().any(|form| l.contains(form.as_str())));
            if told && !(f.ends_with("judge/src/event.rs") && l.contains("leak_comm")) {
                found.push(format!("{}: {}", f.display(), l.trim()));
            }
        }
        assert!(found.is_empty(), "a step's kind told by its name: {found:#?}");
    }

    /// Each line of the four crates' code but tests and comments: the text
    /// of each file before its test module, and no `tests.rs`.
    fn non_test_code() -> Vec<(PathBuf, String)> {
        let mut files = Vec::new();
        for src in ["src", "run/src", "build/src", "judge/src"] {
            rust_files(&crate::repo_root().join("harness").join(src), &mut files);
        }
        let mut out = Vec::new();
        for f in files.into_iter().filter(|f| !f.ends_with("tests.rs")) {
            let text = std::fs::read_to_string(&f).unwrap();
            let code = text.split("\n#[cfg(test)]").next().unwrap();
            let lines = code.lines().filter(|l| !l.trim_start().starts_with("//"));
            out.extend(lines.map(|l| (f.clone(), l.to_string())).collect::<Vec<_>>());
        }
        assert!(out.len() > 10_000, "the code was not found: {} lines", out.len());
        out
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
}
