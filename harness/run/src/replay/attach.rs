//! Getting a shell on the board's console, as a state machine with no I/O:
//! fed what the line holds and the time, [`BoardAttach::next`] says what to
//! send, to wait, that a shell answered, or why it gives up.
//! `BoardShell::attach` (shell.rs) is the loop that reads the link, feeds the
//! machine and sends what it says.
//!
//! Whatever the board shows first is answered: a prompt already waiting,
//! busybox's "Please press Enter to activate this console", a login (and
//! password) prompt, or boot noise that ends in one of those. A shell is
//! proven by a probe, `echo @@R$((N+0))@@`, whose answer `@@RN@@` only a
//! shell can print (the echo of the typed line shows `$((N+0))`).

use std::time::{Duration, Instant};

/// Who to log in as, when the board asks.
pub struct Login {
    pub user: String,
    pub password: Option<String>,
}

/// What the last thing on the console asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Busybox init's askfirst: "Please press Enter to activate this console."
    Activate,
    /// getty/login: "FriendlyARM login: ".
    Login,
    Password,
    /// Something that ends like a shell prompt (`# `, `$ `, `> `).
    Prompt,
    /// Boot noise, or nothing.
    Other,
}

/// Removes ANSI escape sequences (colour prompts, cursor queries).
pub fn strip_ansi(text: &str) -> String {
    strip_ansi_escapes::strip_str(text)
}

/// Classifies what the board printed since the harness last acted.
pub fn screen(recent: &str) -> Screen {
    let text = strip_ansi(recent).replace('\r', "");
    let last = text.rsplit('\n').next().unwrap_or("").trim_end();
    if text.rsplit('\n').take(3).any(|l| l.contains("Please press Enter to activate this console")) {
        return Screen::Activate;
    }
    let lower = last.to_ascii_lowercase();
    if lower.ends_with("login:") {
        Screen::Login
    } else if lower.ends_with("password:") {
        Screen::Password
    } else if !last.is_empty()
        && last.len() < 120
        && (last.ends_with('#') || last.ends_with('$') || last.ends_with('>'))
    {
        Screen::Prompt
    } else {
        Screen::Other
    }
}

/// Byte-string search from `from`.
pub fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(hay.get(from..)?, needle).map(|p| p + from)
}

/// How long the line must be quiet before what is on screen is acted on:
/// a prompt is the last thing printed, and it does not end with a newline.
pub const IDLE: Duration = Duration::from_millis(400);
/// How often to ask an unrecognised screen whether a shell is listening.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);
/// A board that never stops talking (a looping message) is poked anyway.
pub const BUSY_LIMIT: Duration = Duration::from_secs(3);

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Read more.
    Wait,
    /// Write these, one write each, in order.
    Send(Vec<String>),
    /// A shell answered a probe.
    Attached,
    Fail(Failure),
}

/// Why no shell was had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Mostly not text: the wrong baud rate. `bytes` were received.
    Garbage {
        percent: usize,
        bytes: usize,
    },
    /// Nothing at all was received.
    Silent,
    /// The deadline passed on this screen.
    StillLogin,
    StillPassword,
    NoPrompt,
    /// Asked to log in a third time.
    LoginFailed,
    /// A password prompt, and none was given.
    NeedPassword,
    PasswordRefused,
}

/// What the machine is given each time: the recent bytes since the
/// attach began and since its last action, and the count received.
pub struct View<'a> {
    pub since_start: &'a [u8],
    pub since_action: &'a [u8],
    /// How many bytes the link has received in all.
    pub received: usize,
    /// Whether the last read brought anything.
    pub got: bool,
}

pub struct BoardAttach<'a> {
    login: &'a Login,
    started: Instant,
    deadline: Instant,
    /// The next command number.
    next: u64,
    /// Where the attach began, and where its last action was, in the
    /// link's received bytes.
    start: usize,
    acted: usize,
    last_rx: Instant,
    last_action: Option<Instant>,
    probes: Vec<u64>,
    logins: u32,
    passwords: u32,
}

impl<'a> BoardAttach<'a> {
    /// Begins at `received` bytes into the link, at `now`, with command
    /// numbers from a base that `seed` makes unlike another session's.
    pub fn new(login: &'a Login, timeout: Duration, seed: u64, received: usize, now: Instant) -> BoardAttach<'a> {
        BoardAttach {
            login,
            started: now,
            deadline: now + timeout,
            next: 1000 + seed % 9_000_000,
            start: received,
            acted: received,
            last_rx: now,
            last_action: None,
            probes: Vec::new(),
            logins: 0,
            passwords: 0,
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Where the attach began and where its last action was: the offsets
    /// of [`View::since_start`] and [`View::since_action`].
    pub fn offsets(&self) -> (usize, usize) {
        (self.start, self.acted)
    }

    /// The next command number, for the shell's commands once attached.
    pub fn next_command(&self) -> u64 {
        self.next
    }

    /// What to do, given `view` after a read, at `now`.
    pub fn next(&mut self, view: &View, now: Instant) -> Step {
        if let Some(percent) = super::link::garbage_percent(view.since_start) {
            return Step::Fail(Failure::Garbage { percent, bytes: view.received - self.start });
        }
        if self.probes.iter().any(|n| find(view.since_start, format!("@@R{n}@@").as_bytes(), 0).is_some()) {
            return Step::Attached;
        }
        if now >= self.deadline {
            return Step::Fail(self.why_not(view));
        }
        if view.got {
            self.last_rx = now;
            if now - self.last_action.unwrap_or(self.started) < BUSY_LIMIT {
                return Step::Wait;
            }
        } else if now - self.last_rx < IDLE {
            return Step::Wait;
        }
        let step = self.act(screen(&String::from_utf8_lossy(view.since_action)), now);
        if matches!(step, Step::Send(_)) {
            self.last_action = Some(now);
            self.acted = view.received;
        }
        step
    }

    /// The answer to `screen` once the line is quiet (or busy too long).
    fn act(&mut self, screen: Screen, now: Instant) -> Step {
        let send = |s: String| Step::Send(vec![s]);
        if self.last_action.is_none() {
            // A bare Enter first: it makes the board show what it is
            // waiting for (a fresh prompt, the login again) and answers
            // "press Enter" without typing into a login.
            return send("\r".into());
        }
        match screen {
            Screen::Activate => send("\r".into()),
            Screen::Login => {
                self.logins += 1;
                if self.logins > 2 {
                    return Step::Fail(Failure::LoginFailed);
                }
                send(format!("{}\r", self.login.user))
            }
            Screen::Password => {
                let Some(pw) = &self.login.password else { return Step::Fail(Failure::NeedPassword) };
                self.passwords += 1;
                if self.passwords > 2 {
                    return Step::Fail(Failure::PasswordRefused);
                }
                send(format!("{pw}\r"))
            }
            screen => {
                let wait = if screen == Screen::Prompt { IDLE } else { PROBE_EVERY };
                if self.last_action.is_some_and(|t| now - t < wait) {
                    return Step::Wait;
                }
                let n = self.next;
                self.next += 1;
                let probe = format!("echo @@R$(({n}+0))@@\r");
                // From the second probe on, Ctrl-C first: it clears a
                // half-typed line or an open quote, and stops whatever
                // holds the console in the foreground.
                let step = if self.probes.is_empty() { send(probe) } else { Step::Send(vec!["\x03".into(), probe]) };
                self.probes.push(n);
                step
            }
        }
    }

    /// Why the deadline passed without a shell.
    fn why_not(&self, view: &View) -> Failure {
        if view.received == self.start {
            return Failure::Silent;
        }
        match screen(&String::from_utf8_lossy(view.since_action)) {
            Screen::Login => Failure::StillLogin,
            Screen::Password => Failure::StillPassword,
            _ => Failure::NoPrompt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A board on a fake line: what it has printed, and a clock.
    struct Line {
        bytes: Vec<u8>,
        now: Instant,
    }

    impl Line {
        fn new() -> Line {
            Line { bytes: Vec::new(), now: Instant::now() }
        }
        /// The board prints `text` (or nothing) over `ms`, then the machine runs.
        fn step(&mut self, m: &mut BoardAttach, text: impl AsRef<[u8]>, ms: u64) -> Step {
            let text = text.as_ref();
            self.bytes.extend_from_slice(text);
            self.now += Duration::from_millis(ms);
            let (start, acted) = m.offsets();
            let view = View {
                since_start: &self.bytes[start..],
                since_action: &self.bytes[acted..],
                received: self.bytes.len(),
                got: !text.is_empty(),
            };
            m.next(&view, self.now)
        }
        /// Quiet steps until the machine acts (or `max` of them).
        fn until_sent(&mut self, m: &mut BoardAttach, max: usize) -> Step {
            for _ in 0..max {
                let s = self.step(m, "", 100);
                if s != Step::Wait {
                    return s;
                }
            }
            Step::Wait
        }
    }

    fn probe_of(step: &Step) -> u64 {
        let Step::Send(v) = step else { panic!("not a send: {step:?}") };
        let p = v.last().unwrap();
        p.trim_start_matches("echo @@R$((")
            .split('+')
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("not a probe: {p:?}"))
    }

    fn root(password: Option<&str>) -> Login {
        Login { user: "root".into(), password: password.map(String::from) }
    }

    /// shell.rs feeds this machine, so this file names nothing of shell.rs
    /// (the two once imported each other). The whole text is read, macro
    /// bodies too; only comments (and these tests) are skipped.
    #[test]
    fn the_attach_machine_names_nothing_of_the_shell_loop() {
        // The code before these tests, which name what they look for.
        let (code, _) = include_str!("attach.rs").split_once("\n#[cfg(test)]").unwrap();
        let code: Vec<&str> = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
        let named: Vec<&&str> = code.iter().filter(|l| l.contains("shell::") || l.contains("BoardShell")).collect();
        assert!(named.is_empty(), "attach.rs names shell.rs: {named:?}");
    }

    #[test]
    fn a_waiting_prompt_gets_enter_then_a_probe_and_its_answer_attaches() {
        let login = root(None);
        let mut line = Line::new();
        let mut m = BoardAttach::new(&login, Duration::from_secs(60), 42, 0, line.now);
        assert_eq!(line.step(&mut m, "[root@FriendlyARM /]# ", 100), Step::Wait, "busy: the prompt just arrived");
        assert_eq!(line.until_sent(&mut m, 10), Step::Send(vec!["\r".into()]));
        let probe = line.step(&mut m, "\r\n[root@FriendlyARM /]# ", 100);
        let probe = if probe == Step::Wait { line.until_sent(&mut m, 10) } else { probe };
        let n = probe_of(&probe);
        assert_eq!(n, 1042, "the seed picks the numbers");
        // The tty's echo of the typed line is not the answer.
        assert_eq!(line.step(&mut m, format!("echo @@R$(({n}+0))@@\r\n"), 50), Step::Wait);
        assert_eq!(line.step(&mut m, format!("@@R{n}@@\r\n# "), 50), Step::Attached);
        assert_eq!(m.next_command(), n + 1);
    }

    #[test]
    fn press_enter_login_and_password_are_answered() {
        let login = root(Some("fa"));
        let mut line = Line::new();
        let mut m = BoardAttach::new(&login, Duration::from_secs(60), 0, 0, line.now);
        line.step(&mut m, "Please press Enter to activate this console. ", 100);
        assert_eq!(line.until_sent(&mut m, 10), Step::Send(vec!["\r".into()]), "the first Enter");
        line.step(&mut m, "\r\nPlease press Enter to activate this console. ", 100);
        assert_eq!(line.until_sent(&mut m, 10), Step::Send(vec!["\r".into()]), "askfirst again: Enter");
        line.step(&mut m, "\r\nFriendlyARM login: ", 100);
        assert_eq!(line.until_sent(&mut m, 10), Step::Send(vec!["root\r".into()]));
        line.step(&mut m, "root\r\nPassword: ", 100);
        assert_eq!(line.until_sent(&mut m, 10), Step::Send(vec!["fa\r".into()]));
        line.step(&mut m, "\r\n# ", 100);
        probe_of(&line.until_sent(&mut m, 10));
    }

    #[test]
    fn a_password_prompt_without_a_password_and_a_third_login_fail() {
        let login = root(None);
        let mut line = Line::new();
        let mut m = BoardAttach::new(&login, Duration::from_secs(60), 0, 0, line.now);
        line.step(&mut m, "Password: ", 100);
        line.until_sent(&mut m, 10);
        line.step(&mut m, "\r\nPassword: ", 100);
        assert_eq!(line.until_sent(&mut m, 10), Step::Fail(Failure::NeedPassword));

        let mut line = Line::new();
        let mut m = BoardAttach::new(&login, Duration::from_secs(60), 0, 0, line.now);
        line.step(&mut m, "login: ", 100);
        line.until_sent(&mut m, 10);
        for _ in 0..2 {
            line.step(&mut m, "\r\nLogin incorrect\r\nlogin: ", 100);
            assert_eq!(line.until_sent(&mut m, 10), Step::Send(vec!["root\r".into()]));
        }
        line.step(&mut m, "\r\nLogin incorrect\r\nlogin: ", 100);
        assert_eq!(line.until_sent(&mut m, 10), Step::Fail(Failure::LoginFailed));
    }

    /// A probe whose answer is lost (or garbled on the way) is repeated
    /// after a while, with a Ctrl-C first, and the new number's answer
    /// attaches.
    #[test]
    fn a_lost_answer_is_probed_again_after_ctrl_c() {
        let login = root(None);
        let mut line = Line::new();
        let mut m = BoardAttach::new(&login, Duration::from_secs(60), 0, 0, line.now);
        line.step(&mut m, "boot noise\r\n", 100);
        line.until_sent(&mut m, 10);
        let first = probe_of(&line.until_sent(&mut m, 40));
        line.step(&mut m, format!("echo @@R$(({first}+0))@@\r\n@@R{}@@\r\n", first + 7), 100);
        let again = line.until_sent(&mut m, 40);
        let Step::Send(v) = &again else { panic!("{again:?}") };
        assert_eq!(v[0], "\x03");
        let second = probe_of(&again);
        assert_eq!(second, first + 1);
        assert_eq!(
            line.step(&mut m, format!("@@R{first}@@"), 50),
            Step::Attached,
            "a late answer to the first probe still proves a shell"
        );
    }

    #[test]
    fn a_board_that_never_stops_talking_is_poked_after_the_busy_limit() {
        let login = root(None);
        let mut line = Line::new();
        let mut m = BoardAttach::new(&login, Duration::from_secs(60), 0, 0, line.now);
        let mut sent_at = None;
        for i in 0..60 {
            if let Step::Send(_) = line.step(&mut m, "tick\r\n", 100) {
                sent_at = Some(i);
                break;
            }
        }
        let i = sent_at.expect("poked");
        assert!((28..=31).contains(&i), "after about {BUSY_LIMIT:?} of talk, not {i} reads");
    }

    #[test]
    fn garbage_silence_and_a_stuck_login_are_told_apart() {
        let login = root(None);
        let mut line = Line::new();
        let mut m = BoardAttach::new(&login, Duration::from_secs(60), 0, 0, line.now);
        let noise: Vec<u8> = (0..100u8).map(|i| 0x80 | i.wrapping_mul(37)).collect();
        assert!(matches!(line.step(&mut m, &noise, 100), Step::Fail(Failure::Garbage { bytes: 100, .. })));

        let mut line = Line::new();
        let mut m = BoardAttach::new(&login, Duration::from_secs(2), 0, 0, line.now);
        assert_eq!(line.until_sent(&mut m, 30), Step::Send(vec!["\r".into()]), "an Enter into the silence");
        assert_eq!(line.until_sent(&mut m, 30), Step::Fail(Failure::Silent));

        // The login prompt comes back and the time runs out on it.
        let mut line = Line::new();
        let mut m = BoardAttach::new(&login, Duration::from_secs(1), 0, 0, line.now);
        line.step(&mut m, "login: ", 100);
        assert_eq!(line.until_sent(&mut m, 10), Step::Send(vec!["\r".into()]));
        line.step(&mut m, "\r\nlogin: ", 100);
        assert_eq!(line.until_sent(&mut m, 10), Step::Fail(Failure::StillLogin));
    }
}
