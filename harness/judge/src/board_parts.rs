//! The virtual Tiny4412's parts as steps see them: what a step may do to the
//! board (press, release or click a button, set an ADC input), what it may
//! check (`board = { LED1 = "on" }`), and the board's changes as the guest
//! reports them (a `board` marker each). The parts and their states are the
//! model's (`compat35/board/tiny4412_board.c`, its `state` file).

use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// The buttons.
const KEYS: &[&str] = &["K1", "K2", "K3", "K4"];
/// The ADC's inputs (AIN0 is the board's potentiometer).
const INPUTS: &[&str] = &["AIN0", "AIN1", "AIN2", "AIN3"];
/// The parts a `board` step may check, and the states each may be in.
const PARTS: &[(&str, &[&str])] = &[
    ("LED1", &["on", "off"]),
    ("LED2", &["on", "off"]),
    ("LED3", &["on", "off"]),
    ("LED4", &["on", "off"]),
    ("buzzer", &["on", "off", "pwm"]),
    ("K1", &["pressed", "released"]),
    ("K2", &["pressed", "released"]),
    ("K3", &["pressed", "released"]),
    ("K4", &["pressed", "released"]),
    ("watchdog", &["on", "off"]),
];
/// The longest click: a button held longer is a press and a release.
const MAX_HOLD_MS: u32 = 10_000;
/// A click's hold when the step gives none (a finger's quick press).
const DEFAULT_HOLD_MS: u32 = 100;

/// What a board step does, or checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardStep {
    /// A line for the model's control file: `press K1`, `click K1 100`,
    /// `adc AIN0 1234`, one per action, in this order.
    Act(Vec<String>),
    /// The parts' wanted states (sorted by part).
    Check(Vec<(String, String)>),
}

/// A board step's keys as the expectations file has them.
#[derive(Debug, Clone, Default)]
pub struct BoardKeys<'a> {
    pub press: Option<&'a str>,
    pub release: Option<&'a str>,
    pub click: Option<&'a str>,
    pub hold_ms: Option<u32>,
    pub adc: Option<&'a BTreeMap<String, u32>>,
    pub board: Option<&'a BTreeMap<String, String>>,
}

impl BoardKeys<'_> {
    fn any(&self) -> bool {
        self.press.is_some()
            || self.release.is_some()
            || self.click.is_some()
            || self.hold_ms.is_some()
            || self.adc.is_some()
            || self.board.is_some()
    }
}

fn key(k: &str, field: &str) -> Result<String> {
    if KEYS.contains(&k) {
        Ok(k.to_string())
    } else {
        bail!("{field} = {k:?}: the board's buttons are {}", KEYS.join(", "))
    }
}

/// The board step these keys make, if any (`None`: not a board step).
pub fn step(k: &BoardKeys) -> Result<Option<BoardStep>> {
    if !k.any() {
        return Ok(None);
    }
    if k.board.is_some() && (k.press.is_some() || k.release.is_some() || k.click.is_some() || k.adc.is_some()) {
        bail!("a step either acts on the board or checks it: put `board` in a step of its own");
    }
    if k.hold_ms.is_some() && k.click.is_none() {
        bail!("`hold_ms` is how long a `click` holds the button");
    }
    if let Some(want) = k.board {
        if want.is_empty() {
            bail!("board = {{}}: name a part and its state, e.g. board = {{ LED1 = \"on\" }}");
        }
        let mut checks = Vec::new();
        for (part, state) in want {
            let Some((_, states)) = PARTS.iter().find(|(p, _)| p == part) else {
                bail!(
                    "board: no part {part:?}; the parts are {}",
                    PARTS.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", ")
                );
            };
            if !states.contains(&state.as_str()) {
                bail!("board: {part} = {state:?}: {part} is {}", states.join(" or "));
            }
            checks.push((part.clone(), state.clone()));
        }
        return Ok(Some(BoardStep::Check(checks)));
    }
    let mut acts = Vec::new();
    if let Some(p) = k.press {
        acts.push(format!("press {}", key(p, "press")?));
    }
    if let Some(c) = k.click {
        let hold = k.hold_ms.unwrap_or(DEFAULT_HOLD_MS);
        if hold > MAX_HOLD_MS {
            bail!("hold_ms = {hold}: at most {MAX_HOLD_MS} (for longer, press and release in steps of their own)");
        }
        acts.push(format!("click {} {hold}", key(c, "click")?));
    }
    if let Some(r) = k.release {
        acts.push(format!("release {}", key(r, "release")?));
    }
    for (input, value) in k.adc.into_iter().flatten() {
        if !INPUTS.contains(&input.as_str()) {
            bail!("adc: no input {input:?}; the ADC's are {}", INPUTS.join(", "));
        }
        if *value > 4095 {
            bail!("adc: {input} = {value}: a 12-bit conversion is 0..4095");
        }
        acts.push(format!("adc {input} {value}"));
    }
    if acts.is_empty() {
        bail!("adc = {{}}: name an input and its value, e.g. adc = {{ AIN0 = 1234 }}");
    }
    Ok(Some(BoardStep::Act(acts)))
}

/// What a `board` check finds in the model's state (the step's output,
/// `PART STATE` a line): for each part, the state it has, when it is
/// not the wanted one.
pub fn differences(want: &[(String, String)], output: &[&str]) -> Vec<String> {
    let state = |part: &str| output.iter().find_map(|l| l.trim().strip_prefix(part)?.strip_prefix(' ').map(str::trim));
    want.iter()
        .filter_map(|(part, wanted)| match state(part) {
            Some(s) if s == wanted => None,
            Some(s) => Some(format!("{part} is {s}, not {wanted}")),
            None => Some(format!("the board did not say what {part} is (is the virtual board loaded?)")),
        })
        .collect()
}

/// Whether a change of an interrupt line's state says the board raised it
/// and every handler returned IRQ_NONE (compat35/board's `handled()`).
pub fn unhandled(state: &str) -> bool {
    state.starts_with("unhandled")
}

/// One change of the board's state, as the guest reported it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoardChange {
    /// The kernel clock's seconds (printk's).
    pub at: f64,
    /// `LED1`, `buzzer`, `K1`, `AIN0`, `XEINT26`, `watchdog`.
    pub part: String,
    pub state: String,
    /// The step that was running when it was reported, and the seconds
    /// into it when it happened.
    pub step: Option<String>,
    pub into_step: Option<f64>,
}

impl fmt::Display for BoardChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.part, self.state)?;
        match (&self.step, self.into_step) {
            (Some(s), Some(t)) => write!(f, " at {:.2} s of step {s}", t.max(0.0)),
            (Some(s), None) => write!(f, " in step {s}"),
            _ => write!(f, " at {:.2} s", self.at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts, buttons, inputs and states here are the model's: the
    /// writer of its `state` file (`state_show` in
    /// compat35/board/tiny4412_board.c) writes each part's line with every
    /// state it may be in, and no part this table lacks.
    #[test]
    fn the_parts_and_states_are_the_models() {
        const MODEL: &str = include_str!("../../../compat35/board/tiny4412_board.c");
        let start = MODEL.find("static int state_show(").expect("the model's state_show");
        let body = &MODEL[start..start + MODEL[start..].find("\n}\n").unwrap()];
        // Each part's line, by its name as written ("LED%d", "buzzer").
        let lines: BTreeMap<&str, &str> = body
            .lines()
            .filter_map(|l| l.split_once("seq_printf(s, \"").map(|(_, rest)| (rest.split(' ').next().unwrap(), l)))
            .collect();
        let written = |name: &str| {
            let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
            if stem.len() < name.len() {
                format!("{stem}%d")
            } else {
                name.to_string()
            }
        };
        for (part, states) in PARTS {
            let line = lines.get(written(part).as_str()).unwrap_or_else(|| panic!("the model writes no {part}"));
            for state in *states {
                assert!(line.contains(&format!("\"{state}\"")), "the model never writes {part} {state}: {line}");
            }
        }
        for name in KEYS.iter().chain(INPUTS) {
            assert!(lines.contains_key(written(name).as_str()), "the model writes no {name}");
        }
        for name in lines.keys() {
            let known = PARTS.iter().map(|(p, _)| p).chain(INPUTS).any(|p| written(p) == *name);
            assert!(known, "the model writes {name}, which this table lacks");
        }
    }

    fn map<V: Clone>(pairs: &[(&str, V)]) -> BTreeMap<String, V> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn actions_become_control_lines_and_mistakes_name_the_fix() {
        let click = BoardKeys { click: Some("K1"), hold_ms: Some(250), ..Default::default() };
        assert_eq!(step(&click).unwrap(), Some(BoardStep::Act(vec!["click K1 250".into()])));
        let press = BoardKeys { press: Some("K2"), ..Default::default() };
        assert_eq!(step(&press).unwrap(), Some(BoardStep::Act(vec!["press K2".into()])));
        let adc = map(&[("AIN0", 1234u32)]);
        assert_eq!(
            step(&BoardKeys { adc: Some(&adc), ..Default::default() }).unwrap(),
            Some(BoardStep::Act(vec!["adc AIN0 1234".into()]))
        );
        assert_eq!(step(&BoardKeys::default()).unwrap(), None);
        let err = |k: BoardKeys| step(&k).unwrap_err().to_string();
        assert!(err(BoardKeys { press: Some("K5"), ..Default::default() }).contains("buttons are K1, K2, K3, K4"));
        assert!(err(BoardKeys { hold_ms: Some(5), ..Default::default() }).contains("how long a `click`"));
        assert!(
            err(BoardKeys { click: Some("K1"), hold_ms: Some(20_000), ..Default::default() }).contains("at most 10000")
        );
        let bad = map(&[("AIN7", 1u32)]);
        assert!(err(BoardKeys { adc: Some(&bad), ..Default::default() }).contains("no input \"AIN7\""));
        let big = map(&[("AIN0", 5000u32)]);
        assert!(err(BoardKeys { adc: Some(&big), ..Default::default() }).contains("0..4095"));
        let led = map(&[("LED1", "lit".to_string())]);
        assert!(err(BoardKeys { board: Some(&led), ..Default::default() }).contains("LED1 is on or off"));
        let nope = map(&[("LED9", "on".to_string())]);
        assert!(err(BoardKeys { board: Some(&nope), ..Default::default() }).contains("no part \"LED9\""));
        let ok = map(&[("LED1", "on".to_string())]);
        assert!(
            err(BoardKeys { board: Some(&ok), press: Some("K1"), ..Default::default() }).contains("a step of its own")
        );
    }

    #[test]
    fn a_check_names_each_part_in_the_wrong_state() {
        let want = vec![
            ("LED1".to_string(), "on".to_string()),
            ("LED2".to_string(), "off".to_string()),
            ("buzzer".to_string(), "off".to_string()),
        ];
        let state = ["LED1 off", "LED2 off", "LED3 off"];
        assert_eq!(
            differences(&want, &state),
            ["LED1 is off, not on", "the board did not say what buzzer is (is the virtual board loaded?)"]
        );
        assert!(differences(&want[1..2], &state).is_empty());
    }

    #[test]
    fn a_change_says_when_in_its_step() {
        let c = BoardChange {
            at: 12.5,
            part: "LED1".into(),
            state: "on".into(),
            step: Some("app".into()),
            into_step: Some(0.421),
        };
        assert_eq!(c.to_string(), "LED1 on at 0.42 s of step app");
    }
}
