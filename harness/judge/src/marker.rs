//! The step protocol between the guest (or a board replay) and the
//! harness: the marker lines, their parser and the writer's format. This
//! file is the protocol's one owner on the host; `rootfs/steps.sh`
//! (`harness_mark`) is its one writer.
//!
//! The guest frames every step with marker lines written to `/dev/kmsg`, so
//! the markers land in the kernel log in true order with the printk of the
//! module under test (a marker echoed to the tty could be overtaken by printk,
//! which writes to the UART synchronously). The same markers appear in `dmesg`
//! on a real board, which is what lets one verdict serve both.
//!
//! ```text
//! [    3.10] @@harness 6f1c0e2a9b3d4c5e begin insmod
//! [    3.12] process:insmod
//! [    3.13] @@harness 6f1c0e2a9b3d4c5e out insmod <a line the step's command printed>
//! [    3.13] @@harness 6f1c0e2a9b3d4c5e section mmc_byte .text 0xbf000000
//! [    3.14] @@harness 6f1c0e2a9b3d4c5e end insmod rc=0
//! [    3.50] @@harness 6f1c0e2a9b3d4c5e done
//! ```
//!
//! Every marker carries the run's nonce, a random word the harness gives the
//! guest, and must begin the message: a module's printk, or a program's
//! output, that merely contains marker text cannot open or close a step.
//! `section` says where a section of a module was loaded, so that addresses
//! in reports printed after unload can still be named. `start` begins a board
//! replay, whose kernel log holds everything the board printed before it;
//! `api` and `port`, after it, say what the replay's build gave (the module
//! API and the port list) and `dir` the module folder, for `recheck`.

use std::fmt;

pub const MARKER: &str = "@@harness";

/// The nonce of the saved console logs in harness/tests/fixtures/console
/// (captured before markers had nonces, or rewritten to this one).
pub const FIXTURE_NONCE: &str = "0000000000000000";
/// The longest input device name an `input` marker carries (a driver's
/// names are short; the rest is cut).
const INPUT_NAME_MAX: usize = 80;

/// `input MODULE DEVICE NAME`'s arguments.
fn parse_input(args: &str) -> Option<Marker> {
    let mut w = args.splitn(3, ' ');
    let (module, device) = (w.next()?, w.next()?);
    // A driver's name, bounded: it is the module's text.
    let name: String = w.next().unwrap_or("").trim_end().chars().take(INPUT_NAME_MAX).collect();
    if module.is_empty() || device.is_empty() {
        return None;
    }
    Some(Marker::Input { module: module.to_string(), device: device.to_string(), name })
}

/// `text` with every bare `@@harness VERB` marker given `nonce`: turns the
/// shorthand logs written in tests into this run's protocol.
pub fn with_nonce(text: &str, nonce: &str) -> String {
    text.replace("@@harness ", &format!("@@harness {nonce} "))
}

/// A step as the markers name it, one word: `[unit/]name`. The unit is the
/// module directory the step belongs to when several share a boot
/// (`fault_leak/insmod`); a single unit's steps, and the steps every unit
/// shares (`leaks`), have none. Neither part can hold a `/` (a unit is a
/// directory's last component, a step name is checked by `expect.rs`), so
/// the word splits one way only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct StepId {
    pub unit: Option<String>,
    pub name: String,
}

impl StepId {
    pub fn new(unit: Option<&str>, name: &str) -> StepId {
        StepId { unit: unit.map(str::to_string), name: name.to_string() }
    }

    /// The step word of a marker; `None` unless both parts are non-empty.
    pub fn parse(word: &str) -> Option<StepId> {
        match word.split_once('/') {
            Some((unit, name)) if !unit.is_empty() && !name.is_empty() && !name.contains('/') => {
                Some(StepId::new(Some(unit), name))
            }
            Some(_) => None,
            None if !word.is_empty() => Some(StepId::new(None, word)),
            None => None,
        }
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.unit {
            Some(u) => write!(f, "{u}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A protocol line of this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    Begin {
        step: StepId,
    },
    Out {
        step: StepId,
        text: String,
    },
    End {
        step: StepId,
        rc: i32,
    },
    /// A section of a loaded module and its load address.
    Section {
        module: String,
        name: String,
        address: u64,
    },
    /// An input device the module registered, by its node (`input0`) and
    /// the name its driver gave it, read while the module was loaded.
    Input {
        module: String,
        device: String,
        name: String,
    },
    /// The pid of the insmod or rmmod of a module.
    Pid {
        module: String,
        pid: u32,
    },
    /// A board replay begins; the label names what it loads.
    Start {
        label: String,
    },
    /// The module API the replayed modules were built for (`3.5`, `native`).
    Api {
        api: String,
    },
    /// One entry of the port list the build gave: its id, the places of its
    /// uses (`file:line`, none for the module's name) and the mark's note.
    Port {
        id: String,
        at: Vec<String>,
        note: Option<String>,
    },
    /// The module folder the replay built (an absolute path, the rest of
    /// the line), for `recheck` without `--module`.
    Dir {
        path: String,
    },
    /// A step is over and the guest waits for the harness to say whether
    /// the user gets a shell now (`check --shell-on-failure`).
    Await {
        step: StepId,
    },
    /// The user's shell in the guest (`check --shell`) opened or closed:
    /// while it is open, no deadline but a panic's runs.
    Shell {
        open: bool,
    },
    /// The virtual board changed: when (the kernel clock's microseconds),
    /// which part, its new state.
    Board {
        at_us: u64,
        part: String,
        state: String,
    },
    /// A person at a real board is asked to act (`press K1 … within 20 s`):
    /// the replay shows it at its terminal.
    Prompt {
        text: String,
    },
    /// What the step's `until` found: its line seen, or not, after so many
    /// milliseconds of waiting.
    Until {
        step: StepId,
        seen: bool,
        ms: u32,
    },
    /// How a `stop` step ended the background program it stops.
    Stopped {
        step: StepId,
        how: BackgroundEnd,
    },
    /// A `.gcda` file of the modules' coverage follows (`check --coverage`,
    /// gcov.rs): its size, SHA-256 and path under the guest's debugfs gcov
    /// directory; `gcdata` lines carry it in base64, `gcda-end` closes it.
    Gcda {
        bytes: u64,
        sha256: String,
        path: String,
    },
    GcdaData {
        text: String,
    },
    GcdaEnd {
        sha256: String,
    },
    /// A `.gcda` file the guest did not send: larger than its bound.
    GcdaSkip {
        bytes: u64,
        path: String,
    },
    /// Coverage was asked for and the kernel has no gcov directory in
    /// debugfs (no CONFIG_GCOV_KERNEL, or no debugfs).
    GcovNone,
    /// The snapshot's guest is booted and waits for a run in its inbox
    /// (guest/snapshot.rs saves it now).
    Ready,
    /// Every step is done.
    Done,
}

/// How a background program ended when a step stopped it: by the first
/// signal that ended it, or on its own before any was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackgroundEnd {
    Int,
    Term,
    Kill,
    Exited,
}

impl BackgroundEnd {
    pub fn word(self) -> &'static str {
        match self {
            BackgroundEnd::Int => "int",
            BackgroundEnd::Term => "term",
            BackgroundEnd::Kill => "kill",
            BackgroundEnd::Exited => "exited",
        }
    }

    fn parse(word: &str) -> Option<BackgroundEnd> {
        [BackgroundEnd::Int, BackgroundEnd::Term, BackgroundEnd::Kill, BackgroundEnd::Exited]
            .into_iter()
            .find(|s| s.word() == word)
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Marker::Begin { step } => write!(f, "begin {step}"),
            Marker::Out { step, text } => write!(f, "out {step} {text}"),
            Marker::End { step, rc } => write!(f, "end {step} rc={rc}"),
            Marker::Section { module, name, address } => write!(f, "section {module} {name} {address:#x}"),
            Marker::Input { module, device, name } => write!(f, "input {module} {device} {name}"),
            Marker::Pid { module, pid } => write!(f, "pid {module} {pid}"),
            Marker::Start { label } => write!(f, "start {label}"),
            Marker::Api { api } => write!(f, "api {api}"),
            Marker::Port { id, at, note } => {
                write!(f, "port {id} {}", if at.is_empty() { "-".to_string() } else { at.join(",") })?;
                match note {
                    Some(n) => write!(f, " {n}"),
                    None => Ok(()),
                }
            }
            Marker::Dir { path } => write!(f, "dir {path}"),
            Marker::Await { step } => write!(f, "await {step}"),
            Marker::Shell { open } => f.write_str(if *open { "shell open" } else { "shell closed" }),
            Marker::Board { at_us, part, state } => {
                write!(f, "board {}.{:06} {part} {state}", at_us / 1_000_000, at_us % 1_000_000)
            }
            Marker::Prompt { text } => write!(f, "prompt {text}"),
            Marker::Until { step, seen, ms } => {
                write!(f, "until {step} {} {ms}", if *seen { "seen" } else { "missed" })
            }
            Marker::Stopped { step, how } => write!(f, "stopped {step} {}", how.word()),
            Marker::Gcda { bytes, sha256, path } => write!(f, "gcda {bytes} {sha256} {path}"),
            Marker::GcdaData { text } => write!(f, "gcdata {text}"),
            Marker::GcdaEnd { sha256 } => write!(f, "gcda-end {sha256}"),
            Marker::GcdaSkip { bytes, path } => write!(f, "gcda-skip {bytes} {path}"),
            Marker::GcovNone => f.write_str("gcov none"),
            Marker::Ready => f.write_str("ready"),
            Marker::Done => f.write_str("done"),
        }
    }
}

/// The line the guest writes for `marker` in the run `nonce` (what
/// `harness_mark` in steps.sh produces).
pub fn marker_line(nonce: &str, marker: &Marker) -> String {
    format!("{MARKER} {nonce} {marker}")
}

/// A marker of any run: its nonce and what it says. The message must begin
/// with the marker (after the printk timestamp and caller prefix).
pub fn parse_any(message: &str) -> Option<(&str, Marker)> {
    let rest = message.strip_prefix(MARKER)?.strip_prefix(' ')?;
    let (nonce, rest) = rest.split_once(' ')?;
    if nonce.is_empty() || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let rest = rest.trim_end_matches(['\r', '\n']);
    let (verb, args) = rest.split_once(' ').unwrap_or((rest, ""));
    let word = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    let marker = match verb {
        "begin" if word(args.trim_end()) => Marker::Begin { step: StepId::parse(args.trim_end())? },
        "out" => {
            let (step, text) = args.split_once(' ').unwrap_or((args, ""));
            if !word(step) {
                return None;
            }
            Marker::Out { step: StepId::parse(step)?, text: text.to_string() }
        }
        "end" => {
            let (step, rc) = args.split_once(" rc=")?;
            if !word(step) {
                return None;
            }
            Marker::End { step: StepId::parse(step)?, rc: rc.trim().parse().ok()? }
        }
        "section" => {
            let mut w = args.split_whitespace();
            let (module, name, addr) = (w.next()?, w.next()?, w.next()?);
            let address = u64::from_str_radix(addr.trim_start_matches("0x"), 16).ok()?;
            Marker::Section { module: module.to_string(), name: name.to_string(), address }
        }
        "input" => parse_input(args)?,
        "pid" => {
            let (module, pid) = args.trim().split_once(' ')?;
            Marker::Pid { module: module.to_string(), pid: pid.trim().parse().ok()? }
        }
        "start" => Marker::Start { label: args.trim().to_string() },
        "api" if word(args.trim()) => Marker::Api { api: args.trim().to_string() },
        "port" => {
            let mut w = args.splitn(3, ' ');
            let (id, at) = (w.next().filter(|s| word(s))?, w.next().filter(|s| word(s))?);
            let note = w.next().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
            let at = if at == "-" { Vec::new() } else { at.split(',').map(str::to_string).collect() };
            Marker::Port { id: id.to_string(), at, note }
        }
        "dir" if args.starts_with('/') => Marker::Dir { path: args.to_string() },
        "await" if word(args.trim_end()) => Marker::Await { step: StepId::parse(args.trim_end())? },
        "shell" if matches!(args.trim(), "open" | "closed") => Marker::Shell { open: args.trim() == "open" },
        "board" => {
            let mut w = args.trim().splitn(3, ' ');
            let (at, part, state) = (w.next()?.parse::<f64>().ok()?, w.next().filter(|s| word(s))?, w.next()?.trim());
            if !(0.0..1e9).contains(&at) {
                return None;
            }
            Marker::Board { at_us: (at * 1e6).round() as u64, part: part.to_string(), state: state.to_string() }
        }
        "prompt" if !args.trim().is_empty() => Marker::Prompt { text: args.trim().to_string() },
        "until" => {
            let mut w = args.split_whitespace();
            let (step, seen, ms) = (StepId::parse(w.next()?)?, w.next()?, w.next()?.parse().ok()?);
            let seen = match seen {
                "seen" => true,
                "missed" => false,
                _ => return None,
            };
            (w.next().is_none()).then_some(Marker::Until { step, seen, ms })?
        }
        "stopped" => {
            let mut w = args.split_whitespace();
            let (step, how) = (StepId::parse(w.next()?)?, BackgroundEnd::parse(w.next()?)?);
            (w.next().is_none()).then_some(Marker::Stopped { step, how })?
        }
        "done" if args.trim().is_empty() => Marker::Done,
        "ready" if args.trim().is_empty() => Marker::Ready,
        _ => parse_gcov(verb, args)?,
    };
    Some((nonce, marker))
}

/// The coverage transfer's markers (judge/src/gcov.rs); any other verb is
/// no marker.
fn parse_gcov(verb: &str, args: &str) -> Option<Marker> {
    let word = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    Some(match verb {
        "gcda" => {
            let mut w = args.splitn(3, ' ');
            let (bytes, sha256, path) = (w.next()?.parse().ok()?, w.next().filter(|s| word(s))?, w.next()?);
            (path.starts_with('/')).then(|| Marker::Gcda { bytes, sha256: sha256.into(), path: path.into() })?
        }
        "gcdata" if word(args.trim_end()) => Marker::GcdaData { text: args.trim_end().to_string() },
        "gcda-end" if word(args.trim_end()) => Marker::GcdaEnd { sha256: args.trim_end().to_string() },
        "gcda-skip" => {
            let (bytes, path) = args.split_once(' ')?;
            Marker::GcdaSkip { bytes: bytes.parse().ok()?, path: path.to_string() }
        }
        "gcov" if args.trim() == "none" => Marker::GcovNone,
        _ => return None,
    })
}

/// A marker of the run `nonce`; anything else (another run's marker, a
/// forged one) is `None`, an ordinary line.
pub fn parse_marker(message: &str, nonce: &str) -> Option<Marker> {
    parse_any(message).filter(|(n, _)| *n == nonce).map(|(_, m)| m)
}

/// Splits the `[ seconds.micros]` printk timestamp, and the caller prefix
/// (`[   T70]`, `[    C1]`, CONFIG_PRINTK_CALLER) after it, off a console line.
pub fn split_timestamp(line: &str) -> (Option<f64>, &str) {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix('[') {
        if let Some((stamp, msg)) = rest.split_once(']') {
            if let Ok(secs) = stamp.trim().parse::<f64>() {
                return (Some(secs), strip_caller(msg.strip_prefix(' ').unwrap_or(msg)));
            }
        }
    }
    (None, line)
}

fn strip_caller(msg: &str) -> &str {
    let Some(rest) = msg.strip_prefix('[') else { return msg };
    let Some((who, after)) = rest.split_once(']') else { return msg };
    let who = who.trim();
    let caller =
        who.len() > 1 && matches!(who.as_bytes()[0], b'T' | b'C') && who[1..].bytes().all(|b| b.is_ascii_digit());
    if caller {
        after.strip_prefix(' ').unwrap_or(after)
    } else {
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one marker the step library does not write itself, the virtual
    /// board's watchdog reset: steps.sh hands the model the prefix
    /// (`harness_mark_prefix`'s `_mark` and `board`), and the model's
    /// reset_board (compat35/board/tiny4412_board.c) adds the time and the
    /// change. What it prints is this run's board change.
    #[test]
    fn the_models_reset_marker_is_a_board_change_of_the_run() {
        const MODEL: &str = include_str!("../../../compat35/board/tiny4412_board.c");
        const STEPS: &str = include_str!("../../../rootfs/steps.sh");
        assert!(STEPS.contains(&format!("_mark=\"{MARKER} $HARNESS_NONCE\"")), "harness_mark_prefix changed");
        assert!(STEPS.contains("\"report=\\\"$_mark board\\\"\""), "harness_board_load's prefix changed");
        let format = MODEL
            .lines()
            .find_map(|l| l.trim().strip_prefix("pr_emerg(\"%s ")?.split_once("\\n\", report").map(|(f, _)| f))
            .expect("reset_board's marker in the model");
        let nonce = "00000000deadbeef";
        let line = format!("{MARKER} {nonce} board {}", format.replace("%llu", "12").replace("%06u", "000345"));
        let reset = Marker::Board { at_us: 12_000_345, part: "watchdog".into(), state: "reset".into() };
        assert_eq!(parse_marker(&line, nonce), Some(reset), "{line}");
    }

    const N: &str = "0123456789abcdef";

    #[test]
    fn markers_parse_and_round_trip() {
        let all = [
            Marker::Begin { step: StepId::new(None, "insmod") },
            Marker::Begin { step: StepId::new(Some("fault_leak"), "insmod") },
            Marker::Out { step: StepId::new(None, "insmod"), text: "insmod: can't insert 'x.ko': No such file".into() },
            Marker::End { step: StepId::new(Some("lesson-1.x"), "rmmod:hello"), rc: 1 },
            Marker::Section { module: "mmc_byte".into(), name: ".init.text".into(), address: 0xbf004000 },
            Marker::Pid { module: "mmc_byte".into(), pid: 70 },
            Marker::Input { module: "keys_input".into(), device: "input0".into(), name: "tiny4412 keys".into() },
            Marker::Start { label: "mmc_byte".into() },
            Marker::Api { api: "3.5".into() },
            Marker::Port { id: "timer".into(), at: vec!["hello.c:17".into(), "hello.c:18".into()], note: None },
            Marker::Port {
                id: "module-named-module".into(),
                at: vec![],
                note: Some("module.ko is built as module35.ko".into()),
            },
            Marker::Board { at_us: 12_345_678, part: "LED1".into(), state: "on".into() },
            Marker::Board { at_us: 3_500_000, part: "XEINT26".into(), state: "storm: masked".into() },
            Marker::Prompt { text: "press K1 and hold it within 20 s".into() },
            Marker::Dir { path: "/home/me/lessons/led one".into() },
            Marker::Until { step: StepId::new(Some("key"), "press"), seen: true, ms: 140 },
            Marker::Until { step: StepId::new(None, "press"), seen: false, ms: 2010 },
            Marker::Stopped { step: StepId::new(None, "collect"), how: BackgroundEnd::Int },
            Marker::Stopped { step: StepId::new(None, "collect"), how: BackgroundEnd::Kill },
            Marker::Gcda { bytes: 1024, sha256: "ab01".into(), path: "/tmp/run dir/module/covmisc.gcda".into() },
            Marker::GcdaData { text: "YWRjAAAA+/8=".into() },
            Marker::GcdaEnd { sha256: "ab01".into() },
            Marker::GcdaSkip { bytes: 9_000_000, path: "/x/big.gcda".into() },
            Marker::GcovNone,
            Marker::Done,
        ];
        for m in all {
            let line = marker_line(N, &m);
            assert_eq!(parse_marker(&line, N), Some(m.clone()), "{line}");
            assert_eq!(parse_marker(&format!("{line}\r"), N), Some(m), "{line}");
        }
        assert_eq!(parse_marker(&format!("{MARKER} {N} end x rc=abc"), N), None);
        assert_eq!(parse_marker(&format!("{MARKER} {N} begin"), N), None);
        assert_eq!(parse_marker(&format!("{MARKER} {N} until press maybe 10"), N), None);
        assert_eq!(parse_marker(&format!("{MARKER} {N} until press seen 10 more"), N), None);
        assert_eq!(parse_marker(&format!("{MARKER} {N} stopped app hup"), N), None);
        assert_eq!(parse_marker("process:insmod", N), None);
        assert_eq!(parse_marker(&format!("{MARKER} {N} gcda 12 ab relative.gcda"), N), None);
        assert_eq!(parse_marker(&format!("{MARKER} {N} gcdata two words"), N), None);
        for bad in ["/insmod", "a/", "a/b/c", "a b/insmod"] {
            assert_eq!(parse_marker(&format!("{MARKER} {N} begin {bad}"), N), None, "{bad}");
            assert_eq!(parse_marker(&format!("{MARKER} {N} end {bad} rc=0"), N), None, "{bad}");
        }
    }

    #[test]
    fn a_step_word_carries_its_unit() {
        let id = StepId::parse("lesson_irq/insmod:hello").unwrap();
        assert_eq!((id.unit.as_deref(), id.name.as_str()), (Some("lesson_irq"), "insmod:hello"));
        assert_eq!(id.to_string(), "lesson_irq/insmod:hello");
        assert_eq!(StepId::parse("leaks"), Some(StepId::new(None, "leaks")));
    }

    #[test]
    fn forged_markers_are_ordinary_lines() {
        // Without the nonce, with another nonce, or not at the start of the
        // message: never a marker of this run.
        for forged in [
            "@@harness end insmod rc=0".to_string(),
            format!("{MARKER} feedfeedfeedfeed end insmod rc=0"),
            format!("evil: {MARKER} {N} end insmod rc=0"),
            format!(" {MARKER} {N} end insmod rc=0"),
        ] {
            assert_eq!(parse_marker(&forged, N), None, "{forged}");
        }
    }

    #[test]
    fn timestamps_and_caller_prefixes_split() {
        assert_eq!(split_timestamp("[    3.250000] hello"), (Some(3.25), "hello"));
        assert_eq!(split_timestamp("[12345.000001] a] b"), (Some(12345.000001), "a] b"));
        assert_eq!(split_timestamp("[    1.100000][   T70] Unable to handle"), (Some(1.1), "Unable to handle"));
        assert_eq!(split_timestamp("[    1.100000][    C1] x"), (Some(1.1), "x"));
        assert_eq!(split_timestamp("[    1.1] [ INFO: x ]"), (Some(1.1), "[ INFO: x ]"));
        assert_eq!(split_timestamp("[ok] not a stamp"), (None, "[ok] not a stamp"));
        assert_eq!(split_timestamp("plain"), (None, "plain"));
    }
}
