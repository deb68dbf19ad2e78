//! The model's views against this machine's own `/proc` files.
//!
//! The model is freshly booted and the machine is not, so the values differ; what must
//! agree is the format: header lines byte for byte, the same rows in the same order with
//! the same row prefixes ("Node    0, zone      DMA, type    Unmovable"), the same blank
//! lines, every numeric field ending at the same byte offset, and the trailing space where
//! the kernel prints one. For zoneinfo, the same sequence of line keys (the text before the
//! first number).
//!
//! A `/proc` file that is missing or unreadable skips its test with a "skipped:" line on
//! stderr.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kcompact");

/// `kcompact show VIEW --mem 24G`.
fn model_view(view: &str) -> String {
    let o = Command::new(BIN)
        .args(["show", view, "--mem", "24G"])
        .output()
        .expect("run kcompact");
    assert_eq!(
        o.status.code(),
        Some(0),
        "kcompact show {view} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("UTF-8 output")
}

/// The text of a `/proc` file, or why it cannot be used.
fn read_proc(path: &str) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(t) if t.trim().is_empty() => Err(format!("{path} is empty")),
        Ok(t) => Ok(t),
        Err(e) => Err(format!("cannot read {path}: {e}")),
    }
}

macro_rules! proc_or_skip {
    ($path:expr) => {
        match read_proc($path) {
            Ok(t) => t,
            Err(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        }
    };
}

/// Lines split on '\n' only, trailing spaces kept; no empty piece after the final newline.
fn lines(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text.split('\n').collect();
    if v.last() == Some(&"") {
        v.pop();
    }
    v
}

/// Header lines that must be byte-equal.
const HEADERS: &[&str] = &[
    "Page block order:",
    "Pages per block:",
    "Free pages count per migrate type at order",
    "Number of blocks type",
];

/// The row prefix: everything up to and including the last letter ("Node 0, zone   Normal").
fn row_prefix(line: &str) -> &str {
    let end = line
        .rfind(|c: char| c.is_ascii_alphabetic())
        .map(|i| i + 1)
        .unwrap_or(0);
    &line[..end]
}

/// Byte offsets (in the line) of every digit followed by a space after the prefix: where
/// each numeric field ends.
fn field_ends(line: &str) -> Vec<usize> {
    let start = row_prefix(line).len();
    let b = line.as_bytes();
    (start..b.len().saturating_sub(1))
        .filter(|&i| b[i].is_ascii_digit() && b[i + 1] == b' ')
        .collect()
}

/// Why a real row's field widths cannot be compared: a capped count (">100000") or a
/// number of 7 digits or more.
fn unaligned_field(line: &str) -> Option<String> {
    let rest = &line[row_prefix(line).len()..];
    rest.split_whitespace()
        .find(|f| f.contains('>') || f.chars().filter(|c| c.is_ascii_digit()).count() >= 7)
        .map(|f| format!("field {f:?}"))
}

/// Compares the format of a model view and the kernel's file; returns the mismatches.
fn compare_format(name: &str, model: &str, real: &str) -> Vec<String> {
    let (ml, rl) = (lines(model), lines(real));
    let mut errs = Vec::new();
    if model.ends_with('\n') != real.ends_with('\n') {
        errs.push(format!(
            "{name}: final newline: model {} kernel {}",
            model.ends_with('\n'),
            real.ends_with('\n')
        ));
    }
    if ml.len() != rl.len() {
        errs.push(format!(
            "{name}: {} lines in the model, {} in the kernel's file",
            ml.len(),
            rl.len()
        ));
    }
    let mut compared = 0;
    for (i, (m, r)) in ml.iter().zip(&rl).enumerate() {
        let at = format!("{name} line {}", i + 1);
        if m.is_empty() || r.is_empty() {
            if m.is_empty() != r.is_empty() {
                errs.push(format!(
                    "{at}: blank-line structure differs:\n  model:  {m:?}\n  kernel: {r:?}"
                ));
            }
            continue;
        }
        if let Some(h) = HEADERS
            .iter()
            .find(|h| m.starts_with(*h) || r.starts_with(*h))
        {
            if m != r {
                errs.push(format!(
                    "{at}: header {h:?} differs:\n  model:  {m:?}\n  kernel: {r:?}"
                ));
            }
            continue;
        }
        if row_prefix(m) != row_prefix(r) {
            errs.push(format!(
                "{at}: row prefix differs:\n  model:  {:?}\n  kernel: {:?}",
                row_prefix(m),
                row_prefix(r)
            ));
            continue;
        }
        if m.ends_with(' ') != r.ends_with(' ') {
            errs.push(format!(
                "{at}: trailing space: model {} kernel {}:\n  model:  {m:?}\n  kernel: {r:?}",
                m.ends_with(' '),
                r.ends_with(' ')
            ));
        }
        if let Some(why) = unaligned_field(r) {
            eprintln!("note: {at}: kernel row not compared for field widths ({why}): {r:?}");
            continue;
        }
        if let Some(why) = unaligned_field(m) {
            eprintln!("note: {at}: model row not compared for field widths ({why}): {m:?}");
            continue;
        }
        let (mf, rf) = (field_ends(m), field_ends(r));
        if mf.is_empty() {
            errs.push(format!("{at}: no numeric fields in the model's row {m:?}"));
        }
        if mf != rf {
            errs.push(format!("{at}: numeric fields end at different offsets:\n  model  {mf:?}: {m:?}\n  kernel {rf:?}: {r:?}"));
        }
        compared += 1;
    }
    eprintln!(
        "{name}: {} model lines, {} kernel lines, {compared} numeric rows compared",
        ml.len(),
        rl.len()
    );
    errs
}

fn assert_no_errors(errs: Vec<String>) {
    assert!(
        errs.is_empty(),
        "{} format mismatch(es) with the kernel:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

#[test]
fn buddyinfo_format_matches_the_kernel() {
    let real = proc_or_skip!("/proc/buddyinfo");
    let model = model_view("buddyinfo");
    assert_no_errors(compare_format("buddyinfo", &model, &real));
}

#[test]
fn pagetypeinfo_format_matches_the_kernel() {
    let real = proc_or_skip!("/proc/pagetypeinfo");
    let model = model_view("pagetypeinfo");
    assert_no_errors(compare_format("pagetypeinfo", &model, &real));
}

/// The text of a zoneinfo line before its first number (a digit starting a token).
fn zoneinfo_key(line: &str) -> &str {
    let b = line.as_bytes();
    let i = (0..b.len())
        .find(|&i| {
            b[i].is_ascii_digit() && (i == 0 || matches!(b[i - 1], b' ' | b'(' | b',' | b':'))
        })
        .unwrap_or(b.len());
    &line[..i]
}

/// The "    cpu:" entries of the first zone section that has pagesets.
fn cpus_in_first_populated_zone(zoneinfo: &str) -> usize {
    let mut count = 0;
    let mut in_populated = false;
    for l in zoneinfo.lines() {
        if l.starts_with("Node ") {
            if in_populated {
                break;
            }
            count = 0;
        } else if l == "  pagesets" {
            in_populated = true;
        } else if in_populated && l.starts_with("    cpu:") {
            count += 1;
        }
    }
    count
}

#[test]
fn zoneinfo_keys_match_the_kernel() {
    let real = proc_or_skip!("/proc/zoneinfo");
    let cpus = cpus_in_first_populated_zone(&real);
    if cpus != 2 {
        eprintln!("skipped: /proc/zoneinfo lists {cpus} CPUs in its first populated zone; the model prints 2");
        return;
    }
    let model = model_view("zoneinfo");
    let (ml, rl) = (lines(&model), lines(&real));
    let mut errs = Vec::new();
    if ml.len() != rl.len() {
        errs.push(format!(
            "zoneinfo: {} lines in the model, {} in the kernel's file",
            ml.len(),
            rl.len()
        ));
    }
    for (i, (m, r)) in ml.iter().zip(&rl).enumerate() {
        // Zone headers carry only the node id as a number: compare them whole.
        let same = if m.starts_with("Node ") || r.starts_with("Node ") {
            m == r
        } else {
            zoneinfo_key(m) == zoneinfo_key(r)
        };
        if !same {
            errs.push(format!(
                "zoneinfo line {}:\n  model:  {m:?}\n  kernel: {r:?}",
                i + 1
            ));
        }
    }
    if errs.len() > 20 {
        let n = errs.len();
        errs.truncate(20);
        errs.push(format!("... {} more", n - 20));
    }
    eprintln!(
        "zoneinfo: {} model lines, {} kernel lines",
        ml.len(),
        rl.len()
    );
    assert_no_errors(errs);
}

#[test]
fn helpers_behave() {
    let row = "Node    0, zone      DMA, type    Unmovable      0     12 ";
    assert_eq!(
        row_prefix(row),
        "Node    0, zone      DMA, type    Unmovable"
    );
    assert_eq!(field_ends(row), vec![49, 56]);
    assert_eq!(
        unaligned_field("Node 0, zone Normal >100000 5 "),
        Some("field \">100000\"".into())
    );
    assert_eq!(
        unaligned_field("Node 0, zone Normal 1234567 5 "),
        Some("field \"1234567\"".into())
    );
    assert_eq!(unaligned_field("Node 0, zone Normal 123456 5 "), None);
    assert_eq!(
        zoneinfo_key("        protection: (0, 3019, 4171)"),
        "        protection: ("
    );
    assert_eq!(
        zoneinfo_key("      nr_free_pages 3840"),
        "      nr_free_pages "
    );
    assert_eq!(zoneinfo_key("  per-node stats"), "  per-node stats");
    assert_eq!(zoneinfo_key("    cpu: 1"), "    cpu: ");
    let z = "Node 0, zone DMA\n  pagesets\n    cpu: 0\n    cpu: 1\nNode 0, zone DMA32\n  pagesets\n    cpu: 0\n";
    assert_eq!(cpus_in_first_populated_zone(z), 2);
    // The comparison catches a shifted field, a missing trailing space, a changed header,
    // a different row and a missing blank line.
    let good = "Pages per block:  512\n\nNode 0, zone      DMA      1      2 \n";
    assert!(compare_format("t", good, good).is_empty());
    for bad in [
        "Pages per block:  512\n\nNode 0, zone      DMA     1      2 \n",
        "Pages per block:  512\n\nNode 0, zone      DMA      1      2\n",
        "Pages per block: 512\n\nNode 0, zone      DMA      1      2 \n",
        "Pages per block:  512\n\nNode 0, zone    DMA32      1      2 \n",
        "Pages per block:  512\nNode 0, zone      DMA      1      2 \n",
    ] {
        assert!(
            !compare_format("t", good, bad).is_empty(),
            "not caught: {bad:?}"
        );
    }
}
