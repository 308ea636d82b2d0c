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
    "init_timer",
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
    "platform-remove-int",
    "bus-match-const",
    "fops-ioctl-int",
    "strict-prototypes",
    "seq_printf-int",
    "mach-implicit",
    "mach-plat-headers",
    "soc-is",
    "i2c-probe-id",
    "kobj-default-attrs",
    "pwm-legacy",
    "strict_strtoul",
    "vm_flags",
];

/// Fixture directories whose change the layer does not cover: they fail to
/// build under both APIs, explained, and the explanation says why the layer
/// leaves it.
const NOT_COVERED: &[&str] = &["fops-ioctl"];

/// Entries covered by 3.5's compiler policy: their mark is the compiler's warning.
const POLICY: &[&str] =
    &["platform-remove-int", "bus-match-const", "fops-ioctl-int", "strict-prototypes", "werror-3.5"];

/// The table entry a fixture directory stands for.
fn id_of(dir: &str) -> &str {
    match dir {
        "module-name" => "module-named-module",
        "mach-implicit" => "transitive-headers",
        "mach-plat-headers" | "soc-is" => "mach-headers",
        d => d,
    }
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
    let err = harness::module::build(
        &repo().join("fixtures/api-changes").join(dir),
        kernel,
        work.path(),
        &common::build_options(api),
    )
    .err()
    .unwrap_or_else(|| panic!("{dir} built under --api {api}"));
    let shown = format!("{err:#}");
    let id = id_of(dir);
    let what = &table.changes.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no entry {id}")).what;
    assert!(
        shown.contains("what changed since Linux 3.5:") && shown.contains(what.as_str()),
        "{dir} (--api {api}):\n{shown}"
    );
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
            "transitive-headers" | "mach-implicit" => vec![],
            // Its remove returns int, as 3.5's did, in __devexit_p().
            "devinit" => vec!["devinit", "platform-remove-int"],
            // Its open() reads PDE(inode)->data, 3.5's way (the entry went private in 3.10).
            "proc-fops" => vec!["create_proc_entry", "proc-fops"],
            d => vec![id_of(d)],
        };
        assert_eq!(ids, expected, "{dir}: {v}");
        // What 3.5's kbuild only warned about is a warning, shown as the compiler shows it.
        for p in v["ports"].as_array().unwrap().iter().filter(|p| POLICY.contains(&p["id"].as_str().unwrap())) {
            let note = p["note"].as_str().unwrap_or_else(|| panic!("{dir}: no warning shown: {p}"));
            assert!(note.contains(": warning: ") && note.contains("[-W"), "{dir}: {note}");
        }
        // Each place is a line of the module's own source.
        for p in v["ports"].as_array().unwrap().iter().filter(|p| p["id"] != "module-named-module") {
            let at = p["at"].as_array().unwrap();
            assert!(!at.is_empty(), "{dir}: no place: {p}");
            for a in at {
                let a = a.as_str().unwrap();
                let (file, line) = a.rsplit_once(':').unwrap();
                assert!(
                    repo().join("fixtures/api-changes").join(dir).join(file).is_file() && line.parse::<u32>().is_ok(),
                    "{dir}: {a}"
                );
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
    let out = harness(&[
        "check",
        "--api",
        "native",
        "--module",
        repo().join("fixtures/api-changes/module-name").to_str().unwrap(),
    ]);
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
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
        .args(["check", "--api", "native", "--module", repo().join("fixtures/api-changes/timer").to_str().unwrap()])
        .env("HARNESS_RUN_DIR", runs.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("does not compile") && t.contains("what changed since Linux 3.5:"), "{t}");
    let log =
        t.lines().find_map(|l| l.trim().strip_prefix("full log: ")).unwrap_or_else(|| panic!("no log named:\n{t}"));
    let log = std::fs::read_to_string(log).unwrap_or_else(|e| panic!("the named log {log}: {e}\n{t}"));
    assert!(log.contains("error:"), "the log holds the compiler's errors:\n{log}");
    let kept = t
        .lines()
        .find_map(|l| l.trim().strip_prefix("(run directory kept: ")?.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(std::path::Path::new(kept).starts_with(runs.path()) && std::path::Path::new(kept).is_dir(), "{t}");
}

/// Issue 28: what a module folder's sources include from beside it comes
/// along, read-only; what lies beyond its parent never does, and the error
/// says which include and why.
#[test]
fn headers_beside_the_module_folder_come_along_and_beyond_its_parent_never() {
    let k = kernel();
    let work = tempfile::tempdir().unwrap();
    let built = harness::module::build(
        &repo().join("fixtures/beside/led"),
        &k,
        work.path(),
        &common::build_options(harness::api::Api::Native),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(built.modules.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["beside_led"]);
    let board = work.path().join("include/board.h");
    assert!(
        board.is_file() && work.path().join("include/leds.h").is_file() && work.path().join("inc/buttons.h").is_file()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&board).unwrap().permissions().mode() & 0o222, 0, "read-only");

    let work = tempfile::tempdir().unwrap();
    let err = harness::module::build(
        &repo().join("fixtures/beside/beyond"),
        &k,
        work.path(),
        &common::build_options(harness::api::Api::Native),
    )
    .expect_err("an include beyond the parent is not copied");
    let shown = format!("{err:#}");
    assert!(
        shown.contains(
            "not copied into the build: beside_beyond.c:4 includes ../../build-errors/vendor-cc/vendor_led.c: "
        ) && shown.contains("is beyond the module folder's parent"),
        "{shown}"
    );
    assert!(!work.path().join("build-errors").exists() && !work.path().parent().unwrap().join("build-errors").exists());
}

/// Issue 28: a Makefile that sets the vendor's CC. The user sees the
/// shell's error as the headline (it was a 1,291-character sandbox command
/// line) and the Makefile's line named.
#[test]
fn a_makefile_that_sets_cc_gets_its_error_as_headline_and_the_variable_named() {
    let runs = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
        .args(["check", "--module", repo().join("fixtures/build-errors/vendor-cc").to_str().unwrap()])
        .env("HARNESS_RUN_DIR", runs.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    let headline = t.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{t}"));
    assert!(headline.ends_with("does not compile: /bin/sh: 1: arm-hisiv100nptl-linux-gcc: not found"), "{headline}");
    assert!(
        t.contains("Makefile:4 sets CC = arm-hisiv100nptl-linux-gcc: kbuild takes CC from the kernel's build"),
        "{t}"
    );
    assert!(t.lines().all(|l| l.len() < 400 && !l.contains("--ro-bind")), "no command line is shown:\n{t}");
}

/// Issue 28: the port list is printed whatever the outcome, a build error
/// too (a 3.5 API the layer gives back, and a typo of the module's own).
#[test]
fn a_build_error_under_the_layer_still_prints_the_port_list() {
    let k = kernel();
    let work = tempfile::tempdir().unwrap();
    let err = harness::module::build(
        &repo().join("fixtures/build-errors/ported-typo"),
        &k,
        work.path(),
        &common::build_options(harness::api::Api::Linux35),
    )
    .expect_err("the typo fails the build");
    let shown = format!("{err:#}");
    assert!(shown.contains("tv_usecs"), "{shown}");
    assert!(
        shown.contains("built with --api 3.5: the layer gave back") && shown.contains("do_gettimeofday"),
        "{shown}"
    );
}

/// The layer's own safety under 3.5's warning policy (fixtures/layer-safety/):
/// a newer kernel's callback type in the layer's 3.5-shaped i2c_driver or
/// timer_list, and
/// the layer's kobj_type put where the kernel reads its own, are warnings to
/// the compiler and errors to the build, with the layer's explanation.
#[test]
fn a_warning_that_names_a_layer_type_stops_the_build() {
    let k = kernel();
    for dir in ["i2c-probe-new", "ktype-in-kset", "timer-new-callback"] {
        let work = tempfile::tempdir().unwrap();
        let src = repo().join("fixtures/layer-safety").join(dir);
        let err = harness::module::build(&src, &k, work.path(), &common::build_options(harness::api::Api::Linux35))
            .err()
            .unwrap_or_else(|| panic!("{dir} built under --api 3.5"));
        let shown = format!("{err:#}");
        assert!(shown.contains("does not compile") && shown.contains("compat35_"), "{dir}:\n{shown}");
        assert!(
            shown.contains("A type of the 3.5 layer's own (compat35_…) met a type it does not take"),
            "{dir}:\n{shown}"
        );
        assert!(!shown.contains("builds it unchanged"), "{dir}:\n{shown}");
        // Natively the same module builds or fails on the kernel's own terms, never with the layer's words.
        let work = tempfile::tempdir().unwrap();
        if let Err(e) = harness::module::build(&src, &k, work.path(), &common::build_options(harness::api::Api::Native))
        {
            assert!(!format!("{e:#}").contains("compat35"), "{dir} (native):\n{e:#}");
        }
    }
}

/// Issue 28: under `--api 3.5` struct timer_list is the layer's 3.5-shaped
/// timer; a kernel header whose structures hold one is read through the
/// layer's shadow, which suspends the renaming. One reached without it (a
/// quoted include: <target/iscsi/iscsi_transport.h> includes
/// "iscsi_target_core.h", whose struct iscsit_conn holds timers) would give
/// those structures another layout than the kernel's: the build stops,
/// naming the header and its line. Natively the module builds.
#[test]
fn a_kernel_structure_that_would_hold_the_layers_timer_stops_the_build() {
    let k = kernel();
    let src = repo().join("fixtures/layer-safety/timer-quoted-include");
    let work = tempfile::tempdir().unwrap();
    let err = harness::module::build(&src, &k, work.path(), &common::build_options(harness::api::Api::Linux35))
        .expect_err("the layer's timer in struct iscsit_cmd");
    let shown = format!("{err:#}");
    assert!(
        shown.contains(
            "include/target/iscsi/iscsi_target_core.h:461: struct timer_list dataout_timer; (read \
        by hello_iscsi.c after the 3.5 layer renamed struct timer_list)"
        ),
        "{shown}"
    );
    assert!(shown.contains(harness::timer_guard::EXPLANATION.lines().next().unwrap()), "{shown}");
    assert!(!shown.contains("builds it unchanged"), "{shown}");
    let work = tempfile::tempdir().unwrap();
    harness::module::build(&src, &k, work.path(), &common::build_options(harness::api::Api::Native))
        .unwrap_or_else(|e| panic!("natively it builds: {e:#}"));
}

/// A compile error that no entry explains says so, under either API, and
/// names the first unknown identifier; no explanation claims that --api 3.5
/// builds what it has just failed to build.
#[test]
fn an_error_no_entry_explains_names_the_first_unknown_identifier() {
    let k = kernel();
    for api in [harness::api::Api::Native, harness::api::Api::Linux35] {
        let work = tempfile::tempdir().unwrap();
        let src = repo().join("fixtures/layer-safety/unknown-name");
        let err = harness::module::build(&src, &k, work.path(), &common::build_options(api)).err().unwrap();
        let shown = format!("{err:#}");
        assert!(shown.contains("no known change explains these errors"), "--api {api}:\n{shown}");
        assert!(
            shown.contains("the first unknown identifier is `printkk` (hello_unknown_name.c:8)"),
            "--api {api}:\n{shown}"
        );
        assert!(!shown.contains("builds it unchanged"), "--api {api}:\n{shown}");
    }
}
