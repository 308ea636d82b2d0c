//! Names for bare addresses in the module under test.
//!
//! A report printed after the module is unloaded (kmemleak's, typically)
//! shows the module's frames as bare addresses: the kernel no longer knows
//! them. `/init` records where each section was loaded; with the .ko's own
//! symbol table that is enough to name the function.

use crate::lines::{ModuleLines, SourceLine};
use anyhow::{Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

#[derive(Debug, Clone)]
struct Section {
    name: String,
    base: u64,
    size: u64,
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
    /// Reads the function symbols of `module`'s .ko (its bytes, `data`) for
    /// the sections whose load address is known: (section, address) as its
    /// unit's `section` markers give them.
    pub fn parse(data: &[u8], module: &str, loaded: &[(String, u64)]) -> Result<ModuleSymbols> {
        let file = object::File::parse(data).with_context(|| format!("{module}.ko: not an ELF object"))?;
        let mut sections = Vec::new();
        for (name, base) in loaded {
            let Some(sec) = file.section_by_name(name) else { continue };
            let mut symbols: Vec<(u64, u64, String)> = file
                .symbols()
                .filter(|s| s.section_index() == Some(sec.index()) && s.kind() == SymbolKind::Text)
                .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
                .filter(|(_, _, n)| !n.is_empty() && !n.starts_with('$'))
                .collect();
            symbols.sort();
            sections.push(Section { name: name.clone(), base: *base, size: sec.size(), symbols });
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
        let sec = self.sections.iter().find(|s| address >= s.base && address < s.base + s.size)?;
        let off = address - sec.base;
        let (start, size, name) = sec.symbols.iter().rev().find(|(start, _, _)| *start <= off)?;
        Some(format!("{name}+{:#x}/{:#x} [{}]", off - start, size, self.module))
    }

    /// Names of the sections it can resolve, for messages.
    pub fn section_names(&self) -> Vec<&str> {
        self.sections.iter().map(|s| s.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ARM relocatable object with two functions in .text, written with
    /// the `object` crate's ELF writer: the same layout a .ko has.
    fn arm_object() -> Vec<u8> {
        use object::write::{Object as WObject, Symbol, SymbolSection};
        use object::{Architecture, BinaryFormat, Endianness, SectionKind, SymbolFlags, SymbolScope};
        let mut o = WObject::new(BinaryFormat::Elf, Architecture::Arm, Endianness::Little);
        let text = o.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
        o.append_section_data(text, &[0u8; 0x40], 4);
        for (name, value, size) in [("a", 0x0, 0x10), ("b", 0x10, 0x30)] {
            o.add_symbol(Symbol {
                name: name.as_bytes().to_vec(),
                value,
                size,
                kind: SymbolKind::Text,
                scope: SymbolScope::Compilation,
                weak: false,
                section: SymbolSection::Section(text),
                flags: SymbolFlags::None,
            });
        }
        o.write().unwrap()
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
}
