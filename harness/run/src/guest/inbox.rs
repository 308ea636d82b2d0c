//! The resumed guest's inbox: how a run reaches a guest that was booted
//! before the run existed (guest/snapshot.rs).
//!
//! The inbox is the top of the guest's RAM, which the kernel is told not to
//! use (`mem=`, the profile's `[qemu.resume]`). While QEMU holds the resumed
//! guest (`-S`), the harness writes the run there through QEMU's gdb stub,
//! whose `Qqemu.PhyMemMode` makes its memory writes physical; then the guest
//! runs on, and `rootfs/programs/inbox.c`, which it was polling the header with when
//! it was saved, finds the run, checks it and hands it to `cpio`.
//!
//! This file owns the layout (a test ties inbox.c's copy to it):
//! - `MAGIC` at 0, written last, so a header is whole once it is there;
//! - the version at 8, the payload's length at 12, its CRC-32 at 16
//!   (little-endian, zlib's CRC-32);
//! - the payload, a newc cpio of the run's files, at [`PAYLOAD_OFFSET`].
//!
//! Why the gdb stub: of the three ways measured (docs/resume.md), it
//! needs no copy of the guest's RAM per run (a shared memory-backend file
//! would) and no driver in the guest (a medium change would need MMC).

use crate::profile::ResumeSpec;
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

pub const MAGIC: &[u8; 8] = b"HRNSINBX";
pub const VERSION: u32 = 1;
/// Where the payload starts: a page after the header, so that the guest
/// maps the header alone while it waits.
pub const PAYLOAD_OFFSET: u64 = 4096;

/// The header of `payload` without its magic (bytes 8..20; pure).
pub fn fields(payload: &[u8]) -> [u8; 12] {
    let mut f = [0u8; 12];
    f[..4].copy_from_slice(&VERSION.to_le_bytes());
    f[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    f[8..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    f
}

/// Writes `payload` into the inbox `spec` describes, through the gdb stub
/// at `socket` of a QEMU that holds its guest, within `timeout`. The stub is
/// left as it was found (virtual addresses, no client), and the guest held:
/// a `D`etach would let it run.
pub fn deliver(socket: &Path, spec: &ResumeSpec, payload: &[u8], timeout: Duration) -> Result<()> {
    let room = spec.inbox_size - PAYLOAD_OFFSET;
    if payload.len() as u64 > room {
        bail!(
            "the run's files are {} KiB, over the {} KiB of the resumed guest's inbox ([qemu.resume] inbox_size \
             in the profile): make the modules and programs smaller, or check with --no-resume",
            payload.len() >> 10,
            room >> 10
        );
    }
    let mut stub = Stub::connect(socket, Instant::now() + timeout)?;
    let size = stub.packet_size()?;
    stub.expect_ok("Qqemu.PhyMemMode:1")?;
    stub.write(spec.inbox + PAYLOAD_OFFSET, payload, size)?;
    stub.write(spec.inbox + MAGIC.len() as u64, &fields(payload), size)?;
    stub.write(spec.inbox, MAGIC, size)?;
    stub.expect_ok("Qqemu.PhyMemMode:0")
}

/// The gdb remote protocol's framing of `data`: `$data#checksum`.
pub fn packet(data: &str) -> Vec<u8> {
    let sum = data.bytes().fold(0u8, |s, b| s.wrapping_add(b));
    format!("${data}#{sum:02x}").into_bytes()
}

/// The longest reply read: the stub's are a few dozen bytes.
const MAX_REPLY: usize = 4096;

/// A client of QEMU's gdb stub, with a deadline on every read.
struct Stub {
    stream: UnixStream,
    deadline: Instant,
}

impl Stub {
    fn connect(socket: &Path, deadline: Instant) -> Result<Stub> {
        let stream = UnixStream::connect(socket)
            .with_context(|| format!("connecting to qemu's gdb stub {}", socket.display()))?;
        Ok(Stub { stream, deadline })
    }

    /// Sends `data` as a packet and returns the stub's reply packet.
    fn command(&mut self, data: &str) -> Result<String> {
        self.stream.write_all(&packet(data)).context("writing to qemu's gdb stub")?;
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        // `+` acknowledges our packet; the reply is `$...#xx`.
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("qemu's gdb stub did not answer {:?} in time", truncate(data));
            }
            self.stream.set_read_timeout(Some(left)).context("setting a gdb stub read timeout")?;
            match self.stream.read(&mut byte) {
                Ok(0) => bail!("qemu closed its gdb stub"),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
                Err(e) => return Err(e).context("reading from qemu's gdb stub"),
            }
            match (reply.is_empty(), byte[0]) {
                (true, b'+') => {}
                (true, b'$') => reply.push(b'$'),
                (true, other) => bail!("qemu's gdb stub sent {:?} where a reply begins", other as char),
                (false, b) => reply.push(b),
            }
            if reply.len() >= 4 && reply[reply.len() - 3] == b'#' {
                break;
            }
            if reply.len() > MAX_REPLY {
                bail!("a reply of qemu's gdb stub was over {MAX_REPLY} bytes");
            }
        }
        self.stream.write_all(b"+").context("acknowledging qemu's gdb stub")?;
        Ok(String::from_utf8_lossy(&reply[1..reply.len() - 3]).into_owned())
    }

    fn expect_ok(&mut self, data: &str) -> Result<()> {
        match self.command(data)?.as_str() {
            "OK" => Ok(()),
            other => bail!("qemu's gdb stub answered {:?} with {other:?}", truncate(data)),
        }
    }

    /// The longest packet the stub takes (`qSupported`'s `PacketSize`).
    fn packet_size(&mut self) -> Result<usize> {
        let reply = self.command("qSupported")?;
        let size = reply
            .split(';')
            .find_map(|f| f.strip_prefix("PacketSize="))
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .with_context(|| format!("qemu's gdb stub gave no PacketSize in {reply:?}"))?;
        if size < 256 {
            bail!("qemu's gdb stub takes packets of {size} bytes, too few to write memory with");
        }
        Ok(size)
    }

    /// `bytes` at physical `addr`, in `M` packets of at most `size` bytes.
    fn write(&mut self, addr: u64, bytes: &[u8], size: usize) -> Result<()> {
        // `$M<addr>,<len>:` and `#xx` take under 32 bytes; two hex digits a byte.
        let chunk = (size - 32) / 2;
        for (k, part) in bytes.chunks(chunk).enumerate() {
            let at = addr + (k * chunk) as u64;
            let mut data = format!("M{at:x},{:x}:", part.len());
            for b in part {
                data.push_str(&format!("{b:02x}"));
            }
            self.expect_ok(&data).with_context(|| format!("writing the inbox at {at:#x}"))?;
        }
        Ok(())
    }
}

fn truncate(data: &str) -> &str {
    &data[..data.len().min(24)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn a_packet_carries_its_checksum() {
        assert_eq!(packet("OK"), b"$OK#9a");
        assert_eq!(packet("qSupported"), b"$qSupported#37");
    }

    #[test]
    fn the_header_is_version_length_and_zlibs_crc() {
        let f = fields(b"123456789");
        assert_eq!(&f[..4], &1u32.to_le_bytes());
        assert_eq!(&f[4..8], &9u32.to_le_bytes());
        // The CRC-32 check value of "123456789" (zlib's, IEEE 802.3).
        assert_eq!(&f[8..], &0xcbf43926u32.to_le_bytes());
    }

    /// inbox.c is the other copy of the layout: its magic, version and
    /// payload offset are these.
    #[test]
    fn the_guests_reader_has_this_layout() {
        let c = std::fs::read_to_string(crate::repo_root().join("rootfs/programs/inbox.c")).unwrap();
        let magic: Vec<String> = MAGIC.iter().map(|b| format!("'{}'", *b as char)).collect();
        assert!(c.contains(&format!("magic[8] = {{ {} }}", magic.join(", "))), "MAGIC differs from inbox.c's");
        assert!(c.contains(&format!("#define VERSION {VERSION}\n")), "VERSION differs from inbox.c's");
        assert!(c.contains(&format!("#define PAYLOAD {PAYLOAD_OFFSET}\n")), "PAYLOAD_OFFSET differs");
        assert!(c.contains("le32(h + 12)") && c.contains("le32(h + 16)") && c.contains("le32(h + 8)"));
    }

    /// A stand-in stub: acknowledges each packet, answers qSupported with
    /// `packet_size`, everything else OK, and returns the packets' data.
    fn fake_stub(packet_size: usize) -> (tempfile::TempDir, std::path::PathBuf, std::thread::JoinHandle<Vec<String>>) {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("gdb.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while s.read(&mut byte).unwrap_or(0) == 1 {
                buf.push(byte[0]);
                if buf.len() >= 4 && buf[buf.len() - 3] == b'#' && buf[0] == b'$' {
                    let data = String::from_utf8(buf[1..buf.len() - 3].to_vec()).unwrap();
                    let reply = if data == "qSupported" {
                        format!("PacketSize={packet_size:x};qXfer:features:read+")
                    } else {
                        "OK".into()
                    };
                    s.write_all(b"+").unwrap();
                    s.write_all(&packet(&reply)).unwrap();
                    got.push(data);
                    buf.clear();
                } else if buf == b"+" {
                    buf.clear();
                }
            }
            got
        });
        (dir, sock, t)
    }

    #[test]
    fn a_delivery_writes_the_payload_then_the_header_then_the_magic_physically() {
        let (_dir, sock, t) = fake_stub(0x100);
        let spec = ResumeSpec { mem: "960M".into(), inbox: 0x7c000000, inbox_size: 0x4000000 };
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        deliver(&sock, &spec, &payload, Duration::from_secs(5)).unwrap();
        let got = t.join().unwrap();
        assert_eq!(got[0], "qSupported");
        assert_eq!(got[1], "Qqemu.PhyMemMode:1");
        // (256 - 32) / 2 = 112 bytes a packet: 300 bytes in three.
        assert!(got[2].starts_with("M7c001000,70:000102"), "{}", got[2]);
        assert!(got[3].starts_with("M7c001070,70:"), "{}", got[3]);
        assert!(got[4].starts_with("M7c0010e0,4c:"), "{}", got[4]);
        assert!(got[5].starts_with("M7c000008,c:01000000"), "{}", got[5]);
        assert_eq!(got[6], "M7c000000,8:48524e53494e4258");
        assert_eq!(got[7], "Qqemu.PhyMemMode:0");
        assert_eq!(got.len(), 8, "no detach: it would run the guest");
    }

    #[test]
    fn a_run_larger_than_the_inbox_is_refused_before_connecting() {
        let spec = ResumeSpec { mem: "960M".into(), inbox: 0x7c000000, inbox_size: 0x2000 };
        let e = deliver(Path::new("/nonexistent/gdb.sock"), &spec, &[0u8; 5000], Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("inbox_size") && e.contains("--no-resume"), "{e}");
    }
}
