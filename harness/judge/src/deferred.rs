//! What a module left scheduled when it was unloaded, from the kernel's
//! function that ran into the module's freed code or data
//! (`configs/deferred-runners.toml`). A tasklet that the exit did not kill
//! shows up as an oops in `tasklet_action_common`, not as a report of its
//! own (debug objects do not track tasklets).

use regex::Regex;
use std::sync::LazyLock;

#[derive(serde::Deserialize)]
struct Entry {
    functions: Vec<String>,
    left: String,
    fix: String,
    #[allow(dead_code)]
    source: String,
}

#[derive(serde::Deserialize)]
struct Table {
    runner: Vec<Entry>,
}

/// The table, read into the binary (the judge does no I/O).
static RUNNERS: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    let table: Table = toml::from_str(include_str!("../../../configs/deferred-runners.toml"))
        .expect("configs/deferred-runners.toml parses");
    table.runner
});

/// `PC is at f+0x9c/0x108` or `LR is at f+0xe0/0x108`: the function, with
/// any compiler suffix (`.constprop.0`) left out.
static PC_OR_LR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(?:PC|LR) is at ([A-Za-z_]\w*)(?:\.[\w.]+)?\+0x").unwrap());

/// What was left scheduled, by the kernel function that ran it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftScheduled {
    /// The kernel's function, as printed without its suffix.
    pub function: String,
    /// `a tasklet still scheduled`.
    pub left: String,
    /// `tasklet_kill()`.
    pub fix: String,
}

impl std::fmt::Display for LeftScheduled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "run by {}: {} after rmmod; its exit should call {}", self.function, self.left, self.fix)
    }
}

/// The first `PC is at` or `LR is at` line of a report (`block`) that names
/// a function of the table. The caller asks only for a report that points
/// into an unloaded module: otherwise a tasklet's own bug would read as one
/// left behind.
pub fn left_scheduled(block: &[String]) -> Option<LeftScheduled> {
    block.iter().find_map(|l| {
        let function = &PC_OR_LR.captures(l)?[1];
        let e = RUNNERS.iter().find(|e| e.functions.iter().any(|f| f == function))?;
        Some(LeftScheduled { function: function.to_string(), left: e.left.clone(), fix: e.fix.clone() })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn the_function_that_ran_it_says_what_was_left_scheduled() {
        // Freed data: the kernel's tasklet code is the program counter.
        let data = block(&["PC is at tasklet_action_common+0x9c/0x108", "LR is at handle_softirqs+0xf0/0x254"]);
        let t = left_scheduled(&data).unwrap();
        assert_eq!(t.function, "tasklet_action_common");
        assert_eq!(
            t.to_string(),
            "run by tasklet_action_common: a tasklet still scheduled after rmmod; its exit should call tasklet_kill()"
        );
        // Freed code: the program counter is bare, the caller is the link register.
        let code = block(&["PC is at 0xbf000000", "LR is at call_timer_fn.constprop.0+0x1c/0x150"]);
        assert_eq!(left_scheduled(&code).unwrap().left, "a timer still pending");
        assert_eq!(left_scheduled(&block(&["PC is at debug_print_object+0xa4/0xe0"])), None);
        // A frame of the call trace is no program counter.
        assert_eq!(left_scheduled(&block(&[" tasklet_action_common from handle_softirqs+0xf0/0x254"])), None);
    }
}
