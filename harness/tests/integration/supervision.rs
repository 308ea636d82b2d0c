//! The harness's own guarantees: every wait has a deadline, and no QEMU
//! outlives its run, whether the guest panics, hangs, or the harness itself
//! is killed.

use crate::common::{self, check_with, fixture, harness, qemu_children_of, text};
use harness::judge::verdict::{Outcome, RunEnd};
use harness::options::CheckOptions;
use std::time::{Duration, Instant};

#[test]
fn a_panic_is_crashed_and_the_guest_is_stopped() {
    let r = check_with(CheckOptions::new("exynos4210", fixture("faults/panic")));
    let v = &r.verdict;
    assert_eq!(v.outcome, Outcome::Crashed, "{v}");
    assert_eq!(v.end, RunEnd::Panicked, "{v}");
    assert!(v.reason.as_deref().unwrap().starts_with("kernel panic during step insmod"), "{v}");
    let panic = v.events.iter().find(|e| e.kind == harness::judge::event::EventKind::Panic).expect("panic event");
    assert!(panic.first_line().contains("fault_panic: deliberate panic"), "{panic:?}");
    // smdkc210 stays up after a panic: its memory is kept for later.
    assert_kdump(v.memory.as_deref(), &r.run_dir.expect("a crashed run keeps its directory"));
}

/// The verdict's memory line names a kdump-compressed dump in `run_dir`.
fn assert_kdump(memory: Option<&str>, run_dir: &std::path::Path) {
    let file = run_dir.join("memory.kdump");
    let shown = memory.expect("no memory line");
    assert!(shown.starts_with(&format!("{} (kdump-zlib, ", file.display())), "{shown}");
    let head = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    // makedumpfile's flattened format (QEMU 7.2 writes no other for
    // kdump), holding a kdump header; 1 GiB of RAM in far less.
    assert_eq!(&head[..12], b"makedumpfile", "{shown}");
    let header = head[..64 << 10]
        .windows(8)
        .position(|w| w == b"KDUMP   ")
        .unwrap_or_else(|| panic!("no kdump header: {shown}"));
    assert!(head.len() < 256 << 20, "{} bytes", head.len());
    // Completed for drgn: the kernel's name and machine in the header's
    // utsname, a VMCOREINFO beside it, and the command to open both.
    let uts = String::from_utf8_lossy(&head[header + 12..header + 12 + 6 * 65]).into_owned();
    assert!(uts.starts_with("Linux\0") && uts.contains("arm\0"), "{uts:?}");
    let info = std::fs::read_to_string(run_dir.join("memory.vmcoreinfo")).unwrap();
    assert!(info.starts_with("OSRELEASE=6.12") && info.contains("SYMBOL(swapper_pg_dir)=c0"), "{info}");
    assert!(
        shown.contains(&format!(
            "drgn -c {} --vmcoreinfo {}",
            file.display(),
            run_dir.join("memory.vmcoreinfo").display()
        )),
        "{shown}"
    );
}

/// SIGTERM to the harness (a CI cancel) stops QEMU too.
#[test]
fn sigterm_to_the_harness_leaves_no_qemu() {
    let hang = fixture("faults/init-hang");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
        .args(["check", "--step-timeout", "600", "--module"])
        .arg(&hang)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    let qemu = loop {
        if let Some(q) = qemu_children_of(child.id()).first() {
            break *q;
        }
        assert!(child.try_wait().unwrap().is_none(), "harness exited before booting");
        assert!(Instant::now() < deadline, "no QEMU within 600 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    // Let the guest get into the hanging insmod.
    std::thread::sleep(Duration::from_secs(5));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until, "harness did not exit within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(130));
    std::thread::sleep(Duration::from_millis(200));
    let stat = std::fs::read_to_string(format!("/proc/{qemu}/stat")).unwrap_or_default();
    assert!(stat.is_empty(), "QEMU {qemu} survived the harness: {stat}");
    common::assert_no_qemu_children();
}

/// An oops kills insmod but not the kernel, and a hang ends the boot: in
/// one boot, each keeps its own verdict. The oops is CRASHED, named by its
/// class, its step and the module function in its stack; the init that
/// never returns is TIMED-OUT within the step timeout plus a few seconds
/// (not the global 300 s), with the hung guest's registers (both CPUs) and
/// its last console lines. Exit status 1.
#[test]
fn an_oops_is_crashed_and_an_init_that_never_returns_times_out_on_the_step() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("v.json");
    let out = harness(&[
        "check",
        "--step-timeout",
        "15",
        "--module",
        fixture("faults/null-deref").to_str().unwrap(),
        "--module",
        fixture("faults/init-hang").to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    // Module builds and the boot take some seconds on top.
    assert!(started.elapsed() < Duration::from_secs(120), "took {:?}", started.elapsed());
    let reports: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let verdict = |label: &str| {
        reports
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["module"] == label)
            .unwrap_or_else(|| panic!("no {label} in {reports}"))["verdict"]
            .clone()
    };
    let oops = verdict("null-deref");
    assert_eq!(oops["outcome"], "CRASHED", "{oops}");
    let event = oops["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"]["class"] == "oops")
        .cloned()
        .unwrap_or_else(|| panic!("no oops: {oops}"));
    assert_eq!(event["step"], "insmod", "{event}");
    assert_eq!(event["module_symbol"], "null_deref_do [fault_null_deref]", "{event}");
    // The faulting store's line, from the .ko's DWARF, in JSON and in the
    // text; the line is found in the fixture's source, not written here.
    let source = std::fs::read_to_string(fixture("faults/null-deref/fault_null_deref.c")).unwrap();
    let line = source.lines().position(|l| l.contains("/* the mistake */")).unwrap() + 1;
    let pc = &event["frames"][0];
    let frame = pc["frame"].as_str().unwrap();
    assert!(
        frame.starts_with("null_deref_do+0x") && frame.ends_with(" [fault_null_deref]"),
        "the PC's frame first: {event}"
    );
    assert_eq!(pc["lines"][0]["file"], "fault_null_deref.c", "{event}");
    assert_eq!(pc["lines"][0]["line"], line, "{event}");
    assert_eq!(pc["lines"][0]["function"], "null_deref_do", "{event}");
    assert!(t.contains(&format!("{frame} fault_null_deref.c:{line}")), "{t}");
    // The caller's frame (a return address) is the line of the call in init.
    let call = source.lines().position(|l| l.trim() == "null_deref_do();").unwrap() + 1;
    let init = event["frames"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["frame"].as_str().unwrap().starts_with("fault_null_deref_init+"))
        .unwrap_or_else(|| panic!("{event}"));
    assert_eq!(init["lines"][0]["line"], call, "{event}");
    let hang = verdict("init-hang");
    assert_eq!(hang["outcome"], "TIMED-OUT", "{hang}");
    assert!(t.contains("TIMED-OUT: step insmod did not finish within 15 s"), "{t}");
    assert!(t.contains("guest registers when it was stopped"), "{t}");
    assert!(t.contains("R15="), "{t}");
    assert!(t.contains("CPU#1"), "both CPUs' registers are shown: {t}");
    assert!(t.contains("fault_init_hang: init will never return"), "last console lines shown: {t}");
    let run_dir =
        t.lines().find_map(|l| l.strip_prefix("run directory: ")).unwrap_or_else(|| panic!("no run directory: {t}"));
    assert_kdump(hang["memory"].as_str(), std::path::Path::new(run_dir.trim()));
    assert!(oops["memory"].is_null(), "the oops's unit did not hang: {oops}");
}

/// A module that prints imitations of the step markers cannot close its
/// step or end the run: they carry no (or a wrong) nonce, and the real end
/// marker, with insmod's failure, is what counts.
#[test]
fn a_forged_marker_does_not_fool_the_verdict() {
    let r = check_with(CheckOptions::new("exynos4210", fixture("faults/forged-marker")));
    let v = &r.verdict;
    assert_eq!(v.outcome, Outcome::Failed, "{v}");
    assert_eq!(v.reason.as_deref(), Some("expectation not met: insmod exits 0"), "{v}");
    let exit = v.checks.iter().find(|c| c.description == "insmod exits 0").expect("exit check");
    // busybox insmod exits with the errno init returned (EINVAL).
    assert_eq!(exit.detail.as_deref(), Some("it exited 22"), "{v}");
    // The forged lines are in the step's window as ordinary kernel lines.
    let shown = v.to_string();
    assert!(shown.contains("| @@harness end insmod rc=0"), "{shown}");
    assert!(shown.contains("| @@harness 0000000000000000 end insmod rc=0"), "{shown}");
    assert_eq!(v.end, RunEnd::Completed, "the run went on to rmmod and gone: {v}");
}

/// The same for a module's Rust part: the oops's PC is in a Rust function,
/// which the verdict shows demangled with its line in `src/lib.rs` (the
/// line is found in the fixture's source, by its comment).
#[test]
fn a_rust_oops_names_its_line_in_src_lib_rs() {
    let r = check_with(CheckOptions::new("exynos4210", fixture("faults/rust-null-deref")));
    let v = &r.verdict;
    assert_eq!(v.outcome, Outcome::Crashed, "{v}");
    let source = std::fs::read_to_string(fixture("faults/rust-null-deref/src/lib.rs")).unwrap();
    let line = source.lines().position(|l| l.contains("// the mistake")).unwrap() as u32 + 1;
    let oops = v
        .events
        .iter()
        .find(|e| e.kind == harness::judge::event::EventKind::Oops)
        .unwrap_or_else(|| panic!("no oops: {v}"));
    let pc = oops.frames.first().unwrap_or_else(|| panic!("no frame with a source line: {oops:?}"));
    assert!(pc.frame.ends_with(" [fault_rust_null]"), "{oops:?}");
    // The report's module function, demangled as the source names it.
    assert_eq!(
        oops.module_symbol.as_deref(),
        Some("fault_rust_null::write_through_null [fault_rust_null]"),
        "{oops:?}"
    );
    // Innermost first: core's write_volatile, inlined into the fixture's
    // function, whose line is the store.
    let ours =
        pc.lines.iter().find(|l| l.file == "src/lib.rs").unwrap_or_else(|| panic!("no line in src/lib.rs: {oops:?}"));
    assert_eq!(ours.line, line, "{oops:?}");
    assert!(
        ours.function.ends_with("write_through_null") && !ours.function.contains("17h"),
        "demangled, without its hash: {oops:?}"
    );
    assert!(v.to_string().contains(&format!("at src/lib.rs:{line})")), "{v}");
    // The link register's frame: init, at the line of the call (a Rust
    // function with no name in its line tables is named from the symbol).
    let call = source.lines().position(|l| l.trim() == "write_through_null();").unwrap() as u32 + 1;
    let init =
        oops.frames.iter().find(|f| f.frame.starts_with("fault_rust_null_init+")).unwrap_or_else(|| panic!("{oops:?}"));
    assert_eq!(
        (init.lines[0].function.as_str(), init.lines[0].file.as_str(), init.lines[0].line),
        ("fault_rust_null_init", "src/lib.rs", call),
        "{oops:?}"
    );
}

/// A kernel built with debug info (the exynos4210-gdb profile) gives its
/// own frames source lines too. Shown here on a small linked ARM program
/// built the same way (vmlinux is one, much larger): a function's frame is
/// its symbol plus the offset, and a name that two static functions share
/// gets no line rather than maybe the other's.
#[test]
fn a_linked_programs_frames_get_their_lines_unless_the_name_is_ambiguous() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.c"), dir.path().join("b.c"));
    std::fs::write(
        &a,
        "static int helper(int x) { return x + 1; }\nint twice(int \
        x)\n{\n\treturn helper(x) * 2;\n}\nvoid _start(void) { for (;;) twice(1); }\n",
    )
    .unwrap();
    std::fs::write(&b, "static int helper(int x) { return x - 1; }\nint other(int x) { return helper(x); }\n").unwrap();
    let prog = dir.path().join("prog");
    let out = std::process::Command::new("arm-linux-gnueabihf-gcc")
        .args(["-g", "-O0", "-nostdlib", "-static", "-o"])
        .args([&prog, &a, &b])
        .output()
        .expect("the cross gcc, which check installs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines =
        harness::judge::lines::KernelLines::parse(&std::fs::read(&prog).unwrap()).unwrap().expect("built with -g");
    let at = lines.at_symbol("twice", 0, false);
    assert_eq!(at.len(), 1, "{at:?}");
    assert_eq!((at[0].function.as_str(), at[0].line), ("twice", 3), "{at:?}");
    assert!(at[0].file.ends_with("a.c"), "{at:?}");
    assert_eq!(lines.at_symbol("helper", 0, false), [], "two static helpers: which one is unknown");
    assert_eq!(lines.at_symbol("other", 0, false)[0].line, 2);
    let stripped = dir.path().join("stripped");
    assert!(std::process::Command::new("arm-linux-gnueabihf-strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&stripped)
        .arg(&prog)
        .status()
        .unwrap()
        .success());
    assert!(harness::judge::lines::KernelLines::parse(&std::fs::read(&stripped).unwrap()).unwrap().is_none());
}
