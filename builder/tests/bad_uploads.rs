//! Runs `fixtures/bad-uploads/generate.py` and checks that every hostile
//! upload it writes is refused with the expected message and status, and
//! leaves nothing behind. The generated files are never committed.

mod support;

use std::path::Path;
use std::process::Command;

use builder::{unpack_file, Limits};
use support::{assert_refused, status_of, Sandbox};

/// One line of cases.json.
struct Case {
    file: String,
    status: u16,
    expect: String,
    limits: Limits,
}

/// Reads cases.json. The crate has no JSON parser and does not need one, so
/// Python (which the generator needs anyway) flattens it to tab-separated
/// lines: file, status, limits as `key=value,...`, expect.
fn read_cases(dir: &Path) -> Vec<Case> {
    let flatten = r#"
import json, sys
for c in json.load(open(sys.argv[1])):
    limits = ",".join(f"{k}={v}" for k, v in c.get("limits", {}).items())
    print(c["file"], c["status"], limits, c["expect"], sep="\t")
"#;
    let out = Command::new("python3").arg("-c").arg(flatten).arg(dir.join("cases.json")).output().unwrap();
    assert!(out.status.success(), "reading cases.json: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .map(|line| {
            let [file, status, limits, expect] = line.splitn(4, '\t').collect::<Vec<_>>()[..] else {
                panic!("bad line {line:?}")
            };
            Case {
                file: file.into(),
                status: status.parse().unwrap(),
                expect: expect.into(),
                limits: limits_from(limits),
            }
        })
        .collect()
}

fn limits_from(spec: &str) -> Limits {
    let mut limits = Limits::default();
    for pair in spec.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap();
        let value: u64 = value.parse().unwrap();
        match key {
            "max_upload_bytes" => limits.max_upload_bytes = value,
            "max_unpacked_bytes" => limits.max_unpacked_bytes = value,
            "max_files" => limits.max_files = value,
            "max_path_len" => limits.max_path_len = value as usize,
            "max_depth" => limits.max_depth = value as usize,
            other => panic!("unknown limit {other:?} in cases.json"),
        }
    }
    limits
}

#[test]
fn every_generated_bad_upload_is_refused() {
    let generated = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/bad-uploads/generate.py");
    let status =
        Command::new("python3").arg(&script).arg(generated.path()).status().expect("python3 must be installed");
    assert!(status.success(), "{} failed", script.display());

    let cases = read_cases(generated.path());
    assert!(cases.len() >= 15, "only {} cases", cases.len());
    for case in cases {
        let sb = Sandbox::new();
        let err = match unpack_file(&generated.path().join(&case.file), &sb.dest(), &case.limits) {
            Ok(done) => panic!("{} was accepted: {done:?}", case.file),
            Err(e) => e,
        };
        eprintln!("{:<28} {} {err}", case.file, status_of(&err));
        sb.assert_untouched();
        assert_refused(&err, &case.expect, case.status);
    }
}
