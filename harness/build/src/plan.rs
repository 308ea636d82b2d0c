//! The scenario: which steps a run takes, in which order, and the shell
//! script that takes them (calls to the functions of `rootfs/steps.sh`).
//! Pure: the same plan drives the QEMU guest's `/init` and a board replay.
//!
//! Order: a census of what modules register, every module is loaded
//! (dependency order), the command steps run (file order), the modules are
//! unloaded (reverse order) and checked gone, command steps written after an
//! rmmod entry run, the modules are loaded and unloaded again (unless the
//! file says `reload = false`), a second census (judge/census.rs compares
//! the two), and on kernels with kmemleak the leaks step reads its report.

use crate::judge::board_parts::BoardStep;
use crate::judge::expect::{Expectations, Reload};
use crate::judge::marker::StepId;
use crate::judge::step::StepKind;
use anyhow::{bail, Result};

/// Where the modules, programs and the harness's scripts are in the guest
/// (and under the board's work directory's name on a board).
pub const GUEST_DIR: &str = "/harness";

/// Where the guest links each input device's event node by its name
/// (`harness_by_name` in steps.sh), for a command step that names one.
pub const BY_NAME: &str = "/dev/input/by-name/";

/// A module the run loads, in load order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanModule {
    /// The name the kernel registers (rmmod takes it).
    pub name: String,
    /// Its file name in the directory the script is given.
    pub file: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Insmod {
        module: String,
        file: String,
        args: Option<String>,
    },
    /// A command step; `bin`, a directory put first on its PATH (a unit's
    /// own programs, when several units share a guest). In the
    /// `background`, the step ends as the command starts.
    Run {
        command: String,
        bin: Option<String>,
        background: bool,
    },
    /// Waits for the background step `on` (of the same unit); its output
    /// and exit status are this step's. With `stop`, ends it first.
    Wait {
        on: String,
        stop: bool,
    },
    /// Acts on the virtual board: lines for its control file, in order.
    Board {
        acts: Vec<String>,
    },
    /// Prints the virtual board's state (`PART STATE` a line), which the
    /// step's expectations check.
    BoardState,
    /// A `reload` step: these modules (name, file), unloaded last first
    /// and loaded again in order, `args` the new parameters (one module).
    Reload {
        modules: Vec<(String, String)>,
        args: Option<String>,
    },
    Rmmod {
        module: String,
    },
    Gone {
        module: String,
    },
    /// What modules register, listed by the guest (`harness_census`):
    /// before the first insmod, and (`again`) after the last rmmod.
    Census {
        again: bool,
    },
    /// On kernels with kmemleak only (decided in the guest).
    Leaks,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    /// The unit it belongs to, when several share a boot (the step's
    /// markers say `unit/name`); see [`StepId`].
    pub unit: Option<String>,
    /// As the unit's own expectations name it.
    pub name: String,
    pub action: Action,
    /// What the step waits for before it ends (its `until`).
    pub until: Option<GuestUntil>,
}

/// An `until` as the guest's `harness_until_next` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestUntil {
    /// `line` or `regex`.
    pub kind: &'static str,
    pub text: String,
    pub within_ms: u32,
    /// The background step whose output holds the line; `None`: the
    /// kernel log.
    pub output: Option<String>,
}

impl PlannedStep {
    pub fn new(name: impl Into<String>, action: Action) -> PlannedStep {
        PlannedStep { unit: None, name: name.into(), action, until: None }
    }

    /// The step as its markers name it.
    pub fn id(&self) -> StepId {
        StepId::new(self.unit.as_deref(), &self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub steps: Vec<PlannedStep>,
    /// `check --shell`: the user gets a shell in the guest before the first
    /// unload step, with the modules loaded.
    pub shell: bool,
    /// `check --shell-on-failure`: after each step the guest waits for the
    /// harness's answer, a shell or go on (`harness_await` in steps.sh).
    pub shell_on_failure: bool,
    /// The virtual board's module, in the guest, loaded before the first
    /// step (QEMU only: a real board is the board).
    pub board: Option<String>,
    /// Each unit's `[board] stock-drivers` (judge/stock.rs): the virtual
    /// board holds the stock image's pins and interrupts, or not, from the
    /// unit's first step. Said only where the plan loads the virtual board.
    pub stock: Vec<(Option<String>, bool)>,
    /// `check --coverage`: after the last step the guest sends the
    /// modules' .gcda files (`harness_coverage` in steps.sh).
    pub coverage: bool,
}

impl Plan {
    /// The steps' names, in order, for [`Expectations::evaluate`].
    pub fn names(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.name.clone()).collect()
    }

    /// The modules, in load order (once, though the second load loads them
    /// again).
    pub fn modules(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Insmod { module, .. } if crate::judge::step::round(&s.name).is_none() => Some(module.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Plans a run of `modules` (in load order) under `exp`, checking that the
/// file's step names fit these modules.
pub fn plan(modules: &[PlanModule], exp: &Expectations) -> Result<Plan> {
    if modules.is_empty() {
        bail!("nothing to load: the module directory built no .ko");
    }
    check_step_names(modules, exp)?;
    let several = modules.len() > 1;
    let mut steps = Vec::new();
    let name = |kind: StepKind, m: &PlanModule| crate::judge::step::step_name(kind, &m.name, several);
    let census = !exp.expects_reset();
    if census {
        steps.push(PlannedStep::new(StepKind::Census.word(), Action::Census { again: false }));
    }
    let load = |steps: &mut Vec<PlannedStep>, again: fn(String) -> String| {
        for m in modules {
            let n = again(name(StepKind::Insmod, m));
            let args = exp.entry_for(&n).and_then(|e| e.args.clone());
            steps.push(PlannedStep::new(n, Action::Insmod { module: m.name.clone(), file: m.file.clone(), args }));
        }
    };
    let unload = |steps: &mut Vec<PlannedStep>, again: fn(String) -> String| {
        for m in modules.iter().rev() {
            steps.push(PlannedStep::new(again(name(StepKind::Rmmod, m)), Action::Rmmod { module: m.name.clone() }));
        }
        for m in modules.iter().rev() {
            steps.push(PlannedStep::new(again(name(StepKind::Gone, m)), Action::Gone { module: m.name.clone() }));
        }
    };
    let first: fn(String) -> String = |n| n;
    let second: fn(String) -> String = |n| crate::judge::step::second(&n);
    load(&mut steps, first);
    let command = |e: &crate::judge::expect::StepExpectation| {
        let mut step = match (&e.wait, &e.board) {
            _ if e.reload.is_some() => PlannedStep::new(&e.name, reload_action(modules, e)),
            (Some(on), _) => PlannedStep::new(&e.name, Action::Wait { on: on.clone(), stop: e.stop }),
            (None, Some(BoardStep::Act(acts))) => PlannedStep::new(&e.name, Action::Board { acts: acts.clone() }),
            (None, Some(BoardStep::Check(_))) => PlannedStep::new(&e.name, Action::BoardState),
            (None, None) => PlannedStep::new(
                &e.name,
                Action::Run { command: e.run.clone().unwrap_or_default(), bin: None, background: e.background },
            ),
        };
        step.until = e.until.as_ref().map(|u| {
            let (kind, text) = u.guest_kind();
            GuestUntil { kind, text, within_ms: u.within_ms, output: u.output.clone() }
        });
        step
    };
    steps.extend(exp.commands().filter(|e| !e.after_unload).map(command));
    if exp.expects_reset() {
        // The board resets in the last command step: nothing after it runs.
        if let Some(e) = exp.commands().find(|e| e.after_unload) {
            bail!("expectations: step {:?} runs after the unload, but the board is reset before it", e.name);
        }
        return Ok(Plan {
            steps,
            shell: false,
            shell_on_failure: false,
            board: None,
            stock: vec![(None, exp.stock_drivers)],
            coverage: false,
        });
    }
    unload(&mut steps, first);
    steps.extend(exp.commands().filter(|e| e.after_unload).map(command));
    if exp.reload {
        load(&mut steps, second);
        unload(&mut steps, second);
    }
    if census {
        steps.push(PlannedStep::new(
            crate::judge::step::second(StepKind::Census.word()),
            Action::Census { again: true },
        ));
    }
    steps.push(PlannedStep::new(StepKind::Leaks.word(), Action::Leaks));
    Ok(Plan { steps, stock: vec![(None, exp.stock_drivers)], ..Plan::default() })
}

/// A `reload` step's action: the modules it names, in load order.
fn reload_action(modules: &[PlanModule], e: &crate::judge::expect::StepExpectation) -> Action {
    let named = |m: &&PlanModule| match &e.reload {
        Some(Reload::Module(name)) => m.name == *name,
        _ => true,
    };
    let modules = modules.iter().filter(named).map(|m| (m.name.clone(), m.file.clone())).collect();
    Action::Reload { modules, args: e.args.clone() }
}

/// Checks that a `reload` step names a module the unit loads, and gives
/// `args` only for one module.
fn check_reload(modules: &[PlanModule], e: &crate::judge::expect::StepExpectation) -> Result<()> {
    let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    match &e.reload {
        Some(Reload::Module(m)) if !names.contains(&m.as_str()) => {
            bail!(
                "expectations: step {:?}: reload = {m:?}: no such module is loaded (loaded: {})",
                e.name,
                names.join(", ")
            )
        }
        Some(Reload::All) if names.len() > 1 && e.args.is_some() => bail!(
            "expectations: step {:?} has args, but reloads {} modules: name the one they are for (reload = {:?})",
            e.name,
            names.len(),
            names[0]
        ),
        _ => Ok(()),
    }
}

/// Checks that the file's step names fit `modules`: a second round only
/// of insmod, rmmod and gone, and only with a second load; a module named
/// only with several, and one that is loaded; insmod's args on the module's
/// own step with several.
fn check_step_names(modules: &[PlanModule], exp: &Expectations) -> Result<()> {
    let several = modules.len() > 1;
    let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    for e in &exp.steps {
        check_reload(modules, e)?;
        if let Some(r) = crate::judge::step::round(&e.name) {
            if r != 2
                || !exp.reload
                || !matches!(StepKind::of(&e.name), StepKind::Insmod | StepKind::Rmmod | StepKind::Gone)
            {
                bail!(
                    "expectations: step {:?}: the second round (`#2`) is insmod's, rmmod's and gone's, and only \
                    with a second load (not `reload = false`)",
                    e.name
                );
            }
        }
        if let Some((kind, module)) = e.name.split_once(':') {
            if !names.contains(&module) {
                bail!("expectations: step {:?}: no module {module:?} is loaded (loaded: {})", e.name, names.join(", "));
            }
            if !several {
                bail!("expectations: step {:?}: one module is loaded, so name the step {kind:?}", e.name);
            }
        } else if several && e.name == StepKind::Insmod.word() && e.args.is_some() {
            bail!(
                "expectations: step \"insmod\" has args, but {} modules are loaded: put them on \"insmod:<module>\" \
                    ({})",
                modules.len(),
                names.iter().map(|n| format!("insmod:{n}")).collect::<Vec<_>>().join(", ")
            );
        }
    }
    Ok(())
}

/// `s` as one word for a POSIX shell (the guest's and a board's busybox
/// sh, and a human pasting qemu-command.txt): as it is when that is safe,
/// else quoted, by shlex. A NUL, the one thing shlex refuses, cannot be in
/// a shell word at all (argv strings end at it), so it is left out.
pub fn quote(s: &str) -> String {
    match shlex::try_quote(s) {
        Ok(q) => q.into_owned(),
        Err(_) => quote(&s.replace('\0', "")),
    }
}

/// The key of a background step's files in the guest (`unit.name`):
/// `harness-bg.KEY.out` and `.pid` (steps.sh, harness_start).
pub fn background_key(id: &StepId) -> String {
    id.to_string().replace('/', ".")
}

/// The scenario as a shell function, `harness_scenario`, for steps.sh to
/// run; the modules' files are in `dir` on the guest or board.
pub fn script(plan: &Plan, dir: &str) -> String {
    let mut s = String::new();
    s.push_str("# The scenario of one run, generated by the harness (harness/build/src/plan.rs).\n");
    s.push_str("# Sourced after steps.sh, whose functions it calls.\n");
    s.push_str("harness_scenario() {\n");
    if plan.shell_on_failure {
        s.push_str("    HARNESS_AWAIT=1\n");
    }
    // Input devices by name, only where a command names one (a look at
    // every input device before each step costs emulated time).
    if plan.steps.iter().any(|st| matches!(&st.action, Action::Run { command, .. } if command.contains(BY_NAME))) {
        s.push_str("    HARNESS_BY_NAME=1\n");
    }
    if let Some(ko) = &plan.board {
        s.push_str(&format!("    harness_board_load {}\n", quote(ko)));
    }
    // The virtual board loads with the stock drivers off: said only when
    // a unit wants them otherwise than the unit before it (an echo to the
    // board's control file is 50 ms of emulated time).
    let mut stock_on = false;
    let first_unload =
        plan.steps.iter().position(|s| matches!(s.action, Action::Rmmod { .. } | Action::Gone { .. } | Action::Leaks));
    for (i, st) in plan.steps.iter().enumerate() {
        if plan.shell && Some(i) == first_unload {
            s.push_str("    harness_shell\n");
        }
        let first_of_unit = i == 0 || plan.steps[i - 1].unit != st.unit;
        let mut stock_changed = false;
        if let Some((_, held)) = plan
            .stock
            .iter()
            .find(|(u, _)| *u == st.unit)
            .filter(|(_, held)| first_of_unit && plan.board.is_some() && *held != stock_on)
        {
            s.push_str(if *held { "    harness_board_stock on\n" } else { "    harness_board_stock off\n" });
            stock_on = *held;
            stock_changed = true;
        }
        let line = step_line(plan, i, dir, stock_changed);
        if let Some(u) = &st.until {
            let source = match &u.output {
                Some(bg) => quote(&background_key(&StepId::new(st.unit.as_deref(), bg))),
                None => "-".to_string(),
            };
            s.push_str(&format!("    harness_until_next {} {} {source} {}\n", u.kind, u.within_ms, quote(&u.text)));
        }
        s.push_str("    ");
        s.push_str(&line);
        s.push('\n');
    }
    if plan.coverage {
        s.push_str("    harness_coverage\n");
    }
    s.push_str("    harness_done\n}\n");
    s
}

/// Where a module's file is in the guest or on the board: `dir`'s, unless
/// absolute (where the board has the module already).
fn module_path(file: &str, dir: &str) -> String {
    if file.starts_with('/') {
        file.to_string()
    } else {
        format!("{}/{file}", dir.trim_end_matches('/'))
    }
}

/// The scenario's line for the plan's step `i` (`stock_changed`: the
/// stock drivers were just switched before it).
fn step_line(plan: &Plan, i: usize, dir: &str, stock_changed: bool) -> String {
    let st = &plan.steps[i];
    let n = quote(&st.id().to_string());
    match &st.action {
        Action::Insmod { module, file, args } => {
            let ko = quote(&module_path(file, dir));
            match args {
                Some(a) => format!("harness_step {n} harness_insmod {ko} {} {}", quote(module), quote(a)),
                None => format!("harness_step {n} harness_insmod {ko} {}", quote(module)),
            }
        }
        Action::Run { command, bin, background } => {
            // A background step starts its command under a key that its
            // wait step names: the step's id, one file-name word.
            let how = if *background {
                format!("harness_start {n} {}", quote(&background_key(&st.id())))
            } else {
                format!("harness_step {n}")
            };
            match bin {
                None => format!("{how} harness_run {}", quote(command)),
                Some(dir) => format!("{how} harness_run_in {} {}", quote(dir), quote(command)),
            }
        }
        Action::Wait { on, stop } => {
            let key = quote(&background_key(&StepId::new(st.unit.as_deref(), on)));
            format!("harness_wait {n} {key}{}", if *stop { " stop" } else { "" })
        }
        Action::Board { acts } => {
            format!("harness_step {n} harness_board {}", acts.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "))
        }
        Action::BoardState => format!("harness_step {n} harness_board_state"),
        Action::Reload { modules, args } => {
            let each = modules.iter().map(|(m, f)| format!(" {} {}", quote(&module_path(f, dir)), quote(m)));
            format!(
                "harness_step {n} harness_reload {}{}",
                quote(args.as_deref().unwrap_or("")),
                each.collect::<String>()
            )
        }
        Action::Rmmod { module } => format!("harness_step {n} harness_rmmod {}", quote(module)),
        Action::Gone { module } => format!("harness_step {n} harness_module_gone {}", quote(module)),
        Action::Census { again: true } => format!("harness_step {n} harness_census again"),
        // A unit's first census right after another's last one (units
        // sharing a boot) is that one, when nothing runs between them
        // (a change of the stock drivers adds their devices: a new one).
        Action::Census { again: false }
            if i > 0 && !stock_changed && plan.steps[i - 1].action == (Action::Census { again: true }) =>
        {
            format!("harness_step {n} harness_census first reuse")
        }
        Action::Census { again: false } => format!("harness_step {n} harness_census first"),
        Action::Leaks => "harness_leaks".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str) -> PlanModule {
        PlanModule { name: name.into(), file: format!("{name}.ko") }
    }

    fn exp(text: &str) -> Expectations {
        Expectations::parse(text, "e.toml").unwrap()
    }

    #[test]
    fn shell_quoting_is_minimal_and_safe() {
        assert_eq!(quote("-M"), "-M");
        assert_eq!(quote("console=ttySAC0,115200n8 rdinit=/init"), "'console=ttySAC0,115200n8 rdinit=/init'");
        assert_eq!(quote("it's"), "\"it's\"");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a\0b"), "ab");
        assert_eq!(quote("/tmp/harness-mmc_byte.ko"), "/tmp/harness-mmc_byte.ko");
        // Each word comes back whole from a real sh, whatever it holds.
        let words = ["it's", "$(echo not quoted)", "`id`", "a\"b\\c", "{a,b}", "~root", "#c", "x y\tz", "\u{a0}", "*"];
        let script = words.iter().map(|w| format!("printf '%s\\n' {}", quote(w))).collect::<Vec<_>>().join("; ");
        let out = duct::cmd!("sh", "-c", script).read().unwrap();
        assert_eq!(out.split('\n').collect::<Vec<_>>(), words);
    }

    #[test]
    fn one_module_with_a_command_and_params() {
        let e = exp("[[step]]\nname='insmod'\nargs='count=3'\n[[step]]\nname='app'\nrun=\"app /dev/x 'a b'\"\n");
        let p = plan(&[m("hello")], &e).unwrap();
        assert_eq!(
            p.names(),
            ["census", "insmod", "app", "rmmod", "gone", "insmod#2", "rmmod#2", "gone#2", "census#2", "leaks"]
        );
        let s = script(&p, "/harness");
        assert!(
            s.contains(
                "harness_step census harness_census first\n    harness_step insmod harness_insmod \
            /harness/hello.ko hello 'count=3'\n"
            ),
            "{s}"
        );
        // The second load takes the same parameters.
        assert!(s.contains("harness_step 'insmod#2' harness_insmod /harness/hello.ko hello 'count=3'\n"), "{s}");
        assert!(s.contains("harness_step 'census#2' harness_census again\n"), "{s}");
        assert!(s.contains("harness_step app harness_run \"app /dev/x 'a b'\"\n"), "{s}");
        assert!(s.contains("    harness_leaks\n    harness_done\n}\n"), "{s}");
        // --coverage: the counters are sent after every step, the modules
        // unloaded (their counters kept, both loads added up).
        let s = script(&Plan { coverage: true, ..p.clone() }, "/harness");
        assert!(s.contains("    harness_leaks\n    harness_coverage\n    harness_done\n}\n"), "{s}");
        // reload = false: one load; the census still brackets it.
        let once = plan(&[m("hello")], &exp("reload=false\n[[step]]\nname='app'\nrun='app'\n")).unwrap();
        assert_eq!(once.names(), ["census", "insmod", "app", "rmmod", "gone", "census#2", "leaks"]);
        assert!(!s.contains("harness_shell"), "{s}");
        // --shell: the shell comes after the last command, before the unload.
        let s = script(&Plan { shell: true, ..p }, "/harness");
        assert!(s.contains("harness_run \"app /dev/x 'a b'\"\n    harness_shell\n    harness_step rmmod "), "{s}");
    }

    /// `[board] stock-drivers`: said to the virtual board before each
    /// unit's first step, and only where the plan loads it (a real board
    /// has its own drivers).
    #[test]
    fn the_stock_drivers_are_set_before_each_units_first_step() {
        let p = plan(&[m("led")], &exp("[board]\nstock-drivers = true\n")).unwrap();
        assert!(!script(&p, "/harness").contains("harness_board_stock"), "no virtual board, no setting");
        let guest = Plan { board: Some("/harness/board/tiny4412_board.ko".into()), ..p.clone() };
        let s = script(&guest, "/harness");
        assert!(
            s.contains(
                "harness_board_load /harness/board/tiny4412_board.ko\n    harness_board_stock on\n    \
            harness_step census "
            ),
            "{s}"
        );
        assert_eq!(s.matches("harness_board_stock").count(), 1, "{s}");
        // Two units: each one's own, before its first step.
        let mut steps = Vec::new();
        for u in ["a", "b"] {
            steps.extend(p.steps.iter().filter(|s| s.action != Action::Leaks).cloned().map(|mut s| {
                s.unit = Some(u.into());
                s
            }));
        }
        let two = Plan {
            steps: steps.clone(),
            stock: vec![(Some("a".into()), false), (Some("b".into()), true)],
            ..guest.clone()
        };
        let s = script(&two, "/harness");
        assert!(
            s.contains("harness_board_load /harness/board/tiny4412_board.ko\n    harness_step a/census "),
            "off is how the board loads: {s}"
        );
        assert!(s.contains("harness_board_stock on\n    harness_step b/census harness_census first\n"), "{s}");
        assert_eq!(s.matches("harness_board_stock").count(), 1, "{s}");
        let back = Plan { steps, stock: vec![(Some("a".into()), true), (Some("b".into()), false)], ..guest };
        let s = script(&back, "/harness");
        assert!(s.contains("harness_board_stock on\n    harness_step a/census "), "{s}");
        assert!(s.contains("harness_board_stock off\n    harness_step b/census "), "{s}");
    }

    #[test]
    fn a_module_already_on_the_board_is_loaded_from_its_own_path() {
        let on_board = PlanModule { name: "mmc_byte".into(), file: "/root/mmc_byte.ko".into() };
        let s = script(&plan(&[on_board], &Expectations::defaults()).unwrap(), "/tmp");
        assert!(s.contains("harness_insmod /root/mmc_byte.ko mmc_byte"), "{s}");
    }

    #[test]
    fn several_modules_load_in_order_and_unload_in_reverse() {
        let e = exp("[[step]]\nname='use'\nrun='cat \
            /proc/x'\n[[step]]\nname='rmmod:b'\n[[step]]\nname='after'\nrun='ls /dev'\n");
        let p = plan(&[m("a"), m("b")], &e).unwrap();
        assert_eq!(
            p.names(),
            [
                "census",
                "insmod:a",
                "insmod:b",
                "use",
                "rmmod:b",
                "rmmod:a",
                "gone:b",
                "gone:a",
                "after",
                "insmod#2:a",
                "insmod#2:b",
                "rmmod#2:b",
                "rmmod#2:a",
                "gone#2:b",
                "gone#2:a",
                "census#2",
                "leaks"
            ]
        );
        assert_eq!(p.modules(), ["a", "b"]);
    }

    #[test]
    fn step_names_must_fit_the_modules() {
        let err = |text: &str, mods: &[PlanModule]| plan(mods, &exp(text)).unwrap_err().to_string();
        assert!(err("[[step]]\nname='insmod:c'\n", &[m("a"), m("b")]).contains("no module \"c\" is loaded"));
        assert!(err("[[step]]\nname='insmod:a'\n", &[m("a")]).contains("name the step \"insmod\""));
        assert!(err("[[step]]\nname='insmod'\nargs='x=1'\n", &[m("a"), m("b")]).contains("insmod:a, insmod:b"));
        assert!(plan(&[], &Expectations::defaults()).is_err());
        // The second round's own entries: only insmod's, rmmod's and gone's, and only when there is one.
        assert!(plan(&[m("a")], &exp("[[step]]\nname='insmod#2'\nexit=1\n")).is_ok());
        assert!(err("reload=false\n[[step]]\nname='insmod#2'\n", &[m("a")]).contains("only with a second load"));
        assert!(err("[[step]]\nname='insmod#3'\n", &[m("a")]).contains("the second round"));
        assert!(err("[[step]]\nname='leaks#2'\n", &[m("a")]).contains("the second round"));
    }

    /// Runs `scenario` (a generated script) under the host's sh with the
    /// real rootfs/steps.sh in `dir`, with `stubs` (name, sh body) first on
    /// PATH, and returns what its markers say.
    fn run_under_sh(dir: &std::path::Path, scenario: &str, stubs: &[(&str, &str)]) -> crate::judge::step::Transcript {
        run_under_sh_with(dir, scenario, stubs, &[])
    }

    /// [`run_under_sh`], with more variables in the environment.
    fn run_under_sh_with(
        dir: &std::path::Path,
        scenario: &str,
        stubs: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> crate::judge::step::Transcript {
        let (t, status, stderr) = run_scenario(dir, scenario, stubs, env);
        assert!(status.success(), "{stderr}");
        t
    }

    /// [`run_under_sh_with`], whatever the scenario's shell ends with: its
    /// markers, its status and its stderr.
    fn run_scenario(
        dir: &std::path::Path,
        scenario: &str,
        stubs: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> (crate::judge::step::Transcript, std::process::ExitStatus, String) {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for (name, body) in stubs {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(bin.join(name), format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = dir.join("scenario.sh");
        std::fs::write(&path, scenario).unwrap();
        let kmsg = dir.join("kmsg");
        let nonce = crate::prepare::new_nonce();
        let mut cmd = duct::cmd!("sh", "-c", ". \"$STEPS\"; . \"$SCENARIO\"; harness_scenario");
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        let out = cmd
            .env("STEPS", crate::repo_root().join("rootfs/steps.sh"))
            .env("SCENARIO", &path)
            .env("HARNESS_NONCE", &nonce)
            .env("HARNESS_KMSG", &kmsg)
            .env("HARNESS_TMP", dir)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .unwrap();
        let t = crate::judge::step::Transcript::from_log(&std::fs::read_to_string(&kmsg).unwrap(), &nonce);
        (t, out.status, String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// A wait step reports its background program's lines as they come: a
    /// guest stopped mid-wait (the step timeout kills it; here the program
    /// kills the scenario's shell) has the lines printed by then in the
    /// step, not none; a line not finished is kept until it is, and a
    /// program that ends has its last one.
    #[test]
    fn a_wait_step_reports_its_programs_lines_before_the_program_ends() {
        let dir = tempfile::tempdir().unwrap();
        let e = exp("[[step]]\nname='app'\nrun='echo tick 1; sleep 0.3; printf \"tick \"; sleep 0.3; echo 2; \
             sleep 0.5; kill -9 $PPID'\nbackground=true\n[[step]]\nname='collect'\nwait='app'\n");
        let p = plan(&[m("hello")], &e).unwrap();
        let stubs = [("insmod", "true"), ("rmmod", "true")];
        let (t, status, _) = run_scenario(dir.path(), &script(&p, "/harness"), &stubs, &[]);
        assert!(!status.success(), "the scenario's shell was killed mid-wait");
        let collect = t.step("collect").unwrap();
        assert_eq!(collect.rc, None, "the step never ended");
        assert_eq!(t.output_lines(collect).collect::<Vec<_>>(), ["tick 1", "tick 2"]);
        // A program that ends: every line, the unfinished last one too.
        let dir = tempfile::tempdir().unwrap();
        let e = exp("[[step]]\nname='app'\nrun='echo a; sleep 0.3; printf b'\nbackground=true\n\
             [[step]]\nname='collect'\nwait='app'\n");
        let p = plan(&[m("hello")], &e).unwrap();
        let t = run_under_sh(dir.path(), &script(&p, "/harness"), &stubs);
        let collect = t.step("collect").unwrap();
        assert_eq!(collect.rc, Some(0));
        assert_eq!(t.output_lines(collect).collect::<Vec<_>>(), ["a", "b"]);
    }

    /// `until` and `stop` under the host's sh with the real step library: a
    /// step waits for a kernel line printed after its command ended, and
    /// says how long; one whose line never comes gives up at its bound; a
    /// stop step waits for its program's line, stops it, and says how.
    #[test]
    fn until_waits_for_a_late_line_and_stop_ends_an_endless_program() {
        let dir = tempfile::tempdir().unwrap();
        let e =
            exp("[[step]]\nname='app'\nrun='trap \"echo bye; exit 0\" TERM; while :; do echo tick; sleep 0.1; done'\n\
             background=true\n\
             [[step]]\nname='press'\nrun='(sleep 0.4; echo key down >> \"$HARNESS_KMSG\") &'\n\
             until={line='key down',within_ms=4000}\n\
             [[step]]\nname='nothing'\nrun='true'\nuntil={regex='^never',within_ms=300}\n\
             [[step]]\nname='collect'\nstop='app'\nuntil={output='app',line='tick'}\nstdout=[{line='tick'}]\n");
        let p = plan(&[m("hello")], &e).unwrap();
        let text = script(&p, "/harness");
        assert!(text.contains("harness_until_next line 4000 - 'key down'\n    harness_step press "), "{text}");
        assert!(text.contains("harness_until_next line 5000 app tick\n    harness_wait collect app stop\n"), "{text}");
        let dmesg = format!("cat {}", dir.path().join("kmsg").display());
        let t = run_under_sh_with(
            dir.path(),
            &text,
            &[("insmod", "exit 0"), ("rmmod", "exit 0")],
            &[("HARNESS_DMESG", &dmesg)],
        );
        let press = t.step("press").unwrap();
        let (seen, ms) = press.until.unwrap();
        assert!(seen && (300..4000).contains(&ms), "{press:?}");
        assert_eq!(t.kernel_lines(press).collect::<Vec<_>>(), ["key down"]);
        let (seen, ms) = t.step("nothing").unwrap().until.unwrap();
        assert!(!seen && ms >= 300, "{ms}");
        let collect = t.step("collect").unwrap();
        assert_eq!(collect.until.map(|u| u.0), Some(true));
        // The host's sh starts a background job with SIGINT ignored (the
        // programs the harness builds take it back): SIGTERM ends it.
        assert_eq!(collect.stopped, Some(crate::judge::marker::BackgroundEnd::Term));
        let out: Vec<&str> = t.output_lines(collect).collect();
        assert!(out.contains(&"tick") && out.last() == Some(&"bye"), "{out:?}");
        let checks = e.evaluate(&p.names(), &t);
        let failed: Vec<_> = checks.iter().filter(|c| !c.held).collect();
        assert_eq!(failed.len(), 1, "{failed:#?}");
        assert!(failed[0].description.contains("nothing sees regex /^never/"), "{failed:?}");
        let stop = checks.iter().find(|c| c.description == "collect stops app").unwrap();
        assert!(
            stop.detail.as_deref().unwrap().contains("ignored SIGINT and ended on SIGTERM; its last lines:"),
            "{stop:?}"
        );
    }

    /// A look at a process that is gone says nothing on the shell's stderr
    /// (which is the console in the guest, where a "can't open" split a
    /// marker line): the real step library under the host's sh.
    #[test]
    fn a_process_gone_is_looked_at_in_silence() {
        let out = duct::cmd!("sh", "-c", ". \"$STEPS\"; harness_alive 2147483646 || echo gone")
            .env("STEPS", crate::repo_root().join("rootfs/steps.sh"))
            .stdout_capture()
            .stderr_capture()
            .run()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "gone\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    }

    /// Input devices by name under the host's sh with the real step library
    /// (stand-ins for /sys and /dev): a command finds the node by the
    /// device's name, and once the device is gone the links, their folder
    /// and an emptied /dev/input go too (the census after the unload finds
    /// nothing the harness left).
    #[test]
    fn input_devices_are_linked_by_name_while_they_exist() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let ev = root.join("sys/class/input/event3/device");
        std::fs::create_dir_all(&ev).unwrap();
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::write(ev.join("name"), "tiny4412 buttons\n").unwrap();
        // `still`: the link `find` made is the same file a step later (a
        // hard link to it, made by `find`, is counted): a reader opening it
        // while a step begins never finds it gone and made again.
        let e = exp("[[step]]\nname='find'\nrun='readlink \"$HARNESS_ROOT/dev/input/by-name/tiny4412_buttons\" && \
             ln -P \"$HARNESS_ROOT/dev/input/by-name/tiny4412_buttons\" \"$HARNESS_TMP/held\"'\n\
             stdout=[{line='../event3'}]\n\
             [[step]]\nname='still'\nrun='stat -c %h \"$HARNESS_ROOT/dev/input/by-name/tiny4412_buttons\"'\n\
             stdout=[{line='2'}]\n\
             [[step]]\nname='unplug'\nrun='rm -r \"$HARNESS_ROOT/sys/class/input/event3\"'\n\
             [[step]]\nname='after'\nrun='ls -A \"$HARNESS_ROOT/dev\"; echo listed'\nstdout=[{line='listed'}]\n");
        let p = plan(&[m("hello")], &e).unwrap();
        let text = script(&p, "/harness");
        assert!(text.contains("    HARNESS_BY_NAME=1\n"), "{text}");
        let root_s = root.display().to_string();
        let t = run_under_sh_with(
            dir.path(),
            &text,
            &[("insmod", "exit 0"), ("rmmod", "exit 0")],
            &[("HARNESS_ROOT", &root_s)],
        );
        assert_eq!(t.output_lines(t.step("find").unwrap()).collect::<Vec<_>>(), ["../event3"]);
        assert_eq!(t.output_lines(t.step("still").unwrap()).collect::<Vec<_>>(), ["2"]);
        assert_eq!(t.output_lines(t.step("after").unwrap()).collect::<Vec<_>>(), ["listed"]);
        assert!(!root.join("dev/input").exists());
        // A run that names no device by name looks at none.
        let plain = script(&plan(&[m("hello")], &exp("[[step]]\nname='a'\nrun='ls /dev/input'\n")).unwrap(), "/h");
        assert!(!plain.contains("HARNESS_BY_NAME"), "{plain}");
    }

    /// A background step and the step that waits for it, under the host's
    /// sh with the real step library: the background step ends at once, the
    /// steps between run while its command waits, and the wait step carries
    /// the command's output and exit status.
    #[test]
    fn a_background_step_runs_while_later_steps_do_and_its_wait_step_has_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let e = exp(
            "[[step]]\nname='reader'\nrun='while [ ! -e \"$HARNESS_TMP/go\" ]; do sleep 0.1; done; echo woke; exit \
                3'\nbackground=true\n\
             [[step]]\nname='writer'\nrun='touch \"$HARNESS_TMP/go\"; echo wrote'\n\
             [[step]]\nname='collect'\nwait='reader'\nexit=3\nstdout=[{line='woke'}]\n",
        );
        let p = plan(&[m("hello")], &e).unwrap();
        assert_eq!(
            p.names(),
            [
                "census", "insmod", "reader", "writer", "collect", "rmmod", "gone", "insmod#2", "rmmod#2", "gone#2",
                "census#2", "leaks"
            ]
        );
        let text = script(&p, "/harness");
        assert!(text.contains("harness_start reader reader harness_run "), "{text}");
        assert!(text.contains("harness_wait collect reader\n"), "{text}");
        // Stand-ins for insmod and rmmod (the host's would need root).
        let t = run_under_sh(dir.path(), &text, &[("insmod", "exit 0"), ("rmmod", "exit 0")]);
        assert!(t.done);
        let names: Vec<&str> = t.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "census", "insmod", "reader", "writer", "collect", "rmmod", "gone", "insmod#2", "rmmod#2", "gone#2",
                "census#2"
            ]
        );
        assert_eq!(t.step("reader").unwrap().rc, Some(0), "the background step ends as its command starts");
        assert_eq!(t.output_lines(t.step("writer").unwrap()).collect::<Vec<_>>(), ["wrote"]);
        let collect = t.step("collect").unwrap();
        assert_eq!((collect.rc, t.output_lines(collect).collect::<Vec<_>>()), (Some(3), vec!["woke"]));
        let checks = e.evaluate(&["reader".into(), "writer".into(), "collect".into()], &t);
        assert!(checks.iter().all(|c| c.held), "{checks:?}");
        // A unit's background key is its step id as one word.
        assert_eq!(background_key(&StepId::new(Some("poll"), "reader")), "poll.reader");
    }

    /// A kmemleak that is off refuses the scan: the leaks step fails and
    /// says so, rather than pass having scanned nothing.
    #[test]
    fn a_leaks_step_whose_kmemleak_refuses_the_scan_fails() {
        let dir = tempfile::tempdir().unwrap();
        // A directory: there, but no write reaches it (as kmemleak=off's
        // file refuses one).
        std::fs::create_dir(dir.path().join("kmemleak")).unwrap();
        let scenario = "HARNESS_KMEMLEAK=$HARNESS_TMP/kmemleak\nharness_scenario() { harness_leaks; harness_done; }\n";
        let t = run_under_sh(dir.path(), scenario, &[]);
        let leaks = t.step("leaks").expect("the leaks step ran");
        assert_eq!(leaks.rc, Some(1));
        assert!(
            t.output_lines(leaks).any(|l| l == "kmemleak is off (see the boot log): no leak scan"),
            "{:?}",
            t.output_lines(leaks).collect::<Vec<_>>()
        );
    }

    /// `harness_coverage` under the host's sh with the real step library:
    /// each .gcda of a stand-in gcov directory reaches the judge whole, one
    /// over the bound is named and not sent, and no directory is said.
    #[test]
    fn the_coverage_files_reach_the_judge_whole_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("gcov/run/module");
        std::fs::create_dir_all(module.join("sub")).unwrap();
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(module.join("covmisc.gcda"), &data).unwrap();
        std::fs::write(module.join("sub/big.gcda"), vec![7u8; 9000]).unwrap();
        std::fs::write(module.join("covmisc.gcno"), b"not sent").unwrap();
        let scenario = "harness_scenario() { harness_coverage; harness_done; }\n";
        let gcov = dir.path().join("gcov");
        let env = [("HARNESS_GCOV", gcov.to_str().unwrap()), ("HARNESS_GCDA_MAX", "8192")];
        let t = run_under_sh_with(dir.path(), scenario, &[], &env);
        assert_eq!(t.gcov.files.len(), 1, "{:?}", t.gcov.refused);
        assert_eq!((t.gcov.files[0].path.as_str(), &t.gcov.files[0].data), ("/run/module/covmisc.gcda", &data));
        assert_eq!(
            t.gcov.refused,
            ["/run/module/sub/big.gcda: the guest did not send it (9000 bytes, over its bound)"]
        );
        assert!(t.done && !t.gcov.no_gcov);

        let none = [("HARNESS_GCOV", "/nonexistent/gcov")];
        let t = run_under_sh_with(dir.path(), scenario, &[], &none);
        assert!(t.gcov.no_gcov && t.gcov.files.is_empty());
    }

    /// The census under the host's sh with the real step library, on a
    /// stand-in /proc, /sys and /dev: what the module's stand-in insmod
    /// registers and its rmmod leaves is named by the judge, and what
    /// merely changes (an interrupt's count) or is taken back (its handler)
    /// is not; a module that takes back all it registered leaves nothing.
    /// Both ways the guest takes it: the shell's functions and cmp (a
    /// board), and the compiled census comparing itself (QEMU).
    #[test]
    fn the_census_names_what_a_module_left_behind() {
        let tools = tempfile::tempdir().unwrap();
        let compiled = crate::loader::host_census(tools.path());
        for census in [None, Some(compiled.to_string_lossy().into_owned())] {
            census_names_what_a_module_left_behind(census.as_deref());
        }
    }

    fn census_names_what_a_module_left_behind(census: Option<&str>) {
        let compiled = census.is_some();
        let insmod = "cd \"$HARNESS_ROOT\" && echo '250 wait_queue' >> proc/devices && mkdir -p sys/class/led \
            sys/class/input/input0 \
            && echo 'tiny4412 keys' > sys/class/input/input0/name && touch dev/led0 \
            && printf ' 29: 7 9 GIC-0 29 Level twd\\n416: 1 0 tiny4412-board 26 Edge K1\\n' > proc/interrupts";
        let leaves = "cd \"$HARNESS_ROOT\" && printf ' 29: 70 90 GIC-0 29 Level twd\\n' > proc/interrupts";
        let cleans =
            "cd \"$HARNESS_ROOT\" && rm -r sys/class/led sys/class/input/input0 dev/led0 && cp devices proc/devices \
            && printf ' 29: 70 90 GIC-0 29 Level twd\\n' > proc/interrupts";
        // The input device by the name the guest read while hello was loaded.
        let named = "4 left: major 250 \"wait_queue\" in /proc/devices; class \"led\"; device \"input0\" of \
            class \"input\": \"tiny4412 keys\", which hello registered; /dev/led0";
        for (rmmod, left) in [(leaves, Some(named)), (cleans, None)] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            for d in ["proc", "sys/class/tty/tty0", "sys/class/input", "dev"] {
                std::fs::create_dir_all(root.join(d)).unwrap();
            }
            let devices = "Block devices:\n259 blkext\n\nCharacter devices:\n  1 mem\n";
            std::fs::write(root.join("proc/devices"), devices).unwrap();
            std::fs::write(root.join("devices"), devices).unwrap();
            std::fs::write(
                root.join("proc/interrupts"),
                "           CPU0       CPU1\n 29:  1  2  GIC-0  29 Level  twd\n",
            )
            .unwrap();
            let p = plan(&[m("hello")], &Expectations::defaults()).unwrap();
            let scenario = format!("export HARNESS_ROOT={}\n{}", root.display(), script(&p, "/harness"));
            let env: Vec<(&str, &str)> = census.map(|c| ("HARNESS_CENSUS", c)).into_iter().collect();
            let t = run_under_sh_with(dir.path(), &scenario, &[("insmod", insmod), ("rmmod", rmmod)], &env);
            let checks = Expectations::defaults().evaluate(&p.names(), &t);
            let census = checks
                .iter()
                .find(|c| c.description == "nothing left behind after rmmod")
                .expect("the census is judged");
            assert_eq!(census.step, "census#2");
            // Neither twd's new count nor the handler taken back is named.
            assert_eq!(census.detail.as_deref(), left, "{census:?} (compiled: {compiled})");
            assert_eq!(census.held, left.is_none());
        }
    }

    /// No second round after an oops in the first (the kernel tainted D
    /// since the unit's census), and none of the round's steps after one in
    /// its own failed step; the taint, a fork to read, is read once a round
    /// otherwise (each step of it paid one).
    #[test]
    fn the_second_round_follows_the_taint_read_once() {
        // insmod N oopses on the Nth load: taints D and dies as the kernel kills it.
        let insmod = |oops_at: u32| {
            format!(
                "n=$(($(cat \"$HARNESS_TMP/loads\" 2>/dev/null || echo 0) + 1)); echo $n > \"$HARNESS_TMP/loads\"; \
                 [ $n -eq {oops_at} ] && echo 128 > \"$HARNESS_ROOT/proc/sys/kernel/tainted\" && exit 139; exit 0"
            )
        };
        // Each read of the taint, counted.
        let cat = "case \"$1\" in *kernel/tainted) echo x >> \"$HARNESS_TMP/taint-reads\";; esac; exec /bin/cat \"$@\"";
        let cases: [(u32, &[&str], usize); 3] = [
            (1, &["census", "insmod", "rmmod", "gone"], 2),
            (2, &["census", "insmod", "rmmod", "gone", "insmod#2"], 3),
            (9, &["census", "insmod", "rmmod", "gone", "insmod#2", "rmmod#2", "gone#2", "census#2"], 2),
        ];
        for (oops_at, ran, reads) in cases {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            std::fs::create_dir_all(root.join("proc/sys/kernel")).unwrap();
            std::fs::create_dir_all(root.join("sys/class")).unwrap();
            std::fs::write(root.join("proc/sys/kernel/tainted"), "4096\n").unwrap();
            let p = plan(&[m("hello")], &Expectations::defaults()).unwrap();
            let scenario = format!("export HARNESS_ROOT={}\n{}", root.display(), script(&p, "/harness"));
            let stubs = [("insmod", insmod(oops_at)), ("rmmod", "exit 0".to_string()), ("cat", cat.to_string())];
            let stubs: Vec<(&str, &str)> = stubs.iter().map(|(n, b)| (*n, b.as_str())).collect();
            let t = run_under_sh(dir.path(), &scenario, &stubs);
            let names: Vec<&str> = t.steps.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ran, "an oops at load {oops_at}");
            let counted = std::fs::read_to_string(dir.path().join("taint-reads")).unwrap_or_default();
            assert_eq!(counted.lines().count(), reads, "reads of the taint, an oops at load {oops_at}");
        }
    }

    /// Units sharing a boot: the second unit's first census is the first
    /// unit's last (nothing runs between), so what the first left behind is
    /// the first's alone.
    #[test]
    fn a_units_leftovers_are_not_the_next_units() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        for d in ["proc", "sys/class", "dev"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("proc/devices"), "Character devices:\n  1 mem\n").unwrap();
        std::fs::write(root.join("proc/interrupts"), "").unwrap();
        let mut steps = Vec::new();
        for unit in ["a", "b"] {
            for mut st in plan(&[m("hello")], &Expectations::defaults())
                .unwrap()
                .steps
                .into_iter()
                .filter(|s| s.action != Action::Leaks)
            {
                st.unit = Some(unit.to_string());
                steps.push(st);
            }
        }
        let p = Plan { steps, shell: false, shell_on_failure: false, board: None, stock: Vec::new(), coverage: false };
        let text = script(&p, "/harness");
        assert!(text.contains("harness_step b/census harness_census first reuse\n"), "{text}");
        assert!(text.contains("harness_step a/census harness_census first\n"), "{text}");
        // Each insmod adds a class (the second load's is there already).
        let insmod = "mkdir -p \"$HARNESS_ROOT/sys/class/led\"";
        let scenario = format!("export HARNESS_ROOT={}\n{text}", root.display());
        let t = run_under_sh(dir.path(), &scenario, &[("insmod", insmod), ("rmmod", "exit 0")]);
        let planned: Vec<String> = p.steps.iter().map(|s| s.name.clone()).collect();
        let census = |unit: &str| {
            let view = t.unit_view(unit, 0, t.lines.len());
            let checks = Expectations::defaults().evaluate(&planned[..planned.len() / 2], &view);
            checks.into_iter().find(|c| c.description == "nothing left behind after rmmod").unwrap()
        };
        assert_eq!(census("a").detail.as_deref(), Some("1 left: class \"led\""));
        assert!(census("b").held, "{:?}", census("b"));
    }

    /// A `reload` step mid-scenario, under the host's sh with the real step
    /// library: the unit's modules unloaded last first and loaded again in
    /// order, in the step's own output; the first failure ends the step
    /// with its status; new parameters for one module; the module stays
    /// loaded (the scenario's own rmmod and gone come after it).
    #[test]
    fn a_reload_step_unloads_and_loads_again_mid_scenario() {
        let e = exp("[[step]]\nname='app'\nrun='true'\n[[step]]\nname='again'\nreload=true\n");
        let p = plan(&[m("a"), m("b")], &e).unwrap();
        let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(&names[..7], ["census", "insmod:a", "insmod:b", "app", "again", "rmmod:b", "rmmod:a"]);
        let s = script(&p, "/harness");
        assert!(s.contains("harness_step again harness_reload '' /harness/a.ko a /harness/b.ko b\n"), "{s}");
        let dir = tempfile::tempdir().unwrap();
        let stubs = [("insmod", "echo \"insmod $*\""), ("rmmod", "echo \"rmmod $*\"")];
        let t = run_under_sh(dir.path(), &s, &stubs);
        let again = t.step("again").unwrap();
        assert_eq!(again.rc, Some(0));
        assert_eq!(
            t.output_lines(again).collect::<Vec<_>>(),
            ["rmmod b", "rmmod a", "insmod /harness/a.ko", "insmod /harness/b.ko"]
        );
        // An rmmod that fails: nothing is loaded again, the step has its status.
        let dir = tempfile::tempdir().unwrap();
        let stubs = [("insmod", "echo \"insmod $*\""), ("rmmod", "echo \"rmmod: can't unload '$1'\"; exit 3")];
        let t = run_under_sh(dir.path(), &s, &stubs);
        let again = t.step("again").unwrap();
        assert_eq!(again.rc, Some(3));
        assert_eq!(t.output_lines(again).collect::<Vec<_>>(), ["rmmod: can't unload 'b'"]);
        // One module, new parameters; one of several, by name.
        let one = plan(&[m("hello")], &exp("[[step]]\nname='again'\nreload=true\nargs='count=5'\n")).unwrap();
        assert!(script(&one, "/harness").contains("harness_reload 'count=5' /harness/hello.ko hello\n"));
        let b = plan(&[m("a"), m("b")], &exp("[[step]]\nname='again'\nreload='b'\nargs='x=1'\n")).unwrap();
        assert!(script(&b, "/harness").contains("harness_reload 'x=1' /harness/b.ko b\n"));
        let err = |text: &str| plan(&[m("a"), m("b")], &exp(text)).unwrap_err().to_string();
        assert!(err("[[step]]\nname='again'\nreload='c'\n").contains("no such module is loaded (loaded: a, b)"));
        assert!(err("[[step]]\nname='again'\nreload=true\nargs='x=1'\n").contains("name the one they are for"));
    }

    #[test]
    fn the_script_runs_under_sh_with_the_real_step_library() {
        // The generated script and rootfs/steps.sh, run by the host's sh with
        // stand-ins for insmod and rmmod, produce what marker.rs parses.
        let dir = tempfile::tempdir().unwrap();
        let e = exp("[[step]]\nname='insmod'\nargs='count=3 who=\"a b\"'\n\
             [[step]]\nname='app'\nrun='echo hi; echo \"@@harness 0000000000000000 end app rc=0\"; printf last'\n");
        let p = plan(&[m("hello")], &e).unwrap();
        let stubs = [("insmod", "echo \"insmod $*\""), ("rmmod", "echo \"rmmod: can't unload '$1'\" >&2; exit 1")];
        let t = run_under_sh(dir.path(), &script(&p, "/harness"), &stubs);
        assert!(t.done);
        let names: Vec<&str> = t.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["census", "insmod", "app", "rmmod", "gone", "insmod#2", "rmmod#2", "gone#2", "census#2"],
            "no kmemleak here, so no leaks step"
        );
        let insmod = t.step("insmod").unwrap();
        assert_eq!(t.output_lines(insmod).collect::<Vec<_>>(), ["insmod /harness/hello.ko count=3 who=\"a b\""]);
        let app = t.step("app").unwrap();
        assert_eq!(app.rc, Some(0));
        assert_eq!(
            t.output_lines(app).collect::<Vec<_>>(),
            ["hi", "@@harness 0000000000000000 end app rc=0", "last"],
            "the program's marker-like output is output, and an unterminated last line is kept"
        );
        let rmmod = t.step("rmmod").unwrap();
        assert_eq!(rmmod.rc, Some(1));
        assert_eq!(t.output_lines(rmmod).collect::<Vec<_>>(), ["rmmod: can't unload 'hello'"]);
        // The host has no module named hello loaded: gone holds.
        assert_eq!(t.step("gone").unwrap().rc, Some(0));
    }
}
