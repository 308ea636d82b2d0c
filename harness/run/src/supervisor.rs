//! The supervisor: one loop that feeds a [`Watch`] from a line source
//! until the run ends. `check` gives it QEMU's console, `replay` a board's
//! serial line; the watch (pure, `judge/watch.rs`) decides when the run is
//! over, this loop only waits for lines, each wait bounded by the watch's
//! next deadline.

use crate::judge::verdict::RunEnd;
use crate::judge::watch::Watch;
use anyhow::Result;
use std::time::Instant;

/// What a line source gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Line(String),
    /// Nothing came before the deadline.
    Quiet,
    /// The source is gone (QEMU exited; the board's command returned), with
    /// an exit status where there is one.
    Closed(Option<i32>),
}

/// Where the watch's lines come from.
pub trait LineSource {
    /// The next line, waiting at most until `deadline`.
    fn next(&mut self, deadline: Instant) -> Result<Next>;

    /// Called after each line is fed to the watch: a source that talks
    /// back (QEMU's, under `--shell-on-failure`) answers what the guest
    /// asked.
    fn after_line(&mut self, _watch: &mut Watch) -> Result<()> {
        Ok(())
    }
}

/// Why the loop stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum DriveEnd {
    /// The source closed: the caller knows what that means (QEMU's exit
    /// status, or the end of the board's steps command).
    Closed(Option<i32>),
    /// The watch ended the run (a deadline, a panic's grace, the power-off
    /// grace).
    Ended(RunEnd),
}

/// Feeds `watch` from `source` until the source closes or the watch ends
/// the run. A source that fails after the kernel panicked ended the run
/// with the panic (a board may reboot, or vanish with its line); any other
/// failure is the caller's.
pub fn drive(watch: &mut Watch, source: &mut dyn LineSource) -> Result<DriveEnd> {
    loop {
        let next = match source.next(watch.deadline()) {
            Ok(n) => n,
            Err(_) if watch.panicked() => return Ok(DriveEnd::Ended(RunEnd::Panicked)),
            Err(e) => return Err(e),
        };
        let now = Instant::now();
        match next {
            Next::Line(line) => {
                watch.feed(&line, now);
                source.after_line(watch)?;
            }
            Next::Closed(status) => return Ok(DriveEnd::Closed(status)),
            Next::Quiet => {}
        }
        // Asked after every line too: a source that never stops talking
        // still meets its deadlines.
        if let Some(end) = watch.expire(now) {
            return Ok(DriveEnd::Ended(end));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::step::Transcript;
    use crate::judge::watch::Limits;
    use std::collections::VecDeque;
    use std::time::Duration;

    const N: &str = "00000000000000ab";

    /// Lines given in order, then what `end` says.
    struct Script {
        lines: VecDeque<Next>,
        end: fn() -> Result<Next>,
        waits: usize,
    }

    impl LineSource for Script {
        fn next(&mut self, deadline: Instant) -> Result<Next> {
            if let Some(n) = self.lines.pop_front() {
                return Ok(n);
            }
            self.waits += 1;
            assert!(self.waits < 1000, "the loop never stopped");
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(20)));
            (self.end)()
        }
    }

    fn script(lines: &[&str], end: fn() -> Result<Next>) -> Script {
        Script {
            lines: lines.iter().map(|l| Next::Line(l.replace("@@", &format!("@@harness {N} ")))).collect(),
            end,
            waits: 0,
        }
    }

    fn watch(limits: Limits) -> Watch {
        Watch::new(Transcript::new(N), limits, Instant::now())
    }

    const LIMITS: Limits = Limits {
        total: Duration::from_secs(60),
        step: Duration::from_secs(60),
        silence: Duration::from_secs(60),
        start: None,
    };

    #[test]
    fn a_closed_source_stops_the_loop_with_its_status() {
        let mut w = watch(LIMITS);
        let mut s = script(&["@@begin insmod", "@@end insmod rc=0", "@@done"], || Ok(Next::Closed(Some(0))));
        assert_eq!(drive(&mut w, &mut s).unwrap(), DriveEnd::Closed(Some(0)));
        assert!(w.transcript().done);
        assert_eq!(w.closed(Some(0)), RunEnd::Completed);
    }

    #[test]
    fn a_quiet_source_meets_the_step_deadline() {
        // Long beside the source's 20 ms waits: at 100 ms, one wait of a
        // thread descheduled on a loaded machine outlasted the deadline,
        // and the loop rightly stopped after a single wait.
        let short = Limits { step: Duration::from_millis(500), ..LIMITS };
        let mut w = watch(short);
        let mut s = script(&["@@begin app"], || Ok(Next::Quiet));
        let stop = drive(&mut w, &mut s).unwrap();
        assert!(matches!(stop, DriveEnd::Ended(RunEnd::StepTimedOut { ref step, .. }) if step == "app"), "{stop:?}");
        assert!(s.waits >= 2, "it waited, and asked the watch after each wait");
    }

    #[test]
    fn a_source_that_never_stops_talking_still_times_out() {
        let short = Limits { total: Duration::from_millis(100), ..LIMITS };
        let mut w = watch(short);
        let mut s = script(&[], || Ok(Next::Line("chatter".into())));
        assert_eq!(drive(&mut w, &mut s).unwrap(), DriveEnd::Ended(RunEnd::TimedOut { after_secs: 0 }));
    }

    #[test]
    fn a_failing_source_is_an_error_unless_the_kernel_panicked() {
        let mut w = watch(LIMITS);
        let mut s = script(&["@@begin insmod"], || anyhow::bail!("the line hung up"));
        assert_eq!(drive(&mut w, &mut s).unwrap_err().to_string(), "the line hung up");
        let mut w = watch(LIMITS);
        let mut s =
            script(&["@@begin insmod", "[ 5.0] Kernel panic - not syncing: Fatal exception"], || anyhow::bail!("gone"));
        assert_eq!(drive(&mut w, &mut s).unwrap(), DriveEnd::Ended(RunEnd::Panicked));
    }

    /// `drive` is the one loop that waits for console lines under the
    /// watch's deadlines: no other file of the harness asks the watch when
    /// the run expires (every loop that ends a run must), nor its deadline
    /// by the name `watch`. Comments are skipped; macro bodies are read.
    #[test]
    fn no_other_loop_asks_the_watch_for_its_deadlines() {
        let asking = crate::code_scan::lines_naming(&[".expire(", "watch.deadline()"], &["run/src/supervisor.rs"]);
        assert!(asking.is_empty(), "a loop beside supervisor::drive: {asking:#?}");
    }
}
