//! The run side: the QEMU guest ([`guest`]), a real board over its serial
//! console ([`replay`]), the loop that feeds the console to the judge
//! ([`supervisor`]), `check` itself and the board image. It depends on the
//! build side (harness-build) and the judge (harness-judge), never the
//! other way round.

pub mod check;
pub mod coverage;
pub mod guest;
pub mod html;
pub mod kcidb;
pub mod lava;
pub mod real_board;
pub mod replay;
pub mod splitter;
pub mod supervisor;

// The layers below, under the paths this side's files (and the command
// line's) name them by.
pub use harness_build::{
    api, beside, board_api, busybox, cache, changes, data, init, judge, kconfig, kernel, loader, module, module_cache,
    options, packages, patches, plan, prepare, process, profile, program, progress, repo_root, sandbox, timer_guard,
    toolchain,
};
