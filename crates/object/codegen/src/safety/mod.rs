//! `concoord object -s`: rejects object code that would make replicas
//! diverge or reach outside the state machine. Every replica runs every
//! write; if a method reads the clock, draws random numbers, touches files,
//! the network, the environment or processes, exposes a memory address,
//! follows a randomly seeded hash collection's order, or keeps state in
//! statics, replicas end up with different states.
//!
//! What it claims, and how it keeps the claim:
//!
//! * It reads every file of the crate the object belongs to ([`sources`]),
//!   since a helper in another module or a trait impl runs inside the
//!   object too. `#[cfg(test)]` code is skipped.
//! * Paths are checked under every reading `use` aliases, globs and `extern
//!   crate` renames allow ([`resolve`]): `use std as s; s::time::…`,
//!   `use std::*; time::…` and `extern crate rand as dice` are caught.
//! * Macro arguments are parsed and checked as code ([`macro_args`]):
//!   `format!("{}", std::process::id())`, `vec![SystemTime::now()]`.
//! * Every operation that follows a random hash collection's order is a
//!   hazard, on any value the check can type as one ([`types`], [`infer`]):
//!   iteration in all its forms (including through `.clone()`, `extend`,
//!   `HashMap::keys(&m)`), `retain`, `drain`, `extract_if`, set algebra,
//!   Debug formatting and serialization. Type aliases, generic wrappers
//!   (`Option<HashMap<..>>`), the crate's own structs, untyped locals and
//!   scoping (a `BTreeMap` local named like a `HashMap` field) are
//!   followed; a value whose type is lost on the way from a hash collection
//!   counts as one.
//! * `{:p}` formatting and pointer-to-integer casts (memory addresses),
//!   `static mut`, statics with interior mutability (also through an alias),
//!   `thread_local!`/`lazy_static!`, threads and tasks, standard input,
//!   `unsafe` and FFI are rejected outright.
//!
//! It is syntactic: it reads source and does not compile it, so where it
//! cannot tell it assumes the worst, and it names the line and the reason.
//! It cannot see into procedural macros or other crates; a method that
//! returns a `HashMap` is allowed (each replica's reply bytes may list its
//! entries in another order, but the client decodes the same map), and so
//! is a `HashMap` field (a snapshot restores the same map).

mod checker;
pub mod hazards;
mod infer;
pub mod macro_args;
pub mod resolve;
pub mod sources;
pub mod types;

pub use sources::SafetyError;

use resolve::CrateIndex;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// One rejected construct.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// The file it is in (`None` for source checked as a string).
    pub file: Option<PathBuf>,
    /// 1-based line in that file.
    pub line: usize,
    /// Why it is rejected.
    pub reason: String,
}

/// Checks the given files as one crate.
fn check_files<'a>(
    files: impl Clone + IntoIterator<Item = (Option<&'a Path>, &'a syn::File)>,
) -> BTreeSet<Finding> {
    let index = CrateIndex::build(files.clone().into_iter().map(|(_, f)| f));
    let mut findings = BTreeSet::new();
    for (path, file) in files {
        let mut checker = checker::Checker::new(&index, path.map(Path::to_path_buf));
        checker.visit_file(file);
        findings.extend(checker.into_findings());
    }
    findings
}

/// Checks one file on its own (as a crate of one file); returns the
/// findings by line.
pub fn check_file(file: &syn::File) -> Vec<Finding> {
    check_files([(None, file)]).into_iter().collect()
}

/// Parses and checks source text (as a crate of one file).
pub fn check_source(source: &str) -> Result<Vec<Finding>, syn::Error> {
    Ok(check_file(&syn::parse_file(source)?))
}

/// Checks the object in the source file `path`, with every file of the
/// crate it belongs to; returns the findings by file and line.
pub fn check_object_file(path: &Path) -> Result<Vec<Finding>, SafetyError> {
    let krate = sources::load(path)?;
    let files: Vec<(Option<&Path>, &syn::File)> = krate
        .sources
        .iter()
        .map(|s| (Some(s.path.as_path()), &s.file))
        .collect();
    let mut findings = check_files(files);
    findings.extend(krate.missing);
    Ok(findings.into_iter().collect())
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
