//! Names for bare addresses in the module under test.
//!
//! A report printed after the module is unloaded (kmemleak's, typically)
//! shows the module's frames as bare addresses: the kernel no longer knows
//! them. `/init` records where each section was loaded; with the .ko's own
//! symbol table that is enough to name the function. Its data sections
//! (.data, .bss, .rodata…) name an object the same way: a tasklet left
//! scheduled is found by the kernel as a fault on its freed struct, with
//! the kernel's own code as the program counter.

use crate::lines::{ModuleLines, SourceLine};
use anyhow::{Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

#[derive(Debug, Clone)]
struct Section {
    name: String,
    base: u64,
    size: u64,
    /// Code (its function symbols) or data (its object symbols).
    code: bool,
    /// (offset in section, size, name), sorted by offset.
    symbols: Vec<(u64, u64, String)>,
}

#[derive(Debug, Clone)]
pub struct ModuleSymbols {
    module: String,
    sections: Vec<Section>,
    /// Its DWARF, when it was built with debug information.
    lines: Option<ModuleLines>,
}

impl ModuleSymbols {
    /// Reads the function and object symbols of `module`'s .ko (its bytes,
    /// `data`) for the sections whose load address is known: (section,
    /// address) as its unit's `section` markers give them.
    pub fn parse(data: &[u8], module: &str, loaded: &[(String, u64)]) -> Result<ModuleSymbols> {
        let file = object::File::parse(data).with_context(|| format!("{module}.ko: not an ELF object"))?;
        let mut sections = Vec::new();
        for (name, base) in loaded {
            let Some(sec) = file.section_by_name(name) else { continue };
            let code = sec.kind() == SectionKind::Text;
            // A function is named only from code, an object only from data:
            // a bare address in a call trace must never come out as a variable.
            let kind = if code { SymbolKind::Text } else { SymbolKind::Data };
            let mut symbols: Vec<(u64, u64, String)> = file
                .symbols()
                .filter(|s| s.section_index() == Some(sec.index()) && s.kind() == kind)
                .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
                .filter(|(_, _, n)| !n.is_empty() && !n.starts_with('$'))
                .collect();
            symbols.sort();
            sections.push(Section { name: name.clone(), base: *base, size: sec.size(), code, symbols });
        }
        let lines = ModuleLines::parse(data).with_context(|| format!("{module}.ko: reading its debug information"))?;
        Ok(ModuleSymbols { module: module.to_string(), sections, lines })
    }

    /// The source lines of `function+offset` in this module (innermost
    /// first), `return_address` for a frame below the first.
    pub fn source_of(&self, function: &str, offset: u64, return_address: bool) -> Vec<SourceLine> {
        self.lines.as_ref().map(|l| l.at_symbol(function, offset, return_address)).unwrap_or_default()
    }

    /// The module these are the symbols of.
    pub fn module(&self) -> &str {
        &self.module
    }

    /// `function+0xoff/0xsize [module]`, as the kernel would have printed it.
    pub fn name(&self, address: u64) -> Option<String> {
        let sec = self.sections.iter().find(|s| s.code && address >= s.base && address < s.base + s.size)?;
        let off = address - sec.base;
        let (start, size, name) = sec.symbols.iter().rev().find(|(start, _, _)| *start <= off)?;
        Some(format!("{name}+{:#x}/{:#x} [{}]", off - start, size, self.module))
    }

    /// The object of the module's data at `address`: `flash_tasklet+0x4/0x1c
    /// [led_flash]` inside one, else the section's place (`.bss+0x8
    /// [led_flash]`: a string, or padding between objects).
    pub fn name_data(&self, address: u64) -> Option<String> {
        let sec = self.sections.iter().find(|s| !s.code && address >= s.base && address < s.base + s.size)?;
        let off = address - sec.base;
        let inside = sec.symbols.iter().rev().find(|(start, size, _)| *start <= off && off < start + size);
        Some(match inside {
            Some((start, size, name)) => format!("{name}+{:#x}/{:#x} [{}]", off - start, size, self.module),
            None => format!("{}+{off:#x} [{}]", sec.name, self.module),
        })
    }

    /// Names of the sections it can resolve, for messages.
    pub fn section_names(&self) -> Vec<&str> {
        self.sections.iter().map(|s| s.name.as_str()).collect()
    }
}

/// An ARM relocatable object with a .text of `text` bytes and a .data of
/// `data` bytes, and `symbols` in them: (name, offset, size, in .text), and
/// `more` in .data. Written with the `object` crate's ELF writer: the same
/// layout a .ko has.
#[cfg(test)]
pub(crate) fn object_with(
    symbols: &[(&str, u64, u64, bool)],
    text: usize,
    data: usize,
    more: &[(&str, u64, u64)],
) -> Vec<u8> {
    use object::write::{Object as WObject, Symbol, SymbolSection};
    use object::{Architecture, BinaryFormat, Endianness, SymbolFlags, SymbolScope};
    let mut o = WObject::new(BinaryFormat::Elf, Architecture::Arm, Endianness::Little);
    let text_id = o.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
    o.append_section_data(text_id, &vec![0u8; text], 4);
    let data_id = o.add_section(Vec::new(), b".data".to_vec(), SectionKind::Data);
    o.append_section_data(data_id, &vec![0u8; data], 4);
    let all = symbols.iter().copied().chain(more.iter().map(|&(n, v, z)| (n, v, z, false)));
    for (name, value, size, code) in all {
        o.add_symbol(Symbol {
            name: name.as_bytes().to_vec(),
            value,
            size,
            kind: if code { SymbolKind::Text } else { SymbolKind::Data },
            scope: SymbolScope::Compilation,
            weak: false,
            section: SymbolSection::Section(if code { text_id } else { data_id }),
            flags: SymbolFlags::None,
        });
    }
    o.write().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ARM relocatable object with two functions in .text and two
    /// objects in .data (a gap between them).
    fn arm_object() -> Vec<u8> {
        let symbols = [("a", 0x0, 0x10, true), ("b", 0x10, 0x30, true), ("my_tasklet", 0x0, 0x1c, false)];
        object_with(&symbols, 0x40, 0x28, &[("count", 0x20, 0x4)])
    }

    #[test]
    fn names_addresses_inside_loaded_sections() {
        let loaded = [(".text".to_string(), 0xbf000000), (".nope".into(), 0x1000)];
        let syms = ModuleSymbols::parse(&arm_object(), "m", &loaded).unwrap();
        assert_eq!(syms.section_names(), vec![".text"]);
        assert_eq!(syms.name(0xbf000000).as_deref(), Some("a+0x0/0x10 [m]"));
        assert_eq!(syms.name(0xbf00000c).as_deref(), Some("a+0xc/0x10 [m]"));
        assert_eq!(syms.name(0xbf000014).as_deref(), Some("b+0x4/0x30 [m]"));
        assert_eq!(syms.name(0xbf000040), None, "past the end");
        assert_eq!(syms.name(0xc0000000), None);
    }

    /// Issue 34: a data address is named by the object holding it, and a
    /// code address never by data nor the other way round.
    #[test]
    fn names_data_addresses_by_their_objects_only_from_data_sections() {
        let loaded = [(".text".to_string(), 0xbf000000), (".data".into(), 0xbf002000)];
        let syms = ModuleSymbols::parse(&arm_object(), "m", &loaded).unwrap();
        assert_eq!(syms.name_data(0xbf002004).as_deref(), Some("my_tasklet+0x4/0x1c [m]"));
        assert_eq!(syms.name_data(0xbf002020).as_deref(), Some("count+0x0/0x4 [m]"));
        // Between two objects: the section's place, not the object before.
        assert_eq!(syms.name_data(0xbf00201c).as_deref(), Some(".data+0x1c [m]"));
        assert_eq!(syms.name_data(0xbf002028), None, "past the end");
        assert_eq!(syms.name_data(0xbf000004), None, "code is no data");
        assert_eq!(syms.name(0xbf002004), None, "data is no code");
    }
}
