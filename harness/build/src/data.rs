//! Where the data the harness ships is: the default profiles and kernel
//! fragments (`configs/`), the rootfs overlay (`rootfs/`), the 3.5 layer
//! (`compat35/`) and the default module (`kmod/`). Found at run time, so
//! that one binary works from any directory:
//!
//! 1. `HARNESS_DATA_DIR`, when set;
//! 2. else the nearest directory above the executable that holds both
//!    `configs/` and `rootfs/` (a checkout's `target/debug/harness`, or an
//!    install that keeps the data beside the binary);
//! 3. else the checkout the harness was built from, as a last resort.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The variable that names the data directory.
pub const ENV: &str = "HARNESS_DATA_DIR";

/// The data directory, looked up once per process (see the module's doc).
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| find(std::env::var_os(ENV), std::env::current_exe().ok().as_deref()))
}

/// Whether `dir` holds the harness's data.
fn holds_data(dir: &Path) -> bool {
    dir.join("configs").is_dir() && dir.join("rootfs").is_dir()
}

/// The checkout the harness was built from (harness/build/ is two deep).
fn built_from() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).unwrap_or(manifest).to_path_buf()
}

/// The lookup itself, given the variable and the executable's path.
fn find(env: Option<OsString>, exe: Option<&Path>) -> PathBuf {
    if let Some(dir) = env.filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    exe.and_then(|exe| exe.ancestors().skip(1).find(|d| holds_data(d)))
        .map(Path::to_path_buf)
        .unwrap_or_else(built_from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for sub in ["configs", "rootfs", "bin/deep"] {
            std::fs::create_dir_all(d.path().join(sub)).unwrap();
        }
        d
    }

    #[test]
    fn the_variable_wins_then_the_executables_ancestors_then_the_checkout() {
        let d = data_dir();
        let exe = d.path().join("bin/deep/harness");
        assert_eq!(find(Some("/elsewhere".into()), Some(&exe)), PathBuf::from("/elsewhere"));
        // An empty variable is unset.
        assert_eq!(find(Some("".into()), Some(&exe)), d.path());
        assert_eq!(find(None, Some(&exe)), d.path());
        // A directory with configs/ but no rootfs/ is not the data.
        let other = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(other.path().join("configs")).unwrap();
        let lone = other.path().join("harness");
        let fallback = find(None, Some(&lone));
        assert_ne!(fallback, other.path());
        assert_eq!(fallback, built_from());
        assert_eq!(find(None, None), built_from());
    }

    #[test]
    fn the_checkout_holds_the_data() {
        assert!(holds_data(&built_from()), "{}", built_from().display());
    }
}
