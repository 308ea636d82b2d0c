//! The 3.5 layer measured against 3.5 itself: every lesson fixture, every
//! 3.5-style API fixture and the tutorial module, on FriendlyARM's Linux 3.5
//! (the tiny4412-3.5 profile) and on the stand-in under `--api 3.5`
//! (exynos4210). The table of verdicts is printed; a fixture whose two
//! verdicts differ must be listed, with those verdicts and the reason, in
//! `configs/linux-3.5-disagreements.toml`, and a listed one that agrees now
//! fails too (the list is kept true).
//!
//! Boots: one on 3.5 and two on the stand-in (the watchdog lesson ends the
//! boot with the board's reset, so it is checked alone). Modules are built
//! first, one by one (kept builds that the checks reuse), so that one that
//! does not build is a verdict of its own instead of stopping a boot.

use crate::common::{self, repo, text};
use crate::linux35::vendor_tarball;
use harness::api::Api;
use harness::judge::expect::Expectations;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Listed {
    disagreement: Vec<Disagreement>,
}

#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Disagreement {
    fixture: String,
    linux35: String,
    standin: String,
    reason: String,
}

/// Every fixture of the table, as `group/name` under fixtures/.
fn fixtures() -> Vec<String> {
    let mut out = Vec::new();
    for group in ["lessons", "api-changes"] {
        let mut names: Vec<String> = std::fs::read_dir(repo().join("fixtures").join(group))
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| format!("{group}/{}", e.file_name().to_string_lossy()))
            .collect();
        names.sort();
        out.extend(names);
    }
    out.push("tutorial/mmc_byte".into());
    out
}

fn expectations(dir: &Path) -> Expectations {
    let path = dir.join("expect.toml");
    match std::fs::read_to_string(&path) {
        Ok(t) => Expectations::parse(&t, &path.display().to_string()).unwrap(),
        Err(_) => Expectations::defaults(),
    }
}

/// One kernel's column: each fixture's verdict.
struct Column {
    profile: &'static str,
    api: Api,
    kernel_src: Option<PathBuf>,
}

impl Column {
    fn kernel(&self) -> harness::kernel::Kernel {
        let mut args = harness::options::KernelArgs { profile: self.profile.into(), ..Default::default() };
        args.build.kernel_src = self.kernel_src.clone();
        harness::prepare::kernel(&args, &harness::prepare::Stages::new()).unwrap_or_else(|e| panic!("{e:#}")).1
    }

    fn verdicts(&self, names: &[String]) -> BTreeMap<String, String> {
        let kernel = self.kernel();
        let profile = harness::profile::Profile::load(self.profile, &repo().join("configs")).unwrap();
        // Without the virtual board a unit with board steps is refused.
        let virtual_board = profile.qemu.virtual_board != Some(false);
        let mut verdicts = BTreeMap::new();
        let (mut together, mut alone) = (Vec::new(), Vec::new());
        for name in names {
            let dir = repo().join("fixtures").join(name);
            let exp = expectations(&dir);
            let api = exp.api.unwrap_or(self.api);
            // As prepare does: on 3.5 itself a 3.5 module needs no layer.
            let api = if Some(api) == profile.kernel_api { Api::Native } else { api };
            let work = tempfile::tempdir().unwrap();
            if harness::module::build(&dir, &kernel, work.path(), &common::build_options(api)).is_err() {
                verdicts.insert(name.clone(), "BUILD-FAILED".into());
            } else if exp.uses_board() && !virtual_board {
                verdicts.insert(name.clone(), "REFUSED".into());
            } else if exp.expects_reset() {
                alone.push(name.clone());
            } else {
                together.push(name.clone());
            }
        }
        // A boot's units are named by their directories, which must differ
        // (lessons/timer and api-changes/timer): a second of a name goes
        // to the next boot.
        let mut boots: Vec<Vec<String>> = Vec::new();
        for name in together {
            let base = |n: &String| Path::new(n).file_name().map(|f| f.to_owned());
            match boots.iter_mut().find(|g| !g.iter().any(|n| base(n) == base(&name))) {
                Some(g) => g.push(name),
                None => boots.push(vec![name]),
            }
        }
        boots.extend(alone.into_iter().map(|n| vec![n]));
        for group in boots.iter().filter(|g| !g.is_empty()) {
            verdicts.extend(self.boot(group));
        }
        verdicts
    }

    /// One `check` of `names`, their outcomes from its JSON.
    fn boot(&self, names: &[String]) -> BTreeMap<String, String> {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("verdicts.json");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"));
        cmd.args(["check", "--profile", self.profile, "--api", &self.api.to_string(), "--json"]).arg(&json);
        if let Some(src) = &self.kernel_src {
            cmd.arg("--kernel-src").arg(src);
        }
        for n in names {
            cmd.arg("--module").arg(repo().join("fixtures").join(n));
        }
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        let reports: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&json)
                .unwrap_or_else(|_| panic!("{}: no verdicts written:\n{}", self.profile, text(&out))),
        )
        .unwrap();
        let reports = if reports.is_array() { reports } else { serde_json::Value::Array(vec![reports]) };
        let mut got = BTreeMap::new();
        for r in reports.as_array().unwrap() {
            let label = r["module"].as_str().unwrap();
            // A unit is labelled by its directory's name.
            let name = names.iter().find(|n| Path::new(n).file_name().unwrap() == label || names.len() == 1).unwrap();
            got.insert(name.clone(), r["verdict"]["outcome"].as_str().unwrap().to_string());
        }
        assert_eq!(got.len(), names.len(), "{}: a verdict for each of {names:?}:\n{}", self.profile, text(&out));
        common::assert_no_qemu_children();
        got
    }
}

#[test]
fn every_fixture_gets_the_same_verdict_on_3_5_and_on_the_stand_in_or_is_listed() {
    let Some(tarball) = vendor_tarball() else {
        return;
    };
    let names = fixtures();
    let board = Column { profile: "tiny4412-3.5", api: Api::Linux35, kernel_src: Some(tarball) };
    let standin = Column { profile: "exynos4210", api: Api::Linux35, kernel_src: None };
    let on35 = board.verdicts(&names);
    let onstandin = standin.verdicts(&names);

    let listed: Listed =
        toml::from_str(&std::fs::read_to_string(repo().join("configs/linux-3.5-disagreements.toml")).unwrap()).unwrap();
    let mut table = format!("{:<36} {:<16} {:<16} note\n", "fixture", "Linux 3.5", "stand-in --api 3.5");
    let mut wrong = Vec::new();
    for n in &names {
        let (a, b) = (&on35[n], &onstandin[n]);
        let entry = listed.disagreement.iter().find(|d| &d.fixture == n);
        let note = match entry {
            _ if a == b && entry.is_none() => String::new(),
            Some(d) if a != b && &d.linux35 == a && &d.standin == b => {
                format!("listed: {}", d.reason)
            }
            Some(d) if a == b => {
                wrong.push(format!(
                    "{n}: listed as {} / {}, but both kernels now say {a}: remove it from the list",
                    d.linux35, d.standin
                ));
                "STALE".into()
            }
            Some(d) => {
                wrong.push(format!("{n}: listed as {} / {}, but it is {a} / {b}", d.linux35, d.standin));
                "LISTED OTHERWISE".into()
            }
            None => {
                wrong.push(format!("{n}: {a} on Linux 3.5, {b} on the stand-in under --api 3.5, and not listed"));
                "DISAGREES".into()
            }
        };
        table.push_str(&format!("{n:<36} {a:<16} {b:<16} {note}\n"));
    }
    for d in &listed.disagreement {
        assert!(
            names.contains(&d.fixture),
            "configs/linux-3.5-disagreements.toml lists {}, which is no fixture",
            d.fixture
        );
    }
    println!("{table}");
    assert!(wrong.is_empty(), "{table}\n{}", wrong.join("\n"));
}
