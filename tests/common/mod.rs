//! Helpers shared by the integration tests: run the binary, read fixtures, compare with
//! golden files, and (for live tests) serialise incidents and skip or fail by policy.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_iowhy")
}

pub fn root_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root_dir().join("tests/fixtures").join(name)
}

pub fn iowhy(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("run iowhy")
}

/// Run and require success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = iowhy(args);
    assert!(
        out.status.success(),
        "iowhy {args:?} failed with {}:\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The lab's "started" event saved beside a fixture: the right answer.
#[derive(serde::Deserialize, Debug)]
pub struct LabEvent {
    pub scenario: String,
    pub pids: Vec<u32>,
    pub paths: Vec<String>,
    pub mountpoint: Option<String>,
    pub device: Option<String>,
}

pub fn lab_event(name: &str) -> LabEvent {
    let p = fixture(name).join("lab.json");
    serde_json::from_str(&std::fs::read_to_string(&p).expect("lab.json")).expect("lab.json parses")
}

/// Compare `got` with the golden file; `IOWHY_UPDATE_GOLDEN=1` rewrites it. On a
/// difference, print the first lines that differ, expected and got.
pub fn golden(name: &str, got: &str) {
    let path = root_dir().join("tests/golden").join(name);
    if std::env::var_os("IOWHY_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing {}: run with IOWHY_UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if want != got {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(10)
            .map(|(i, (a, b))| format!("line {}:\n  expected: {a}\n  got:      {b}", i + 1))
            .collect();
        panic!(
            "{} differs from the golden file ({} vs {} lines):\n{}\n(rerun with IOWHY_UPDATE_GOLDEN=1 if the change is intended)",
            path.display(),
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
