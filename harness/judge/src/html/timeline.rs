//! The timeline of one unit's run, in the guest's time: its steps (what
//! each did, how it ended), the background programs they started and
//! stopped, the virtual board's changes, and the kernel reports.

use super::UnitPage;
use crate::board_parts::BoardStep;
use crate::expect::StepExpectation;
use maud::{html, Markup};

/// What a timeline entry is, as a word that says it without colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineKind {
    Step,
    Program,
    Led,
    Button,
    Interrupt,
    Adc,
    Watchdog,
    Board,
    Report,
}

impl TimelineKind {
    pub fn word(self) -> &'static str {
        match self {
            TimelineKind::Step => "step",
            TimelineKind::Program => "program",
            TimelineKind::Led => "led",
            TimelineKind::Button => "button",
            TimelineKind::Interrupt => "interrupt",
            TimelineKind::Adc => "adc",
            TimelineKind::Watchdog => "watchdog",
            TimelineKind::Board => "board",
            TimelineKind::Report => "report",
        }
    }

    /// The kind of a board change, by its part (the model's names:
    /// compat35/board/tiny4412_board.c).
    fn of_part(part: &str, state: &str) -> TimelineKind {
        // A request of what the stock image's drivers hold (stock.c), not
        // a change of the part.
        if state == "requested" || state == "refused" {
            return TimelineKind::Board;
        }
        let numbered = |stem: &str| part.strip_prefix(stem).is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()));
        if numbered("LED") || part == "buzzer" || numbered("PWM") {
            TimelineKind::Led
        } else if numbered("K") {
            TimelineKind::Button
        } else if numbered("XEINT") || numbered("EINT") {
            TimelineKind::Interrupt
        } else if numbered("AIN") {
            TimelineKind::Adc
        } else if part == "watchdog" {
            TimelineKind::Watchdog
        } else {
            TimelineKind::Board
        }
    }
}

/// One entry: when (the guest's seconds, if known), what, and where to
/// read more (an anchor in the page).
#[derive(Debug, Clone)]
pub struct TimelineEntry {
    pub at: Option<f64>,
    pub kind: TimelineKind,
    pub text: String,
    pub link: Option<String>,
    /// A failure: a step that did not exit 0, a report.
    pub bad: bool,
}

/// The unit's entries in time order (entries with no time keep their place
/// after the one before them).
pub fn entries(u: &UnitPage, anchor: &dyn Fn(usize) -> String) -> Vec<TimelineEntry> {
    let mut out = Vec::new();
    for s in &u.verdict.steps {
        let exp = u.expectations.steps.iter().find(|e| e.covers(&s.name));
        let what = exp.map(does).unwrap_or_default();
        let ended = match s.exit {
            Some(0) => "exit 0".to_string(),
            Some(rc) => format!("exit {rc}"),
            None => "never finished".to_string(),
        };
        let took = s.seconds.map(|t| format!(", {t:.2} s")).unwrap_or_default();
        // A stopped program's status is judged only when the file gave
        // one (expect.rs): a SIGINT's 130 is not a failure.
        let judged = exp.is_none_or(|e| !e.stop || e.exit_given);
        let bad = s.exit.is_none() || (judged && s.exit != Some(exp.map_or(0, |e| e.exit)));
        out.push(TimelineEntry {
            at: s.guest_begin,
            kind: TimelineKind::Step,
            text: format!("{}{what} ({ended}{took})", s.name),
            link: None,
            bad,
        });
        out.extend(programs(u, &s.name, exp, s.guest_begin, s.guest_end));
    }
    for c in &u.verdict.board {
        let step = c.step.as_deref().map(|s| format!(" (step {s})")).unwrap_or_default();
        let bad = c.state.starts_with("unhandled") || c.state.starts_with("storm");
        let text = format!("{} {}{step}", c.part, c.state);
        out.push(TimelineEntry {
            at: Some(c.at),
            kind: TimelineKind::of_part(&c.part, &c.state),
            text,
            link: None,
            bad,
        });
    }
    for e in u.verdict.events.iter().chain(&u.verdict.unrelated) {
        let at = u.transcript.lines.iter().find(|l| l.number == e.line).and_then(|l| l.timestamp);
        let step = e.step.as_deref().map(|s| format!(" in step {s}")).unwrap_or_default();
        let text = format!("{}{step}: {}", e.title(), e.headline());
        out.push(TimelineEntry { at, kind: TimelineKind::Report, text, link: Some(anchor(e.line)), bad: true });
    }
    sort(&mut out);
    out
}

/// Sorts by time; an entry with none stays after the entry before it.
fn sort(entries: &mut [TimelineEntry]) {
    let mut last = f64::NEG_INFINITY;
    let mut keyed: Vec<(f64, usize)> = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        last = e.at.unwrap_or(last);
        keyed.push((last, i));
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|a, b| keyed[*a].0.total_cmp(&keyed[*b].0).then(a.cmp(b)));
    let sorted: Vec<TimelineEntry> = order.iter().map(|i| entries[*i].clone()).collect();
    entries.clone_from_slice(&sorted);
}

/// What a step does, as its expectations say: ` runs …`, ` clicks K1`.
fn does(e: &StepExpectation) -> String {
    if let Some(BoardStep::Act(acts)) = &e.board {
        return format!(": board {}", acts.join(", "));
    }
    if let Some(BoardStep::Check(want)) = &e.board {
        let want: Vec<String> = want.iter().map(|(p, s)| format!("{p} {s}")).collect();
        return format!(": checks the board is {}", want.join(", "));
    }
    match (&e.run, &e.wait) {
        (Some(run), _) if e.background => format!(": starts `{run}` in the background"),
        (Some(run), _) => format!(": runs `{run}`"),
        (None, Some(w)) if e.stop => format!(": stops {w}"),
        (None, Some(w)) => format!(": waits for {w}"),
        _ => String::new(),
    }
}

/// A background program's start, and its end at the step that waited for
/// it or stopped it.
fn programs(
    u: &UnitPage,
    step: &str,
    exp: Option<&StepExpectation>,
    begin: Option<f64>,
    end: Option<f64>,
) -> Vec<TimelineEntry> {
    let Some(exp) = exp else { return Vec::new() };
    let mut out = Vec::new();
    if exp.background {
        let text = format!("{step} starts in the background: {}", exp.run.as_deref().unwrap_or(""));
        out.push(TimelineEntry { at: begin, kind: TimelineKind::Program, text, link: None, bad: false });
    }
    if let Some(started) = &exp.wait {
        let record = u.transcript.steps.iter().find(|r| r.name == step);
        let how = match record.and_then(|r| r.stopped) {
            Some(crate::marker::BackgroundEnd::Exited) => "ended on its own".to_string(),
            Some(stop) => format!("stopped by SIG{}", stop.word().to_uppercase()),
            None if record.is_some_and(|r| r.rc.is_some()) => "ended".to_string(),
            None => "did not end".to_string(),
        };
        let text = format!("{started} {how} (step {step})");
        out.push(TimelineEntry { at: end, kind: TimelineKind::Program, text, link: None, bad: false });
    }
    out
}

/// The timeline as an ordered list, each entry's kind a word in brackets.
pub fn render(entries: &[TimelineEntry]) -> Markup {
    html! {
        @if entries.is_empty() {
            p { "No step ran." }
        } @else {
            ol.timeline {
                @for e in entries {
                    li class={ "k-" (e.kind.word()) @if e.bad { " bad" } } data-kind=(e.kind.word()) {
                        span.t { @match e.at { Some(t) => { (format!("{t:.3} s")) }, None => { "—" } } }
                        " "
                        span.kind { "[" (e.kind.word().to_uppercase()) "]" }
                        " "
                        @if e.bad { span.flag { "✘ " } }
                        @match &e.link {
                            Some(href) => { a href=(href) { (e.text) } },
                            None => { span.what { (e.text) } },
                        }
                    }
                }
            }
        }
    }
}
