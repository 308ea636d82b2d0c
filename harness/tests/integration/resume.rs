//! A check resumes a booted guest (guest/snapshot.rs) unless told not to:
//! the same units resumed and booted get the same verdicts, word for word,
//! their timings aside; a damaged snapshot is never resumed.

use crate::common::{fixture, harness, repo, text};
use serde_json::Value;

/// Keys whose values are times, paths or console line numbers of the run,
/// not its verdict (a boot prints a kernel line more or less from one boot
/// to the next: seen once, 277 against 276).
const OF_THE_RUN: &[&str] =
    &["timings", "seconds", "at", "guest_begin", "guest_end", "into_step", "console_log", "line"];

/// What differs between any two boots of one guest, resumed or not, in a
/// text: a decimal number (`handled 1.9 ms after the edge`, a printk
/// time), an address (user stacks are randomized, allocations move: a
/// word of 8 hex digits, `0x…`, a stack dump's `1fa0:`), a CPU, a PID, a
/// console line's number.
fn per_boot(s: &str) -> String {
    let re =
        regex::Regex::new(r"\d+\.\d+|\b[0-9a-f]{8}\b|0x[0-9a-f]+|(?m)^[0-9a-f]{4}:|CPU: \d+|PID: \d+|console line \d+")
            .unwrap();
    re.replace_all(s, "_").into_owned()
}

/// `v` without the run's times and paths, its texts [`per_boot`].
fn verdict_only(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !OF_THE_RUN.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), verdict_only(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(verdict_only).collect()),
        Value::String(s) => Value::String(per_boot(s)),
        other => other.clone(),
    }
}

/// One check of `units` (`--no-resume` if `boot`): what it said, its JSON
/// and its JUnit.
fn check(units: &[&str], boot: bool, dir: &std::path::Path) -> (String, Value, String) {
    let tag = if boot { "booted" } else { "resumed" };
    let (json, junit) = (dir.join(format!("{tag}.json")), dir.join(format!("{tag}.xml")));
    let mut args = vec!["check", "--json", json.to_str().unwrap(), "--junit", junit.to_str().unwrap()];
    if boot {
        args.push("--no-resume");
    }
    for u in units {
        args.extend(["--module", u]);
    }
    let out = harness(&args);
    let said = text(&out);
    let v = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("{e}: {said}"))).unwrap();
    (said, v, std::fs::read_to_string(&junit).unwrap())
}

/// Five units in one guest, resumed and then booted: the memory tutorial's
/// module, a virtual-board lesson (its board loaded first), a timer
/// lesson, a module that forges the marker protocol, and a WARN: the same
/// outcomes, checks, reports and census either way.
#[test]
fn resumed_and_booted_verdicts_agree_word_for_word() {
    let units: Vec<String> = [repo().join("kmod").to_string_lossy().into_owned()]
        .into_iter()
        .chain(
            ["lessons/led-va", "lessons/timer", "faults/forged-marker", "faults/warn-on"]
                .map(|f| fixture(f).to_string_lossy().into_owned()),
        )
        .collect();
    let units: Vec<&str> = units.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let (said_r, resumed, junit_r) = check(&units, false, dir.path());
    let (said_b, booted, junit_b) = check(&units, true, dir.path());
    assert!(said_r.contains(", resumed from "), "{said_r}");
    assert!(said_b.contains(", booted: --no-resume"), "{said_b}");
    assert_eq!(resumed.as_array().map(Vec::len), Some(5), "{said_r}");
    let outcomes: Vec<&str> =
        resumed.as_array().unwrap().iter().map(|u| u["verdict"]["outcome"].as_str().unwrap()).collect();
    assert!(outcomes.contains(&"PASSED") && outcomes.iter().any(|o| *o != "PASSED"), "both kinds: {outcomes:?}");
    let (r, b) = (verdict_only(&resumed), verdict_only(&booted));
    if r != b {
        let (r, b) = (serde_json::to_string_pretty(&r).unwrap(), serde_json::to_string_pretty(&b).unwrap());
        let first = r.lines().zip(b.lines()).position(|(x, y)| x != y).unwrap_or(0);
        let around = |s: &str| s.lines().skip(first.saturating_sub(5)).take(12).collect::<Vec<_>>().join("\n");
        panic!("the verdicts differ at line {first}:\nresumed:\n{}\nbooted:\n{}", around(&r), around(&b));
    }
    let times = regex::Regex::new(r#"time="[0-9.]+""#).unwrap();
    let junit = |j: &str| per_boot(&times.replace_all(j, "_"));
    assert_eq!(junit(&junit_r), junit(&junit_b), "the JUnit differs");
}

/// A snapshot is made on first use; one whose stream no longer has its
/// checksum is removed, and the check boots, saying why (its own folder of
/// snapshots: the suite's other checks resume the shared one meanwhile).
#[test]
fn a_damaged_snapshot_is_never_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
            .args(["check", "--module", "kmod"])
            .current_dir(repo())
            .env("HARNESS_SNAPSHOTS", dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        text(&out)
    };
    let first = run();
    assert!(first.contains(", saved now"), "made on first use: {first}");
    let state = walkdir(dir.path()).into_iter().find(|p| p.ends_with("state.bin")).expect("a state.bin");
    let mut bytes = std::fs::read(&state).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&state, bytes).unwrap();
    let second = run();
    assert!(
        second.contains("is damaged; removed, the next check makes it again") && second.contains(", booted: "),
        "{second}"
    );
    assert!(!state.exists(), "removed");
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walkdir(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
