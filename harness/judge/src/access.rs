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
//!
//! The virtual board's copies of the blocks it models are memory, not
//! QEMU's: an access there to a register the model lacks (a whole 4 KiB
//! GPIO block mapped, one of its other banks written) never reaches QEMU's
//! log. The model reports it instead, as a board change `access` (the
//! 3.5 layer's accessors give it the mapping and the module's line), and
//! it counts the same.

use crate::step::{StepKind, Transcript};
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

/// The guest-error log's length as each console line arrived, kept as its
/// changes only: memory bounded by how far the log grows (the check turns
/// it off past a bound), not by how many lines the console prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogMarks {
    /// Each new length, with the number of console lines before it.
    changes: Vec<(u64, usize)>,
    lines: usize,
}

impl LogMarks {
    /// A console line arrived while the log was `len` bytes long (the log
    /// only grows).
    pub fn push(&mut self, len: u64) {
        if self.changes.last().is_none_or(|&(last, _)| last != len) {
            self.changes.push((len, self.lines));
        }
        self.lines += 1;
    }

    /// How many console lines had arrived while the log was not yet longer
    /// than `offset`, i.e. before what it logged at `offset`.
    fn lines_before(&self, offset: u64) -> usize {
        let i = self.changes.partition_point(|&(len, _)| len <= offset);
        self.changes.get(i).map_or(self.lines, |&(_, line)| line)
    }
}

/// The accesses in `log`, each with the number of the console lines that
/// had arrived before it was logged.
pub fn placed(log: &str, marks: &LogMarks) -> Vec<(usize, Access)> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    for line in log.split_inclusive('\n') {
        if let Some(a) = parse(line.trim_end()) {
            out.push((marks.lines_before(offset), a));
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
    /// The mapping it went through (`ioremap(0x11400000, 0x1000)`,
    /// `S5P_VA_GPIO2`), when the virtual board saw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<String>,
    /// The module's line that made it (`leds.c:40`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// The input pin read (`GPX1_0`) when what the board lacks is not a
    /// register but whatever is wired to that pin (the virtual board's
    /// `unwired` change); `address` is then its bank's DAT register.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

impl std::fmt::Display for Unmodelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(pin) = &self.pin {
            return write!(
                f,
                "read of input pin {pin} ({}), which nothing drives on the virtual board: what a device wired to \
                 it on the board answers is not modelled, in step {}",
                self.block.as_deref().unwrap_or(&self.address),
                self.step
            );
        }
        let what = if self.write { "write to" } else { "read of" };
        write!(f, "{what} {} ({} bytes", self.address, self.size)?;
        if let Some(b) = &self.block {
            write!(f, ", {b}")?;
        }
        write!(f, ")")?;
        if let Some(m) = &self.mapping {
            write!(f, " through {m}")?;
        }
        if let Some(l) = &self.line {
            write!(f, " at {l}")?;
        }
        write!(f, " in step {}", self.step)
    }
}

/// The accesses that the steps made, in order, each distinct (address,
/// direction, step) once, at most [`MAX_KEPT`]: not those before the first
/// step (the boot's), nor any to an address the boot touched, nor those
/// between steps or after the last (the step library's, the poweroff's),
/// nor those of a census step: that is the harness reading the kernel's
/// lists, and on 3.5 debugfs's GPIO list reads the level of every pin the
/// kernel's own drivers requested from data registers smdkc210 lacks (a
/// module's leftover pin is the census's own finding).
pub fn attribute(t: &Transcript, placed: &[(usize, Access)], map: &MemoryMap) -> Vec<Unmodelled> {
    let first_step = t.lines.iter().find(|l| l.step.is_some()).map(|l| l.number);
    let boot: Vec<u64> =
        placed.iter().filter(|(n, _)| first_step.is_none_or(|f| *n < f)).map(|(_, a)| a.address).collect();
    let mut out: Vec<Unmodelled> = Vec::new();
    for (n, a) in placed {
        if boot.contains(&a.address) {
            continue;
        }
        // The step of the last console line before the access: open there,
        // or just ended by it (its end marker). None between steps.
        let Some(step) = t.lines.iter().rev().find(|l| l.number <= *n).and_then(|l| l.step).map(|i| &t.steps[i]) else {
            continue;
        };
        if step.kind() == StepKind::Census {
            continue;
        }
        let u = Unmodelled {
            address: format!("0x{:08X}", a.address),
            write: a.write,
            size: a.size,
            unit: step.unit.clone(),
            step: step.name.clone(),
            block: map.name(a.address, a.size),
            mapping: None,
            line: None,
            pin: None,
        };
        if out.iter().any(|o| o.address == u.address && o.write == u.write && o.step == u.step && o.unit == u.unit) {
            continue;
        }
        if out.len() == MAX_KEPT {
            break;
        }
        out.push(u);
    }
    for u in from_board(t, map) {
        if out.len() == MAX_KEPT {
            break;
        }
        if !out.iter().any(|o| {
            o.address == u.address && o.write == u.write && o.step == u.step && o.unit == u.unit && o.line == u.line
        }) {
            out.push(u);
        }
    }
    out
}

/// The board change that reports an access to the model's copy of a
/// register it lacks (`compat35/board/tiny4412_board.c`, report_access).
pub const BOARD_ACCESS: &str = "access";

/// The board change that reports a read of an input pin nothing on the
/// virtual board drives (report_unwired): `read GPX1_0 0x11000c24`.
pub const BOARD_UNWIRED: &str = "unwired";

/// Whether a board change is one of the model's reports of hardware it
/// lacks, which the verdict lists as such, not as the board's changes.
pub fn is_report(part: &str) -> bool {
    part == BOARD_ACCESS || part == BOARD_UNWIRED
}

/// An `unwired` change's state: the pin and its bank's DAT address.
fn unwired(state: &str) -> Option<(String, u64)> {
    let mut w = state.split_whitespace();
    (w.next()? == "read").then_some(())?;
    let pin = w.next()?;
    let address = u64::from_str_radix(w.next()?.strip_prefix("0x")?, 16).ok()?;
    let named = pin.len() <= 16 && pin.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    named.then(|| (pin.to_string(), address))
}

/// The accesses the virtual board reported, each in the step it was
/// reported in: `write 0x11400020 4 ioremap(0x11400000,0x1000) leds.c:40`
/// (`-` for a mapping or line not known).
pub fn from_board(t: &Transcript, map: &MemoryMap) -> Vec<Unmodelled> {
    t.board
        .iter()
        .filter(|(_, _, part, _)| is_report(part))
        .filter_map(|(i, _, part, state)| {
            let step = &t.steps[(*i)?];
            if step.kind() == StepKind::Census {
                return None;
            }
            if part == BOARD_UNWIRED {
                let (pin, address) = unwired(state)?;
                return Some(Unmodelled {
                    address: format!("0x{address:08X}"),
                    write: false,
                    size: 4,
                    unit: step.unit.clone(),
                    step: step.name.clone(),
                    block: map.name(address, 4),
                    mapping: None,
                    line: None,
                    pin: Some(pin),
                });
            }
            let mut w = state.split_whitespace();
            let write = match w.next()? {
                "write" => true,
                "read" => false,
                _ => return None,
            };
            let address = u64::from_str_radix(w.next()?.strip_prefix("0x")?, 16).ok()?;
            let size: u32 = w.next()?.parse().ok()?;
            let known = |s: &str| (s != "-").then(|| s.to_string());
            let mapping = w.next().and_then(known).map(|m| m.replace(',', ", "));
            let line = w.next().and_then(known);
            Some(Unmodelled {
                address: format!("0x{address:08X}"),
                write,
                size,
                unit: step.unit.clone(),
                step: step.name.clone(),
                block: map.name(address, size),
                mapping,
                line,
                pin: None,
            })
        })
        .collect()
}

/// A SoC's register blocks (`configs/memory-maps/*.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryMap {
    #[serde(default)]
    pub block: Vec<Block>,
    /// A GPIO bank's registers by offset from its CON (`"0x4" = "DAT"`).
    #[serde(default)]
    pub bank_registers: BTreeMap<String, String>,
}

fn offset(key: &str) -> Option<u64> {
    u64::from_str_radix(key.trim_start_matches("0x"), 16).ok()
}

/// The width of every register the maps name.
const REGISTER_BYTES: u64 = 4;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub name: String,
    pub base: u64,
    pub size: u64,
    /// Register names by offset (`"0x2e0" = "GPM4CON"`).
    #[serde(default)]
    pub registers: BTreeMap<String, String>,
    /// GPIO banks by the offset of their CON (`"0x20" = "GPA1"`); their
    /// registers are named by the map's `bank_registers` (GPA1CON).
    #[serde(default)]
    pub banks: BTreeMap<String, String>,
}

impl MemoryMap {
    /// The block a `size`-byte access at `address` falls in, with the
    /// register's name where known (`GPIO (part 2: …) GPM4CON`), and what
    /// is wrong with an access that is not a whole register
    /// (`GPM4CON+1, unaligned: …`).
    pub fn name(&self, address: u64, size: u32) -> Option<String> {
        let b = self.block.iter().find(|b| (b.base..b.base + b.size).contains(&address))?;
        let offset = address - b.base;
        let word = offset - offset % REGISTER_BYTES;
        let within = offset - word;
        let what = match self.register(b, word) {
            Some(r) if within == 0 => r,
            Some(r) => format!("{r}+{within}"),
            None => format!("+0x{offset:x}"),
        };
        let why = if within != 0 && u64::from(size) >= REGISTER_BYTES {
            ", unaligned: the registers are 4-byte words at multiples of 4".to_string()
        } else if within != 0 {
            format!(", an odd offset: a {size}-byte access inside a 4-byte register")
        } else {
            String::new()
        };
        Some(format!("{} {what}{why}", b.name))
    }

    /// The register at `offset` (a multiple of 4) of block `b`: its own
    /// name, or its bank's and the bank layout's (GPA1 + CON).
    fn register(&self, b: &Block, offset: u64) -> Option<String> {
        if let Some((_, r)) = b.registers.iter().find(|(k, _)| self::offset(k) == Some(offset)) {
            return Some(r.clone());
        }
        b.banks.iter().find_map(|(k, bank)| {
            let within = offset.checked_sub(self::offset(k)?)?;
            let (_, r) = self.bank_registers.iter().find(|(k, _)| self::offset(k) == Some(within))?;
            Some(format!("{bank}{r}"))
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
        assert_eq!(
            parse("Invalid read at addr 0x3810004, size 4, region '(null)', reason: rejected"),
            Some(Access { address: 0x381_0004, write: false, size: 4 })
        );
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
        let mut marks = LogMarks::default();
        [0, 10, second + 1].into_iter().for_each(|len| marks.push(len));
        let placed = placed(log, &marks);
        assert_eq!(placed.iter().map(|(n, a)| (*n, a.address)).collect::<Vec<_>>(), [(1, 0x10), (2, 0x20)]);
    }

    /// The marks place a log offset as the whole list of lengths, one per
    /// line, did (the first line that saw the log longer than the offset),
    /// and a console that floods while the log stays put costs nothing.
    #[test]
    fn the_marks_keep_only_the_logs_changes_and_place_as_one_per_line_did() {
        let lens: Vec<u64> = vec![0, 0, 0, 10, 10, 25, 25, 25, 25, 40];
        let mut marks = LogMarks::default();
        lens.iter().for_each(|&len| marks.push(len));
        for offset in 0..45 {
            assert_eq!(marks.lines_before(offset), lens.partition_point(|&m| m <= offset), "offset {offset}");
        }
        let mut flood = LogMarks::default();
        (0..100_000).for_each(|_| flood.push(7));
        assert_eq!((flood.changes.len(), flood.lines_before(0), flood.lines_before(7)), (1, 0, 100_000));
    }

    /// A log of the virtual board's markers (`@@N` for the marker and the
    /// nonce): its transcript, what [`attribute`] makes of it, and that as
    /// shown.
    fn board_log(log: &str) -> (Transcript, Vec<Unmodelled>, Vec<String>) {
        use crate::marker::{FIXTURE_NONCE, MARKER};
        let t = Transcript::from_log(&log.replace("@@N", &format!("{MARKER} {FIXTURE_NONCE}")), FIXTURE_NONCE);
        let got = attribute(&t, &[], &map());
        let shown = got.iter().map(|u| u.to_string()).collect();
        (t, got, shown)
    }

    /// The virtual board's report of an access to its copy of a register
    /// it lacks is an unmodelled access of the step it came in, named like
    /// QEMU's, with its mapping and line; the board's other changes are not.
    #[test]
    fn the_boards_reported_accesses_are_named_with_their_mapping_and_line() {
        let (t, _, shown) = board_log(
            "[    2.0] @@N begin insmod\n\
                   [    2.1] @@N board 2.050000 access write 0x11400020 4 ioremap(0x11400000,0x1000) leds.c:32\n\
                   [    2.1] @@N board 2.060000 access write 0x11400024 4 S5P_VA_GPIO -\n\
                   [    2.1] @@N board 2.070000 LED1 on\n\
                   [    2.2] @@N end insmod rc=0\n",
        );
        assert_eq!(
            shown,
            [
                "write to 0x11400020 (4 bytes, GPIO (part 1: GPA..GPF) GPA1CON) through ioremap(0x11400000, 0x1000) \
                    at leds.c:32 in step insmod",
                "write to 0x11400024 (4 bytes, GPIO (part 1: GPA..GPF) GPA1DAT) through S5P_VA_GPIO in step insmod",
            ]
        );
        assert_eq!(t.board_changes().iter().map(|c| c.part.as_str()).collect::<Vec<_>>(), ["LED1"]);
    }

    /// A read of an input pin nothing on the virtual board drives (a 1-wire
    /// sensor's line on the header) is hardware the emulated board does
    /// not have, named by its pin and bank register; it is not one of the
    /// board's changes, and a forged pin name is not taken.
    #[test]
    fn a_read_of_an_unwired_input_pin_is_hardware_the_board_lacks() {
        let (t, got, shown) = board_log(
            "[    2.0] @@N begin app\n\
                   [    2.1] @@N board 2.050000 unwired read GPX1_0 0x11000c24\n\
                   [    2.1] @@N board 2.060000 unwired read GPX1_1;rm 0x11000c24\n\
                   [    2.1] @@N board 2.070000 LED1 on\n\
                   [    2.2] @@N end app rc=0\n",
        );
        assert_eq!(
            shown,
            ["read of input pin GPX1_0 (GPIO (part 2: GPK, GPL, GPY, GPM, GPX) GPX1DAT), which nothing drives on \
              the virtual board: what a device wired to it on the board answers is not modelled, in step app"]
        );
        assert_eq!(got[0].pin.as_deref(), Some("GPX1_0"));
        assert_eq!(t.board_changes().iter().map(|c| c.part.as_str()).collect::<Vec<_>>(), ["LED1"]);
    }

    /// The census reads the kernel's lists (on 3.5, debugfs's GPIO list
    /// reads each requested pin's level from registers smdkc210 lacks):
    /// those reads are the harness's, not the module's, and never make it
    /// NEEDS-THE-BOARD; the same read in the module's own step still counts.
    #[test]
    fn the_census_steps_reads_are_not_the_modules() {
        use crate::marker::{FIXTURE_NONCE, MARKER};
        let log = "[    6.7] @@N begin census\n\
                   [    7.6] @@N end census rc=0\n\
                   [    7.7] @@N begin insmod\n\
                   [    7.8] @@N end insmod rc=0\n\
                   [    8.3] @@N begin census#2\n\
                   [    8.8] @@N end census#2 rc=0\n"
            .replace("@@N", &format!("{MARKER} {FIXTURE_NONCE}"));
        let t = Transcript::from_log(&log, FIXTURE_NONCE);
        let read = |address| Access { address, write: false, size: 4 };
        // Console line 1 (census), 3 (insmod), 5 (census#2).
        let placed = [(1, read(0x1100_0044)), (3, read(0x1100_0C64)), (5, read(0x1100_0084))];
        let shown: Vec<String> = attribute(&t, &placed, &map()).iter().map(|u| u.to_string()).collect();
        assert_eq!(
            shown,
            ["read of 0x11000C64 (4 bytes, GPIO (part 2: GPK, GPL, GPY, GPM, GPX) GPX3DAT) in step insmod"]
        );
    }

    fn map() -> MemoryMap {
        let text = std::fs::read_to_string(crate::repo_root().join("configs/memory-maps/exynos4412.toml")).unwrap();
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn the_exynos4412_map_names_the_boards_registers() {
        let m = map();
        assert_eq!(m.name(0x1100_02E0, 4).as_deref(), Some("GPIO (part 2: GPK, GPL, GPY, GPM, GPX) GPM4CON"));
        assert_eq!(m.name(0x1100_0C64, 4).as_deref(), Some("GPIO (part 2: GPK, GPL, GPY, GPM, GPX) GPX3DAT"));
        assert_eq!(m.name(0x1006_0008, 4).as_deref(), Some("WDT WTCNT"));
        assert_eq!(m.name(0x126C_000C, 4).as_deref(), Some("ADC ADCDAT0"));
        assert_eq!(m.name(0x1006_0100, 4).as_deref(), Some("WDT +0x100"));
        assert_eq!(m.name(0x0800_0000, 4), None);
        // Every bank's registers by the datasheet's names.
        assert_eq!(m.name(0x1140_0020, 4).as_deref(), Some("GPIO (part 1: GPA..GPF) GPA1CON"));
        assert_eq!(m.name(0x1140_0024, 4).as_deref(), Some("GPIO (part 1: GPA..GPF) GPA1DAT"));
        assert_eq!(m.name(0x1100_0108, 4).as_deref(), Some("GPIO (part 2: GPK, GPL, GPY, GPM, GPX) GPL2PUD"));
        assert_eq!(m.name(0x1100_0C48, 4).as_deref(), Some("GPIO (part 2: GPK, GPL, GPY, GPM, GPX) GPX2PUD"));
        assert_eq!(m.name(0x1006_000C, 4).as_deref(), Some("WDT WTCLRINT"));
        // An access that is not a whole register says so.
        assert_eq!(
            m.name(0x1100_02E1, 4).as_deref(),
            Some(
                "GPIO (part 2: GPK, GPL, GPY, GPM, GPX) GPM4CON+1, unaligned: the registers are 4-byte words at \
                multiples of 4"
            )
        );
        assert_eq!(
            m.name(0x1100_02E5, 1).as_deref(),
            Some(
                "GPIO (part 2: GPK, GPL, GPY, GPM, GPX) GPM4DAT+1, an odd offset: a 1-byte access inside a 4-byte \
                register"
            )
        );
        // No two blocks overlap.
        for (i, a) in m.block.iter().enumerate() {
            for b in &m.block[i + 1..] {
                assert!(a.base + a.size <= b.base || b.base + b.size <= a.base, "{} overlaps {}", a.name, b.name);
            }
        }
    }
}
