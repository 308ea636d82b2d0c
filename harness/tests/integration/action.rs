//! The GitHub Action (action.yml) run as GitHub runs a composite action,
//! here, without GitHub: `act` needs a Docker daemon and its own image, and
//! neither is to be had on this machine (no daemon runs; the registries
//! reachable are crates.io, PyPI, Debian and npm). So the test reads
//! action.yml, takes the inputs the example workflow
//! (examples/module-workflow.yml) gives it, expands the `${{ }}` expressions
//! the action uses (an unknown one fails the test), evaluates each step's
//! `if:`, and runs the `run:` steps with bash as the runner does
//! (`bash --noprofile --norc -eo pipefail`), with GITHUB_OUTPUT, GITHUB_ENV
//! and GITHUB_PATH kept between steps, in a HOME and RUNNER_TEMP of their
//! own and a module repository made for the run. The `uses:` steps (cache,
//! upload) are not run: their expanded inputs are checked to name the paths
//! the run made. The tool is installed by the action's own `cargo install
//! --locked --path` (offline, reusing this checkout's release build).

use crate::common::repo;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(serde::Deserialize)]
struct Action {
    inputs: BTreeMap<String, Input>,
    runs: Runs,
}

#[derive(serde::Deserialize)]
struct Input {
    default: Option<String>,
}

#[derive(serde::Deserialize)]
struct Runs {
    using: String,
    steps: Vec<Step>,
}

#[derive(serde::Deserialize)]
struct Step {
    name: String,
    id: Option<String>,
    #[serde(rename = "if")]
    condition: Option<String>,
    shell: Option<String>,
    run: Option<String>,
    uses: Option<String>,
    #[serde(default)]
    with: BTreeMap<String, String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

/// One job's state: the values expressions read, and what the steps left.
struct Job {
    inputs: BTreeMap<String, String>,
    outputs: BTreeMap<String, BTreeMap<String, String>>,
    env: BTreeMap<String, String>,
    path: Vec<String>,
    failed: bool,
    /// The `uses:` steps that the run reached, with their expanded inputs.
    used: Vec<(String, BTreeMap<String, String>)>,
    skipped: Vec<String>,
    /// HOME and RUNNER_TEMP, whose files the test reads after the run.
    _dirs: [tempfile::TempDir; 2],
}

impl Job {
    /// One `${{ }}` expression's value: the contexts action.yml uses.
    fn value(&self, expr: &str) -> String {
        let parts: Vec<&str> = expr.split('.').collect();
        match parts.as_slice() {
            ["inputs", name] => self.inputs.get(*name).cloned().unwrap_or_else(|| panic!("no input {name}")),
            ["github", "action_path"] => repo().display().to_string(),
            ["steps", id, "outputs", name] => {
                self.outputs.get(*id).and_then(|o| o.get(*name)).cloned().unwrap_or_default()
            }
            _ => panic!("action.yml uses ${{{{ {expr} }}}}, which this test does not model"),
        }
    }

    fn expand(&self, text: &str) -> String {
        let re = regex::Regex::new(r"\$\{\{\s*([^}]+?)\s*\}\}").unwrap();
        re.replace_all(text, |c: &regex::Captures| self.value(&c[1])).into_owned()
    }

    /// A step's `if:`, in the forms action.yml uses: terms joined by `&&`,
    /// each `always()`, `failure()` or `X == 'v'` / `X != 'v'`.
    fn runs(&self, condition: Option<&str>) -> bool {
        let Some(c) = condition else { return !self.failed };
        let mut status_given = false;
        let ok = c.split("&&").map(str::trim).all(|term| match term {
            "always()" => {
                status_given = true;
                true
            }
            "failure()" => {
                status_given = true;
                self.failed
            }
            _ => {
                let (lhs, rhs, eq) = match term.split_once("!=") {
                    Some((l, r)) => (l, r, false),
                    None => term.split_once("==").map(|(l, r)| (l, r, true)).expect("a comparison"),
                };
                let rhs = rhs.trim().trim_matches('\'');
                (self.value(lhs.trim()) == rhs) == eq
            }
        });
        ok && (status_given || !self.failed)
    }
}

/// The machine's own Rust (the temporary HOME has none).
fn rust_homes() -> [(String, String); 2] {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let var =
        |name: &str, dir: &str| (name.to_string(), std::env::var(name).unwrap_or_else(|_| format!("{home}/{dir}")));
    [var("CARGO_HOME", ".cargo"), var("RUSTUP_HOME", ".rustup")]
}

/// Runs one `run:` step as the runner does; false when it failed.
fn run_step(job: &mut Job, step: &Step, base: &BTreeMap<String, String>, temp: &Path) -> bool {
    assert_eq!(step.shell.as_deref(), Some("bash"), "{}: a composite run step names its shell", step.name);
    let script = temp.join("step.sh");
    std::fs::write(&script, job.expand(step.run.as_deref().unwrap())).unwrap();
    let (output, env_file, path_file) = (temp.join("output"), temp.join("env"), temp.join("path"));
    for f in [&output, &env_file, &path_file] {
        std::fs::write(f, "").unwrap();
    }
    let mut cmd = Command::new("bash");
    cmd.args(["--noprofile", "--norc", "-eo", "pipefail"]).arg(&script).env_clear().envs(base).envs(&job.env);
    let system_path = std::env::var("PATH").unwrap_or_default();
    let path: Vec<&str> = job.path.iter().rev().map(String::as_str).chain([system_path.as_str()]).collect();
    cmd.env("PATH", path.join(":"));
    for (k, v) in &step.env {
        cmd.env(k, job.expand(v));
    }
    cmd.env("GITHUB_OUTPUT", &output).env("GITHUB_ENV", &env_file).env("GITHUB_PATH", &path_file);
    let ok = wait_deadline(cmd.process_group(0), Duration::from_secs(30 * 60), &step.name);
    let pairs = |f: &Path| -> Vec<(String, String)> {
        let text = std::fs::read_to_string(f).unwrap();
        text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    if let Some(id) = &step.id {
        job.outputs.entry(id.clone()).or_default().extend(pairs(&output));
    }
    job.env.extend(pairs(&env_file));
    job.path.extend(std::fs::read_to_string(&path_file).unwrap().lines().map(String::from));
    ok
}

/// Waits for the step's bash with a deadline, killing its process group
/// when it passes; true when it exited 0.
fn wait_deadline(cmd: &mut Command, deadline: Duration, name: &str) -> bool {
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            eprintln!("step {name:?}: {status} after {:.1} s", start.elapsed().as_secs_f64());
            return status.success();
        }
        if start.elapsed() > deadline {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.wait();
            panic!("step {name:?} ran past {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The inputs examples/module-workflow.yml gives the action.
fn example_inputs() -> BTreeMap<String, String> {
    let wf: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo().join("examples/module-workflow.yml")).unwrap()).unwrap();
    let steps = wf["jobs"]["check"]["steps"].as_sequence().unwrap();
    let step = steps.iter().find(|s| s["uses"].as_str().is_some_and(|u| u.contains("tiny4412-harness@"))).unwrap();
    let with: BTreeMap<String, String> = serde_yaml::from_value(step["with"].clone()).unwrap();
    assert_eq!(with.keys().collect::<Vec<_>>(), ["module", "profile"], "the example's three lines");
    with
}

/// Runs action.yml's steps for the module repository `workspace`.
fn run_action(workspace: &Path) -> Job {
    let action: Action = serde_yaml::from_str(&std::fs::read_to_string(repo().join("action.yml")).unwrap()).unwrap();
    assert_eq!(action.runs.using, "composite");
    let mut inputs: BTreeMap<String, String> =
        action.inputs.iter().filter_map(|(k, i)| Some((k.clone(), i.default.clone()?))).collect();
    inputs.extend(example_inputs());
    let (home, runner_temp, scratch) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_tiny4412-harness"));
    let mut base: BTreeMap<String, String> = rust_homes().into_iter().collect();
    for (k, v) in [
        ("HOME", home.path().display().to_string()),
        ("RUNNER_TEMP", runner_temp.path().display().to_string()),
        ("GITHUB_WORKSPACE", workspace.display().to_string()),
        ("GITHUB_ACTION_PATH", repo().display().to_string()),
        ("HARNESS_CACHE_DIR", harness::cache::root().display().to_string()),
        // Offline, and this checkout's release build reused by the install.
        ("CARGO_NET_OFFLINE", "true".into()),
        ("CARGO_TARGET_DIR", exe.ancestors().nth(2).unwrap().display().to_string()),
    ] {
        base.insert(k.to_string(), v);
    }
    let mut job = Job {
        inputs,
        outputs: BTreeMap::new(),
        env: BTreeMap::new(),
        path: Vec::new(),
        failed: false,
        used: Vec::new(),
        skipped: Vec::new(),
        _dirs: [home, runner_temp],
    };
    for step in &action.runs.steps {
        if !job.runs(step.condition.as_deref()) {
            job.skipped.push(step.name.clone());
        } else if let Some(uses) = &step.uses {
            let with = step.with.iter().map(|(k, v)| (k.clone(), job.expand(v))).collect();
            job.used.push((uses.clone(), with));
            if let Some(id) = &step.id {
                // As on a first run: nothing restored, so the kernel is "built" and saved.
                job.outputs.entry(id.clone()).or_default().insert("cache-hit".into(), "false".into());
            }
        } else if !run_step(&mut job, step, &base, scratch.path()) {
            job.failed = true;
        }
    }
    job
}

/// A module's own repository: the misc lesson at its root (the example's
/// `module: .`), its expect.toml passed through `edit`.
fn module_repo(edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    let lesson = repo().join("fixtures/lessons/misc");
    for f in ["Makefile", "hello_misc.c", "app.c"] {
        std::fs::copy(lesson.join(f), ws.path().join(f)).unwrap();
    }
    let expect = std::fs::read_to_string(lesson.join("expect.toml")).unwrap();
    std::fs::write(ws.path().join("expect.toml"), edit(&expect)).unwrap();
    ws
}

fn used<'a>(job: &'a Job, action: &str) -> &'a BTreeMap<String, String> {
    let found = job.used.iter().find(|(u, _)| u.starts_with(action));
    &found.unwrap_or_else(|| panic!("{action} not reached; skipped: {:?}", job.skipped)).1
}

#[test]
fn the_action_checks_a_module_repository_and_names_the_kernel_cache_it_keeps() {
    let ws = module_repo(str::to_string);
    let before: Vec<_> = std::fs::read_dir(ws.path()).unwrap().map(|e| e.unwrap().path()).collect();
    let job = run_action(ws.path());
    assert!(!job.failed, "a step failed; skipped: {:?}", job.skipped);
    let out = crate::common::harness(&["cache-key", "--profile", "exynos4210"]);
    let key = format!("tiny4412-harness-kernels-{}", String::from_utf8_lossy(&out.stdout).trim());
    let kernels = harness::cache::root().join("kernels");
    let restore = used(&job, "actions/cache/restore@");
    assert_eq!(restore["path"], kernels.display().to_string());
    assert_eq!(restore["key"], key);
    // The kernel the check booted is where the cache steps look.
    assert!(std::fs::read_dir(&kernels).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("exynos4210-")));
    let save = used(&job, "actions/cache/save@");
    let k = kernels.display();
    assert_eq!(save["path"].lines().collect::<Vec<_>>(), [format!("{k}"), format!("!{k}/*.tmp-*")]);
    assert_eq!(save["key"], key);
    assert!(job.skipped.iter().any(|s| s.starts_with("Upload")), "uploaded, though it passed: {:?}", job.skipped);
    let junit = std::fs::read_to_string(&job.outputs["check"]["junit"]).unwrap();
    assert!(junit.contains("<testcase") && !junit.contains("<failure"), "{junit}");
    assert_eq!(job.outputs["check"]["run-dir"], "", "a passing check keeps no run directory");
    let after: Vec<_> = std::fs::read_dir(ws.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(after, before, "the action wrote into the module's repository");
}

#[test]
fn a_failing_module_fails_the_action_which_uploads_its_report_and_run_directory() {
    let ws = module_repo(|e| e.replace("app: got pong", "app: got nothing"));
    let job = run_action(ws.path());
    assert!(job.failed, "the check step passed a module that fails");
    let upload = used(&job, "actions/upload-artifact@");
    let (junit, run_dir) = (&job.outputs["check"]["junit"], &job.outputs["check"]["run-dir"]);
    assert_eq!(upload["path"].lines().collect::<Vec<_>>(), [junit.as_str(), run_dir.as_str()]);
    assert!(std::fs::read_to_string(junit).unwrap().contains("<failure"), "{junit}");
    assert!(std::fs::read_dir(run_dir).unwrap().count() > 0, "{run_dir}");
    // The kernel cache is saved all the same.
    used(&job, "actions/cache/save@");
}
