//! The Rust toolchain a module directory needs: a Rust module (one with a
//! Cargo.toml, like kmod/) is built for a bare-metal target, which rustup
//! does not install by itself when the toolchain is already there, whatever
//! `rust-toolchain.toml` lists. The harness adds it, or says the command.

use crate::process;
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

/// The targets a module directory's Rust code is built for: those its
/// `rust-toolchain.toml` lists and the `[build] target` of its
/// `.cargo/config.toml`. Empty for a C module.
pub fn targets_wanted(dir: &Path) -> Result<Vec<String>> {
    if !dir.join("Cargo.toml").is_file() {
        return Ok(Vec::new());
    }
    let mut targets: Vec<String> = Vec::new();
    let read = |name: &str| -> Result<Option<toml::Table>> {
        let p = dir.join(name);
        if !p.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        Ok(Some(toml::from_str(&text).with_context(|| format!("{}: not valid TOML", p.display()))?))
    };
    if let Some(t) = read("rust-toolchain.toml")? {
        let listed =
            t.get("toolchain").and_then(|t| t.get("targets")).and_then(|t| t.as_array()).cloned().unwrap_or_default();
        targets.extend(listed.iter().filter_map(|v| v.as_str().map(str::to_string)));
    }
    if let Some(t) = read(".cargo/config.toml")? {
        if let Some(target) = t.get("build").and_then(|b| b.get("target")).and_then(|t| t.as_str()) {
            targets.push(target.to_string());
        }
    }
    targets.sort();
    targets.dedup();
    Ok(targets)
}

/// The command that adds `target` to `toolchain`.
pub fn add_command(toolchain: &str, target: &str) -> String {
    format!("rustup target add --toolchain {toolchain} {target}")
}

/// Makes sure the toolchain that `dir` resolves to has every target the
/// directory needs, installing a missing one with rustup unless
/// `HARNESS_NO_INSTALL` is set.
pub fn ensure(dir: &Path, log_dir: &Path) -> Result<()> {
    let wanted = targets_wanted(dir)?;
    if wanted.is_empty() {
        return Ok(());
    }
    if crate::packages::find_program("rustup").is_none() {
        bail!(
            "the module in {} is Rust, built for {}, and needs rustup to add that target; install rustup \
             (https://rustup.rs: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh), then run: rustup \
                 target add {}",
            dir.display(),
            wanted.join(", "),
            wanted.join(" ")
        );
    }
    // The toolchain rustup picks in that directory (its rust-toolchain.toml).
    let active = process::output_in(Some(dir), "rustup", &["show", "active-toolchain"])
        .with_context(|| format!("asking rustup which toolchain {} uses", dir.display()))?;
    let toolchain = active.split_whitespace().next().context("rustup named no active toolchain")?.to_string();
    let installed =
        process::output_in(Some(dir), "rustup", &["target", "list", "--installed", "--toolchain", &toolchain])
            .with_context(|| format!("listing the targets of {toolchain}"))?;
    let missing: Vec<&String> = wanted.iter().filter(|t| !installed.lines().any(|l| l.trim() == t.as_str())).collect();
    for target in missing {
        let command = add_command(&toolchain, target);
        if crate::packages::install_refused() {
            bail!(
                "the Rust target {target} is missing for {toolchain}; HARNESS_NO_INSTALL is set, so add it \
                yourself:\n  {command}"
            );
        }
        eprintln!("harness: installing the Rust target {target} for {toolchain} ({command})");
        std::fs::create_dir_all(log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
        let args: Vec<OsString> =
            ["target", "add", "--toolchain", &toolchain, target].iter().map(OsString::from).collect();
        // Parallel checks add it once: the others wait, then find it there.
        let _lock = crate::cache::lock(&log_dir.join("rustup.lock"), "adding a Rust target")?;
        process::Logged::new("rustup", &args, &log_dir.join("rustup-target.log"), Duration::from_secs(15 * 60))
            .dir(dir)
            .run(|_| {})
            .with_context(|| format!("adding the Rust target (to do it by hand: {command})"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmod_wants_the_bare_metal_arm_target_and_c_modules_want_none() {
        let root = crate::repo_root();
        assert_eq!(targets_wanted(&root.join("kmod")).unwrap(), ["armv7a-none-eabi"]);
        assert!(targets_wanted(&root.join("kmod/c-twin")).unwrap().is_empty());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname='x'\n").unwrap();
        std::fs::create_dir_all(dir.path().join(".cargo")).unwrap();
        std::fs::write(dir.path().join(".cargo/config.toml"), "[build]\ntarget = 'thumbv7em-none-eabi'\n").unwrap();
        assert_eq!(targets_wanted(dir.path()).unwrap(), ["thumbv7em-none-eabi"]);
        assert_eq!(
            add_command("stable-x86_64-unknown-linux-gnu", "armv7a-none-eabi"),
            "rustup target add --toolchain stable-x86_64-unknown-linux-gnu armv7a-none-eabi"
        );
    }
}
