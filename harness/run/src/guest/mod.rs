//! The QEMU guest: its root filesystem (a cpio written here), QEMU's
//! command line and process, and the serial console read into lines.

pub mod console;
pub mod cpio;
pub mod emulated;
pub mod gdb;
pub mod inbox;
pub mod kdump;
pub mod qemu;
pub mod qmp;
pub mod rootfs;
pub mod snapshot;
pub mod terminal;
