//! Modules written for the board's Linux 3.5 (fixtures/api-changes/, one
//! known change of configs/kernel-changes.toml each): under `--api 3.5` those
//! the layer covers build and run unchanged and are in the port list; under
//! `--api native` each fails with exactly its entry's explanation (a module
//! named `module` fails to load with its own, through the binary as a user
//! sees it); those the layer does not cover fail under both.

use crate::common::{self, harness, repo, text};

/// Fixture directories whose change the 3.5 layer covers: under `--api 3.5`
/// (the profiles' default) they build, load and do what they do on the
/// board; under `--api native` each fails with exactly its explanation.
const COVERED: &[&str] = &[
    "class_create",
    "create_proc_entry",
    "devinit",
    "do_gettimeofday",
    "timespec",
    "ioremap_nocache",
    "mach-headers",
    "module-name",
    "timer",
    "proc-fops",
    "of_i2c",
    "transitive-headers",
    "irqf-disabled",
    "access_ok-type",
    "declare-tasklet-data",
    "sleep_on",
    "f_dentry",
    "no_llseek",
    "access_once",
    "gfp_temporary",
    "input-polldev",
    "pwm-legacy",
];

/// Fixture directories whose change the layer does not cover: they fail to
/// build under both APIs, explained, and the explanation says why the layer
/// leaves it.
const NOT_COVERED: &[&str] = &["fops-ioctl", "kobj-default-attrs", "bus-match-const", "platform-remove-int", "i2c-probe-id"];

/// The table entry a fixture directory stands for.
fn id_of(dir: &str) -> &str {
    if dir == "module-name" { "module-named-module" } else { dir }
}

fn kernel() -> harness::kernel::Kernel {
    // One kernel for all: the first build installs and builds what is missing.
    let args = harness::options::KernelArgs::default();
    harness::prepare::kernel(&args, &harness::prepare::Stages::new()).unwrap_or_else(|e| panic!("{e:#}")).1
}

/// Builds `dir` for `api`, which must fail, with exactly `dir`'s explanation.
fn fails_with_its_explanation(kernel: &harness::kernel::Kernel, dir: &str, api: harness::api::Api) -> String {
    let table = harness::changes::load(&repo().join("configs")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let err = harness::module::build(&repo().join("fixtures/api-changes").join(dir), kernel, work.path(), &common::build_options(api))
        .err()
        .unwrap_or_else(|| panic!("{dir} built under --api {api}"));
    let shown = format!("{err:#}");
    let id = id_of(dir);
    let what = &table.changes.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no entry {id}")).what;
    assert!(shown.contains("what changed since Linux 3.5:") && shown.contains(what.as_str()), "{dir} (--api {api}):\n{shown}");
    // Exactly its own entry: no other change's explanation.
    for other in table.changes.iter().filter(|c| c.id != id) {
        assert!(!shown.contains(other.what.as_str()), "{dir} (--api {api}) also explained as {}:\n{shown}", other.id);
    }
    shown
}

#[test]
fn each_removed_api_fails_the_native_build_with_its_explanation() {
    let k = kernel();
    // module-name builds natively: it fails to load (the test below).
    for dir in COVERED.iter().chain(NOT_COVERED).filter(|d| **d != "module-name") {
        let shown = fails_with_its_explanation(&k, dir, harness::api::Api::Native);
        let covered = COVERED.contains(dir);
        assert_eq!(shown.contains("--api 3.5 builds it unchanged"), covered, "{dir}:\n{shown}");
    }
}

#[test]
fn what_the_layer_does_not_cover_fails_under_it_too_and_says_why() {
    let k = kernel();
    for dir in NOT_COVERED {
        let shown = fails_with_its_explanation(&k, dir, harness::api::Api::Linux35);
        assert!(shown.contains("the 3.5 layer does not cover it: "), "{dir}:\n{shown}");
    }
}

/// Every covered fixture in one boot under the profile's default API
/// (3.5): each passes its own expectations (what it does on the board), and
/// its port list names exactly its own change, with the line of its use.
#[test]
fn each_covered_api_runs_unchanged_under_the_layer_and_is_in_the_port_list() {
    let json = tempfile::NamedTempFile::new().unwrap();
    let mut args = vec!["check".to_string(), "--json".into(), json.path().display().to_string()];
    for d in COVERED {
        args.push("--module".into());
        args.push(repo().join("fixtures/api-changes").join(d).display().to_string());
    }
    let out = harness(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let reports: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json.path()).unwrap()).unwrap();
    let reports = reports.as_array().unwrap_or_else(|| panic!("one report per unit: {reports}"));
    assert_eq!(reports.len(), COVERED.len());
    for (dir, r) in COVERED.iter().zip(reports) {
        let v = &r["verdict"];
        assert_eq!(v["outcome"], "PASSED", "{dir}: {v}");
        assert_eq!(v["api"], "3.5", "{dir}");
        let ids: Vec<&str> = v["ports"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
        let expected: Vec<&str> = match *dir {
            // The forced includes leave no trace of who needed them.
            "transitive-headers" => vec![],
            // Its open() reads PDE(inode)->data, 3.5's way (the entry went private in 3.10).
            "proc-fops" => vec!["create_proc_entry", "proc-fops"],
            d => vec![id_of(d)],
        };
        assert_eq!(ids, expected, "{dir}: {v}");
        // Each place is a line of the module's own source.
        for p in v["ports"].as_array().unwrap().iter().filter(|p| p["id"] != "module-named-module") {
            let at = p["at"].as_array().unwrap();
            assert!(!at.is_empty(), "{dir}: no place: {p}");
            for a in at {
                let a = a.as_str().unwrap();
                let (file, line) = a.rsplit_once(':').unwrap();
                assert!(repo().join("fixtures/api-changes").join(dir).join(file).is_file() && line.parse::<u32>().is_ok(), "{dir}: {a}");
            }
        }
    }
    // The text says what was renamed, and shows the module's own lines.
    assert!(t.contains("here: module.ko is built as module35.ko"), "{t}");
    assert!(t.contains("a port to it changes these:"), "{t}");
    common::assert_no_qemu_children();
}

#[test]
fn a_module_named_module_fails_to_load_natively_with_the_explanation() {
    let out = harness(&["check", "--api", "native", "--module", repo().join("fixtures/api-changes/module-name").to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("FAIL  insmod exits 0"), "{t}");
    assert!(t.contains("what changed since Linux 3.5:"), "{t}");
    assert!(t.contains("A module named `module` cannot load here"), "{t}");
    assert!(t.contains("Give the module another name"), "{t}");
    common::assert_no_qemu_children();
}

/// What a user sees when a module does not compile: exit status 2, the
/// compiler's errors with the explanation, and a log that is really there
/// (the run directory it lives in is kept and named).
#[test]
fn a_module_that_does_not_compile_names_a_log_that_exists() {
    let runs = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["check", "--api", "native", "--module", repo().join("fixtures/api-changes/timer").to_str().unwrap()])
        .env("HARNESS_RUN_DIR", runs.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("does not compile") && t.contains("what changed since Linux 3.5:"), "{t}");
    let log = t.lines().find_map(|l| l.trim().strip_prefix("full log: ")).unwrap_or_else(|| panic!("no log named:\n{t}"));
    let log = std::fs::read_to_string(log).unwrap_or_else(|e| panic!("the named log {log}: {e}\n{t}"));
    assert!(log.contains("error:"), "the log holds the compiler's errors:\n{log}");
    let kept = t.lines().find_map(|l| l.trim().strip_prefix("(run directory kept: ")?.strip_suffix(')')).unwrap_or_else(|| panic!("{t}"));
    assert!(std::path::Path::new(kept).starts_with(runs.path()) && std::path::Path::new(kept).is_dir(), "{t}");
}
