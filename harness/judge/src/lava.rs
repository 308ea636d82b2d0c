//! LAVA, the board farms' engine: the job a dispatcher runs for a check's
//! scenario (text out), and the target's console lines read back from its
//! log (text in). Pure: the run side builds the artifacts and reads files.
//!
//! The job's `test` action is a LAVA monitor: it reads the guest's own
//! markers (`@@harness NONCE end STEP rc=N`, see marker.rs) into LAVA test
//! cases named as our steps. LAVA's results are a view for the lab's
//! dashboard; the verdict is ours, from the console lines (`recheck
//! --lava-log`), with the same rules as the board replay's.

use serde_json::{json, Map, Value};

/// How a real board gets its images (`deploy: to:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Deploy {
    /// Over the network from the lab's TFTP server: needs a U-Boot with a
    /// network driver (FriendlyARM's 2010.12 has none).
    Tftp,
    /// An SD-mux: the lab writes the SD card, then switches it to the board.
    Flasher,
    /// Over USB, where the board's U-Boot has fastboot.
    Fastboot,
}

/// What a job runs: the same scenario as `check` (its nonce, its steps).
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub nonce: String,
    /// Step names as the markers say them (`[unit/]name`).
    pub steps: Vec<String>,
    /// The whole run's deadline, and LAVA's per-action share of it.
    pub timeout_minutes: u64,
}

/// The images of a QEMU job, as URLs the worker downloads (`file://` for
/// a local `lava-run`).
#[derive(Debug, Clone)]
pub struct QemuImages {
    pub kernel: String,
    pub dtb: Option<String>,
    pub initrd: String,
    /// The kernel command line, as `check` gives it (guest/qemu.rs).
    pub cmdline: String,
}

/// The images of a real board's job: a uImage (the dtb appended: the
/// board's U-Boot passes none, see real_board.rs) and the initramfs as a U-Boot
/// ramdisk (uInitrd), with the kernel command line.
#[derive(Debug, Clone)]
pub struct BoardImages {
    pub kernel: String,
    pub ramdisk: String,
    /// The uInitrd's size: fastboot's ramdisk partition is read back by
    /// size (`movi read ramdisk 0 ADDR BYTES`), not as a file.
    pub ramdisk_bytes: u64,
    pub bootargs: String,
}

/// The monitor that turns our step markers into LAVA test cases. LAVA
/// reads a result from one capture group through `fixupdict`, so the exit
/// status's first digit is taken: `0` (rc=0) passes, any other fails (rc is
/// a shell status, 0-255, with no leading zeros). A marker must carry the
/// run's nonce, as for our own parser, so a module's printk cannot add a case.
fn monitor(s: &Scenario) -> Value {
    let mark = format!("@@harness {}", s.nonce);
    let mut fixup = Map::new();
    fixup.insert("0".into(), "pass".into());
    for d in 1..=9 {
        fixup.insert(d.to_string(), "fail".into());
    }
    json!({
        "name": "harness",
        "start": format!("{mark} begin "),
        "end": format!("{mark} done"),
        "pattern": format!(r"{mark} end (?P<test_case_id>\S+) rc=(?P<result>\d)\d*"),
        "fixupdict": fixup,
    })
}

fn minutes(m: u64) -> Value {
    json!({ "minutes": m })
}

/// The top of every job: name, timeouts, and the scenario in `metadata`
/// (the nonce, for a human reading the dashboard).
fn job(device_type: &str, s: &Scenario, actions: Vec<Value>) -> Value {
    json!({
        "device_type": device_type,
        "job_name": s.name,
        "timeouts": {
            "job": minutes(s.timeout_minutes + 5),
            "action": minutes(s.timeout_minutes),
            "connection": minutes(2),
        },
        "priority": "medium",
        "visibility": "public",
        "metadata": { "harness.nonce": s.nonce, "harness.steps": s.steps.join(" ") },
        "actions": actions,
    })
}

fn test_action(s: &Scenario) -> Value {
    json!({ "test": { "timeout": minutes(s.timeout_minutes), "monitors": [monitor(s)] } })
}

/// A job for LAVA's `qemu` device type (what tuxrun and a LAVA worker
/// run): the images deployed to tmpfs, QEMU started by the dispatcher with
/// the device's options (see [`qemu_device`]) and the images' arguments.
pub fn qemu_job(s: &Scenario, images: &QemuImages) -> Value {
    let mut deploy = Map::new();
    deploy.insert(
        "kernel".into(),
        json!({ "url": images.kernel, "image_arg": format!("-kernel {{kernel}} -append \"{}\"", images.cmdline) }),
    );
    if let Some(dtb) = &images.dtb {
        deploy.insert("dtb".into(), json!({ "url": dtb, "image_arg": "-dtb {dtb}" }));
    }
    deploy.insert("ramdisk".into(), json!({ "url": images.initrd, "image_arg": "-initrd {ramdisk}" }));
    let mut j = job(
        "qemu",
        s,
        vec![
            json!({ "deploy": { "to": "tmpfs", "timeout": minutes(5), "images": deploy } }),
            json!({ "boot": { "method": "qemu", "media": "tmpfs", "timeout": minutes(s.timeout_minutes) } }),
            test_action(s),
        ],
    );
    j["context"] = json!({ "arch": "arm" });
    j
}

/// What LAVA waits for at FriendlyARM's Tiny4412 U-Boot (2010.12), whose
/// prompt is `TINY4412 # `: the word only, since LAVA's base-uboot template
/// writes the prompt unquoted into the device's YAML, where ` #` would
/// start a comment (LAVA's own Exynos boards say `Odroid`, `ARNDALE5250`).
pub const TINY4412_PROMPT: &str = "TINY4412";

/// A job for a Tiny4412 in a lab (device type `tiny4412`, whose template
/// `configs/lava/tiny4412.jinja2` the lab's server holds): U-Boot's
/// `bootm` of a uImage, a dtb and the initramfs as a U-Boot ramdisk.
pub fn tiny4412_job(s: &Scenario, images: &BoardImages, deploy: Deploy) -> Value {
    let (kernel, ramdisk) = (json!({ "url": images.kernel }), json!({ "url": images.ramdisk }));
    // LAVA fills in the device's addresses and the files' names.
    let [load_kernel, load_ramdisk] = match deploy {
        Deploy::Tftp => ["tftp {KERNEL_ADDR} {KERNEL}".to_string(), "tftp {RAMDISK_ADDR} {RAMDISK}".into()],
        // From the SD card's first (FAT) partition, which the SD-mux wrote.
        Deploy::Flasher => {
            ["fatload mmc 0:1 {KERNEL_ADDR} uImage".to_string(), "fatload mmc 0:1 {RAMDISK_ADDR} uInitrd".into()]
        }
        // fastboot flashes the images' keys as partitions (`fastboot flash
        // kernel uImage`), which FriendlyARM's U-Boot reads back with movi
        // (the ramdisk by its size), not from the FAT partition.
        Deploy::Fastboot => [
            "movi read kernel 0 {KERNEL_ADDR}".to_string(),
            format!("movi read ramdisk 0 {{RAMDISK_ADDR}} {:x}", images.ramdisk_bytes),
        ],
    };
    let commands = json!([
        format!("setenv bootargs '{}'", images.bootargs),
        load_kernel,
        load_ramdisk,
        "bootm {KERNEL_ADDR} {RAMDISK_ADDR}",
    ]);
    let deploy = match deploy {
        Deploy::Tftp => json!({
            "to": "tftp", "timeout": minutes(5),
            "kernel": { "url": images.kernel, "type": "uimage" },
            "ramdisk": { "url": images.ramdisk, "header": "u-boot" },
        }),
        Deploy::Flasher => json!({
            "to": "flasher", "timeout": minutes(10), "images": { "kernel": kernel, "ramdisk": ramdisk },
        }),
        Deploy::Fastboot => json!({
            "to": "fastboot", "timeout": minutes(10), "images": { "kernel": kernel, "ramdisk": ramdisk },
        }),
    };
    let boot = json!({ "method": "u-boot", "commands": commands, "timeout": minutes(s.timeout_minutes) });
    job("tiny4412", s, vec![json!({ "deploy": deploy }), json!({ "boot": boot }), test_action(s)])
}

/// A rendered `qemu` device for a local `lava-run` (what a lab's server
/// renders from LAVA's qemu.jinja2): the machine's options as `check`
/// gives them (guest/qemu.rs), the images' arguments coming from the job.
/// LAVA requires the constants `failure_retry` and `boot_retry` (its
/// boot's attempts): one, since a boot retried would run the steps twice
/// into one log.
pub fn qemu_device(machine_options: &[String]) -> Value {
    json!({
        "device_type": "qemu",
        "available_architectures": ["arm"],
        "constants": {
            "shutdown-message": "The system is going down for reboot NOW",
            "kernel-start-message": "Linux version [0-9]",
            "boot-message": "Booting Linux",
            "cpu-reset-messages": ["Resetting CPU", "Must RESET board to recover"],
            "default-shell-prompt": "lava-test: # ",
            "uboot-autoboot-prompt": "Hit any key to stop autoboot",
            "uboot-interrupt-character": " ",
            "failure_retry": 1,
            "boot_retry": 1,
            "posix": { "lava_test_sh_cmd": "/bin/sh", "lava_test_results_dir": "/lava-%s",
                       "lava_test_shell_file": "~/.bashrc" },
        },
        "actions": {
            // `to: tmpfs` is LAVA's `image` deploy method.
            "deploy": { "methods": { "image": { "parameters": { "guest": { "size": 512 } } } } },
            "boot": {
                "connections": { "serial": null },
                "methods": { "qemu": { "parameters": {
                    "command": "qemu-system-arm",
                    "boot_options": {},
                    "options": machine_options,
                } } },
            },
        },
        "timeouts": {
            "actions": {}, "connections": {},
        },
    })
}

/// `v` as YAML: block style, every string double-quoted with JSON's escapes
/// (a subset of YAML's), so nothing in a path or a pattern can change the
/// document's shape.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    yaml_into(v, 0, &mut out);
    out
}

/// A key bare when it is a plain word (what LAVA's own examples write),
/// quoted otherwise.
fn yaml_key(k: &str) -> String {
    let plain = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if plain {
        k.to_string()
    } else {
        Value::String(k.to_string()).to_string()
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("null".into()),
        Value::Bool(_) | Value::Number(_) | Value::String(_) => Some(v.to_string()),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(o) if o.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn yaml_into(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, v) in o {
                let key = yaml_key(k);
                match scalar(v) {
                    Some(s) => out.push_str(&format!("{pad}{key}: {s}\n")),
                    None => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        yaml_into(v, indent + 2, out);
                    }
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for v in a {
                match scalar(v) {
                    Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                    None => {
                        // The item's first line goes after the dash.
                        let mut inner = String::new();
                        yaml_into(v, indent + 2, &mut inner);
                        out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
                    }
                }
            }
        }
        _ => out.push_str(&format!("{pad}{}\n", scalar(v).unwrap_or_default())),
    }
}

/// At most this many bytes of one console line are kept (as the serial
/// splitter's bound, splitter.rs).
pub const MAX_LINE: usize = 64 << 10;

/// What a LAVA log gave: the target's console lines, and whether LAVA
/// itself (not the target: its lines are LAVA's own, at other levels) said
/// that the test's monitor or the job timed out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LavaLog {
    pub console: Vec<String>,
    pub timed_out: bool,
    /// Lines that were neither a log record nor blank (a damaged log).
    pub unreadable: usize,
}

/// Reads a LAVA log: the dispatcher's stderr (`lava-run`) or a server's
/// job.log, one YAML flow mapping per line (`- {"dt": "…", "lvl":
/// "target", "msg": "…"}`, every scalar double-quoted by LAVA's dumper;
/// YAML's escapes, so not JSON). Only records at level `target` are the
/// board's console; a target's text cannot make a record of another level.
pub fn read_log(text: &str) -> LavaLog {
    let mut log = LavaLog::default();
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("- ").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let Some(fields) = flow_mapping(line) else {
            log.unreadable += 1;
            continue;
        };
        let get = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        match (get("lvl"), get("msg")) {
            // `feedback`: what the target printed while no action read
            // its console (after the monitor's end, at power-off).
            (Some("target" | "feedback"), Some(msg)) => {
                log.console.extend(msg.split('\n').map(|l| cut(l.trim_end_matches('\r'))))
            }
            (Some(_), Some(msg)) if msg.contains("has timed out") || msg.contains("timed out after") => {
                log.timed_out = true
            }
            _ => {}
        }
    }
    log
}

fn cut(line: &str) -> String {
    if line.len() <= MAX_LINE {
        return line.to_string();
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} [harness: line cut at {MAX_LINE} bytes]", &line[..end])
}

/// The `"key": "value"` pairs of a one-line flow mapping whose scalars are
/// double-quoted; a value that is not a string (a results record's nested
/// mapping) ends the reading with the pairs so far.
fn flow_mapping(line: &str) -> Option<Vec<(String, String)>> {
    let mut rest = line.strip_prefix('{')?;
    let mut fields = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.starts_with('}') {
            return Some(fields);
        }
        let (key, after) = quoted(rest)?;
        rest = after.trim_start().strip_prefix(':')?.trim_start();
        if !rest.starts_with('"') {
            return (!fields.is_empty()).then_some(fields);
        }
        let (value, after) = quoted(rest)?;
        fields.push((key, value));
        rest = after.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// A YAML double-quoted scalar at the start of `s`, unescaped, and the rest.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let body = &s[1..];
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                let hex = |n: usize, chars: &mut std::str::CharIndices| -> Option<char> {
                    let digits: String = (0..n).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                    char::from_u32(u32::from_str_radix(&digits, 16).ok()?)
                };
                out.push(match e {
                    '0' => '\0',
                    'a' => '\x07',
                    'b' => '\x08',
                    't' | '\t' => '\t',
                    'n' => '\n',
                    'v' => '\x0b',
                    'f' => '\x0c',
                    'r' => '\r',
                    'e' => '\x1b',
                    ' ' => ' ',
                    '"' => '"',
                    '/' => '/',
                    '\\' => '\\',
                    'N' => '\u{85}',
                    '_' => '\u{a0}',
                    'L' => '\u{2028}',
                    'P' => '\u{2029}',
                    'x' => hex(2, &mut chars)?,
                    'u' => hex(4, &mut chars)?,
                    'U' => hex(8, &mut chars)?,
                    _ => return None,
                });
            }
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        Scenario {
            name: "kmod".into(),
            nonce: "0123456789abcdef".into(),
            steps: vec!["insmod".into(), "rmmod#2".into()],
            timeout_minutes: 5,
        }
    }

    #[test]
    fn a_log_gives_the_targets_lines_only() {
        let log = concat!(
            "- {\"dt\": \"2026-12-07T15:00:00\", \"lvl\": \"info\", \"msg\": \"start: 1 tmpfs\"}\n",
            "- {\"dt\": \"2026-12-07T15:00:01\", \"lvl\": \"target\", ",
            "\"msg\": \"[    1.0] \\e[0mhello \\\"x\\\"\\x41\\u00e9\"}\n",
            "{\"dt\": \"2026-12-07T15:00:01\", \"lvl\": \"results\", \"msg\": {\"case\": \"insmod\"}}\n",
            "- {\"dt\": \"2026-12-07T15:00:02\", \"lvl\": \"target\", \"msg\": \"@@harness 1 end insmod rc=0\"}\n",
            "garbage\n",
            "- {\"dt\": \"x\", \"lvl\": \"warning\", \"msg\": \"err: lava test monitoring has timed out\"}\n",
        );
        let l = read_log(log);
        assert_eq!(l.console, ["[    1.0] \x1b[0mhello \"x\"Aé", "@@harness 1 end insmod rc=0"]);
        assert_eq!(l.unreadable, 1);
        assert!(l.timed_out);
        // A target that prints LAVA's words does not time the job out.
        let l = read_log("- {\"dt\": \"x\", \"lvl\": \"target\", \"msg\": \"lava test monitoring has timed out\"}");
        assert!(!l.timed_out);
        assert_eq!(l.console.len(), 1);
        // An over-long line is cut.
        let long = format!("- {{\"lvl\": \"target\", \"msg\": \"{}\"}}", "é".repeat(MAX_LINE));
        assert!(read_log(&long).console[0].ends_with("[harness: line cut at 65536 bytes]"));
        // Bad escapes and unterminated strings are refused, not guessed.
        assert_eq!(read_log("- {\"lvl\": \"target\", \"msg\": \"a\\q\"}").unreadable, 1);
        assert_eq!(read_log("- {\"lvl\": \"target\", \"msg\": \"a").unreadable, 1);
    }

    #[test]
    fn the_qemu_job_reads_our_markers_with_the_nonce() {
        let images = QemuImages {
            kernel: "file:///k/zImage".into(),
            dtb: Some("file:///k/a.dtb".into()),
            initrd: "file:///k/initramfs.cpio".into(),
            cmdline: "console=ttySAC0 rdinit=/init".into(),
        };
        let j = qemu_job(&scenario(), &images);
        let m = &j["actions"][2]["test"]["monitors"][0];
        let pattern = regex::Regex::new(m["pattern"].as_str().unwrap()).unwrap();
        let c = pattern.captures("[ 3.1] @@harness 0123456789abcdef end rmmod#2 rc=137").unwrap();
        assert_eq!((&c["test_case_id"], &c["result"]), ("rmmod#2", "1"));
        assert_eq!(m["fixupdict"][&c["result"]], "fail");
        let c = pattern.captures("@@harness 0123456789abcdef end insmod rc=0").unwrap();
        assert_eq!(m["fixupdict"][&c["result"]], "pass");
        assert!(!pattern.is_match("@@harness 000000000000beef end insmod rc=0"), "another run's marker");
        assert_eq!(
            j["actions"][0]["deploy"]["images"]["kernel"]["image_arg"],
            "-kernel {kernel} -append \"console=ttySAC0 rdinit=/init\""
        );
    }

    /// The boot commands read the images where each deploy put them: a
    /// TFTP server's files, the SD card's FAT partition the SD-mux wrote,
    /// or the partitions fastboot flashed (named by the images' keys).
    #[test]
    fn each_deploy_boots_what_it_put_on_the_board() {
        let images = BoardImages {
            kernel: "http://lab/uImage".into(),
            ramdisk: "http://lab/uInitrd".into(),
            ramdisk_bytes: 0x2a_0001,
            bootargs: "console=ttySAC0,115200n8".into(),
        };
        for deploy in [Deploy::Tftp, Deploy::Flasher, Deploy::Fastboot] {
            let j = tiny4412_job(&scenario(), &images, deploy);
            let commands: Vec<&str> =
                j["actions"][1]["boot"]["commands"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
            let loads = &commands[1..3];
            let d = &j["actions"][0]["deploy"];
            let want: Vec<String> = match deploy {
                Deploy::Tftp => vec!["tftp {KERNEL_ADDR} {KERNEL}".into(), "tftp {RAMDISK_ADDR} {RAMDISK}".into()],
                Deploy::Flasher => {
                    assert_eq!(d["images"].as_object().unwrap().keys().collect::<Vec<_>>(), ["kernel", "ramdisk"]);
                    vec!["fatload mmc 0:1 {KERNEL_ADDR} uImage".into(), "fatload mmc 0:1 {RAMDISK_ADDR} uInitrd".into()]
                }
                Deploy::Fastboot => d["images"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(|part| format!("movi read {part} 0 {{{}_ADDR}}", part.to_uppercase()))
                    .collect(),
            };
            assert_eq!(loads.len(), want.len());
            for (load, want) in loads.iter().zip(&want) {
                assert!(load.starts_with(want.as_str()), "{deploy:?}: {load:?} is not {want:?}");
            }
            if deploy == Deploy::Fastboot {
                assert!(loads[1].ends_with(" 2a0001"), "the ramdisk read by its size: {}", loads[1]);
            }
            assert_eq!(commands[3], "bootm {KERNEL_ADDR} {RAMDISK_ADDR}");
        }
    }

    #[test]
    fn yaml_keeps_every_string_quoted() {
        let v = json!({ "a": [ { "b": "x: y\n#z", "c": [] } , "d"], "e": { "f": null }, "g": 1 });
        assert_eq!(to_yaml(&v), "a:\n  - b: \"x: y\\n#z\"\n    c: []\n  - \"d\"\ne:\n  f: null\ng: 1\n");
        assert_eq!(to_yaml(&json!({ "0": 1, "a b": 2 })), "\"0\": 1\n\"a b\": 2\n");
    }
}
