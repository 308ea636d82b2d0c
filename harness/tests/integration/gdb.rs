//! `check --gdb`: the command the harness prints, run as a user would but in
//! gdb's batch mode, breaking in the C twin's init and in the Rust module's.

use crate::common::repo;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The 1-based number of the first line of `file` (under the repository)
/// that contains `text`, after the first that contains `after`.
fn line_of(file: &str, after: &str, text: &str) -> usize {
    let src = std::fs::read_to_string(repo().join(file)).unwrap();
    let start = src.lines().position(|l| l.contains(after)).unwrap_or_else(|| panic!("no {after:?} in {file}"));
    start
        + 1
        + src.lines().skip(start).position(|l| l.contains(text)).unwrap_or_else(|| panic!("no {text:?} in {file}"))
}

/// Waits for `child` until `deadline`; kills it if it is still running.
fn wait(child: &mut Child, deadline: Instant, what: &str) -> std::process::ExitStatus {
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One boot with both modules under gdb: a breakpoint on a line of the C
/// twin's init (after its strcpy) prints the kzalloc'd buffer, one on the
/// Rust init's inlined `exercise::<Kmalloc>` prints its argument; both were
/// set before either module existed, and the run still passes.
#[test]
fn gdb_breaks_in_the_c_twins_init_and_the_rust_modules_and_the_run_passes() {
    let mut harness = Command::new(env!("CARGO_BIN_EXE_tiny4412-harness"))
        .args(["check", "--gdb", "--module", "kmod/c-twin", "--module", "kmod"])
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the harness binary");
    let (lines, seen) = mpsc::channel::<String>();
    let stderr = harness.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = lines.send(line);
        }
        all
    });
    // Module builds (the Rust one cold in CI) and a shared kernel come first.
    let deadline = Instant::now() + Duration::from_secs(20 * 60);
    let command = loop {
        let line = match seen.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => l,
            Err(_) => {
                let _ = harness.kill();
                let _ = harness.wait();
                panic!("the harness printed no gdb command; it said:\n{}", reader.join().unwrap());
            }
        };
        if let Some(rest) = line.trim().strip_prefix("gdb-multiarch -x ") {
            break rest.to_string();
        }
    };

    let c_line = line_of("kmod/c-twin/mmc_byte.c", "strcpy(kbuf, \"123\");", "kfree(kbuf);");
    let rust_line = line_of("kmod/src/lib.rs", "fn exercise<", "new_zeroed(size)");
    let mut gdb = Command::new("gdb-multiarch")
        .args(["-nx", "-batch", "-x", &command])
        .args(["-ex", &format!("break mmc_byte.c:{c_line}"), "-ex", "break mmc_byte::exercise<mmc_byte::Kmalloc>"])
        // Each module loads twice (the default second load): each breakpoint
        // is hit twice, the second time passed over.
        .args(["-ex", "continue", "-ex", "print kbuf", "-ex", "continue", "-ex", "continue", "-ex", "print size"])
        .args(["-ex", "continue", "-ex", "continue"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running gdb-multiarch, which check --gdb installs");
    let (mut out, mut err) = (gdb.stdout.take().unwrap(), gdb.stderr.take().unwrap());
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut shown = String::new();
    let _ = out.read_to_string(&mut shown);
    wait(&mut gdb, Instant::now() + Duration::from_secs(300), "gdb");
    let shown = format!("{shown}{}", err_reader.join().unwrap());

    let status = wait(&mut harness, Instant::now() + Duration::from_secs(300), "the harness");
    let mut verdict = String::new();
    harness.stdout.take().unwrap().read_to_string(&mut verdict).unwrap();
    let said = reader.join().unwrap();
    let all = format!("gdb:\n{shown}\nharness stdout:\n{verdict}\nharness stderr:\n{said}");

    let c_stop = regex::Regex::new(&format!(r"Breakpoint 1, mmc_init \(\) at \S*mmc_byte\.c:{c_line}\n")).unwrap();
    assert!(c_stop.is_match(&shown), "no stop in the C twin's init at line {c_line}:\n{all}");
    assert!(
        regex::Regex::new(r#"\$1 = 0x[0-9a-f]{8} "123""#).unwrap().is_match(&shown),
        "the local kbuf, after strcpy:\n{all}"
    );
    let rust_stop = regex::Regex::new(&format!(
        r"Breakpoint 2, mmc_byte::exercise<mmc_byte::Kmalloc> \(size=100\) at src/lib\.rs:{rust_line}\n"
    ))
    .unwrap();
    assert!(rust_stop.is_match(&shown), "no stop in the Rust init's exercise::<Kmalloc> at line {rust_line}:\n{all}");
    assert!(shown.contains("$2 = 100"), "the argument size:\n{all}");
    assert!(verdict.contains("2 of 2 passed"), "{all}");
    // Its guest was resumed, not booted, and held all the same.
    assert!(said.contains(", resumed from "), "{all}");
    assert_eq!(status.code(), Some(0), "{all}");
}
