//! Judging: the console as typed lines, steps and kernel reports, and the
//! verdict. Nothing here touches the file system or a process (a test
//! enforces it): a saved console log judges the same as a live one.

pub mod access;
pub mod api;
pub mod board;
pub mod census;
pub mod event;
pub mod expect;
pub mod ktap;
pub mod lack;
pub mod lines;
pub mod marker;
pub mod port;
pub mod report;
pub mod step;
pub mod stock;
pub mod symbols;
pub mod verdict;
pub mod watch;

#[cfg(test)]
mod tests {
    use crate::source_rules::reached;

    /// Paths the judge must not reach, as segments (how they count:
    /// [`reached`]).
    const BANNED: &[&[&str]] = &[
        &["std", "fs"],
        &["std", "io"],
        &["std", "process"],
        &["std", "net"],
        &["std", "env"],
        &["std", "thread"],
        &["std", "os"],
        &["std", "time", "SystemTime"],
        &["std", "time", "Instant", "now"],
        // A glob import leaves these bare.
        &["Instant", "now"],
        &["SystemTime"],
        &["duct"],
        &["os_pipe"],
        &["serialport"],
        &["tempfile"],
        &["libc"],
        // The harness's own modules that do I/O.
        &["crate", "process"],
        &["crate", "cache"],
        &["crate", "packages"],
        &["crate", "sandbox"],
        &["crate", "guest"],
        &["crate", "replay"],
        &["crate", "prepare"],
        &["crate", "check"],
        &["crate", "module"],
    ];
    /// Macros that print or read the environment.
    const BANNED_MACROS: &[&str] = &["print", "println", "eprint", "eprintln", "dbg", "env", "option_env"];

    fn io_in(code: &str) -> Vec<String> {
        reached(code, BANNED, BANNED_MACROS)
    }

    /// The rule of this directory, checked on its source: no file system,
    /// processes, network, environment, threads, clock reads or printing
    /// outside the tests.
    #[test]
    fn the_judge_does_no_io() {
        let dir = crate::repo_root().join("harness/src/judge");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let found = io_in(&std::fs::read_to_string(&path).unwrap());
            assert!(found.is_empty(), "{} does I/O: {found:?}", path.display());
            checked += 1;
        }
        assert!(checked >= 8, "only {checked} files in {}", dir.display());
    }

    /// The check finds each way of reaching I/O, and not the test code's.
    #[test]
    fn the_no_io_check_finds_each_form() {
        for (code, what) in [
            ("use std::{fs, io::Write};", "std::fs"),
            ("use std::io::Write;", "std::io::Write"),
            ("fn f() { let _ = std::fs::read(\"x\"); }", "std::fs::read"),
            ("use std::time; fn f() { time::Instant::now(); }", "std::time::Instant::now"),
            ("use std::time::Instant as Clock; fn f() { Clock::now(); }", "std::time::Instant::now"),
            ("use std::time::*; fn f() { Instant::now(); }", "Instant::now"),
            ("fn f() { std::thread::spawn(|| ()); }", "std::thread::spawn"),
            ("fn f() { let _ = std::env::var(\"X\"); }", "std::env::var"),
            ("fn f() { eprintln!(\"x\"); }", "eprintln!"),
            ("fn f() { crate::process::output(\"x\", &[]); }", "crate::process::output"),
            ("mod inner { use duct::cmd; }", "duct::cmd"),
        ] {
            let found = io_in(code);
            assert!(found.iter().any(|f| f.contains(what)), "{code}: {found:?}");
        }
        let clean =
            "use std::time::{Duration, Instant};\nfn f(now: Instant) -> Instant { now + Duration::from_secs(1) }\n\
                     #[cfg(test)]\nmod tests { fn t() { std::fs::read(\"x\").unwrap(); } }";
        assert_eq!(io_in(clean), Vec::<String>::new());
    }
}
