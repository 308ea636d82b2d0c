//! Copying a file to the board over its console, with only what an old
//! busybox has: each command appends one chunk, decoded on the board by
//! `base64 -d` where that applet exists, else by the shell's `printf` with
//! octal escapes (always there). The copy is then checked with `md5sum`, or
//! `cksum` where md5sum is missing, against the same sum computed here.

use super::shell::{quote, Shell, MAX_COMMAND};
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
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// Finds out which decoder and which checksum tool the board has. `forced`
/// is the user's `--transfer` choice, if any.
pub fn detect(shell: &mut Shell, forced: Option<Encoding>) -> Result<Tools> {
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
        bail!("the board has neither a working md5sum nor cksum: the harness cannot check a copy made over the console; copy the module yourself and pass --board-path");
    };
    Ok(Tools { encoding, checksum })
}

/// The board's sum of `path`.
pub fn board_sum(shell: &mut Shell, path: &str, sum: Checksum) -> Result<String> {
    let out = shell.run_ok(&format!("{} {}", sum.command(), quote(path)), Duration::from_secs(60))?;
    sum.parse(&out).with_context(|| format!("unexpected {} output on the board: {out:?}", sum.command()))
}

/// Copies `data` to `dest` on the board and checks it; one retry on a
/// checksum mismatch. Returns how many commands the copy took.
pub fn copy(shell: &mut Shell, data: &[u8], dest: &str, tools: Tools) -> Result<usize> {
    let want = tools.checksum.local(data);
    let cmds = commands(data, dest, tools.encoding, MAX_COMMAND);
    let mut sent = 0;
    for attempt in 1..=2 {
        for cmd in &cmds {
            let a = shell.run(cmd, TIMEOUT)?;
            if a.status != 0 {
                bail!("writing {dest} on the board failed with exit status {}: {}", a.status, a.output.trim());
            }
        }
        sent += cmds.len();
        let got = board_sum(shell, dest, tools.checksum)?;
        if got == want {
            return Ok(sent);
        }
        if attempt == 1 {
            eprintln!("harness: the copy of {dest} on the board has {} {got}, not {want}; copying it again", tools.checksum.command());
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
        assert_eq!(Checksum::Md5.parse("d41d8cd98f00b204e9800998ecf8427e  /tmp/x.ko"), Some("d41d8cd98f00b204e9800998ecf8427e".into()));
        assert_eq!(Checksum::Md5.parse("D41D8CD98F00B204E9800998ECF8427E  -"), Some("d41d8cd98f00b204e9800998ecf8427e".into()));
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
