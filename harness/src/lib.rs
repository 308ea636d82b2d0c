//! Build, boot and judge out-of-tree kernel modules for the Tiny4412 family.
//!
//! The pipeline is `configs → kernel → kmod → rootfs → qemu → console → verdict`;
//! ARCHITECTURE.md at the repository root maps each stage to its module here.

pub mod board;
pub mod cache;
pub mod check;
pub mod console;
pub mod cpio;
pub mod event;
pub mod expect;
pub mod kconfig;
pub mod kernel;
pub mod ktap;
pub mod module;
pub mod options;
pub mod plan;
pub mod prepare;
pub mod program;
pub mod packages;
pub mod process;
pub mod profile;
pub mod qemu;
pub mod replay;
pub mod report;
pub mod rootfs;
pub mod step;
pub mod symbols;
pub mod verdict;
pub mod watch;

use std::path::PathBuf;

/// The repository the harness was built from: default profiles, fragments,
/// the rootfs overlay and the default module live there.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness/ has a parent")
        .to_path_buf()
}
