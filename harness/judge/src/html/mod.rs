//! The run's one-page report (`report.html`): the verdict and each
//! expectation, a timeline of the steps in the guest's time with the
//! board's changes and the kernel reports, the console, the module's
//! source with its coverage and the reports' frames, the port list and
//! what the board lacks.
//!
//! A pure function from the run's typed data to a string. The page is
//! whole in itself (inline CSS, no script, no font, nothing fetched), folds
//! with `<details>` (JS off), reads in a narrow window, printed, and with
//! colours off: every state is a word or a symbol too. Every piece of text
//! the run brought (names, printk text, console bytes, sources) goes
//! through maud, which escapes it.

pub mod lcov;
mod text;
pub mod timeline;

use crate::expect::{Check, Expectations};
use crate::step::Transcript;
use crate::verdict::{Outcome, Verdict};
use lcov::Tracefile;
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// A source file of the module folder, as read (bounded) by the run side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Relative to the module folder, as frames and `SF:` name it.
    pub path: String,
    pub text: String,
}

/// One module directory's part of the page.
pub struct UnitPage<'a> {
    /// The directory's label (empty for a single one).
    pub label: &'a str,
    pub verdict: &'a Verdict,
    /// The unit's stretch of the console.
    pub transcript: &'a Transcript,
    pub expectations: &'a Expectations,
    pub sources: &'a [SourceFile],
    pub coverage: Option<&'a Tracefile>,
}

/// The whole page: what ran, where, and each unit.
pub struct Page<'a> {
    /// What is under test (the module folder's name, or the units').
    pub title: &'a str,
    pub profile: &'a str,
    pub kernel_release: &'a str,
    pub units: Vec<UnitPage<'a>>,
}

/// The style, inline: readable with colours off (states are words), in a
/// narrow window (long lines wrap), and printed (folds open, no colour
/// backgrounds needed).
const CSS: &str = include_str!("report.css");

/// Renders the page.
pub fn render(page: &Page) -> String {
    let outcome = overall(page);
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (outcome) " — " (page.title) " (harness report)" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { (page.title) " " (badge(outcome)) }
                    p.meta { "profile " code { (page.profile) } ", kernel " code { (page.kernel_release) } }
                    @if page.units.len() > 1 {
                        nav { ol { @for (k, u) in page.units.iter().enumerate() {
                            li { a href=(format!("#u{k}")) { (u.label) } " " (badge(u.verdict.outcome)) }
                        } } }
                    }
                }
                @for (k, u) in page.units.iter().enumerate() { (unit(k, u)) }
            }
        }
    };
    doc.into_string()
}

/// The worst outcome of the units (the run's exit status is that of any).
fn overall(page: &Page) -> Outcome {
    let rank = |o: &Outcome| match o {
        Outcome::Passed => 0,
        Outcome::NeedsTheBoard => 1,
        Outcome::Failed => 2,
        Outcome::TimedOut => 3,
        Outcome::Crashed => 4,
    };
    page.units.iter().map(|u| u.verdict.outcome).max_by_key(rank).unwrap_or(Outcome::Passed)
}

/// The outcome as a symbol and a word (never the colour alone).
fn badge(o: Outcome) -> Markup {
    let (class, symbol) = match o {
        Outcome::Passed => ("passed", "✔"),
        Outcome::NeedsTheBoard => ("board", "?"),
        _ => ("failed", "✘"),
    };
    html! { span class={ "outcome " (class) } { (symbol) " " (o) } }
}

/// One unit's sections.
fn unit(k: usize, u: &UnitPage) -> Markup {
    let console = |line: usize| format!("#u{k}-L{line}");
    let entries = timeline::entries(u, &console);
    html! {
        section.unit id=(format!("u{k}")) {
            h2 { @if u.label.is_empty() { "Verdict" } @else { (u.label) } " " (badge(u.verdict.outcome)) }
            @if let Some(r) = &u.verdict.reason { p.reason { (r) } }
            (checks(u))
            h3 { "Timeline (guest time)" }
            (timeline::render(&entries))
            (text::reports(k, u))
            (text::sources(k, u))
            (text::ports_and_lacks(u))
            (text::console(k, u))
        }
    }
}

/// Each expectation and whether it held: those that did not first, those
/// that held folded under their count.
fn checks(u: &UnitPage) -> Markup {
    let v = u.verdict;
    let (held, not): (Vec<&Check>, Vec<&Check>) = v.checks.iter().partition(|c| c.held);
    html! {
        h3 { "Expectations" @if v.defaults { " (the defaults: no expect.toml)" } }
        @if !not.is_empty() {
            ul.checks { @for c in &not { (check(v, c)) } }
        }
        @if !held.is_empty() {
            details.held.unfold-print {
                summary { "✔ " (held.len()) " of " (v.checks.len()) " held" }
                ul.checks { @for c in &held { (check(v, c)) } }
            }
        }
    }
}

fn check(v: &Verdict, c: &Check) -> Markup {
    let (class, word) = if c.held {
        ("held", "✔ held")
    } else if v.board_may_change.contains(&c.description) {
        ("board", "? needs the board")
    } else {
        ("failed", "✘ failed")
    };
    html! {
        li class=(class) {
            span.state { (word) } " " (c.description)
            @if let Some(d) = &c.detail { br; span.detail { (d) } }
        }
    }
}

#[cfg(test)]
mod tests;
