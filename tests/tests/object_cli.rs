//! `concoord object`: the standalone proxy matches the generator, `-s` rejects
//! unsafe objects with file, line and reason (also in another module file of
//! the object's crate) and accepts every ready-made object, `-t` and `-p`
//! shape the proxy. The check itself is tested case by case against the
//! corpus in `crates/object/codegen/tests/lint_corpus/`.

use concoord_integration_tests::binary;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn concoord_object(args: &[&str]) -> Output {
    Command::new(binary("concoord"))
        .arg("object")
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("run concoord object")
}

fn scratch(name: &str, source: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("concoord-object-cli");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(name);
    std::fs::write(&path, source).expect("write source");
    path
}

#[test]
fn the_committed_tencounter_proxy_is_what_the_generator_writes() {
    let out = std::env::temp_dir().join("tencounter_proxy_check.rs");
    let result = concoord_object(&[
        "-o",
        "tests/tencounter/src/lib.rs::TenCounter",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let fresh = std::fs::read_to_string(&out).expect("generated file");
    let committed =
        std::fs::read_to_string(workspace().join("tests/tencounter/src/tencounter_proxy.rs"))
            .expect("committed proxy");
    assert_eq!(
        fresh, committed,
        "regenerate with: concoord object -o tests/tencounter/src/lib.rs::TenCounter"
    );
}

#[test]
fn the_committed_proxies_of_types_1_to_3_are_what_the_generator_writes() {
    // Type 0 is the default, checked above at its default place.
    for p in ["1", "2", "3"] {
        let out = std::env::temp_dir().join(format!("tencounter_proxy_check_p{p}.rs"));
        let committed = format!("tests/tencounter/generated/tencounter_proxy_p{p}.rs");
        let result = concoord_object(&[
            "-o",
            "tests/tencounter/src/lib.rs::TenCounter",
            "-p",
            p,
            "--out",
            out.to_str().expect("utf-8 path"),
        ]);
        assert!(result.status.success());
        let fresh = std::fs::read_to_string(&out).expect("generated file");
        let committed_text =
            std::fs::read_to_string(workspace().join(&committed)).expect("committed");
        assert_eq!(
            fresh, committed_text,
            "regenerate with: concoord object -o tests/tencounter/src/lib.rs::TenCounter -p {p} --out {committed}"
        );
    }
}

#[test]
fn unsafe_objects_are_rejected_with_the_line_and_the_reason() {
    let cases = [
        (
            "files",
            "let _ = std::fs::read_to_string(\"/etc/passwd\");",
            "file access",
        ),
        (
            "clock",
            "let _ = std::time::SystemTime::now();",
            "wall-clock time",
        ),
        ("random", "let _: u64 = rand::random();", "randomness"),
        (
            "network",
            "let _ = std::net::TcpStream::connect(\"1.2.3.4:80\");",
            "network access",
        ),
        (
            "environment",
            "let _ = std::env::var(\"HOME\");",
            "environment access",
        ),
        (
            "process",
            "let _ = std::process::Command::new(\"ls\");",
            "process access",
        ),
        ("unsafe", "unsafe { }", "unsafe code"),
    ];
    for (name, body, reason) in cases {
        let source = format!(
            "#[derive(Default)]\npub struct Obj {{ n: i64 }}\n\nimpl Obj {{\n    pub fn act(&mut self) {{\n        {body}\n        self.n += 1;\n    }}\n}}\n"
        );
        let path = scratch(&format!("{name}.rs"), &source);
        let target = format!("{}::Obj", path.display());
        let out = concoord_object(&["-s", "-o", &target]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        let expected = format!("{}:6: {reason}", path.display());
        assert!(
            err.contains(&expected),
            "{name}: expected {expected:?} in {err}"
        );
    }

    let statics = "static mut CALLS: u64 = 0;\n#[derive(Default)]\npub struct Obj;\nimpl Obj { pub fn f(&mut self) {} }\n";
    let path = scratch("statics.rs", statics);
    let out = concoord_object(&["-s", "-o", &format!("{}::Obj", path.display())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":1: static mutable state"));

    let hashmap = "use std::collections::HashMap;\n#[derive(Default)]\npub struct Obj { m: HashMap<String, i64> }\nimpl Obj {\n    pub fn first(&self) -> Option<String> { self.m.keys().next().cloned() }\n}\n";
    let path = scratch("hashmap.rs", hashmap);
    let out = concoord_object(&["-s", "-o", &format!("{}::Obj", path.display())]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains(":5: iterating the HashMap/HashSet `m`"),
        "{err}"
    );
}

#[test]
fn a_hazard_in_another_module_file_is_rejected_naming_that_file() {
    let dir = std::env::temp_dir().join("concoord-object-cli-modules");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let lib = "mod clock;\n#[derive(Default)]\npub struct Obj { at: u64 }\nimpl Obj {\n    pub fn touch(&mut self) { self.at = clock::now(); }\n}\n";
    let clock = "pub fn now() -> u64 {\n    let t = std::time::SystemTime::now();\n    t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)\n}\n";
    std::fs::write(dir.join("lib.rs"), lib).expect("write lib.rs");
    std::fs::write(dir.join("clock.rs"), clock).expect("write clock.rs");
    let target = format!("{}::Obj", dir.join("lib.rs").display());
    let out = concoord_object(&["-s", "-o", &target]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let expected = format!("{}:2: wall-clock time", dir.join("clock.rs").display());
    assert!(err.contains(&expected), "expected {expected:?} in {err}");
}

#[test]
fn every_ready_made_object_passes_the_safety_check() {
    let objects = [
        ("counter", "Counter"),
        ("bank", "Bank"),
        ("log", "Log"),
        ("membership", "Membership"),
        ("stack", "Stack"),
        ("queue", "Queue"),
        ("jobmanager", "JobManager"),
        ("keyvalue", "KeyValue"),
        ("nameservercoord", "NameserverCoord"),
    ];
    let out_dir = std::env::temp_dir().join("concoord-object-cli-ready");
    std::fs::create_dir_all(&out_dir).expect("dir");
    for (file, ty) in objects {
        let target = format!("crates/objects/src/{file}.rs::{ty}");
        let out_file = out_dir.join(format!("{file}.rs"));
        let out = concoord_object(&[
            "-s",
            "-o",
            &target,
            "--out",
            out_file.to_str().expect("utf-8"),
        ]);
        assert!(
            out.status.success(),
            "{target}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn token_and_proxy_type_shape_the_generated_proxy() {
    let dir = std::env::temp_dir().join("concoord-object-cli-types");
    std::fs::create_dir_all(&dir).expect("dir");
    let expect = [
        ("0", "CallMode::Serial"),
        ("1", "blocking::Client"),
        ("2", "CallMode::batched()"),
        ("3", "CallMode::Pipelined"),
    ];
    for (p, marker) in expect {
        let out_file = dir.join(format!("p{p}.rs"));
        let out = concoord_object(&[
            "-o",
            "tests/tencounter/src/lib.rs::TenCounter",
            "-p",
            p,
            "-t",
            "s3cret",
            "--out",
            out_file.to_str().expect("utf-8"),
        ]);
        assert!(out.status.success());
        let code = std::fs::read_to_string(&out_file).expect("generated");
        assert!(code.contains(marker), "-p {p}: no {marker}");
        assert!(
            code.contains("String::from(\"s3cret\")"),
            "-p {p}: token missing"
        );
    }
}

#[test]
fn a_malformed_object_name_or_proxy_type_is_a_usage_error() {
    let out = concoord_object(&["-o", "tencounter.TenCounter"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected PATH.rs::Type"));
    let out = concoord_object(&["-o", "tests/tencounter/src/lib.rs::TenCounter", "-p", "7"]);
    assert_eq!(out.status.code(), Some(2));
    let out = concoord_object(&["-o", "tests/tencounter/src/lib.rs::Missing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no `impl Missing` block"));
}
