//! Rules the harness's sources keep, read from the sources with syn: every
//! `use` and path, not text, so `use std::{fs, …}`, a renamed import and a
//! fully written path all count, and `#[cfg(test)]` items are left out.
//! Used by tests only (judge/'s no-I/O rule, the layering below).

use std::collections::HashMap;
use syn::visit::{self, Visit};

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.meta.require_list().is_ok_and(|l| l.tokens.to_string().contains("test")))
}

/// Every banned item a file's code (not its tests) names, with how.
struct Finder<'r> {
    banned: &'r [&'r [&'r str]],
    banned_macros: &'r [&'r str],
    uses: HashMap<String, Vec<String>>,
    found: Vec<String>,
}

impl Finder<'_> {
    fn check(&mut self, segs: Vec<String>, what: &str) {
        let resolved = match segs.first().and_then(|f| self.uses.get(f)) {
            Some(full) => full.iter().cloned().chain(segs[1..].iter().cloned()).collect(),
            None => segs.clone(),
        };
        for candidate in [&segs, &resolved] {
            if self
                .banned
                .iter()
                .any(|b| candidate.len() >= b.len() && candidate.iter().zip(b.iter()).all(|(x, y)| x == y))
            {
                self.found.push(format!("{what} {}", candidate.join("::")));
                return;
            }
        }
    }

    fn flatten(tree: &syn::UseTree, prefix: Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
        let with = |s: &syn::Ident| prefix.iter().cloned().chain([s.to_string()]).collect::<Vec<_>>();
        match tree {
            syn::UseTree::Path(p) => Self::flatten(&p.tree, with(&p.ident), out),
            syn::UseTree::Name(n) if n.ident == "self" => {
                out.push((prefix.last().cloned().unwrap_or_default(), prefix.clone()))
            }
            syn::UseTree::Name(n) => out.push((n.ident.to_string(), with(&n.ident))),
            syn::UseTree::Rename(r) => out.push((r.rename.to_string(), with(&r.ident))),
            syn::UseTree::Glob(_) => out.push(("*".into(), prefix.iter().cloned().chain(["*".into()]).collect())),
            syn::UseTree::Group(g) => g.items.iter().for_each(|t| Self::flatten(t, prefix.clone(), out)),
        }
    }
}

impl<'ast> Visit<'ast> for Finder<'_> {
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
            if self.banned_macros.contains(&last.ident.to_string().as_str()) {
                self.found.push(format!("macro {}!", last.ident));
            }
        }
        visit::visit_macro(self, m);
    }
}

/// What `code` (a whole file, its tests left out) reaches of `banned`
/// paths (as segments: a path counts if it starts with one, after its
/// first segment is resolved through the file's `use` items, so
/// `use std::{fs, io}` and `use … as X` count) and `banned_macros`.
pub fn reached(code: &str, banned: &[&[&str]], banned_macros: &[&str]) -> Vec<String> {
    let file = syn::parse_file(code).unwrap_or_else(|e| panic!("parsing: {e}"));
    let mut f = Finder { banned, banned_macros, uses: HashMap::new(), found: Vec::new() };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The build side (configs to plan) never reaches the run side (the
    /// guest, the replay, the check, the board image): the pipeline's
    /// arrows run one way.
    #[test]
    fn the_build_side_does_not_import_the_run_side() {
        let run_side: &[&[&str]] =
            &[&["crate", "guest"], &["crate", "replay"], &["crate", "check"], &["crate", "board"]];
        let src = crate::repo_root().join("harness/src");
        let build_side = [
            "api",
            "busybox",
            "cache",
            "changes",
            "kconfig",
            "kernel",
            "module",
            "packages",
            "plan",
            "prepare",
            "profile",
            "program",
            "sandbox",
            "toolchain",
        ];
        for f in build_side {
            let path = src.join(format!("{f}.rs"));
            let found = reached(&std::fs::read_to_string(&path).unwrap(), run_side, &[]);
            assert!(found.is_empty(), "{} reaches the run side: {found:?}", path.display());
        }
        // And the check sees such an import.
        assert!(!reached("use crate::guest::rootfs;", run_side, &[]).is_empty());
    }
}
