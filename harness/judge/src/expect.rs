//! Expectations: what each step must do. An optional TOML file beside the
//! module; without one, the defaults: every step exits 0.
//!
//! ```toml
//! programs = ["app.c"]             # C sources built into static ARM programs on the guest's PATH
//! api = "native"                   # build for the test kernel's own API, not 3.5's (the layer; --api)
//! reload = false                   # no second load after the first rmmod (the default loads twice)
//!
//! [board]
//! stock-drivers = true             # the virtual board holds what the stock image's drivers hold (judge/stock.rs)
//!
//! [[step]]
//! name = "insmod"                  # insmod, rmmod, gone, leaks, census (`insmod:<module>` with several
//!                                  # modules; `insmod#2` the second load alone)
//! args = "count=3"                 # insmod: module parameters
//! exit = 0                         # the default
//! expect = [{ line = "process:insmod" }, { regex = "^mmc_byte: .*ok$" }]   # kernel log, in order
//!
//! [[step]]
//! name = "app"                     # any other name: a command step
//! run = "app /dev/hello_misc"      # run in the guest between loading and unloading
//! stdout = [{ line = "app: got pong" }]                                    # its own output, in order
//!
//! [[step]]
//! name = "again"                   # a reload step: rmmod, then insmod again, mid-scenario
//! reload = true                    # (or a module's name, with several)
//! args = "count=2"                 # the new load's parameters
//! ```
//!
//! `line` matches a whole message (printk timestamp removed, surrounding
//! blanks ignored); `regex` matches anywhere in a message unless anchored.
//! This module does no I/O: the caller reads the file.

use crate::board_parts::{self, BoardKeys, BoardStep};
use crate::census;
use crate::marker::BackgroundEnd;
use crate::step::{self, StepKind, Transcript};
use anyhow::{bail, Result};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    programs: Vec<String>,
    api: Option<crate::api::Api>,
    reload: Option<bool>,
    #[serde(default)]
    step: Vec<StepSpec>,
    board: Option<BoardSpec>,
}

/// The `[board]` table: how the virtual board models the real one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct BoardSpec {
    #[serde(default)]
    stock_drivers: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSpec {
    name: String,
    run: Option<String>,
    #[serde(default)]
    background: bool,
    wait: Option<String>,
    args: Option<String>,
    exit: Option<i32>,
    #[serde(default)]
    expect: Vec<PatternSpec>,
    #[serde(default)]
    stdout: Vec<PatternSpec>,
    // The virtual board (judge/board_parts.rs).
    press: Option<String>,
    release: Option<String>,
    click: Option<String>,
    hold_ms: Option<u32>,
    adc: Option<BTreeMap<String, u32>>,
    board: Option<BTreeMap<String, String>>,
    /// The step ends with the board reset (by "watchdog", the one cause).
    reset: Option<String>,
    /// The step ends when this line is seen (or its bound is up).
    until: Option<UntilSpec>,
    /// The step stops this background step's program and judges its output.
    stop: Option<String>,
    /// The step unloads the unit's modules (or the one named) and loads
    /// them again, mid-scenario.
    reload: Option<ReloadSpec>,
}

/// A step's `reload`: `true` (every module of the unit) or a module's name.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum ReloadSpec {
    All(bool),
    Module(String),
}

/// What a `reload` step unloads and loads again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// Every module of the unit: unloaded last first, loaded in load order.
    All,
    /// This module alone (a unit that builds several).
    Module(String),
}

/// `until = { line = "key down", within_ms = 2000 }`: a kernel line, or,
/// with `output = "<background step>"`, a line of that program's output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct UntilSpec {
    line: Option<String>,
    regex: Option<String>,
    output: Option<String>,
    within_ms: Option<u32>,
}

impl StepSpec {
    fn board_keys(&self) -> BoardKeys<'_> {
        BoardKeys {
            press: self.press.as_deref(),
            release: self.release.as_deref(),
            click: self.click.as_deref(),
            hold_ms: self.hold_ms,
            adc: self.adc.as_ref(),
            board: self.board.as_ref(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternSpec {
    line: Option<String>,
    regex: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Pattern {
    Line(String),
    Regex(Regex),
}

impl Pattern {
    pub fn matches(&self, message: &str) -> bool {
        match self {
            Pattern::Line(l) => message.trim() == l.trim(),
            Pattern::Regex(r) => r.is_match(message),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Line(l) => write!(f, "line {l:?}"),
            Pattern::Regex(r) => write!(f, "regex /{}/", r.as_str()),
        }
    }
}

/// The default and the largest bound of an `until` (the step's own
/// deadline must outlast it).
pub const UNTIL_DEFAULT_MS: u32 = 5000;
pub const UNTIL_MAX_MS: u32 = 20000;

/// What a step waits for before it ends.
#[derive(Debug, Clone)]
pub struct Until {
    pub pattern: Pattern,
    /// The background step whose program's output holds the line; `None`:
    /// the kernel log, from the step's beginning.
    pub output: Option<String>,
    pub within_ms: u32,
}

impl Until {
    /// The pattern as the guest's matcher takes it: `line` (a whole
    /// message, blanks around it ignored) or `regex` (an awk ERE).
    pub fn guest_kind(&self) -> (&'static str, String) {
        match &self.pattern {
            Pattern::Line(l) => ("line", l.trim().to_string()),
            Pattern::Regex(r) => ("regex", r.as_str().to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StepExpectation {
    pub name: String,
    /// A command step's shell command.
    pub run: Option<String>,
    /// The command starts and the step ends at once; the step that waits
    /// for it carries its output and exit status.
    pub background: bool,
    /// A step that waits for that background step's command and judges
    /// its output and exit status as its own.
    pub wait: Option<String>,
    /// A step that acts on the virtual board, or checks it.
    pub board: Option<BoardStep>,
    /// The step ends with the virtual board's watchdog resetting it:
    /// nothing runs after it (no unload).
    pub reset: bool,
    /// insmod's module parameters.
    pub args: Option<String>,
    pub exit: i32,
    /// Kernel log lines printed during the step, in order.
    pub expect: Vec<Pattern>,
    /// Lines of the step command's own output, in order.
    pub stdout: Vec<Pattern>,
    /// A command step written after an rmmod or gone entry: it runs after
    /// the modules are unloaded.
    pub after_unload: bool,
    /// The step waits for a line before it ends.
    pub until: Option<Until>,
    /// The background step this one stops (SIGINT, then SIGTERM, then
    /// SIGKILL) before judging its output; `wait` names the same step.
    pub stop: bool,
    /// Whether the file gave `exit`: a stopped program's status is judged
    /// only then (stopped by a signal, it has none of its own).
    pub exit_given: bool,
    /// A `reload` step: the module(s) are unloaded and loaded again here
    /// (with `args`, if any), and stay loaded.
    pub reload: Option<Reload>,
}

impl StepExpectation {
    fn default_for(name: &str) -> StepExpectation {
        StepExpectation {
            name: name.to_string(),
            run: None,
            background: false,
            wait: None,
            board: None,
            reset: false,
            args: None,
            exit: 0,
            expect: Vec::new(),
            stdout: Vec::new(),
            after_unload: false,
            until: None,
            stop: false,
            exit_given: false,
            reload: None,
        }
    }

    /// Whether this entry speaks for the step `step` (`insmod` speaks for
    /// every `insmod:<module>`).
    pub fn covers(&self, step: &str) -> bool {
        self.name == step
            || (StepKind::of(&self.name).is_builtin()
                && !self.name.contains(':')
                && StepKind::of(step) == StepKind::of(&self.name))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// C sources of user programs, relative to the module directory.
    pub programs: Vec<String>,
    pub steps: Vec<StepExpectation>,
    /// No file was given: the defaults alone apply.
    pub defaults: bool,
    /// The module API the file asks for (`api = "native"` or `"3.5"`).
    pub api: Option<crate::api::Api>,
    /// `[board] stock-drivers = true`: the virtual board holds the pins
    /// and interrupts the stock image's drivers hold (judge/stock.rs).
    pub stock_drivers: bool,
    /// After the first rmmod the modules are loaded and unloaded again
    /// (`reload = false` in the file says not to): what a student does on
    /// the board all day.
    pub reload: bool,
}

/// The result of one expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub step: String,
    pub description: String,
    pub held: bool,
    /// Why it failed, when it did.
    pub detail: Option<String>,
}

/// A name a command step may have: one word the marker protocol can carry.
/// One entry's keys, for its kind of step (`earlier`: the entries before it).
fn check_step(s: &StepSpec, kind: StepKind, earlier: &[StepExpectation], at: &str) -> Result<Option<BoardStep>> {
    let on_board = board_parts::step(&s.board_keys()).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
    if s.reload.is_some() {
        if kind.is_builtin() || !valid_step_name(&s.name) {
            bail!("{at}: a reload step is named like a command step: one word, not {}", StepKind::builtin_words());
        }
        if on_board.is_some() || s.run.is_some() || s.wait.is_some() || s.stop.is_some() || s.background {
            bail!(
                "{at}: a reload step unloads and loads the module, nothing else: drop `run`, `wait`, `stop`, \
                `background` and the board's keys (another step can do them)"
            );
        }
        return Ok(None);
    }
    if on_board.is_some() {
        if kind.is_builtin() || !valid_step_name(&s.name) {
            bail!("{at}: a board step is named like a command step: one word, not {}", StepKind::builtin_words());
        }
        if s.run.is_some() || s.wait.is_some() || s.background || s.args.is_some() || !s.stdout.is_empty() {
            bail!(
                "{at}: a board step runs nothing of its own: drop `run`, `wait`, `background`, `args` and `stdout` \
                (kernel lines go in `expect`)"
            );
        }
        return Ok(on_board);
    }
    if kind.is_builtin() {
        if s.background || s.wait.is_some() {
            bail!("{at}: `background` and `wait` are for command steps");
        }
        if s.run.is_some() {
            bail!("{at}: `run` is for command steps; {kind} runs itself (give the command step another name)");
        }
        if s.args.is_some() && kind != StepKind::Insmod {
            bail!("{at}: `args` are module parameters, for insmod steps only");
        }
        if let Some((_, module)) = s.name.split_once(':') {
            if kind == StepKind::Leaks || module.is_empty() {
                bail!("{at}: write {kind} or {kind}:<module name>");
            }
        }
    } else {
        if !valid_step_name(&s.name) {
            bail!("{at}: a step name is one word of letters, digits, '_', '-' or '.'");
        }
        if s.wait.is_some() && s.stop.is_some() {
            bail!("{at}: `stop` waits for the program it stops: drop `wait`");
        }
        if let Some(on) = s.wait.as_ref().or(s.stop.as_ref()) {
            check_wait(earlier, on, s.run.is_some(), at)?;
        } else if s.run.as_deref().is_none_or(|r| r.trim().is_empty()) {
            bail!(
                "{at}: unknown step; a command step needs `run = \"<shell command>\"` (a board step `press`, \
                    `release`, `click`, `adc` or `board`), the others are {}",
                StepKind::builtin_words()
            );
        }
        if s.args.is_some() {
            bail!("{at}: `args` are module parameters, for insmod steps only");
        }
        if s.background && (s.exit.is_some() || !s.stdout.is_empty()) {
            bail!(
                "{at}: a background step's output and exit status are judged by the step that waits for it: put \
                `exit` and `stdout` there"
            );
        }
    }
    Ok(None)
}

/// A step with `wait = on`: `on` is an earlier background step that no
/// other step waits for, and the waiting step runs nothing itself.
fn check_wait(earlier: &[StepExpectation], on: &str, runs: bool, at: &str) -> Result<()> {
    if runs {
        bail!("{at}: a step that waits runs nothing itself: drop `run` (or `wait`)");
    }
    match earlier.iter().find(|e| e.name == on) {
        Some(e) if e.background => {}
        Some(_) => bail!("{at}: wait = {on:?}: that step does not run in the background (give it `background = true`)"),
        None => bail!("{at}: wait = {on:?}: no background step of that name comes before it"),
    }
    if earlier.iter().any(|e| e.wait.as_deref() == Some(on)) {
        bail!("{at}: wait = {on:?}: another step already waits for it");
    }
    Ok(())
}

/// A step's matchers of one key (`expect`, `stdout`), checked.
fn patterns(specs: Vec<PatternSpec>, field: &str, at: &str) -> Result<Vec<Pattern>> {
    specs
        .into_iter()
        .enumerate()
        .map(|(j, p)| match (p.line, p.regex) {
            (Some(l), None) => Ok(Pattern::Line(l)),
            (None, Some(r)) => Regex::new(&r)
                .map(Pattern::Regex)
                .map_err(|e| anyhow::anyhow!("{at}: {field}[{j}]: invalid regex {r:?}: {e}")),
            _ => bail!("{at}: {field}[{j}] needs exactly one of `line` or `regex`"),
        })
        .collect()
}

/// An `until`, checked: one pattern, a bound within [`UNTIL_MAX_MS`], and
/// an `output` that names an earlier background step still running then.
fn until(u: UntilSpec, earlier: &[StepExpectation], s: &StepSpec, at: &str) -> Result<Until> {
    if StepKind::of(&s.name).is_builtin() {
        bail!("{at}: `until` is for command, board and wait steps (a step after this one can wait for its line)");
    }
    if s.background {
        bail!(
            "{at}: a background step ends at once; put `until` on a step after it (`until = {{ output = {:?}, … }}`)",
            s.name
        );
    }
    let pattern = match (u.line, u.regex) {
        (Some(l), None) if !l.trim().is_empty() => Pattern::Line(l),
        (None, Some(r)) => {
            Pattern::Regex(Regex::new(&r).map_err(|e| anyhow::anyhow!("{at}: until: invalid regex {r:?}: {e}"))?)
        }
        _ => bail!("{at}: until needs exactly one of `line` or `regex`"),
    };
    if pattern.to_string().contains(['\n', '\r']) {
        bail!("{at}: until: a line has no line breaks");
    }
    // The guest matches with awk: POSIX's ERE, which lacks Perl's classes.
    if let Pattern::Regex(r) = &pattern {
        if let Some(c) =
            ["\\d", "\\w", "\\s", "\\b", "\\D", "\\W", "\\S", "(?"].iter().find(|c| r.as_str().contains(**c))
        {
            bail!(
                "{at}: until: the guest matches this regex with awk (POSIX ERE), which has no {c}: write [0-9], \
                [[:alnum:]_], [[:space:]]"
            );
        }
    }
    let within_ms = u.within_ms.unwrap_or(UNTIL_DEFAULT_MS);
    if within_ms == 0 || within_ms > UNTIL_MAX_MS {
        bail!(
            "{at}: until: within_ms = {within_ms}: give 1 to {UNTIL_MAX_MS} (the step's own deadline must outlast it)"
        );
    }
    if let Some(on) = &u.output {
        let running = earlier.iter().any(|e| e.name == *on && e.background)
            && !earlier.iter().any(|e| e.wait.as_deref() == Some(on.as_str()));
        if !running {
            bail!(
                "{at}: until: output = {on:?}: name a background step before this one that no step has waited for yet"
            );
        }
    }
    Ok(Until { pattern, output: u.output, within_ms })
}

/// A step's `reload`, checked: `true` or a module's name, and (the module
/// stays loaded after it) before the unload.
fn reload(r: Option<ReloadSpec>, after_unload: bool, at: &str) -> Result<Option<Reload>> {
    let reload = match r {
        None => return Ok(None),
        Some(ReloadSpec::All(true)) => Reload::All,
        Some(ReloadSpec::All(false)) => bail!(
            "{at}: reload = false reloads nothing: drop the step (the file's own `reload = false`, before the first \
            [[step]], turns off the second load)"
        ),
        Some(ReloadSpec::Module(m)) if valid_step_name(&m) => Reload::Module(m),
        Some(ReloadSpec::Module(m)) => bail!("{at}: reload = {m:?}: give true, or the name of one of the modules"),
    };
    if after_unload {
        bail!(
            "{at}: a reload step unloads the module and loads it again, so it needs the module loaded: put it \
            before the rmmod and gone entries"
        );
    }
    Ok(Some(reload))
}

fn valid_step_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

impl Expectations {
    /// The expectations used when no file is given: every step exits 0 and
    /// no kernel report appears.
    pub fn defaults() -> Expectations {
        Expectations { defaults: true, reload: true, ..Default::default() }
    }

    /// Parses and validates an expectations file's text; `origin` names it
    /// in errors, so a typo fails here, before anything is built.
    pub fn parse(text: &str, origin: &str) -> Result<Expectations> {
        let file: File = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{origin}: invalid expectations: {}", e.to_string().trim_end()))?;
        let mut steps = Vec::new();
        let mut unloaded = false;
        for (i, s) in file.step.into_iter().enumerate() {
            let at = format!("{origin}: step {} ({:?})", i + 1, s.name);
            let kind = StepKind::of(&s.name);
            let on_board = check_step(&s, kind, &steps, &at)?;
            if let Some(r) = &s.reset {
                if r != "watchdog" {
                    bail!(
                        "{at}: reset = {r:?}: the board is reset by \"watchdog\" (the one cause the virtual board has)"
                    );
                }
                if kind.is_builtin() || s.background || s.wait.is_some() || s.reload.is_some() {
                    bail!("{at}: `reset` ends a command or board step");
                }
            }
            let until = s.until.clone().map(|u| until(u, &steps, &s, &at)).transpose()?;
            if let Some(r) = steps.iter().find(|e: &&StepExpectation| e.reset) {
                bail!(
                    "{at}: step {:?} ends with the board reset: nothing runs after it; put this step before it",
                    r.name
                );
            }
            if matches!(kind, StepKind::Rmmod | StepKind::Gone) {
                unloaded = true;
            }
            if steps.iter().any(|e: &StepExpectation| e.name == s.name) {
                bail!("{at}: a second entry for the same step; put its expectations in one entry");
            }
            let reload = reload(s.reload.clone(), unloaded, &at)?;
            steps.push(StepExpectation {
                reload,
                after_unload: !kind.is_builtin() && unloaded,
                expect: patterns(s.expect, "expect", &at)?,
                stdout: patterns(s.stdout, "stdout", &at)?,
                until,
                stop: s.stop.is_some(),
                exit_given: s.exit.is_some(),
                name: s.name,
                run: s.run,
                background: s.background,
                wait: s.wait.or(s.stop),
                board: on_board,
                reset: s.reset.is_some(),
                args: s.args,
                exit: s.exit.unwrap_or(0),
            });
        }
        if let Some(b) =
            steps.iter().find(|b| b.background && !steps.iter().any(|w| w.wait.as_deref() == Some(b.name.as_str())))
        {
            bail!(
                "{origin}: step {:?} runs in the background, and no step waits for it: add one with `wait = {:?}`",
                b.name,
                b.name
            );
        }
        for (i, p) in file.programs.iter().enumerate() {
            let path = std::path::Path::new(p);
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            if path.is_absolute() || p.split('/').any(|c| c == "..") || !p.ends_with(".c") || !valid_step_name(&stem) {
                bail!("{origin}: programs[{i}] {p:?}: name a .c file inside the module directory, e.g. \"app.c\"");
            }
        }
        let stock_drivers = file.board.is_some_and(|b| b.stock_drivers);
        let reload = file.reload.unwrap_or(true);
        Ok(Expectations { programs: file.programs, steps, defaults: false, api: file.api, stock_drivers, reload })
    }

    /// Whether a step expects the board to be reset (the run then ends in it).
    pub fn expects_reset(&self) -> bool {
        self.steps.iter().any(|s| s.reset)
    }

    /// Whether a step acts on the virtual board or checks it.
    pub fn uses_board(&self) -> bool {
        self.steps.iter().any(|s| s.board.is_some())
    }

    /// The command steps (and the steps that wait for one, the board steps
    /// and the reload steps), in file order.
    pub fn commands(&self) -> impl Iterator<Item = &StepExpectation> {
        self.steps.iter().filter(|s| s.run.is_some() || s.wait.is_some() || s.board.is_some() || s.reload.is_some())
    }

    /// The entry for a builtin step (exact name first, then its kind).
    pub fn entry_for(&self, step: &str) -> Option<&StepExpectation> {
        self.steps.iter().find(|e| e.name == step).or_else(|| self.steps.iter().find(|e| e.covers(step)))
    }

    /// Judges the transcript of a run of `planned` (step names, in order).
    /// Every planned step is checked: by its entry if the file has one, else
    /// by the defaults (it ran, it exited 0); `leaks` only when the kernel
    /// has kmemleak (the step ran) or the file asks for it. Patterns of an
    /// entry match its steps' lines in order, each after the line the
    /// previous one matched, in each round of the scenario apart (the
    /// second load prints its lines again). Then what the unit left behind
    /// (the census) and the interrupts nobody handled.
    pub fn evaluate(&self, planned: &[String], t: &Transcript) -> Vec<Check> {
        let mut checks = Vec::new();
        let mut entries: Vec<(StepExpectation, Option<u32>)> = Vec::new();
        let mut targets: Vec<Vec<&str>> = Vec::new();
        for name in planned {
            let entry = self.entry_for(name);
            if entry.is_none() && StepKind::of(name) == StepKind::Leaks && t.step(name).is_none() {
                continue;
            }
            let entry = entry.cloned().unwrap_or_else(|| StepExpectation::default_for(name));
            let round = step::round(name);
            match entries.iter().position(|(e, r)| e.name == entry.name && *r == round) {
                Some(k) => targets[k].push(name),
                None => {
                    entries.push((entry, round));
                    targets.push(vec![name]);
                }
            }
        }
        for ((exp, round), names) in entries.iter().zip(&targets) {
            // The second round's checks say so (`insmod#2 prints …`).
            let label = if round.is_some() && step::round(&exp.name).is_none() {
                step::second(&exp.name)
            } else {
                exp.name.clone()
            };
            let mut kernel: Vec<&str> = Vec::new();
            let mut output: Vec<&str> = Vec::new();
            for name in names {
                let record = t.step(name);
                checks.extend(step_checks(exp, name, record, t));
                if let Some(r) = record {
                    kernel.extend(t.kernel_lines(r));
                    output.extend(t.output_lines(r));
                }
            }
            let step = names.first().map(|n| n.to_string()).unwrap_or_default();
            // The second unload's lines are not the first's: what a module
            // prints at exit may count what the command steps did, and they
            // run once. Its exit status is judged, and an entry named for
            // it (`rmmod#2`) is.
            let patterns =
                round.is_none() || StepKind::of(&exp.name) == StepKind::Insmod || step::round(&exp.name).is_some();
            if patterns {
                in_order(&mut checks, &step, &format!("{label} prints"), &exp.expect, &kernel, "kernel line(s)");
                in_order(&mut checks, &step, &format!("{label} outputs"), &exp.stdout, &output, "line(s) of output");
            }
            if let Some(BoardStep::Check(want)) = &exp.board {
                let wrong = board_parts::differences(want, &output);
                let parts = want.iter().map(|(p, s)| format!("{p} {s}")).collect::<Vec<_>>().join(", ");
                checks.push(Check {
                    step,
                    description: format!("{} finds the board with {parts}", exp.name),
                    held: wrong.is_empty(),
                    detail: (!wrong.is_empty()).then(|| wrong.join("; ")),
                });
            }
        }
        checks.extend(census_check(planned, t));
        checks.extend(unhandled_checks(t));
        checks
    }
}

/// What the census check says: the check's description.
pub const NOTHING_LEFT: &str = "nothing left behind after rmmod";

/// The census the unit's last step of its kind took (after its last rmmod)
/// against the one before its first insmod, and that step's name.
pub fn census_comparison<'a>(planned: &'a [String], t: &Transcript) -> Option<(&'a String, census::Comparison)> {
    let last = planned.iter().filter(|n| StepKind::of(n) == StepKind::Census).nth(1)?;
    let record = t.step(last).filter(|r| r.rc == Some(0))?;
    Some((last, census::compare(t.output_lines(record))))
}

/// Nothing left behind after rmmod: the census comparison's leftovers.
fn census_check(planned: &[String], t: &Transcript) -> Option<Check> {
    let (last, mut c) = census_comparison(planned, t)?;
    census::name_inputs(&mut c.left, &t.inputs);
    let detail = if !c.complete {
        Some("the census after the last rmmod said nothing of the one before (see its output)".to_string())
    } else if c.left.is_empty() {
        None
    } else {
        let cut = if c.truncated { " (and the census was cut at its bound: there may be more)" } else { "" };
        Some(format!("{} left: {}{cut}", c.left.len(), c.left.join("; ")))
    };
    Some(Check { step: last.clone(), description: NOTHING_LEFT.to_string(), held: detail.is_none(), detail })
}

/// An interrupt the virtual board raised whose handlers all returned
/// IRQ_NONE: the module's own handler said the interrupt was not its own
/// (the kernel keeps count and, past 99,900 of 100,000, disables the line).
/// A shared line that one handler claimed is handled.
fn unhandled_checks(t: &Transcript) -> Vec<Check> {
    let mut checks: Vec<Check> = Vec::new();
    for c in t.board_changes().into_iter().filter(|c| c.part.starts_with("XEINT") && board_parts::unhandled(&c.state)) {
        let step = c.step.clone().unwrap_or_default();
        let description = format!("the interrupt on {} in {step} is handled", c.part);
        if checks.iter().any(|k| k.description == description) {
            continue;
        }
        let detail = Some(
            "every handler of the line returned IRQ_NONE: the handler does not claim its own interrupt \
            (return IRQ_HANDLED for it)"
                .to_string(),
        );
        checks.push(Check { step, description, held: false, detail });
    }
    checks
}

/// That step `name` ran to completion (it `started` and reported the exit
/// status `got`) and exited `exit`.
/// One step's own checks: it ran and exited as it should (or reset the
/// board), its `until`, how it stopped its program.
fn step_checks(exp: &StepExpectation, name: &str, record: Option<&step::StepRecord>, t: &Transcript) -> Vec<Check> {
    let mut checks = Vec::new();
    if exp.reset {
        checks.push(reset_check(name, t));
    } else {
        let mut ran = ran_checks(name, record.and_then(|r| r.rc), record.is_some(), exp.exit);
        if let Some(note) = unfinished_wait(exp, name, t) {
            ran[0].detail = ran[0].detail.take().map(|d| format!("{d}: {note}"));
        }
        if let (Some(r), Some(_), false) = (record, step::round(name), ran[1].held) {
            // The second load's own error, the first thing it said.
            if let Some(first) = t.output_lines(r).chain(t.kernel_lines(r)).next() {
                ran[1].detail = ran[1].detail.take().map(|d| format!("{d}, the second time: {first}"));
            }
        }
        // A stopped program's status is the signal's, not its own: judged
        // only when the file asks.
        let judged = if exp.stop && !exp.exit_given { 1 } else { 2 };
        checks.extend(ran.into_iter().take(judged));
    }
    if let Some(u) = &exp.until {
        checks.push(until_check(name, u, record, t));
    }
    if exp.stop {
        checks.push(stop_check(name, exp.wait.as_deref().unwrap_or(""), record, t));
    }
    checks
}

/// A step's `until`: the guest saw its line within the bound. A kernel
/// line must also be among the step's own kernel lines, as the judge reads
/// them (the guest's word alone never passes it).
fn until_check(name: &str, u: &Until, record: Option<&step::StepRecord>, t: &Transcript) -> Check {
    let source = match &u.output {
        Some(bg) => format!("the output of {bg}"),
        None => "the kernel log".to_string(),
    };
    let description = format!("{name} sees {} in {source} within {} ms", u.pattern, u.within_ms);
    let in_log = |r: &step::StepRecord| u.output.is_some() || t.kernel_lines(r).any(|l| u.pattern.matches(l));
    let (held, detail) = match record.map(|r| (r.until, in_log(r))) {
        None => (false, Some("the step never started".to_string())),
        Some((None, _)) => (false, Some("the step never got to wait for it".to_string())),
        Some((Some((true, ms)), true)) => (true, Some(format!("seen after {ms} ms"))),
        Some((Some((true, _)), false)) => {
            (false, Some("the guest saw it, but not among the step's kernel lines".into()))
        }
        Some((Some((false, ms)), _)) => (false, Some(format!("not seen in {ms} ms"))),
    };
    Check { step: name.to_string(), description, held, detail }
}

/// The last three lines a step's program printed, as the verdict shows
/// them: `its last lines: a | b | c`, or `it printed nothing`.
fn last_lines(record: Option<&step::StepRecord>, t: &Transcript) -> String {
    let last: Vec<&str> = record.map(|r| t.output_lines(r).collect()).unwrap_or_default();
    match last.len() {
        0 => "it printed nothing".to_string(),
        n => format!("its last lines: {}", last[n.saturating_sub(3)..].join(" | ")),
    }
}

impl Expectations {
    /// What a wait or stop step that did not finish says of its background
    /// program: it was still running when the run ended (the step timeout,
    /// or the run's end, stopped the guest and the program with it), with
    /// what it printed by then (the guest reports its lines as they come);
    /// or, for such a step that never began, that its output was never read.
    /// `None` for any other step, and for one that finished.
    pub fn unfinished_wait(&self, name: &str, t: &Transcript) -> Option<String> {
        unfinished_wait(self.entry_for(name).filter(|e| e.name == name)?, name, t)
    }
}

/// [`Expectations::unfinished_wait`], for the step `name` of entry `exp`.
fn unfinished_wait(exp: &StepExpectation, name: &str, t: &Transcript) -> Option<String> {
    let bg = exp.wait.as_deref()?;
    match t.step(name) {
        Some(r) if r.rc.is_none() => Some(format!(
            "{bg} was still running when the run ended, and was killed with the guest; {}",
            last_lines(Some(r), t)
        )),
        None if t.step(bg).is_some() => {
            Some(format!("{bg} was started in the background; the run ended before this step read its output"))
        }
        _ => None,
    }
}

/// A `stop` step: how the program ended, with its last lines (what a user
/// reads first when a stopped app's output lacks a line).
fn stop_check(name: &str, bg: &str, record: Option<&step::StepRecord>, t: &Transcript) -> Check {
    let how = record.and_then(|r| r.stopped);
    let said = match how {
        Some(BackgroundEnd::Exited) => "had already exited".to_string(),
        Some(BackgroundEnd::Int) => "ended on SIGINT".to_string(),
        Some(BackgroundEnd::Term) => "ignored SIGINT and ended on SIGTERM".to_string(),
        Some(BackgroundEnd::Kill) => "ignored SIGINT and SIGTERM and was killed (SIGKILL)".to_string(),
        None => "was never stopped".to_string(),
    };
    let lines = last_lines(record, t);
    Check {
        step: name.to_string(),
        description: format!("{name} stops {bg}"),
        held: how.is_some(),
        detail: Some(format!("{bg} {said}; {lines}")),
    }
}

fn ran_checks(name: &str, got: Option<i32>, started: bool, exit: i32) -> [Check; 2] {
    [
        Check {
            step: name.to_string(),
            description: format!("{name} ran to completion"),
            held: got.is_some(),
            detail: match (started, got) {
                (false, _) => Some("the step never started".into()),
                (true, None) => Some("the step started but never finished".into()),
                _ => None,
            },
        },
        Check {
            step: name.to_string(),
            description: format!("{name} exits {exit}"),
            held: got == Some(exit),
            detail: match got {
                Some(rc) if rc != exit => Some(format!("it exited {rc}")),
                None => Some("no exit status was reported".into()),
                _ => None,
            },
        },
    ]
}

/// That step `name` ended with the board reset: the virtual board says its
/// watchdog did it; a real board only that it started over (its banner).
fn reset_check(name: &str, t: &Transcript) -> Check {
    let reset = t
        .board_changes()
        .into_iter()
        .any(|c| (c.part == "watchdog" || c.part == "system") && c.state == "reset" && c.step.as_deref() == Some(name));
    Check {
        step: name.to_string(),
        description: format!("{name} ends in a reset by the watchdog"),
        held: reset,
        detail: (!reset).then(|| "the board was not reset in this step".to_string()),
    }
}

/// Checks that `patterns` match `lines` in order.
fn in_order(checks: &mut Vec<Check>, step: &str, what: &str, patterns: &[Pattern], lines: &[&str], noun: &str) {
    let mut from = 0;
    for p in patterns {
        let description = format!("{what} {p}");
        match lines[from..].iter().position(|l| p.matches(l)) {
            Some(k) => {
                from += k + 1;
                checks.push(Check { step: step.to_string(), description, held: true, detail: None });
            }
            None => {
                let detail = if from > 0 && lines[..from].iter().any(|l| p.matches(l)) {
                    "it appeared, but not after the previous expected line".to_string()
                } else {
                    format!("not among the {} {noun} the step printed", lines.len())
                };
                checks.push(Check { step: step.to_string(), description, held: false, detail: Some(detail) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: &str = "00000000000000aa";

    fn transcript() -> Transcript {
        Transcript::from_log(
            &"[ 2.0] @@N begin insmod\n\
             [ 2.1] process:insmod\n\
             [ 2.1] second\n\
             [ 2.3] @@N end insmod rc=0\n\
             [ 2.4] @@N begin app\n\
             [ 2.4] hello_misc: write ping\n\
             [ 2.4] @@N out app app: got pong\n\
             [ 2.4] @@N end app rc=0\n\
             [ 2.5] @@N begin rmmod\n\
             [ 2.6] mmc exit!\n\
             [ 2.7] @@N end rmmod rc=0\n\
             [ 2.8] @@N begin gone\n\
             [ 2.9] @@N end gone rc=0\n"
                .replace("@@N", &format!("@@harness {N}")),
            N,
        )
    }

    fn planned() -> Vec<String> {
        ["insmod", "app", "rmmod", "gone", "leaks"].map(String::from).to_vec()
    }

    fn failed(checks: &[Check]) -> Vec<&str> {
        checks.iter().filter(|c| !c.held).map(|c| c.description.as_str()).collect()
    }

    /// Every expect.toml in the repository (kmod/, fixtures/, …; not
    /// build output), found by walking the tree, not listed.
    #[test]
    fn every_expectations_file_in_the_tree_parses() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let (p, name) = (e.path(), e.file_name());
                if e.file_type().unwrap().is_dir() && name != "target" && name != ".git" {
                    walk(&p, out);
                } else if name == "expect.toml" {
                    out.push(p);
                }
            }
        }
        let root = crate::repo_root();
        let mut found = Vec::new();
        walk(&root, &mut found);
        let rel: Vec<String> = found.iter().map(|p| p.strip_prefix(&root).unwrap().display().to_string()).collect();
        for want in ["kmod/expect.toml", "kmod/c-twin/expect.toml", "fixtures/lessons/misc/expect.toml"] {
            assert!(rel.iter().any(|r| r == want), "the walk missed {want}: {rel:?}");
        }
        for (p, r) in found.iter().zip(&rel) {
            let text = std::fs::read_to_string(p).unwrap();
            Expectations::parse(&text, r).unwrap_or_else(|e| panic!("{e:#}"));
        }
    }

    /// `[board] stock-drivers`: off unless the file says so; a misspelt
    /// key fails at parse, naming the field.
    #[test]
    fn the_board_table_says_whether_the_stock_drivers_hold_their_pins() {
        let on = Expectations::parse("[board]\nstock-drivers = true\n", "e.toml").unwrap();
        assert!(on.stock_drivers);
        assert!(!Expectations::parse("[board]\n", "e.toml").unwrap().stock_drivers);
        assert!(!Expectations::parse("", "e.toml").unwrap().stock_drivers);
        assert!(!Expectations::defaults().stock_drivers);
        let typo = Expectations::parse("[board]\nstock_drivers = true\n", "e.toml").unwrap_err().to_string();
        assert!(typo.contains("stock-drivers"), "{typo}");
    }

    #[test]
    fn passing_transcript_holds_every_check() {
        let e = Expectations::parse(
            "programs = ['app.c']\n\
             [[step]]\nname='insmod'\nargs='count=3'\nexpect=[{line='process:insmod'},{regex='^sec'}]\n\
             [[step]]\nname='app'\nrun='app \
                 /dev/hello_misc'\nstdout=[{line='app: got pong'}]\nexpect=[{line='hello_misc: write ping'}]\n\
             [[step]]\nname='rmmod'\nexpect=[{line='mmc exit!'}]\n",
            "e.toml",
        )
        .unwrap();
        assert_eq!(e.programs, ["app.c"]);
        assert_eq!(e.commands().count(), 1);
        let checks = e.evaluate(&planned(), &transcript());
        // insmod 2+2, app 2+1+1, rmmod 2+1, gone 2 (defaults); no leaks step ran.
        assert_eq!(checks.len(), 13, "{checks:#?}");
        assert!(failed(&checks).is_empty(), "{checks:?}");
    }

    #[test]
    fn output_and_kernel_lines_are_kept_apart() {
        let e = Expectations::parse(
            "[[step]]\nname='app'\nrun='app'\nstdout=[{line='hello_misc: write ping'}]\n\
             expect=[{line='app: got pong'}]\n",
            "e.toml",
        )
        .unwrap();
        let checks = e.evaluate(&planned(), &transcript());
        assert_eq!(
            failed(&checks),
            ["app prints line \"app: got pong\"", "app outputs line \"hello_misc: write ping\""]
        );
    }

    #[test]
    fn defaults_check_every_planned_step() {
        let checks = Expectations::defaults().evaluate(&planned(), &transcript());
        assert!(failed(&checks).is_empty(), "{checks:?}");
        assert_eq!(checks.len(), 8);
        let mut t = transcript();
        t.push(&format!("@@harness {N} begin leaks"));
        let checks = Expectations::defaults().evaluate(&planned(), &t);
        assert_eq!(failed(&checks), ["leaks ran to completion", "leaks exits 0"]);
    }

    #[test]
    fn order_exit_and_missing_steps_fail_with_reasons() {
        let e = Expectations::parse(
            "[[step]]\nname='insmod'\nexit=1\nexpect=[{line='second'},{line='process:insmod'}]\n",
            "e.toml",
        )
        .unwrap();
        let mut planned = planned();
        planned.insert(1, "other".into());
        let checks = e.evaluate(&planned, &transcript());
        assert_eq!(
            failed(&checks),
            vec!["insmod exits 1", "insmod prints line \"process:insmod\"", "other ran to completion", "other exits 0"]
        );
        let order = checks.iter().find(|c| c.description.contains("process:insmod")).unwrap();
        assert_eq!(order.detail.as_deref(), Some("it appeared, but not after the previous expected line"));
        let exit = checks.iter().find(|c| c.description == "insmod exits 1").unwrap();
        assert_eq!(exit.detail.as_deref(), Some("it exited 0"));
    }

    /// A `reload` step: a command step's name, nothing but its reload (and
    /// insmod's keys), before the unload; judged by its own entry.
    #[test]
    fn a_reload_step_is_checked_and_judged_as_its_own() {
        let err = |text: &str| Expectations::parse(text, "e").unwrap_err().to_string();
        let ok = Expectations::parse("[[step]]\nname='again'\nreload=true\nargs='n=2'\nexpect=[{line='up 2'}]\n", "e")
            .unwrap();
        assert_eq!(ok.steps[0].reload, Some(Reload::All));
        assert_eq!(ok.commands().count(), 1, "a reload step is planned where it is written");
        let m = Expectations::parse("[[step]]\nname='again'\nreload='hello'\n", "e").unwrap();
        assert_eq!(m.steps[0].reload, Some(Reload::Module("hello".into())));
        assert!(err("[[step]]\nname='again'\nreload=false\n").contains("reloads nothing"));
        assert!(err("[[step]]\nname='again'\nreload=true\nrun='x'\n").contains("drop `run`"));
        assert!(err("[[step]]\nname='insmod'\nreload=true\n").contains("named like a command step"));
        assert!(err("[[step]]\nname='rmmod'\n[[step]]\nname='again'\nreload=true\n")
            .contains("put it before the rmmod and gone entries"));
        let n = |s: &str| s.replace("@@N", &format!("@@harness {N}"));
        let t = Transcript::from_log(&n("@@N begin again\nup 1\n@@N end again rc=0\n"), N);
        let checks = ok.evaluate(&["again".to_string()], &t);
        assert_eq!(failed(&checks), ["again prints line \"up 2\""]);
        assert!(checks.iter().any(|c| c.description == "again exits 0" && c.held));
    }

    #[test]
    fn a_kind_entry_covers_every_module_and_a_named_one_its_own() {
        let n = |s: &str| s.replace("@@N", &format!("@@harness {N}"));
        let t = Transcript::from_log(
            &n("@@N begin insmod:a\nA up\n@@N end insmod:a rc=0\n@@N begin insmod:b\nB up\n@@N end insmod:b rc=1\n"),
            N,
        );
        let planned: Vec<String> = ["insmod:a", "insmod:b"].map(String::from).to_vec();
        let e = Expectations::parse("[[step]]\nname='insmod'\nexpect=[{line='A up'},{line='B up'}]\n", "e").unwrap();
        let checks = e.evaluate(&planned, &t);
        assert_eq!(failed(&checks), ["insmod:b exits 0"]);
        let e = Expectations::parse("[[step]]\nname='insmod:b'\nexit=1\nexpect=[{line='A up'}]\n", "e").unwrap();
        assert_eq!(failed(&e.evaluate(&planned, &t)), ["insmod:b prints line \"A up\""]);
    }

    #[test]
    fn until_and_stop_are_checked_before_anything_runs() {
        let err = |text: &str| Expectations::parse(text, "e.toml").unwrap_err().to_string();
        let bg = "[[step]]\nname='app'\nrun='app'\nbackground=true\n";
        let ok = Expectations::parse(
            &format!(
                "{bg}[[step]]\nname='k'\nclick='K1'\nuntil={{line='down',within_ms=2000}}\n\
                 [[step]]\nname='c'\nstop='app'\nuntil={{output='app',regex='^got [0-9]+'}}\n"
            ),
            "e.toml",
        )
        .unwrap();
        let stop = &ok.steps[2];
        assert!(stop.stop && stop.wait.as_deref() == Some("app") && !stop.exit_given, "{stop:?}");
        assert_eq!(ok.steps[1].until.as_ref().map(|u| u.within_ms), Some(2000));
        assert_eq!(stop.until.as_ref().map(|u| u.within_ms), Some(UNTIL_DEFAULT_MS));
        assert!(
            err("[[step]]\nname='insmod'\nuntil={line='x'}\n").contains("`until` is for command, board and wait steps")
        );
        assert!(err("[[step]]\nname='a'\nrun='x'\nuntil={line='x',within_ms=60000}\n").contains("give 1 to 20000"));
        assert!(err("[[step]]\nname='a'\nrun='x'\nuntil={line='x',regex='y'}\n")
            .contains("exactly one of `line` or `regex`"));
        assert!(
            err("[[step]]\nname='a'\nrun='x'\nuntil={regex='\\d+'}\n").contains("awk (POSIX ERE), which has no \\d")
        );
        assert!(err("[[step]]\nname='a'\nrun='x'\nuntil={output='app',line='x'}\n")
            .contains("name a background step before this one"));
        assert!(err(&format!("{bg}[[step]]\nname='c'\nstop='app'\nwait='app'\n")).contains("drop `wait`"));
        assert!(err(&format!("{bg}[[step]]\nname='c'\nwait='app'\n[[step]]\nname='d'\nstop='app'\n"))
            .contains("already waits"));
    }

    #[test]
    fn bad_files_name_the_place_and_the_fix() {
        let err = |text: &str| Expectations::parse(text, "e.toml").unwrap_err().to_string();
        let e = err("[[step]]\nname='insmod'\nexpect=[{regex='('}]\n");
        assert!(e.contains("e.toml: step 1 (\"insmod\"): expect[0]: invalid regex \"(\""), "{e}");
        let e = err("[[step]]\nname='insmd'\n");
        assert!(e.contains("unknown step; a command step needs `run"), "{e}");
        let e = err("[[step]\n");
        assert!(e.starts_with("e.toml: invalid expectations"), "{e}");
        let e = err("[[step]]\nname='insmod'\nexpect=[{line='a', regex='b'}]\n");
        assert!(e.contains("exactly one of `line` or `regex`"), "{e}");
        assert!(err("[[step]]\nname='rmmod'\nargs='x=1'\n").contains("for insmod steps only"));
        assert!(err("[[step]]\nname='insmod'\nrun='ls'\n").contains("`run` is for command steps"));
        // Background steps and the steps that wait for them.
        let bg = "[[step]]\nname='app'\nrun='app'\nbackground=true\n";
        assert!(err(bg).contains("no step waits for it: add one with `wait = \"app\"`"));
        assert!(err(&format!("{bg}[[step]]\nname='w'\nwait='app'\nrun='x'\n")).contains("runs nothing itself"));
        assert!(err("[[step]]\nname='w'\nwait='app'\n").contains("no background step of that name comes before it"));
        assert!(err("[[step]]\nname='app'\nrun='a'\n[[step]]\nname='w'\nwait='app'\n")
            .contains("does not run in the background"));
        assert!(err(&format!("{bg}[[step]]\nname='w'\nwait='app'\n[[step]]\nname='v'\nwait='app'\n"))
            .contains("another step already waits"));
        assert!(err(
            "[[step]]\nname='app'\nrun='a'\nbackground=true\nstdout=[{line='x'}]\n[[step]]\nname='w'\nwait='app'\n"
        )
        .contains("put `exit` and `stdout` there"));
        assert!(err("[[step]]\nname='insmod'\nbackground=true\n").contains("for command steps"));
        let ok = Expectations::parse(&format!("{bg}[[step]]\nname='w'\nwait='app'\nexit=1\n"), "e.toml").unwrap();
        assert_eq!(ok.commands().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["app", "w"]);
        assert!(err("[[step]]\nname='my app'\nrun='ls'\n").contains("one word"));
        assert!(err("programs=['../x.c']\n").contains("programs[0]"));
        assert!(err("programs=['app.sh']\n").contains("programs[0]"));
        assert!(err("[[step]]\nname='app'\nrun='a'\n[[step]]\nname='app'\nrun='b'\n").contains("a second entry"));
    }

    /// The second load is judged apart, by the same entry: its lines must
    /// appear again in its own step, and a second insmod that fails says
    /// its first error.
    #[test]
    fn the_second_load_is_judged_apart_and_says_its_first_error() {
        let t = Transcript::from_log(
            &"@@N begin insmod\nwq: up\n@@N end insmod rc=0\n@@N begin rmmod\n@@N end rmmod rc=0\n\
              @@N begin insmod#2\nwq: register_chrdev_region: -16\n\
              @@N out insmod#2 insmod: can't insert 'wq.ko': Device or resource busy\n@@N end insmod#2 rc=1\n"
                .replace("@@N", &format!("@@harness {N}")),
            N,
        );
        let e = Expectations::parse("[[step]]\nname='insmod'\nexpect=[{line='wq: up'}]\n", "e").unwrap();
        assert!(e.reload, "a second load by default");
        let planned: Vec<String> = ["insmod", "rmmod", "insmod#2"].map(String::from).to_vec();
        let checks = e.evaluate(&planned, &t);
        assert_eq!(failed(&checks), ["insmod#2 exits 0", "insmod#2 prints line \"wq: up\""]);
        let exit = checks.iter().find(|c| c.description == "insmod#2 exits 0").unwrap();
        assert_eq!(
            exit.detail.as_deref(),
            Some("it exited 1, the second time: insmod: can't insert 'wq.ko': Device or resource busy")
        );
        assert!(!Expectations::parse("reload = false\n", "e").unwrap().reload);
        // rmmod's lines are the first round's: the second rmmod is judged by its exit.
        let e = Expectations::parse("[[step]]\nname='rmmod'\nexpect=[{line='2 presses'}]\n", "e").unwrap();
        let checks = e.evaluate(&["rmmod".to_string(), "rmmod#2".to_string()], &t);
        assert_eq!(
            failed(&checks),
            ["rmmod prints line \"2 presses\"", "rmmod#2 ran to completion", "rmmod#2 exits 0"]
        );
    }

    /// An interrupt the board raised that every handler disowned fails the
    /// step it was raised in, once; one that was handled adds no check.
    #[test]
    fn an_interrupt_nobody_handled_fails_its_step() {
        let t = Transcript::from_log(
            &"@@N begin press\n@@N board 2.000100 XEINT26 unhandled: IRQ_NONE from its handlers\n\
              @@N board 2.000200 XEINT26 unhandled: IRQ_NONE from its handlers\n@@N board 2.000300 XEINT27 handled \
                  0.1 ms after the edge\n\
              @@N end press rc=0\n"
                .replace("@@N", &format!("@@harness {N}")),
            N,
        );
        let checks = Expectations::defaults().evaluate(&["press".to_string()], &t);
        assert_eq!(failed(&checks), ["the interrupt on XEINT26 in press is handled"]);
        assert!(checks.iter().all(|c| !c.description.contains("XEINT27")), "{checks:?}");
    }

    #[test]
    fn a_command_after_rmmod_runs_after_unloading() {
        let e = Expectations::parse(
            "[[step]]\nname='before'\nrun='a'\n[[step]]\nname='rmmod'\n[[step]]\nname='after'\nrun='b'\n",
            "e",
        )
        .unwrap();
        let flags: Vec<(String, bool)> = e.commands().map(|s| (s.name.clone(), s.after_unload)).collect();
        assert_eq!(flags, [("before".to_string(), false), ("after".to_string(), true)]);
    }
}
