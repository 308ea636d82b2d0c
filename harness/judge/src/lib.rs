//! Judging: the console as typed lines, steps and kernel reports, and the
//! verdict. Nothing here touches the file system, a process, the network,
//! the environment or the clock: a saved console log judges the same as a
//! live one. The crate's dependencies do no I/O (the compiler holds the
//! crate to them), and `clippy.toml` refuses std's own I/O.

// The tests read their fixtures from the repository; the judge's own code is
// linted without this (clippy --all-targets lints the library on its own).
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_types, clippy::disallowed_macros))]

pub mod access;
pub mod api;
pub mod board_parts;
pub mod census;
pub mod deferred;
pub mod event;
pub mod expect;
pub mod gcov;
pub mod html;
pub mod kcidb;
pub mod ktap;
pub mod lack;
pub mod lava;
pub mod lines;
pub mod marker;
pub mod port;
pub mod report;
pub mod step;
pub mod stock;
pub mod symbols;
pub mod verdict;
pub mod watch;

/// The repository, where the tests' fixtures are.
#[cfg(test)]
pub(crate) fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("harness/judge/ is two deep")
        .to_path_buf()
}
