//! Judging: the console as typed lines, steps and kernel reports, and the
//! verdict. Nothing here touches the file system or a process (a test
//! enforces it): a saved console log judges the same as a live one.

pub mod event;
pub mod expect;
pub mod ktap;
pub mod report;
pub mod step;
pub mod symbols;
pub mod verdict;
pub mod watch;

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use syn::visit::{self, Visit};

    /// Paths the judge must not reach, as segments; a path counts if it
    /// starts with one, after its first segment is resolved through the
    /// file's `use` items (so `use std::{fs, io}` and `use … as X` count).
    const BANNED: &[&[&str]] = &[
        &["std", "fs"],
        &["std", "io"],
        &["std", "process"],
        &["std", "net"],
        &["std", "env"],
        &["std", "thread"],
        &["std", "os"],
        &["std", "time", "SystemTime"],
        &["std", "time", "Instant", "now"],
        // A glob import leaves these bare.
        &["Instant", "now"],
        &["SystemTime"],
        &["duct"],
        &["os_pipe"],
        &["serialport"],
        &["tempfile"],
        &["libc"],
        // The harness's own modules that do I/O.
        &["crate", "process"],
        &["crate", "cache"],
        &["crate", "packages"],
        &["crate", "sandbox"],
        &["crate", "guest"],
        &["crate", "replay"],
        &["crate", "prepare"],
        &["crate", "check"],
        &["crate", "module"],
    ];
    /// Macros that print or read the environment.
    const BANNED_MACROS: &[&str] = &["print", "println", "eprint", "eprintln", "dbg", "env", "option_env"];

    fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
        attrs.iter().any(|a| a.path().is_ident("cfg") && a.meta.require_list().is_ok_and(|l| l.tokens.to_string().contains("test")))
    }

    /// Every I/O item a file's code (not its tests) names, with where.
    #[derive(Default)]
    struct Finder {
        uses: HashMap<String, Vec<String>>,
        found: Vec<String>,
    }

    impl Finder {
        fn check(&mut self, segs: Vec<String>, what: &str) {
            let resolved = match segs.first().and_then(|f| self.uses.get(f)) {
                Some(full) => full.iter().cloned().chain(segs[1..].iter().cloned()).collect(),
                None => segs.clone(),
            };
            for candidate in [&segs, &resolved] {
                if BANNED.iter().any(|b| candidate.len() >= b.len() && candidate.iter().zip(b.iter()).all(|(x, y)| x == y)) {
                    self.found.push(format!("{what} {}", candidate.join("::")));
                    return;
                }
            }
        }

        fn flatten(tree: &syn::UseTree, prefix: Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
            let with = |s: &syn::Ident| prefix.iter().cloned().chain([s.to_string()]).collect::<Vec<_>>();
            match tree {
                syn::UseTree::Path(p) => Self::flatten(&p.tree, with(&p.ident), out),
                syn::UseTree::Name(n) if n.ident == "self" => out.push((prefix.last().cloned().unwrap_or_default(), prefix.clone())),
                syn::UseTree::Name(n) => out.push((n.ident.to_string(), with(&n.ident))),
                syn::UseTree::Rename(r) => out.push((r.rename.to_string(), with(&r.ident))),
                syn::UseTree::Glob(_) => out.push(("*".into(), prefix.iter().cloned().chain(["*".into()]).collect())),
                syn::UseTree::Group(g) => g.items.iter().for_each(|t| Self::flatten(t, prefix.clone(), out)),
            }
        }
    }

    impl<'ast> Visit<'ast> for Finder {
        fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
            if !is_cfg_test(&m.attrs) {
                visit::visit_item_mod(self, m);
            }
        }
        fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
            if !is_cfg_test(&f.attrs) {
                visit::visit_item_fn(self, f);
            }
        }
        fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
            if !is_cfg_test(&i.attrs) {
                visit::visit_item_impl(self, i);
            }
        }
        fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
            if is_cfg_test(&u.attrs) {
                return;
            }
            let mut names = Vec::new();
            Self::flatten(&u.tree, Vec::new(), &mut names);
            for (name, full) in names {
                self.check(full.clone(), "use");
                self.uses.insert(name, full);
            }
        }
        fn visit_path(&mut self, p: &'ast syn::Path) {
            self.check(p.segments.iter().map(|s| s.ident.to_string()).collect(), "path");
            visit::visit_path(self, p);
        }
        fn visit_macro(&mut self, m: &'ast syn::Macro) {
            if let Some(last) = m.path.segments.last() {
                if BANNED_MACROS.contains(&last.ident.to_string().as_str()) {
                    self.found.push(format!("macro {}!", last.ident));
                }
            }
            visit::visit_macro(self, m);
        }
    }

    fn io_in(code: &str) -> Vec<String> {
        let file = syn::parse_file(code).unwrap_or_else(|e| panic!("parsing: {e}"));
        let mut f = Finder::default();
        // `use` items first, wherever they are, so paths resolve through them.
        for item in &file.items {
            if let syn::Item::Use(u) = item {
                f.visit_item_use(u);
            }
        }
        f.found.clear();
        f.visit_file(&file);
        f.found
    }

    /// The rule of this directory, checked on its source: no file system,
    /// processes, network, environment, threads, clock reads or printing
    /// outside the tests.
    #[test]
    fn the_judge_does_no_io() {
        let dir = crate::repo_root().join("harness/src/judge");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let found = io_in(&std::fs::read_to_string(&path).unwrap());
            assert!(found.is_empty(), "{} does I/O: {found:?}", path.display());
            checked += 1;
        }
        assert!(checked >= 8, "only {checked} files in {}", dir.display());
    }

    /// The check finds each way of reaching I/O, and not the test code's.
    #[test]
    fn the_no_io_check_finds_each_form() {
        for (code, what) in [
            ("use std::{fs, io::Write};", "std::fs"),
            ("use std::io::Write;", "std::io::Write"),
            ("fn f() { let _ = std::fs::read(\"x\"); }", "std::fs::read"),
            ("use std::time; fn f() { time::Instant::now(); }", "std::time::Instant::now"),
            ("use std::time::Instant as Clock; fn f() { Clock::now(); }", "std::time::Instant::now"),
            ("use std::time::*; fn f() { Instant::now(); }", "Instant::now"),
            ("fn f() { std::thread::spawn(|| ()); }", "std::thread::spawn"),
            ("fn f() { let _ = std::env::var(\"X\"); }", "std::env::var"),
            ("fn f() { eprintln!(\"x\"); }", "eprintln!"),
            ("fn f() { crate::process::output(\"x\", &[]); }", "crate::process::output"),
            ("mod inner { use duct::cmd; }", "duct::cmd"),
        ] {
            let found = io_in(code);
            assert!(found.iter().any(|f| f.contains(what)), "{code}: {found:?}");
        }
        let clean = "use std::time::{Duration, Instant};\nfn f(now: Instant) -> Instant { now + Duration::from_secs(1) }\n\
                     #[cfg(test)]\nmod tests { fn t() { std::fs::read(\"x\").unwrap(); } }";
        assert_eq!(io_in(clean), Vec::<String>::new());
    }
}
