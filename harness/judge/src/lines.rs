//! Source lines for a module's frames, from the DWARF in its .ko.
//!
//! A .ko is a relocatable object: every section starts at address 0, and
//! the debug sections reach the code through relocations. The kernel's
//! loader never applies those (they are not in allocated sections), so the
//! harness does: each allocated section is given an address of its own, far
//! from the others, and the debug sections' ABS32 relocations are applied
//! against them. A frame the kernel printed as `function+off/len [module]`
//! is then an address (the symbol's section, its value, the offset), with
//! no need to know where the module was loaded, which an oops in init
//! leaves unsaid; a bare address from a report printed after unload goes
//! through the `section` markers first (symbols.rs).

use addr2line::gimli;
use anyhow::{Context as _, Result};
use object::{Object, ObjectSection, ObjectSymbol, RelocationKind, RelocationTarget, SectionFlags, SymbolKind};
use serde::Serialize;
use std::collections::HashMap;

/// The DWARF sections addr2line reads (gimli's names).
const DEBUG_SECTIONS: [&str; 13] = [
    ".debug_abbrev",
    ".debug_addr",
    ".debug_aranges",
    ".debug_info",
    ".debug_line",
    ".debug_line_str",
    ".debug_loc",
    ".debug_loclists",
    ".debug_rnglists",
    ".debug_ranges",
    ".debug_str",
    ".debug_str_offsets",
    ".debug_types",
];

/// Where one allocated section is placed for DWARF lookups: far enough from
/// the next that no section's code reaches another's.
const SECTION_SPACING: u64 = 0x0100_0000;

/// One place in the source: the function and its file and line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceLine {
    /// Demangled (a Rust function's path, not its symbol).
    pub function: String,
    pub file: String,
    pub line: u32,
}

/// A module's debug information, relocated (see the module comment).
#[derive(Debug, Clone)]
pub struct ModuleLines {
    /// The debug sections by name, relocated.
    sections: HashMap<&'static str, Vec<u8>>,
    /// Each allocated section's placement, by name.
    bases: HashMap<String, u64>,
    /// Function symbols: name, section name, value.
    functions: Vec<(String, String, u64)>,
}

impl ModuleLines {
    /// The debug information of a .ko (`data`), or None when it has none
    /// (a module built without -g).
    pub fn parse(data: &[u8]) -> Result<Option<ModuleLines>> {
        let file = object::File::parse(data).context("not an ELF object")?;
        if file.section_by_name(".debug_info").is_none() {
            return Ok(None);
        }
        let mut bases = HashMap::new();
        let mut by_index = HashMap::new();
        for (i, s) in file.sections().filter(|s| is_allocated(s)).enumerate() {
            let base = SECTION_SPACING * (i as u64 + 1);
            by_index.insert(s.index(), base);
            bases.insert(s.name().unwrap_or_default().to_string(), base);
        }
        let mut sections = HashMap::new();
        for name in DEBUG_SECTIONS {
            let Some(sec) = file.section_by_name(name) else { continue };
            let mut bytes = sec.uncompressed_data().with_context(|| format!("reading {name}"))?.into_owned();
            for (offset, r) in sec.relocations() {
                let place = offset as usize;
                if r.kind() != RelocationKind::Absolute || r.size() != 32 || place + 4 > bytes.len() {
                    continue;
                }
                let RelocationTarget::Symbol(si) = r.target() else { continue };
                let Ok(sym) = file.symbol_by_index(si) else { continue };
                let base = sym.section_index().and_then(|i| by_index.get(&i)).copied().unwrap_or(0);
                // ARM's REL relocations keep the addend in the place.
                let addend = if r.has_implicit_addend() {
                    u32::from_le_bytes(bytes[place..place + 4].try_into().unwrap()) as i64
                } else {
                    r.addend()
                };
                let value = (base + sym.address()).wrapping_add(addend as u64) as u32;
                bytes[place..place + 4].copy_from_slice(&value.to_le_bytes());
            }
            sections.insert(name, bytes);
        }
        let functions = file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text)
            .filter_map(|s| {
                let sec = file.section_by_index(s.section_index()?).ok()?;
                Some((s.name().ok()?.to_string(), sec.name().ok()?.to_string(), s.address()))
            })
            .filter(|(n, _, _)| !n.is_empty() && !n.starts_with('$'))
            .collect();
        Ok(Some(ModuleLines { sections, bases, functions }))
    }

    /// The source of `function+offset`; `return_address` for a frame below
    /// the first (the address after a call: the call's line is wanted).
    /// Innermost first: more than one when the code there was inlined.
    pub fn at_symbol(&self, function: &str, offset: u64, return_address: bool) -> Vec<SourceLine> {
        let Some((_, section, value)) = self.functions.iter().find(|(n, _, _)| n == function) else {
            return Vec::new();
        };
        self.at_section(section, value + offset, return_address)
    }

    /// The source of `offset` into the module's `section`.
    pub fn at_section(&self, section: &str, offset: u64, return_address: bool) -> Vec<SourceLine> {
        let Some(base) = self.bases.get(section) else { return Vec::new() };
        let offset = offset - u64::from(return_address && offset > 0);
        // The symbol the offset falls in: the name of a function whose
        // DWARF has lines but no name (Rust's line-tables-only has none for
        // a function that inlines nothing).
        let symbol = self
            .functions
            .iter()
            .filter(|(_, s, v)| s == section && *v <= offset)
            .max_by_key(|(_, _, v)| *v)
            .map(|(n, _, _)| n.as_str())
            .unwrap_or("?");
        self.lookup(base + offset, symbol).unwrap_or_default()
    }

    fn lookup(&self, probe: u64, symbol: &str) -> Result<Vec<SourceLine>> {
        let dwarf = gimli::Dwarf::load(|id| -> Result<_, gimli::Error> {
            let data = self.sections.get(id.name()).map(Vec::as_slice).unwrap_or_default();
            Ok(gimli::EndianSlice::new(data, gimli::RunTimeEndian::Little))
        })?;
        let ctx = addr2line::Context::from_dwarf(dwarf)?;
        let mut frames = ctx.find_frames(probe).skip_all_loads()?;
        let mut out = Vec::new();
        while let Some(f) = frames.next()? {
            let Some(loc) = f.location else { continue };
            let (Some(file), Some(line)) = (loc.file, loc.line) else { continue };
            let function = match f.function {
                Some(name) => name.demangle().map(|c| c.into_owned()).unwrap_or_default(),
                None => addr2line::demangle_auto(symbol.into(), None).into_owned(),
            };
            out.push(SourceLine { function: strip_hash(&function), file: short_path(file), line });
        }
        Ok(out)
    }
}

/// The kernel's debug information (a vmlinux built with it: the
/// exynos4210-gdb profile), for report frames outside any module. vmlinux
/// is linked: its DWARF holds final addresses, and a frame
/// `function+off/len` is the symbol's address plus the offset.
pub struct KernelLines {
    ctx: addr2line::Context<::gimli::EndianRcSlice<gimli::RunTimeEndian>>,
    /// Function symbols by name; a name that several static functions
    /// share is left out (the frame does not say which it is).
    functions: HashMap<String, Option<u64>>,
}

impl std::fmt::Debug for KernelLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KernelLines({} functions)", self.functions.len())
    }
}

impl KernelLines {
    /// The debug information of a vmlinux (`data`), or None when it was
    /// built without.
    pub fn parse(data: &[u8]) -> Result<Option<KernelLines>> {
        let file = object::File::parse(data).context("not an ELF file")?;
        if file.section_by_name(".debug_info").is_none() {
            return Ok(None);
        }
        let endian = if file.is_little_endian() { gimli::RunTimeEndian::Little } else { gimli::RunTimeEndian::Big };
        let dwarf = gimli::Dwarf::load(|id| -> Result<_> {
            let data = match file.section_by_name(id.name()) {
                Some(s) => s.uncompressed_data().with_context(|| format!("reading {}", id.name()))?.into_owned(),
                None => Vec::new(),
            };
            Ok(::gimli::EndianRcSlice::new(std::rc::Rc::from(data), endian))
        })?;
        let ctx = addr2line::Context::from_dwarf(dwarf).context("reading the kernel's DWARF")?;
        let mut functions: HashMap<String, Option<u64>> = HashMap::new();
        for s in file.symbols().filter(|s| s.kind() == SymbolKind::Text) {
            let Ok(name) = s.name() else { continue };
            functions.entry(name.to_string()).and_modify(|a| *a = None).or_insert(Some(s.address()));
        }
        Ok(Some(KernelLines { ctx, functions }))
    }

    /// The source of the kernel's `function+offset` (see
    /// [`ModuleLines::at_symbol`]); nothing for a name several functions share.
    pub fn at_symbol(&self, function: &str, offset: u64, return_address: bool) -> Vec<SourceLine> {
        let Some(Some(address)) = self.functions.get(function) else { return Vec::new() };
        let probe = address + offset - u64::from(return_address && offset > 0);
        let mut out = Vec::new();
        let Ok(mut frames) = self.ctx.find_frames(probe).skip_all_loads() else { return out };
        while let Ok(Some(f)) = frames.next() {
            let Some(loc) = f.location else { continue };
            let (Some(file), Some(line)) = (loc.file, loc.line) else { continue };
            let function = f
                .function
                .and_then(|n| n.demangle().ok().map(|c| c.into_owned()))
                .unwrap_or_else(|| function.to_string());
            out.push(SourceLine { function, file: kernel_path(file), line });
        }
        out
    }
}

/// A kernel source path relative to the source tree (`…/linux/init/main.c`
/// → `init/main.c`), as the kernel's own reports and tools name them.
fn kernel_path(file: &str) -> String {
    for top in [
        "arch", "block", "crypto", "drivers", "fs", "include", "init", "ipc", "kernel", "lib", "mm", "net", "security",
        "sound", "virt",
    ] {
        if let Some((_, rel)) = file.rsplit_once(&format!("/{top}/")) {
            return format!("{top}/{rel}");
        }
    }
    file.to_string()
}

fn is_allocated(s: &object::Section) -> bool {
    matches!(s.flags(), SectionFlags::Elf { sh_flags } if sh_flags & u64::from(object::elf::SHF_ALLOC) != 0)
}

/// A source path as the user knows it: relative to the module directory
/// the build copied (`…/module/x.c` → `x.c`, `…/module/src/lib.rs` →
/// `src/lib.rs`), and Rust's own library from `core/` on.
fn short_path(file: &str) -> String {
    if let Some(lib) = file.strip_prefix("/rustc/").and_then(|f| f.split_once("/library/")) {
        return lib.1.to_string();
    }
    match file.rsplit_once("/module/") {
        Some((_, rel)) => rel.to_string(),
        None => file.to_string(),
    }
}

/// A symbol as its source names it: a Rust symbol demangled, without its
/// trailing hash; any other as it is.
pub fn readable(symbol: &str) -> String {
    strip_hash(&addr2line::demangle_auto(symbol.into(), None))
}

/// A Rust path without its trailing hash (`…::init::h0123456789abcdef`).
fn strip_hash(f: &str) -> String {
    match f.rsplit_once("::h") {
        Some((path, h)) if h.len() == 16 && h.chars().all(|c| c.is_ascii_hexdigit()) => path.to_string(),
        _ => f.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_rust_names_are_shown_as_the_user_wrote_them() {
        assert_eq!(short_path("/work/target/harness-runs/x-1/module/fault.c"), "fault.c");
        assert_eq!(short_path("/work/target/harness-runs/x-1/module/sub/a.c"), "sub/a.c");
        assert_eq!(short_path("src/lib.rs"), "src/lib.rs");
        assert_eq!(
            short_path("/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/ptr/mod.rs"),
            "core/src/ptr/mod.rs"
        );
        assert_eq!(strip_hash("mmc_byte_rust::init::h0123456789abcdef"), "mmc_byte_rust::init");
        assert_eq!(strip_hash("a::hello"), "a::hello");
        assert_eq!(
            readable("_ZN15fault_rust_null18write_through_null17h1d29e77866bffdfeE"),
            "fault_rust_null::write_through_null"
        );
        assert_eq!(readable("null_deref_do"), "null_deref_do");
    }

    #[test]
    fn a_module_without_debug_information_has_no_lines() {
        use object::write::Object as WObject;
        use object::{Architecture, BinaryFormat, Endianness, SectionKind};
        let mut o = WObject::new(BinaryFormat::Elf, Architecture::Arm, Endianness::Little);
        let text = o.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
        o.append_section_data(text, &[0u8; 0x40], 4);
        assert!(ModuleLines::parse(&o.write().unwrap()).unwrap().is_none());
    }
}
