//! The page's long texts: the kernel reports with their frames, the
//! module's source with coverage, the port list and what the board lacks,
//! and the console. Each is bounded: the page of a flooding run stays a
//! page, and says what it left out.

use super::UnitPage;
use crate::step::{ConsoleLine, LineKind};
use maud::{html, Markup};
use std::collections::{BTreeSet, HashSet};

/// The console lines shown: the first and the last half of these (a run's
/// start and its end, where a crash is), the rest left to console.log.
pub const CONSOLE_LINES: usize = 4000;
/// The lines of one source file shown.
pub const SOURCE_LINES: usize = 5000;
/// The lines of one report's block shown.
const REPORT_LINES: usize = 200;

/// The kernel reports, each with its block and its frames linked to the
/// source lines they point at.
pub fn reports(k: usize, u: &UnitPage) -> Markup {
    let v = u.verdict;
    let all: Vec<(&crate::event::Event, bool)> =
        v.events.iter().map(|e| (e, true)).chain(v.unrelated.iter().map(|e| (e, false))).collect();
    if all.is_empty() {
        return html! { h3 { "Kernel reports" } p { "None." } };
    }
    html! {
        h3 { "Kernel reports" }
        @for (e, ours) in all {
            details.report.unfold-print open {
                summary {
                    span.state { @if ours { "✘ " } @else { "(not the module's) " } }
                    (e.title())
                    @if let Some(s) = &e.step { " in step " (s) }
                    " — " a href=(format!("#u{k}-L{}", e.line)) { "console line " (e.line) }
                }
                pre.block { @for l in e.block.iter().take(REPORT_LINES) { (l) "\n" } }
                @if e.block.len() > REPORT_LINES {
                    p.cut { "(" (e.block.len() - REPORT_LINES) " more lines in console.log)" }
                }
                @if !e.frames.is_empty() {
                    ul.frames {
                        @for f in &e.frames { @for l in &f.lines {
                            li {
                                code { (f.frame) } " → "
                                @match source_anchor(k, u, &l.file, l.line) {
                                    Some(href) => { a href=(href) { (l.file) ":" (l.line) } },
                                    None => { (l.file) ":" (l.line) },
                                }
                                " in " code { (l.function) }
                            }
                        } }
                    }
                }
            }
        }
    }
}

/// The anchor of `file:line` in the page's source, if it shows that file.
fn source_anchor(k: usize, u: &UnitPage, file: &str, line: u32) -> Option<String> {
    let f = u.sources.iter().position(|s| s.path == file)?;
    Some(format!("#u{k}-s{f}-L{line}"))
}

/// The module's source files: each line numbered, with what coverage says
/// of it (ran N×, never ran), and marked where a report's frame points.
pub fn sources(k: usize, u: &UnitPage) -> Markup {
    let frames: BTreeSet<(&str, u32)> = (u.verdict.events.iter().chain(&u.verdict.unrelated))
        .flat_map(|e| &e.frames)
        .flat_map(|f| &f.lines)
        .map(|l| (l.file.as_str(), l.line))
        .collect();
    html! {
        h3 { "Source" @if u.coverage.is_some() { " and coverage" } }
        @if u.sources.is_empty() { p { "No source of the module's to show." } }
        @if u.coverage.is_none() && !u.sources.is_empty() {
            p.note { "No coverage in this run (check --coverage writes coverage.info)." }
        }
        @for (f, s) in u.sources.iter().enumerate() {
            @let cov = u.coverage.and_then(|c| c.file(&s.path));
            details.source.unfold-print open[cov.is_some() || frames.iter().any(|(p, _)| *p == s.path)] {
                summary {
                    code { (s.path) }
                    @if let Some(c) = cov { " — " (c.summary()) }
                }
                @if let Some(c) = cov {
                    @let never: Vec<String> =
                        c.never_called().map(|g| format!("{} (line {})", g.name, g.line)).collect();
                    @if !never.is_empty() { p.never { "✘ never ran: " (never.join(", ")) } }
                }
                table.code {
                    @for (n, text) in s.text.lines().take(SOURCE_LINES).enumerate() {
                        @let n = n as u32 + 1;
                        @let hits = cov.and_then(|c| c.lines.get(&n));
                        @let frame = frames.contains(&(s.path.as_str(), n));
                        tr id=(format!("u{k}-s{f}-L{n}")) class=(line_class(hits, frame)) {
                            td.n { (n) }
                            td.cov {
                                @match hits { Some(0) => { "✘ never" }, Some(h) => { "✔ " (h) "×" }, None => { "" } }
                            }
                            td.src { @if frame { span.frame { "◀ frame " } } (text) }
                        }
                    }
                }
                @if s.text.lines().count() > SOURCE_LINES { p.cut { "(cut at " (SOURCE_LINES) " lines)" } }
            }
        }
    }
}

fn line_class(hits: Option<&u64>, frame: bool) -> String {
    let cov = match hits {
        Some(0) => "miss",
        Some(_) => "hit",
        None => "",
    };
    if frame {
        format!("{cov} at-frame")
    } else {
        cov.to_string()
    }
}

/// The port list (what the 3.5 layer gave back) and what the board's 3.5
/// lacks, when the unit was built under `--api 3.5`.
pub fn ports_and_lacks(u: &UnitPage) -> Markup {
    let v = u.verdict;
    html! {
        @if !v.ports.is_empty() {
            h3 { "Port list (what a port to this kernel changes)" }
            ul.ports { @for p in &v.ports { li { pre { (p.to_string()) } } } }
        }
        @if !v.lacks.is_empty() {
            h3 { "What the board's Linux 3.5 lacks" }
            ul.lacks { @for l in &v.lacks { li.failed { span.state { "✘ " } pre { (l.to_string()) } } } }
        }
        @if v.api == "3.5" && v.ports.is_empty() && v.lacks.is_empty() {
            h3 { "Linux 3.5" }
            p { "✔ No port needed, and nothing the board lacks." }
        }
        @if !v.unmodelled.is_empty() {
            h3 { "Hardware the emulated board lacks" }
            ul.unmodelled { @for a in &v.unmodelled { li { span.state { "? " } (a.to_string()) } } }
        }
    }
}

/// The console, cut to [`CONSOLE_LINES`]: our markers folded away, the
/// reports' lines marked, each line anchored by its number.
pub fn console(k: usize, u: &UnitPage) -> Markup {
    let reports: HashSet<usize> =
        (u.verdict.events.iter().chain(&u.verdict.unrelated)).flat_map(|e| e.line..e.line + e.block.len()).collect();
    let lines = &u.transcript.lines;
    let half = CONSOLE_LINES / 2;
    let (head, tail, cut) = if lines.len() > CONSOLE_LINES {
        (&lines[..half], &lines[lines.len() - half..], lines.len() - CONSOLE_LINES)
    } else {
        (&lines[..], &lines[..0], 0)
    };
    html! {
        h3 { "Console" }
        details.console {
            summary {
                (lines.len()) " lines"
                @if u.transcript.dropped > 0 { ", " (u.transcript.dropped) " more not kept (a flood)" }
                ", the harness's markers folded"
            }
            @if cut > 0 {
                p.cut {
                    "Cut: the first and last " (half) " lines shown, " (cut) " left out; console.log has them all."
                }
            }
            div.log {
                (console_lines(k, head, &reports))
                @if cut > 0 { div.cut { "… " (cut) " lines left out …" } }
                (console_lines(k, tail, &reports))
            }
        }
    }
}

/// Lines of the console; each run of markers one fold.
fn console_lines(k: usize, lines: &[ConsoleLine], reports: &HashSet<usize>) -> Markup {
    let runs = lines.chunk_by(|a, b| (a.kind == LineKind::Marker) == (b.kind == LineKind::Marker));
    html! {
        @for run in runs {
            @if run[0].kind == LineKind::Marker {
                details.markers {
                    summary { (run.len()) " harness marker" @if run.len() > 1 { "s" } }
                    @for l in run { (line(k, l, false)) }
                }
            } @else {
                @for l in run { (line(k, l, reports.contains(&l.number))) }
            }
        }
    }
}

fn line(k: usize, l: &ConsoleLine, report: bool) -> Markup {
    let class = match (report, l.kind) {
        (true, _) => "l report",
        (_, LineKind::Output) => "l output",
        _ => "l",
    };
    html! {
        div class=(class) id=(format!("u{k}-L{}", l.number)) {
            span.n { (l.number) } " "
            @if report { span.flag { "‼ " } }
            (l.shown())
        }
    }
}
