//! The step protocol between the guest's `/init` (or a board replay) and the
//! harness, and the transcript it produces.
//!
//! `/init` frames every step with marker lines written to `/dev/kmsg`, so the
//! markers land in the kernel log in true order with the printk of the module
//! under test (a marker echoed to the tty could be overtaken by printk, which
//! writes to the UART synchronously). The same markers appear in `dmesg` on a
//! real board, which is what lets one verdict serve both.
//!
//! ```text
//! [    3.10] @@harness begin insmod
//! [    3.12] process:insmod
//! [    3.13] @@harness out insmod <a line the step's command printed>
//! [    3.13] @@harness section .text 0xbf000000
//! [    3.14] @@harness end insmod rc=0
//! [    3.50] @@harness done
//! ```
//!
//! `section` says where a section of the module under test was loaded, so
//! that addresses in reports printed after unload can still be named.

use std::fmt;

pub const MARKER: &str = "@@harness ";

/// A protocol line, recognised anywhere in a console line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    Begin { step: String },
    Out { step: String, text: String },
    End { step: String, rc: i32 },
    /// A section of the module under test and its load address.
    Section { name: String, address: u64 },
    /// `/init` finished every step and is about to power off.
    Done,
}

pub fn parse_marker(line: &str) -> Option<Marker> {
    let rest = &line[line.find(MARKER)? + MARKER.len()..];
    let rest = rest.trim_end();
    let (verb, args) = rest.split_once(' ').unwrap_or((rest, ""));
    match verb {
        "begin" if !args.is_empty() => Some(Marker::Begin { step: args.to_string() }),
        "out" => {
            let (step, text) = args.split_once(' ').unwrap_or((args, ""));
            Some(Marker::Out { step: step.to_string(), text: text.to_string() })
        }
        "end" => {
            let (step, rc) = args.split_once(" rc=")?;
            Some(Marker::End { step: step.to_string(), rc: rc.trim().parse().ok()? })
        }
        "section" => {
            let (name, addr) = args.split_once(' ')?;
            let address = u64::from_str_radix(addr.trim().trim_start_matches("0x"), 16).ok()?;
            Some(Marker::Section { name: name.to_string(), address })
        }
        "done" => Some(Marker::Done),
        _ => None,
    }
}

/// The line a board replay writes to `/dev/kmsg` just before its steps:
/// `@@harness replay NONCE MODULE`. On a board that has been up for days,
/// `dmesg` holds earlier boots' worth of messages and earlier replays; the
/// replay's own lines are those after its start line (see replay.rs).
pub fn replay_start_line(nonce: &str, module: &str) -> String {
    format!("{MARKER}replay {nonce} {module}")
}

/// The line `/init` writes when every step is done; a board replay writes
/// it too, after `harness_run_steps`.
pub fn done_line() -> String {
    format!("{MARKER}done")
}

/// The nonce and module name (if written) of a replay's start line.
pub fn parse_replay_start(line: &str) -> Option<(String, Option<String>)> {
    let rest = &line[line.find(MARKER)? + MARKER.len()..];
    let mut words = rest.strip_prefix("replay ")?.split_whitespace();
    let nonce = words.next()?.to_string();
    Some((nonce, words.next().map(str::to_string)))
}

/// Splits the `[ seconds.micros]` printk timestamp off a console line.
pub fn split_timestamp(line: &str) -> (Option<f64>, &str) {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix('[') {
        if let Some((stamp, msg)) = rest.split_once(']') {
            if let Ok(secs) = stamp.trim().parse::<f64>() {
                return (Some(secs), msg.strip_prefix(' ').unwrap_or(msg));
            }
        }
    }
    (None, line)
}

/// One console line, as the verdict sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleLine {
    /// 1-based line number in the console log, for pointing the user at it.
    pub number: usize,
    pub raw: String,
    /// The message with the printk timestamp removed; for a step's output
    /// (an `out` marker), the output line itself.
    pub message: String,
    pub timestamp: Option<f64>,
    /// Index into [`Transcript::steps`] of the step running when it was printed.
    pub step: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub name: String,
    /// `None` if the step began but never ended (a hang or a crash).
    pub rc: Option<i32>,
    /// What the step printed, kernel messages and the command's own output
    /// in order: the window the expectations are matched against.
    pub lines: Vec<String>,
    pub started_at: Option<f64>,
    pub ended_at: Option<f64>,
}

impl StepRecord {
    pub fn duration(&self) -> Option<f64> {
        Some(self.ended_at? - self.started_at?)
    }
}

impl fmt::Display for StepRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rc {
            Some(rc) => write!(f, "{} (exit {rc})", self.name),
            None => write!(f, "{} (never finished)", self.name),
        }
    }
}

/// The whole console, cut into steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    pub lines: Vec<ConsoleLine>,
    pub steps: Vec<StepRecord>,
    /// `/init` reached its final marker.
    pub done: bool,
    /// Load addresses of the module's sections, from `section` markers.
    pub sections: Vec<(String, u64)>,
}

impl Transcript {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a transcript from a whole saved log.
    pub fn from_log(text: &str) -> Self {
        let mut t = Self::new();
        for line in text.lines() {
            t.push(line);
        }
        t
    }

    /// The step currently running, if any.
    pub fn current_step(&self) -> Option<&StepRecord> {
        self.steps.last().filter(|s| s.rc.is_none())
    }

    /// Adds one console line and returns the marker it carried, if any.
    pub fn push(&mut self, raw: &str) -> Option<Marker> {
        let raw = raw.trim_end_matches(['\r', '\n']);
        let (timestamp, message) = split_timestamp(raw);
        let marker = parse_marker(message);
        let open = self.steps.iter().rposition(|s| s.rc.is_none());
        let mut step = open;
        let mut message = message.to_string();
        match &marker {
            Some(Marker::Begin { step: name }) => {
                self.steps.push(StepRecord {
                    name: name.clone(),
                    rc: None,
                    lines: Vec::new(),
                    started_at: timestamp,
                    ended_at: None,
                });
                step = Some(self.steps.len() - 1);
            }
            Some(Marker::Out { step: name, text }) => {
                if let Some(i) = self.steps.iter().rposition(|s| &s.name == name) {
                    self.steps[i].lines.push(text.clone());
                    step = Some(i);
                }
                message = text.clone();
            }
            Some(Marker::Section { name, address }) => self.sections.push((name.clone(), *address)),
            Some(Marker::End { step: name, rc }) => {
                if let Some(s) = self.steps.iter_mut().rev().find(|s| &s.name == name && s.rc.is_none()) {
                    s.rc = Some(*rc);
                    s.ended_at = timestamp;
                }
            }
            Some(Marker::Done) => self.done = true,
            None => {
                if let Some(i) = open {
                    self.steps[i].lines.push(message.clone());
                }
            }
        }
        self.lines.push(ConsoleLine {
            number: self.lines.len() + 1,
            raw: raw.to_string(),
            message,
            timestamp,
            step,
        });
        marker
    }

    pub fn step(&self, name: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The last `n` console lines, for showing what the guest did last.
    pub fn tail(&self, n: usize) -> &[ConsoleLine] {
        &self.lines[self.lines.len().saturating_sub(n)..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_parse() {
        assert_eq!(parse_marker("@@harness begin insmod"), Some(Marker::Begin { step: "insmod".into() }));
        assert_eq!(parse_marker("@@harness end rmmod rc=1"), Some(Marker::End { step: "rmmod".into(), rc: 1 }));
        assert_eq!(
            parse_marker("@@harness out insmod insmod: can't insert 'x.ko': No such file"),
            Some(Marker::Out { step: "insmod".into(), text: "insmod: can't insert 'x.ko': No such file".into() })
        );
        assert_eq!(parse_marker("@@harness done\r"), Some(Marker::Done));
        assert_eq!(
            parse_marker("@@harness section .init.text 0xbf004000"),
            Some(Marker::Section { name: ".init.text".into(), address: 0xbf004000 })
        );
        assert_eq!(parse_marker("[T12] @@harness done"), Some(Marker::Done));
        assert_eq!(parse_marker("@@harness end x rc=abc"), None);
        assert_eq!(parse_marker("@@harness begin"), None);
        assert_eq!(parse_marker("process:insmod"), None);
    }

    #[test]
    fn replay_start_lines_round_trip() {
        let line = replay_start_line("1a2b3c4d", "mmc_byte");
        assert_eq!(line, "@@harness replay 1a2b3c4d mmc_byte");
        let stamped = format!("[   12.500000] {line}\r");
        assert_eq!(parse_replay_start(&stamped), Some(("1a2b3c4d".into(), Some("mmc_byte".into()))));
        assert_eq!(parse_replay_start("@@harness replay abc"), Some(("abc".into(), None)));
        assert_eq!(parse_replay_start("@@harness replay "), None);
        assert_eq!(parse_replay_start("@@harness begin insmod"), None);
        assert_eq!(parse_marker(&line), None, "not a step marker: a plain line to the transcript");
        assert_eq!(parse_marker(&done_line()), Some(Marker::Done));
    }

    #[test]
    fn timestamps_split() {
        assert_eq!(split_timestamp("[    3.141592] hello"), (Some(3.141592), "hello"));
        assert_eq!(split_timestamp("[12345.000001] a] b"), (Some(12345.000001), "a] b"));
        assert_eq!(split_timestamp("[ok] not a stamp"), (None, "[ok] not a stamp"));
        assert_eq!(split_timestamp("plain"), (None, "plain"));
    }

    #[test]
    fn steps_collect_their_window_in_order() {
        let t = Transcript::from_log(
            "[    1.0] booting\n\
             [    2.0] @@harness begin insmod\n\
             [    2.1] process:insmod\n\
             [    2.2] @@harness out insmod some output\n\
             [    2.3] @@harness end insmod rc=0\n\
             [    2.4] between steps\n\
             [    2.5] @@harness begin rmmod\n\
             [    2.6] mmc exit!\n\
             [    2.7] @@harness end rmmod rc=0\n\
             [    2.8] @@harness done\n",
        );
        assert!(t.done);
        assert_eq!(t.steps.len(), 2);
        let insmod = t.step("insmod").unwrap();
        assert_eq!(insmod.rc, Some(0));
        assert_eq!(insmod.lines, vec!["process:insmod", "some output"]);
        assert!((insmod.duration().unwrap() - 0.3).abs() < 1e-9);
        assert_eq!(t.step("rmmod").unwrap().lines, vec!["mmc exit!"]);
        assert_eq!(t.lines[2].step, Some(0));
        assert_eq!(t.lines[5].step, None, "between steps belongs to none");
        assert_eq!(t.lines[7].step, Some(1));
        assert_eq!(t.lines[7].number, 8);
        assert_eq!(t.lines[3].message, "some output", "step output is the message");
        assert_eq!(t.lines[3].step, Some(0));
    }

    #[test]
    fn sections_are_recorded() {
        let t = Transcript::from_log("@@harness begin insmod
@@harness section .text 0xbf000000
@@harness end insmod rc=0
");
        assert_eq!(t.sections, vec![(".text".to_string(), 0xbf000000)]);
        assert!(t.step("insmod").unwrap().lines.is_empty(), "markers are not step output");
    }

    #[test]
    fn an_unfinished_step_stays_open() {
        let t = Transcript::from_log("@@harness begin insmod\nUnable to handle kernel NULL pointer\n");
        assert!(!t.done);
        let s = t.current_step().unwrap();
        assert_eq!(s.rc, None);
        assert_eq!(s.to_string(), "insmod (never finished)");
        assert_eq!(t.lines[1].step, Some(0));
    }
}
