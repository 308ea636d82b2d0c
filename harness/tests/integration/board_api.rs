//! The board's API check (board_api.rs) on real module builds, without a
//! boot: what `check` puts in the verdict is the build's `lacks`.

use crate::common::{self, repo};
use harness::api::Api;
use harness::board_api::{Lack, NameKind};
use std::path::Path;

fn kernel() -> harness::kernel::Kernel {
    let args = harness::options::KernelArgs::default();
    harness::prepare::kernel(&args, &harness::prepare::Stages::new()).unwrap_or_else(|e| panic!("{e:#}")).1
}

/// What the board's 3.5 lacks of the module in `dir`, built for `api`
/// (None: the build failed, with its error).
fn lacks(k: &harness::kernel::Kernel, dir: &Path, api: Api) -> Result<Vec<Lack>, String> {
    let work = tempfile::tempdir().unwrap();
    harness::module::build(dir, k, work.path(), &common::build_options(api))
        .map(|b| b.lacks)
        .map_err(|e| format!("{e:#}"))
}

/// The held-out module: timer_setup() (a macro), struct proc_ops (a type)
/// and ktime_get_real_ts64() (a function), each named with its place, the
/// version that added it and the form that builds on 3.5; natively nothing.
#[test]
fn the_modern_module_names_all_three_with_version_and_form() {
    let k = kernel();
    let dir = repo().join("fixtures/board-api/modern");
    let found = lacks(&k, &dir, Api::Linux35).unwrap_or_else(|e| panic!("{e}"));
    let shown: Vec<String> = found.iter().map(Lack::to_string).collect();
    for (name, kind, at, since, form) in [
        ("timer_setup", NameKind::Macro, "hello_modern.c:48", "4.14", "setup_timer(t, fn, data)"),
        ("proc_ops", NameKind::Type, "hello_modern.c:37", "5.6", "struct file_operations"),
        ("ktime_get_real_ts64", NameKind::Function, "hello_modern.c:21", "3.17", "getnstimeofday(&ts)"),
    ] {
        let l = found.iter().find(|l| l.name == name).unwrap_or_else(|| panic!("{name} not named: {shown:#?}"));
        assert_eq!((l.kind, l.at.as_slice(), l.since.as_deref()), (kind, &[at.to_string()][..], Some(since)), "{l}");
        assert!(l.instead.as_deref().is_some_and(|i| i.starts_with(form)), "{l}");
    }
    assert_eq!(lacks(&k, &dir, Api::Native).unwrap_or_else(|e| panic!("{e}")), Vec::<Lack>::new());
}

/// A module that forgets an include that 3.5 needs and 6.12's headers make
/// for it (the comparison with 3.5 itself found five of our fixtures doing
/// it) is named, with the header; nothing else is: not what 3.5's own
/// headers include for it (<linux/err.h> through <linux/device.h>), nor a
/// header in a branch 3.5 does not take. The real 3.5's compiler stops at
/// exactly this name (`check --profile tiny4412-3.5` on the fixture).
#[test]
fn a_forgotten_include_that_3_5_needs_is_named_and_nothing_else() {
    let k = kernel();
    let found = lacks(&k, &repo().join("fixtures/board-api/includes"), Api::Linux35).unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<(&str, NameKind, &[String])> = found.iter().map(|l| (&*l.name, l.kind, &l.at[..])).collect();
    assert_eq!(got, [("IRQ_TYPE_EDGE_BOTH", NameKind::Name, &["key_irq_includes.c:40".to_string()][..])]);
    let note = found[0].note.as_deref().unwrap_or_default();
    assert!(note.contains("(<linux/irq.h>)") && note.contains("an undeclared name"), "{note}");
}

/// Modules of the suite that do not build on the board, each with why:
/// what the check must name, or None when the build fails here too.
const NOT_ON_THE_BOARD: &[(&str, Option<&str>)] = &[
    // 3.5's file_operations has no .ioctl either (removed in 2.6.36).
    ("fixtures/api-changes/fops-ioctl", None),
];

/// No module that builds on the board is flagged: kmod (Rust, with its C
/// shim), its C twin, every lesson and every api-change fixture.
#[test]
fn nothing_that_builds_on_the_board_is_flagged() {
    let k = kernel();
    let mut dirs = vec![repo().join("kmod"), repo().join("kmod/c-twin")];
    for group in ["fixtures/lessons", "fixtures/api-changes"] {
        let mut sub: Vec<_> = std::fs::read_dir(repo().join(group)).unwrap().flatten().map(|e| e.path()).collect();
        sub.retain(|p| p.is_dir());
        sub.sort();
        dirs.extend(sub);
    }
    assert!(dirs.len() > 50, "{}", dirs.len());
    let mut wrong = Vec::new();
    for dir in &dirs {
        let rel = dir.strip_prefix(repo()).unwrap().display().to_string();
        let expected = NOT_ON_THE_BOARD.iter().find(|(d, _)| *d == rel).map(|(_, n)| *n);
        match (lacks(&k, dir, Api::Linux35), expected) {
            (Ok(found), None) if found.is_empty() => {}
            (Err(_), Some(None)) => {}
            (Ok(found), Some(Some(name))) if found.iter().map(|l| l.name.as_str()).eq([name]) => {}
            (got, _) => wrong.push(format!("{rel}: {got:#?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// One fixture per kind of name (fixtures/board-api/README.md): each named
/// with its kind, and nothing else.
#[test]
fn each_kind_s_fixture_is_named_with_its_kind() {
    let k = kernel();
    for (dir, names, kind) in [
        ("function", &["ktime_get_real_seconds"][..], NameKind::Function),
        ("macro", &["GENMASK"][..], NameKind::Macro),
        ("type", &["time64_t"][..], NameKind::Type),
        ("struct-member", &["read_iter"][..], NameKind::StructMember),
        (
            "exported-symbol",
            &["backlight_device_register", "backlight_device_unregister"][..],
            NameKind::ExportedSymbol,
        ),
    ] {
        let found =
            lacks(&k, &repo().join("fixtures/board-api").join(dir), Api::Linux35).unwrap_or_else(|e| panic!("{e}"));
        // A header 3.5 does not have is named first (its compiler stops
        // there): the function fixture includes <linux/timekeeping.h>.
        let headers: Vec<&str> = found.iter().filter(|l| l.kind == NameKind::Header).map(|l| &*l.name).collect();
        let want_headers: &[&str] = if dir == "function" { &["<linux/timekeeping.h>"] } else { &[] };
        assert_eq!(headers, want_headers, "{dir}: {found:#?}");
        let got: Vec<(&str, NameKind)> =
            found.iter().filter(|l| l.kind != NameKind::Header).map(|l| (l.name.as_str(), l.kind)).collect();
        let want: Vec<(&str, NameKind)> = names.iter().map(|n| (*n, kind)).collect();
        assert_eq!(got, want, "{dir}: {found:#?}");
    }
}
