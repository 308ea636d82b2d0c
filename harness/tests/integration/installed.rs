//! The tool as a student installs it (issue 31): `cargo install` into a
//! root of its own, then run from inside a module's folder outside the
//! checkout, with the checkout hidden (bubblewrap puts an empty tmpfs over
//! it), so that only what the binary carries can be used. `--debug` makes
//! cargo reuse the suite's own build (same target directory); `--locked`
//! and `--offline` are what an install from the repository does.

use crate::common::{repo, text};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `cargo install --path harness --root ROOT`; the installed binary.
fn install(root: &Path) -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_tiny4412-harness"));
    // target/debug/tiny4412-harness: the suite's target directory.
    let target = exe.ancestors().nth(2).unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["install", "--locked", "--offline", "--debug", "--path"])
        .arg(repo().join("harness"))
        .arg("--root")
        .arg(root)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let installed = root.join("bin/tiny4412-harness");
    assert!(installed.is_file(), "{}", text(&out));
    installed
}

/// Every file and directory under `dir`, with the files' bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            all.insert(p.clone(), None);
            all.extend(snapshot(&p));
        } else {
            all.insert(p.clone(), Some(std::fs::read(&p).unwrap()));
        }
    }
    all
}

/// Runs the installed binary in `dir` with the checkout hidden, the
/// suite's kernel cache given (bound back when it lies in the checkout).
fn run_hidden(exe: &Path, dir: &Path, args: &[&str]) -> Output {
    let cache = harness::cache::root();
    let mut cmd = Command::new("bwrap");
    cmd.args(["--dev-bind", "/", "/", "--tmpfs"]).arg(repo());
    if cache.starts_with(repo()) {
        cmd.arg("--bind").arg(&cache).arg(&cache);
    }
    cmd.arg("--chdir").arg(dir).arg(exe).args(args);
    cmd.env_remove("HARNESS_DATA_DIR").env_remove("HARNESS_RUN_DIR").env("HARNESS_CACHE_DIR", &cache);
    cmd.stdin(std::process::Stdio::null()).output().unwrap()
}

#[test]
fn an_installed_binary_checks_the_module_folder_it_runs_in_and_writes_nothing_there() {
    // bubblewrap, which hides the checkout, as the harness installs it for its sandbox.
    let logs = harness::cache::root().join("logs");
    harness::packages::ensure(&harness::packages::for_sandbox(), &logs).unwrap_or_else(|e| panic!("{e:#}"));
    let root = tempfile::tempdir().unwrap();
    let exe = install(root.path());
    let size = std::fs::metadata(&exe).unwrap().len();
    eprintln!("installed binary (debug profile): {:.1} MiB", size as f64 / (1 << 20) as f64);
    let work = tempfile::tempdir().unwrap();
    let module = work.path().join("misc");
    for f in ["Makefile", "hello_misc.c", "app.c", "expect.toml"] {
        std::fs::create_dir_all(&module).unwrap();
        std::fs::copy(repo().join("fixtures/lessons/misc").join(f), module.join(f)).unwrap();
    }
    let out = run_hidden(&exe, &module, &["paths"]);
    let t = text(&out);
    let data = t.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or_else(|| panic!("{t}"));
    assert!(Path::new(data).starts_with(harness::cache::root().join("data")), "the built-in copy: {t}");
    // Kernel cache keys hash contents, not where the data lies: the
    // installed binary finds the kernels the checkout built.
    let key = |out: Output| String::from_utf8_lossy(&out.stdout).trim().to_string();
    let installed_key = key(run_hidden(&exe, &module, &["cache-key", "--profile", "exynos4210"]));
    assert_eq!(installed_key, key(crate::common::harness(&["cache-key", "--profile", "exynos4210"])));
    assert_eq!(installed_key.len(), 16, "{installed_key}");
    let before = snapshot(&module);
    let junit = work.path().join("junit.xml");
    let out = run_hidden(&exe, &module, &["check", "--junit", junit.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("verdict: PASSED"), "{t}");
    assert!(!t.contains("not a module folder"), "{t}");
    // The folder's own steps ran (its expect.toml was the one read).
    assert!(t.contains("PASS  app") && t.contains("app: got pong"), "{t}");
    assert_eq!(snapshot(&module), before, "check wrote into the module's folder");
    assert!(std::fs::read_to_string(&junit).unwrap().contains("<testcase"), "JUnit where it was asked for");
    // init refuses the folder's own expect.toml, and starts one where there is none.
    let out = run_hidden(&exe, &module, &["init"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("exists already"), "{}", text(&out));
    assert_eq!(snapshot(&module), before);
    std::fs::remove_file(module.join("expect.toml")).unwrap();
    let out = run_hidden(&exe, work.path(), &["init", "misc"]);
    assert!(out.status.success(), "{}", text(&out));
    let written = std::fs::read_to_string(module.join("expect.toml")).unwrap();
    let e = harness::judge::expect::Expectations::parse(&written, "the starter").unwrap();
    assert_eq!(e.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["insmod", "rmmod"]);
    assert!(written.contains("hello_misc: loaded"), "{written}");
}
