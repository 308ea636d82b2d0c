//! Packs the data the harness ships (configs/, rootfs/, compat35/, kmod/)
//! into one gzip'd bundle in OUT_DIR, which data.rs embeds: an installed
//! binary (`cargo install`) then works when the checkout it was built
//! from is gone. Build products a `make` by hand leaves in kmod/ or the
//! lessons (the .gitignore's list) are left out, so that the bundle, and the
//! key it is unpacked under, depend on the sources only.

use flate2::{write::GzEncoder, Compression};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The shipped directories, relative to the checkout (data.rs names the same).
const DIRS: &[&str] = &["configs", "rootfs", "compat35", "kmod"];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let checkout = manifest.ancestors().nth(2).expect("harness/build/ is two deep").to_path_buf();
    let mut files = Vec::new();
    for dir in DIRS {
        println!("cargo:rerun-if-changed={}", checkout.join(dir).display());
        walk(&checkout, &checkout.join(dir), &mut files);
    }
    files.sort();
    let mut bundle = b"tiny4412-harness data 1\n".to_vec();
    for rel in &files {
        let path = checkout.join(rel);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0o644);
        let name = rel.to_str().unwrap_or_else(|| panic!("{} is not UTF-8", rel.display())).as_bytes();
        bundle.extend((name.len() as u32).to_le_bytes());
        bundle.extend(name);
        bundle.extend(mode.to_le_bytes());
        bundle.extend((bytes.len() as u64).to_le_bytes());
        bundle.extend(&bytes);
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("data.bin.gz");
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(&bundle).and_then(|_| gz.finish()).and_then(|z| std::fs::write(&out, z)).expect("writing the bundle");
}

/// Every regular file under `dir`, relative to `checkout`, but build products.
fn walk(checkout: &Path, dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("a directory entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().expect("a file type");
        // Cargo's target directories (kmod/target) mark themselves with
        // CACHEDIR.TAG; compat35/shadow/target/ is a source directory.
        let cargo_target = entry.path().join("CACHEDIR.TAG").exists();
        if kind.is_dir() && !cargo_target && ![".git", ".tmp_versions"].contains(&name.as_str()) {
            walk(checkout, &entry.path(), files);
        } else if kind.is_file() && !build_product(&name) {
            files.push(entry.path().strip_prefix(checkout).expect("under the checkout").to_path_buf());
        }
    }
}

/// kbuild's products (as .gitignore lists them).
fn build_product(name: &str) -> bool {
    [".o", ".ko", ".mod", ".mod.c", ".o_shipped"].iter().any(|s| name.ends_with(s))
        || (name.starts_with('.') && name.ends_with(".cmd"))
        || name == "modules.order"
        || name == "Module.symvers"
}
