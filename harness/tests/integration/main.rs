//! The integration tests: one binary, one module per concern. Tests that boot
//! a guest or need a kernel are in the `qemu` nextest group
//! (.config/nextest.toml), which bounds how many run at once. They share one
//! kernel build per profile through the harness's own cache lock.

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
mod faults;
mod gdb;
mod install;
mod ko;
mod leftovers;
mod lessons;
mod linux35;
mod memory;
mod replay;
mod sandbox;
mod shell;
mod supervision;
mod unmodelled;
mod virtual_board;
mod workflow;
