//! Kconfig fragments: what a profile asks for, and whether `olddefconfig` kept it.
//!
//! `olddefconfig` silently drops a symbol whose dependencies are unmet, so a
//! fragment that "enables KASAN" can produce a kernel without it. Every request
//! is checked against the final `.config` and the ones that did not survive are
//! named, as kunit.py does.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The value a fragment line sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `# CONFIG_FOO is not set` (or `CONFIG_FOO=n`).
    Unset,
    /// `=y`, `=m`, a number or a quoted string, as written.
    Set(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Unset => f.write_str("is not set"),
            Value::Set(v) => write!(f, "={v}"),
        }
    }
}

/// One symbol a fragment requests, with where it was requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub symbol: String,
    pub value: Value,
    pub origin: String,
}

/// Parses a fragment or a `.config`. Lines that are neither assignments nor
/// "is not set" comments are ignored; a malformed assignment is an error that
/// names the line, because a typo there would otherwise vanish silently.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Request>> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = || format!("{origin}:{}", n + 1);
        if let Some(rest) = line.strip_prefix("# CONFIG_") {
            if let Some(name) = rest.strip_suffix(" is not set") {
                out.push(Request { symbol: format!("CONFIG_{name}"), value: Value::Unset, origin: at() });
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((sym, val)) = line.split_once('=') else {
            bail!("{}: expected CONFIG_NAME=value or '# CONFIG_NAME is not set', found {raw:?}", at());
        };
        if !sym.starts_with("CONFIG_") || sym.len() == "CONFIG_".len() || val.is_empty() {
            bail!("{}: expected CONFIG_NAME=value, found {raw:?}", at());
        }
        let value = if val == "n" { Value::Unset } else { Value::Set(val.to_string()) };
        out.push(Request { symbol: sym.to_string(), value, origin: at() });
    }
    Ok(out)
}

/// Reads and parses fragment files in order; a later fragment overrides an
/// earlier one, as merge_config.sh does.
pub fn read_fragments(paths: &[PathBuf]) -> Result<Vec<Request>> {
    let mut merged: BTreeMap<String, Request> = BTreeMap::new();
    for path in paths {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading config fragment {}", path.display()))?;
        for req in parse(&text, &path.display().to_string())? {
            merged.insert(req.symbol.clone(), req);
        }
    }
    Ok(merged.into_values().collect())
}

/// A `.config` with the fragments' lines in place of the ones for the same
/// symbols, as merge_config.sh's merge does: for trees whose merge_config.sh
/// cannot write to an `O=` directory (Linux 3.5's has no `-O`). Pure.
pub fn merge(base: &str, fragments: &[String]) -> String {
    let symbol = |line: &str| -> Option<String> {
        let line = line.trim();
        let rest = line
            .strip_prefix("# ")
            .and_then(|r| r.strip_suffix(" is not set"))
            .or_else(|| line.split_once('=').map(|(s, _)| s))?;
        rest.starts_with("CONFIG_").then(|| rest.to_string())
    };
    let overridden: std::collections::BTreeSet<String> =
        fragments.iter().flat_map(|f| f.lines()).filter_map(symbol).collect();
    let mut out: String =
        base.lines().filter(|l| symbol(l).is_none_or(|s| !overridden.contains(&s))).flat_map(|l| [l, "\n"]).collect();
    for f in fragments {
        out.push_str(f);
        if !f.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// A requested symbol whose final value differs from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub request: Request,
    pub actual: Value,
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} (requested in {}), but the final .config has {}",
            self.request.symbol, self.request.value, self.request.origin, self.actual
        )
    }
}

/// Compares requests against a final `.config`. A symbol absent from the
/// final config counts as unset: that is how Kconfig records a symbol whose
/// menu is hidden.
pub fn check_survival(requests: &[Request], final_config: &str) -> Vec<Dropped> {
    let actual: BTreeMap<String, Value> =
        parse(final_config, ".config").unwrap_or_default().into_iter().map(|r| (r.symbol, r.value)).collect();
    requests
        .iter()
        .filter_map(|req| {
            let got = actual.get(&req.symbol).cloned().unwrap_or(Value::Unset);
            (got != req.value).then(|| Dropped { request: req.clone(), actual: got })
        })
        .collect()
}

/// Reads the final config and fails naming every request that did not survive.
pub fn verify(requests: &[Request], config_path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(config_path).with_context(|| format!("reading {}", config_path.display()))?;
    let dropped = check_survival(requests, &text);
    if dropped.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = dropped.iter().map(|d| format!("  {d}")).collect();
    bail!(
        "{} requested config symbol(s) did not survive olddefconfig (unmet dependencies or a typo):\n{}",
        dropped.len(),
        list.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_set_unset_and_strings() {
        let reqs =
            parse("# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\nCONFIG_D=n\n\n", "f").unwrap();
        let got: Vec<_> = reqs.iter().map(|r| (r.symbol.as_str(), r.value.clone())).collect();
        assert_eq!(
            got,
            vec![
                ("CONFIG_A", Value::Set("y".into())),
                ("CONFIG_B", Value::Unset),
                ("CONFIG_C", Value::Set("\"x y\"".into())),
                ("CONFIG_D", Value::Unset),
            ]
        );
        assert_eq!(reqs[1].origin, "f:3");
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let err = parse("CONFIG_A=y\nKASAN=y\n", "frag.config").unwrap_err().to_string();
        assert!(err.contains("frag.config:2"), "{err}");
        let err = parse("CONFIG_A\n", "frag.config").unwrap_err().to_string();
        assert!(err.contains("frag.config:1"), "{err}");
    }

    #[test]
    fn survival_names_exactly_the_dropped_symbols() {
        let reqs = parse(
            "CONFIG_MODULES=y\nCONFIG_KASAN=y\n# CONFIG_CPU_IDLE is not set\nCONFIG_GONE=n\nCONFIG_M=m\n",
            "frag",
        )
        .unwrap();
        let fin = "CONFIG_MODULES=y\n# CONFIG_KASAN is not set\nCONFIG_CPU_IDLE=y\nCONFIG_M=y\n";
        let dropped = check_survival(&reqs, fin);
        let names: Vec<_> = dropped.iter().map(|d| d.request.symbol.as_str()).collect();
        assert_eq!(names, vec!["CONFIG_KASAN", "CONFIG_CPU_IDLE", "CONFIG_M"]);
        assert_eq!(dropped[2].actual, Value::Set("y".into()));
        assert!(dropped[0].to_string().contains("CONFIG_KASAN =y (requested in frag:2)"));
    }

    #[test]
    fn merge_replaces_the_base_lines_of_the_fragments_symbols() {
        let base = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=1\n# a comment\n";
        let merged = merge(base, &["CONFIG_B=y\n".into(), "# CONFIG_A is not set".into()]);
        assert_eq!(merged, "CONFIG_C=1\n# a comment\nCONFIG_B=y\n# CONFIG_A is not set\n");
        let got = parse(&merged, "m").unwrap();
        assert_eq!(got.iter().filter(|r| r.symbol == "CONFIG_A").count(), 1, "{merged}");
    }

    #[test]
    fn later_fragments_override_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.config");
        let b = dir.path().join("b.config");
        std::fs::write(&a, "CONFIG_X=y\nCONFIG_Y=y\n").unwrap();
        std::fs::write(&b, "# CONFIG_X is not set\n").unwrap();
        let reqs = read_fragments(&[a, b.clone()]).unwrap();
        let x = reqs.iter().find(|r| r.symbol == "CONFIG_X").unwrap();
        assert_eq!(x.value, Value::Unset);
        assert!(x.origin.starts_with(&b.display().to_string()));
    }

    #[test]
    fn verify_fails_with_the_list() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join(".config");
        std::fs::write(&cfg, "CONFIG_A=y\n").unwrap();
        let reqs = parse("CONFIG_A=y\nCONFIG_B=y\n", "frag").unwrap();
        let err = verify(&reqs, &cfg).unwrap_err().to_string();
        assert!(err.contains("1 requested config symbol(s)"), "{err}");
        assert!(err.contains("CONFIG_B =y"), "{err}");
        assert!(!err.contains("CONFIG_A"), "{err}");
        assert!(verify(&reqs[..1], &cfg).is_ok());
    }

    /// Every header a module of fixtures/ or kmod/ includes is classified in
    /// configs/header-needs.toml, and each QEMU profile that runs fixtures
    /// requests (=y) every symbol their headers need: a profile's fragment
    /// that loses one fails here, not as a module that cannot load.
    #[test]
    fn the_fixture_profiles_request_every_symbol_the_fixtures_need() {
        #[derive(serde::Deserialize)]
        struct Needs {
            headers: std::collections::BTreeMap<String, Vec<String>>,
        }
        let root = crate::repo_root();
        let needs: Needs =
            toml::from_str(&std::fs::read_to_string(root.join("configs/header-needs.toml")).unwrap()).unwrap();
        let include = regex::Regex::new(r"(?m)^\s*#\s*include\s*<((?:linux|kunit|asm|mach|plat)/[\w./-]+)>").unwrap();
        // (profile, the module directories that run on it)
        let plain = [
            "kmod",
            "fixtures/lessons",
            "fixtures/api-changes",
            "fixtures/tutorial",
            "fixtures/board",
            "compat35/board",
        ];
        let debug = ["kmod", "fixtures/lessons", "fixtures/faults", "fixtures/kunit-demo"];
        let mut checked = 0;
        for (profile, dirs) in
            [("exynos4210", &plain[..]), ("exynos4210-debug", &debug[..]), ("exynos4210-debug-full", &debug[..])]
        {
            let p = crate::profile::Profile::load(profile, &root.join("configs")).unwrap();
            let requests = read_fragments(&p.fragment_paths(&root.join("configs"))).unwrap();
            let requested = |sym: &str| requests.iter().any(|r| r.symbol == sym && r.value == Value::Set("y".into()));
            let mut files = Vec::new();
            for d in dirs {
                let mut stack = vec![root.join(d)];
                while let Some(dir) = stack.pop() {
                    for e in std::fs::read_dir(&dir).unwrap().flatten() {
                        let path = e.path();
                        if path.is_dir() {
                            stack.push(path);
                        } else if path.extension().is_some_and(|x| x == "c" || x == "h") && !path.ends_with("app.c") {
                            files.push(path);
                        }
                    }
                }
            }
            assert!(files.len() > 20, "{profile}: the fixtures were found ({})", files.len());
            for f in &files {
                let text = std::fs::read_to_string(f).unwrap();
                for c in include.captures_iter(&text) {
                    let header = &c[1];
                    let Some(symbols) = needs.headers.get(header) else {
                        panic!(
                            "{}: <{header}> is not in configs/header-needs.toml: say which config symbols it needs",
                            f.display()
                        );
                    };
                    for sym in symbols {
                        assert!(
                            requested(sym),
                            "{profile}: {} includes <{header}>, which needs {sym}, but no \
                            fragment of the profile requests {sym}=y",
                            f.display()
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 10, "symbols were checked ({checked})");
    }
}
