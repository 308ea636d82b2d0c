//! Copying a file to the board over its console, with only what an old
//! busybox has: each command appends one chunk, decoded on the board by
//! `base64 -d` where that applet exists, else by the shell's `printf` with
//! octal escapes (always there). The copy is then checked with `md5sum`, or
//! `cksum` where md5sum is missing, against the same sum computed here.
//!
//! The serial line is the bottleneck (11 KB/s at 115200 baud; about 3 KB/s
//! into the emulated board, however the commands are paced), so a file is
//! sent gzipped where the board has a working `gunzip` and that makes it
//! smaller: a static program shrinks 1.7 times.

use super::shell::{BoardShell, MAX_COMMAND};
use crate::plan::quote;
use anyhow::{bail, Context, Result};
use std::time::Duration;

/// How each chunk is written on the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// `echo DATA | base64 -d >> FILE`: 4 characters per 3 bytes.
    Base64,
    /// `printf 'DATA' >> FILE`: letters and digits as they are, every other
    /// byte as a 3-digit octal escape (up to 4 characters per byte).
    Printf,
}

/// How the copy is checked on the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    Md5,
    /// POSIX `cksum`: a CRC-32 and the length.
    Cksum,
}

impl Checksum {
    pub fn command(self) -> &'static str {
        match self {
            Checksum::Md5 => "md5sum",
            Checksum::Cksum => "cksum",
        }
    }

    /// The sum of `data` as the board's tool prints it (first words only).
    pub fn local(self, data: &[u8]) -> String {
        match self {
            Checksum::Md5 => {
                use md5::Digest;
                format!("{:x}", md5::Md5::digest(data))
            }
            Checksum::Cksum => format!("{} {}", cksum(data), data.len()),
        }
    }

    /// The sum in the board tool's output line (`HASH  FILE`, `CRC LEN FILE`).
    pub fn parse(self, output: &str) -> Option<String> {
        let line = output.lines().rev().find(|l| !l.trim().is_empty())?;
        let mut words = line.split_whitespace();
        match self {
            Checksum::Md5 => {
                let h = words.next()?;
                (h.len() == 32 && h.bytes().all(|c| c.is_ascii_hexdigit())).then(|| h.to_ascii_lowercase())
            }
            Checksum::Cksum => {
                let crc: u32 = words.next()?.parse().ok()?;
                let len: u64 = words.next()?.parse().ok()?;
                Some(format!("{crc} {len}"))
            }
        }
    }
}

/// The POSIX `cksum` CRC (CRC-32/CKSUM: polynomial 0x04C11DB7, most
/// significant bit first, complemented) over the data and then its length in
/// as few bytes as it takes, least significant first.
pub fn cksum(data: &[u8]) -> u32 {
    const CKSUM: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_CKSUM);
    let mut digest = CKSUM.digest();
    digest.update(data);
    let mut len = data.len() as u64;
    while len != 0 {
        digest.update(&[len as u8]);
        len >>= 8;
    }
    digest.finalize()
}

/// Standard base64 with padding, as `base64 -d` on the board reads it.
pub fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// One byte as `printf` format text: itself if it is a letter or a digit,
/// otherwise a 3-digit octal escape (3 digits always, so a digit after it is
/// never read as part of it; `%`, `\` and quotes never appear bare).
fn printf_byte(b: u8, out: &mut String) {
    if b.is_ascii_alphanumeric() {
        out.push(b as char);
    } else {
        out.push_str(&format!("\\{b:03o}"));
    }
}

pub fn printf_escape(data: &[u8]) -> String {
    let mut s = String::new();
    for &b in data {
        printf_byte(b, &mut s);
    }
    s
}

/// The commands that recreate `data` at `dest` on the board, each at most
/// `max` characters: first one that empties the file, then one per chunk.
pub fn commands(data: &[u8], dest: &str, encoding: Encoding, max: usize) -> Vec<String> {
    let dest = quote(dest);
    let mut out = vec![format!(": > {dest}")];
    match encoding {
        Encoding::Base64 => {
            let fixed = format!("echo  | base64 -d >> {dest}").len();
            // Whole groups of 3 bytes, so that every chunk decodes on its own
            // without padding in the middle of the file.
            let per = (max.saturating_sub(fixed) / 4).max(1) * 3;
            for chunk in data.chunks(per) {
                out.push(format!("echo {} | base64 -d >> {dest}", base64(chunk)));
            }
        }
        Encoding::Printf => {
            let fixed = format!("printf '' >> {dest}").len();
            let budget = max.saturating_sub(fixed).max(4);
            let mut cur = String::new();
            for &b in data {
                let mut one = String::new();
                printf_byte(b, &mut one);
                if cur.len() + one.len() > budget {
                    out.push(format!("printf '{cur}' >> {dest}"));
                    cur.clear();
                }
                cur.push_str(&one);
            }
            if !cur.is_empty() {
                out.push(format!("printf '{cur}' >> {dest}"));
            }
        }
    }
    out
}

/// What the board offers for copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tools {
    pub encoding: Encoding,
    pub checksum: Checksum,
    /// The board's `gunzip -c` decompresses what `gzip` writes.
    pub gunzip: bool,
}

impl Tools {
    /// How copies are made, for the replay's report.
    pub fn describe(&self) -> String {
        let decode = match self.encoding {
            Encoding::Base64 => "base64 -d",
            Encoding::Printf => "printf",
        };
        let gz = if self.gunzip { ", gzipped where it helps" } else { "" };
        format!("{decode}{gz}, checked with {}", self.checksum.command())
    }
}

/// Files smaller than this go as they are: the gzip header and the extra
/// round trips to decompress would cost more than they save.
const GZIP_FROM: usize = 4096;

/// `data` gzipped at the best compression.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

/// What is sent for `data`: the gzipped bytes when the board can unpack them
/// and they are at least a tenth smaller, else nothing (send `data` itself).
pub fn compressed(data: &[u8], tools: Tools) -> Option<Vec<u8>> {
    if !tools.gunzip || data.len() < GZIP_FROM {
        return None;
    }
    let gz = gzip(data);
    (gz.len() < data.len() - data.len() / 10).then_some(gz)
}

/// The command that asks whether the board can decode and unpack: it must
/// print exactly `harness`.
pub fn gunzip_probe(encoding: Encoding) -> String {
    let gz = gzip(b"harness\n");
    match encoding {
        Encoding::Base64 => format!("echo {} | base64 -d | gunzip -c 2>/dev/null", base64(&gz)),
        Encoding::Printf => format!("printf '{}' | gunzip -c 2>/dev/null", printf_escape(&gz)),
    }
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// Finds out which decoder and which checksum tool the board has. `forced`
/// is the user's `--transfer` choice, if any.
pub fn detect(shell: &mut BoardShell, forced: Option<Encoding>) -> Result<Tools> {
    let encoding = match forced {
        Some(e) => e,
        None => {
            // `A` is "QQ==": a working decoder prints exactly that.
            let a = shell.run("echo QQ== | base64 -d 2>/dev/null", TIMEOUT)?;
            if a.status == 0 && a.output.trim() == "A" {
                Encoding::Base64
            } else {
                Encoding::Printf
            }
        }
    };
    let probe = b"harness\n";
    let mut checksum = None;
    for sum in [Checksum::Md5, Checksum::Cksum] {
        let a = shell.run(&format!("echo harness | {} 2>/dev/null", sum.command()), TIMEOUT)?;
        if a.status == 0 && sum.parse(&a.output).as_deref() == Some(sum.local(probe).as_str()) {
            checksum = Some(sum);
            break;
        }
    }
    let Some(checksum) = checksum else {
        bail!(
            "the board has neither a working md5sum nor cksum: the harness cannot check a copy made over the \
            console; copy the module yourself and pass --board-path"
        );
    };
    let a = shell.run(&gunzip_probe(encoding), TIMEOUT)?;
    let gunzip = a.status == 0 && a.output.trim() == "harness";
    Ok(Tools { encoding, checksum, gunzip })
}

/// The board's sum of `path`.
pub fn board_sum(shell: &mut BoardShell, path: &str, sum: Checksum) -> Result<String> {
    let out = shell.run_ok(&format!("{} {}", sum.command(), quote(path)), Duration::from_secs(60))?;
    sum.parse(&out).with_context(|| format!("unexpected {} output on the board: {out:?}", sum.command()))
}

/// The commands that recreate `data` at `dest` on the board, gzipped into a
/// temporary `DEST.gz` first when that is smaller (see [`compressed`]).
pub fn copy_commands(data: &[u8], dest: &str, tools: Tools) -> Vec<String> {
    match compressed(data, tools) {
        Some(gz) => {
            let tmp = format!("{dest}.gz");
            let mut cmds = commands(&gz, &tmp, tools.encoding, MAX_COMMAND);
            // The .gz goes either way. A .gz damaged on the line makes gunzip
            // fail and leaves DEST wrong: the sum check catches that and the
            // copy is sent again, as any damaged copy is.
            cmds.push(format!("gunzip -c {0} > {1}; rm -f {0}", quote(&tmp), quote(dest)));
            cmds
        }
        None => commands(data, dest, tools.encoding, MAX_COMMAND),
    }
}

/// Copies `data` to `dest` on the board and checks it; one retry on a
/// checksum mismatch. Returns how many commands the copy took.
pub fn copy(shell: &mut BoardShell, data: &[u8], dest: &str, tools: Tools) -> Result<usize> {
    let want = tools.checksum.local(data);
    let cmds = copy_commands(data, dest, tools);
    let mut sent = 0;
    for attempt in 1..=2 {
        for cmd in &cmds {
            let a = shell.run(cmd, TIMEOUT)?;
            if a.status != 0 {
                // A half-sent DEST.gz is not left behind.
                let _ = shell.run(&format!("rm -f {}", quote(&format!("{dest}.gz"))), TIMEOUT);
                bail!("writing {dest} on the board failed with exit status {}: {}", a.status, a.output.trim());
            }
        }
        sent += cmds.len();
        let got = board_sum(shell, dest, tools.checksum)?;
        if got == want {
            return Ok(sent);
        }
        if attempt == 1 {
            eprintln!(
                "harness: the copy of {dest} on the board has {} {got}, not {want}; copying it again",
                tools.checksum.command()
            );
        } else {
            bail!(
                "the copy of {dest} on the board has {} {got}, not {want}, twice: the serial line corrupts data \
                 (try a lower --baud on both ends, or copy the module yourself and pass --board-path)",
                tools.checksum.command()
            );
        }
    }
    unreachable!("the loop returns or fails on its second attempt")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cksum_matches_posix_values() {
        // Values printed by GNU `cksum` for the same input.
        assert_eq!(cksum(b""), 4294967295);
        assert_eq!(cksum(b"a"), 1220704766);
        assert_eq!(cksum(b"harness\n"), CKSUM_HARNESS);
        assert_eq!(cksum(b"123456789"), 930766865);
        let big: Vec<u8> = (0..70000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(cksum(&big), CKSUM_BIG);
        assert_eq!(Checksum::Cksum.local(b"harness\n"), format!("{CKSUM_HARNESS} 8"));
    }

    const CKSUM_HARNESS: u32 = 464875412;
    const CKSUM_BIG: u32 = 720179608;

    #[test]
    fn md5_and_tool_output_parse() {
        assert_eq!(Checksum::Md5.local(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            Checksum::Md5.parse("d41d8cd98f00b204e9800998ecf8427e  /tmp/x.ko"),
            Some("d41d8cd98f00b204e9800998ecf8427e".into())
        );
        assert_eq!(
            Checksum::Md5.parse("D41D8CD98F00B204E9800998ECF8427E  -"),
            Some("d41d8cd98f00b204e9800998ecf8427e".into())
        );
        assert_eq!(Checksum::Md5.parse("sh: md5sum: not found"), None);
        assert_eq!(Checksum::Cksum.parse("4294967295 0 /tmp/x"), Some("4294967295 0".into()));
        assert_eq!(Checksum::Cksum.parse("cksum: not found"), None);
    }

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"A"), "QQ==");
        assert_eq!(base64(b"AB"), "QUI=");
        assert_eq!(base64(b"ABC"), "QUJD");
        assert_eq!(base64(&[0, 0xff, 0x10, 0x80]), "AP8QgA==");
    }

    #[test]
    fn printf_escapes_everything_but_letters_and_digits() {
        assert_eq!(printf_escape(b"Ab9"), "Ab9");
        assert_eq!(printf_escape(b"\x00%\\'1"), "\\000\\045\\134\\0471");
        assert_eq!(printf_escape(&[0xff, b' ']), "\\377\\040");
    }

    fn data() -> Vec<u8> {
        (0..5000u32).map(|i| (i * 37 % 256) as u8).collect()
    }

    #[test]
    fn base64_chunks_are_short_and_decode_back() {
        let d = data();
        let cmds = commands(&d, "/tmp/harness-x.ko", Encoding::Base64, 200);
        assert_eq!(cmds[0], ": > /tmp/harness-x.ko");
        let mut back = Vec::new();
        for c in &cmds[1..] {
            assert!(c.len() <= 200, "{} > 200: {c}", c.len());
            let b64 = c.strip_prefix("echo ").unwrap().strip_suffix(" | base64 -d >> /tmp/harness-x.ko").unwrap();
            assert!(!b64.trim_end_matches('=').contains('='), "padding only at the end of a chunk");
            back.extend(decode_base64(b64));
        }
        assert_eq!(back, d);
    }

    #[test]
    fn printf_chunks_are_short_and_decode_back() {
        let d = data();
        let cmds = commands(&d, "/tmp/harness-x.ko", Encoding::Printf, 150);
        let mut back = Vec::new();
        for c in &cmds[1..] {
            assert!(c.len() <= 150, "{} > 150: {c}", c.len());
            let body = c.strip_prefix("printf '").unwrap().strip_suffix("' >> /tmp/harness-x.ko").unwrap();
            assert!(!body.contains(['\'', '%']));
            back.extend(decode_printf(body));
        }
        assert_eq!(back, d);
        // A destination that needs quoting is quoted.
        let odd = commands(b"x", "/mnt/my sd/x.ko", Encoding::Printf, 100);
        assert_eq!(odd[1], "printf 'x' >> '/mnt/my sd/x.ko'");
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz).read_to_end(&mut out).expect("a whole gzip stream");
        out
    }

    const TOOLS: Tools = Tools { encoding: Encoding::Base64, checksum: Checksum::Md5, gunzip: true };

    #[test]
    fn the_gunzip_probe_unpacks_to_the_word_it_expects() {
        let probe = gunzip_probe(Encoding::Base64);
        let b64 = probe.strip_prefix("echo ").unwrap().strip_suffix(" | base64 -d | gunzip -c 2>/dev/null").unwrap();
        assert_eq!(gunzip(&decode_base64(b64)), b"harness\n");
        let probe = gunzip_probe(Encoding::Printf);
        let body = probe.strip_prefix("printf '").unwrap().strip_suffix("' | gunzip -c 2>/dev/null").unwrap();
        assert_eq!(gunzip(&decode_printf(body)), b"harness\n");
    }

    #[test]
    fn a_compressible_file_goes_gzipped_and_is_unpacked_in_place() {
        // Like a static program: long runs of similar bytes.
        let d: Vec<u8> = (0..60000u32).map(|i| if i % 7 == 0 { (i % 251) as u8 } else { 0 }).collect();
        let cmds = copy_commands(&d, "/tmp/harness-bin/app", TOOLS);
        assert_eq!(cmds[0], ": > /tmp/harness-bin/app.gz");
        assert_eq!(
            cmds.last().unwrap(),
            "gunzip -c /tmp/harness-bin/app.gz > /tmp/harness-bin/app; rm -f /tmp/harness-bin/app.gz"
        );
        let mut gz = Vec::new();
        for c in &cmds[1..cmds.len() - 1] {
            assert!(c.len() <= MAX_COMMAND, "{}", c.len());
            let b64 = c.strip_prefix("echo ").unwrap().strip_suffix(" | base64 -d >> /tmp/harness-bin/app.gz").unwrap();
            gz.extend(decode_base64(b64));
        }
        assert_eq!(gunzip(&gz), d);
        assert!(
            cmds.len() < commands(&d, "/tmp/harness-bin/app", Encoding::Base64, MAX_COMMAND).len() / 2,
            "fewer commands"
        );
    }

    #[test]
    fn small_incompressible_or_unpackable_files_go_as_they_are() {
        let text = b"#!/bin/sh\necho hello\n".repeat(10);
        assert_eq!(compressed(&text, TOOLS), None, "under {GZIP_FROM} bytes");
        // Pseudo-random bytes do not shrink by a tenth.
        let mut x = 0x2545F491u32;
        let noise: Vec<u8> = (0..20000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert_eq!(compressed(&noise, TOOLS), None);
        let zeros = vec![0u8; 20000];
        assert!(compressed(&zeros, TOOLS).is_some());
        assert_eq!(compressed(&zeros, Tools { gunzip: false, ..TOOLS }), None, "the board has no gunzip");
        assert_eq!(copy_commands(&noise, "/tmp/x", TOOLS), commands(&noise, "/tmp/x", Encoding::Base64, MAX_COMMAND));
    }

    /// What busybox printf does with the format: up to 3 octal digits
    /// after a backslash.
    fn decode_printf(s: &str) -> Vec<u8> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' {
                let mut n = 0u32;
                let mut k = 0;
                while k < 3 && i + 1 + k < b.len() && (b'0'..=b'7').contains(&b[i + 1 + k]) {
                    n = n * 8 + (b[i + 1 + k] - b'0') as u32;
                    k += 1;
                }
                out.push(n as u8);
                i += 1 + k;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }

    fn decode_base64(s: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(s).expect("each chunk is whole base64")
    }
}
