//! A module's folder as the installed tool meets it: whether the current
//! directory is a module (`check` without `--module`), and `init`, which
//! writes a starter `expect.toml` whose steps are named from the folder's
//! `obj-m`. The Kbuild file or Makefile is only read, as text, never run.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The most of a Kbuild file or Makefile read: a module's is a few KiB.
const MAX_KBUILD: u64 = 1 << 20;

/// The modules a folder's kbuild file names in `obj-m` (`a.o` gives `a`),
/// in order: its `Kbuild`, else its `Makefile`. Entries made of make
/// variables (`$(NAME).o`) are left out: they cannot be known without make.
pub fn obj_m(dir: &Path) -> Result<Vec<String>> {
    let file = ["Kbuild", "Makefile"].iter().map(|f| dir.join(f)).find(|p| p.is_file());
    let Some(file) = file else {
        bail!("{} has no Kbuild or Makefile: not a module folder (add a Kbuild with `obj-m := NAME.o`)", dir.display());
    };
    let mut text = String::new();
    std::fs::File::open(&file)
        .and_then(|f| f.take(MAX_KBUILD).read_to_string(&mut text))
        .with_context(|| format!("reading {}", file.display()))?;
    Ok(obj_m_of(&text))
}

/// `obj-m` in a kbuild file's text (continuation lines joined).
fn obj_m_of(text: &str) -> Vec<String> {
    let joined = text.replace("\\\n", " ");
    let mut names = Vec::new();
    for line in joined.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some(rest) = line.strip_prefix("obj-m") else { continue };
        let Some((_, value)) = rest.split_once('=') else { continue };
        let op = rest.split_once('=').map(|(op, _)| op.trim()).unwrap_or_default();
        if !["", "+", ":", "?"].contains(&op) {
            continue;
        }
        let stems = value.split_whitespace().filter_map(|o| o.strip_suffix(".o"));
        let plain = |s: &&str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        for stem in stems.filter(plain) {
            if !names.iter().any(|n| n == stem) {
                names.push(stem.to_string());
            }
        }
    }
    names
}

/// The current directory as `check`'s default module: Some when it is a
/// module folder (a Kbuild or Makefile naming `obj-m`), else why not.
pub fn module_here(dir: &Path) -> std::result::Result<PathBuf, String> {
    match obj_m(dir) {
        Ok(names) if !names.is_empty() => Ok(dir.to_path_buf()),
        Ok(_) => Err("its Kbuild or Makefile names no `obj-m += NAME.o`".to_string()),
        Err(_) => Err("it has no Kbuild or Makefile".to_string()),
    }
}

/// The starter `expect.toml` for modules `names`: the loading and unloading
/// steps (`insmod:NAME` when there are several), with the keys a student
/// fills in next as comments.
pub fn starter(names: &[String]) -> String {
    let step = |verb: &str, name: &str| if names.len() == 1 { verb.to_string() } else { format!("{verb}:{name}") };
    let matcher = |name: &str, what: &str| ["[{ line = \"", name, ": ", what, "\" }]"].concat();
    let mut t = format!(
        "# What {} must do under `tiny4412-harness check` (docs/expectations.md).\n\
         # Written by `tiny4412-harness init`: as it is, it checks what the defaults do\n\
         # (each step exits 0, no kernel report, a second load works); add what your\n\
         # module prints. `line` matches a whole kernel message (timestamp removed),\n\
         # `regex` matches anywhere in one.\n",
        names.join(", ")
    );
    for name in names {
        t += &format!("\n[[step]]\nname = \"{}\"\nexit = 0\n", step("insmod", name));
        t += "# args = \"count=3\"                      # module parameters for insmod\n";
        t += &format!("# expect = {}   # kernel lines printed while it loads, in order\n", matcher(name, "loaded"));
    }
    t += "\n# A command run in the guest (busybox sh) while the module is loaded:\n\
          # [[step]]\n# name = \"read\"\n# run = \"cat /dev/NAME\"\n";
    t += &format!("# stdout = {}     # the command's own output, in order\n", matcher("NAME", "what it prints"));
    for name in names.iter().rev() {
        t += &format!("\n[[step]]\nname = \"{}\"\nexit = 0\n", step("rmmod", name));
        t += &format!("# expect = {} # kernel lines printed while it unloads\n", matcher(name, "unloaded"));
    }
    t
}

/// Writes the starter `expect.toml` into `dir`, refusing to overwrite one.
pub fn write(dir: &Path) -> Result<PathBuf> {
    let names = obj_m(dir)?;
    if names.is_empty() {
        bail!("{}: its Kbuild or Makefile names no `obj-m += NAME.o`, so there are no steps to name", dir.display());
    }
    let path = dir.join("expect.toml");
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path);
    let mut file = match file {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} exists already: init leaves it alone (remove it to start again)", path.display())
        }
        other => other.with_context(|| format!("creating {}", path.display()))?,
    };
    std::io::Write::write_all(&mut file, starter(&names).as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::expect::Expectations;

    #[test]
    fn obj_m_is_read_from_kbuild_syntax_in_its_forms() {
        let text = "ifneq ($(KERNELRELEASE),)\nobj-m += a.o b.o # two\nobj-m := c.o \\\n  d.o\nobj-m ?= $(X).o a.o\n\
                    obj-y += core.o\nobj-$(CONFIG_X) += e.o\nobj-mm = f.o\na-y := a1.o a2.o\nendif\n";
        assert_eq!(obj_m_of(text), ["a", "b", "c", "d"]);
        assert!(obj_m_of("all:\n\tmake -C /lib/modules M=$(PWD)\n").is_empty());
    }

    #[test]
    fn the_starter_names_its_steps_from_obj_m_and_parses() {
        let one = starter(&["hello".into()]);
        let e = Expectations::parse(&one, "starter").unwrap();
        let names: Vec<_> = e.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["insmod", "rmmod"]);
        assert!(one.contains("# expect = [{ line = \"hello: loaded\" }]"), "{one}");
        let two = starter(&["led".into(), "key".into()]);
        let e = Expectations::parse(&two, "starter").unwrap();
        let names: Vec<_> = e.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["insmod:led", "insmod:key", "rmmod:key", "rmmod:led"]);
        // The commented keys are the format's own: uncommented, they parse too.
        let filled: String = one.lines().map(|l| l.strip_prefix("# ").unwrap_or(l)).collect::<Vec<_>>().join("\n");
        let filled = filled.lines().filter(|l| !l.starts_with("What") && !l.starts_with("Written")).collect::<Vec<_>>();
        let filled = filled.iter().filter(|l| l.contains('=') || l.starts_with('[')).cloned().collect::<Vec<_>>();
        Expectations::parse(&filled.join("\n"), "filled").unwrap();
    }

    #[test]
    fn init_writes_once_and_refuses_a_folder_without_obj_m() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write(dir.path()).unwrap_err().to_string().contains("has no Kbuild or Makefile"));
        assert!(module_here(dir.path()).is_err());
        std::fs::write(dir.path().join("Makefile"), "all:\n\techo hi\n").unwrap();
        assert!(write(dir.path()).unwrap_err().to_string().contains("names no `obj-m"));
        assert!(module_here(dir.path()).unwrap_err().contains("names no"));
        std::fs::write(dir.path().join("Makefile"), "obj-m += hello.o\n").unwrap();
        assert_eq!(module_here(dir.path()).unwrap(), dir.path());
        let path = write(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), starter(&["hello".into()]));
        std::fs::write(&path, "mine").unwrap();
        let err = write(dir.path()).unwrap_err().to_string();
        assert!(err.contains("exists already"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
    }
}
