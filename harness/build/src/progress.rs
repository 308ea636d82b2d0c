//! The kernel build's progress: objects compiled out of a total, and the
//! time left. A bar on a terminal; on anything else (a CI log) a plain line
//! each time another tenth of the total is done, or every 30 s while no
//! total is known.
//!
//! The total is the count of the previous build of the same configuration
//! on this machine (`stats/<profile>-<digest of .config>.json` in the
//! cache, written after each build), else the profile's own measured count
//! (`kernel.objects`), else the previous build of the profile with another
//! configuration (`stats/<profile>.json`: an edited fragment changes the
//! count); and it grows when the build passes it: an estimate corrected as
//! the build goes.

use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What one finished build of a profile took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildStats {
    pub objects: u64,
    pub seconds: u64,
}

impl BuildStats {
    /// `key`: the profile's name, or its name and its `.config`'s digest.
    pub fn path(cache_root: &Path, key: &str) -> PathBuf {
        cache_root.join("stats").join(format!("{key}.json"))
    }

    /// The stats at `path`, if a build wrote them (anything unreadable is
    /// as good as none: they only feed the progress line).
    pub fn read(path: &Path) -> Option<BuildStats> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        use anyhow::Context;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, serde_json::to_string(self)?).with_context(|| format!("writing {}", path.display()))
    }
}

/// Where the total came from, for the first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalFrom {
    /// The last build of this configuration here.
    LastBuild,
    /// The profile's measured count.
    Profile,
    /// The last build of this profile here, with another configuration.
    OtherConfig,
}

/// The total for the progress line, from the surest source there is: the
/// count of this configuration's last build, the profile's measured count,
/// the count of the profile's last build with another configuration.
pub fn choose_total(
    same_config: Option<u64>,
    profile: Option<u64>,
    same_profile: Option<u64>,
) -> Option<(u64, TotalFrom)> {
    same_config
        .map(|n| (n, TotalFrom::LastBuild))
        .or(profile.map(|n| (n, TotalFrom::Profile)))
        .or(same_profile.map(|n| (n, TotalFrom::OtherConfig)))
}

/// The time left at `done` of `total` objects after `elapsed`, at the rate
/// so far; `None` before the first object.
pub fn time_left(done: u64, total: u64, elapsed: Duration) -> Option<Duration> {
    (done > 0).then(|| elapsed.mul_f64(total.saturating_sub(done) as f64 / done as f64))
}

/// The plain progress line of a CI log.
pub fn status_line(name: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    match total {
        Some(total) => {
            let left = time_left(done, total, elapsed)
                .map(|d| format!(", about {:.0} s left", d.as_secs_f64()))
                .unwrap_or_default();
            format!(
                "harness: kernel {name}: {done} of {total} objects ({}%), {secs:.0} s{left}",
                done * 100 / total.max(1)
            )
        }
        None => format!(
            "harness: kernel {name}: {done} objects built, {secs:.0} s (no total: first build of this profile here)"
        ),
    }
}

/// A live count of the objects a kernel build compiles.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    done: Cell<u64>,
    total: Cell<Option<u64>>,
    last_print: Cell<Instant>,
    started: Instant,
    name: String,
}

impl Progress {
    pub fn new(name: &str, total: Option<(u64, TotalFrom)>) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = match total {
                Some((t, _)) => {
                    let b = indicatif::ProgressBar::new(t);
                    b.set_style(
                        indicatif::ProgressStyle::with_template(
                            "kernel {prefix}: [{bar:30}] {pos}/{len} objects, {elapsed}, ~{msg} left",
                        )
                        .expect("valid template")
                        .progress_chars("=> "),
                    );
                    b
                }
                None => {
                    let b = indicatif::ProgressBar::new_spinner();
                    b.set_style(
                        indicatif::ProgressStyle::with_template("{spinner} kernel {prefix}: {pos} objects, {elapsed}")
                            .expect("valid template"),
                    );
                    b
                }
            };
            b.set_prefix(name.to_string());
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        match total {
            Some((t, from)) => {
                let from = match from {
                    TotalFrom::LastBuild => "the last build of this configuration here",
                    TotalFrom::Profile => "the profile's measured count",
                    TotalFrom::OtherConfig => "the last build of this profile here, with another configuration",
                };
                eprintln!("harness: kernel {name}: about {t} objects to build (from {from})");
            }
            None => eprintln!("harness: kernel {name}: first build of this profile here: no total known yet"),
        }
        Progress {
            bar,
            done: 0.into(),
            total: total.map(|(t, _)| t).into(),
            last_print: Instant::now().into(),
            started: Instant::now(),
            name: name.to_string(),
        }
    }

    /// One line of make's output.
    pub fn line(&self, l: &str) {
        let t = l.trim_start();
        if !(t.starts_with("CC ") || t.starts_with("AS ") || t.starts_with("LD ") || t.starts_with("DTC ")) {
            return;
        }
        let done = self.done.get() + 1;
        self.done.set(done);
        // Past the estimate: the total grows with the build, a tenth ahead.
        let total = self.total.get().map(|t| if done > t { done + done / 10 } else { t });
        self.total.set(total);
        let elapsed = self.started.elapsed();
        match &self.bar {
            Some(b) => {
                if let Some(t) = total {
                    b.set_length(t);
                    b.set_message(
                        time_left(done, t, elapsed)
                            .map(|d| format!("{:.0} s", d.as_secs_f64()))
                            .unwrap_or_else(|| "?".into()),
                    );
                }
                b.set_position(done);
            }
            None => {
                let due = match total {
                    // Each tenth of the total, counted on objects: a CI log
                    // gets ten lines whatever the machine's speed.
                    Some(t) => done * 10 / t.max(1) > (done - 1) * 10 / t.max(1),
                    None => self.last_print.get().elapsed() > Duration::from_secs(30),
                };
                if due {
                    self.last_print.set(Instant::now());
                    eprintln!("{}", status_line(&self.name, done, total, elapsed));
                }
            }
        }
    }

    /// Ends the display; the stats of this build, for the next one.
    pub fn finish(&self) -> BuildStats {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        let seconds = self.started.elapsed().as_secs();
        eprintln!("harness: kernel {}: {} objects built in {seconds} s", self.name, self.done.get());
        BuildStats { objects: self.done.get(), seconds }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_comes_from_the_surest_source() {
        assert_eq!(choose_total(Some(828), Some(818), Some(1146)), Some((828, TotalFrom::LastBuild)));
        // A fragment edited since the last build: the profile's count, not
        // the old configuration's.
        assert_eq!(choose_total(None, Some(828), Some(1146)), Some((828, TotalFrom::Profile)));
        assert_eq!(choose_total(None, None, Some(1146)), Some((1146, TotalFrom::OtherConfig)));
        assert_eq!(choose_total(None, None, None), None);
    }

    #[test]
    fn time_left_is_the_rate_so_far() {
        assert_eq!(time_left(0, 100, Duration::from_secs(10)), None);
        assert_eq!(time_left(25, 100, Duration::from_secs(10)), Some(Duration::from_secs(30)));
        assert_eq!(time_left(100, 100, Duration::from_secs(10)), Some(Duration::ZERO));
        assert_eq!(time_left(120, 100, Duration::from_secs(10)), Some(Duration::ZERO), "past the estimate");
    }

    #[test]
    fn status_lines_say_the_total_and_the_time_left() {
        assert_eq!(
            status_line("exynos4210", 500, Some(2000), Duration::from_secs(100)),
            "harness: kernel exynos4210: 500 of 2000 objects (25%), 100 s, about 300 s left"
        );
        assert_eq!(
            status_line("exynos4210", 5, None, Duration::from_secs(31)),
            "harness: kernel exynos4210: 5 objects built, 31 s (no total: first build of this profile here)"
        );
    }

    #[test]
    fn stats_round_trip_and_garbage_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = BuildStats::path(dir.path(), "x");
        assert_eq!(BuildStats::read(&p), None);
        let s = BuildStats { objects: 2272, seconds: 731 };
        s.write(&p).unwrap();
        assert_eq!(BuildStats::read(&p), Some(s));
        std::fs::write(&p, "{").unwrap();
        assert_eq!(BuildStats::read(&p), None);
    }

    #[test]
    fn the_total_grows_past_a_low_estimate() {
        let p = Progress::new("t", Some((10, TotalFrom::Profile)));
        for _ in 0..15 {
            p.line("  CC      x.o");
        }
        p.line("  GEN     not an object");
        assert_eq!(p.done.get(), 15);
        assert_eq!(p.total.get(), Some(16), "a tenth ahead of the count");
        assert_eq!(p.finish().objects, 15);
    }
}
