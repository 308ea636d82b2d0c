//! Build, boot and judge out-of-tree kernel modules for the Tiny4412 family.
//!
//! The pipeline is `configs → kernel → module → {guest | board} → transcript
//! → verdict`: [`prepare`] builds, [`guest`] boots QEMU (or [`replay`] drives
//! a real board), [`judge`] turns what the console showed into a verdict.
//! Each layer is a crate of its own (harness/judge, harness/build,
//! harness/run); this one is the command line, and re-exports them under
//! the paths they had. ARCHITECTURE.md maps each stage to its module.

pub use harness_run::*;
