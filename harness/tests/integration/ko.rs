//! The built .ko files, read with the `object` crate: what they import from
//! the kernel and which relocations they carry. These are the properties that
//! decide whether the module loads on the board's Linux 3.5.

use crate::common::repo;
use harness::kernel::{self, BuildOptions, KernelSource};
use harness::profile::Profile;
use object::elf;
use object::{Object, ObjectSection, ObjectSymbol, RelocationFlags};
use std::collections::BTreeSet;
use std::path::Path;

/// Relocation types the Linux 3.5 ARM module loader (arch/arm/kernel/module.c)
/// accepts; anything else makes insmod fail there with ENOEXEC.
const LOADER_3_5: &[u32] = &[
    elf::R_ARM_NONE,
    elf::R_ARM_ABS32,
    elf::R_ARM_PC24,
    elf::R_ARM_CALL,
    elf::R_ARM_JUMP24,
    elf::R_ARM_V4BX,
    elf::R_ARM_PREL31,
    elf::R_ARM_MOVW_ABS_NC,
    elf::R_ARM_MOVT_ABS,
];

fn build(module: &str, work: &Path) -> harness::module::Module {
    let configs = repo().join("configs");
    let profile = Profile::load("exynos4210", &configs).unwrap();
    // Like `check`, install what is missing first (a fresh machine).
    harness::prepare::setup(&profile.cross_compile, profile.kernel.source_package.as_deref())
        .unwrap_or_else(|e| panic!("{e:#}"));
    let source = KernelSource::resolve(None).unwrap();
    let k = kernel::get(
        &profile,
        &BuildOptions { source: &source, cross_compile: &profile.cross_compile, configs_dir: &configs, jobs: 2 },
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    // As `check` builds it by default: under the 3.5 layer.
    let mut built = harness::module::build(
        &repo().join(module),
        &k,
        work,
        &crate::common::build_options(harness::api::Api::Linux35),
    )
    .unwrap_or_else(|e| panic!("{e:#}"))
    .modules;
    assert_eq!(built.len(), 1, "{module} builds one module");
    built.remove(0)
}

fn undefined(path: &Path) -> BTreeSet<String> {
    let data = std::fs::read(path).unwrap();
    let file = object::File::parse(&*data).unwrap();
    file.symbols()
        .filter(|s| s.is_undefined() && !s.name().unwrap_or("").is_empty())
        .map(|s| s.name().unwrap().to_string())
        .collect()
}

fn relocation_types(path: &Path) -> BTreeSet<u32> {
    let data = std::fs::read(path).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let mut types = BTreeSet::new();
    for section in file.sections() {
        for (_, r) in section.relocations() {
            match r.flags() {
                RelocationFlags::Elf { r_type } => {
                    types.insert(r_type);
                }
                other => panic!("{}: non-ELF relocation {other:?}", path.display()),
            }
        }
    }
    types
}

#[test]
fn rust_module_imports_only_what_the_shim_calls() {
    let work = tempfile::tempdir().unwrap();
    let m = build("kmod", work.path());
    assert!(m.modpost_warnings.is_empty(), "modpost warnings: {:?}", m.modpost_warnings);
    let dir = work.path().join("module");
    let ko = undefined(&m.ko);
    let shim = undefined(&dir.join("shim.o"));
    let rust = undefined(&dir.join("mmc_byte_rust.o"));
    assert!(!ko.is_empty());
    // Everything the .ko needs from the kernel is something the C shim calls…
    let beyond: Vec<_> = ko.difference(&shim).collect();
    assert!(beyond.is_empty(), "the .ko imports {beyond:?}, which the shim does not call; shim: {shim:?}");
    // …and the Rust object calls nothing but the shim.
    let not_shim: Vec<_> = rust.iter().filter(|s| !s.starts_with("mmc_shim_")).collect();
    assert!(not_shim.is_empty(), "the Rust object calls {not_shim:?} directly");
    assert!(rust.iter().any(|s| s == "mmc_shim_kzalloc" || s.contains("kzalloc")), "{rust:?}");
}

#[test]
fn both_modules_carry_only_relocations_linux_3_5_accepts() {
    for module in ["kmod", "kmod/c-twin"] {
        let work = tempfile::tempdir().unwrap();
        let m = build(module, work.path());
        let types = relocation_types(&m.ko);
        assert!(!types.is_empty(), "{module}: no relocations at all?");
        let bad: Vec<_> = types.iter().filter(|t| !LOADER_3_5.contains(t)).collect();
        assert!(bad.is_empty(), "{module}: relocation types {bad:?} are refused by the 3.5 loader");
        assert!(m.vermagic.starts_with("6.12"), "{}", m.vermagic);
    }
}
