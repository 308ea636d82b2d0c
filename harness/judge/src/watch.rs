//! The supervisor as a pure state machine: console lines in, deadlines and
//! the way the run ended out. It drives both the QEMU guest (check.rs) and a
//! board (replay), which only differ in where lines come from and how the
//! machine is stopped.
//!
//! ```text
//! loop {
//!     match next line before watch.deadline() {
//!         Some(line) => watch.feed(line, now),
//!         None if closed => break watch.closed(status),
//!         None => if let Some(end) = watch.expire(now) { break end },
//!     }
//! }
//! ```

use crate::event::{classify, is_board_reset, EventKind};
use crate::marker::{split_timestamp, Marker, StepId};
use crate::step::Transcript;
use crate::verdict::RunEnd;
use std::time::{Duration, Instant};

/// How long to keep reading after "Kernel panic" for the rest of the report.
pub const PANIC_GRACE: Duration = Duration::from_secs(2);
/// How long the guest may take to power off after it said it was done.
pub const POWEROFF_GRACE: Duration = Duration::from_secs(15);

/// The built-in limits, in seconds, when neither the command line nor the
/// profile gives one.
/// How long a run may stay at the user's shell (`check --shell`).
pub const SHELL_LIMIT: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_TOTAL: u64 = 300;
pub const DEFAULT_STEP: u64 = 60;
pub const DEFAULT_SILENCE: u64 = 120;

/// The deadlines of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole run.
    pub total: Duration,
    /// One step, from its begin marker to its end marker.
    pub step: Duration,
    /// No console output at all.
    pub silence: Duration,
    /// From the start to the first step's begin marker, when the guest has
    /// no boot to make first (a resumed one): a run it has not begun by
    /// then is one it did not get, and the check boots instead of waiting
    /// out the silence limit.
    pub start: Option<Duration>,
}

impl Limits {
    /// The limits of a run that a person holds (`check --gdb`: the guest
    /// stands still at every breakpoint, for as long as they look): a day
    /// for each, as at the shell. A panic still ends the run.
    pub fn held() -> Limits {
        Limits { total: SHELL_LIMIT, step: SHELL_LIMIT, silence: SHELL_LIMIT, start: None }
    }
}

#[derive(Debug)]
pub struct Watch {
    transcript: Transcript,
    limits: Limits,
    started: Instant,
    last_output: Instant,
    step_started: Option<(StepId, Instant)>,
    panicked: Option<Instant>,
    done: Option<Instant>,
    /// Since when the user's shell has been open (`check --shell`).
    shell: Option<Instant>,
    /// A step the guest waits on an answer for (`--shell-on-failure`).
    awaiting: Option<StepId>,
    /// When the virtual board's watchdog reset the board.
    reset: Option<Instant>,
}

impl Watch {
    /// Watches a run whose transcript is `transcript`, from `now`.
    pub fn new(transcript: Transcript, limits: Limits, now: Instant) -> Watch {
        Watch {
            transcript,
            limits,
            started: now,
            last_output: now,
            step_started: None,
            panicked: None,
            done: None,
            shell: None,
            awaiting: None,
            reset: None,
        }
    }

    /// One console line.
    pub fn feed(&mut self, line: &str, now: Instant) {
        self.last_output = now;
        match self.transcript.push(line) {
            Some(Marker::Begin { step }) => self.step_started = Some((step, now)),
            Some(Marker::End { .. }) => self.step_started = None,
            Some(Marker::Shell { open: true }) => self.shell = Some(now),
            Some(Marker::Await { step }) => self.awaiting = Some(step),
            Some(Marker::Board { part, state, .. }) if part == "watchdog" && state == "reset" => self.reset = Some(now),
            Some(Marker::Shell { open: false }) => {
                // The time at the shell is the user's: the run's clocks
                // resume where they stood when it opened.
                if let Some(opened) = self.shell.take() {
                    self.started += now.saturating_duration_since(opened);
                }
            }
            _ => {}
        }
        if self.transcript.done && self.done.is_none() {
            self.done = Some(now);
        }
        if self.panicked.is_none() && classify(split_timestamp(line).1) == Some(EventKind::Panic) {
            self.panicked = Some(now);
        }
        // A board that starts over under a step (a replay: a watchdog reset
        // it; the harness's QEMU exits instead, -no-reboot).
        if self.reset.is_none() && self.transcript.current_step().is_some() && is_board_reset(line) {
            self.transcript.note_reset();
            self.reset = Some(now);
        }
    }

    /// The step the guest is waiting on an answer for, once.
    pub fn take_await(&mut self) -> Option<StepId> {
        self.awaiting.take()
    }

    /// When [`Watch::expire`] must next be asked, if no line comes before.
    pub fn deadline(&self) -> Instant {
        let mut until = (self.started + self.limits.total).min(self.last_output + self.limits.silence);
        if let Some((_, at)) = &self.step_started {
            until = until.min(*at + self.limits.step);
        }
        if let (Some(start), true) = (self.limits.start, self.transcript.steps.is_empty()) {
            until = until.min(self.started + start);
        }
        if let Some(p) = self.panicked.or(self.reset) {
            until = until.min(p + PANIC_GRACE);
        }
        if let (Some(opened), None) = (self.shell, self.panicked) {
            // Only a panic, the guest's end or a day ends a run at the shell.
            return opened + SHELL_LIMIT;
        }
        if let Some(d) = self.done {
            until = until.min(d + POWEROFF_GRACE);
        }
        until
    }

    /// The end of the run, if a deadline has passed at `now`.
    pub fn expire(&self, now: Instant) -> Option<RunEnd> {
        if let Some(p) = self.panicked {
            return (now >= p + PANIC_GRACE).then_some(RunEnd::Panicked);
        }
        // The board stopped at its reset (smdkc210 cannot restart): its last
        // words, then the end.
        if let Some(r) = self.reset {
            return (now >= r + PANIC_GRACE).then_some(RunEnd::Reset);
        }
        if let Some(opened) = self.shell {
            return (now >= opened + SHELL_LIMIT).then_some(RunEnd::TimedOut { after_secs: SHELL_LIMIT.as_secs() });
        }
        if let Some(d) = self.done {
            // The steps finished; a machine that cannot power off is not the
            // module's fault.
            return (now >= d + POWEROFF_GRACE).then_some(RunEnd::Completed);
        }
        if let Some((step, at)) = &self.step_started {
            if now >= *at + self.limits.step {
                let (step, unit) = (step.name.clone(), step.unit.clone());
                return Some(RunEnd::StepTimedOut { step, unit, after_secs: self.limits.step.as_secs() });
            }
        }
        if let (Some(start), true) = (self.limits.start, self.transcript.steps.is_empty()) {
            if now >= self.started + start {
                return Some(RunEnd::TimedOut { after_secs: start.as_secs() });
            }
        }
        if now >= self.last_output + self.limits.silence {
            return Some(RunEnd::Silent { after_secs: self.limits.silence.as_secs() });
        }
        if now >= self.started + self.limits.total {
            return Some(RunEnd::TimedOut { after_secs: self.limits.total.as_secs() });
        }
        None
    }

    /// The end of the run when its source closed (QEMU exited, the board's
    /// command returned), with the exit status if there is one.
    pub fn closed(&self, status: Option<i32>) -> RunEnd {
        if self.transcript.done {
            RunEnd::Completed
        } else if self.panicked.is_some() {
            RunEnd::Panicked
        } else if self.reset.is_some() {
            RunEnd::Reset
        } else {
            RunEnd::ExitedEarly { status }
        }
    }

    /// The kernel said "Kernel panic".
    pub fn panicked(&self) -> bool {
        self.panicked.is_some()
    }

    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    pub fn into_transcript(self) -> Transcript {
        self.transcript
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: &str = "00000000000000ab";
    const LIMITS: Limits = Limits {
        total: Duration::from_secs(300),
        step: Duration::from_secs(60),
        silence: Duration::from_secs(120),
        start: None,
    };

    fn m(s: &str) -> String {
        format!("@@harness {N} {s}")
    }

    fn watch() -> (Watch, Instant) {
        let t0 = Instant::now();
        (Watch::new(Transcript::new(N), LIMITS, t0), t0)
    }

    const fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_board_that_starts_over_under_a_step_ends_the_run_as_reset() {
        let (mut w, t0) = watch();
        // The boot's own banner comes before any step: not a reset.
        w.feed("[    0.000000] Booting Linux on physical CPU 0x0", t0);
        w.feed(&m("begin starve"), t0);
        w.feed("[   18.600000] wdt_demo: starving", t0);
        assert_eq!(w.expire(t0 + s(1)), None);
        w.feed("[    0.000000] Booting Linux on physical CPU 0x0", t0 + s(2));
        assert_eq!(w.expire(t0 + s(3)), None, "the reset's grace");
        assert_eq!(w.expire(t0 + s(5)), Some(RunEnd::Reset));
        assert_eq!(w.closed(None), RunEnd::Reset);
        let changes = w.transcript().board_changes();
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(
            (changes[0].part.as_str(), changes[0].state.as_str(), changes[0].step.as_deref()),
            ("system", "reset", Some("starve"))
        );
        assert_eq!(changes[0].at, 18.6, "the old boot's last time");
    }

    /// A resumed guest that begins no step by its start limit ends there
    /// (the check then boots), though it still prints; one that began a
    /// step is under the step's limit, not this one.
    #[test]
    fn a_guest_that_begins_no_step_by_its_start_limit_ends_there() {
        let t0 = Instant::now();
        let limits = Limits { start: Some(s(30)), ..LIMITS };
        let mut w = Watch::new(Transcript::new(N), limits, t0);
        w.feed("inbox: waiting", t0 + s(29));
        assert_eq!(w.deadline(), t0 + s(30));
        assert_eq!(w.expire(t0 + s(29)), None);
        assert_eq!(w.expire(t0 + s(30)), Some(RunEnd::TimedOut { after_secs: 30 }));
        let mut w = Watch::new(Transcript::new(N), limits, t0);
        w.feed(&m("begin census"), t0 + s(20));
        assert_eq!(w.deadline(), t0 + s(20 + 60));
        assert_eq!(w.expire(t0 + s(31)), None);
    }

    #[test]
    fn a_clean_run_completes_when_closed_or_after_the_poweroff_grace() {
        let (mut w, t0) = watch();
        for l in ["booting", &m("begin insmod"), "process:insmod", &m("end insmod rc=0"), &m("done")] {
            w.feed(l, t0 + s(1));
        }
        assert_eq!(w.deadline(), t0 + s(1) + POWEROFF_GRACE);
        assert_eq!(w.expire(t0 + s(5)), None);
        assert_eq!(w.expire(t0 + s(16)), Some(RunEnd::Completed));
        assert_eq!(w.closed(Some(0)), RunEnd::Completed);
    }

    #[test]
    fn at_the_users_shell_no_deadline_runs_but_a_panics_and_the_clocks_resume_after() {
        let (mut w, t0) = watch();
        w.feed(&m("shell open"), t0 + s(10));
        // An hour at a silent shell: past the silence and total limits.
        assert_eq!(w.expire(t0 + s(3600)), None);
        assert_eq!(w.deadline(), t0 + s(10) + SHELL_LIMIT);
        w.feed(&m("shell closed"), t0 + s(3610));
        // The total limit resumes where it stood: 290 s were left.
        assert_eq!(w.expire(t0 + s(3610 + 119)), None);
        assert_eq!(w.expire(t0 + s(3610 + 120)), Some(RunEnd::Silent { after_secs: 120 }));
        let (mut w, t0) = watch();
        w.feed(&m("shell open"), t0);
        w.feed("Kernel panic - not syncing: sysrq triggered crash", t0 + s(5));
        assert_eq!(w.expire(t0 + s(5) + PANIC_GRACE), Some(RunEnd::Panicked));
    }

    #[test]
    fn a_step_that_runs_too_long_times_out_on_the_step() {
        let (mut w, t0) = watch();
        w.feed(&m("begin app"), t0 + s(10));
        w.feed("still going", t0 + s(50));
        assert_eq!(w.deadline(), t0 + s(70));
        assert_eq!(w.expire(t0 + s(69)), None);
        assert_eq!(w.expire(t0 + s(70)), Some(RunEnd::StepTimedOut { step: "app".into(), unit: None, after_secs: 60 }));
        let (mut w, t0) = watch();
        w.feed(&m("begin irq_lesson/app"), t0);
        let unit = Some("irq_lesson".to_string());
        assert_eq!(w.expire(t0 + s(60)), Some(RunEnd::StepTimedOut { step: "app".into(), unit, after_secs: 60 }));
    }

    #[test]
    fn silence_and_the_total_limit() {
        let (mut w, t0) = watch();
        assert_eq!(w.expire(t0 + s(120)), Some(RunEnd::Silent { after_secs: 120 }));
        for i in 0..30 {
            w.feed("chatter", t0 + s(i * 10));
        }
        assert_eq!(w.deadline(), t0 + s(300));
        assert_eq!(w.expire(t0 + s(300)), Some(RunEnd::TimedOut { after_secs: 300 }));
    }

    #[test]
    fn a_panic_ends_the_run_after_its_grace() {
        let (mut w, t0) = watch();
        w.feed(&m("begin insmod"), t0);
        w.feed("[    5.0] Kernel panic - not syncing: Fatal exception", t0 + s(1));
        assert!(w.panicked());
        assert_eq!(w.deadline(), t0 + s(1) + PANIC_GRACE);
        assert_eq!(w.expire(t0 + s(2)), None);
        assert_eq!(w.expire(t0 + s(3)), Some(RunEnd::Panicked));
        assert_eq!(w.closed(None), RunEnd::Panicked);
    }

    #[test]
    fn a_source_that_closes_early_exited_early() {
        let (mut w, t0) = watch();
        w.feed(&m("begin insmod"), t0);
        assert_eq!(w.closed(Some(1)), RunEnd::ExitedEarly { status: Some(1) });
        assert_eq!(w.transcript().current_step().map(|s| s.name.as_str()), Some("insmod"));
    }

    #[test]
    fn a_forged_end_marker_does_not_stop_the_step_clock() {
        let (mut w, t0) = watch();
        w.feed(&m("begin insmod"), t0);
        w.feed("@@harness end insmod rc=0", t0 + s(1));
        assert_eq!(
            w.expire(t0 + s(60)),
            Some(RunEnd::StepTimedOut { step: "insmod".into(), unit: None, after_secs: 60 })
        );
    }
}
