//! Names for bare addresses in the module under test.
//!
//! A report printed after the module is unloaded (kmemleak's, typically)
//! shows the module's frames as bare addresses: the kernel no longer knows
//! them. `/init` records where each section was loaded; with the .ko's own
//! symbol table that is enough to name the function.

use anyhow::{Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
use std::path::Path;

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
}

impl ModuleSymbols {
    /// Reads the function symbols of `ko` for the sections whose load address
    /// is known.
    pub fn load(ko: &Path, module: &str, loaded: &[(String, u64)]) -> Result<ModuleSymbols> {
        let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
        let file = object::File::parse(&*data).with_context(|| format!("{}: not an ELF object", ko.display()))?;
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
        Ok(ModuleSymbols { module: module.to_string(), sections })
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

    /// Uses a real ARM relocatable object: the host's cross compiler builds a
    /// tiny one, so the test reads the same ELF layout a .ko has.
    #[test]
    fn names_addresses_inside_loaded_sections() {
        let Some(gcc) = crate::packages::find_program("arm-linux-gnueabihf-gcc") else {
            panic!("arm-linux-gnueabihf-gcc is needed for this test: run `cargo run -- setup`");
        };
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("m.c");
        std::fs::write(&c, "int a(int x){return x+1;}\nint b(int x){return a(x)*3+x*x;}\n").unwrap();
        let o = dir.path().join("m.o");
        let st = std::process::Command::new(gcc).args(["-O1", "-marm", "-c"]).arg(&c).arg("-o").arg(&o).status().unwrap();
        assert!(st.success());
        let syms = ModuleSymbols::load(&o, "m", &[(".text".into(), 0xbf000000), (".nope".into(), 0x1000)]).unwrap();
        assert_eq!(syms.section_names(), vec![".text"]);
        let a = syms.name(0xbf000000).unwrap();
        assert!(a.starts_with("a+0x0/0x") && a.ends_with(" [m]"), "{a}");
        let text = &syms.sections[0];
        let (b_off, _, _) = text.symbols.iter().find(|(_, _, n)| n == "b").unwrap();
        let b = syms.name(0xbf000000 + b_off + 4).unwrap();
        assert!(b.starts_with("b+0x4/"), "{b}");
        assert_eq!(syms.name(0xbf000000 + text.size), None, "past the end");
        assert_eq!(syms.name(0xc0000000), None);
    }
}
