//! The build sandbox against fixtures/hostile-makefile, whose `$(shell …)`
//! lines try to write outside the module's copy, read a file in the home
//! and connect to the host while kbuild reads the Makefile. The kernel is a
//! stand-in build directory (a Makefile that reads the module's as kbuild
//! does and builds nothing), so no kernel is built and nothing boots.
//!
//! Each attempt is judged by what it would have done, not by what the
//! Makefile prints: the marker file, the listener's queue. The same build
//! without the sandbox shows each escape succeeding, so the checks can fail.

use crate::common::repo;
use harness::api::Api;
use harness::kernel::Kernel;
use harness::module::Options;
use harness::sandbox::Sandbox;
use std::net::TcpListener;
use std::path::Path;

fn standin_kernel(dir: &Path) -> Kernel {
    std::fs::write(dir.join("Makefile"), "include $(M)/Makefile\nmodules:\n\t@echo stand-in kernel: nothing built\n")
        .unwrap();
    Kernel {
        build_dir: dir.to_path_buf(),
        source_dir: dir.to_path_buf(),
        release: "0.0-standin".into(),
        arch: "arm".into(),
        cross_compile: "arm-linux-gnueabihf-".into(),
        make_vars: Vec::new(),
        built_now: false,
    }
}

/// What one build of the hostile Makefile did: its log, whether the marker
/// outside the copy was written, whether the host's listener was reached.
struct Escapes {
    log: String,
    wrote: bool,
    connected: bool,
}

fn build_hostile(sandbox: Sandbox) -> Escapes {
    let kdir = tempfile::tempdir().unwrap();
    let kernel = standin_kernel(kdir.path());
    // Outside the copy: in the repository's target/ (which the sandbox hides).
    let outside = tempfile::tempdir_in(repo().join("target")).unwrap();
    let marker = outside.path().join("the-shell-wrote-here");
    // A secret in the home, as ~/.ssh/id_rsa would be.
    let home = std::env::var_os("HOME").expect("HOME is set");
    let secret_dir = tempfile::tempdir_in(&home).unwrap();
    let secret = secret_dir.path().join("id_rsa");
    std::fs::write(&secret, "not a real key").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    // Each test is a process of its own under nextest: these are its alone.
    std::env::set_var("HARNESS_TEST_MARKER", &marker);
    std::env::set_var("HARNESS_TEST_SECRET", &secret);
    std::env::set_var("HARNESS_TEST_PORT", listener.local_addr().unwrap().port().to_string());

    let work = tempfile::tempdir().unwrap();
    sandbox.ready().unwrap_or_else(|e| panic!("{e:#}"));
    let err = harness::module::build(
        &repo().join("fixtures/hostile-makefile"),
        &kernel,
        work.path(),
        &Options { jobs: 1, api: Api::Native, sandbox, coverage: false },
    )
    .expect_err("the stand-in kernel builds no .ko");
    assert!(format!("{err:#}").contains("produced no .ko"), "{err:#}");
    let log = std::fs::read_to_string(work.path().join("module-build.log")).unwrap();
    Escapes { log, wrote: marker.exists(), connected: listener.accept().is_ok() }
}

#[test]
fn a_hostile_makefile_escapes_without_the_sandbox_and_fails_every_escape_in_it() {
    let open = build_hostile(Sandbox::Off);
    assert!(
        open.wrote && open.connected,
        "without the sandbox the escapes work (else this test proves nothing):\n{}",
        open.log
    );
    assert!(open.log.contains("read a file in the home: escaped"), "{}", open.log);

    let held = build_hostile(Sandbox::On);
    assert!(held.log.contains("stand-in kernel: nothing built"), "the build itself ran:\n{}", held.log);
    assert!(!held.wrote, "the Makefile wrote outside the copy:\n{}", held.log);
    assert!(!held.connected, "the Makefile reached the host's network:\n{}", held.log);
    for attempt in ["write outside the copy", "read a file in the home", "connect to the host"] {
        assert!(held.log.contains(&format!("{attempt}: refused")), "{attempt}:\n{}", held.log);
    }
}
