//! Where labs and KernelCI are: the LAVA job run by Debian's LAVA
//! dispatcher and judged from its log as `check` judges, the real board's
//! job held to LAVA's own schema, and the KCIDB report held to kcidb-io's.

use crate::common::{check_with, fixture, harness, repo, text};
use harness::judge::lava::{self, BoardImages, Deploy, Scenario};
use harness::judge::verdict::Outcome;
use harness::options::CheckOptions;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn ensure_suite_packages() {
    let logs = harness::cache::root().join("logs");
    harness::packages::ensure(&harness::packages::for_suite(), &logs).unwrap_or_else(|e| panic!("{e:#}"));
}

/// `lava-job` for `module`, then `lava-run` of it: the job's folder, the
/// dispatcher's log (its stderr) and how long the LAVA run took.
fn lava_run(module: &Path, out: &Path) -> (PathBuf, f64) {
    let o = harness(&["lava-job", "--module", module.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let log = out.join("lava.log");
    let started = Instant::now();
    let run = Command::new("lava-run")
        .args(["--job-id", "1", "--output-dir"])
        .arg(out.join("lava-out"))
        .args(["--device", "device.yaml", "--dispatcher", "dispatcher.yaml", "job.yaml"])
        .current_dir(out)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .expect("lava-run (apt-get install lava-dispatcher)");
    let secs = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&log).unwrap();
    // LAVA ran the job through: whatever the module did, its steps were read.
    assert!(run.success(), "lava-run failed:\n{text}");
    assert!(text.contains("\"msg\": \"Job finished correctly\""), "{text}");
    (log, secs)
}

fn recheck(log: &Path, record: &Path) -> (Option<i32>, String) {
    let o = harness(&["recheck", "--lava-log", log.to_str().unwrap(), "--lava-job", record.to_str().unwrap()]);
    (o.status.code(), text(&o))
}

/// The QEMU job runs under Debian's lava-run; `recheck --lava-log` gives
/// `check`'s verdict for a good module (kmod/) and a faulty one (whose
/// init forges our markers, and fails), also as a KCIDB report kcidb-io
/// validates, and LAVA's test cases are named as our steps. A log tampered with is judged by what it shows, a forged
/// marker inside a line is a line, and another job's record is refused.
#[test]
fn a_lava_job_runs_under_lava_run_and_is_judged_as_check_judges() {
    ensure_suite_packages();
    let dir = tempfile::tempdir().unwrap();
    for (module, want) in [(repo().join("kmod"), Outcome::Passed), (fixture("faults/forged-marker"), Outcome::Failed)] {
        let started = Instant::now();
        let checked = check_with(CheckOptions::new("exynos4210", &module)).verdict;
        let check_secs = started.elapsed().as_secs_f64();
        assert_eq!(checked.outcome, want, "{checked}");
        let out = dir.path().join(module.file_name().unwrap());
        let (log, lava_secs) = lava_run(&module, &out);
        eprintln!("{}: check {check_secs:.1} s, lava-job's lava-run {lava_secs:.1} s (under load)", module.display());
        let record = out.join(harness::lava::RECORD);
        let (code, t) = recheck(&log, &record);
        // The same verdict as a KCIDB report: the run's status, check's.
        let report = out.join("kcidb.json");
        let o = harness(&[
            "recheck",
            "--lava-log",
            log.to_str().unwrap(),
            "--lava-job",
            record.to_str().unwrap(),
            "--kcidb",
            report.to_str().unwrap(),
        ]);
        // kcidb-io takes it, as it takes check's own (the test below).
        let v = kcidb_validates(&kcidb_python(), &report);
        assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let name = module.file_name().unwrap().to_string_lossy();
        let run = doc["tests"].as_array().unwrap().iter().find(|t| t["path"] == format!("harness.{name}")).cloned();
        assert_eq!(run.unwrap()["misc"]["outcome"], want.to_string(), "{}", text(&o));
        assert_eq!(doc["builds"][0]["config_name"], "exynos4210");
        assert!(t.contains(&format!("verdict: {want}")), "{t}");
        assert_eq!(code, Some(if want == Outcome::Passed { 0 } else { 1 }), "{t}");
        let log_text = std::fs::read_to_string(&log).unwrap();
        let steps = checked.steps.iter().filter(|s| s.exit.is_some()).count();
        assert!(steps > 0);
        assert_eq!(
            log_text.matches("\"definition\": \"harness\"").count(),
            steps,
            "a LAVA test case per step that ran:\n{log_text}"
        );
        if want == Outcome::Passed {
            tampered(&log, &record, &log_text);
        }
    }
}

fn tampered(log: &Path, record: &Path, log_text: &str) {
    let copy = log.with_file_name("tampered.log");
    // kmod/'s insmod line gone: FAILED on its expectation.
    std::fs::write(&copy, log_text.replace("process:insmod", "process:other")).unwrap();
    let (_, t) = recheck(&copy, record);
    assert!(t.contains("verdict: FAILED") && t.contains("insmod prints line \"process:insmod\""), "{t}");
    // A forged end of rmmod inside a line, before rmmod's own "mmc exit!":
    // believed, it would put that line after the step, and fail it.
    let nonce: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(record).unwrap()).unwrap();
    let nonce = nonce["nonce"].as_str().unwrap();
    let mut forged = String::new();
    let mut done = false;
    for line in log_text.lines() {
        if !done && line.contains("\"lvl\": \"target\"") && line.contains("mmc exit!") {
            let fake = format!("[   99.0] mmc: @@harness {nonce} end rmmod rc=0");
            forged.push_str(&format!("{{\"dt\": \"x\", \"lvl\": \"target\", \"msg\": \"{fake}\"}}\n"));
            done = true;
        }
        forged.push_str(line);
        forged.push('\n');
    }
    assert!(done, "no mmc exit! in the log");
    std::fs::write(&copy, &forged).unwrap();
    let (code, t) = recheck(&copy, record);
    assert_eq!(code, Some(0), "{t}");
    // The same marker at the start of a message is ours, and is believed.
    std::fs::write(&copy, forged.replace("mmc: @@harness", "@@harness")).unwrap();
    let (code, t) = recheck(&copy, record);
    assert_eq!(code, Some(1), "{t}");
    // Another job's record (another nonce): refused, not judged.
    let other = log.with_file_name("other.json");
    std::fs::write(&other, std::fs::read_to_string(record).unwrap().replace(nonce, "000000000000beef")).unwrap();
    let (code, t) = recheck(log, &other);
    assert_eq!(code, Some(2), "{t}");
    assert!(t.contains("no step marker with the job's nonce 000000000000beef"), "{t}");
}

fn python_validates(job: &Path) -> std::process::Output {
    let script = "import sys, yaml\nfrom lava_common.schemas import validate\n\
                  validate(yaml.safe_load(open(sys.argv[1])), strict=True)\n";
    // Debian's python, which has lava-dispatcher's lava_common (not a
    // python3 of the user's first on PATH).
    Command::new("/usr/bin/python3").args(["-c", script]).arg(job).output().expect("python3")
}

/// The real board's job, for each deploy method, and the QEMU job pass
/// LAVA's own validator (strict); a job it must refuse is refused.
#[test]
fn the_tiny4412_job_validates_with_lavas_schema() {
    ensure_suite_packages();
    let dir = tempfile::tempdir().unwrap();
    let s = Scenario {
        name: "harness check kmod (tiny4412)".into(),
        nonce: "0123456789abcdef".into(),
        steps: vec!["insmod".into(), "rmmod".into()],
        timeout_minutes: 5,
    };
    let images = BoardImages {
        kernel: "http://lab/uImage".into(),
        ramdisk: "http://lab/uInitrd".into(),
        ramdisk_bytes: 3 << 20,
        bootargs: "console=ttySAC0,115200n8 rdinit=/init".into(),
    };
    for deploy in [Deploy::Tftp, Deploy::Flasher, Deploy::Fastboot] {
        let job = dir.path().join(format!("{deploy:?}.yaml"));
        std::fs::write(&job, lava::to_yaml(&lava::tiny4412_job(&s, &images, deploy))).unwrap();
        let o = python_validates(&job);
        assert!(o.status.success(), "{deploy:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let q = lava::QemuImages {
        kernel: "file:///k".into(),
        dtb: None,
        initrd: "file:///i".into(),
        cmdline: "rdinit=/init".into(),
    };
    let job = dir.path().join("qemu.yaml");
    std::fs::write(&job, lava::to_yaml(&lava::qemu_job(&s, &q))).unwrap();
    assert!(python_validates(&job).status.success());
    // The validator refuses what it must: a boot method LAVA lacks.
    let bad = lava::to_yaml(&lava::tiny4412_job(&s, &images, Deploy::Tftp)).replace("\"u-boot\"", "\"u-bot\"");
    std::fs::write(&job, bad).unwrap();
    assert!(!python_validates(&job).status.success());
}

/// LAVA's own device-type templates (base-uboot.jinja2 and what it
/// extends), as Debian's lava-server ships them: its package downloaded and
/// unpacked under target/tools, not installed (a server brings PostgreSQL
/// and Django along; the templates are all a lab's server adds here).
fn lava_server_templates() -> PathBuf {
    let dir = repo().join("target").join("tools").join("lava-server");
    let _lock = harness::cache::lock(&dir.with_extension("lock"), "unpacking lava-server").unwrap();
    let types = dir.join("usr/share/lava-server/device-types");
    if types.join("base-uboot.jinja2").is_file() {
        return types;
    }
    let debs = dir.with_extension("debs");
    std::fs::create_dir_all(&debs).unwrap();
    let download = || Command::new("apt-get").args(["download", "lava-server"]).current_dir(&debs).output().unwrap();
    let mut o = download();
    if !o.status.success() {
        // No package lists yet (a fresh container): the harness's update.
        let logs = harness::cache::root().join("logs");
        harness::packages::apt_update(harness::packages::privilege(), &logs);
        o = download();
    }
    assert!(o.status.success(), "apt-get download lava-server: {}", text(&o));
    let deb = std::fs::read_dir(&debs).unwrap().map(|e| e.unwrap().path()).find(|p| {
        p.file_name().unwrap().to_string_lossy().starts_with("lava-server_")
            && p.extension().is_some_and(|e| e == "deb")
    });
    let st = Command::new("dpkg-deb").arg("-x").arg(deb.expect("lava-server's .deb")).arg(&dir).status().unwrap();
    assert!(st.success() && types.join("base-uboot.jinja2").is_file(), "no device types in lava-server's package");
    types
}

/// A lab's device dictionary for one Tiny4412 (`{% extends %}` the
/// shipped type, its own commands), rendered as a LAVA server renders it
/// (jinja2, trim_blocks) with LAVA's templates; the device's YAML.
fn render_tiny4412_device(dir: &Path) -> PathBuf {
    let types = lava_server_templates();
    let dicts = dir.join("dicts");
    std::fs::create_dir_all(&dicts).unwrap();
    // LAVA only checks that these commands exist here: a lab's are
    // `telnet localhost 7001` (ser2net), its PDU's and its SD-mux's.
    std::fs::write(
        dicts.join("tiny4412-01.jinja2"),
        "{% extends 'tiny4412.jinja2' %}\n\
         {% set connection_command = 'cat /dev/null' %}\n\
         {% set power_off_command = 'true' %}\n{% set power_on_command = 'true' %}\n\
         {% set hard_reset_command = 'true' %}\n\
         {% set flasher_deploy_commands = ['true {KERNEL} {RAMDISK}'] %}\n\
         {% set fastboot_serial_number = '0123456789ab' %}\n",
    )
    .unwrap();
    let script = "import sys, jinja2\n\
                  env = jinja2.Environment(loader=jinja2.FileSystemLoader(sys.argv[1:4]), trim_blocks=True)\n\
                  sys.stdout.write(env.get_template('tiny4412-01.jinja2').render())\n";
    let o = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .args([dicts, repo().join("configs/lava"), types])
        .output()
        .expect("python3");
    assert!(o.status.success(), "rendering the device: {}", text(&o));
    let device = dir.join("device.yaml");
    std::fs::write(&device, &o.stdout).unwrap();
    device
}

/// `lava-run --validate` of `job` on `device`: LAVA builds the job's whole
/// pipeline for the device and checks it, running nothing. Its TFTP check
/// reads /etc/default/tftpd-hpa and looks for in.tftpd, a lab worker's
/// server: given here in a bubblewrap view (a copy of /etc/default with
/// the file, a stand-in on PATH), the machine's own files untouched.
fn lava_validate(dir: &Path, device: &Path, job: &Path) -> std::process::Output {
    let (etc, bin, tftp) = (dir.join("etc-default"), dir.join("bin"), dir.join("tftp"));
    if !etc.is_dir() {
        for d in [&etc, &bin, &tftp] {
            std::fs::create_dir_all(d).unwrap();
        }
        let st = Command::new("cp").arg("-a").arg("/etc/default/.").arg(&etc).status().unwrap();
        assert!(st.success());
        std::fs::write(etc.join("tftpd-hpa"), format!("TFTP_DIRECTORY=\"{}\"\n", tftp.display())).unwrap();
        std::fs::write(bin.join("in.tftpd"), "#!/bin/sh\nexit 0\n").unwrap();
        let st = Command::new("chmod").arg("+x").arg(bin.join("in.tftpd")).status().unwrap();
        assert!(st.success());
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = job.with_extension("out");
    Command::new("bwrap")
        .args(["--dev-bind", "/", "/", "--ro-bind"])
        .arg(&etc)
        .arg("/etc/default")
        .args(["lava-run", "--validate", "--job-id", "1", "--output-dir"])
        .arg(&out)
        .arg("--device")
        .arg(device)
        .arg(job)
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// The shipped device type (configs/lava/tiny4412.jinja2) renders with
/// LAVA's own base-uboot into a device whose prompt, addresses and flash
/// order are the board's and the job's, and LAVA's dispatcher takes each
/// deploy's job on it (`lava-run --validate`).
#[test]
fn the_tiny4412_device_type_renders_with_lavas_templates_and_takes_each_job() {
    ensure_suite_packages();
    let logs = harness::cache::root().join("logs");
    harness::packages::ensure(&harness::packages::for_sandbox(), &logs).unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap();
    let device_path = render_tiny4412_device(dir.path());
    let device: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&device_path).unwrap()).unwrap();
    // One prompt everywhere LAVA reads it (a " #" in it was cut as a YAML
    // comment in the boot method and kept in fastboot's).
    let methods = (&device["actions"]["boot"]["methods"], &device["actions"]["deploy"]["methods"]);
    assert_eq!(methods.0["u-boot"]["parameters"]["bootloader_prompt"].as_str(), Some(lava::TINY4412_PROMPT));
    assert_eq!(methods.1["u-boot"]["parameters"]["bootloader_prompt"].as_str(), Some(lava::TINY4412_PROMPT));
    let board: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo().join("configs/boards/tiny4412.toml")).unwrap()).unwrap();
    for (part, key) in [("kernel", "kernel_staging_address"), ("ramdisk", "ramdisk_staging_address")] {
        let addr = board[key].as_str().unwrap();
        assert_eq!(device["parameters"]["bootm"][part].as_str(), Some(addr), "{part}'s address is not {key}");
    }
    let dir = dir.path();
    for (name, f) in [("uImage", 1000), ("uInitrd", 3000)] {
        std::fs::write(dir.join(name), vec![0u8; f]).unwrap();
    }
    let images = BoardImages {
        kernel: format!("file://{}/uImage", dir.display()),
        ramdisk: format!("file://{}/uInitrd", dir.display()),
        ramdisk_bytes: 3000,
        bootargs: "console=ttySAC0,115200n8 rdinit=/init".into(),
    };
    let s = Scenario {
        name: "harness check kmod (tiny4412)".into(),
        nonce: "0123456789abcdef".into(),
        steps: vec!["insmod".into(), "rmmod".into()],
        timeout_minutes: 5,
    };
    for deploy in [Deploy::Tftp, Deploy::Flasher, Deploy::Fastboot] {
        let j = lava::tiny4412_job(&s, &images, deploy);
        let to = j["actions"][0]["deploy"]["to"].as_str().unwrap();
        assert!(methods.1.as_mapping().unwrap().contains_key(to), "the device type has no deploy to {to}");
        if deploy == Deploy::Fastboot {
            // fastboot flashes in the device's order: every image the job names.
            let order: Vec<&str> =
                device["flash_cmds_order"].as_sequence().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
            for part in j["actions"][0]["deploy"]["images"].as_object().unwrap().keys() {
                assert!(order.contains(&part.as_str()), "{part} is not in flash_cmds_order {order:?}");
            }
        }
        let job = dir.join(format!("{deploy:?}.yaml"));
        std::fs::write(&job, lava::to_yaml(&j)).unwrap();
        let o = lava_validate(dir, &device_path, &job);
        let t = text(&o);
        assert!(o.status.success() && t.contains("Job finished correctly"), "{deploy:?}: {t}");
    }
}

/// `lava-job --device tiny4412` writes the board's images (a uImage, the
/// initramfs with the job's nonce as a uInitrd) and a job LAVA's validator
/// takes; from the emulated board's kernel, as the board-image test does
/// (the board's own takes 12 minutes to build).
#[test]
fn lava_job_for_a_tiny4412_writes_its_images_and_a_valid_job() {
    ensure_suite_packages();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny4412");
    let o = harness(&[
        "lava-job",
        "--device",
        "tiny4412",
        "--board-profile",
        "exynos4210",
        "--module",
        repo().join("kmod").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--url-base",
        "http://lab.example/jobs/1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let job = std::fs::read_to_string(out.join("job.yaml")).unwrap();
    assert!(job.contains("\"http://lab.example/jobs/1/uImage\"") && job.contains("to: \"flasher\""), "{job}");
    let v = python_validates(&out.join("job.yaml"));
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(harness::lava::RECORD)).unwrap()).unwrap();
    let nonce = record["nonce"].as_str().unwrap();
    assert!(job.contains(&format!("@@harness {nonce} done")), "{job}");
    // The uInitrd's /harness/env carries the same nonce (a newc cpio, stored).
    let initrd = std::fs::read(out.join("uInitrd")).unwrap();
    let env = format!("HARNESS_NONCE={nonce}");
    assert!(initrd.windows(env.len()).any(|w| w == env.as_bytes()), "the uInitrd is not the job's");
}

/// kcidb-io from PyPI, in a virtual environment under target/ (made once,
/// under a lock): it has no command line, so a script calls it.
fn kcidb_python() -> PathBuf {
    let dir = repo().join("target").join("tools").join("kcidb-venv");
    let _lock = harness::cache::lock(&dir.with_extension("lock"), "installing kcidb-io").unwrap();
    ensure_suite_packages();
    let python = dir.join("bin/python");
    let has = |p: &Path| Command::new(p).args(["-c", "import kcidb_io"]).status().is_ok_and(|s| s.success());
    if !has(&python) {
        // Debian's python3 and its venv module (python3-venv, installed above).
        let st = Command::new("/usr/bin/python3").args(["-m", "venv"]).arg(&dir).status().expect("python3 -m venv");
        assert!(st.success(), "python3 -m venv failed: apt-get install python3-venv");
        let st = Command::new(dir.join("bin/pip")).args(["install", "--quiet", "kcidb-io"]).status().unwrap();
        assert!(st.success(), "pip install kcidb-io failed");
    }
    python
}

fn kcidb_validates(python: &Path, report: &Path) -> std::process::Output {
    let script = "import json, sys, kcidb_io\nkcidb_io.schema.V5_3.validate_exactly(json.load(open(sys.argv[1])))\n";
    Command::new(python).args(["-c", script]).arg(report).output().unwrap()
}

/// One boot of a PASSED, a FAILED and a CRASHED module: the `--kcidb`
/// report validates with kcidb-io, its statuses as docs/kcidb.md's table
/// says, every excerpt within 16 KiB; a report with our own outcome for a
/// status is refused by the validator.
#[test]
fn the_kcidb_report_of_passed_failed_and_crashed_runs_validates() {
    let python = kcidb_python();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("kcidb.json");
    let mut o = CheckOptions::new("exynos4210", repo().join("kmod"));
    o.module.module_dirs.extend([fixture("faults/forged-marker"), fixture("faults/null-deref")]);
    o.output.kcidb = Some(report.clone());
    let r = check_with(o);
    let outcomes: Vec<Outcome> = r.units.iter().map(|(_, v)| v.outcome).collect();
    assert_eq!(outcomes, [Outcome::Passed, Outcome::Failed, Outcome::Crashed]);
    let v = kcidb_validates(&python, &report);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let tests = doc["tests"].as_array().unwrap();
    let status = |path: &str| tests.iter().find(|t| t["path"] == path).map(|t| t["status"].clone());
    assert_eq!(status("harness.kmod").unwrap(), "PASS");
    assert_eq!(status("harness.forged-marker").unwrap(), "FAIL");
    assert_eq!(status("harness.null-deref").unwrap(), "FAIL");
    assert_eq!(status("harness.null-deref.kernel").unwrap(), "FAIL");
    assert_eq!(status("harness.kmod.step.insmod_2").unwrap(), "PASS");
    let crashed = tests.iter().find(|t| t["path"] == "harness.null-deref").unwrap();
    assert_eq!(crashed["misc"]["outcome"], "CRASHED");
    assert!(tests.iter().all(|t| t["log_excerpt"].as_str().is_none_or(|e| e.len() <= 16 << 10)));
    // The three folders are of this repository's checkout: one, its commit.
    let head = Command::new("git").arg("-C").arg(repo()).args(["rev-parse", "HEAD"]).output().unwrap();
    let checkouts = doc["checkouts"].as_array().unwrap();
    assert_eq!(checkouts.len(), 1, "{checkouts:?}");
    assert_eq!(checkouts[0]["git_commit_hash"], String::from_utf8_lossy(&head.stdout).trim(), "{checkouts:?}");
    assert_eq!(doc["builds"].as_array().unwrap().len(), 3, "a build per module folder");
    // The validator is not a formality: our word for a status is refused.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, serde_json::to_string(&doc).unwrap().replacen("\"FAIL\"", "\"CRASHED\"", 1)).unwrap();
    assert!(!kcidb_validates(&python, &bad).status.success());
}
