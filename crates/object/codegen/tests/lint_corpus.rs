//! The determinism check (`concoord object -s`) against a corpus of objects:
//! `tests/lint_corpus/hazardous/` holds one object per hazard (a file, or a
//! directory whose `lib.rs` is the object's file), each hazardous line
//! marked with `//~ text`; `tests/lint_corpus/safe/` holds objects that look
//! risky but are deterministic. The check must reject every hazardous
//! object with a finding on each marked line whose reason contains the
//! marker's text, and nothing on unmarked lines; and accept every safe one.

use concoord_codegen::safety::{Finding, check_object_file};
use std::path::{Path, PathBuf};

/// The cases of one half of the corpus: the object file of each.
fn cases(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lint_corpus")
        .join(kind);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the corpus directory")
        .map(|e| e.expect("a directory entry").path())
        .map(|p| if p.is_dir() { p.join("lib.rs") } else { p })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", dir.display());
    cases
}

/// Every `.rs` file of a case.
fn files_of(case: &Path) -> Vec<PathBuf> {
    if case.file_name().is_some_and(|n| n == "lib.rs") {
        let dir = case.parent().expect("a case directory");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("the case directory")
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        files.sort();
        files
    } else {
        vec![case.to_path_buf()]
    }
}

/// A marker: the file and line it is on, and the text the reason must
/// contain.
struct Marker {
    file: PathBuf,
    line: usize,
    text: String,
}

fn markers(case: &Path) -> Vec<Marker> {
    let mut out = Vec::new();
    for file in files_of(case) {
        let text = std::fs::read_to_string(&file).expect("a corpus file");
        for (i, line) in text.lines().enumerate() {
            if let Some((_, marker)) = line.split_once("//~ ") {
                out.push(Marker {
                    file: canonical(&file),
                    line: i + 1,
                    text: marker.trim().to_string(),
                });
            }
        }
    }
    out
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().expect("a corpus path")
}

fn file_of(f: &Finding) -> PathBuf {
    canonical(f.file.as_deref().expect("findings of a file name it"))
}

fn show(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            format!(
                "  {}:{}: {}",
                f.file.as_deref().unwrap_or(Path::new("?")).display(),
                f.line,
                f.reason
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_hazardous_object_is_rejected_naming_each_hazard_and_its_line() {
    let mut failures = Vec::new();
    for case in cases("hazardous") {
        let findings = check_object_file(&case).expect("the case parses");
        let markers = markers(&case);
        assert!(!markers.is_empty(), "{}: no //~ markers", case.display());
        for m in &markers {
            let hit = findings
                .iter()
                .any(|f| f.line == m.line && file_of(f) == m.file && f.reason.contains(&m.text));
            if !hit {
                failures.push(format!(
                    "{}:{}: expected a finding containing {:?}; found:\n{}",
                    m.file.display(),
                    m.line,
                    m.text,
                    show(&findings)
                ));
            }
        }
        for f in &findings {
            let marked = markers
                .iter()
                .any(|m| m.line == f.line && m.file == file_of(f));
            if !marked {
                failures.push(format!(
                    "{}:{}: unexpected finding: {}",
                    f.file.as_deref().unwrap_or(Path::new("?")).display(),
                    f.line,
                    f.reason
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_safe_object_is_accepted() {
    let mut failures = Vec::new();
    for case in cases("safe") {
        let findings = check_object_file(&case).expect("the case parses");
        if !findings.is_empty() {
            failures.push(format!("{}:\n{}", case.display(), show(&findings)));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
