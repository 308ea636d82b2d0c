//! The board during a replay: what the replay changed on it (files, the
//! kmsg rate limit, modules it may have loaded), and putting it back.

use super::shell::BoardShell;
use super::QUICK;
use crate::plan::quote;
use std::time::Duration;

/// The board, and what the replay changed on it so far.
pub(super) struct ReplayedBoard {
    pub shell: BoardShell,
    /// Files written on the board.
    pub files: Vec<String>,
    /// `/proc/sys/kernel/printk_devkmsg` before the replay set it to `on`.
    pub devkmsg: Option<String>,
    /// The modules the steps may have loaded.
    pub loaded: Vec<String>,
    /// The shell answers commands.
    pub responsive: bool,
    /// The board was reset under the steps (it is booting again).
    pub reset: bool,
}

impl ReplayedBoard {
    /// A board just attached to: nothing changed on it yet.
    pub fn new(shell: BoardShell) -> ReplayedBoard {
        ReplayedBoard { shell, files: Vec::new(), devkmsg: None, loaded: Vec::new(), responsive: true, reset: false }
    }

    /// Leaves the board as found, as far as it answers; returns what it did
    /// beyond the expected, or could not do.
    pub fn restore(&mut self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.reset {
            notes.push(format!(
                "the board was reset under the steps and is booting again: {} is not loaded any more, and {} went \
                    with the reboot if /tmp is a tmpfs",
                self.loaded.join(", "),
                self.files.join(", ")
            ));
            return notes;
        }
        if !self.responsive {
            if !self.shell.recover(Duration::from_secs(10)) {
                notes.push(format!(
                    "the board does not answer since the steps stopped: {} may still be loaded and {} may remain; \
                        reset the board",
                    self.loaded.join(", "),
                    self.files.join(", ")
                ));
                return notes;
            }
            self.responsive = true;
        }
        let sh = &mut self.shell;
        for name in self.loaded.iter().rev() {
            match sh.run(&format!("grep -q '^{name} ' /proc/modules"), QUICK) {
                Ok(a) if a.status == 0 => {
                    eprintln!("harness: {name} is still loaded after the steps: trying rmmod once more");
                    match sh.run(&format!("rmmod {name} 2>&1"), QUICK) {
                        Ok(a) if a.status == 0 => {
                            notes.push(format!("{name} was still loaded after the steps; a second rmmod unloaded it"))
                        }
                        Ok(a) => notes.push(format!(
                            "{name} is still loaded: a second rmmod failed too ({}); it stays until the board reboots",
                            a.output.trim()
                        )),
                        Err(e) => notes.push(format!("could not unload {name}: {e:#}")),
                    }
                }
                Ok(_) => {}
                Err(e) => notes.push(format!("could not check whether {name} is still loaded: {e:#}")),
            }
        }
        if !self.files.is_empty() {
            let words: Vec<String> = self.files.iter().map(|f| quote(f)).collect();
            match sh.run(&format!("rm -rf {}", words.join(" ")), QUICK) {
                Ok(a) if a.status == 0 => {}
                Ok(a) => {
                    notes.push(format!("could not remove {} on the board: {}", self.files.join(", "), a.output.trim()))
                }
                Err(e) => notes.push(format!("could not remove {} on the board: {e:#}", self.files.join(", "))),
            }
        }
        if let Some(old) = &self.devkmsg {
            if let Err(e) = sh.run_ok(&format!("echo {old} > /proc/sys/kernel/printk_devkmsg"), QUICK) {
                notes.push(format!("could not set /proc/sys/kernel/printk_devkmsg back to {old}: {e:#}"));
            }
        }
        notes
    }
}
