//! Device accesses the emulated board does not have, and which step made
//! them: what turns a register-level driver's silent PASSED into "needs the
//! board".
//!
//! QEMU (`-d guest_errors`, qemu.rs) logs each access to an address no
//! device model claims, `Invalid write at addr 0x110002E0, size 4, region
//! '(null)', reason: rejected`, and the write vanishes. The log has no time,
//! so the harness notes its length as each console line arrives
//! (check.rs): an access logged past that length came after that line, in
//! the step open there. The boot makes such accesses of its own (the
//! kernel's pin controller probing GPIO banks QEMU lacks): those, and any
//! later access to an address the boot touched, are the kernel's.

use crate::judge::step::Transcript;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// At most this many distinct accesses are kept per run: a module that
/// polls a register logs it thousands of times.
pub const MAX_KEPT: usize = 32;

/// One access QEMU rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub address: u64,
    pub write: bool,
    pub size: u32,
}

/// One line of QEMU's guest-error log, if it is a rejected access.
pub fn parse(line: &str) -> Option<Access> {
    let rest = line.strip_prefix("Invalid ")?;
    let (how, rest) = rest.split_once(" at addr 0x")?;
    let write = match how {
        "read" => false,
        "write" => true,
        _ => return None,
    };
    let (address, rest) = rest.split_once(", size ")?;
    let size = rest.split(',').next()?.trim().parse().ok()?;
    Some(Access { address: u64::from_str_radix(address, 16).ok()?, write, size })
}

/// The accesses in `log`, each with the number of the console lines that
/// had arrived before it was logged (`marks[i]`: the log's length when
/// console line `i + 1` arrived).
pub fn placed(log: &str, marks: &[u64]) -> Vec<(usize, Access)> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    for line in log.split_inclusive('\n') {
        if let Some(a) = parse(line.trim_end()) {
            out.push((marks.partition_point(|&m| m <= offset), a));
        }
        offset += line.len() as u64;
    }
    out
}

/// An access to hardware the emulated board lacks, made while a step ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmodelled {
    /// `0x110002E0`.
    pub address: String,
    pub write: bool,
    pub size: u32,
    /// The unit whose step made it, when several shared the boot.
    pub unit: Option<String>,
    pub step: String,
    /// The SoC block (and register) it falls in, from the profile's memory map.
    pub block: Option<String>,
}

impl std::fmt::Display for Unmodelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.write { "write to" } else { "read of" };
        write!(f, "{what} {} ({} bytes", self.address, self.size)?;
        if let Some(b) = &self.block {
            write!(f, ", {b}")?;
        }
        write!(f, ") in step {}", self.step)
    }
}

/// The accesses that the steps made, in order, each distinct (address,
/// direction, step) once, at most [`MAX_KEPT`]: not those before the first
/// step (the boot's), nor any to an address the boot touched, nor those
/// between steps or after the last (the step library's, the poweroff's).
pub fn attribute(t: &Transcript, placed: &[(usize, Access)], map: &MemoryMap) -> Vec<Unmodelled> {
    let first_step = t.lines.iter().find(|l| l.step.is_some()).map(|l| l.number);
    let boot: Vec<u64> = placed.iter().filter(|(n, _)| first_step.is_none_or(|f| *n < f)).map(|(_, a)| a.address).collect();
    let mut out: Vec<Unmodelled> = Vec::new();
    for (n, a) in placed {
        if boot.contains(&a.address) {
            continue;
        }
        // The step of the last console line before the access: open there,
        // or just ended by it (its end marker). None between steps.
        let Some(step) = t.lines.iter().rev().find(|l| l.number <= *n).and_then(|l| l.step).map(|i| &t.steps[i]) else { continue };
        let u = Unmodelled {
            address: format!("0x{:08X}", a.address),
            write: a.write,
            size: a.size,
            unit: step.unit.clone(),
            step: step.name.clone(),
            block: map.name(a.address),
        };
        if out.iter().any(|o| o.address == u.address && o.write == u.write && o.step == u.step && o.unit == u.unit) {
            continue;
        }
        if out.len() == MAX_KEPT {
            break;
        }
        out.push(u);
    }
    out
}

/// A SoC's register blocks (`configs/memory-maps/*.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryMap {
    #[serde(default)]
    pub block: Vec<Block>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub name: String,
    pub base: u64,
    pub size: u64,
    /// Register names by offset (`"0x2e0" = "GPM4CON"`).
    #[serde(default)]
    pub registers: BTreeMap<String, String>,
}

impl MemoryMap {
    /// The block `address` falls in, with the register's name where known:
    /// `GPIO (part 2: …) GPM4CON`.
    pub fn name(&self, address: u64) -> Option<String> {
        let b = self.block.iter().find(|b| (b.base..b.base + b.size).contains(&address))?;
        let offset = address - b.base;
        let register = b.registers.iter().find(|(k, _)| u64::from_str_radix(k.trim_start_matches("0x"), 16).ok() == Some(offset)).map(|(_, v)| v);
        Some(match register {
            Some(r) => format!("{} {r}", b.name),
            None => format!("{} +0x{offset:x}", b.name),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemus_rejected_accesses_are_parsed_and_nothing_else() {
        assert_eq!(
            parse("Invalid write at addr 0x110002E0, size 4, region '(null)', reason: rejected"),
            Some(Access { address: 0x1100_02E0, write: true, size: 4 })
        );
        assert_eq!(parse("Invalid read at addr 0x3810004, size 4, region '(null)', reason: rejected"), Some(Access { address: 0x381_0004, write: false, size: 4 }));
        assert_eq!(parse("exynos4210_clk_read: bad read offset 0x10200"), None);
        assert_eq!(parse("Invalid access at addr 0x10, size 4"), None);
        assert_eq!(parse("Invalid read at addr 0xZZ, size 4"), None);
    }

    #[test]
    fn an_access_is_placed_after_the_console_lines_seen_before_it_was_logged() {
        let log = "Invalid read at addr 0x10, size 4, region '(null)', reason: rejected\n\
                   exynos4210_clk_read: bad read offset 0x10200\n\
                   Invalid write at addr 0x20, size 1, region '(null)', reason: rejected\n";
        let second = log.find("Invalid write").unwrap() as u64;
        // Line 1 came before anything was logged, line 2 before the write,
        // line 3 after it.
        let placed = placed(log, &[0, 10, second + 1]);
        assert_eq!(placed.iter().map(|(n, a)| (*n, a.address)).collect::<Vec<_>>(), [(1, 0x10), (2, 0x20)]);
    }

    fn map() -> MemoryMap {
        let text = std::fs::read_to_string(crate::repo_root().join("configs/memory-maps/exynos4412.toml")).unwrap();
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn the_exynos4412_map_names_the_boards_registers() {
        let m = map();
        assert_eq!(m.name(0x1100_02E0).as_deref(), Some("GPIO (part 2: GPK, GPL, GPY, GPM, GPX) GPM4CON"));
        assert_eq!(m.name(0x1100_0C64).as_deref(), Some("GPIO (part 2: GPK, GPL, GPY, GPM, GPX) GPX3DAT"));
        assert_eq!(m.name(0x1006_0008).as_deref(), Some("WDT WTCNT"));
        assert_eq!(m.name(0x126C_000C).as_deref(), Some("ADC ADCDAT0"));
        assert_eq!(m.name(0x1006_0100).as_deref(), Some("WDT +0x100"));
        assert_eq!(m.name(0x0800_0000), None);
        // No two blocks overlap.
        for (i, a) in m.block.iter().enumerate() {
            for b in &m.block[i + 1..] {
                assert!(a.base + a.size <= b.base || b.base + b.size <= a.base, "{} overlaps {}", a.name, b.name);
            }
        }
    }
}
