//! Bad input is caught before anything is built or booted: exit status 2, a
//! short message that names the file, field or line, and no Rust panic.

use crate::common::{harness, repo, text};

fn fails_with(args: &[&str], wants: &[&str]) {
    let out = harness(args);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}:\n{t}");
    for w in wants {
        assert!(t.contains(w), "{args:?}: {w:?} missing from:\n{t}");
    }
    assert!(!t.contains("panicked") && !t.contains("RUST_BACKTRACE"), "{t}");
}

#[test]
fn unknown_profile_lists_the_known_ones() {
    fails_with(
        &["check", "--profile", "tiny9"],
        &[
            "unknown profile \"tiny9\"",
            "exynos4210, exynos4210-debug, exynos4210-debug-full, exynos4210-gdb, tiny4412, \
             tiny4412-3.5, vexpress-a9",
        ],
    );
}

/// The shipped data is found at run time (issue 30): beside the executable
/// (the nearest directory above it with configs/ and rootfs/), or where
/// HARNESS_DATA_DIR says, whatever the current directory. Each install here
/// holds one profile of its own, so the list tells which data was read.
#[test]
fn the_data_is_found_beside_the_executable_or_where_the_variable_says() {
    let install = |profile: &str| {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("configs/profiles")).unwrap();
        std::fs::create_dir_all(d.path().join("bin")).unwrap();
        for shared in ["rootfs", "kmod"] {
            std::os::unix::fs::symlink(repo().join(shared), d.path().join(shared)).unwrap();
        }
        let from = repo().join("configs/profiles").join(format!("{profile}.toml"));
        std::fs::copy(from, d.path().join(format!("configs/profiles/{profile}.toml"))).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_tiny4412-harness"), d.path().join("bin/tiny4412-harness")).unwrap();
        d
    };
    let run = |exe: &std::path::Path, data: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["check", "--profile", "tiny9"]).current_dir("/").stdin(std::process::Stdio::null());
        cmd.env_remove("HARNESS_DATA_DIR");
        if let Some(d) = data {
            cmd.env("HARNESS_DATA_DIR", d);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        text(&out)
    };
    let (a, b) = (install("vexpress-a9"), install("exynos4210"));
    let from = |d: &tempfile::TempDir| format!("{}/configs/profiles)", d.path().file_name().unwrap().to_string_lossy());
    let t = run(&a.path().join("bin/tiny4412-harness"), None);
    assert!(t.contains("available profiles are vexpress-a9 (from ") && t.contains(&from(&a)), "{t}");
    let t = run(&a.path().join("bin/tiny4412-harness"), Some(b.path()));
    assert!(t.contains("available profiles are exynos4210 (from ") && t.contains(&from(&b)), "{t}");
}

/// A binary with no data beside it and no HARNESS_DATA_DIR (an install)
/// uses the copy built into it, unpacked into the user's cache directory
/// (XDG_CACHE_HOME here): every shipped profile, and its caches and runs
/// go there too.
#[test]
fn a_binary_alone_unpacks_its_built_in_data_into_the_users_cache() {
    let (bin, xdg) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let exe = bin.path().join("tiny4412-harness");
    std::fs::copy(env!("CARGO_BIN_EXE_tiny4412-harness"), &exe).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(args).current_dir("/").stdin(std::process::Stdio::null());
        cmd.env_remove("HARNESS_DATA_DIR").env_remove("HARNESS_CACHE_DIR").env_remove("HARNESS_RUN_DIR");
        cmd.env("XDG_CACHE_HOME", xdg.path()).output().unwrap()
    };
    let cache = xdg.path().join("tiny4412-harness");
    let out = run(&["paths"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let data = t.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or_else(|| panic!("{t}"));
    assert!(std::path::Path::new(data).starts_with(cache.join("data")), "{t}");
    assert!(t.contains(&format!("cache: {}\n", cache.display())), "{t}");
    assert!(t.contains(&format!("runs: {}\n", cache.join("harness-runs").display())), "{t}");
    let t = text(&run(&["check", "--profile", "tiny9"]));
    let mut shipped: Vec<String> = std::fs::read_dir(repo().join("configs/profiles"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_string_lossy().strip_suffix(".toml").map(String::from))
        .collect();
    shipped.sort();
    let want = format!("available profiles are {} (from {data}/configs/profiles)", shipped.join(", "));
    assert!(t.contains(&want), "{want}\n{t}");
}

#[test]
fn module_directory_without_kbuild_or_makefile() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(&["check", "--module", dir.path().to_str().unwrap()], &["has no Kbuild or Makefile", "obj-m"]);
}

#[test]
fn missing_module_directory() {
    fails_with(&["check", "--module", "/no/such/module"], &["--module /no/such/module: no such directory"]);
}

/// `--together` joins module directories built here: a kernel build's
/// module cannot join them, and one directory is no pair. Both are refused
/// before anything is built, each with its own reason.
#[test]
fn together_is_refused_with_a_kernel_module_and_with_one_directory() {
    let dir = |d: &str| repo().join("fixtures/together/led").join(d).display().to_string();
    let (a, b) = (dir("pdevice"), dir("pdriver"));
    let with_ko = ["check", "--module", &a, "--module", &b, "--together", "--kernel-module", "lib/list-test.ko"];
    fails_with(&with_ko, &["--kernel-module lib/list-test.ko is a module of the kernel build", "drop --together"]);
    fails_with(&["check", "--kernel-module", "lib/list-test.ko", "--together"], &["drop --together"]);
    fails_with(&["check", "--module", &a, "--together"], &["give two or more (1 given)"]);
}

#[test]
fn malformed_expectations_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(&f, "[[step]]\nname = \"insmod\"\nexit = zero\n").unwrap();
    fails_with(&["check", "--expect", f.to_str().unwrap()], &["bad.toml: invalid expectations", "line 3"]);
}

#[test]
fn invalid_regex_names_the_step_and_entry() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("re.toml");
    std::fs::write(&f, "[[step]]\nname = \"insmod\"\nexpect = [{ regex = \"process:(\" }]\n").unwrap();
    fails_with(
        &["check", "--expect", f.to_str().unwrap()],
        &["re.toml: step 1 (\"insmod\"): expect[0]: invalid regex"],
    );
}

#[test]
fn malformed_profile_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("broken.toml");
    std::fs::write(&f, "description = \"x\"\narch = [\n").unwrap();
    fails_with(&["check", "--profile", f.to_str().unwrap()], &["broken.toml: invalid profile"]);
}

#[test]
fn bad_kernel_src() {
    fails_with(&["check", "--kernel-src", "/no/such/tree"], &["--kernel-src /no/such/tree: no such file or directory"]);
    let dir = tempfile::tempdir().unwrap();
    fails_with(&["check", "--kernel-src", dir.path().to_str().unwrap()], &["not a kernel tree"]);
}

#[test]
fn help_documents_every_flag() {
    let out = harness(&["check", "--help"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for flag in ["--profile", "--module", "--expect", "--kernel-src", "--keep", "--timeout", "--cross-compile"] {
        assert!(t.contains(flag), "{flag} missing from --help");
    }
    let usage = std::fs::read_to_string(repo().join("docs/usage.md")).unwrap();
    for flag in ["--profile", "--module", "--expect", "--kernel-src", "--keep", "--timeout", "--cross-compile"] {
        assert!(usage.contains(flag), "docs/usage.md does not document {flag}");
    }
}

/// Every subcommand, as typed after the binary's name.
const SUBCOMMANDS: [&str; 12] = [
    "check",
    "board-image",
    "setup",
    "replay",
    "recheck",
    "lava-job",
    "emulate-board",
    "kernel",
    "cache-key",
    "cache gc",
    "init",
    "paths",
];

/// docs/usage.md names every long flag that some subcommand's `--help` lists
/// (as a whole word: `--keep` in `--keep-going` does not count).
#[test]
fn usage_doc_names_every_flag_of_every_subcommand() {
    let usage = std::fs::read_to_string(repo().join("docs/usage.md")).unwrap();
    let flag = regex::Regex::new(r"--[a-z][a-z0-9-]*").unwrap();
    let documented: std::collections::BTreeSet<&str> = flag.find_iter(&usage).map(|m| m.as_str()).collect();
    let mut missing = Vec::new();
    for sub in SUBCOMMANDS {
        let args: Vec<&str> = sub.split(' ').chain(["--help"]).collect();
        let t = text(&harness(&args));
        for f in flag.find_iter(&t).map(|m| m.as_str()) {
            if f != "--help" && f != "--version" && !documented.contains(f) {
                missing.push(format!("{sub} {f}"));
            }
        }
    }
    missing.dedup();
    assert!(missing.is_empty(), "docs/usage.md does not document: {missing:?}");
}

/// Every subcommand's options are well formed (clap checks its own
/// definitions, conflicts and defaults, when the command is built) and
/// documented.
#[test]
fn every_subcommand_has_working_help() {
    for sub in SUBCOMMANDS {
        let args: Vec<&str> = sub.split(' ').chain(["--help"]).collect();
        let out = harness(&args);
        let t = text(&out);
        assert!(out.status.success(), "{sub} --help: {t}");
        assert!(t.contains("Usage: tiny4412-harness"), "{sub}: {t}");
    }
    let t = text(&harness(&["check", "--help"]));
    assert!(t.contains("--kernel-module") && t.contains("more than once"), "{t}");
}
