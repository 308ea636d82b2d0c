//! The integration tests: one binary, one module per concern. Tests that boot
//! a guest or need a kernel are in the `qemu` nextest group
//! (.config/nextest.toml), which bounds how many run at once. They share one
//! kernel build per profile through the harness's own cache lock.

mod action;
mod board;
mod board35;
mod board_api;
mod boot;
mod cache;
mod changes;
mod ci;
mod cli;
mod common;
mod compare35;
mod coverage;
mod faults;
mod gdb;
mod install;
mod installed;
mod ko;
mod lava;
mod leftovers;
mod lessons;
mod linux35;
mod memory;
mod replay;
mod report;
mod resume;
mod sandbox;
mod shell;
mod supervision;
mod unmodelled;
mod virtual_board;
mod workflow;
