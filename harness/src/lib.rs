//! Build, boot and judge out-of-tree kernel modules for the Tiny4412 family.
//!
//! The pipeline is `configs → kernel → module → {guest | board} → transcript
//! → verdict`: [`prepare`] builds, [`guest`] boots QEMU (or [`replay`] drives
//! a real board), [`judge`] turns what the console showed into a verdict.
//! ARCHITECTURE.md at the repository root maps each stage to its module here.

pub mod api;
pub mod beside;
pub mod board;
pub mod board_api;
pub mod busybox;
pub mod cache;
pub mod changes;
pub mod check;
pub mod guest;
pub mod judge;
pub mod kconfig;
pub mod kernel;
pub mod loader;
pub mod module;
pub mod module_cache;
pub mod options;
pub mod packages;
pub mod patches;
pub mod plan;
pub mod prepare;
pub mod process;
pub mod profile;
pub mod program;
pub mod progress;
pub mod replay;
pub mod sandbox;
#[cfg(test)]
mod source_rules;
pub mod splitter;
pub mod supervisor;
pub mod timer_guard;
pub mod toolchain;

use std::path::PathBuf;

/// The repository the harness was built from: default profiles, fragments,
/// the rootfs overlay and the default module live there.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("harness/ has a parent").to_path_buf()
}
