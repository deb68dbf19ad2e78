//! Helpers the end-to-end tests share.

#![allow(dead_code)]

use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_kcompact");

/// Runs the binary with `args` and returns its output.
pub fn kcompact(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8")
}

/// Runs the binary, asserts exit code 0 and no panic, and returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = kcompact(args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "kcompact {args:?}: {}",
        stderr(&o)
    );
    assert!(
        !stderr(&o).contains("panicked"),
        "kcompact {args:?} panicked:\n{}",
        stderr(&o)
    );
    stdout(&o)
}

/// Runs the binary, asserts exit code 0 and returns its stdout as JSON.
pub fn json_ok(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).expect("JSON on stdout")
}
