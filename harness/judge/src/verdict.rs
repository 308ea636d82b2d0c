//! The verdict: steps, expectations and kernel reports turned into one outcome,
//! with enough of the console to see why.
//!
//! A crash or a timeout is never reported as a mere failure: FAILED means the
//! module ran and did the wrong thing; CRASHED means the kernel (or the guest)
//! died under it; TIMED-OUT means nothing more came.

use crate::access::Unmodelled;
use crate::event::{Event, EventKind};
use crate::expect::{Check, Expectations};
use crate::ktap::{self, Counts, Ktap};
use crate::lack::Lack;
use crate::marker::StepId;
use crate::port::Port;
use crate::step::Transcript;
use crate::symbols::ModuleSymbols;
use serde::Serialize;
use std::fmt::{self, Write as _};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum Outcome {
    Passed,
    Failed,
    Crashed,
    TimedOut,
    /// The steps reached hardware the emulated board does not have: neither
    /// passed (the writes went nowhere) nor failed (on the board they may work).
    NeedsTheBoard,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Passed => "PASSED",
            Outcome::Failed => "FAILED",
            Outcome::Crashed => "CRASHED",
            Outcome::TimedOut => "TIMED-OUT",
            Outcome::NeedsTheBoard => "NEEDS-THE-BOARD",
        })
    }
}

/// At most this many lines of the register dump are shown (enough for eight
/// CPUs' `info registers`); the dump is kept whole in the JSON report.
pub const REGISTER_LINES: usize = 400;

/// How the guest's run ended, as the supervisor saw it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "how", rename_all = "kebab-case")]
pub enum RunEnd {
    /// `/init` reported done and the guest powered off.
    Completed,
    /// The kernel panicked; the harness stopped QEMU.
    Panicked,
    /// QEMU exited (or the console closed) before `/init` was done.
    ExitedEarly { status: Option<i32> },
    /// The whole run outlived `--timeout`.
    TimedOut { after_secs: u64 },
    /// One step outlived the per-step timeout: its name, and its unit when
    /// it is another unit's than the one judged (see [`StepId`]).
    StepTimedOut {
        step: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
        after_secs: u64,
    },
    /// The console said nothing for too long.
    Silent { after_secs: u64 },
    /// The virtual board's watchdog reset the board (its marker); the
    /// harness stopped QEMU.
    Reset,
    /// The unit's modules or programs did not build, so it never ran; the
    /// other units of the boot did. The build's error, whole.
    NotBuilt { error: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    pub name: String,
    pub exit: Option<i32>,
    pub seconds: Option<f64>,
    /// The guest's printk timestamps of the step's first and last lines
    /// (its begin and end markers), in seconds since its boot.
    pub guest_begin: Option<f64>,
    pub guest_end: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// One sentence on why, when the outcome is not PASSED.
    pub reason: Option<String>,
    pub end: RunEnd,
    pub steps: Vec<StepSummary>,
    pub checks: Vec<Check>,
    pub events: Vec<Event>,
    /// Kernel reports about something other than the module under test
    /// (printed before it was loaded, or leak suspects of the kernel itself):
    /// shown, but not failing the run.
    pub unrelated: Vec<Event>,
    /// KUnit results, when the module printed KTAP.
    pub ktap: Option<KtapSummary>,
    /// `info registers` from the QEMU monitor, taken before killing a hung guest.
    pub registers: Option<String>,
    /// The guest memory dump of a hung or panicked guest: its path, or why
    /// there is none.
    pub memory: Option<String>,
    /// Device accesses of the steps that the emulated board does not model.
    pub unmodelled: Vec<Unmodelled>,
    /// The failed expectations of steps at or after the first of those
    /// accesses, which the board may change: they do not fail the run (its
    /// outcome is NEEDS-THE-BOARD unless something before them failed).
    pub board_may_change: Vec<String>,
    /// What changed on the virtual board (an LED lit, a button pressed),
    /// each with the step it happened in.
    pub board: Vec<crate::board_parts::BoardChange>,
    /// The module's requests of what the stock image's drivers hold
    /// (judge/stock.rs), and whether the virtual board held them
    /// (`[board] stock-drivers = true`).
    pub stock: Vec<crate::stock::StockNote>,
    pub stock_drivers: bool,
    /// No expectations file was given: the defaults were checked.
    pub defaults: bool,
    /// Known kernel changes since Linux 3.5 that explain a failure.
    pub explanations: Vec<String>,
    /// The module API the module was built for ("3.5" or "native").
    pub api: String,
    /// Under `--api 3.5`: each 3.5 API the module used that the test kernel
    /// lacks, which the layer gave back: the port list, whatever the outcome.
    pub ports: Vec<Port>,
    /// Under `--api 3.5`: each name the module's own code uses that the
    /// board's Linux 3.5 does not provide. Not empty, the run is not PASSED.
    pub lacks: Vec<Lack>,
    /// Console lines not kept in memory (a flood); they are in the log.
    pub dropped_lines: usize,
    /// `check --coverage`: the module's line coverage (gcov.rs), filled in
    /// by the runner after the judging; information, never a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<crate::gcov::Coverage>,
    /// The lines each failed step printed (every step's, with the defaults),
    /// for the report.
    #[serde(skip)]
    excerpts: Vec<(String, Vec<String>)>,
    /// The last console lines, shown when the guest crashed or hung.
    #[serde(skip)]
    tail: Vec<String>,
    pub console_log: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct KtapSummary {
    pub counts: Counts,
    pub failures: Vec<String>,
    pub results: Ktap,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }
}

impl RunEnd {
    /// The guest stopped making progress (and is still running).
    pub fn is_hang(&self) -> bool {
        matches!(self, RunEnd::StepTimedOut { .. } | RunEnd::Silent { .. } | RunEnd::TimedOut { .. })
    }
}

/// What the judge needs besides the transcript.
pub struct Context {
    pub console_log: PathBuf,
    /// The unit judged, when several shared the boot: its pids tie leaks
    /// to its modules.
    pub unit: Option<String>,
    /// The names the modules under test registered, to tell their reports
    /// from the kernel's own; empty when unknown.
    pub modules: Vec<String>,
    pub symbols: Vec<ModuleSymbols>,
    pub registers: Option<String>,
    pub memory: Option<String>,
    /// The kernel's debug information, when it was built with it: source
    /// lines for the kernel's frames too.
    pub kernel_lines: Option<std::rc::Rc<crate::lines::KernelLines>>,
    /// The unit's steps' accesses to hardware QEMU does not model.
    pub unmodelled: Vec<Unmodelled>,
    /// Known kernel changes that explain what happened (changes.rs).
    pub explain: Vec<String>,
    /// The module API it was built for, and the port list (api.rs).
    pub api: String,
    pub ports: Vec<Port>,
    /// Under `--api 3.5`: what the module uses that the board's 3.5 lacks
    /// (board_api.rs); a run that passed here fails with them.
    pub lacks: Vec<Lack>,
}

impl Context {
    pub fn new(console_log: PathBuf) -> Context {
        Context {
            console_log,
            unit: None,
            modules: Vec::new(),
            symbols: Vec::new(),
            registers: None,
            memory: None,
            kernel_lines: None,
            unmodelled: Vec::new(),
            explain: Vec::new(),
            api: "native".into(),
            ports: Vec::new(),
            lacks: Vec::new(),
        }
    }
}

/// The outcome and its reason, the first real failure as the headline: a
/// timeout, then a crash, then a failure by a kernel report (leaks, other
/// reports), then a failure of KUnit or of an expectation in a step before
/// the first that reached hardware the emulated board lacks, then that
/// hardware (NEEDS-THE-BOARD), then any other failed expectation. So a crash
/// or a hang is never reported as less than it is, a broken module is never
/// hidden behind "needs the board", and an expectation that only failed at
/// or after the missing hardware (the module read zeros there) is not held
/// against the module: the board decides it. Whatever the outcome, the
/// hardware the run needed is named with it (see docs/verdicts.md).
fn decide(
    t: &Transcript,
    end: &RunEnd,
    expectations: &Expectations,
    events: &[Event],
    ktap: Option<&KtapSummary>,
    failures: &Failures,
) -> (Outcome, Option<String>) {
    let (outcome, reason) = match first_failure(t, end, expectations, events, ktap, failures) {
        Some(first) => first,
        None => match failures.unmodelled.first() {
            Some(a) => {
                let more = if failures.unmodelled.len() > 1 {
                    format!(" (and {} more)", failures.unmodelled.len() - 1)
                } else {
                    String::new()
                };
                let mut r = format!("hardware the emulated board does not have: {a}{more}");
                if !failures.board_may_change.is_empty() {
                    let _ = write!(
                        r,
                        "; {} expectation(s) at or after that step failed, which the board may change: {}",
                        failures.board_may_change.len(),
                        failures.board_may_change.join("; ")
                    );
                }
                return (Outcome::NeedsTheBoard, Some(r));
            }
            None => return (Outcome::Passed, None),
        },
    };
    // The hardware the run needed, listed with the failure that outranks it.
    let reason = match failures.unmodelled.first() {
        Some(a) => {
            let more = if failures.unmodelled.len() > 1 {
                format!(", and {} more", failures.unmodelled.len() - 1)
            } else {
                String::new()
            };
            format!("{reason} (the run also needed hardware the emulated board does not have: {a}{more})")
        }
        None => reason,
    };
    (outcome, Some(reason))
}

/// The failed expectations split by the first step that reached hardware
/// the emulated board lacks: those before it are the module's own; those
/// at or after it may be that hardware's absence.
pub struct Failures<'a> {
    pub unmodelled: &'a [Unmodelled],
    /// Failed checks of steps before the first access (every failed check
    /// when there was none), in step order.
    pub real: Vec<&'a Check>,
    /// The descriptions of the others.
    pub board_may_change: Vec<String>,
}

impl<'a> Failures<'a> {
    /// `planned` gives the steps' order (a step's place in the transcript
    /// where the plan does not name it).
    pub fn split(
        t: &Transcript,
        planned: &[String],
        checks: &'a [Check],
        unmodelled: &'a [Unmodelled],
    ) -> Failures<'a> {
        let order = |step: &str| {
            planned
                .iter()
                .position(|p| p == step)
                .or_else(|| t.steps.iter().position(|s| s.name == step).map(|i| planned.len() + i))
                .unwrap_or(usize::MAX)
        };
        let first_hw = unmodelled.iter().map(|a| order(&a.step)).min();
        let mut failed: Vec<&Check> = checks.iter().filter(|c| !c.held).collect();
        failed.sort_by_key(|c| order(&c.step));
        let (real, later): (Vec<&Check>, Vec<&Check>) =
            failed.into_iter().partition(|c| first_hw.is_none_or(|h| order(&c.step) < h));
        Failures { unmodelled, real, board_may_change: later.iter().map(|c| c.description.clone()).collect() }
    }
}

/// What a report says of code or data its module left behind: ` (into the
/// unloaded module's code: blink_fn [led_blink])`, ` (into the unloaded
/// module's data: flash_tasklet [led_flash]; run by tasklet_action_common:
/// a tasklet still scheduled after rmmod; …)`, or nothing.
fn into(ev: &Event) -> String {
    let code = ev.unloaded_code.as_ref().map(|f| format!("the unloaded module's code: {f}"));
    let data = ev.unloaded_data.as_ref().map(|o| format!("the unloaded module's data: {o}"));
    let named: Vec<String> = [code, data].into_iter().flatten().collect();
    if named.is_empty() {
        return String::new();
    }
    let left = crate::deferred::left_scheduled(&ev.block).map(|l| format!("; {l}")).unwrap_or_default();
    format!(" (into {}{left})", named.join("; "))
}

/// Where the stand-in and the board part after a sleep in atomic context.
/// 6.12's scheduler resets the preemption count when it reports "scheduling
/// while atomic"; 3.5's, on the board, leaves it alone. So the module's own
/// preempt_enable() or spin_unlock() after the sleep takes the count below
/// zero here, and until its code returns every interrupt is refused as
/// outside hard-IRQ context: a lost timer tick can hang the step, where the
/// board prints the same report and carries on. The hang is the stand-in's,
/// the report the module's.
const ATOMIC_SLEEP_HANG: &str = "Linux 6.12 resets the preemption count when it reports this and Linux 3.5 does not, \
    so the module's own preempt_enable() or spin_unlock() after the sleep leaves it below zero here and interrupts \
    are refused until its code returns; the board would print the same report and carry on";

/// The note for a step that hung after it slept in atomic context, if it did.
fn after_atomic_sleep(events: &[Event], step: &Option<String>) -> String {
    let Some(step) = step else { return String::new() };
    events
        .iter()
        .find(|e| e.step.as_ref() == Some(step) && e.first_line().starts_with("BUG: scheduling while atomic"))
        .map(|e| format!("; it hung after \"{}\" (console line {}): {ATOMIC_SLEEP_HANG}", e.first_line(), e.line))
        .unwrap_or_default()
}

/// The first failure that is the module's or the kernel's, not the missing
/// hardware's, with its reason; `None` when there is none.
fn first_failure(
    t: &Transcript,
    end: &RunEnd,
    expectations: &Expectations,
    events: &[Event],
    ktap: Option<&KtapSummary>,
    failures: &Failures,
) -> Option<(Outcome, String)> {
    let running = t.current_step().map(|s| s.name.clone());
    // A wait step cut short says what its background program printed.
    let note = |s: &Option<String>| {
        s.as_ref().and_then(|n| expectations.unfinished_wait(n, t)).map(|w| format!(": {w}")).unwrap_or_default()
    };
    let in_step = |s: &Option<String>| s.as_ref().map(|n| format!(" during step {n}")).unwrap_or_default();
    let in_step_noted = |s: &Option<String>| format!("{}{}", in_step(s), note(s));
    let leaks: Vec<&Event> =
        events.iter().filter(|e| matches!(e.kind, EventKind::Kmemleak | EventKind::UnfreedAtUnload)).collect();

    // The first real failure is the headline (issue 34): a guest that
    // oopsed and then hung crashed; the hang is what the crash left (and
    // the run's end may be another unit's, which this unit's reason must
    // not name).
    Some(if let RunEnd::NotBuilt { error } = end {
        let headline = error.lines().find(|l| !l.trim().is_empty()).unwrap_or("no error text");
        (Outcome::Failed, format!("it does not build: {headline}"))
    } else if let Some(crash) = events.iter().find(|e| e.kind.is_crash()) {
        (Outcome::Crashed, format!("{}{}: {}{}", crash.kind, in_step(&crash.step), crash.first_line(), into(crash)))
    } else if let RunEnd::TimedOut { after_secs } = *end {
        let why = after_atomic_sleep(events, &running);
        (Outcome::TimedOut, format!("no progress within {after_secs} s{}{why}", in_step_noted(&running)))
    } else if let RunEnd::StepTimedOut { step, unit, after_secs } = end {
        let id = StepId::new(unit.as_deref(), step);
        let (noted, why) = (note(&Some(step.clone())), after_atomic_sleep(events, &Some(step.clone())));
        (Outcome::TimedOut, format!("step {id} did not finish within {after_secs} s{noted}{why}"))
    } else if let RunEnd::Silent { after_secs } = *end {
        let why = after_atomic_sleep(events, &running);
        (Outcome::TimedOut, format!("the console was silent for {after_secs} s{}{why}", in_step_noted(&running)))
    } else if *end == RunEnd::Reset && !expectations.expects_reset() {
        (Outcome::Crashed, format!("the watchdog reset the board{}", in_step(&running)))
    } else if *end == RunEnd::Panicked {
        (Outcome::Crashed, format!("kernel panic{}", in_step(&running)))
    } else if let RunEnd::ExitedEarly { status } = *end {
        let how = status.map(|s| format!("with status {s}")).unwrap_or_else(|| "without a status".into());
        (Outcome::Crashed, format!("the guest stopped {how} before /init finished{}", in_step(&running)))
    } else if let Some(storm) =
        t.board_changes().into_iter().find(|c| c.part.starts_with("XEINT") && c.state.starts_with("storm"))
    {
        let line = &storm.part;
        (
            Outcome::Failed,
            format!(
                "interrupt storm on {line}: it fired more than 1000 times in a second (its handler \
            never quieted it), and the virtual board masked it{}",
                in_step(&storm.step)
            ),
        )
    } else if !leaks.is_empty() {
        (Outcome::Failed, leak_reason(&leaks))
    } else if let Some(ev) = events.first() {
        (Outcome::Failed, format!("{}{}: {}{}", ev.title(), in_step(&ev.step), ev.headline(), into(ev)))
    } else if let Some(k) = ktap.filter(|k| !k.failures.is_empty() || k.counts.incomplete > 0) {
        let n = k.counts.failed + k.counts.incomplete;
        (Outcome::Failed, format!("KUnit: {n} of {} case(s) failed: {}", k.counts.total(), k.failures.join(", ")))
    } else if let Some((name, planned, got)) = ktap.and_then(|k| k.results.short_plans.first()) {
        (Outcome::Failed, format!("KUnit: {name} planned 1..{planned} but reported {got} result(s)"))
    } else if let Some(c) = failures.real.first() {
        (Outcome::Failed, format!("expectation not met: {}", c.description))
    } else {
        return None;
    })
}

/// A run that passed here, or that only needed the board's hardware, fails
/// when the module uses what the board's 3.5 lacks: it would not build or
/// load there. A worse outcome stays, the list shown beside it.
fn not_on_the_board(outcome: Outcome, reason: Option<String>, lacks: &[Lack]) -> (Outcome, Option<String>) {
    if lacks.is_empty() || !matches!(outcome, Outcome::Passed | Outcome::NeedsTheBoard) {
        return (outcome, reason);
    }
    let names: Vec<String> =
        lacks.iter().map(|l| format!("{} ({})", l.name, l.at.first().map(String::as_str).unwrap_or("?"))).collect();
    let why = format!(
        "uses {} name(s) the board's Linux 3.5 does not give it, so it would not build or load there: {}",
        lacks.len(),
        names.join(", ")
    );
    (Outcome::Failed, Some(why))
}

/// What the leak reports say, the kernel's own check at unload first (it
/// names the line), then kmemleak's.
fn leak_reason(leaks: &[&Event]) -> String {
    let at_unload: Vec<&&Event> = leaks.iter().filter(|e| e.kind == EventKind::UnfreedAtUnload).collect();
    if let Some(first) = at_unload.first() {
        let bytes: u64 = at_unload.iter().filter_map(|e| e.leak_size).sum();
        let at = first.module_symbol.as_deref().unwrap_or("an unknown function");
        // The module was built in the run directory: its file name is the
        // user's.
        let site = first.leak_site.as_deref().map(|s| s.rsplit('/').next().unwrap_or(s)).unwrap_or("?");
        return format!(
            "not freed at unload: {} allocation site(s) still hold {bytes} bytes (as the allocator counts them: whole \
                slab objects, red zones included), the first in {at} at {site}",
            at_unload.len()
        );
    }
    let bytes: u64 = leaks.iter().filter_map(|e| e.leak_size).sum();
    let at = leaks.iter().find_map(|e| e.module_symbol.clone()).unwrap_or_else(|| "an unknown caller".into());
    format!("kmemleak: {} leaked object(s), {bytes} bytes, allocated at {at}", leaks.len())
}

/// Each failed step's window; with the defaults, every step's (a first
/// run with no expectations file shows what the module did).
fn excerpts(t: &Transcript, expectations: &Expectations, checks: &[Check]) -> Vec<(String, Vec<String>)> {
    let mut shown: Vec<&str> = if expectations.defaults {
        t.steps.iter().map(|s| s.name.as_str()).collect()
    } else {
        checks.iter().filter(|c| !c.held).map(|c| c.step.as_str()).collect()
    };
    shown.dedup();
    shown.iter().map(|name| (name.to_string(), t.step(name).map(|s| t.step_excerpt(s)).unwrap_or_default())).collect()
}

/// Debug objects' problems that the kernel found during the unit and did
/// not print: it prints only the first five of a boot, and after those a
/// timer left pending in freed memory is cancelled silently, so its unit
/// would pass. The census's count (debug_objects/stats) against the unit's
/// reports of them fails the census check.
fn unprinted_odebug(checks: &mut [Check], planned: &[String], t: &Transcript, events: &[Event]) {
    let Some((_, c)) = crate::expect::census_comparison(planned, t) else { return };
    let printed = events.iter().filter(|e| e.class_line.as_deref().is_some_and(|l| l.contains("ODEBUG: "))).count();
    let unprinted = c.odebug_found().saturating_sub(printed as u64);
    let Some(check) = checks.iter_mut().find(|k| k.description == crate::expect::NOTHING_LEFT) else { return };
    if unprinted == 0 {
        return;
    }
    let text = format!(
        "the kernel's debug objects found {unprinted} problem(s) in this unit that it did not print (it prints \
        only the first five of a boot): a timer, hrtimer or work item left pending in freed memory, or an object \
        misused"
    );
    check.held = false;
    check.detail = Some(match check.detail.take() {
        Some(d) => format!("{d}; {text}"),
        None => text,
    });
}

/// Judges one run of the steps `planned`.
pub fn judge(t: &Transcript, expectations: &Expectations, planned: &[String], end: RunEnd, ctx: Context) -> Verdict {
    let mut checks = expectations.evaluate(planned, t);
    let (events, unrelated) = reports(t, &ctx);
    unprinted_odebug(&mut checks, planned, t, &events);
    let ktap = first_load_ktap(t);
    let failures = Failures::split(t, planned, &checks, &ctx.unmodelled);
    let board_may_change = if failures.unmodelled.is_empty() { Vec::new() } else { failures.board_may_change.clone() };
    let (outcome, reason) = decide(t, &end, expectations, &events, ktap.as_ref(), &failures);
    let (outcome, reason) = not_on_the_board(outcome, reason, &ctx.lacks);

    let excerpts = excerpts(t, expectations, &checks);
    let console_log = ctx.console_log;
    let (registers, memory) = (ctx.registers, ctx.memory);
    let unmodelled = ctx.unmodelled;
    let tail = if matches!(outcome, Outcome::Crashed | Outcome::TimedOut) {
        t.tail(25).iter().map(|l| l.shown()).collect()
    } else {
        Vec::new()
    };
    let steps = step_summaries(t);
    Verdict {
        outcome,
        reason,
        end,
        steps,
        checks,
        events,
        unrelated,
        ktap,
        registers,
        memory,
        unmodelled,
        board_may_change,
        board: t.board_changes(),
        stock: crate::stock::notes(&t.board_changes()),
        stock_drivers: expectations.stock_drivers,
        defaults: expectations.defaults,
        explanations: ctx.explain,
        api: ctx.api,
        ports: ctx.ports,
        lacks: ctx.lacks,
        dropped_lines: t.dropped,
        coverage: None,
        excerpts,
        tail,
        console_log,
    }
}

/// The kernel's reports in `t`, located in the module's and the kernel's
/// sources: those that count, and those that do not (printed before the
/// first step, or a leak suspect nothing ties to the unit's modules).
fn reports(t: &Transcript, ctx: &Context) -> (Vec<Event>, Vec<Event>) {
    let symbols = &ctx.symbols;
    // Reports printed before the first step began come from a kernel that
    // had not seen the module yet (under load, the debug kernel's own workers
    // can trip the hung-task detector while it boots).
    let first_step_line = t.lines.iter().find(|l| l.step.is_some()).map(|l| l.number);
    let name = |a| symbols.iter().find_map(|s| s.name(a));
    let name_data = |a| symbols.iter().find_map(|s| s.name_data(a));
    let locate = |module: &str, function: &str, offset, ret| match (module, &ctx.kernel_lines) {
        ("", Some(kernel)) => kernel.at_symbol(function, offset, ret),
        ("", None) => Vec::new(),
        _ => symbols
            .iter()
            .find(|s| s.module() == module)
            .map(|s| s.source_of(function, offset, ret))
            .unwrap_or_default(),
    };
    let mut scanned = crate::event::scan(t, &name);
    for e in &mut scanned {
        e.locate(&name, &locate);
        e.name_unloaded_data(&name_data);
    }
    scanned.into_iter().partition(|e| {
        let before_module = first_step_line.is_some_and(|first| e.line < first);
        // A leak suspect that no frame or task ties to the module is the
        // kernel's own noise too; every other report counts.
        let foreign_leak = e.kind == EventKind::Kmemleak
            && !ctx.modules.is_empty()
            && !ctx.modules.iter().any(|m| e.involves(ctx.unit.as_deref(), m, &t.pids));
        !(before_module || foreign_leak)
    })
}

/// The KUnit results of the first load.
fn first_load_ktap(t: &Transcript) -> Option<KtapSummary> {
    // KUnit's cases run at each load: those of the first are counted (the
    // second load's, run again, would hide a short plan among twice as many).
    let first_load =
        |l: &&crate::step::ConsoleLine| l.step.is_none_or(|i| crate::step::round(&t.steps[i].name).is_none());
    let parsed = ktap::parse(t.lines.iter().filter(first_load).map(|l| l.message.as_str()));
    (!parsed.is_empty()).then(|| KtapSummary { counts: parsed.counts(), failures: parsed.failures(), results: parsed })
}

fn step_summaries(t: &Transcript) -> Vec<StepSummary> {
    t.steps
        .iter()
        .map(|s| StepSummary {
            name: s.name.clone(),
            exit: s.rc,
            seconds: s.duration(),
            guest_begin: s.started_at,
            guest_end: s.ended_at,
        })
        .collect()
}

/// `function+off/len [module] file.c:LINE`, then the functions it was
/// inlined into, outward.
fn write_frame(s: &mut String, f: &crate::event::SourceFrame) {
    let Some((first, outer)) = f.lines.split_first() else { return };
    let _ = writeln!(s, "          {} {}:{}", f.frame, first.file, first.line);
    let mut inner = &first.function;
    for l in outer {
        let _ = writeln!(s, "            ({inner} inlined into {} at {}:{})", l.function, l.file, l.line);
        inner = &l.function;
    }
}

impl Verdict {
    /// Each step's time on the guest's clock: how long, and when it began
    /// and ended since the guest booted.
    fn write_timeline(&self, s: &mut String) {
        for st in &self.steps {
            match (st.guest_begin, st.guest_end) {
                (Some(b), Some(e)) => {
                    let _ = writeln!(s, "  time  {} {:.2} s (guest clock {b:.3} to {e:.3})", st.name, e - b);
                }
                (Some(b), None) => {
                    let _ = writeln!(s, "  time  {} never ended (began at guest clock {b:.3})", st.name);
                }
                _ => {}
            }
        }
        for c in &self.board {
            let _ = writeln!(s, "  board {c}");
        }
    }

    /// The checks, each report, KUnit's counts and the notes: a line each.
    fn write_checks(&self, s: &mut String) {
        for c in &self.checks {
            let mark = if c.held { "PASS" } else { "FAIL" };
            let _ = write!(s, "  {mark}  {}", c.description);
            if let Some(d) = &c.detail {
                let _ = write!(s, ": {d}");
            }
            s.push('\n');
        }
        for e in &self.events {
            let _ = write!(s, "  FAIL  no kernel reports: {} (console line {})", e.title(), e.line);
            if let Some(step) = &e.step {
                let _ = write!(s, " in step {step}");
            }
            s.push('\n');
            let _ = writeln!(s, "          {}", e.headline());
            if let Some(sym) = &e.module_symbol {
                let _ = writeln!(s, "          at {sym}");
            }
            for f in &e.frames {
                write_frame(s, f);
            }
        }
        if let Some(k) = &self.ktap {
            let c = &k.counts;
            let mark = if k.failures.is_empty() && c.incomplete == 0 && c.missing == 0 { "PASS" } else { "FAIL" };
            let _ = writeln!(
                s,
                "  {mark}  KUnit: {} passed, {} failed, {} skipped, {} incomplete",
                c.passed, c.failed, c.skipped, c.incomplete
            );
            for f in &k.failures {
                let _ = writeln!(s, "          not ok: {f}");
            }
            for (name, planned, got) in &k.results.short_plans {
                let _ = writeln!(s, "          {name}: planned 1..{planned}, reported {got}");
            }
        }
        if !self.unrelated.is_empty() {
            let _ =
                writeln!(s, "  note  {} kernel report(s) not tied to the module (not counted):", self.unrelated.len());
            for e in &self.unrelated {
                let _ = writeln!(s, "          {} (console line {}): {}", e.kind, e.line, e.first_line());
            }
        }
        if self.defaults {
            let _ = writeln!(
                s,
                "  note  no expectations file: the defaults were checked (every step exits 0, no kernel report)"
            );
        }
        if self.dropped_lines > 0 {
            let _ = writeln!(
                s,
                "  note  {} console line(s) past the first {} MiB were not kept in memory; the console log has them",
                self.dropped_lines,
                crate::step::KEEP_BYTES >> 20
            );
        }
    }

    /// The port list, the explanations, the failed steps' windows, the
    /// registers and the console's last lines: a block each.
    fn write_sections(&self, s: &mut String) {
        if !self.ports.is_empty() {
            let _ = writeln!(
            s,
            "\n  built with --api 3.5: the layer gave back {} API(s) of Linux 3.5 that this kernel lacks; a port to \
                it changes these:",
            self.ports.len()
        );
            for p in &self.ports {
                for l in p.to_string().lines() {
                    let _ = writeln!(s, "    {l}");
                }
            }
        }
        if !self.lacks.is_empty() {
            let _ = writeln!(
                s,
                "\n  not on the board: the module uses {} name(s) its Linux 3.5 does not give it (absent, or not \
                 reached by its includes there):",
                self.lacks.len()
            );
            for l in &self.lacks {
                for line in l.to_string().lines() {
                    let _ = writeln!(s, "    {line}");
                }
            }
        }
        if !self.explanations.is_empty() {
            let _ = writeln!(s, "\n  what changed since Linux 3.5:");
            for e in &self.explanations {
                for l in e.lines() {
                    let _ = writeln!(s, "    {l}");
                }
            }
        }
        for (step, lines) in &self.excerpts {
            let _ = writeln!(s, "\n  what step {step} printed:");
            if lines.is_empty() {
                let _ = writeln!(s, "    (nothing)");
            }
            for l in lines.iter().take(40) {
                let _ = writeln!(s, "    | {l}");
            }
        }
        if let Some(r) = &self.registers {
            let _ = writeln!(s, "\n  guest registers when it was stopped (QEMU `info registers`):");
            // All of it: `info registers -a` is one block per CPU.
            for l in r.lines().take(crate::verdict::REGISTER_LINES) {
                let _ = writeln!(s, "    | {l}");
            }
        }
        if !self.unmodelled.is_empty() {
            let _ = writeln!(
                s,
                "\n  device accesses that neither QEMU's board nor the virtual board models (QEMU's: the writes went \
                nowhere, the reads gave 0; those through a mapping: done on the virtual board's copy):"
            );
            for a in &self.unmodelled {
                let _ = writeln!(s, "    {a}");
            }
        }
        if let Some(m) = &self.memory {
            let _ = writeln!(s, "\n  guest memory when it was stopped: {m}");
        }
        if !self.tail.is_empty() {
            let _ = writeln!(s, "\n  last console lines:");
            for l in &self.tail {
                let _ = writeln!(s, "    | {l}");
            }
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_checks(&mut s);
        crate::stock::write_notes(&self.stock, self.stock_drivers, &mut s);
        self.write_timeline(&mut s);
        self.write_sections(&mut s);
        if let Some(c) = &self.coverage {
            s.push_str(&format!("\ncoverage (what of the module's code ran):\n{c}"));
        }
        write!(f, "{s}\nverdict: {}", self.outcome)?;
        if let Some(r) = &self.reason {
            write!(f, ": {r}")?;
        }
        if !self.passed() {
            write!(f, "\nconsole log: {}", self.console_log.display())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlog(s: &str) -> Transcript {
        Transcript::from_log(&crate::marker::with_nonce(s, crate::marker::FIXTURE_NONCE), crate::marker::FIXTURE_NONCE)
    }

    fn planned() -> Vec<String> {
        ["insmod", "rmmod", "gone", "leaks"].map(String::from).to_vec()
    }

    fn exp() -> Expectations {
        Expectations::parse(
            "[[step]]\nname='insmod'\nexit=0\nexpect=[{line='process:insmod'}]\n\
             [[step]]\nname='rmmod'\nexit=0\nexpect=[{line='mmc exit!'}]\n",
            "e",
        )
        .unwrap()
    }

    #[test]
    fn each_step_shows_its_time_on_the_guests_clock() {
        let log = "[    1.500000] @@harness begin insmod\n[    1.600000] process:insmod\n[    1.750000] @@harness end \
            insmod rc=0\n\
                   [    1.800000] @@harness begin rmmod\n";
        let v = judge(&tlog(log), &exp(), &planned(), RunEnd::Completed, Context::new("log".into()));
        let text = v.to_string();
        assert!(text.contains("  time  insmod 0.25 s (guest clock 1.500 to 1.750)"), "{text}");
        assert!(text.contains("  time  rmmod never ended (began at guest clock 1.800)"), "{text}");
        let json: serde_json::Value = serde_json::to_value(&v).unwrap();
        assert_eq!(json["steps"][0]["guest_begin"], 1.5, "{json}");
        assert_eq!(json["steps"][0]["guest_end"], 1.75, "{json}");
        assert_eq!(json["steps"][1]["guest_end"], serde_json::Value::Null, "{json}");
    }

    const GOOD: &str = "@@harness begin insmod\nprocess:insmod\n@@harness end insmod rc=0\n\
                        @@harness begin rmmod\nmmc exit!\n@@harness end rmmod rc=0\n\
                        @@harness begin gone\n@@harness end gone rc=0\n@@harness done\n";

    /// Past the five debug-objects warnings a boot prints, a timer left
    /// pending in freed memory is cancelled silently: the census's count
    /// of them fails the unit; an unchanged count does not.
    #[test]
    fn a_debug_objects_problem_the_kernel_did_not_print_fails_the_census() {
        let census = |before: u64, after: u64| {
            let good = GOOD.replacen("@@harness done\n", "", 1);
            format!(
                "@@harness begin census\n@@harness end census rc=0\n{good}@@harness begin census#2\n\
                 @@harness out census#2 before odebug {before}\n@@harness out census#2 after odebug {after}\n\
                 @@harness end census#2 rc=0\n@@harness done\n"
            )
        };
        let planned: Vec<String> = ["census", "insmod", "rmmod", "gone", "census#2"].map(String::from).to_vec();
        let v = judge(&tlog(&census(5, 6)), &exp(), &planned, RunEnd::Completed, ctx("kept"));
        assert_eq!(v.outcome, Outcome::Failed, "{v}");
        let c = v.checks.iter().find(|c| c.description == crate::expect::NOTHING_LEFT).unwrap_or_else(|| panic!("{v}"));
        assert!(
            !c.held && c.detail.as_deref().unwrap().contains("found 1 problem(s) in this unit that it did not print")
        );
        let v = judge(&tlog(&census(5, 5)), &exp(), &planned, RunEnd::Completed, ctx("kept"));
        assert_eq!(v.outcome, Outcome::Passed, "{v}");
    }

    #[test]
    fn clean_run_passes() {
        let v = judge(&tlog(GOOD), &exp(), &planned(), RunEnd::Completed, Context::new("log".into()));
        assert_eq!(v.outcome, Outcome::Passed, "{v}");
        assert!(v.to_string().ends_with("verdict: PASSED"));
    }

    #[test]
    fn a_warning_fails_even_when_every_line_appeared() {
        let log = GOOD.replace(
            "process:insmod\n",
            "process:insmod\nWARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x4 [m]\n---[ end trace 0 ]---\n",
        );
        let v = judge(&tlog(&log), &exp(), &planned(), RunEnd::Completed, Context::new("log".into()));
        assert_eq!(v.outcome, Outcome::Failed);
        assert!(v.checks.iter().all(|c| c.held));
        assert!(v.reason.as_deref().unwrap().starts_with("WARNING during step insmod"), "{v}");
    }

    #[test]
    fn a_missing_line_fails_and_shows_the_step() {
        let log = GOOD.replace("mmc exit!", "something else");
        let v = judge(&tlog(&log), &exp(), &planned(), RunEnd::Completed, Context::new("/runs/x/console.log".into()));
        assert_eq!(v.outcome, Outcome::Failed);
        let text = v.to_string();
        assert!(text.contains("FAIL  rmmod prints line \"mmc exit!\""), "{text}");
        assert!(text.contains("what step rmmod printed:\n    | something else"), "{text}");
        assert!(text.contains("console log: /runs/x/console.log"), "{text}");
    }

    #[test]
    fn oops_is_crashed_and_hang_is_timed_out() {
        let oops =
            "@@harness begin insmod\nUnable to handle kernel NULL pointer dereference at virtual address 00000000\n\
                    PC is at f+0x0/0x4 [m]\n---[ end trace 0 ]---\n@@harness end insmod rc=139\n";
        let v = judge(&tlog(oops), &exp(), &planned(), RunEnd::Completed, Context::new("log".into()));
        assert_eq!(v.outcome, Outcome::Crashed, "{v}");
        assert!(v.reason.as_deref().unwrap().starts_with("oops during step insmod"));

        let hang = "@@harness begin insmod\n";
        let v = judge(&tlog(hang), &exp(), &planned(), RunEnd::TimedOut { after_secs: 30 }, Context::new("log".into()));
        assert_eq!(v.outcome, Outcome::TimedOut);
        assert_eq!(v.reason.as_deref(), Some("no progress within 30 s during step insmod"));
        assert!(v.to_string().contains("last console lines:"));

        let early =
            judge(&tlog(hang), &exp(), &planned(), RunEnd::ExitedEarly { status: Some(1) }, Context::new("log".into()));
        assert_eq!(early.outcome, Outcome::Crashed);

        let v = judge(
            &tlog(hang),
            &exp(),
            &planned(),
            RunEnd::StepTimedOut { step: "insmod".into(), unit: None, after_secs: 20 },
            Context::new("log".into()),
        );
        assert_eq!(v.reason.as_deref(), Some("step insmod did not finish within 20 s"));
    }

    /// A wait step cut short by the step timeout: TIMED-OUT (not FAILED),
    /// and the reason and the step's own check say that its background
    /// program was still running, with the lines it printed by then (the
    /// guest reports them as they come); a wait step the run never reached
    /// says its program's output was never read.
    #[test]
    fn a_background_program_killed_with_the_guest_says_so_with_its_last_lines() {
        let e = Expectations::parse(
            "[[step]]\nname='app'\nrun='app'\nbackground=true\n[[step]]\nname='collect'\nwait='app'\n\
             stdout=[{line='tick 9'}]\n",
            "e",
        )
        .unwrap();
        let planned: Vec<String> = ["insmod", "app", "collect", "rmmod"].map(String::from).to_vec();
        let log = "@@harness begin insmod\n@@harness end insmod rc=0\n@@harness begin app\n@@harness end app rc=0\n\
                   @@harness begin collect\n@@harness out collect tick 1\n@@harness out collect tick 2\n\
                   @@harness out collect tick 3\n@@harness out collect tick 4\n";
        let end = RunEnd::StepTimedOut { step: "collect".into(), unit: None, after_secs: 8 };
        let v = judge(&tlog(log), &e, &planned, end, Context::new("log".into()));
        assert_eq!(v.outcome, Outcome::TimedOut, "{v}");
        let said = "app was still running when the run ended, and was killed with the guest; its last lines: \
                    tick 2 | tick 3 | tick 4";
        assert_eq!(v.reason.as_deref(), Some(format!("step collect did not finish within 8 s: {said}").as_str()));
        let ran = v.checks.iter().find(|c| c.description == "collect ran to completion").unwrap();
        assert_eq!(ran.detail.as_deref(), Some(format!("the step started but never finished: {said}").as_str()));
        let out = v.checks.iter().find(|c| c.description.starts_with("collect outputs")).unwrap();
        assert_eq!(out.detail.as_deref(), Some("not among the 4 line(s) of output the step printed"), "{v}");
        // The run ended in an earlier step: collect never began.
        let log = "@@harness begin insmod\n@@harness end insmod rc=0\n@@harness begin app\n@@harness end app rc=0\n";
        let v = judge(&tlog(log), &e, &planned, RunEnd::TimedOut { after_secs: 30 }, Context::new("log".into()));
        let ran = v.checks.iter().find(|c| c.description == "collect ran to completion").unwrap();
        assert_eq!(
            ran.detail.as_deref(),
            Some(
                "the step never started: app was started in the background; the run ended before this step read its \
                  output"
            )
        );
    }

    /// A real run (fixtures/faults/sched-atomic before its fix, with five
    /// other units, on a loaded host): the second load's sleep with
    /// preemption off, then an interrupt refused and the step hung. TIMED-OUT,
    /// since it hung, with the report named and why the board would not hang.
    #[test]
    fn a_hang_after_scheduling_while_atomic_says_the_board_would_carry_on() {
        let p = crate::repo_root().join("harness/tests/fixtures/console/exynos4210-sched-atomic-then-hang.log");
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let t = Transcript::from_log(&text, crate::marker::FIXTURE_NONCE);
        let view = t.unit_view("sched-atomic", t.first_line_of("sched-atomic").unwrap(), t.lines.len());
        let planned: Vec<String> = ["census", "insmod", "rmmod", "gone", "insmod#2"].map(String::from).to_vec();
        let end = RunEnd::StepTimedOut { step: "insmod#2".into(), unit: Some("sched-atomic".into()), after_secs: 60 };
        let v = judge(&view, &Expectations::default(), &planned, end, Context::new("log".into()));
        assert_eq!(v.outcome, Outcome::TimedOut, "{v}");
        let reason = v.reason.as_deref().unwrap();
        assert!(
            reason.starts_with(
                "step sched-atomic/insmod#2 did not finish within 60 s; it hung after \"BUG: scheduling while atomic: \
                 insmod/90/0x00000002\" (console line 283): Linux 6.12 resets"
            ),
            "{reason}"
        );
        // A hang in a step that did not sleep in atomic context says nothing
        // of it: the first load's report does not explain the second's hang.
        let end = RunEnd::StepTimedOut { step: "rmmod".into(), unit: Some("sched-atomic".into()), after_secs: 60 };
        let v = judge(&view, &Expectations::default(), &planned, end, Context::new("log".into()));
        assert_eq!(v.reason.as_deref(), Some("step sched-atomic/rmmod did not finish within 60 s"), "{v}");
    }

    /// An oops, then a later step that never ends (the second load of a
    /// module whose first load oopsed): the crash is the cause, the hang
    /// what it left.
    #[test]
    fn a_hang_after_an_oops_is_crashed() {
        let log = "@@harness begin insmod\nUnable to handle kernel paging request at virtual address fffffffe\n\
                   PC is at f+0x0/0x4 [m]\n---[ end trace 0 ]---\n@@harness end insmod rc=139\n\
                   @@harness begin rmmod\n@@harness end rmmod rc=0\n@@harness begin insmod#2\n";
        let end = RunEnd::StepTimedOut { step: "insmod#2".into(), unit: None, after_secs: 60 };
        let v = judge(&tlog(log), &exp(), &planned(), end, Context::new("log".into()));
        assert_eq!(v.outcome, Outcome::Crashed, "{v}");
        assert!(v.reason.as_deref().unwrap().starts_with("oops during step insmod:"), "{v}");
    }

    /// Issue 34: a tasklet left scheduled, from a real boot
    /// (fixtures/leftovers/tasklet-kept): the oops's fault address, in the
    /// module's freed .data, is named from the module's object symbols and
    /// the `section` markers, and the reason says so.
    #[test]
    fn a_crash_on_an_unloaded_modules_data_names_the_object() {
        let p = crate::repo_root().join("harness/tests/fixtures/console/exynos4210-tasklet-at-unload.log");
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let t = Transcript::from_log(&text, crate::marker::FIXTURE_NONCE);
        let ko = crate::symbols::object_with(
            &[("flash_fn", 0, 0x20, true), ("flash_tasklet", 0, 0x1c, false)],
            0x40,
            0x20,
            &[],
        );
        let symbols = ModuleSymbols::parse(&ko, "led_flash", &t.sections_of(None, "led_flash")).unwrap();
        let with_symbols = Context { symbols: vec![symbols], ..ctx("led_flash") };
        let v = judge(&t, &exp(), &planned(), RunEnd::Panicked, with_symbols);
        assert_eq!(v.outcome, Outcome::Crashed, "{v}");
        assert_eq!(
            v.reason.as_deref(),
            Some(
                "oops during step rmmod: Unable to handle kernel paging request at virtual address bf002004 when read \
                 (into the unloaded module's data: flash_tasklet [led_flash]; run by tasklet_action_common: a tasklet \
                 still scheduled after rmmod; its exit should call tasklet_kill())"
            ),
            "{v}"
        );
        // Without the module's data sections (a guest that recorded only
        // its code), nothing names it.
        let code_only: Vec<(String, u64)> =
            t.sections_of(None, "led_flash").into_iter().filter(|(s, _)| s.contains(".text")).collect();
        let symbols = ModuleSymbols::parse(&ko, "led_flash", &code_only).unwrap();
        let v = judge(&t, &exp(), &planned(), RunEnd::Panicked, Context { symbols: vec![symbols], ..ctx("led_flash") });
        assert!(v.reason.as_deref().unwrap().ends_with("when read"), "{v}");
    }

    fn ctx(module: &str) -> Context {
        Context { modules: vec![module.into()], ..Context::new("log".into()) }
    }

    #[test]
    fn module_leaks_fail_with_count_size_and_symbol_and_kernel_noise_does_not() {
        let leak = "unreferenced object 0xc1000000 (size 100):\n  comm \"insmod\", pid 70\n  backtrace (crc 1):\n    \
            leak_init+0x10/0x40 [fault_leak]\n";
        let noise = "unreferenced object 0xc2000000 (size 64):\n  comm \"swapper/0\", pid 1\n  backtrace (crc \
            2):\n    kobject_add+0x1/0x2\n";
        let log = format!("{GOOD}@@harness begin leaks\n{leak}{noise}@@harness end leaks rc=0\n");
        let v = judge(&tlog(&log), &exp(), &planned(), RunEnd::Completed, ctx("fault_leak"));
        assert_eq!(v.outcome, Outcome::Failed, "{v}");
        assert_eq!(
            v.reason.as_deref(),
            Some("kmemleak: 1 leaked object(s), 100 bytes, allocated at leak_init [fault_leak]")
        );
        assert_eq!(v.unrelated.len(), 1);
        let clean = format!("{GOOD}@@harness begin leaks\n{noise}@@harness end leaks rc=0\n");
        let v = judge(&tlog(&clean), &exp(), &planned(), RunEnd::Completed, ctx("mmc_byte"));
        assert_eq!(v.outcome, Outcome::Passed, "{v}");
        assert!(v.to_string().contains("1 kernel report(s) not tied to the module"));
    }

    #[test]
    fn memory_not_freed_at_unload_fails_with_sites_bytes_function_and_file() {
        let warn = |line, func, bytes| {
            format!(
                "------------[ cut here ]------------\nWARNING: CPU: 1 PID: 42 at lib/alloc_tag.c:171 \
                    alloc_tag_module_unload+0x2a4/0x39c\n\
                 /tmp/run/module/fault_leak.c:{line} module fault_leak func:{func} has {bytes} allocated at module \
                     unload\n\
                 Modules linked in: fault_leak(O-)\n---[ end trace 0000000000000000 ]---\n"
            )
        };
        let log = format!(
            "@@harness begin insmod\n@@harness end insmod rc=0\n@@harness begin rmmod\n{}{}@@harness end rmmod rc=0\n",
            warn(34, "leak_do", 256),
            warn(40, "leak_more", 4096)
        );
        let v = judge(&tlog(&log), &exp(), &planned(), RunEnd::Completed, ctx("fault_leak"));
        assert_eq!(v.outcome, Outcome::Failed, "{v}");
        assert_eq!(
            v.reason.as_deref(),
            Some(
                "not freed at unload: 2 allocation site(s) still hold 4352 bytes (as the allocator counts them: \
                whole slab objects, red zones included), the first in leak_do [fault_leak] at fault_leak.c:34"
            )
        );
    }

    #[test]
    fn a_crash_in_the_middle_of_ktap_is_crashed_not_failed() {
        let log = "@@harness begin insmod\nKTAP version 1\n1..1\n    # Subtest: demo\n    1..3\n    ok 1 first\n    \
            not ok 2 second\n\
                   Unable to handle kernel NULL pointer dereference at virtual address 00000000\n\
                   PC is at demo_third+0x8/0x20 [demo]\n---[ end trace 0 ]---\n";
        let v = judge(&tlog(log), &exp(), &planned(), RunEnd::TimedOut { after_secs: 5 }, Context::new("log".into()));
        // A hang after the crash is what the crash left: the crash is the
        // headline (the first real failure).
        assert_eq!(v.outcome, Outcome::Crashed, "{v}");
        let v =
            judge(&tlog(log), &exp(), &planned(), RunEnd::ExitedEarly { status: Some(0) }, Context::new("log".into()));
        assert_eq!(v.outcome, Outcome::Crashed, "{v}");
        let k = v.ktap.as_ref().unwrap();
        assert_eq!((k.counts.passed, k.counts.failed, k.counts.incomplete), (1, 1, 1));
        assert!(v.to_string().contains("KUnit: 1 passed, 1 failed, 0 skipped, 1 incomplete"), "{v}");
    }

    #[test]
    fn reports_before_the_first_step_are_not_the_modules() {
        let boot = "INFO: task kworker/u8:1:33 blocked for more than 20 seconds.\n      Not tainted 6.12.117 #1\n\n";
        let v = judge(&tlog(&format!("{boot}{GOOD}")), &exp(), &planned(), RunEnd::Completed, ctx("mmc_byte"));
        assert_eq!(v.outcome, Outcome::Passed, "{v}");
        assert_eq!(v.unrelated.len(), 1);
        assert!(v.to_string().contains("hung task (console line 1): INFO: task kworker"), "{v}");
        // The same report during a step fails the run.
        let during = GOOD.replace("process:insmod\n", &format!("process:insmod\n{boot}"));
        let v = judge(&tlog(&during), &exp(), &planned(), RunEnd::Completed, ctx("mmc_byte"));
        assert_eq!(v.outcome, Outcome::Failed, "{v}");
    }

    fn access(step: &str) -> Unmodelled {
        Unmodelled {
            address: "0x11000100".into(),
            write: true,
            size: 4,
            unit: None,
            step: step.into(),
            block: Some("GPIO GPL2CON".into()),
            mapping: None,
            line: None,
            pin: None,
        }
    }

    fn judged(log: &str, unmodelled: Vec<Unmodelled>) -> Verdict {
        let ctx = Context { unmodelled, ..Context::new("log".into()) };
        judge(&tlog(log), &exp(), &planned(), RunEnd::Completed, ctx)
    }

    /// Issue 34: four failed expectations of earlier steps exited 3. A
    /// failure before the first step that reached missing hardware is the
    /// module's: FAILED, headlined by it, the hardware named with it.
    #[test]
    fn a_failure_before_the_missing_hardware_is_not_hidden_by_it() {
        let log = GOOD.replace("process:insmod", "something else");
        let v = judged(&log, vec![access("rmmod")]);
        assert_eq!(v.outcome, Outcome::Failed, "{v}");
        let r = v.reason.as_deref().unwrap();
        assert!(r.starts_with("expectation not met: insmod prints line \"process:insmod\""), "{r}");
        assert!(
            r.ends_with(
                "(the run also needed hardware the emulated board does not have: write to 0x11000100 (4 \
            bytes, GPIO GPL2CON) in step rmmod)"
            ),
            "{r}"
        );
        assert!(v.board_may_change.is_empty());
        // A report and a crash outrank it too, with the hardware named.
        let warn = GOOD.replace(
            "process:insmod\n",
            "process:insmod\nWARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x4 [m]\n---[ end trace 0 ]---\n",
        );
        let v = judged(&warn, vec![access("insmod")]);
        assert_eq!(v.outcome, Outcome::Failed, "{v}");
        assert!(v.reason.as_deref().unwrap().starts_with("WARNING during step insmod"), "{v}");
        assert!(v.reason.as_deref().unwrap().contains("the run also needed hardware"), "{v}");
    }

    /// What failed at or after the missing hardware may be its absence (the
    /// module read zeros): NEEDS-THE-BOARD, with those failures listed, and
    /// skipped, not failed, in JUnit.
    #[test]
    fn a_failure_at_or_after_the_missing_hardware_is_the_boards_to_decide_and_is_listed() {
        let log = GOOD.replace("mmc exit!", "something else");
        let v = judged(&log, vec![access("insmod")]);
        assert_eq!(v.outcome, Outcome::NeedsTheBoard, "{v}");
        let r = v.reason.as_deref().unwrap();
        assert!(
            r.ends_with(
                "; 1 expectation(s) at or after that step failed, which the board may change: rmmod \
            prints line \"mmc exit!\""
            ),
            "{r}"
        );
        assert_eq!(v.board_may_change, vec!["rmmod prints line \"mmc exit!\"".to_string()]);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["board_may_change"][0], "rmmod prints line \"mmc exit!\"", "{json}");
        let report =
            crate::report::Report { profile: "p", module: "m", kernel_release: "k", timings: &[], verdict: &v };
        let xml = report.junit().to_string().unwrap();
        assert!(xml.contains("needs the board: "), "{xml}");
        assert!(!xml.contains("<failure"), "nothing failed that the board may change: {xml}");
        // With nothing failed, the hardware alone.
        let v = judged(GOOD, vec![access("insmod")]);
        assert_eq!(v.outcome, Outcome::NeedsTheBoard);
        assert_eq!(
            v.reason.as_deref(),
            Some(
                "hardware the emulated board does not have: write to 0x11000100 (4 bytes, GPIO GPL2CON) in step insmod"
            )
        );
    }

    #[test]
    fn a_ktap_plan_with_missing_results_fails_the_check() {
        let ktap = "KTAP version 1\n1..3\nok 1 first\nok 2 second\n";
        let log = GOOD.replace("process:insmod\n", &format!("process:insmod\n{ktap}"));
        let v = judge(&tlog(&log), &exp(), &planned(), RunEnd::Completed, Context::new("log".into()));
        assert_eq!(v.outcome, Outcome::Failed, "{v}");
        assert_eq!(v.reason.as_deref(), Some("KUnit: (top level) planned 1..3 but reported 2 result(s)"));
        assert!(v.to_string().contains("FAIL  KUnit: 2 passed"), "{v}");
    }

    #[test]
    fn a_failing_kunit_case_fails_the_check() {
        let ktap =
            "KTAP version 1\n1..1\n    # Subtest: demo\n    1..2\n    ok 1 good\n    not ok 2 bad\nnot ok 1 demo\n";
        let log = GOOD.replace("process:insmod\n", &format!("process:insmod\n{ktap}"));
        let v = judge(&tlog(&log), &exp(), &planned(), RunEnd::Completed, Context::new("log".into()));
        assert_eq!(v.outcome, Outcome::Failed, "{v}");
        assert_eq!(v.reason.as_deref(), Some("KUnit: 1 of 2 case(s) failed: demo.bad"));
        assert!(v.to_string().contains("FAIL  KUnit: 1 passed, 1 failed, 0 skipped, 0 incomplete"));
    }
}
