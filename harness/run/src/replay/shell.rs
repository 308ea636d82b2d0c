//! A shell on the board's serial console: getting one, whatever the board
//! shows first, and running commands on it with their output and status.
//!
//! Each command is sent as one line framed by sentinels:
//!
//! ```text
//! echo @@B$((7+0))@@; CMD; echo @@E$((7+0)):$?@@
//! ```
//!
//! The tty echoes the line as typed, with `$((7+0))`; only the shell's real
//! output says `@@B7@@` and `@@E7:<status>@@`, so the echo can never be
//! mistaken for the answer. The output is what lies between the two.
//! Command numbers start at a random base per session so that a late answer
//! to an earlier, abandoned session cannot match.

// The screen's classification is the attach machine's (attach.rs), and
// kept here under its old names for the replay's other files.
pub use super::attach::{find, screen, strip_ansi, Login, Screen};
use super::attach::{BoardAttach, Failure, Step, View};
use super::link::Link;
use anyhow::{bail, Result};
use std::time::{Duration, Instant};

/// The longest line sent. Busybox's line editor keeps at most 1024
/// characters (FEATURE_EDITING_MAX_LEN) and old ttys' canonical mode not
/// much more; the framing adds at most about 70 to a command.
pub const MAX_COMMAND: usize = 820;

/// The line that runs `cmd` as command number `n`.
pub fn frame(n: u64, cmd: &str) -> String {
    format!("echo @@B$(({n}+0))@@; {cmd}; echo @@E$(({n}+0)):$?@@\r")
}

/// A command's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// What the command printed, `\r` removed, without the final newline.
    pub output: String,
    pub status: i32,
}

/// Finds the answer to command `n` in `received`. `None` until the end
/// sentinel, with its status, has fully arrived.
pub fn parse_answer(n: u64, received: &[u8]) -> Option<Answer> {
    let begin = format!("@@B{n}@@");
    let end = format!("@@E{n}:");
    let b = find(received, begin.as_bytes(), 0)?;
    let e = find(received, end.as_bytes(), b)?;
    let rest = &received[e + end.len()..];
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || !rest[digits..].starts_with(b"@@") {
        return None;
    }
    let status = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let mut body = &received[b + begin.len()..e];
    // The begin sentinel's own line ending.
    body = body.strip_prefix(b"\r").unwrap_or(body);
    body = body.strip_prefix(b"\n").unwrap_or(body);
    let text = String::from_utf8_lossy(body).replace('\r', "");
    let text = text.strip_suffix('\n').unwrap_or(&text);
    // The console is the kernel's too: a printk that lands while a command
    // runs (a driver's late "deferred probe pending") is a line of its own,
    // with its timestamp, and not the command's.
    let output = text
        .split('\n')
        .filter(|l| crate::judge::marker::split_timestamp(l).0.is_none())
        .collect::<Vec<_>>()
        .join("\n");
    Some(Answer { output, status })
}

/// What the prompt-finding looks at: the bytes since `from`, but at most
/// the last [`RECENT`]; each read takes less than that, so nothing new is
/// missed, and a board that floods the line costs no rescans of it all.
fn recent(link: &Link, from: usize) -> &[u8] {
    let b = link.since(from);
    &b[b.len().saturating_sub(RECENT)..]
}

/// See [`recent`]: more than one read of the link (16 KiB).
const RECENT: usize = 64 << 10;

/// A command started on the board, not yet answered.
pub struct Pending {
    n: u64,
    /// Where in the received bytes its answer starts.
    pub mark: usize,
    pub command: String,
    /// How far the search for its end sentinel has got: each poll looks
    /// only at what is new, not again at everything since `mark`.
    searched: std::cell::Cell<usize>,
}

pub struct BoardShell {
    pub link: Link,
    next: u64,
}

impl BoardShell {
    /// Gets a shell prompt on `link` within `timeout`, whatever the board
    /// shows first (see [`BoardAttach`], the protocol, which this loop feeds).
    /// `seed` makes the command numbers of this session unlike any other's.
    pub fn attach(mut link: Link, login: &Login, timeout: Duration, seed: u64) -> Result<BoardShell> {
        let mut m = BoardAttach::new(login, timeout, seed, link.received(), Instant::now());
        loop {
            let budget = Duration::from_millis(100).min(m.deadline().saturating_duration_since(Instant::now()));
            let got = link.read_for(budget)? > 0;
            let (start, acted) = m.offsets();
            let view = View {
                since_start: recent(&link, start),
                since_action: recent(&link, acted),
                received: link.received(),
                got,
            };
            match m.next(&view, Instant::now()) {
                Step::Wait => {}
                Step::Send(writes) => {
                    for w in writes {
                        say(&mut link, &w)?;
                    }
                }
                Step::Attached => {
                    // Let the rest of the answer (the next prompt) arrive, so
                    // it is not taken for part of the first command's output.
                    let quiet = Instant::now() + Duration::from_millis(300);
                    while Instant::now() < quiet {
                        link.read_for(Duration::from_millis(50))?;
                    }
                    return Ok(BoardShell { link, next: m.next_command() });
                }
                Step::Fail(why) => bail!("{}", failure_message(&why, &link, login, timeout)),
            }
        }
    }

    /// Sends `cmd`; its answer is then awaited with [`BoardShell::poll`].
    pub fn start(&mut self, cmd: &str) -> Result<Pending> {
        if cmd.len() > MAX_COMMAND || cmd.contains(['\r', '\n', '\t']) {
            bail!("internal error: a board command must be one line of at most {MAX_COMMAND} characters without tabs");
        }
        let n = self.next;
        self.next += 1;
        self.link.drain()?;
        let mark = self.link.received();
        self.link.send(frame(n, cmd).as_bytes(), Duration::from_secs(10))?;
        Ok(Pending { n, mark, command: cmd.to_string(), searched: mark.into() })
    }

    /// Reads for at most `wait`; the answer, once complete.
    pub fn poll(&mut self, p: &Pending, wait: Duration) -> Result<Option<Answer>> {
        if let Some(a) = self.answer(p) {
            return Ok(Some(a));
        }
        self.link.read_for(wait)?;
        Ok(self.answer(p))
    }

    /// The answer to `p` if its end sentinel has arrived; the whole answer is
    /// parsed only then.
    fn answer(&self, p: &Pending) -> Option<Answer> {
        let end = format!("@@E{}:", p.n);
        // Back up by a sentinel's length: it may straddle two reads.
        let from = p.searched.get().saturating_sub(end.len() + 24).max(p.mark);
        let found = find(self.link.since(from), end.as_bytes(), 0).is_some();
        p.searched.set(self.link.received());
        found.then(|| parse_answer(p.n, self.link.since(p.mark))).flatten().or_else(|| {
            // The end sentinel came without its status yet: look again next time.
            if found {
                p.searched.set(from);
            }
            None
        })
    }

    /// Runs `cmd` and waits at most `timeout` for its answer.
    pub fn run(&mut self, cmd: &str, timeout: Duration) -> Result<Answer> {
        let p = self.start(cmd)?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "the board did not finish `{}` within {} s; last bytes received: {}",
                    short(&p.command),
                    timeout.as_secs(),
                    self.link.tail(200)
                );
            }
            if let Some(a) = self.poll(&p, left.min(Duration::from_millis(200)))? {
                return Ok(a);
            }
        }
    }

    /// Runs `cmd` and fails unless it exits 0.
    pub fn run_ok(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        let a = self.run(cmd, timeout)?;
        if a.status != 0 {
            bail!("`{}` failed on the board with exit status {}: {}", short(cmd), a.status, a.output.trim());
        }
        Ok(a.output)
    }

    /// Tries to get the prompt back after a command that did not answer:
    /// Ctrl-C, then a probe. `true` if the shell answered within `timeout`.
    pub fn recover(&mut self, timeout: Duration) -> bool {
        if self.link.send(b"\x03\r", Duration::from_secs(5)).is_err() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(300));
        self.run("true", timeout).is_ok_and(|a| a.status == 0)
    }
}

/// Types `what` on the board's console.
/// What an attach that failed for `why` says, with what the line showed.
fn failure_message(why: &Failure, link: &Link, login: &Login, timeout: Duration) -> String {
    let secs = timeout.as_secs();
    let tail = link.tail(200);
    match why {
        Failure::Garbage { percent, bytes } => format!(
            "the serial line carries garbage: {percent}% of the {bytes} bytes received on {} are not text; is that the \
             board's console rate? (the Tiny4412's is 115200; set it with --baud) last bytes received: {}",
            link.describe(),
            link.tail(160)
        ),
        Failure::Silent => format!(
            "no answer from the board on {} within {secs} s: nothing was received (is the board powered, \
             the cable on its console UART, and --serial the right port?)",
            link.describe()
        ),
        Failure::StillLogin => format!(
            "the board still shows a login prompt after logging in as {:?} within {secs} s on {}; last bytes \
                received: {tail}",
            login.user,
            link.describe()
        ),
        Failure::StillPassword => {
            format!(
                "the board still asks for a password within {secs} s on {}; last bytes received: \
                {tail}",
                link.describe()
            )
        }
        Failure::NoPrompt => format!(
            "no shell prompt answered within {secs} s on {}; last bytes received: \
            {tail}",
            link.describe()
        ),
        Failure::LoginFailed => {
            format!(
                "logging in as {:?} failed twice: check --login and --password; last bytes received: \
                {tail}",
                login.user
            )
        }
        Failure::NeedPassword => format!("the board asks for {:?}'s password: pass --password", login.user),
        Failure::PasswordRefused => format!("the password for {:?} was refused twice: check --password", login.user),
    }
}

fn say(link: &mut Link, what: &str) -> Result<()> {
    link.send(what.as_bytes(), Duration::from_secs(10))
}

/// A command as shown in messages: its first 80 characters.
fn short(cmd: &str) -> String {
    if cmd.len() <= 80 {
        cmd.to_string()
    } else {
        let mut end = 80;
        while !cmd.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &cmd[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screens_are_recognised() {
        assert_eq!(screen("\r\nPlease press Enter to activate this console. "), Screen::Activate);
        assert_eq!(screen("Starting network...\r\n\r\nFriendlyARM login: "), Screen::Login);
        assert_eq!(screen("root\r\nPassword: "), Screen::Password);
        assert_eq!(screen("\r\n[root@FriendlyARM /]# "), Screen::Prompt);
        assert_eq!(screen("\x1b[1;32mroot@board\x1b[0m:~$ "), Screen::Prompt);
        assert_eq!(screen("/ # "), Screen::Prompt);
        assert_eq!(screen("[    3.100000] mmc0: new high speed SDHC card\r\n"), Screen::Other);
        assert_eq!(screen(""), Screen::Other);
        // An answered "press Enter" followed by the shell is a prompt, not
        // another activation: only the last lines count.
        assert_eq!(
            screen(
                "Please press Enter to activate this console. \r\n\r\nstarting pid 80, tty \
                '/dev/ttySAC0'\r\nline\r\n[root@FriendlyARM /]# "
            ),
            Screen::Prompt
        );
    }

    #[test]
    fn ansi_sequences_are_removed() {
        assert_eq!(strip_ansi("\x1b[6n\x1b[1;32m/ #\x1b[0m "), "/ # ");
        assert_eq!(strip_ansi("a\x1bcb"), "ab");
    }

    #[test]
    fn frames_hide_the_number_from_the_echo() {
        let f = frame(1234, "uname -r");
        assert_eq!(f, "echo @@B$((1234+0))@@; uname -r; echo @@E$((1234+0)):$?@@\r");
        // The echo of the line alone is no answer.
        assert_eq!(parse_answer(1234, f.as_bytes()), None);
    }

    #[test]
    fn answers_parse_with_output_and_status() {
        let rx = b"echo @@B$((7+0))@@; uname -r; echo \
            @@E$((7+0)):$?@@\r\n@@B7@@\r\n3.5.0-FriendlyARM\r\nsecond\r\n@@E7:0@@\r\n[root@FriendlyARM /]# ";
        assert_eq!(parse_answer(7, rx), Some(Answer { output: "3.5.0-FriendlyARM\nsecond".into(), status: 0 }));
        // Output without a final newline ends where the sentinel starts.
        assert_eq!(parse_answer(8, b"@@B8@@\r\nA@@E8:0@@\r\n"), Some(Answer { output: "A".into(), status: 0 }));
        assert_eq!(parse_answer(9, b"@@B9@@\r\n@@E9:127@@"), Some(Answer { output: "".into(), status: 127 }));
        // A kernel message the console showed meanwhile is not output.
        let rx =
            b"@@B11@@\r\n0\r\n[   13.367978] amba 1000f000.wdt: deferred probe pending: (reason unknown)\r\n@@E11:0@@";
        assert_eq!(parse_answer(11, rx), Some(Answer { output: "0".into(), status: 0 }));
        // Not complete yet.
        assert_eq!(parse_answer(9, b"@@B9@@\r\nout\r\n@@E9:12"), None);
        assert_eq!(parse_answer(9, b"@@B9@@\r\nout\r\n@@E9:"), None);
        // Another command's sentinels do not count.
        assert_eq!(parse_answer(10, b"@@B1@@\r\n@@E1:0@@\r\n@@B10@@\r\nx\r\n@@E100:0@@"), None);
        assert_eq!(
            parse_answer(1, b"@@B1@@\r\n@@E10:0@@\r\n@@E1:3@@"),
            Some(Answer { output: "@@E10:0@@".into(), status: 3 })
        );
    }

    #[test]
    fn find_searches_from_an_offset() {
        assert_eq!(find(b"abcabc", b"bc", 0), Some(1));
        assert_eq!(find(b"abcabc", b"bc", 2), Some(4));
        assert_eq!(find(b"abc", b"abcd", 0), None);
        assert_eq!(find(b"abc", b"c", 5), None);
    }
}
