//! The stock image's own drivers: what FriendlyARM's Linux 3.5 image holds
//! of the board's pins and interrupts (`configs/stock-image.toml`, compiled
//! in: the judge reads no files), and the note a verdict gives when a
//! module asked for one of them: the pin, the stock driver, the error the
//! image gives (-EBUSY) and the option that turns the driver off.
//!
//! The virtual board reports a module's request of such a resource as a
//! change (`LED1 requested`, `XEINT26 requested`: compat35/board/stock.c);
//! with `[board] stock-drivers = true` it holds them itself, so the request
//! fails in the guest as it does on the image.

use crate::board_parts::BoardChange;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

/// The table, as the repository has it.
pub const TABLE: &str = include_str!("../../../configs/stock-image.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    driver: Vec<Driver>,
}

/// One of the image's drivers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Driver {
    /// The Kconfig symbol that leaves it out of FriendlyARM's kernel.
    pub option: String,
    /// Its /dev name (a misc device).
    pub misc: String,
    /// What it prints at boot.
    pub boot: String,
    /// The label it requests with.
    #[serde(default)]
    pub label: String,
    /// Pins it requests at init and keeps: name, 3.5's gpio macro.
    #[serde(default)]
    pub pins: BTreeMap<String, String>,
    /// Interrupts it requests: what they are for, the line's name.
    #[serde(default)]
    pub irqs: BTreeMap<String, String>,
    /// When it holds its interrupts.
    #[serde(default)]
    pub when: String,
}

/// The image's drivers (the table is the repository's: a unit test parses it).
pub fn drivers() -> &'static [Driver] {
    static PARSED: OnceLock<Vec<Driver>> = OnceLock::new();
    PARSED.get_or_init(|| toml::from_str::<File>(TABLE).map(|f| f.driver).unwrap_or_default())
}

/// A module's request of a resource a stock driver holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StockNote {
    /// `LED1`, `BUZZER`, `XEINT26`, `IRQ_ADC`.
    pub resource: String,
    /// What it is on the board: `GPM4_0`, `K1's interrupt`.
    pub what: String,
    /// The stock driver's /dev name and its option.
    pub driver: String,
    pub option: String,
    /// When the driver holds it ("from boot", or its condition).
    pub when: String,
    /// The step that asked.
    pub step: Option<String>,
    /// The virtual board held it (`[board] stock-drivers = true`) and
    /// refused the request with -EBUSY, as the image does.
    pub refused: bool,
    /// The resource is the driver's /dev name: the module registered a
    /// misc device of that name (`/dev/buttons`), which the image's
    /// driver has registered from boot.
    pub dev_name: bool,
}

impl fmt::Display for StockNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = self.step.as_ref().map(|s| format!(" in step {s}")).unwrap_or_default();
        let (res, what, driver, when) = (&self.resource, &self.what, &self.driver, &self.when);
        if self.dev_name {
            // 3.5's misc_register checks minors only: the name meets the
            // stock driver's in sysfs (drivers/char/misc.c, device_create).
            let name = res.trim_start_matches("/dev/");
            write!(
                f,
                "{res} ({what}){step} is also the stock image's {driver} driver's, registered {when}: on \
                FriendlyARM's image this module's misc_register fails with -EEXIST (\"File exists\"), after the \
                kernel's `sysfs: cannot create duplicate filename '/devices/virtual/misc/{name}'` dump; the usual \
                fix is another name for the device, or a kernel built without {} (Device Drivers > Character \
                devices)",
                self.option
            )?;
            return Ok(());
        }
        if self.refused {
            write!(
                f,
                "{res} ({what}){step} was refused with -EBUSY, as FriendlyARM's image refuses it: its {driver} \
                driver holds it {when}"
            )?;
        } else {
            write!(
                f,
                "{res} ({what}){step} is held by the stock image's {driver} driver {when}: on FriendlyARM's image \
                    this request fails \
                 with -EBUSY (\"Device or resource busy\")"
            )?;
        }
        write!(f, "; the usual fix is a kernel built without {} (Device Drivers > Character devices)", self.option)
    }
}

/// `EXYNOS4X12_GPM4(0)` as the board's pin name, `GPM4_0`.
fn pin_name(mac: &str) -> String {
    let inner = mac.split_once('_').map(|(_, r)| r).unwrap_or(mac);
    inner.replace('(', "_").replace(')', "")
}

/// The note for a change, when it is a request of what a stock driver holds.
fn note(c: &BoardChange) -> Option<StockNote> {
    let refused = match c.state.as_str() {
        "requested" | "registered" => false,
        "refused" => true,
        _ => return None,
    };
    drivers().iter().find_map(|d| {
        let held = |what: String, when: &str| StockNote {
            resource: c.part.clone(),
            what,
            driver: d.misc.clone(),
            option: d.option.clone(),
            when: when.to_string(),
            step: c.step.clone(),
            refused,
            dev_name: c.state == "registered",
        };
        if c.state == "registered" {
            let ours = c.part.strip_prefix("/dev/") == Some(d.misc.as_str());
            return ours.then(|| held("a misc device".into(), "from boot"));
        }
        if let Some(mac) = d.pins.get(&c.part) {
            return Some(held(pin_name(mac), "from boot"));
        }
        let (of, _) = d.irqs.iter().find(|(_, line)| **line == c.part)?;
        Some(held(format!("{of}'s interrupt"), &d.when))
    })
}

/// The notes of a run: each request of a resource a stock driver holds,
/// once per resource.
pub fn notes(changes: &[BoardChange]) -> Vec<StockNote> {
    let mut out: Vec<StockNote> = Vec::new();
    for n in changes.iter().filter_map(note) {
        if !out.iter().any(|o| o.resource == n.resource) {
            out.push(n);
        }
    }
    out
}

/// What the run assumed of the stock image, a line for the verdict.
pub fn assumed(held: bool) -> String {
    let names: Vec<&str> = drivers().iter().map(|d| d.misc.as_str()).collect();
    if held {
        format!(
            "[board] stock-drivers = true: the virtual board held what the stock image's drivers ({}) hold, as \
                FriendlyARM's image does",
            names.join(", ")
        )
    } else {
        "the stock image's drivers were not modelled as holding anything (the default; `[board] stock-drivers = true` \
            holds them): \
         a request of theirs passed here, and is noted"
            .to_string()
    }
}

/// What a replay says of a real board's stock drivers: those whose /dev
/// names its `/proc/misc` lists (`MINOR NAME` a line), against what the
/// expectations assumed (`[board] stock-drivers`).
pub fn on_board(proc_misc: &str, assumed: bool) -> String {
    let names: Vec<&str> = proc_misc.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
    let present: Vec<&Driver> = drivers().iter().filter(|d| names.contains(&d.misc.as_str())).collect();
    let assumed = if assumed { "stock-drivers = true" } else { "stock-drivers = false, the default" };
    if present.is_empty() {
        return format!(
            "none of the stock image's drivers is running (no /dev/leds, buttons, pwm, adc or backlight); \
            the expectations assumed {assumed}"
        );
    }
    let held: Vec<String> = present
        .iter()
        .map(|d| {
            let what: Vec<&str> = d.pins.keys().chain(d.irqs.values()).map(String::as_str).collect();
            if what.is_empty() {
                d.misc.clone()
            } else {
                format!("{} ({})", d.misc, what.join(", "))
            }
        })
        .collect();
    format!(
        "the board runs the stock image's drivers {}: a request of what they hold fails with -EBUSY here; the \
        expectations assumed {assumed}",
        held.join(", ")
    )
}

/// The verdict's lines: what the run assumed of the stock image (when
/// the virtual board held its resources, or a module asked for one), and
/// a note per request.
pub fn write_notes(notes: &[StockNote], held: bool, s: &mut String) {
    use std::fmt::Write;
    if notes.is_empty() && !held {
        return;
    }
    let _ = writeln!(s, "  note  {}", assumed(held));
    for n in notes {
        let _ = writeln!(s, "  note  {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(part: &str, state: &str) -> BoardChange {
        BoardChange {
            at: 1.0,
            part: part.into(),
            state: state.into(),
            step: Some("insmod".into()),
            into_step: Some(0.1),
        }
    }

    #[test]
    fn the_table_parses_and_names_what_the_image_holds() {
        let d = drivers();
        let misc: Vec<&str> = d.iter().map(|d| d.misc.as_str()).collect();
        assert_eq!(misc, ["leds", "pwm", "buttons", "adc", "backlight"]);
        assert_eq!(d[0].pins.get("LED1").map(String::as_str), Some("EXYNOS4X12_GPM4(0)"));
        assert!(d.iter().all(|d| d.option.starts_with("CONFIG_TINY4412_")));
    }

    #[test]
    fn a_request_of_led1_is_noted_with_the_driver_the_error_and_the_fix() {
        let n = notes(&[
            change("LED1", "on"),
            change("LED1", "requested"),
            change("LED1", "requested"),
            change("GPX1_0", "requested"),
        ]);
        assert_eq!(n.len(), 1, "{n:?}");
        let text = n[0].to_string();
        for want in ["LED1 (GPM4_0) in step insmod", "leds driver", "-EBUSY", "CONFIG_TINY4412_LEDS", "from boot"] {
            assert!(text.contains(want), "{want:?} not in {text}");
        }
        let k1 = notes(&[change("XEINT26", "requested")]);
        assert!(
            k1[0].to_string().contains("K1's interrupt") && k1[0].to_string().contains("/dev/buttons open"),
            "{}",
            k1[0]
        );
        assert_eq!(notes(&[change("BUZZER", "requested")])[0].what, "GPD0_0");
        assert_eq!(notes(&[change("IRQ_ADC", "requested")])[0].option, "CONFIG_TINY4412_ADC");
        // Held by the virtual board (stock-drivers = true): refused, as there.
        let held = notes(&[change("LED1", "refused")]);
        let text = held[0].to_string();
        assert!(held[0].refused && text.contains("LED1 (GPM4_0) in step insmod was refused with -EBUSY"), "{text}");
        assert!(text.contains("CONFIG_TINY4412_LEDS"), "{text}");
    }

    /// A module's misc device under a stock driver's /dev name: on the
    /// image, its misc_register fails (key-app's "buttons" did so on the
    /// emulated stock board, with a duplicate-filename dump).
    #[test]
    fn a_misc_device_under_a_stock_drivers_name_is_noted() {
        let n = notes(&[change("/dev/buttons", "registered"), change("/dev/buttons", "registered")]);
        assert_eq!(n.len(), 1, "{n:?}");
        assert!(n[0].dev_name && !n[0].refused && n[0].option == "CONFIG_TINY4412_BUTTONS", "{n:?}");
        let text = n[0].to_string();
        for want in ["/dev/buttons (a misc device) in step insmod", "-EEXIST", "/devices/virtual/misc/buttons"] {
            assert!(text.contains(want), "{want:?} not in {text}");
        }
        assert!(notes(&[change("/dev/hello", "registered")]).is_empty());
        assert!(notes(&[change("/dev/leds", "on")]).is_empty());
    }

    #[test]
    fn a_boards_proc_misc_says_which_stock_drivers_it_runs() {
        let misc = " 57 backlight\n 58 adc\n 59 pwm\n 60 buttons\n 61 leds\n130 watchdog\n";
        let s = on_board(misc, false);
        assert!(
            s.starts_with(
                "the board runs the stock image's drivers leds (LED1, LED2, LED3, LED4), pwm (BUZZER), \
            buttons (XEINT26"
            ),
            "{s}"
        );
        assert!(s.ends_with("assumed stock-drivers = false, the default"), "{s}");
        let none = on_board("130 watchdog\n", true);
        assert!(
            none.starts_with("none of the stock image's drivers") && none.ends_with("stock-drivers = true"),
            "{none}"
        );
    }

    /// The virtual board's copy (compat35/board/stock.c) holds what the
    /// table says: every pin with its macro, label and driver, every
    /// button's interrupt, every /dev name.
    #[test]
    fn the_virtual_boards_copy_matches_the_table() {
        let c = std::fs::read_to_string(crate::repo_root().join("compat35/board/stock.c")).unwrap();
        for d in drivers() {
            for (name, mac) in &d.pins {
                let entry = format!("{{ \"{name}\", {mac}, \"{}\", \"{}\" }}", d.label, d.misc);
                assert!(c.contains(&entry), "stock.c lacks {entry}");
            }
            for line in d.irqs.values().filter(|l| l.starts_with("XEINT")) {
                let entry = format!("{{ \"{line}\", {}, ", &line["XEINT".len()..]);
                assert!(c.contains(&entry), "stock.c lacks {entry}");
            }
            if d.irqs.values().any(|l| l == "IRQ_ADC") {
                assert!(
                    c.contains(&format!("#define ADC_LABEL \"{}\"", d.label)),
                    "stock.c's ADC label is not {}",
                    d.label
                );
            }
            assert!(c.contains(&format!("MISC(\"{}\",", d.misc)), "stock.c registers no /dev/{}", d.misc);
        }
        let pins = c.matches("\", EXYNOS4").count();
        assert_eq!(
            pins,
            drivers().iter().map(|d| d.pins.len()).sum::<usize>(),
            "stock.c holds pins the table does not list"
        );
    }
}
