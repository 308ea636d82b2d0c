//! Kernel reports found in the console: oops, BUG, WARNING, KASAN, kmemleak,
//! sleep-in-atomic, lockups, stalls and panics, each as a typed event with its
//! whole report block, the step it happened in and the module symbol in its
//! stack trace.

use crate::lines::SourceLine;
use crate::step::{LineKind, StepKind, TaskPid, Transcript};
use regex::Regex;
use serde::Serialize;
use std::fmt;
use std::sync::LazyLock;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "class", rename_all = "kebab-case")]
pub enum EventKind {
    Panic,
    Oops,
    /// `kernel BUG at file:line!`: a BUG() the kernel does not survive.
    Bug,
    /// A `BUG: …` report the kernel survives (scheduling while atomic, bad
    /// page state, a spinlock or workqueue lockup, SLUB's object checks).
    BugReport,
    /// lockdep: a lock-order inversion, recursive locking, inconsistent
    /// lock state, a bad unlock balance, suspicious RCU usage.
    Lockdep,
    Warning,
    Kasan {
        bug_type: String,
    },
    Kmemleak,
    /// Memory a module allocated and had not freed when it was unloaded:
    /// the kernel's allocation profiling (CONFIG_MEM_ALLOC_PROFILING) counts
    /// what each allocation site holds and warns at rmmod for every site of
    /// the module that still holds bytes.
    UnfreedAtUnload,
    SleepInAtomic,
    SoftLockup,
    HungTask,
    RcuStall,
    /// A stack dump with no `WARNING:` or `BUG:` line: a message, then
    /// dump_stack() (`sysfs: cannot create duplicate filename`, a wrong
    /// schedule_timeout, bad gfp flags, an IRQ nobody cared for, …; the
    /// classes are configs/kernel-reports.toml's).
    StackDump,
}

impl EventKind {
    /// A crash ends what the guest was doing; the rest are reports the kernel
    /// survives, which still fail the run.
    pub fn is_crash(&self) -> bool {
        matches!(self, EventKind::Panic | EventKind::Oops | EventKind::Bug)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::Panic => f.write_str("kernel panic"),
            EventKind::Oops => f.write_str("oops"),
            EventKind::Bug => f.write_str("BUG"),
            EventKind::BugReport => f.write_str("BUG report"),
            EventKind::Lockdep => f.write_str("lockdep"),
            EventKind::Warning => f.write_str("WARNING"),
            EventKind::Kasan { bug_type } => write!(f, "KASAN {bug_type}"),
            EventKind::Kmemleak => f.write_str("kmemleak leak"),
            EventKind::UnfreedAtUnload => f.write_str("unfreed at unload"),
            EventKind::SleepInAtomic => f.write_str("sleep in atomic context"),
            EventKind::SoftLockup => f.write_str("soft lockup"),
            EventKind::HungTask => f.write_str("hung task"),
            EventKind::RcuStall => f.write_str("RCU stall"),
            EventKind::StackDump => f.write_str("stack dump"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub kind: EventKind,
    /// The step running when the report began, if any.
    pub step: Option<String>,
    /// 1-based console log line of the header.
    pub line: usize,
    /// The report, header first, timestamps removed.
    pub block: Vec<String>,
    /// The first `symbol [module]` frame of the report, if a module is involved.
    pub module_symbol: Option<String>,
    /// For a kmemleak report, the size of the leaked object; for an
    /// unfreed-at-unload one, the bytes its allocation site still holds.
    pub leak_size: Option<u64>,
    /// For an unfreed-at-unload report, the allocation site in the
    /// module's source, `file:line`, as the module was built.
    pub leak_site: Option<String>,
    /// For a kmemleak report, the task that allocated the object.
    pub leak_comm: Option<String>,
    /// For a kmemleak report, that task's pid.
    pub leak_pid: Option<u32>,
    /// The frames of the report in modules whose .ko has debug
    /// information, with their source lines ([`Event::locate`]).
    pub frames: Vec<SourceFrame>,
    /// What the report says the module did, from configs/kernel-reports.toml
    /// ("duplicate sysfs name", "free of an already-free IRQ"), and the line
    /// that says it.
    pub class: Option<String>,
    pub class_line: Option<String>,
    /// The function of an unloaded module the report points into (`function
    /// [module]`), which the kernel printed as a bare address: a timer's
    /// function in debug objects' `hint:`, or an oops's `PC is at`. Named
    /// from where the module's code was loaded.
    pub unloaded_code: Option<String>,
    /// The object of an unloaded module whose freed memory the report's
    /// fault touched (`object [module]`): a tasklet left scheduled is found
    /// when the kernel's tasklet code reads it, with that code as the
    /// program counter and the object's bare address as the fault's. Named
    /// from where the module's data was loaded ([`Event::name_unloaded_data`]).
    pub unloaded_data: Option<String>,
}

/// A frame of a report in a module, with its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceFrame {
    /// `function+0xoff/0xlen [module]`, as the kernel printed it (or as
    /// the harness named a bare address).
    pub frame: String,
    /// Innermost first: more than one where the code there was inlined.
    pub lines: Vec<SourceLine>,
}

/// Finds the source lines of `function+offset` in `module` ("" for the
/// kernel itself; innermost first); `return_address` for a frame below the
/// first.
pub type Locate<'a> = dyn Fn(&str, &str, u64, bool) -> Vec<SourceLine> + 'a;

impl Event {
    /// The line that names the report ("cut here" rulers skipped).
    pub fn first_line(&self) -> &str {
        self.block.iter().find(|l| !l.contains("cut here")).or(self.block.first()).map(String::as_str).unwrap_or("")
    }

    /// The report's kind with its class: `WARNING (free of an already-free
    /// IRQ)`, `duplicate sysfs name` (a bare stack dump is its class).
    pub fn title(&self) -> String {
        match (&self.class, &self.kind) {
            (Some(c), EventKind::StackDump) => c.clone(),
            (Some(c), k) => format!("{k} ({c})"),
            (None, k) => k.to_string(),
        }
    }

    /// The line that says most of what happened: the class's line, else
    /// the first.
    pub fn headline(&self) -> &str {
        self.class_line.as_deref().unwrap_or_else(|| self.first_line())
    }

    /// Fills `frames`: every `function+0xoff/0xlen [module]` (and kernel
    /// `function+0xoff/0xlen`) of the report
    /// (and every bare address `name` can name) that `locate` finds in the
    /// source, once each. The `PC is at` line is the faulting instruction
    /// itself; every other frame is a return address, so the line of the
    /// call before it is the one shown.
    pub fn locate(&mut self, name: &dyn Fn(u64) -> Option<String>, locate: &Locate) {
        for l in &self.block {
            let exact = l.trim_start().starts_with("PC is at ");
            let named = BARE_FRAME.captures(l).and_then(|c| u64::from_str_radix(&c[1], 16).ok()).and_then(name);
            // Only frames with an offset have a place in the source.
            for c in FRAME.captures_iter(named.as_deref().unwrap_or(l)) {
                let Ok(offset) = u64::from_str_radix(&c["off"], 16) else { continue };
                let text = &c[0];
                if self.frames.iter().any(|f| f.frame == text) {
                    continue;
                }
                let module = c.name("module").map(|m| m.as_str()).unwrap_or("");
                let lines = locate(module, &c["function"], offset, !exact);
                if !lines.is_empty() {
                    self.frames.push(SourceFrame { frame: text.to_string(), lines });
                }
            }
        }
    }

    /// Names the unloaded module's object that a fault's address is in,
    /// with `name`, which names data addresses only (a module's code is
    /// named at the scan).
    pub fn name_unloaded_data(&mut self, name: &dyn Fn(u64) -> Option<String>) {
        self.unloaded_data = self.block.iter().find_map(|l| {
            let addr = u64::from_str_radix(&UNLOADED_DATA.captures(l)?[1], 16).ok()?;
            let named = name(addr)?;
            let c = MODULE_FRAME.captures(&named)?;
            Some(format!("{} [{}]", &c["function"], &c["module"]))
        });
    }

    /// Whether the report concerns `module` of `unit`. `pids` are the
    /// insmod and rmmod pids the steps recorded: a leak allocated by one of
    /// them is that unit's module's, whatever its frames say (an unloaded
    /// module's bare addresses may since have been reused by another, and
    /// two units may each load a module of that name). Otherwise a frame
    /// names the module; a report that names none is tied to whichever
    /// module insmod or rmmod was loading.
    pub fn involves(&self, unit: Option<&str>, module: &str, pids: &[TaskPid]) -> bool {
        if let Some(pid) = self.leak_pid {
            if let Some(owner) = pids.iter().find(|p| p.pid == pid) {
                return owner.module == module && owner.unit.as_deref() == unit;
            }
        }
        match self.module_symbol.as_deref().or(self.unloaded_data.as_deref()) {
            Some(s) => s.ends_with(&format!("[{module}]")),
            None => matches!(self.leak_comm.as_deref(), Some("insmod" | "rmmod")),
        }
    }
}

static KASAN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^BUG: KASAN: ([\w-]+)").unwrap());
/// A module's frame: `function [module]` or `function+0xoff/0xlen [module]`.
static MODULE_FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?P<function>[A-Za-z_][\w.]*)(?:\+0x(?P<off>[0-9a-f]+)/0x[0-9a-f]+)? \[(?P<module>\w+)\]").unwrap()
});
/// A frame with its place in a function: `function+0xoff/0xlen`, with
/// ` [module]` when a module's, without when the kernel's.
static FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?P<function>[A-Za-z_][\w.]*)\+0x(?P<off>[0-9a-f]+)/0x[0-9a-f]+(?: \[(?P<module>\w+)\])?").unwrap()
});
/// A frame the kernel could not name: `0xbf00004c` or `[<bf00004c>] 0xbf00004c`.
static BARE_FRAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(?:\[<[0-9a-f]+>\]\s+)?0x([0-9a-f]+)\s*$").unwrap());
/// A bare address where the kernel names code: debug objects' `hint:` (a
/// timer's or work's function) and an oops's program counter.
static UNLOADED_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:\bhint: |^\s*PC is at )0x([0-9a-f]+)\s*$").unwrap());
/// The address a fault touched, which an oops prints bare: in 6.12 `…
/// virtual address bf002004 when read`, in 3.5 without the access.
static UNLOADED_DATA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*Unable to handle kernel paging request at virtual address (?:0x)?([0-9a-f]+)\b").unwrap()
});
static LOCKDEP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:WARNING: |\[ (?:INFO|BUG): )",
        r"(?:possible circular locking dependency detected|possible recursive locking detected|inconsistent lock state",
        r"|suspicious RCU usage|bad unlock balance detected|possible irq lock inversion dependency detected",
        r"|held lock freed|lock held when returning to user space|circular locking deadlock detected)",
        r"|^INFO: trying to register non-static key"
    ))
    .unwrap()
});
static SLUB_BUG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^BUG [\w.:-]+ \((?:Not tainted|Tainted: [^)]*)\): ").unwrap());
static RCU_STALL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:rcu: )?INFO: rcu_\w+ (?:self-)?detected (?:stall|expedited stall)").unwrap());
static LEAK_HEADER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^unreferenced object 0x[0-9a-f]+ \(size (\d+)\)").unwrap());
/// lib/alloc_tag.c alloc_tag_module_unload's WARN message (6.10+), one per
/// allocation site of the unloaded module that still holds memory.
static UNFREED_AT_UNLOAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?P<site>\S+:\d+) module (?P<module>\w+) func:(?P<function>[\w.]+)",
        r" has (?P<bytes>\d+) allocated at module unload$"
    ))
    .unwrap()
});
/// One entry of configs/kernel-reports.toml.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportEntry {
    class: String,
    pattern: String,
    #[serde(default)]
    header: bool,
    #[serde(default)]
    follows: bool,
    #[allow(dead_code)]
    source: String,
}

#[derive(serde::Deserialize)]
struct ReportTable {
    report: Vec<ReportEntry>,
}

/// An entry with its pattern compiled.
struct ReportClass {
    class: String,
    pattern: Regex,
    header: bool,
    follows: bool,
}

/// The table, read into the binary (the judge does no I/O).
static REPORTS: LazyLock<Vec<ReportClass>> = LazyLock::new(|| {
    let table: ReportTable = toml::from_str(include_str!("../../../configs/kernel-reports.toml"))
        .expect("configs/kernel-reports.toml parses");
    table
        .report
        .into_iter()
        .map(|e| ReportClass {
            pattern: Regex::new(&e.pattern)
                .unwrap_or_else(|err| panic!("configs/kernel-reports.toml: {}: {err}", e.class)),
            class: e.class,
            header: e.header,
            follows: e.follows,
        })
        .collect()
});
/// The first line of a stack dump (lib/dump_stack.c dump_stack_print_info;
/// 6.12 has `UID:`, older 6.x not).
static DUMP_START: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^CPU: \d+ (?:UID: \d+ )?PID: \d+ Comm: ").unwrap());

/// The table's header entry that `message` begins, if any.
fn report_header(message: &str) -> Option<&'static ReportClass> {
    REPORTS.iter().find(|r| r.header && r.pattern.is_match(message))
}

static LEAK_COMM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"^\s+comm "([^"]*)"(?:, pid (\d+))?"#).unwrap());

/// Whether a console line is a board starting over: U-Boot's banner
/// (`U-Boot 2010.12 … for TINY4412`, its own bytes, no printk timestamp), or
/// a kernel's first line at 0.000000 s. A module cannot print the one with a
/// timestamp of 0, nor the other without one; a board replay sees either
/// when a watchdog resets the board under its steps.
pub fn is_board_reset(raw: &str) -> bool {
    let line = raw.trim_end_matches(['\r', '\n']);
    if line.starts_with("U-Boot ") {
        return true;
    }
    let (stamp, message) = crate::marker::split_timestamp(line);
    stamp == Some(0.0) && message.starts_with("Booting Linux on physical CPU")
}

/// Classifies a report's first line.
pub fn classify(message: &str) -> Option<EventKind> {
    let m = message.trim_start();
    if m.starts_with("Kernel panic - not syncing") {
        return Some(EventKind::Panic);
    }
    if let Some(c) = KASAN.captures(m) {
        return Some(EventKind::Kasan { bug_type: c[1].to_string() });
    }
    if m.starts_with("BUG: sleeping function called from invalid context") {
        return Some(EventKind::SleepInAtomic);
    }
    if m.contains("BUG: soft lockup") {
        return Some(EventKind::SoftLockup);
    }
    // ARM words its oopses several ways: "Unable to handle kernel NULL pointer
    // dereference", "Unhandled fault: page domain fault (0x81b) at 0x00000000"
    // (a NULL write under KASAN's domain setup), then "Internal error: Oops: 817"
    // or "Internal error: : 81b".
    if m.starts_with("Unable to handle kernel") || m.starts_with("Internal error:") || m.starts_with("Unhandled fault:")
    {
        return Some(EventKind::Oops);
    }
    // lockdep, 6.x ("WARNING: possible circular locking dependency
    // detected", kernel/locking/lockdep.c print_circular_bug_header) and 3.x
    // ("[ INFO: possible circular locking dependency detected ]", the same
    // function in kernel/lockdep.c), before the generic WARNING and BUG.
    if LOCKDEP.is_match(m) {
        return Some(EventKind::Lockdep);
    }
    // BUG() prints "kernel BUG at file:line!" and then dies (an oops follows).
    if m.starts_with("kernel BUG at") {
        return Some(EventKind::Bug);
    }
    // Other BUG reports are printed by a kernel that carries on: "BUG:
    // scheduling while atomic" (kernel/sched/core.c __schedule_bug), "BUG:
    // Bad page state" (mm/page_alloc.c bad_page), "BUG: spinlock lockup
    // suspected" (3.x kernel/spinlock_debug.c), "BUG: using
    // smp_processor_id() in preemptible" (lib/smp_processor_id.c), "BUG:
    // workqueue lockup" (kernel/workqueue.c), and SLUB's "BUG kmalloc-128
    // (Not tainted): Right Redzone overwritten" (mm/slub.c slab_bug, no
    // colon). If one kills the kernel, the oops or panic after it says so.
    if m.starts_with("BUG: ") || SLUB_BUG.is_match(m) {
        return Some(EventKind::BugReport);
    }
    // "cut here" opens WARN/BUG reports ("------------[ cut here ]") and, on
    // ARM, oopses ("8<--- cut here ---"); the line after it names the report.
    if m.starts_with("WARNING: CPU:") || m.contains("--[ cut here ]--") || m.starts_with("8<--- cut here") {
        return Some(EventKind::Warning);
    }
    if m.starts_with("unreferenced object 0x") {
        return Some(EventKind::Kmemleak);
    }
    if m.starts_with("INFO: task ") && m.contains(" blocked for more than ") {
        return Some(EventKind::HungTask);
    }
    // 6.x: "rcu: INFO: rcu_sched self-detected stall on CPU"; 3.x has no
    // "rcu: " prefix: "INFO: rcu_sched self-detected stall on CPU",
    // "INFO: rcu_preempt detected stalls on CPUs/tasks:" (kernel/rcutree.c).
    if RCU_STALL.is_match(m) || m.contains("detected stalls on CPUs") {
        return Some(EventKind::RcuStall);
    }
    report_header(m).map(|_| EventKind::StackDump)
}

/// Whether `message` closes the block of a report of `kind`.
fn ends_block(kind: &EventKind, message: &str, len: usize) -> bool {
    match kind {
        // kmemleak reports are the header plus indented lines.
        EventKind::Kmemleak => !message.starts_with(' '),
        // KASAN reports close with a ruler of '='.
        EventKind::Kasan { .. } => message.starts_with("=========="),
        // An oops always ends with its end marker (oops_exit), and 3.5's
        // ARM oops prints blank lines inside it, between the memory it
        // dumps around each register ("SP: 0xeca25e38:", "FP: …"), before
        // its backtrace.
        EventKind::Oops => message.starts_with("---[ end "),
        _ => message.starts_with("---[ end ") || (len > 1 && message.is_empty()),
    }
}

/// Whether the kernel ends a report of this kind with a line of its own:
/// WARN, BUG and oops with `---[ end trace … ]---` (kernel/panic.c
/// print_oops_end_marker), a panic with `---[ end Kernel panic …`, KASAN
/// with its ruler of '='; and a lone "cut here" ruler still awaits the line
/// that names its report.
fn awaits_its_end(ev: &Event) -> bool {
    (ev.block.len() == 1 && ev.block[0].contains("cut here"))
        || matches!(
            ev.kind,
            EventKind::Warning | EventKind::Oops | EventKind::Bug | EventKind::Panic | EventKind::Kasan { .. }
        )
}

/// Whether a marker line closes the open report. Never one that awaits the
/// kernel's own end line; a report without one (a `BUG: …`, lockdep, a bare
/// stack dump) ends at the next step boundary (begin, end, done), since
/// nothing else says where it stops; the other markers (pid, section,
/// board, …) are written while the kernel may be mid-report, and pass over.
fn marker_closes(ev: &Event, message: &str, nonce: &str) -> bool {
    use crate::marker::{parse_marker, Marker};
    let boundary = matches!(
        parse_marker(message, nonce),
        Some(Marker::Begin { .. } | Marker::End { .. } | Marker::Done | Marker::Start { .. })
    );
    boundary && !awaits_its_end(ev)
}

/// Whether `line` is a step boundary marker (no report being open): after
/// one, a stack dump is no earlier report's.
fn marker_closes_nothing_open(line: &crate::step::ConsoleLine, nonce: &str) -> bool {
    use crate::marker::{parse_marker, Marker};
    line.kind == LineKind::Marker
        && matches!(
            parse_marker(&line.message, nonce),
            Some(Marker::Begin { .. } | Marker::End { .. } | Marker::Done | Marker::Start { .. })
        )
}

/// The longest block kept, so a flood cannot eat memory.
const MAX_BLOCK: usize = 200;

/// Finds every report in the transcript. `name` resolves bare addresses of
/// the module under test (see [`crate::symbols`]).
pub fn scan(t: &Transcript, name: &dyn Fn(u64) -> Option<String>) -> Vec<Event> {
    let mut s = Scan { events: Vec::new(), open: None, prev: None, blank_closed: None, name };
    for line in &t.lines {
        s.line(t, line);
    }
    if let Some(ev) = s.open {
        s.events.push(finish(ev, name));
    }
    s.events
}

/// [`scan`]'s state between lines.
struct Scan<'n> {
    events: Vec<Event>,
    open: Option<Event>,
    /// The last kernel line outside any report: what a bare stack dump's
    /// caller printed before it.
    prev: Option<(usize, String)>,
    /// The lines since a report ended at a blank line, while its stack dump
    /// may still follow.
    blank_closed: Option<Vec<String>>,
    name: &'n dyn Fn(u64) -> Option<String>,
}

impl Scan<'_> {
    fn line(&mut self, t: &Transcript, line: &crate::step::ConsoleLine) {
        // What a step's command printed is user space's, not a kernel
        // report, whatever it looks like; except the leaks step's, which is
        // kmemleak's own report read from debugfs.
        let leaks_step = line.step.is_some_and(|i| t.steps[i].kind() == StepKind::Leaks);
        if line.kind == LineKind::Output && !leaks_step {
            return;
        }
        // Our own markers come from another task (the step library's
        // shell) and land wherever the console interleaves them: between a
        // report's "cut here" and its WARNING line, inside its stack dump.
        // They never cut a report in two (see `marker_closes`).
        if line.kind == LineKind::Marker
            && self.open.as_ref().is_some_and(|ev| !marker_closes(ev, &line.message, t.nonce()))
        {
            return;
        }
        let message = line.message.as_str();
        let header = classify(message);
        if self.folds(message, header.as_ref()) {
            return;
        }
        // A stack dump that no report line began: the line before it is
        // what the kernel said (`schedule_timeout: wrong timeout value`).
        if self.open.is_none() && header.is_none() && line.kind == LineKind::Kernel && DUMP_START.is_match(message) {
            self.bare_dump(t, line);
            return;
        }
        if let Some(ev) = self.open.as_mut() {
            let closes = ends_block(&ev.kind, message, ev.block.len());
            let marker = line.kind == LineKind::Marker;
            if header.is_some() || marker || ev.block.len() >= MAX_BLOCK || closes {
                if closes && !matches!(ev.kind, EventKind::Kmemleak) {
                    ev.block.push(message.to_string());
                }
                // A blank line may be the report's own (lockdep prints
                // "\nstack backtrace:"): its stack dump, if one follows,
                // is still this report's.
                self.blank_closed = (closes && message.is_empty() && header.is_none() && !marker).then(Vec::new);
                self.events.push(finish(self.open.take().unwrap(), self.name));
                if header.is_none() {
                    return;
                }
            } else {
                ev.block.push(message.to_string());
                return;
            }
        }
        if let Some(kind) = header {
            let step = line.step.map(|i| t.steps[i].name.clone());
            self.open = Some(Event::new(kind, step, line.number, message.to_string()));
            self.prev = None;
            self.blank_closed = None;
        } else if line.kind == LineKind::Kernel {
            self.prev = self.open.is_none().then(|| (line.number, message.to_string()));
            // A few lines between a blank line and a stack dump (lockdep's
            // "stack backtrace:"); more, and the report was over.
            self.blank_closed = self.blank_closed.take().filter(|b| b.len() < 4).map(|mut b| {
                b.push(message.to_string());
                b
            });
        } else if marker_closes_nothing_open(line, t.nonce()) {
            self.blank_closed = None;
        }
    }

    /// Whether a report line (`header`) continues the open report rather
    /// than beginning one, and was added to it.
    fn folds(&mut self, message: &str, header: Option<&EventKind>) -> bool {
        let (Some(ev), Some(kind)) = (self.open.as_mut(), header) else { return false };
        // "cut here" is followed by the WARNING or BUG line that names the
        // report: fold the two into one event.
        if ev.block.len() == 1 && ev.block[0].contains("cut here") {
            ev.kind = kind.clone();
            ev.block.push(message.to_string());
            return true;
        }
        // kobject_add_internal's error after sysfs_warn_dup's dump: one
        // mistake, one report. An ARM oops prints "Unable to handle kernel
        // ..." and then "Internal error: Oops ...": one report, not two.
        let follows = match kind {
            EventKind::StackDump => {
                ev.kind == EventKind::StackDump && report_header(message).is_some_and(|r| r.follows)
            }
            EventKind::Oops => ev.kind == EventKind::Oops,
            _ => false,
        };
        if follows {
            ev.block.push(message.to_string());
        }
        follows
    }

    /// A stack dump no report line began: it continues the report that
    /// ended at a blank line just before, or begins one with the line
    /// before it.
    fn bare_dump(&mut self, t: &Transcript, line: &crate::step::ConsoleLine) {
        let message = line.message.as_str();
        if let Some(between) = self.blank_closed.take() {
            if let Some(mut ev) = self.events.pop() {
                ev.block.extend(between);
                ev.block.push(message.to_string());
                self.open = Some(ev);
                return;
            }
        }
        let (number, said) = self.prev.clone().unwrap_or_else(|| (line.number, message.to_string()));
        let step = line.step.map(|i| t.steps[i].name.clone());
        let mut ev = Event::new(EventKind::StackDump, step, number, said.clone());
        if said != message {
            ev.block.push(message.to_string());
        }
        self.open = Some(ev);
    }
}

impl Event {
    fn new(kind: EventKind, step: Option<String>, line: usize, first: String) -> Event {
        Event {
            kind,
            step,
            line,
            block: vec![first],
            module_symbol: None,
            leak_size: None,
            leak_site: None,
            leak_comm: None,
            leak_pid: None,
            frames: Vec::new(),
            class: None,
            class_line: None,
            unloaded_code: None,
            unloaded_data: None,
        }
    }
}

fn finish(mut ev: Event, name: &dyn Fn(u64) -> Option<String>) -> Event {
    // Its class: the first entry of the table a line of it matches.
    if let Some((r, l)) = REPORTS.iter().find_map(|r| ev.block.iter().find(|l| r.pattern.is_match(l)).map(|l| (r, l))) {
        ev.class = Some(r.class.clone());
        ev.class_line = Some(l.clone());
    } else if ev.kind == EventKind::StackDump {
        ev.class = Some("stack dump".into());
        ev.class_line = ev.block.first().filter(|l| !l.is_empty()).cloned();
    }
    ev.module_symbol = ev.block.iter().find_map(|l| {
        if let Some(c) = MODULE_FRAME.captures(l) {
            return Some(format!("{} [{}]", crate::lines::readable(&c["function"]), &c["module"]));
        }
        let addr = u64::from_str_radix(&BARE_FRAME.captures(l)?[1], 16).ok()?;
        let named = name(addr)?;
        // Keep the kernel's short form: function [module].
        let c = MODULE_FRAME.captures(&named)?;
        Some(format!("{} [{}]", crate::lines::readable(&c["function"]), &c["module"]))
    });
    ev.unloaded_code = unloaded_code(&ev.block, name);
    if ev.unloaded_code.is_some() {
        ev.module_symbol.clone_from(&ev.unloaded_code);
    }
    // A WARNING of allocation profiling's is a leak, with its site named.
    if let Some(c) =
        (ev.kind == EventKind::Warning).then(|| ev.block.iter().find_map(|l| UNFREED_AT_UNLOAD.captures(l))).flatten()
    {
        ev.kind = EventKind::UnfreedAtUnload;
        ev.leak_size = c["bytes"].parse().ok();
        ev.leak_site = Some(c["site"].to_string());
        ev.module_symbol = Some(format!("{} [{}]", crate::lines::readable(&c["function"]), &c["module"]));
    }
    if ev.kind == EventKind::Kmemleak {
        ev.leak_size = LEAK_HEADER.captures(&ev.block[0]).and_then(|c| c[1].parse().ok());
        if let Some(c) = ev.block.iter().find_map(|l| LEAK_COMM.captures(l)) {
            ev.leak_comm = Some(c[1].to_string());
            ev.leak_pid = c.get(2).and_then(|p| p.as_str().parse().ok());
        }
    }
    ev
}

/// The function of an unloaded module that `block` points into: once the
/// module is gone the kernel prints its code's address bare (debug objects'
/// `hint: 0xbf000010`, an oops's `PC is at 0xbf000010`), and the addresses
/// recorded at insmod name it.
fn unloaded_code(block: &[String], name: &dyn Fn(u64) -> Option<String>) -> Option<String> {
    block.iter().find_map(|l| {
        let addr = u64::from_str_radix(&UNLOADED_CODE.captures(l)?[1], 16).ok()?;
        let named = name(addr)?;
        let c = MODULE_FRAME.captures(&named)?;
        Some(format!("{} [{}]", crate::lines::readable(&c["function"]), &c["module"]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_board_starting_over_is_its_banner_not_a_line_a_module_can_print() {
        assert!(is_board_reset("U-Boot 2010.12-00000-gb391276-dirty (Jan 17 2014 - 11:28:57) for TINY4412\r"));
        assert!(is_board_reset("[    0.000000] Booting Linux on physical CPU 0x0"));
        // A module's printk has a later timestamp, and U-Boot's is no printk.
        assert!(!is_board_reset("[   12.500000] Booting Linux on physical CPU 0x0"));
        assert!(!is_board_reset("[   12.500000] U-Boot 2010.12"));
        assert!(!is_board_reset("Booting Linux on physical CPU 0x0"));
    }

    /// Each format with a whole report block, in the kernel's own wording:
    /// 6.12's and 3.x's (file names in `classify`'s comments).
    #[test]
    fn lockdep_bug_reports_rcu_stalls_and_slub_by_their_own_formats() {
        let cases: &[(&str, EventKind)] = &[
            (
                "======================================================\n\
                 WARNING: possible circular locking dependency detected\n\
                 6.12.117 #1 Not tainted\n\
                 ------------------------------------------------------\n\
                 insmod/70 is trying to acquire lock:\n\
                 c1a2b3c4 (&lock_b){+.+.}-{3:3}, at: lock_order_do+0x40/0x90 [fault_lock_order]\n",
                EventKind::Lockdep,
            ),
            (
                "=======================================================\n\
                 [ INFO: possible circular locking dependency detected ]\n\
                 3.5.0-FriendlyARM #1 Not tainted\n\
                 -------------------------------------------------------\n\
                 insmod/70 is trying to acquire lock:\n",
                EventKind::Lockdep,
            ),
            ("=====================================\n[ BUG: bad unlock balance detected! ]\n3.5.0 #1 Not \
                tainted\n", EventKind::Lockdep),
            ("WARNING: possible recursive locking detected\n6.12.117 #1 Not tainted\n", EventKind::Lockdep),
            ("WARNING: inconsistent lock state\n6.12.117 #1 Not tainted\n", EventKind::Lockdep),
            ("WARNING: suspicious RCU usage\n6.12.117 #1 Not tainted\n", EventKind::Lockdep),
            ("INFO: trying to register non-static key.\nThe code is fine but needs lockdep annotation, or \
                maybe\n", EventKind::Lockdep),
            ("BUG: scheduling while atomic: insmod/70/0x00000002\nModules linked in: \
                fault_sched_atomic(O+)\n", EventKind::BugReport),
            ("BUG: Bad page state in process insmod  pfn:4f2a1\npage: refcount:0 mapcount:-1\n", EventKind::BugReport),
            ("BUG: spinlock lockup suspected on CPU#1, insmod/70\n lock: 0xbf002000, .magic: \
                dead4ead\n", EventKind::BugReport),
            ("BUG: using smp_processor_id() in preemptible [00000000] code: insmod/70\ncaller is x+0x10/0x20 \
                [m]\n", EventKind::BugReport),
            ("BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 30s!\n", EventKind::BugReport),
            (
                "=============================================================================\n\
                 BUG kmalloc-128 (Not tainted): Right Redzone overwritten\n\
                 -----------------------------------------------------------------------------\n",
                EventKind::BugReport,
            ),
            ("BUG kmalloc-128 (Tainted: G           O): Redzone overwritten\n", EventKind::BugReport),
            ("INFO: rcu_sched self-detected stall on CPU { 0}  (t=2100 jiffies g=1 c=0 q=7)\n", EventKind::RcuStall),
            ("INFO: rcu_preempt detected stalls on CPUs/tasks: { 1} (detected by 0, t=2102 \
                jiffies)\n", EventKind::RcuStall),
            ("rcu: INFO: rcu_sched self-detected stall on CPU\nrcu: \t0-....: (2100 ticks this \
                GP)\n", EventKind::RcuStall),
            ("------------[ cut here ]------------\nkernel BUG at drivers/x.c:42!\nInternal error: Oops - BUG: 0 [#1] \
                SMP ARM\n", EventKind::Bug),
        ];
        for (block, kind) in cases {
            let ev = scan(&tlog(block), &|_| None);
            assert_eq!(ev.first().map(|e| &e.kind), Some(kind), "{block}");
            assert_eq!(ev.first().unwrap().kind.is_crash(), *kind == EventKind::Bug, "{block}");
        }
    }

    /// A caller prefix (CONFIG_PRINTK_CALLER) does not hide a report.
    #[test]
    fn reports_behind_a_caller_prefix_are_found() {
        let t = tlog(
            "[    1.100000][   T70] Unable to handle kernel NULL pointer dereference at virtual address 00000000\n\
                      [    1.100100][   T70] PC is at f+0x0/0x4 [m]\n",
        );
        let ev = scan(&t, &|_| None);
        assert_eq!(ev.first().map(|e| &e.kind), Some(&EventKind::Oops), "{ev:?}");
        assert_eq!(ev[0].module_symbol.as_deref(), Some("f [m]"));
    }

    fn tlog(s: &str) -> Transcript {
        Transcript::from_log(&crate::marker::with_nonce(s, crate::marker::FIXTURE_NONCE), crate::marker::FIXTURE_NONCE)
    }

    #[test]
    fn classifies_headers() {
        let cases = [
            ("Kernel panic - not syncing: Attempted to kill init!", EventKind::Panic),
            ("Unable to handle kernel NULL pointer dereference at virtual address 00000000", EventKind::Oops),
            ("Internal error: Oops: 805 [#1] SMP ARM", EventKind::Oops),
            ("Internal error: : 81b [#1] PREEMPT SMP ARM", EventKind::Oops),
            ("Unhandled fault: page domain fault (0x81b) at 0x00000000", EventKind::Oops),
            ("kernel BUG at mm/slub.c:123!", EventKind::Bug),
            ("BUG: scheduling while atomic: insmod/77/0x00000002", EventKind::BugReport),
            ("WARNING: CPU: 1 PID: 77 at kmod/warn.c:9 warn_init+0x10/0x20 [warn]", EventKind::Warning),
            (
                "BUG: KASAN: slab-out-of-bounds in oob_init+0x30/0x60 [oob]",
                EventKind::Kasan { bug_type: "slab-out-of-bounds".into() },
            ),
            ("BUG: KASAN: double-free in kfree+0x1/0x2", EventKind::Kasan { bug_type: "double-free".into() }),
            ("unreferenced object 0xc3a4b000 (size 100):", EventKind::Kmemleak),
            ("BUG: sleeping function called from invalid context at mm/vmalloc.c:3000", EventKind::SleepInAtomic),
            ("watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [insmod:70]", EventKind::SoftLockup),
            ("INFO: task insmod:70 blocked for more than 30 seconds.", EventKind::HungTask),
            ("rcu: INFO: rcu_sched detected stalls on CPUs/tasks:", EventKind::RcuStall),
        ];
        for (line, kind) in cases {
            assert_eq!(classify(line), Some(kind), "{line}");
        }
        for benign in ["process:insmod", "mmc exit!", "BUGS are fun", "Warning: unable to open an initial console."] {
            assert_eq!(classify(benign), None, "{benign}");
        }
    }

    #[test]
    fn oops_block_is_attributed_with_its_module_symbol() {
        let t = tlog(
            "[ 1.0] @@harness begin insmod\n\
             [ 1.1] 8<--- cut here ---\n\
             [ 1.1] Unable to handle kernel NULL pointer dereference at virtual address 00000000 when write\n\
             [ 1.1] Internal error: Oops: 817 [#1] SMP ARM\n\
             [ 1.1] PC is at null_init+0x10/0x1000 [null_deref]\n\
             [ 1.1]  null_init [null_deref] from do_one_initcall+0x58/0x1bc\n\
             [ 1.1] ---[ end trace 0000000000000000 ]---\n\
             [ 1.2] @@harness end insmod rc=139\n",
        );
        let ev = scan(&t, &|_| None);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0].kind, EventKind::Oops);
        assert_eq!(ev[0].step.as_deref(), Some("insmod"));
        assert_eq!(ev[0].line, 2);
        assert_eq!(ev[0].block.len(), 6);
        assert!(ev[0].block[1].starts_with("Unable to handle"));
        assert_eq!(ev[0].module_symbol.as_deref(), Some("null_init [null_deref]"));
    }

    #[test]
    fn cut_here_folds_into_the_warning() {
        let t = tlog(
            "------------[ cut here ]------------\n\
             WARNING: CPU: 0 PID: 70 at warn.c:9 warn_init+0x1c/0x30 [warn_on]\n\
             Modules linked in: warn_on(O+)\n\
             ---[ end trace 0000000000000000 ]---\n\
             next\n",
        );
        let ev = scan(&t, &|_| None);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0].kind, EventKind::Warning);
        assert_eq!(ev[0].block.len(), 4);
        assert_eq!(ev[0].module_symbol.as_deref(), Some("warn_init [warn_on]"));
    }

    /// lockdep prints blank lines inside its report, then "stack
    /// backtrace:" and the dump: one report, the dump in it.
    #[test]
    fn a_stack_dump_after_a_reports_blank_line_is_that_reports() {
        let t = tlog(
            "@@harness begin insmod\n\
             WARNING: possible recursive locking detected\n\
             6.12.118-debug #1 Not tainted\n\
             insmod/70 is trying to acquire lock:\n\
             \n\
             stack backtrace:\n\
             CPU: 0 UID: 0 PID: 70 Comm: insmod Tainted: G O 6.12.118-debug #1\n\
             \x20lock_do [m] from do_one_initcall+0x58/0x1bc\n\
             @@harness end insmod rc=0\n",
        );
        let ev = scan(&t, &|_| None);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0].kind, EventKind::Lockdep);
        assert!(ev[0].block.iter().any(|l| l == "stack backtrace:"), "{:?}", ev[0].block);
        assert_eq!(ev[0].module_symbol.as_deref(), Some("lock_do [m]"));
    }

    /// A report without an end line of its own is not cut by a marker
    /// that frames no step either, but ends at the step's end.
    #[test]
    fn a_report_without_an_end_line_spans_markers_until_the_step_ends() {
        let t = tlog(
            "@@harness begin insmod\n\
             BUG: scheduling while atomic: insmod/70/0x00000002\n\
             @@harness pid m 70\n\
             Modules linked in: m(O+)\n\
             CPU: 0 UID: 0 PID: 70 Comm: insmod Tainted: G O 6.12.117 #1\n\
             \x20sched_do [m] from do_one_initcall+0x58/0x1bc\n\
             @@harness end insmod rc=0\n\
             after\n",
        );
        let ev = scan(&t, &|_| None);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0].block.len(), 4, "{:?}", ev[0].block);
        assert_eq!(ev[0].module_symbol.as_deref(), Some("sched_do [m]"));
    }

    #[test]
    fn kmemleak_block_ends_at_the_first_unindented_line() {
        let t = tlog(
            "unreferenced object 0xc3a4b000 (size 100):\n  comm \"insmod\", pid 70\n  backtrace:\n    [<bf000040>] \
                leak_init+0x40/0x1000 [leaky]\nunreferenced object 0xc3a4c000 (size 64):\n  backtrace:\nafter\n",
        );
        let ev = scan(&t, &|_| None);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev[0].block.len(), 4);
        assert_eq!(ev[0].module_symbol.as_deref(), Some("leak_init [leaky]"));
        assert_eq!(ev[1].block.len(), 2);
        assert_eq!(ev[0].leak_size, Some(100));
        assert_eq!(ev[0].leak_comm.as_deref(), Some("insmod"));
        assert_eq!(ev[0].leak_pid, Some(70));
        assert!(
            ev[0].involves(None, "leaky", &[]) && !ev[0].involves(None, "other", &[]),
            "the frame names whose leak it is"
        );
        assert!(!ev[1].involves(None, "leaky", &[]));
        // The pid of a module's insmod outranks a frame (addresses are reused).
        let pid = |unit: Option<&str>, module: &str, pid| TaskPid {
            unit: unit.map(str::to_string),
            module: module.into(),
            pid,
        };
        let pids = [pid(None, "other", 70), pid(None, "leaky", 71)];
        assert!(ev[0].involves(None, "other", &pids) && !ev[0].involves(None, "leaky", &pids));
        // Two units' modules of one name: the pid's unit decides.
        let pids = [pid(Some("a"), "leaky", 60), pid(Some("b"), "leaky", 70)];
        assert!(ev[0].involves(Some("b"), "leaky", &pids) && !ev[0].involves(Some("a"), "leaky", &pids));
        // No module frame and no known pid: allocated while insmod ran, so
        // whichever module it loaded.
        let t = tlog(
            "unreferenced object 0xc3a4b000 (size 100):\n  comm \"insmod\", pid 70\n  backtrace:\n    \
            kmalloc_trace+0x1/0x2\nafter\n",
        );
        let ev = scan(&t, &|_| None);
        assert!(ev[0].involves(None, "leaky", &[]) && ev[0].involves(None, "other", &[]));
    }

    /// Issue 34: a timer left pending at rmmod is found when its memory is
    /// freed; debug objects name its function by a bare address (the module
    /// is gone), which the addresses recorded at insmod name.
    #[test]
    fn a_timer_into_unloaded_code_is_named_from_the_recorded_sections() {
        let t = tlog(concat!(
            "------------[ cut here ]------------\n",
            "ODEBUG: free active (active state 0) object: 3f6a1b2c object type: timer_list hint: 0xbf000010\n",
            "WARNING: CPU: 1 PID: 90 at lib/debugobjects.c:514 debug_print_object+0xa4/0xe0\n",
            " vfree+0x4c/0x2a4\n",
            "---[ end trace 0000000000000000 ]---\n",
        ));
        let resolve = |a: u64| (a == 0xbf000010).then(|| "blink_fn+0x0/0x30 [led_blink]".to_string());
        let ev = scan(&t, &resolve);
        assert_eq!(ev[0].title(), "WARNING (timer or work item pending in freed memory)");
        assert_eq!(ev[0].unloaded_code.as_deref(), Some("blink_fn [led_blink]"));
        assert_eq!(ev[0].module_symbol.as_deref(), Some("blink_fn [led_blink]"));
        assert!(scan(&t, &|_| None)[0].unloaded_code.is_none());
        // An oops whose program counter is in code that has gone.
        let t = tlog(concat!(
            "8<--- cut here ---\n",
            "Unable to handle kernel paging request at virtual address bf000010 when execute\n",
            "Internal error: Oops: 80000007 [#1] SMP ARM\n",
            "PC is at 0xbf000010\n",
            "LR is at tasklet_action_common+0x1/0x2\n",
            "---[ end trace 0000000000000000 ]---\n",
        ));
        let ev = scan(&t, &resolve);
        assert!(ev[0].kind.is_crash(), "{:?}", ev[0].block);
        assert_eq!(ev[0].unloaded_code.as_deref(), Some("blink_fn [led_blink]"));
    }

    #[test]
    fn bare_module_addresses_are_named_by_the_resolver() {
        let t = tlog(
            "unreferenced object 0xc3a4b000 (size 100):\n  comm \"kworker/0:1\", pid 9\n  backtrace (crc 0):\n    \
                __kmalloc_cache_noprof+0x1/0x2\n    0xbf00004c\n    do_one_initcall+0x1/0x2\n",
        );
        let resolve = |a: u64| (a == 0xbf00004c).then(|| "leak_init+0x4c/0x80 [fault_leak]".to_string());
        let ev = scan(&t, &resolve);
        assert_eq!(ev[0].module_symbol.as_deref(), Some("leak_init [fault_leak]"));
        assert!(ev[0].involves(None, "fault_leak", &[]));
        assert!(!scan(&t, &|_| None)[0].involves(None, "fault_leak", &[]));
    }
}
/// The parser against real console logs captured from the harness's own runs
/// (harness/tests/fixtures/console/): each must give exactly its reports.
#[cfg(test)]
mod real_logs {
    use super::*;

    fn scan_fixture(name: &str) -> (Transcript, Vec<Event>) {
        let p = crate::repo_root().join("harness/tests/fixtures/console").join(name);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let t = Transcript::from_log(&text, crate::marker::FIXTURE_NONCE);
        let ev = scan(&t, &|_| None);
        (t, ev)
    }

    fn summary(ev: &[Event]) -> Vec<(String, Option<String>, Option<String>)> {
        ev.iter().map(|e| (e.kind.to_string(), e.step.clone(), e.module_symbol.clone())).collect()
    }

    fn one(kind: &str, step: &str, sym: Option<&str>) -> (String, Option<String>, Option<String>) {
        (kind.to_string(), Some(step.to_string()), sym.map(str::to_string))
    }

    #[test]
    fn clean_runs_have_no_reports_and_every_step() {
        for (name, steps) in [
            ("exynos4210-mmc_byte.log", &["insmod", "rmmod", "gone"][..]),
            ("exynos4210-debug-mmc_byte-pass.log", &["insmod", "rmmod", "gone", "leaks"][..]),
        ] {
            let (t, ev) = scan_fixture(name);
            assert!(ev.is_empty(), "{name}: {:?}", summary(&ev));
            assert!(t.done, "{name}");
            let got: Vec<_> = t.steps.iter().map(|s| (s.name.as_str(), s.rc)).collect();
            let want: Vec<_> = steps.iter().map(|s| (*s, Some(0))).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn each_fault_gives_exactly_its_report() {
        let cases = [
            (
                "exynos4210-debug-double-free.log",
                vec![one("KASAN double-free", "insmod", Some("double_free_do [fault_double_free]"))],
            ),
            (
                "exynos4210-debug-oob-write.log",
                vec![one("KASAN slab-out-of-bounds", "insmod", Some("oob_write_do [fault_oob_write]"))],
            ),
            (
                "exynos4210-debug-use-after-free.log",
                vec![one("KASAN slab-use-after-free", "insmod", Some("use_after_free_do [fault_use_after_free]"))],
            ),
            (
                "exynos4210-debug-vzalloc-atomic.log",
                vec![one("sleep in atomic context", "insmod", Some("vzalloc_atomic_do [fault_vzalloc_atomic]"))],
            ),
            ("exynos4210-debug-warn-on.log", vec![one("WARNING", "insmod", Some("warn_on_do [fault_warn_on]"))]),
            ("exynos4210-panic.log", vec![one("kernel panic", "insmod", Some("panic_do [fault_panic]"))]),
            // The oops kills insmod half way, so the module's init allocation
            // is never freed either: kmemleak rightly reports it too.
            (
                "exynos4210-debug-null-deref.log",
                vec![
                    one("oops", "insmod", Some("null_deref_do [fault_null_deref]")),
                    one("kmemleak leak", "leaks", None),
                ],
            ),
            ("exynos4210-debug-leak.log", vec![one("kmemleak leak", "leaks", None)]),
            // The debug profile's leak check: the kernel's own WARNING at
            // rmmod, named by the site it gives.
            (
                "exynos4210-debug-unfreed-at-unload.log",
                vec![one("unfreed at unload", "rmmod", Some("leak_do [fault_leak]"))],
            ),
            ("exynos4210-debug-enomem.log", vec![]),
            ("exynos4210-debug-init-hang.log", vec![]),
        ];
        for (name, want) in cases {
            let (_, ev) = scan_fixture(name);
            assert_eq!(summary(&ev), want, "{name}");
        }
    }

    /// FriendlyARM's own Linux 3.5 (the tiny4412-3.5 profile), captured from
    /// fixtures/faults/ on it: 3.5's words, not 6.12's. Its WARNING says
    /// `WARNING: at FILE:LINE FUNC()` with no CPU or PID, its oops has no
    /// `Call trace:` but `[<pc>] (func+off/size [module]) from [<lr>]`
    /// lines, and its BUG report names no CPU. Each is one report, of the
    /// step it came in (the second load's too), named by the module's
    /// function.
    #[test]
    fn linux_3_5s_own_reports_are_parsed() {
        let warn = Some("warn_on_do [fault_warn_on]");
        let atomic = Some("sched_atomic_do [fault_sched_atomic]");
        for (name, want) in [
            ("tiny4412-3.5-null-deref.log", vec![one("oops", "insmod", Some("null_deref_do [fault_null_deref]"))]),
            ("tiny4412-3.5-warn-on.log", vec![one("WARNING", "insmod", warn), one("WARNING", "insmod#2", warn)]),
            (
                "tiny4412-3.5-sched-atomic.log",
                vec![one("BUG report", "insmod", atomic), one("BUG report", "insmod#2", atomic)],
            ),
        ] {
            let (t, ev) = scan_fixture(name);
            assert_eq!(summary(&ev), want, "{name}");
            assert!(t.done, "{name}: the run ended");
            for e in &ev {
                assert!(!e.block.iter().any(|l| l.contains("@@harness")), "{name}: {:?}", e.block);
            }
        }
        let (_, ev) = scan_fixture("tiny4412-3.5-null-deref.log");
        assert_eq!(ev[0].first_line(), "Unable to handle kernel NULL pointer dereference at virtual address 00000000");
        assert!(
            ev[0].block.iter().any(|l| l == "PC is at null_deref_do+0x18/0x20 [fault_null_deref]"),
            "{:?}",
            ev[0].block
        );
        assert!(ev[0].block.last().unwrap().starts_with("---[ end trace"), "{:?}", ev[0].block.last());
        let (_, ev) = scan_fixture("tiny4412-3.5-warn-on.log");
        assert!(
            ev[0].first_line().starts_with("WARNING: at ")
                && ev[0].first_line().ends_with("fault_warn_on.c:19 warn_on_do+0x28/0x2c [fault_warn_on]()"),
            "{}",
            ev[0].first_line()
        );
        assert!(ev[0].block.last().unwrap().starts_with("---[ end trace"), "{:?}", ev[0].block.last());
        let (_, ev) = scan_fixture("tiny4412-3.5-sched-atomic.log");
        assert_eq!(ev[0].first_line(), "BUG: scheduling while atomic: insmod/76/0x00000002");
    }

    /// The step library's `pid` marker landed between the kernel's "cut
    /// here" and its WARNING line (2 of 4 runs of one module): built from
    /// the real logs with the marker where that console put it. One report,
    /// named by its WARNING line, its whole block, the marker not in it.
    #[test]
    fn a_marker_inside_a_report_does_not_split_it() {
        for (name, kind, step, sym, pid) in [
            ("exynos4210-debug-warn-on-marker-split.log", "WARNING", "insmod", "warn_on_do [fault_warn_on]", 67),
            (
                "exynos4210-debug-unfreed-at-unload-marker-split.log",
                "unfreed at unload",
                "rmmod",
                "leak_do [fault_leak]",
                42,
            ),
        ] {
            let first = format!("WARNING: CPU: 1 PID: {pid} at ");
            let (t, ev) = scan_fixture(name);
            assert_eq!(summary(&ev), vec![one(kind, step, Some(sym))], "{name}");
            assert!(ev[0].first_line().starts_with(&first), "{name}: {}", ev[0].first_line());
            assert!(ev[0].block.last().unwrap().starts_with("---[ end trace"), "{name}: {:?}", ev[0].block.last());
            assert!(!ev[0].block.iter().any(|l| l.contains("@@harness")), "{name}: the marker is not the kernel's");
            assert_eq!(t.pids.last().map(|p| p.pid), Some(pid), "{name}: the marker still says its pid");
        }
    }

    /// Issue 34: every stack dump the kernel printed is a report with its
    /// class, from one real boot of the default profile with a fixture each
    /// (fixtures/faults/: sysfs-dup, free-irq-twice, module-put,
    /// schedule-timeout, gfp-highmem, and enomem, which reports nothing).
    #[test]
    fn every_stack_dump_is_a_report_with_its_class() {
        let (_, ev) = scan_fixture("exynos4210-stack-dumps.log");
        let got: Vec<(String, Option<String>, Option<String>)> =
            ev.iter().map(|e| (e.title(), e.step.clone(), e.module_symbol.clone())).collect();
        let want = [
            ("duplicate sysfs name", "insmod", "sysfs_dup_do [fault_sysfs_dup]"),
            ("WARNING (free of an already-free IRQ)", "insmod", "free_irq_twice_do [fault_free_irq_twice]"),
            ("WARNING (module refcount underflow)", "insmod", "module_put_do [fault_module_put]"),
            ("wrong schedule_timeout", "insmod", "fault_schedule_timeout_init [fault_schedule_timeout]"),
            ("bad gfp flags", "insmod", "gfp_highmem_do [fault_gfp_highmem]"),
        ]
        .map(|(c, s, m)| (c.to_string(), Some(s.to_string()), Some(m.to_string())));
        assert_eq!(got, want);
        // kobject_add_internal's line is the same mistake's: in its report.
        assert!(ev[0].block.iter().any(|l| l.starts_with("kobject: kobject_add_internal failed")), "{:?}", ev[0].block);
        assert_eq!(ev[1].headline(), "Trying to free already-free IRQ 67");
        assert_eq!(ev[3].headline(), "schedule_timeout: wrong timeout value ffffffff");
    }

    /// Issue 34: a timer, a delayed work and an hrtimer left pending at
    /// rmmod, and a list entry added twice, from one real boot of the
    /// default profile (fixtures/leftovers/{timer,work,hrtimer}-kept,
    /// fixtures/faults/list-add-twice): each report's class, and the hint's
    /// bare address in the code its unit's own `section` markers place.
    #[test]
    fn pending_timers_at_unload_and_a_double_list_add_from_a_real_log() {
        let (t, ev) = scan_fixture("exynos4210-pending-at-unload.log");
        let got: Vec<(String, Option<String>)> = ev.iter().map(|e| (e.title(), e.step.clone())).collect();
        let pending = "WARNING (timer or work item pending in freed memory)";
        let want =
            [(pending, "rmmod"), (pending, "rmmod"), (pending, "rmmod"), ("WARNING (list corruption)", "insmod")]
                .map(|(c, s)| (c.to_string(), Some(s.to_string())));
        assert_eq!(got, want);
        for (e, unit, module) in [
            (&ev[0], "timer-kept", "led_blink"),
            (&ev[1], "work-kept", "key_poll"),
            (&ev[2], "hrtimer-kept", "buzzer_beat"),
        ] {
            let text = t.sections_of(Some(unit), module).into_iter().find(|(s, _)| s == ".text").unwrap().1;
            let name =
                |a: u64| (text..text + 0x1000).contains(&a).then(|| format!("f+{:#x}/0x1000 [{module}]", a - text));
            assert_eq!(unloaded_code(&e.block, &name), Some(format!("f [{module}]")), "{:?}", e.block);
        }
    }

    /// Issue 34: two classes without a WARNING line, from one real boot of
    /// the default profile (fixtures/faults/irq-nobody-cared and
    /// alloc-fail): the spurious-interrupt detector's `irq 67: nobody cared`
    /// (its handlers' list and `Disabling IRQ` in the same report) and
    /// `page allocation failure` (its Mem-Info in the same report), each
    /// named by the module's function that did it.
    #[test]
    fn an_irq_nobody_cared_and_a_page_allocation_failure_from_a_real_log() {
        let (_, ev) = scan_fixture("exynos4210-irq-nobody-cared-and-alloc-failure.log");
        let got: Vec<(String, Option<String>, Option<String>)> =
            ev.iter().map(|e| (e.title(), e.step.clone(), e.module_symbol.clone())).collect();
        let want = [
            ("IRQ nobody cared", "insmod", "irq_nobody_cared_do [fault_irq_nobody_cared]"),
            ("page allocation failure", "insmod", "alloc_fail_do [fault_alloc_fail]"),
        ]
        .map(|(c, s, m)| (c.to_string(), Some(s.to_string()), Some(m.to_string())));
        assert_eq!(got, want);
        assert_eq!(ev[0].headline(), "irq 67: nobody cared (try booting with the \"irqpoll\" option)");
        assert!(ev[0].block.iter().any(|l| l == "Disabling IRQ #67"), "{:?}", ev[0].block);
        assert!(ev[0].block.iter().any(|l| l.ends_with("never_mine [fault_irq_nobody_cared]")), "{:?}", ev[0].block);
        assert!(ev[1].headline().starts_with("insmod: page allocation failure: order:10, mode:0x820(GFP_ATOMIC)"));
        assert!(ev[1].block.iter().any(|l| l == "Mem-Info:"), "{:?}", ev[1].block);
    }

    /// Issue 34: the same fixture without its tasklet_disable() (an exit
    /// that only forgets tasklet_kill()), from a real boot before the guest
    /// recorded data sections. The tasklet runs once more after the
    /// module's code is freed and before its data is: the program counter
    /// is the freed function, and the kernel's tasklet code is the link
    /// register.
    #[test]
    fn a_tasklet_that_runs_freed_code_is_named_from_the_unloaded_code_in_a_real_log() {
        let (t, ev) = scan_fixture("exynos4210-tasklet-runs-freed-code.log");
        assert_eq!(ev.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(), [EventKind::Oops, EventKind::Panic]);
        assert_eq!(ev[0].step.as_deref(), Some("rmmod"));
        let text = t.sections_of(None, "led_flash").into_iter().find(|(s, _)| s == ".text").unwrap().1;
        let name = |a: u64| (a == text).then(|| "flash_fn+0x0/0x20 [led_flash]".to_string());
        let ev = scan(&t, &name);
        assert_eq!(ev[0].unloaded_code.as_deref(), Some("flash_fn [led_flash]"));
        let left = crate::deferred::left_scheduled(&ev[0].block).unwrap();
        assert_eq!(
            (left.function.as_str(), left.left.as_str()),
            ("tasklet_action_common", "a tasklet still scheduled")
        );
    }

    /// Issue 34: a tasklet left scheduled (fixtures/leftovers/tasklet-kept,
    /// whose exit disables it instead of killing it) from a real boot of the
    /// default profile. No debug object tracks a tasklet: the kernel finds
    /// it when its tasklet code reads the freed struct, an oops whose
    /// program counter is the kernel's and whose address is the module's
    /// data, placed by the unit's own `section` markers.
    #[test]
    fn a_tasklet_left_scheduled_is_named_from_the_unloaded_data_in_a_real_log() {
        let (t, mut ev) = scan_fixture("exynos4210-tasklet-at-unload.log");
        // In ksoftirqd: the oops is fatal.
        assert_eq!(ev.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(), [EventKind::Oops, EventKind::Panic]);
        assert_eq!(ev[0].step.as_deref(), Some("rmmod"));
        assert_eq!(ev[0].first_line(), "Unable to handle kernel paging request at virtual address bf002004 when read");
        // The program counter is the kernel's: nothing names the code.
        assert_eq!(ev[0].unloaded_code, None);
        let data = t.sections_of(None, "led_flash").into_iter().find(|(s, _)| s == ".data").unwrap().1;
        assert_eq!(data, 0xbf002000);
        let name = |a: u64| {
            (data..data + 0x1c).contains(&a).then(|| format!("flash_tasklet+{:#x}/0x1c [led_flash]", a - data))
        };
        ev[0].name_unloaded_data(&name);
        assert_eq!(ev[0].unloaded_data.as_deref(), Some("flash_tasklet [led_flash]"));
        assert!(ev[0].involves(None, "led_flash", &[]));
        ev[0].name_unloaded_data(&|_| None);
        assert_eq!(ev[0].unloaded_data, None);
    }

    /// A stack dump that no known line began is a report too, named by the
    /// line before it: the real dump above, after a message of its own.
    #[test]
    fn an_unknown_stack_dump_is_a_report_named_by_the_line_before_it() {
        let p = crate::repo_root().join("harness/tests/fixtures/console/exynos4210-stack-dumps.log");
        let text = std::fs::read_to_string(p)
            .unwrap()
            .replace("schedule_timeout: wrong timeout value ffffffff", "mydrv: something odd happened");
        let t = Transcript::from_log(&text, crate::marker::FIXTURE_NONCE);
        let ev = scan(&t, &|_| None);
        let odd = ev
            .iter()
            .find(|e| e.kind == EventKind::StackDump && e.first_line() == "mydrv: something odd happened")
            .unwrap_or_else(|| panic!("{:?}", summary(&ev)));
        assert_eq!(odd.title(), "stack dump");
        assert_eq!(odd.module_symbol.as_deref(), Some("fault_schedule_timeout_init [fault_schedule_timeout]"));
        assert_eq!(ev.len(), 5, "{:?}", ev.iter().map(|e| (e.title(), e.line, e.block.len())).collect::<Vec<_>>());
    }

    /// Issue 28: the guest's loader makes one init_module per insmod, as
    /// the board's busybox on 3.5: fault_enomem's failing init ran once in
    /// that boot (busybox's finit_module, then init_module, ran it twice:
    /// exynos4210-debug-enomem.log).
    #[test]
    fn a_failing_init_ran_once_per_insmod() {
        let count = |name: &str| {
            let (t, _) = scan_fixture(name);
            t.lines.iter().filter(|l| l.message == "fault_enomem: init returns -ENOMEM").count()
        };
        assert_eq!(count("exynos4210-stack-dumps.log"), 1);
        assert_eq!(count("exynos4210-debug-enomem.log"), 2, "the log captured with busybox's insmod");
    }

    #[test]
    fn oops_block_runs_from_cut_here_to_end_trace() {
        let (_, ev) = scan_fixture("exynos4210-debug-null-deref.log");
        let b = &ev[0].block;
        assert_eq!(b[0], "8<--- cut here ---");
        assert_eq!(ev[0].first_line(), "Unhandled fault: page domain fault (0x81b) at 0x00000000");
        assert!(b.last().unwrap().starts_with("---[ end trace"), "{:?}", b.last());
        assert!(b.iter().any(|l| l.starts_with("PC is at null_deref_do")));
    }

    #[test]
    fn leaks_carry_size_and_task() {
        let (_, ev) = scan_fixture("exynos4210-debug-leak.log");
        assert_eq!((ev[0].leak_size, ev[0].leak_comm.as_deref()), (Some(128), Some("insmod")));
        assert!(ev[0].block.iter().any(|l| l.trim() == "0xbf000038"), "the bare frame the resolver names");
        let (_, ev) = scan_fixture("exynos4210-debug-kmemleak-test.log");
        assert_eq!(ev.len(), 26);
        assert!(ev.iter().all(|e| e.kind == EventKind::Kmemleak && e.leak_comm.as_deref() == Some("insmod")));
        let total: u64 = ev.iter().filter_map(|e| e.leak_size).sum();
        assert_eq!(total, 37_952, "the sample leaks 26 objects of 64 to 4096 bytes");
    }

    #[test]
    fn an_allocation_site_left_holding_memory_at_unload_is_a_leak_with_its_site_and_bytes() {
        let (_, ev) = scan_fixture("exynos4210-debug-unfreed-at-unload.log");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].leak_size, Some(256), "kzalloc(100) holds a 256-byte KASAN object");
        let site = ev[0].leak_site.as_deref().unwrap();
        assert!(site.ends_with("/module/fault_leak.c:34"), "{site}");
        // Any other WARNING stays a WARNING.
        let (_, ev) = scan_fixture("exynos4210-debug-warn-on.log");
        assert_eq!((ev[0].kind.clone(), ev[0].leak_size), (EventKind::Warning, None));
    }

    #[test]
    fn kunit_output_in_a_real_log_parses() {
        let (t, ev) = scan_fixture("exynos4210-debug-kunit-demo.log");
        assert!(ev.is_empty(), "{:?}", summary(&ev));
        let k = crate::ktap::parse(t.lines.iter().map(|l| l.message.as_str()));
        let c = k.counts();
        assert_eq!((c.passed, c.failed, c.skipped, c.incomplete), (1, 1, 1, 0));
        assert_eq!(k.failures(), vec!["kunit-demo.deliberately_fails"]);
    }
}
