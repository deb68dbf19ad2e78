//! `kcompact explain`: the real reports of `../shared/data/dmesg` as text and `--json`
//! (skipped with a printed reason where missing), stdin, bad dumps (cut short, another
//! kernel message, binary) exiting 2 with one line naming the input and line, `--help`,
//! and seeded corrupted dumps that must exit 0 or 2, never panic.

mod common;

use common::{kcompact, stderr, stdout};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn data(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/dmesg")
        .join(name);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("skipped: {} is not here", p.display());
        None
    }
}

fn with_stdin(args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new(common::BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kcompact");
    // The process may exit before reading everything (bad input): ignore a broken pipe.
    let _ = child.stdin.take().expect("stdin").write_all(input);
    child.wait_with_output().expect("wait")
}

fn temp_file(tag: &str, bytes: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("kcompact-explain-{tag}-{}.txt", std::process::id()));
    std::fs::write(&p, bytes).expect("write temp file");
    p
}

/// Exit 2, one line on stderr naming `what` and a line, no panic.
fn assert_refused(o: &std::process::Output, what: &str) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(what), "{err}");
    assert!(err.contains("line "), "{err}");
    assert!(stdout(o).is_empty());
    err
}

#[test]
fn real_reports_as_text_and_json() {
    let cases = [
        (
            "03-linux-mm-radeon-3.13.txt",
            4,
            "0x10c0d0",
            "fragmented",
            "order <= 3",
        ),
        (
            "05-linux-mips-ingenic-cma.txt",
            5,
            "0x40cc0",
            "reserved_types",
            "order <= 3",
        ),
        (
            "08-linux-fsdevel-steamdeck-dma32.txt",
            7,
            "0xc04",
            "fragmented",
            "order <= 6",
        ),
        (
            "13-forum-rocketraid-insmod.txt",
            9,
            "0x20",
            "fragmented",
            "order <= 8",
        ),
    ];
    for (name, order, mask, kind, remedy) in cases {
        let Some(p) = data(name) else { continue };
        let path = p.to_str().unwrap();
        let o = kcompact(&["explain", path]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        let text = stdout(&o);
        assert!(
            text.contains(&format!("Verdict ({kind})")),
            "{name}:\n{text}"
        );
        assert!(text.contains(remedy), "{name}:\n{text}");
        let o = kcompact(&["explain", path, "--json"]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
        assert_eq!(v["order"], order, "{name}");
        assert_eq!(v["gfp_mask"], mask, "{name}");
        assert_eq!(v["verdict_kind"], kind, "{name}");
        assert!(v["verdict"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(v["gfp_flags"].is_array(), "{name}");
        assert!(v["unknown"].as_array().is_some_and(|u| !u.is_empty()));
        let w = v["would_succeed_with"].as_array().unwrap();
        assert!(w.iter().any(|m| m["change"] == remedy), "{name}");
        for z in v["zones"].as_array().unwrap() {
            for key in [
                "node",
                "name",
                "free_kb",
                "min_kb",
                "low_kb",
                "high_kb",
                "free_by_order",
            ] {
                assert!(!z[key].is_null(), "{name}: zone without {key}");
            }
        }
    }
    // The facts of one report, field by field.
    let Some(p) = data("08-linux-fsdevel-steamdeck-dma32.txt") else {
        return;
    };
    let o = kcompact(&["explain", p.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["gfp_flags"], serde_json::json!(["GFP_NOIO", "GFP_DMA32"]));
    let dma32 = &v["zones"][1];
    assert_eq!(dma32["name"], "DMA32");
    assert_eq!(
        (
            dma32["free_kb"].as_u64(),
            dma32["min_kb"].as_u64(),
            dma32["low_kb"].as_u64(),
            dma32["high_kb"].as_u64()
        ),
        (Some(9796), Some(8264), Some(10328), Some(12392))
    );
    assert_eq!(
        dma32["free_by_order"],
        serde_json::json!([103, 52, 43, 58, 35, 23, 5, 0, 0, 0, 0])
    );
    assert_eq!(dma32["outcome"], "no_free_block");
    assert_eq!(v["request"]["can_compact"], "no");
}

#[test]
fn stdin_is_read_when_dump_is_dash() {
    let Some(p) = data("05-linux-mips-ingenic-cma.txt") else {
        return;
    };
    let bytes = std::fs::read(p).unwrap();
    let o = with_stdin(&["explain", "-"], &bytes);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("only on CMA free lists"));
}

#[test]
fn bad_dumps_exit_2_naming_the_line() {
    let Some(p) = data("03-linux-mm-radeon-3.13.txt") else {
        return;
    };
    let text = std::fs::read_to_string(&p).unwrap();
    // Cut in the middle of the zone lines.
    let cut: String = text.lines().take(52).collect::<Vec<_>>().join("\n");
    let f = temp_file("cut", cut.as_bytes());
    let err = assert_refused(&kcompact(&["explain", f.to_str().unwrap()]), "cut short");
    assert!(err.contains(f.to_str().unwrap()), "{err}");
    let _ = std::fs::remove_file(&f);
    // Cut before Mem-Info.
    let cut: String = text.lines().take(20).collect::<Vec<_>>().join("\n");
    assert_refused(
        &with_stdin(&["explain", "-"], cut.as_bytes()),
        "<stdin>: line 20",
    );
    // Another kernel message.
    let oom = b"[ 1.0] bash invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0\n[ 1.1] Mem-Info:\n";
    assert_refused(&with_stdin(&["explain", "-"], oom), "OOM-killer");
    // Binary.
    let mut bin = text.clone().into_bytes();
    bin.splice(100..100, [0u8, 1, 2, 0xfe, 0xff]);
    assert_refused(&with_stdin(&["explain", "-"], &bin), "binary");
    // A file that is not there.
    let o = kcompact(&["explain", "/nonexistent/dump.txt"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/dump.txt"));
}

#[test]
fn help_shows_an_example() {
    let o = kcompact(&["explain", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let h = stdout(&o);
    assert!(h.contains("Example: kcompact explain"), "{h}");
    assert!(h.contains("--json"), "{h}");
}

#[test]
fn corrupted_dumps_exit_0_or_2_never_panic() {
    let Some(p) = data("08-linux-fsdevel-steamdeck-dma32.txt") else {
        return;
    };
    let base = std::fs::read(p).unwrap();
    let mut rng = kcompact::rng::SimRng::new(2025);
    for i in 0..60 {
        let mut b = base.clone();
        for _ in 0..rng.range(1, 6) {
            let k = rng.below(b.len() as u64) as usize;
            match rng.below(4) {
                0 => b[k] = rng.below(256) as u8,
                1 => {
                    b.remove(k);
                }
                2 => b.truncate(k.max(1)),
                _ => b.insert(k, b"0123456789*( )="[rng.below(15) as usize]),
            }
        }
        let o = with_stdin(&["explain", "-", "--json"], &b);
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "input {i}: {err}");
        match o.status.code() {
            Some(0) => {
                let v: serde_json::Value =
                    serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("input {i}: {e}"));
                assert!(v["verdict"].is_string());
            }
            Some(2) => assert_eq!(err.lines().count(), 1, "input {i}: {err}"),
            c => panic!("input {i}: exit {c:?}: {err}"),
        }
    }
}

#[test]
fn the_docs_examples_are_the_current_output() {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/explain.md"),
    )
    .expect("docs/explain.md");
    // 08 in full; 03 and 13 from their verdict on.
    for (name, whole) in [
        ("08-linux-fsdevel-steamdeck-dma32.txt", true),
        ("03-linux-mm-radeon-3.13.txt", false),
        ("13-forum-rocketraid-insmod.txt", false),
    ] {
        let Some(p) = data(name) else { continue };
        let out = stdout(&kcompact(&["explain", p.to_str().unwrap()]));
        let shown = if whole {
            out.trim_end()
        } else {
            out[out.find("Verdict").expect("a verdict")..].trim_end()
        };
        assert!(
            doc.contains(shown),
            "docs/explain.md no longer shows what `kcompact explain` prints for {name}; \
             update it:\n{out}"
        );
    }
}
