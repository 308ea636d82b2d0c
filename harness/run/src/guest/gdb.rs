//! `check --gdb`: QEMU's gdb stub, and the gdb script that gives gdb the
//! kernel's symbols and each module's where the kernel loads it.
//!
//! A module's addresses exist only once the kernel has placed it, and its
//! init runs right after. So the script does not ask the guest's /sys: its
//! Python half (gdb.py) breaks on `module_finalize`, reads the section
//! addresses from the module's ELF image as the kernel holds it, and runs
//! `add-symbol-file` with the module's debug file (module.rs keeps one
//! beside each .ko) before the guest goes on to init. A pending breakpoint
//! on the module's init then resolves and hits. Nothing there needs kernel
//! debug info, so `--gdb` works on every profile (and the same script on
//! Linux 3.5); the exynos4210-gdb profile adds the kernel's own.

use crate::module::Module;
use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The gdb that reads ARM (Debian's host gdb reads only the host's).
pub const PROGRAM: &str = crate::packages::GDB;

/// What the script needs to know of one run.
#[derive(Debug, Clone)]
pub struct Session {
    /// The kernel's ELF, for its symbols (and its debug info, if built).
    pub vmlinux: PathBuf,
    /// QEMU's gdb stub.
    pub socket: PathBuf,
    /// The modules under test, in load order.
    pub modules: Vec<Module>,
}

/// `argv` with QEMU's gdb stub on `socket`, and the guest held before its
/// first instruction.
pub fn qemu_args(argv: &[OsString], socket: &Path) -> Vec<OsString> {
    let mut out = argv.to_vec();
    // The stub on a Unix socket in a private directory: no TCP port to
    // find free, and none that another user of the machine can reach.
    // wait=off: QEMU starts without a client; -S below does the waiting.
    let mut spec = OsString::from("unix:");
    spec.push(socket);
    spec.push(",server=on,wait=off");
    out.push("-gdb".into());
    out.push(spec);
    // The CPUs stay stopped until gdb says `continue`, so that breakpoints
    // (in the kernel's boot, or pending ones on a module's init) are set
    // before anything runs.
    out.push("-S".into());
    out
}

/// The command the user runs, in another terminal.
pub fn command(script: &Path) -> String {
    format!("{PROGRAM} -x {}", crate::plan::quote(&script.to_string_lossy()))
}

/// The gdb command file for `session`; `helper` is gdb.py's copy and
/// `table` the module table it reads (both written by [`write`]).
pub fn script(session: &Session, helper: &Path, table: &Path) -> String {
    let q = |p: &Path| quote(&p.to_string_lossy());
    let mut s = String::from("# Written by the harness for one run of check --gdb.\n");
    // A script that runs to its end without questions; the user's own
    // commands follow at the prompt.
    s += "set pagination off\nset confirm off\n";
    // The module's functions do not exist until it is loaded: breakpoints
    // on them wait (gdb.py adds the symbols when the kernel places it).
    s += "set breakpoint pending on\n";
    let helpers = session.vmlinux.with_file_name("vmlinux-gdb.py");
    if let Ok(real) = helpers.canonicalize() {
        // A kernel built with CONFIG_GDB_SCRIPTS (the exynos4210-gdb
        // profile): gdb loads its helpers (lx-dmesg, lx-lsmod,
        // $lx_current()) with vmlinux once their directory is trusted.
        s += &format!("add-auto-load-safe-path {}\n", q(real.parent().unwrap_or(Path::new("/"))));
    }
    s += &format!("file {}\n", q(&session.vmlinux));
    for m in &session.modules {
        if let Some(src) = &m.sources {
            // The debug info names the directory the build ran in, which a
            // build taken from the module cache no longer has.
            s += &format!("set substitute-path {} {}\n", q(&src.built_in), q(&src.now));
        }
    }
    s += &format!("target remote {}\n", q(&session.socket));
    s += &format!("source {}\n", q(helper));
    s += &format!("python harness_watch_modules({})\n", python_string(&table.to_string_lossy()));
    let names: Vec<&str> = session.modules.iter().map(|m| m.name.as_str()).collect();
    s += &format!(
        "echo harness: the guest waits before its first instruction; {} get symbols when loaded.\\n\n\
         echo harness: set breakpoints (break FUNCTION, pending until the module loads), then continue.\\n\n",
        names.join(", ")
    );
    s
}

/// Writes the script, its Python half and the module table into `dir`;
/// returns the script's path.
pub fn write(session: &Session, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut modules = Vec::new();
    let mut offset = None;
    for (i, m) in session.modules.iter().enumerate() {
        let debug = crate::module::debug_file(&m.ko);
        // Numbered: two modules under test may share a name.
        let symbols = dir.join(format!("{i}-{}.ko.debug", m.name));
        unplaced_copy(if debug.is_file() { &debug } else { &m.ko }, &symbols)?;
        let at = name_offset(&m.ko, &m.name)?;
        if offset.is_some_and(|o| o != at) {
            bail!(
                "{}: struct module's name is at offset {at}, in the other modules at {}: built for another kernel?",
                m.ko.display(),
                offset.unwrap_or(0)
            );
        }
        offset = Some(at);
        modules.push(serde_json::json!({ "name": m.name, "symbols": symbols, "sizes": section_sizes(&m.ko)? }));
    }
    let table =
        serde_json::json!({ "hook": hook(&session.vmlinux)?, "name_offset": offset.unwrap_or(12), "modules": modules });
    let (helper, table_path, script_path) =
        (dir.join("harness_gdb.py"), dir.join("modules.json"), dir.join("harness.gdb"));
    std::fs::write(&helper, include_str!("gdb.py")).with_context(|| format!("writing {}", helper.display()))?;
    std::fs::write(&table_path, serde_json::to_vec_pretty(&table)?)
        .with_context(|| format!("writing {}", table_path.display()))?;
    std::fs::write(&script_path, script(session, &helper, &table_path))
        .with_context(|| format!("writing {}", script_path.display()))?;
    Ok(script_path)
}

/// Copies the module's ELF object to `out` with every section's address
/// zero. gdb relocates a relocatable object's debug info with the section
/// addresses that add-symbol-file gives only if the file's own are all
/// zero (`default_symfile_offsets`); a .ko's are not (the module linker
/// script places .data after the text), and gdb then puts every function
/// at .text's address plus its offset in its own section. In a relocatable
/// object the addresses mean nothing else: relocations and symbols are
/// section-relative.
pub fn unplaced_copy(ko: &Path, out: &Path) -> Result<()> {
    let mut data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
    // ELF32, little-endian, relocatable: the only kind a 32-bit ARM
    // module is; anything else is refused rather than half-edited.
    if data.len() < 0x34
        || &data[..4] != b"\x7fELF"
        || data[4] != 1
        || data[5] != 1
        || u16::from_le_bytes([data[16], data[17]]) != 1
    {
        bail!("{} is not a 32-bit little-endian relocatable ELF object (a module for 32-bit ARM)", ko.display());
    }
    let word = |d: &[u8], at: usize| u32::from_le_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]) as usize;
    let half = |d: &[u8], at: usize| u16::from_le_bytes([d[at], d[at + 1]]) as usize;
    let (shoff, entsize, count) = (word(&data, 0x20), half(&data, 0x2e), half(&data, 0x30));
    // Elf32_Shdr.sh_addr is the fourth word.
    const SH_ADDR: usize = 12;
    if entsize < SH_ADDR + 4 || shoff.checked_add(entsize * count).is_none_or(|end| end > data.len()) {
        bail!("{}: its section headers lie outside the file", ko.display());
    }
    for i in 0..count {
        let at = shoff + i * entsize + SH_ADDR;
        data[at..at + 4].fill(0);
    }
    std::fs::write(out, data).with_context(|| format!("writing {}", out.display()))
}

/// Where `struct module`'s `name` lies in the module's own copy of it
/// (`.gnu.linkonce.this_module`, which the kernel loads as the module's
/// struct module): 12 on 32-bit ARM since 2.6 (`state`, `list`, `name`),
/// measured rather than assumed.
pub fn name_offset(ko: &Path, name: &str) -> Result<usize> {
    let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
    let file = object::File::parse(&*data).with_context(|| format!("{} is not an ELF object", ko.display()))?;
    let section = file
        .section_by_name(".gnu.linkonce.this_module")
        .with_context(|| format!("{} has no .gnu.linkonce.this_module: not a kernel module", ko.display()))?;
    let bytes = section.data().with_context(|| format!("reading {}'s struct module", ko.display()))?;
    let mut needle = name.as_bytes().to_vec();
    needle.push(0);
    bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .with_context(|| format!("{}: its struct module does not hold its name {name:?}", ko.display()))
}

/// Where gdb.py breaks: `*ADDRESS` of the strong `module_finalize` (the
/// arch's), from System.map beside `vmlinux`. The name alone would do
/// without kernel debug info, but with it gdb finds the generic `__weak`
/// definition in kernel/module/main.c, which the linker dropped and which
/// never runs.
pub fn hook(vmlinux: &Path) -> Result<String> {
    let map = vmlinux.with_file_name("System.map");
    let text = std::fs::read_to_string(&map)
        .with_context(|| format!("reading {} (the kernel build's symbol map)", map.display()))?;
    text.lines()
        .find_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [addr, "T", "module_finalize"] => Some(format!("*0x{addr}")),
            _ => None,
        })
        .with_context(|| format!("{} has no global module_finalize: a kernel without module support?", map.display()))
}

/// The sizes of the module's allocated sections that loading leaves as
/// they are (the kernel sizes the PLT sections itself): what tells two
/// modules of the same name apart in the guest.
pub fn section_sizes(ko: &Path) -> Result<std::collections::BTreeMap<String, u64>> {
    let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
    let file = object::File::parse(&*data).with_context(|| format!("{} is not an ELF object", ko.display()))?;
    let mut sizes = std::collections::BTreeMap::new();
    for s in file.sections() {
        let name = s.name().unwrap_or_default();
        let alloc_flag = u64::from(object::elf::SHF_ALLOC);
        let alloc = matches!(s.flags(), object::SectionFlags::Elf { sh_flags } if sh_flags & alloc_flag != 0);
        if alloc && !name.ends_with("plt") {
            sizes.entry(name.to_string()).or_insert(s.size());
        }
    }
    Ok(sizes)
}

/// A path or word as gdb's command parser reads it.
fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:".contains(c)) {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// A Python string literal.
fn python_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::Sources;

    fn module(name: &str, sources: Option<Sources>) -> Module {
        Module {
            ko: format!("/run/m/{name}.ko").into(),
            name: name.into(),
            vermagic: String::new(),
            depends: vec![],
            modpost_warnings: vec![],
            sources,
        }
    }

    fn session() -> Session {
        let sources = Sources { built_in: "/gone/run-1/module".into(), now: "/runs/run 2/module".into() };
        Session {
            vmlinux: "/k/vmlinux".into(),
            socket: "/tmp/h/gdb.sock".into(),
            modules: vec![module("mmc_byte", Some(sources))],
        }
    }

    #[test]
    fn qemu_holds_the_guest_and_serves_gdb_on_the_socket() {
        let a: Vec<String> = qemu_args(&["-M".into(), "smdkc210".into()], Path::new("/tmp/h/gdb.sock"))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(a, ["-M", "smdkc210", "-gdb", "unix:/tmp/h/gdb.sock,server=on,wait=off", "-S"]);
    }

    #[test]
    fn the_script_loads_the_kernel_connects_and_watches_module_loads() {
        let s = script(&session(), Path::new("/r/gdb/harness_gdb.py"), Path::new("/r/gdb/modules.json"));
        assert!(s.contains("get symbols when loaded.\\n\necho harness: set breakpoints"), "one echo a line: {s}");
        let lines: Vec<&str> = s.lines().collect();
        let at = |prefix: &str| {
            lines.iter().position(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in\n{s}"))
        };
        assert!(at("set breakpoint pending on") < at("target remote"), "{s}");
        assert!(at("file /k/vmlinux") < at("target remote /tmp/h/gdb.sock"), "{s}");
        assert!(at("target remote") < at("python harness_watch_modules(\"/r/gdb/modules.json\")"), "{s}");
        // A space in the run directory is quoted for gdb.
        assert!(s.contains("set substitute-path /gone/run-1/module \"/runs/run 2/module\"\n"), "{s}");
        assert!(s.contains("mmc_byte get symbols when loaded"), "{s}");
        assert!(!s.contains("vmlinux-gdb.py"), "no kernel helpers where the kernel has none: {s}");
    }

    #[test]
    fn the_command_names_gdb_multiarch_and_the_script() {
        assert_eq!(command(Path::new("/r/gdb/harness.gdb")), "gdb-multiarch -x /r/gdb/harness.gdb");
    }

    #[test]
    fn gdbs_copy_of_a_module_has_every_section_unplaced_and_nothing_else_changed() {
        use object::write::{Object as Out, StandardSegment};
        use object::{Architecture, BinaryFormat, Endianness, SectionKind};
        let mut o = Out::new(BinaryFormat::Elf, Architecture::Arm, Endianness::Little);
        for (name, kind) in [(".text", SectionKind::Text), (".data", SectionKind::Data)] {
            let id = o.add_section(o.segment_name(StandardSegment::Text).to_vec(), name.as_bytes().to_vec(), kind);
            o.append_section_data(id, &[1, 2, 3, 4], 4);
        }
        let mut bytes = o.write().unwrap();
        // Place .data as the module linker script does (`ld -r` keeps it).
        let parsed = object::read::elf::ElfFile32::<Endianness>::parse(&*bytes).unwrap();
        let shoff = parsed.elf_header().e_shoff.get(Endianness::Little) as usize;
        let index = parsed.section_by_name(".data").unwrap().index().0;
        bytes[shoff + index * 40 + 12..shoff + index * 40 + 16].copy_from_slice(&0x124u32.to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        let (ko, copy) = (dir.path().join("m.ko"), dir.path().join("m.ko.debug"));
        std::fs::write(&ko, &bytes).unwrap();
        assert_eq!(object::File::parse(&*bytes).unwrap().section_by_name(".data").unwrap().address(), 0x124);
        unplaced_copy(&ko, &copy).unwrap();
        let out = std::fs::read(&copy).unwrap();
        let file = object::File::parse(&*out).unwrap();
        assert!(file.sections().all(|s| s.address() == 0));
        assert_eq!(file.section_by_name(".data").unwrap().data().unwrap(), [1, 2, 3, 4]);
        let differing = bytes.iter().zip(&out).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 2, "only .data's address changed (0x124: two nonzero bytes)");
        std::fs::write(&ko, b"\x7fELF\x02").unwrap();
        assert!(format!("{:#}", unplaced_copy(&ko, &copy).unwrap_err())
            .contains("not a 32-bit little-endian relocatable ELF"));
    }

    #[test]
    fn the_hook_is_the_strong_module_finalize_of_the_symbol_map() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("System.map"),
            "c010cfd0 t module_finalize_x\nc010cfe4 T module_finalize\nc01b7e08 W module_finalize_weak\n",
        )
        .unwrap();
        assert_eq!(hook(&dir.path().join("vmlinux")).unwrap(), "*0xc010cfe4");
        std::fs::write(dir.path().join("System.map"), "c0100000 T _text\n").unwrap();
        assert!(
            format!("{:#}", hook(&dir.path().join("vmlinux")).unwrap_err()).contains("has no global module_finalize")
        );
    }

    #[test]
    fn a_file_that_is_not_a_module_has_no_name_offset() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.ko");
        std::fs::write(&f, b"not elf").unwrap();
        let e = format!("{:#}", name_offset(&f, "x").unwrap_err());
        assert!(e.contains("is not an ELF object"), "{e}");
    }
}
