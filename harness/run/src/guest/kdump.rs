//! The guest memory dump of a hung or panicked guest (qmp.rs writes it),
//! completed so that drgn opens it as it is.
//!
//! QEMU 7.2 writes a kdump-compressed file in makedumpfile's flattened form
//! whose header, for a 32-bit ARM guest, leaves the kernel's name, release
//! and machine empty (`Unknown`) and `phys_base` 0, which libkdumpfile
//! (drgn's reader) refuses; and there is no VMCOREINFO note (smdkc210 has
//! no fw_cfg, the kernel no kexec). So the harness fills those header
//! fields in, from what it knows of the kernel and the board, and writes
//! the VMCOREINFO beside the dump for `drgn --vmcoreinfo`.
//!
//! The flattened form (makedumpfile's `-F`): a 4 KiB header starting with
//! `makedumpfile`, then records of a big-endian (offset, size) pair and
//! `size` bytes to be placed at `offset` of the real file, ended by an
//! offset of -1. The disk_dump_header (offset 0) and the 32-bit
//! kdump_sub_header (offset `block_size`) are in the guest's byte order.

use anyhow::{bail, Context, Result};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

const FLAT_HEADER: u64 = 4096;
/// disk_dump_header: signature[8], header_version, then new_utsname's six
/// 65-byte fields.
const UTSNAME: u64 = 12;
const UTS_FIELD: u64 = 65;
/// `block_size` in disk_dump_header for a 32-bit guest: after the utsname
/// (390 bytes, padded to 404), a 32-bit timeval and `status`.
const BLOCK_SIZE: u64 = 416;
/// At most this many records are walked: a 1 GiB guest's dump has one per
/// page and a few more.
const MAX_RECORDS: usize = 1 << 20;

/// What the dump's header must say of the kernel.
pub struct DumpedKernel<'a> {
    pub release: &'a str,
    /// `uname -m` as the kdump tools spell the architecture.
    pub machine: &'a str,
    /// The RAM's physical base (ARM's PHYS_OFFSET).
    pub phys_base: u32,
}

/// Fills in the kernel's name, release, version and machine, and
/// `phys_base`, in the flattened kdump `file`.
pub fn complete(file: &Path, kernel: &DumpedKernel) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .with_context(|| format!("opening {}", file.display()))?;
    let mut sig = [0u8; 12];
    f.read_exact(&mut sig).with_context(|| format!("reading {}", file.display()))?;
    if &sig != b"makedumpfile" {
        bail!("{} is not a flattened kdump file (QEMU 7.2's kdump form)", file.display());
    }
    let records = records(&mut f).with_context(|| format!("reading the records of {}", file.display()))?;
    let block_size = read_at(&mut f, &records, BLOCK_SIZE)?;
    let mut put = |at: u64, data: &[u8]| -> Result<()> {
        f.seek(SeekFrom::Start(
            position(&records, at, data.len())
                .with_context(|| format!("{}: no record holds offset {at:#x}", file.display()))?,
        ))?;
        f.write_all(data)?;
        Ok(())
    };
    let field = |s: &str| {
        let mut b = s.as_bytes()[..s.len().min(UTS_FIELD as usize - 1)].to_vec();
        b.resize(UTS_FIELD as usize, 0);
        b
    };
    // sysname, release, version (any non-empty), machine.
    put(UTSNAME, &field("Linux"))?;
    put(UTSNAME + 2 * UTS_FIELD, &field(kernel.release))?;
    put(UTSNAME + 3 * UTS_FIELD, &field("#1"))?;
    put(UTSNAME + 4 * UTS_FIELD, &field(kernel.machine))?;
    put(u64::from(block_size), &kernel.phys_base.to_le_bytes())?;
    Ok(())
}

/// The flattened file's records: (offset in the real file, size, position
/// of the data in this file).
fn records(f: &mut std::fs::File) -> Result<Vec<(u64, u64, u64)>> {
    let len = f.metadata()?.len();
    let mut out = Vec::new();
    let mut pos = FLAT_HEADER;
    while out.len() < MAX_RECORDS {
        f.seek(SeekFrom::Start(pos))?;
        let mut head = [0u8; 16];
        f.read_exact(&mut head).context("a record's header runs past the end")?;
        let offset = i64::from_be_bytes(head[..8].try_into().unwrap());
        let size = i64::from_be_bytes(head[8..].try_into().unwrap());
        if offset == -1 {
            return Ok(out);
        }
        if offset < 0 || size < 0 || pos + 16 + size as u64 > len {
            bail!("a record at {pos:#x} is malformed (offset {offset}, size {size})");
        }
        out.push((offset as u64, size as u64, pos + 16));
        pos += 16 + size as u64;
    }
    bail!("more than {MAX_RECORDS} records")
}

/// Where in the flattened file the `len` bytes at offset `at` of the real
/// file lie, if one record holds them.
fn position(records: &[(u64, u64, u64)], at: u64, len: usize) -> Option<u64> {
    records.iter().find(|(o, s, _)| *o <= at && at + len as u64 <= o + s).map(|(o, _, pos)| pos + (at - o))
}

fn read_at(f: &mut std::fs::File, records: &[(u64, u64, u64)], at: u64) -> Result<u32> {
    f.seek(SeekFrom::Start(position(records, at, 4).context("no record holds the header's block_size")?))?;
    let mut b = [0u8; 4];
    f.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// The VMCOREINFO that drgn needs to read a kernel it cannot find one in:
/// the release, the page size, and where the kernel's page tables and
/// text are (from the build's System.map).
pub fn vmcoreinfo(release: &str, system_map: &str) -> Result<String> {
    let symbol = |name: &str| {
        system_map
            .lines()
            .find_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
                [addr, _, n] if n == name => Some(addr.to_string()),
                _ => None,
            })
            .with_context(|| format!("System.map has no {name}"))
    };
    Ok(format!(
        "OSRELEASE={release}\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)={}\nSYMBOL(_stext)={}\nKERNELOFFSET=0\n",
        symbol("swapper_pg_dir")?,
        symbol("_stext")?
    ))
}

/// Where the guest's RAM starts, from the device tree QEMU gave it.
pub fn ram_base(dtb: &Path) -> Result<u32> {
    let data = std::fs::read(dtb).with_context(|| format!("reading {}", dtb.display()))?;
    let fdt = fdt::Fdt::new(&data).map_err(|e| anyhow::anyhow!("{}: not a device tree blob: {e:?}", dtb.display()))?;
    let region = fdt.memory().regions().next().with_context(|| format!("{}: no memory region", dtb.display()))?;
    u32::try_from(region.starting_address as usize).with_context(|| format!("{}: RAM above 4 GiB", dtb.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flattened file as QEMU writes one: the headers in records of their
    /// own, a page, the end.
    fn flattened(block_size: u32) -> Vec<u8> {
        let mut f = b"makedumpfile".to_vec();
        f.resize(FLAT_HEADER as usize, 0);
        let mut record = |offset: i64, data: &[u8]| {
            f.extend(offset.to_be_bytes());
            f.extend((data.len() as i64).to_be_bytes());
            f.extend(data);
        };
        let mut header = b"KDUMP   ".to_vec();
        header.resize(BLOCK_SIZE as usize, 0);
        header[UTSNAME as usize + 4 * UTS_FIELD as usize..][..7].copy_from_slice(b"Unknown");
        header.extend(block_size.to_le_bytes());
        header.resize(464, 0);
        record(0, &header);
        record(i64::from(block_size), &[0u8; 64]);
        record(2 * i64::from(block_size), &[0x55u8; 100]);
        f.extend((-1i64).to_be_bytes());
        f.extend(0i64.to_be_bytes());
        f
    }

    #[test]
    fn the_header_gets_the_kernels_name_and_the_ram_base() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory.kdump");
        let before = flattened(4096);
        std::fs::write(&path, &before).unwrap();
        complete(&path, &DumpedKernel { release: "6.12.118-emulated", machine: "arm", phys_base: 0x4000_0000 })
            .unwrap();
        let after = std::fs::read(&path).unwrap();
        assert_eq!(after.len(), before.len());
        let header = FLAT_HEADER as usize + 16;
        let uts = |i: usize| {
            let at = header + UTSNAME as usize + i * UTS_FIELD as usize;
            String::from_utf8_lossy(&after[at..at + UTS_FIELD as usize]).trim_end_matches('\0').to_string()
        };
        assert_eq!([uts(0), uts(2), uts(3), uts(4)], ["Linux", "6.12.118-emulated", "#1", "arm"]);
        let sub = header + 464 + 16;
        assert_eq!(&after[sub..sub + 4], &0x4000_0000u32.to_le_bytes());
        // The page's record is untouched.
        assert_eq!(&after[sub + 64 + 16..sub + 64 + 16 + 100], &[0x55u8; 100]);
    }

    #[test]
    fn what_is_not_a_flattened_kdump_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"\x7fELF and so on").unwrap();
        let k = DumpedKernel { release: "r", machine: "arm", phys_base: 0 };
        assert!(format!("{:#}", complete(&path, &k).unwrap_err()).contains("not a flattened kdump"));
        let mut cut = flattened(4096);
        cut.truncate(FLAT_HEADER as usize + 40);
        std::fs::write(&path, &cut).unwrap();
        assert!(format!("{:#}", complete(&path, &k).unwrap_err()).contains("malformed"));
    }

    #[test]
    fn the_vmcoreinfo_comes_from_the_symbol_map() {
        let map = "c0004000 A swapper_pg_dir\nc0100000 T _stext\nc0100000 T _text\n";
        assert_eq!(
            vmcoreinfo("6.12.118-gdb", map).unwrap(),
            "OSRELEASE=6.12.118-gdb\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=c0004000\nSYMBOL(_stext)=c0100000\n\
             KERNELOFFSET=0\n"
        );
        assert!(vmcoreinfo("r", "c0100000 T _stext\n").unwrap_err().to_string().contains("no swapper_pg_dir"));
    }
}
