//! Which files the check reads: every file of the library (or binary) the
//! object's file belongs to, found from the crate root through its `mod`
//! declarations. Code anywhere in that crate, a helper in another module or
//! a trait impl, can run inside the object's methods, so all of it is
//! checked; only `#[cfg(test)]` modules, which never run in a replica, are
//! left out. A file that is not part of any crate root found next to a
//! `Cargo.toml` is checked as a crate root itself.

use super::Finding;
use super::resolve::is_test_only;
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// A crate has at most this many files (a bound on what one check reads).
const FILES_MAX: usize = 2_000;
/// `Cargo.toml` is looked for at most this many directories up.
const PACKAGE_DEPTH_MAX: usize = 8;

/// Why the object's files could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum SafetyError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not valid Rust.
    #[error("{}:{line}: cannot parse: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where.
        line: usize,
        /// What the parser said.
        message: String,
    },
    /// The crate has more files than the check reads.
    #[error("{} has more than {FILES_MAX} module files; the check stops there", root.display())]
    TooManyFiles {
        /// The crate root.
        root: PathBuf,
    },
}

/// One parsed file.
pub struct Source {
    /// Its path, as reached from the path the user gave.
    pub path: PathBuf,
    /// Its syntax tree.
    pub file: syn::File,
}

/// The files of a crate, and the modules it declares that could not be
/// found (findings: code the check cannot read).
pub struct Crate {
    /// Every file read, the root first.
    pub sources: Vec<Source>,
    /// `mod x;` declarations without a file.
    pub missing: Vec<Finding>,
}

/// Reads the crate that `object` (a source file) belongs to.
pub fn load(object: &Path) -> Result<Crate, SafetyError> {
    let canonical = canonical(object)?;
    let parent = object.parent().unwrap_or(Path::new(""));
    let package = parent
        .ancestors()
        .take(PACKAGE_DEPTH_MAX)
        .find(|dir| dir.join("Cargo.toml").is_file());
    if let Some(package) = package {
        for root in ["src/lib.rs", "src/main.rs"] {
            let root = package.join(root);
            if !root.is_file() {
                continue;
            }
            let krate = load_tree(&root)?;
            let contains = krate
                .sources
                .iter()
                .any(|s| canonical_or_same(&s.path) == canonical);
            if contains {
                return Ok(krate);
            }
        }
    }
    load_tree(object)
}

fn canonical(path: &Path) -> Result<PathBuf, SafetyError> {
    path.canonicalize().map_err(|source| SafetyError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn canonical_or_same(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// Parses one file.
pub fn parse(path: &Path) -> Result<syn::File, SafetyError> {
    let text = std::fs::read_to_string(path).map_err(|source| SafetyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    syn::parse_file(&text).map_err(|e| SafetyError::Parse {
        path: path.to_path_buf(),
        line: e.span().start().line,
        message: e.to_string(),
    })
}

/// Reads `root` and every module file it declares, transitively.
fn load_tree(root: &Path) -> Result<Crate, SafetyError> {
    let mut krate = Crate {
        sources: Vec::new(),
        missing: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    // (file, whether its child modules live in its own directory)
    let mut queue = VecDeque::from([(root.to_path_buf(), true)]);
    while let Some((path, mod_rs)) = queue.pop_front() {
        if !seen.insert(canonical_or_same(&path)) {
            continue;
        }
        if krate.sources.len() >= FILES_MAX {
            return Err(SafetyError::TooManyFiles {
                root: root.to_path_buf(),
            });
        }
        let file = parse(&path)?;
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let children_dir = if mod_rs {
            base.clone()
        } else {
            let stem = path.file_stem().unwrap_or_default();
            base.join(stem)
        };
        let mut found = Vec::new();
        declared_modules(
            &file.items,
            &base,
            &children_dir,
            &path,
            &mut found,
            &mut krate.missing,
        );
        queue.extend(found);
        krate.sources.push(Source { path, file });
    }
    Ok(krate)
}

/// The `#[path = "…"]` of a module, if any.
fn path_attr(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| match &a.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

/// Collects the files of the modules `items` declare (`mod x;`), looking in
/// `dir`; inline modules (`mod x { mod y; }`) look in `dir/x`.
fn declared_modules(
    items: &[syn::Item],
    base: &Path,
    dir: &Path,
    declaring: &Path,
    found: &mut Vec<(PathBuf, bool)>,
    missing: &mut Vec<Finding>,
) {
    for item in items {
        let syn::Item::Mod(m) = item else {
            continue;
        };
        if is_test_only(&m.attrs) {
            continue;
        }
        let name = m.ident.to_string();
        if let Some((_, inner)) = &m.content {
            declared_modules(inner, base, &dir.join(&name), declaring, found, missing);
            continue;
        }
        if let Some(p) = path_attr(&m.attrs) {
            found.push((base.join(p), true));
            continue;
        }
        let flat = dir.join(format!("{name}.rs"));
        let nested = dir.join(&name).join("mod.rs");
        if flat.is_file() {
            found.push((flat, false));
        } else if nested.is_file() {
            found.push((nested, true));
        } else {
            missing.push(Finding {
                file: Some(declaring.to_path_buf()),
                line: m.ident.span().start().line,
                reason: format!(
                    "module `{name}` is declared but neither {} nor {} exists; the check cannot read its code",
                    flat.display(),
                    nested.display()
                ),
            });
        }
    }
}
