//! Modules written for the board's Linux 3.5 that fail on the test kernel
//! because of a known change (configs/kernel-changes.toml): each compile
//! fixture in fixtures/api-changes/ fails to build with exactly its entry's
//! explanation, and a module named `module` fails to load with its own,
//! through the binary as a user sees it.

use crate::common::{self, harness, repo, text};

const COMPILE: &[&str] =
    &["create_proc_entry", "timer", "class_create", "ioremap_nocache", "mach-headers", "do_gettimeofday", "fops-ioctl", "devinit"];

#[test]
fn each_removed_api_fails_the_build_with_its_explanation() {
    let table = harness::changes::load(&repo().join("configs")).unwrap();
    // One kernel for all: the first build installs and builds what is missing.
    let args = harness::options::KernelArgs::default();
    let (_, kernel) = harness::prepare::kernel(&args, &harness::prepare::Stages::new()).unwrap_or_else(|e| panic!("{e:#}"));
    for id in COMPILE {
        let work = tempfile::tempdir().unwrap();
        let err = harness::module::build(&repo().join("fixtures/api-changes").join(id), &kernel, work.path(), 2)
            .err()
            .unwrap_or_else(|| panic!("{id} built on the test kernel"));
        let shown = format!("{err:#}");
        let what = &table.changes.iter().find(|c| c.id == *id).unwrap().what;
        assert!(shown.contains("what changed since Linux 3.5:") && shown.contains(what.as_str()), "{id}:\n{shown}");
        // Exactly its own entry: no other change's explanation.
        for other in table.changes.iter().filter(|c| c.id != *id) {
            assert!(!shown.contains(other.what.as_str()), "{id} also explained as {}:\n{shown}", other.id);
        }
    }
}

#[test]
fn a_module_named_module_fails_to_load_with_the_explanation() {
    let out = harness(&["check", "--module", repo().join("fixtures/api-changes/module-name").to_str().unwrap()]);
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
        .args(["check", "--module", repo().join("fixtures/api-changes/timer").to_str().unwrap()])
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
