//! The build side: profiles, the kernel, the module, the sandbox, the
//! packages the harness installs, and the caches. It depends on the judge
//! (harness-judge) and on nothing of the run side (harness-run), which
//! the compiler enforces: this crate does not depend on it.

pub mod api;
pub mod beside;
pub mod board_api;
pub mod busybox;
pub mod cache;
pub mod changes;
pub mod data;
pub mod init;
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
pub mod sandbox;
pub mod timer_guard;
pub mod toolchain;

/// The judge, under the path this side's files name it by.
pub use harness_judge as judge;

/// The directory of the data the harness ships (default profiles,
/// fragments, the rootfs overlay, the 3.5 layer, the default module):
/// found at run time, see [`data::root`].
pub fn repo_root() -> std::path::PathBuf {
    data::root().to_path_buf()
}
