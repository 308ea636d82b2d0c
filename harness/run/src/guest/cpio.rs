//! A writer for the "newc" cpio format, the one the kernel unpacks as an initramfs.
//!
//! Writing the archive ourselves is what lets the rootfs be built without root:
//! device nodes such as /dev/console are entries in the archive, never mknod'ed
//! on the host, and every file is owned by uid 0 whatever the host user is.

use std::io::{self, Write};

/// File type bits of `st_mode`, as the kernel's initramfs unpacker reads them.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpioMember {
    Dir { path: String, mode: u32 },
    File { path: String, mode: u32, data: Vec<u8> },
    Symlink { path: String, target: String },
    CharDev { path: String, mode: u32, major: u32, minor: u32 },
}

impl CpioMember {
    pub fn path(&self) -> &str {
        match self {
            CpioMember::Dir { path, .. }
            | CpioMember::File { path, .. }
            | CpioMember::Symlink { path, .. }
            | CpioMember::CharDev { path, .. } => path,
        }
    }
}

/// Writes `entries` in order, then the trailer, with the `cpio` crate's
/// newc writer. Paths are stored without a leading `/`, as `cpio -H newc`
/// does; parents must come before children because the kernel creates them
/// in archive order. Every member is owned by uid 0 and has mtime 0, which
/// keeps the archive byte-for-byte reproducible.
pub fn write_archive<W: Write>(out: &mut W, entries: &[CpioMember]) -> io::Result<()> {
    for (i, entry) in entries.iter().enumerate() {
        let (mode, data, major, minor): (u32, &[u8], u32, u32) = match entry {
            CpioMember::Dir { mode, .. } => (S_IFDIR | mode, &[], 0, 0),
            CpioMember::File { mode, data, .. } => (S_IFREG | mode, data, 0, 0),
            CpioMember::Symlink { target, .. } => (S_IFLNK | 0o777, target.as_bytes(), 0, 0),
            CpioMember::CharDev { mode, major, minor, .. } => (S_IFCHR | mode, &[], *major, *minor),
        };
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{}: over 4 GiB, more than newc holds", entry.path()))
        })?;
        let header = cpio::newc::Builder::new(entry.path().trim_start_matches('/'))
            // Inode numbers only need to be distinct; hard links are not used.
            .ino(i as u32 + 1)
            .mode(mode)
            .nlink(if matches!(entry, CpioMember::Dir { .. }) { 2 } else { 1 })
            .rdev_major(major)
            .rdev_minor(minor);
        let mut member = header.write(&mut *out, size);
        member.write_all(data)?;
        member.finish()?;
    }
    cpio::newc::trailer(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Vec<CpioMember> {
        vec![
            CpioMember::Dir { path: "dev".into(), mode: 0o755 },
            CpioMember::CharDev { path: "dev/console".into(), mode: 0o600, major: 5, minor: 1 },
            CpioMember::Dir { path: "bin".into(), mode: 0o755 },
            CpioMember::File { path: "bin/busybox".into(), mode: 0o755, data: b"\x7fELF-ish".to_vec() },
            CpioMember::Symlink { path: "bin/sh".into(), target: "busybox".into() },
            CpioMember::File { path: "init".into(), mode: 0o755, data: b"#!/bin/sh\necho hi\n".to_vec() },
            CpioMember::File { path: "empty".into(), mode: 0o644, data: vec![] },
        ]
    }

    /// Reads the archive back with the `cpio` crate's newc reader and
    /// compares every field written.
    #[test]
    fn round_trips_through_the_reader() {
        let mut buf = Vec::new();
        write_archive(&mut buf, &sample()).unwrap();
        assert_eq!(buf.len() % 4, 0, "archive is 4-byte aligned");

        let mut rest: &[u8] = &buf;
        let mut seen = Vec::new();
        loop {
            let mut reader = cpio::NewcReader::new(rest).unwrap();
            if reader.entry().is_trailer() {
                break;
            }
            let e = reader.entry();
            let (name, mode, major, minor) = (e.name().to_string(), e.mode(), e.rdev_major(), e.rdev_minor());
            assert_eq!((e.uid(), e.gid()), (0, 0), "{name}: owned by root");
            let mut data = Vec::new();
            reader.read_to_end(&mut data).unwrap();
            seen.push((name, mode, major, minor, data));
            rest = reader.finish().unwrap();
        }
        let expect: Vec<_> = sample()
            .into_iter()
            .map(|e| match e {
                CpioMember::Dir { path, mode } => (path, S_IFDIR | mode, 0, 0, vec![]),
                CpioMember::File { path, mode, data } => (path, S_IFREG | mode, 0, 0, data),
                CpioMember::Symlink { path, target } => (path, S_IFLNK | 0o777, 0, 0, target.into_bytes()),
                CpioMember::CharDev { path, mode, major, minor } => (path, S_IFCHR | mode, major, minor, vec![]),
            })
            .collect();
        assert_eq!(seen, expect);
    }

    #[test]
    fn leading_slashes_are_stripped_and_output_is_reproducible() {
        let entries = vec![CpioMember::Dir { path: "/proc".into(), mode: 0o555 }];
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_archive(&mut a, &entries).unwrap();
        write_archive(&mut b, &entries).unwrap();
        assert_eq!(a, b);
        let reader = cpio::NewcReader::new(&a[..]).unwrap();
        assert_eq!(reader.entry().name(), "proc");
    }

    /// The bytes the kernel's unpacker (init/initramfs.c) reads, pinned
    /// from the newc format itself rather than from the crate that writes
    /// them: the magic, thirteen 8-digit hex fields, the name with its NUL
    /// padded to 4, the data padded to 4, then the trailer.
    #[test]
    fn the_bytes_are_newc_as_the_kernel_reads_it() {
        let mut out = Vec::new();
        write_archive(&mut out, &[CpioMember::File { path: "/init".into(), mode: 0o755, data: b"ab".to_vec() }])
            .unwrap();
        let fields = |ino: u32, mode: u32, nlink: u32, size: u32, namesize: u32| {
            let z = 0;
            format!(
                "070701{ino:08x}{mode:08x}{z:08x}{z:08x}{nlink:08x}{z:08x}{size:08x}{z:08x}{z:08x}{z:08x}{z:08x}\
                 {namesize:08x}{z:08x}"
            )
        };
        let mut want = fields(1, 0o100755, 1, 2, 5).into_bytes();
        want.extend(b"init\0"); // 110 + 5 = 115: one byte to 116
        want.extend([0]);
        want.extend(b"ab\0\0");
        want.extend(fields(0, 0, 1, 0, 11).into_bytes());
        want.extend(b"TRAILER!!!\0"); // 110 + 11 = 121: three bytes to 124
        want.extend([0, 0, 0]);
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&want));
    }
}
