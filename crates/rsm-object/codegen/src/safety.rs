//! `concoord object -s`: rejects object code that would make replicas diverge
//! or reach outside the state machine. Every replica runs every write; if a
//! method reads the clock, draws random numbers, touches files, the network,
//! the environment or processes, iterates a randomly-seeded hash map, or keeps
//! state in statics, replicas end up with different states.
//!
//! The check is syntactic (it reads the source, it does not type-check), so
//! it errs on the side of caution and names the line and the reason.

use proc_macro2::Span;
use std::collections::BTreeSet;
use syn::visit::{self, Visit};
use syn::{Expr, ExprForLoop, ExprMethodCall, Field, Local, Pat, Type};

/// One rejected construct.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// 1-based line in the source.
    pub line: usize,
    /// Why it is rejected.
    pub reason: String,
}

const FORBIDDEN_PATHS: &[(&str, &str)] = &[
    ("std::fs", "file access"),
    ("tokio::fs", "file access"),
    ("std::process", "process access"),
    ("std::net", "network access"),
    ("tokio::net", "network access"),
    ("reqwest", "network access"),
    ("std::env", "environment access"),
    (
        "std::thread",
        "threads (the object must run single-threaded in the replica)",
    ),
    ("std::time::SystemTime", "wall-clock time"),
    ("std::time::Instant", "wall-clock time"),
    ("chrono", "wall-clock time"),
    ("rand", "randomness"),
    ("getrandom", "randomness"),
    ("fastrand", "randomness"),
    ("uuid::Uuid::new_v4", "randomness"),
    ("std::collections::hash_map::RandomState", "randomness"),
];

const FORBIDDEN_NAMES: &[(&str, &str)] = &[
    ("File", "file access"),
    ("OpenOptions", "file access"),
    ("Command", "process access"),
    ("TcpStream", "network access"),
    ("TcpListener", "network access"),
    ("UdpSocket", "network access"),
    ("SystemTime", "wall-clock time"),
    ("Instant", "wall-clock time"),
    ("thread_rng", "randomness"),
    ("RandomState", "randomness"),
];

const HASH_ITERATION: &[&str] = &[
    "iter",
    "iter_mut",
    "keys",
    "values",
    "values_mut",
    "drain",
    "into_iter",
    "into_keys",
    "into_values",
];

const INTERIOR_MUTABILITY: &[&str] = &[
    "Mutex",
    "RwLock",
    "Cell",
    "RefCell",
    "OnceCell",
    "OnceLock",
    "LazyLock",
    "AtomicBool",
    "AtomicU8",
    "AtomicU16",
    "AtomicU32",
    "AtomicU64",
    "AtomicUsize",
    "AtomicI8",
    "AtomicI16",
    "AtomicI32",
    "AtomicI64",
    "AtomicIsize",
    "AtomicPtr",
];

fn line(span: Span) -> usize {
    span.start().line
}

fn type_mentions(ty: &Type, names: &[&str]) -> bool {
    let text = quote::quote!(#ty).to_string();
    text.split(|c: char| !c.is_alphanumeric() && c != '_')
        .any(|word| names.contains(&word))
}

/// A `HashMap`/`HashSet` with the default (randomly seeded) hasher.
fn is_random_hash_collection(ty: &Type) -> bool {
    let Type::Path(p) = ty else {
        return false;
    };
    let Some(last) = p.path.segments.last() else {
        return false;
    };
    let generic_count = match &last.arguments {
        syn::PathArguments::AngleBracketed(a) => a.args.len(),
        _ => 0,
    };
    (last.ident == "HashMap" && generic_count < 3) || (last.ident == "HashSet" && generic_count < 2)
}

#[derive(Default)]
struct Checker {
    findings: BTreeSet<Finding>,
    hash_names: BTreeSet<String>,
}

impl Checker {
    fn flag(&mut self, span: Span, reason: impl Into<String>) {
        self.findings.insert(Finding {
            line: line(span),
            reason: reason.into(),
        });
    }

    fn check_path(&mut self, span: Span, segments: &[String]) {
        let joined = segments.join("::");
        for (prefix, reason) in FORBIDDEN_PATHS {
            if joined == *prefix || joined.starts_with(&format!("{prefix}::")) {
                self.flag(span, format!("{reason} (`{joined}`)"));
                return;
            }
        }
        for (name, reason) in FORBIDDEN_NAMES {
            if segments.iter().any(|s| s == name) {
                self.flag(span, format!("{reason} (`{joined}`)"));
                return;
            }
        }
    }

    /// The name a receiver expression refers to: `map`, `self.map`, `&self.map`.
    fn receiver_name(expr: &Expr) -> Option<String> {
        match expr {
            Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
            Expr::Field(f) => match &f.member {
                syn::Member::Named(i) => Some(i.to_string()),
                syn::Member::Unnamed(_) => None,
            },
            Expr::Reference(r) => Checker::receiver_name(&r.expr),
            Expr::Paren(p) => Checker::receiver_name(&p.expr),
            _ => None,
        }
    }
}

impl<'ast> Visit<'ast> for Checker {
    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        self.check_path(syn::spanned::Spanned::span(p), &segments);
        visit::visit_path(self, p);
    }

    fn visit_use_tree(&mut self, tree: &'ast syn::UseTree) {
        fn walk(c: &mut Checker, tree: &syn::UseTree, prefix: &mut Vec<String>) {
            match tree {
                syn::UseTree::Path(p) => {
                    prefix.push(p.ident.to_string());
                    walk(c, &p.tree, prefix);
                    prefix.pop();
                }
                syn::UseTree::Name(n) => {
                    prefix.push(n.ident.to_string());
                    c.check_path(n.ident.span(), prefix);
                    prefix.pop();
                }
                syn::UseTree::Rename(r) => {
                    prefix.push(r.ident.to_string());
                    c.check_path(r.ident.span(), prefix);
                    prefix.pop();
                }
                syn::UseTree::Glob(g) => {
                    c.check_path(g.star_token.span, prefix);
                }
                syn::UseTree::Group(g) => {
                    for t in &g.items {
                        walk(c, t, prefix);
                    }
                }
            }
        }
        walk(self, tree, &mut Vec::new());
    }

    fn visit_expr_unsafe(&mut self, e: &'ast syn::ExprUnsafe) {
        self.flag(e.unsafe_token.span, "unsafe code");
        visit::visit_expr_unsafe(self, e);
    }

    fn visit_signature(&mut self, s: &'ast syn::Signature) {
        if let Some(u) = &s.unsafety {
            self.flag(u.span, "unsafe code");
        }
        visit::visit_signature(self, s);
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        if let Some(u) = &i.unsafety {
            self.flag(u.span, "unsafe code");
        }
        visit::visit_item_impl(self, i);
    }

    fn visit_item_static(&mut self, s: &'ast syn::ItemStatic) {
        if matches!(s.mutability, syn::StaticMutability::Mut(_)) {
            self.flag(s.static_token.span, "static mutable state (`static mut`)");
        } else if type_mentions(&s.ty, INTERIOR_MUTABILITY) {
            self.flag(
                s.static_token.span,
                "static mutable state (a static with interior mutability)",
            );
        }
        visit::visit_item_static(self, s);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        if m.path.is_ident("thread_local") || m.path.is_ident("lazy_static") {
            self.flag(
                syn::spanned::Spanned::span(&m.path),
                "static mutable state (thread-local or lazy static)",
            );
        }
        visit::visit_macro(self, m);
    }

    fn visit_field(&mut self, f: &'ast Field) {
        if let Some(name) = &f.ident
            && is_random_hash_collection(&f.ty)
        {
            self.hash_names.insert(name.to_string());
        }
        visit::visit_field(self, f);
    }

    fn visit_local(&mut self, l: &'ast Local) {
        if let Pat::Type(pt) = &l.pat
            && let Pat::Ident(pi) = &*pt.pat
            && is_random_hash_collection(&pt.ty)
        {
            self.hash_names.insert(pi.ident.to_string());
        }
        visit::visit_local(self, l);
    }

    fn visit_expr_method_call(&mut self, m: &'ast ExprMethodCall) {
        let method = m.method.to_string();
        if HASH_ITERATION.contains(&method.as_str())
            && let Some(name) = Checker::receiver_name(&m.receiver)
            && self.hash_names.contains(&name)
        {
            self.flag(
                m.method.span(),
                format!(
                    "iterating the HashMap/HashSet `{name}` visits entries in a random order; use BTreeMap/BTreeSet"
                ),
            );
        }
        visit::visit_expr_method_call(self, m);
    }

    fn visit_expr_for_loop(&mut self, f: &'ast ExprForLoop) {
        if let Some(name) = Checker::receiver_name(&f.expr)
            && self.hash_names.contains(&name)
        {
            self.flag(
                f.for_token.span,
                format!(
                    "iterating the HashMap/HashSet `{name}` visits entries in a random order; use BTreeMap/BTreeSet"
                ),
            );
        }
        visit::visit_expr_for_loop(self, f);
    }
}

/// Checks a whole source file; returns the findings by line.
pub fn check_file(file: &syn::File) -> Vec<Finding> {
    // Two passes: first learn which names hold hash collections (fields may be
    // declared after the methods that iterate them), then check.
    let mut names = Checker::default();
    names.visit_file(file);
    let mut checker = Checker {
        hash_names: names.hash_names,
        ..Checker::default()
    };
    checker.visit_file(file);
    checker.findings.into_iter().collect()
}

/// Parses and checks source text.
pub fn check_source(source: &str) -> Result<Vec<Finding>, syn::Error> {
    Ok(check_file(&syn::parse_file(source)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(src: &str) -> Vec<String> {
        check_source(src)
            .expect("parses")
            .into_iter()
            .map(|f| f.reason)
            .collect()
    }

    #[test]
    fn a_deterministic_object_passes() {
        let src = "use std::collections::BTreeMap;\nstruct A { m: BTreeMap<String, i64> }\nimpl A { pub fn f(&mut self) -> i64 { self.m.values().sum() } }";
        assert!(reasons(src).is_empty());
    }

    #[test]
    fn each_kind_of_escape_is_named() {
        let cases = [
            ("fn f() { let _ = std::fs::read(\"x\"); }", "file access"),
            ("use std::process::Command; fn f() {}", "process access"),
            (
                "fn f() { let _ = std::net::TcpStream::connect(\"x\"); }",
                "network access",
            ),
            (
                "fn f() { let _ = std::env::var(\"X\"); }",
                "environment access",
            ),
            (
                "fn f() { let _ = std::time::SystemTime::now(); }",
                "wall-clock time",
            ),
            ("fn f() { let _: u8 = rand::random(); }", "randomness"),
            ("fn f() { unsafe { } }", "unsafe code"),
            ("static mut N: u64 = 0;", "static mutable state"),
            (
                "static N: std::sync::Mutex<u64> = std::sync::Mutex::new(0);",
                "static mutable state",
            ),
        ];
        for (src, want) in cases {
            let got = reasons(src);
            assert!(got.iter().any(|r| r.contains(want)), "{src}: {got:?}");
        }
    }

    #[test]
    fn iterating_a_hash_map_is_rejected_but_lookups_are_fine() {
        let src = "use std::collections::HashMap;\nstruct A { m: HashMap<u8, u8> }\nimpl A {\n pub fn get(&self) -> Option<&u8> { self.m.get(&1) }\n pub fn all(&self) -> Vec<u8> { self.m.keys().copied().collect() }\n}";
        let found = check_source(src).expect("parses");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, 5);
        assert!(found[0].reason.contains("random order"));
    }

    #[test]
    fn a_hash_map_with_a_fixed_hasher_may_be_iterated() {
        let src = "struct A { m: HashMap<u8, u8, BuildHasherDefault<Fx>> }\nimpl A { pub fn all(&self) -> usize { self.m.iter().count() } }";
        assert!(reasons(src).is_empty());
    }
}
