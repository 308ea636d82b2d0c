//! The transcript: the console's lines as steps, each with its kernel
//! lines, its command's output and its exit code, from the markers that
//! `marker.rs` parses; and the steps' names.

use super::marker::{parse_marker, split_timestamp, BackgroundEnd, Marker, StepId};
use std::fmt;

/// What a step does, from its name: the steps the guest runs by itself, or
/// a command step of the expectations file. With several modules, a loading
/// step is named `insmod:<module>` (likewise rmmod, gone), and is still an
/// insmod step. A builtin step taken again in the scenario carries its
/// round, `#2`, after its kind's word (`insmod#2`, `rmmod#2:hello`): the
/// second load. Each new kind of step is a variant here, matched once by
/// the plan, the judge and the replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Insmod,
    Rmmod,
    Gone,
    Leaks,
    /// What modules register, taken before a unit's first insmod and after
    /// its last rmmod (`census`, `census#2`; judge/census.rs compares them).
    Census,
    /// A step the expectations file names, with a `run` command.
    Command,
}

impl StepKind {
    /// The kinds that exist without being written in an expectations file,
    /// with the word that names them.
    pub const BUILTIN: [(StepKind, &'static str); 5] = [
        (StepKind::Insmod, "insmod"),
        (StepKind::Rmmod, "rmmod"),
        (StepKind::Gone, "gone"),
        (StepKind::Leaks, "leaks"),
        (StepKind::Census, "census"),
    ];

    /// The kind of a step name: `insmod:hello` and `insmod#2` are insmod
    /// steps, `app` a command step.
    pub fn of(name: &str) -> StepKind {
        let word = name.split([':', '#']).next().unwrap_or(name);
        let builtin = Self::BUILTIN.iter().find(|(_, w)| *w == word).map(|(k, _)| *k);
        match builtin {
            // A round belongs to a builtin word only: `app#2` is no step.
            Some(k) if name[word.len()..].starts_with(':') || round(name).is_some() => k,
            Some(k) if name.len() == word.len() => k,
            _ => StepKind::Command,
        }
    }

    /// The word that names a builtin kind (`command` for a command step,
    /// which has a name of its own).
    pub fn word(self) -> &'static str {
        Self::BUILTIN.iter().find(|(k, _)| *k == self).map_or("command", |(_, w)| w)
    }

    pub fn is_builtin(self) -> bool {
        self != StepKind::Command
    }

    /// The builtin kinds' words, for messages: `insmod, rmmod, gone, leaks, census`.
    pub fn builtin_words() -> String {
        Self::BUILTIN.map(|(_, w)| w).join(", ")
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// The step name for `kind` on `module`, when `several` modules are loaded.
pub fn step_name(kind: StepKind, module: &str, several: bool) -> String {
    if several {
        format!("{kind}:{module}")
    } else {
        kind.to_string()
    }
}

/// A builtin step's name in the scenario's second round (`insmod` →
/// `insmod#2`, `rmmod:a` → `rmmod#2:a`).
pub fn second(name: &str) -> String {
    match name.split_once(':') {
        Some((kind, module)) => format!("{kind}#2:{module}"),
        None => format!("{name}#2"),
    }
}

/// The round a builtin step's name carries (`insmod#2:a` → 2); `None` for
/// the first, which carries none.
pub fn round(name: &str) -> Option<u32> {
    let word = name.split_once(':').map_or(name, |(k, _)| k);
    word.split_once('#').and_then(|(_, n)| n.parse().ok()).filter(|n| *n > 1)
}

/// The name of the step in its first round (`insmod#2:a` → `insmod:a`).
pub fn first_round(name: &str) -> String {
    match (round(name), name.split_once('#')) {
        (Some(_), Some((kind, rest))) => format!("{kind}{}", rest.find(':').map_or("", |i| &rest[i..])),
        _ => name.to_string(),
    }
}

/// Where a section of a module was loaded, as a `section` marker said, in
/// the unit whose step said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSection {
    pub unit: Option<String>,
    pub module: String,
    pub section: String,
    pub address: u64,
}

/// An input device a module registered, as an `input` marker said, in the
/// unit whose step said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputName {
    pub unit: Option<String>,
    pub module: String,
    pub device: String,
    pub name: String,
}

/// The pid of an insmod or rmmod of a module, as a `pid` marker said, in
/// the unit whose step said it: two units may each load a `hello`, and a
/// leak allocated by one's insmod is that unit's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPid {
    pub unit: Option<String>,
    pub module: String,
    pub pid: u32,
}

/// How many bytes of console text a transcript keeps. A module that floods
/// the console must not take the harness's memory with it: past this, only
/// markers are kept (the console log on disk has everything).
pub const KEEP_BYTES: usize = 16 << 20;

/// What a console line is to the transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LineKind {
    /// A kernel message (or anything else the console showed).
    Kernel,
    /// A line the running step's command printed (an `out` marker's text).
    Output,
    /// A protocol marker.
    Marker,
}

/// One console line, as the verdict sees it. Stored once: steps refer to
/// lines by index.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleLine {
    /// 1-based line number in the console log, for pointing the user at it.
    pub number: usize,
    /// The message with the printk timestamp removed; for a step's output,
    /// the output line itself.
    pub message: String,
    pub timestamp: Option<f64>,
    /// Index into [`Transcript::steps`] of the step running when it was printed.
    pub step: Option<usize>,
    pub kind: LineKind,
}

impl ConsoleLine {
    /// The line much as the console showed it, for excerpts.
    pub fn shown(&self) -> String {
        match (self.timestamp, self.kind) {
            (_, LineKind::Output) => format!("(output) {}", self.message),
            (Some(t), _) => format!("[{t:>12.6}] {}", self.message),
            (None, _) => self.message.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// The unit the step belongs to (see [`StepId`]); `None` for a single
    /// unit's steps and for the steps all units share.
    pub unit: Option<String>,
    /// The step's own name, as its unit's expectations name it.
    pub name: String,
    /// `None` if the step began but never ended (a hang or a crash).
    pub rc: Option<i32>,
    /// Indices into [`Transcript::lines`] of the kernel messages printed
    /// while the step ran.
    pub kernel: Vec<usize>,
    /// Indices of the lines the step's command printed.
    pub output: Vec<usize>,
    pub started_at: Option<f64>,
    pub ended_at: Option<f64>,
    /// What the step's `until` found (its line seen; the milliseconds it
    /// waited), when it had one and got to wait.
    pub until: Option<(bool, u32)>,
    /// How the background program this step stopped ended.
    pub stopped: Option<BackgroundEnd>,
}

impl StepRecord {
    pub fn kind(&self) -> StepKind {
        StepKind::of(&self.name)
    }

    /// Whether this is the step the protocol names `id`.
    pub fn is(&self, id: &StepId) -> bool {
        self.name == id.name && self.unit == id.unit
    }

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

/// The whole console of one run, cut into steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    nonce: String,
    /// Lines before the run's `start` marker are not the run's (a board's
    /// log holds its whole uptime): ignored until it comes, when set.
    awaiting_start: bool,
    pub lines: Vec<ConsoleLine>,
    pub steps: Vec<StepRecord>,
    /// Every step ran and the guest said so.
    pub done: bool,
    /// Load addresses of module sections, from `section` markers, each
    /// with the unit of the step that reported it.
    pub sections: Vec<LoadedSection>,
    /// The input devices each unit's modules registered, by node and name,
    /// from `input` markers (the census names what a unit left by these).
    pub inputs: Vec<InputName>,
    /// The pids of the insmod and rmmod of each module, likewise: a unit's
    /// view keeps its own sections and every pid with its unit, so that two
    /// units may load modules of the same name (every lesson's `hello`) in
    /// one boot.
    pub pids: Vec<TaskPid>,
    /// What a replay said of its build: the module API, and the port list
    /// as (id, places, note), from `api` and `port` markers.
    pub api: Option<String>,
    pub ports: Vec<(String, Vec<String>, Option<String>)>,
    /// The virtual board's changes, from `board` markers: the step open
    /// when each was reported (an index into `steps`), when, part, state.
    pub board: Vec<(Option<usize>, f64, String, String)>,
    /// The coverage files the guest sent (`check --coverage`, gcov.rs).
    pub gcov: crate::gcov::Transfers,
    /// Bytes of message text kept so far.
    kept: usize,
    /// Lines not kept because of [`KEEP_BYTES`] (counted, not stored).
    pub dropped: usize,
    /// Console lines seen, kept or not: the next line's number.
    seen: usize,
    /// The user's shell (`check --shell`) is open: a line without a printk
    /// timestamp is the shell's, user space's, not the kernel's.
    at_shell: bool,
}

impl Transcript {
    /// A transcript of the run whose markers carry `nonce`.
    pub fn new(nonce: &str) -> Self {
        Transcript { nonce: nonce.to_string(), ..Self::default() }
    }

    /// A transcript that begins at the run's `start` marker.
    pub fn after_start(nonce: &str) -> Self {
        Transcript { awaiting_start: true, ..Self::new(nonce) }
    }

    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// How many lines of the run it has seen, kept or not (none before the
    /// start marker of a transcript that awaits it).
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// Whether the run's lines have begun (always, unless it awaits its
    /// start marker).
    pub fn started(&self) -> bool {
        !self.awaiting_start
    }

    /// Builds a transcript from a whole saved log.
    pub fn from_log(text: &str, nonce: &str) -> Self {
        let mut t = Self::new(nonce);
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
        let marker = parse_marker(message, &self.nonce);
        if self.awaiting_start {
            if matches!(marker, Some(Marker::Start { .. })) {
                self.awaiting_start = false;
            }
            return marker;
        }
        // Coverage data: assembled apart, not kept as lines (a file's
        // base64 would fill the console's view of the run).
        if marker.as_ref().is_some_and(|m| self.gcov.on(m)) {
            self.seen += 1;
            return marker;
        }
        let open = self.steps.iter().rposition(|s| s.rc.is_none());
        let index = self.lines.len();
        let mut step = open;
        let mut kind = LineKind::Kernel;
        let mut message = message;
        match &marker {
            Some(Marker::Begin { step: id }) => {
                step = Some(self.begin(id, timestamp));
                kind = LineKind::Marker;
            }
            Some(Marker::Out { step: id, .. }) => {
                step = self.steps.iter().rposition(|s| s.is(id) && s.rc.is_none()).or(open);
                kind = LineKind::Output;
                // The text after `out STEP `, a slice of the line itself.
                message = message.splitn(5, ' ').nth(4).unwrap_or("");
            }
            Some(
                m @ (Marker::Section { .. }
                | Marker::Input { .. }
                | Marker::Pid { .. }
                | Marker::Api { .. }
                | Marker::Port { .. }
                | Marker::Board { .. }),
            ) => {
                self.record(m, open);
                kind = LineKind::Marker;
            }
            Some(Marker::End { step: id, rc }) => {
                self.end(id, *rc, timestamp);
                kind = LineKind::Marker;
            }
            Some(m @ (Marker::Until { .. } | Marker::Stopped { .. })) => {
                self.step_note(m);
                kind = LineKind::Marker;
            }
            Some(Marker::Done) => {
                self.done = true;
                kind = LineKind::Marker;
            }
            Some(Marker::Shell { open }) => {
                self.at_shell = *open;
                kind = LineKind::Marker;
            }
            // start, await, prompt, dir, and the coverage's notes.
            Some(_) => kind = LineKind::Marker,
            None if self.at_shell && timestamp.is_none() => kind = LineKind::Output,
            None => {}
        }
        self.keep_line(message, timestamp, step, kind, index);
        marker
    }

    /// Keeps a line as the step's, within the transcript's bound.
    fn keep_line(&mut self, message: &str, timestamp: Option<f64>, step: Option<usize>, kind: LineKind, index: usize) {
        self.seen += 1;
        if kind != LineKind::Marker && self.kept + message.len() > KEEP_BYTES {
            // Past the bound only markers are kept: a flood costs a counter.
            self.dropped += 1;
            return;
        }
        self.kept += message.len();
        if let Some(i) = step {
            match kind {
                LineKind::Kernel => self.steps[i].kernel.push(index),
                LineKind::Output => self.steps[i].output.push(index),
                _ => {}
            }
        }
        self.lines.push(ConsoleLine { number: self.seen, message: message.to_string(), timestamp, step, kind });
    }

    /// A step begins: its record, and its index.
    /// What a marker says of an open step: what its `until` found, how
    /// the program it stopped ended.
    fn step_note(&mut self, marker: &Marker) {
        let (id, until, stopped) = match marker {
            Marker::Until { step, seen, ms } => (step, Some((*seen, *ms)), None),
            Marker::Stopped { step, how } => (step, None, Some(*how)),
            _ => return,
        };
        if let Some(s) = self.steps.iter_mut().rev().find(|s| s.is(id) && s.rc.is_none()) {
            s.until = until.or(s.until);
            s.stopped = stopped.or(s.stopped);
        }
    }

    fn begin(&mut self, id: &StepId, timestamp: Option<f64>) -> usize {
        self.steps.push(StepRecord {
            unit: id.unit.clone(),
            name: id.name.clone(),
            rc: None,
            kernel: Vec::new(),
            output: Vec::new(),
            started_at: timestamp,
            ended_at: None,
            until: None,
            stopped: None,
        });
        self.steps.len() - 1
    }

    /// The last open step of that id ends with `rc`.
    fn end(&mut self, id: &StepId, rc: i32, timestamp: Option<f64>) {
        if let Some(s) = self.steps.iter_mut().rev().find(|s| s.is(id) && s.rc.is_none()) {
            s.rc = Some(rc);
            s.ended_at = timestamp;
        }
    }

    /// What a marker that frames no step says: a section's address and a
    /// pid (in the unit of the step `open` then), a replay's API and port
    /// list.
    fn record(&mut self, marker: &Marker, open: Option<usize>) {
        let unit = open.and_then(|i| self.steps[i].unit.clone());
        match marker {
            Marker::Section { module, name, address } => {
                self.sections.push(LoadedSection {
                    unit,
                    module: module.clone(),
                    section: name.clone(),
                    address: *address,
                });
            }
            Marker::Input { module, device, name } => {
                self.inputs.push(InputName { unit, module: module.clone(), device: device.clone(), name: name.clone() })
            }
            Marker::Pid { module, pid } => self.pids.push(TaskPid { unit, module: module.clone(), pid: *pid }),
            Marker::Api { api } => self.api = Some(api.clone()),
            Marker::Port { id, at, note } => self.ports.push((id.clone(), at.clone(), note.clone())),
            Marker::Board { at_us, part, state } => {
                self.board.push((open, *at_us as f64 / 1e6, part.clone(), state.clone()))
            }
            _ => {}
        }
    }

    /// The first step of that name.
    pub fn step(&self, name: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The kernel messages of a step.
    pub fn kernel_lines<'a>(&'a self, s: &'a StepRecord) -> impl Iterator<Item = &'a str> + 'a {
        s.kernel.iter().map(|&i| self.lines[i].message.as_str())
    }

    /// The lines a step's command printed.
    pub fn output_lines<'a>(&'a self, s: &'a StepRecord) -> impl Iterator<Item = &'a str> + 'a {
        s.output.iter().map(|&i| self.lines[i].message.as_str())
    }

    /// Everything a step printed, kernel messages and its command's output,
    /// in console order, for excerpts.
    pub fn step_excerpt(&self, s: &StepRecord) -> Vec<String> {
        let mut idx: Vec<usize> = s.kernel.iter().chain(&s.output).copied().collect();
        idx.sort_unstable();
        idx.iter()
            .map(|&i| {
                let l = &self.lines[i];
                if l.kind == LineKind::Output {
                    format!("> {}", l.message)
                } else {
                    l.message.clone()
                }
            })
            .collect()
    }

    /// The part of a run of several units that is one unit's: a filter,
    /// not a renaming. It keeps the unit's own steps and the steps all units
    /// share (no unit: `leaks`), the lines outside any step between line
    /// indices `from` and `to` (the unit's stretch of the console), the
    /// sections its own steps reported, and every pid with its unit. Line
    /// numbers stay those of the console log.
    pub fn unit_view(&self, unit: &str, from: usize, to: usize) -> Transcript {
        let ours = |s: &StepRecord| s.unit.as_deref().is_none_or(|u| u == unit);
        let mut map = vec![None; self.steps.len()];
        let mut steps = Vec::new();
        for (i, s) in self.steps.iter().enumerate().filter(|(_, s)| ours(s)) {
            map[i] = Some(steps.len());
            steps.push(StepRecord { kernel: Vec::new(), output: Vec::new(), ..s.clone() });
        }
        let mut lines = Vec::new();
        for (idx, l) in self.lines.iter().enumerate() {
            let step = l.step.and_then(|i| map[i]);
            let keep = match l.step {
                Some(_) => step.is_some(),
                None => idx >= from && idx < to,
            };
            if !keep {
                continue;
            }
            if let Some(si) = step {
                match l.kind {
                    LineKind::Kernel => steps[si].kernel.push(lines.len()),
                    LineKind::Output => steps[si].output.push(lines.len()),
                    _ => {}
                }
            }
            lines.push(ConsoleLine { step, ..l.clone() });
        }
        let board = self
            .board
            .iter()
            .filter_map(|(i, at, p, st)| i.and_then(|i| map[i]).map(|j| (Some(j), *at, p.clone(), st.clone())))
            .collect();
        Transcript {
            lines,
            steps,
            sections: self.sections.iter().filter(|s| s.unit.as_deref() == Some(unit)).cloned().collect(),
            inputs: self.inputs.iter().filter(|s| s.unit.as_deref() == Some(unit)).cloned().collect(),
            board,
            ..self.clone_meta()
        }
    }

    /// Everything but the lines, steps and sections, for a view.
    fn clone_meta(&self) -> Transcript {
        Transcript {
            nonce: self.nonce.clone(),
            awaiting_start: false,
            lines: Vec::new(),
            steps: Vec::new(),
            done: self.done,
            sections: Vec::new(),
            inputs: Vec::new(),
            pids: self.pids.clone(),
            api: self.api.clone(),
            ports: self.ports.clone(),
            board: Vec::new(),
            // Every unit's files: each unit takes those built in its folder.
            gcov: self.gcov.clone(),
            kept: self.kept,
            dropped: self.dropped,
            seen: self.seen,
            at_shell: false,
        }
    }

    /// The index of the first line of the first step of `unit`.
    pub fn first_line_of(&self, unit: &str) -> Option<usize> {
        self.lines.iter().position(|l| l.step.is_some_and(|i| self.steps[i].unit.as_deref() == Some(unit)))
    }

    /// The sections of `module` that `unit`'s steps reported, for naming
    /// its addresses: (section, address).
    pub fn sections_of(&self, unit: Option<&str>, module: &str) -> Vec<(String, u64)> {
        self.sections
            .iter()
            .filter(|s| s.unit.as_deref() == unit && s.module == module)
            .map(|s| (s.section.clone(), s.address))
            .collect()
    }

    /// The board started over under the open step (the banner, the last
    /// line, came): a `system reset` change, at the last time the old boot's
    /// clock gave.
    pub fn note_reset(&mut self) {
        let open = self.steps.iter().rposition(|s| s.rc.is_none());
        let at = self.lines.iter().rev().skip(1).find_map(|l| l.timestamp).unwrap_or(0.0);
        self.board.push((open, at, "system".to_string(), "reset".to_string()));
    }

    /// The board's changes, each placed in the step it was reported in
    /// (not the accesses it reports, which are the verdict's unmodelled
    /// hardware: access.rs).
    pub fn board_changes(&self) -> Vec<crate::board_parts::BoardChange> {
        self.board
            .iter()
            .filter(|(_, _, part, _)| !crate::access::is_report(part))
            .map(|(i, at, part, state)| {
                let step = i.map(|i| &self.steps[i]);
                crate::board_parts::BoardChange {
                    at: *at,
                    part: part.clone(),
                    state: state.clone(),
                    step: step.map(|s| s.name.clone()),
                    into_step: step.and_then(|s| s.started_at).map(|t| at - t),
                }
            })
            .collect()
    }

    /// The last `n` console lines, for showing what the guest did last.
    pub fn tail(&self, n: usize) -> &[ConsoleLine] {
        &self.lines[self.lines.len().saturating_sub(n)..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marker::{marker_line, parse_any, MARKER};

    const N: &str = "0123456789abcdef";

    fn log(body: &str) -> String {
        body.replace("@@N", &format!("{MARKER} {N}"))
    }

    /// A forged end (no nonce, another run's, not at the start of the
    /// message; what marker.rs refuses) does not close a step.
    #[test]
    fn forged_markers_are_ordinary_lines_of_the_step() {
        let t = Transcript::from_log(
            &log("@@N begin insmod\nevil: @@N end insmod rc=0\n@harness end insmod rc=0\n@@harness end insmod rc=0\n"),
            N,
        );
        let s = t.step("insmod").unwrap();
        assert_eq!(s.rc, None, "the forged end did not close the step");
        assert_eq!(s.kernel.len(), 3);
    }

    /// The board's parts reach the judge only as `board` markers of this run
    /// (the model's `changes` file, printed by steps.sh): a kernel line that
    /// says the same (the model's own storm warning, a marker's words without
    /// the prefix, another run's marker) is an ordinary line.
    #[test]
    fn the_boards_parts_come_from_its_markers_never_from_the_kernel_log() {
        let t = Transcript::from_log(
            &log("@@N begin insmod\n\
             [    2.1] tiny4412-board: interrupt storm on XEINT26: more than 1000 in a second; the line is masked\n\
             [    2.2] board 2.200000 LED1 on\n\
             [    2.3] @@harness feedf00dfeedf00d board 2.300000 LED2 on\n\
             @@N end insmod rc=0\n"),
            N,
        );
        assert_eq!(t.board_changes(), []);
        assert_eq!(t.step("insmod").unwrap().kernel.len(), 3);
        let t = Transcript::from_log(
            &log("@@N begin insmod\n[    2.2] @@N board 2.200000 LED1 on\n@@N end insmod rc=0\n"),
            N,
        );
        let changes = t.board_changes();
        let got: Vec<(&str, &str, Option<&str>)> =
            changes.iter().map(|c| (c.part.as_str(), c.state.as_str(), c.step.as_deref())).collect();
        assert_eq!(got, [("LED1", "on", Some("insmod"))]);
    }

    #[test]
    fn steps_collect_kernel_lines_and_output_apart() {
        let t = Transcript::from_log(
            &log("[    1.0] booting\n\
             [    2.0] @@N begin insmod\n\
             [    2.1] process:insmod\n\
             [    2.2] @@N out insmod some output with @@N end insmod rc=0 in it\n\
             [    2.3] @@N end insmod rc=0\n\
             [    2.4] between steps\n\
             [    2.5] @@N begin rmmod\n\
             [    2.6] mmc exit!\n\
             [    2.7] @@N end rmmod rc=0\n\
             [    2.8] @@N done\n"),
            N,
        );
        assert!(t.done);
        assert_eq!(t.steps.len(), 2);
        let insmod = t.step("insmod").unwrap();
        assert_eq!(insmod.rc, Some(0));
        assert_eq!(t.kernel_lines(insmod).collect::<Vec<_>>(), ["process:insmod"]);
        let out: Vec<&str> = t.output_lines(insmod).collect();
        assert_eq!(out, [format!("some output with {MARKER} {N} end insmod rc=0 in it")]);
        assert!((insmod.duration().unwrap() - 0.3).abs() < 1e-9);
        assert_eq!(t.kernel_lines(t.step("rmmod").unwrap()).collect::<Vec<_>>(), ["mmc exit!"]);
        assert_eq!(t.lines[2].step, Some(0));
        assert_eq!(t.lines[5].step, None, "between steps belongs to none");
        assert_eq!(t.lines[7].number, 8);
        assert_eq!(t.lines[3].kind, LineKind::Output);
        assert_eq!(t.step_excerpt(insmod)[1], format!("> some output with {MARKER} {N} end insmod rc=0 in it"));
    }

    #[test]
    fn sections_are_recorded_per_module() {
        let t = Transcript::from_log(
            &log("@@N begin insmod\n@@N section mmc_byte .text 0xbf000000\n@@N end insmod rc=0\n"),
            N,
        );
        assert_eq!(t.sections_of(None, "mmc_byte"), vec![(".text".to_string(), 0xbf000000)]);
        assert!(t.step("insmod").unwrap().kernel.is_empty(), "markers are not step output");
    }

    #[test]
    fn a_replay_transcript_begins_at_its_start_marker() {
        let mut t = Transcript::after_start(N);
        for l in
            log("[ 1.0] @@N begin insmod\n[ 1.1] old\n[ 5.0] @@N start mmc_byte\n[ 5.1] @@N begin insmod\n[ 5.2] new\n")
                .lines()
        {
            t.push(l);
        }
        assert_eq!(t.steps.len(), 1);
        assert_eq!(t.kernel_lines(&t.steps[0]).collect::<Vec<_>>(), ["new"]);
    }

    #[test]
    fn a_flood_is_bounded_and_markers_survive_it() {
        let mut t = Transcript::new(N);
        t.push(&log("@@N begin insmod"));
        let big = "x".repeat(1 << 20);
        for _ in 0..(KEEP_BYTES >> 20) + 10 {
            t.push(&big);
        }
        t.push(&log("@@N end insmod rc=0"));
        t.push(&log("@@N done"));
        assert!(t.done);
        assert_eq!(t.step("insmod").unwrap().rc, Some(0));
        assert!(t.dropped >= 10, "{}", t.dropped);
        let kept: usize = t.lines.iter().map(|l| l.message.len()).sum();
        assert!(kept <= KEEP_BYTES, "{kept}");
        assert!(t.lines.len() <= (KEEP_BYTES >> 20) + 3, "dropped lines are not stored: {}", t.lines.len());
        assert_eq!(t.lines.last().unwrap().number, (KEEP_BYTES >> 20) + 13, "numbers count every line");
    }

    #[test]
    fn an_unfinished_step_stays_open() {
        let t = Transcript::from_log(&log("@@N begin insmod\nUnable to handle kernel NULL pointer\n"), N);
        assert!(!t.done);
        let s = t.current_step().unwrap();
        assert_eq!(s.rc, None);
        assert_eq!(s.to_string(), "insmod (never finished)");
        assert_eq!(t.lines[1].step, Some(0));
    }

    #[test]
    fn a_unit_view_has_its_own_steps_and_stretch_and_the_shared_leaks() {
        let t = Transcript::from_log(
            &log("boot\n@@N begin a/insmod\nA up\n@@N end a/insmod rc=0\nbetween\n\
                  @@N begin b/insmod\nB up\n@@N end b/insmod rc=1\nafter b\n@@N begin leaks\n@@N out leaks \
                      unreferenced\n@@N end leaks rc=0\n@@N done\n"),
            N,
        );
        let from_b = t.first_line_of("b").unwrap();
        let a = t.unit_view("a", 0, from_b);
        assert_eq!(a.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["insmod", "leaks"]);
        assert_eq!(
            a.steps.iter().map(|s| s.unit.as_deref()).collect::<Vec<_>>(),
            [Some("a"), None],
            "a filter: units kept as fields"
        );
        let msgs: Vec<&str> =
            a.lines.iter().filter(|l| l.kind != LineKind::Marker).map(|l| l.message.as_str()).collect();
        assert_eq!(msgs, ["boot", "A up", "between", "unreferenced"]);
        assert_eq!(a.kernel_lines(a.step("insmod").unwrap()).collect::<Vec<_>>(), ["A up"]);
        let b = t.unit_view("b", from_b, t.lines.len());
        assert_eq!(b.step("insmod").unwrap().rc, Some(1));
        let msgs: Vec<&str> =
            b.lines.iter().filter(|l| l.kind != LineKind::Marker).map(|l| l.message.as_str()).collect();
        assert_eq!(msgs, ["B up", "after b", "unreferenced"]);
        assert_eq!(b.lines[1].number, 7, "console line numbers are kept");
        assert!(b.done);
    }

    #[test]
    fn units_with_modules_of_the_same_name_keep_their_own_sections_and_pids() {
        let t = Transcript::from_log(
            &log("@@N begin a/insmod\n@@N pid hello 60\n@@N section hello .text 0xbf000000\n@@N end a/insmod rc=0\n\
                  @@N begin b/insmod\n@@N pid hello 70\n@@N section hello .text 0xbf004000\n@@N end b/insmod rc=0\n\
                  @@N begin leaks\n@@N end leaks rc=0\n"),
            N,
        );
        assert_eq!(t.sections.len(), 2);
        let from_b = t.first_line_of("b").unwrap();
        let a = t.unit_view("a", 0, from_b);
        assert_eq!(a.sections_of(Some("a"), "hello"), vec![(".text".to_string(), 0xbf000000)]);
        assert_eq!(a.sections.len(), 1, "only its own steps' sections");
        let pid = |unit: &str, pid| TaskPid { unit: Some(unit.to_string()), module: "hello".to_string(), pid };
        assert_eq!(a.pids, vec![pid("a", 60), pid("b", 70)], "every pid, with its unit");
        let b = t.unit_view("b", from_b, t.lines.len());
        assert_eq!(b.sections_of(Some("b"), "hello"), vec![(".text".to_string(), 0xbf004000)]);
        assert_eq!(
            t.sections_of(Some("a"), "hello"),
            vec![(".text".to_string(), 0xbf000000)],
            "the whole transcript knows whose"
        );
        assert_eq!(t.sections_of(None, "hello"), vec![], "no section was reported outside a unit");
    }

    #[test]
    fn step_names_and_kinds() {
        assert_eq!(step_name(StepKind::Insmod, "hello", false), "insmod");
        assert_eq!(step_name(StepKind::Insmod, "hello", true), "insmod:hello");
        assert_eq!(StepKind::of("insmod:hello"), StepKind::Insmod);
        assert_eq!(StepKind::of("gone"), StepKind::Gone);
        assert_eq!(StepKind::of("app"), StepKind::Command);
        assert_eq!(StepKind::of("app:x"), StepKind::Command);
        assert_eq!(StepKind::builtin_words(), "insmod, rmmod, gone, leaks, census");
        // The second round.
        assert_eq!(second("insmod"), "insmod#2");
        assert_eq!(second("rmmod:hello"), "rmmod#2:hello");
        assert_eq!(StepKind::of("rmmod#2:hello"), StepKind::Rmmod);
        assert_eq!(StepKind::of("census#2"), StepKind::Census);
        assert_eq!(StepKind::of("insmod#x"), StepKind::Command);
        assert_eq!(StepKind::of("app#2"), StepKind::Command);
        assert_eq!((round("insmod#2:a"), round("insmod:a"), round("census#2")), (Some(2), None, Some(2)));
        assert_eq!(
            (first_round("insmod#2:a"), first_round("gone#2"), first_round("app")),
            ("insmod:a".into(), "gone".into(), "app".into())
        );
        assert!(parse_any(&marker_line("0123456789abcdef", &Marker::Done)).is_some());
        assert!(parse_any(&marker_line("not-hex!", &Marker::Done)).is_none());
    }
}
