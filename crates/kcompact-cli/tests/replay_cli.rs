//! End-to-end tests of `kcompact replay` (issue 9) on the real trace
//! `../shared/data/trace/case0` (skipped with a printed reason where it is missing), and
//! its bad input.

mod common;

use common::kcompact;
use std::path::{Path, PathBuf};

fn case0() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/trace/case0");
    d.join("trace.txt.zst").is_file().then_some(d)
}

fn run(args: &[&str]) -> (String, String) {
    let o = kcompact(args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "kcompact {args:?}: {err}");
    (out, err)
}

/// `kcompact replay TRACE --snapshot START --json [extra...]` as JSON.
fn replay_json(trace: &Path, start: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "replay",
        trace.to_str().unwrap(),
        "--snapshot",
        start.to_str().unwrap(),
        "--json",
    ];
    args.extend(extra);
    serde_json::from_str(&run(&args).0).expect("JSON")
}

/// The number after `key ` on a line of `out`.
fn number_after(out: &str, key: &str) -> u64 {
    out.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .split_whitespace()
                .next()?
                .trim_end_matches(':')
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no '{key}' line in:\n{out}"))
}

#[test]
fn issue_9_case0_replays_exactly_from_its_start_snapshot() {
    let Some(d) = case0() else {
        eprintln!("skipped: ../shared/data/trace/case0 is not here");
        return;
    };
    let trace = d.join("trace.txt.zst");
    let start = d.join("start");
    let (out, _) = run(&[
        "replay",
        trace.to_str().unwrap(),
        "--snapshot",
        start.to_str().unwrap(),
    ]);
    let events = number_after(&out, "events");
    let bad = number_after(&out, "inconsistencies");
    assert_eq!(
        events, 1_078_049,
        "every event of the trace is understood:\n{out}"
    );
    assert!(
        bad * 20 < events,
        "fewer than 5 % of the events contradict the model: {bad}"
    );
    assert!(out.contains("malformed lines 0"), "{out}");
    assert!(
        out.contains("the model's free pages by order at the end:\nNode 0, zone      DMA"),
        "{out}"
    );
    assert!(
        out.contains("kernel's buddyinfo_end_immediate minus the model"),
        "{out}"
    );
    // The kernel's compact_memory runs, with the model's next to them.
    assert!(
        out.contains(
            "zone 0x100000-0x4a0000 sync complete: 38912 61074 1138 480 178 at 0x108000 |"
        ),
        "{out}"
    );
}

/// Issue 16's measure of the per-CPU lists on case0: the holes the deleted files left wait
/// on the lists, so the Normal zone's `compact_memory` finds as little to do as the
/// kernel did; the replay contradicts few events; the lists end as full as the trace says.
#[test]
fn issue_16_case0_compact_memory_meets_where_the_kernel_did() {
    let Some(d) = case0() else {
        eprintln!("skipped: ../shared/data/trace/case0 is not here");
        return;
    };
    let j = replay_json(&d.join("trace.txt.zst"), &d.join("start"), &[]);
    let normal = j["compactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["zone_start"] == 0x100000)
        .expect("the Normal zone's run");
    let (k, m) = (&normal["kernel"], &normal["model"]);
    let within = |key: &str, pct: f64| {
        let (kv, mv) = (k[key].as_f64().unwrap(), m[key].as_f64().unwrap());
        assert!(
            (mv - kv).abs() <= kv * pct / 100.0,
            "{key}: model {mv}, kernel {kv}"
        );
    };
    within("migrate_scanned", 25.0);
    within("migrated", 25.0);
    within("free_scanned", 25.0);
    let block = 512;
    let (ke, me) = (
        k["end_migrate_pfn"].as_i64().unwrap(),
        m["end_migrate_pfn"].as_i64().unwrap(),
    );
    assert!(
        (ke - me).abs() <= 4 * block,
        "met at {me:#x}, kernel {ke:#x}"
    );
    let (bad, applied) = (
        j["inconsistencies"].as_u64().unwrap(),
        j["applied"].as_u64().unwrap(),
    );
    assert!(
        bad * 200 < applied,
        "{bad} of {applied} contradict the model"
    );
    // The lists at the trace's end: the start snapshot's counts plus the trace's flows.
    let normal = |list: &str, key: &str| -> serde_json::Value {
        j[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|z| z["zone"] == "Normal" || z["name"] == "Normal")
            .unwrap()[key]
            .clone()
    };
    let kernel_pcp = normal("kernel_trace_end_pcp", "pages").as_f64().unwrap();
    let model_pcp = normal("zones", "pcp_pages").as_f64().unwrap();
    assert!(
        (model_pcp - kernel_pcp).abs() <= kernel_pcp * 0.10,
        "per-CPU pages: model {model_pcp}, kernel {kernel_pcp}"
    );
    // The buddy lists at the end, order by order, within a few blocks of the kernel's.
    let kn = normal("kernel_end", "free_by_order");
    let mn = normal("zones", "free_by_order");
    let (kn, mn) = (kn.as_array().unwrap(), mn.as_array().unwrap());
    for (o, (a, b)) in kn.iter().zip(mn).enumerate() {
        let (a, b) = (a.as_i64().unwrap(), b.as_i64().unwrap());
        assert!(
            (a - b).abs() <= 2 + a / 10,
            "order {o}: model {b}, kernel {a}"
        );
    }
}

#[test]
fn issue_9_case0_policy_mode_gives_a_fragmentation_timeline() {
    let Some(d) = case0() else {
        eprintln!("skipped: ../shared/data/trace/case0 is not here");
        return;
    };
    let dir = std::env::temp_dir().join(format!("kcompact-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let trace = d.join("trace.txt.zst");
    let start = d.join("start");
    let j = replay_json(
        &trace,
        &start,
        &["--mode", "policy", "--out", dir.to_str().unwrap()],
    );
    assert_eq!(j["mode"], "policy");
    assert_eq!(j["known"]["mm_page_alloc"], 367_043);
    assert_eq!(j["inconsistency_kinds"]["policy_alloc_failed"], 0);
    let tl = j["timeline"].as_array().unwrap();
    assert!(tl.len() > 100, "{} rows", tl.len());
    let first = tl[0]["free_pages"].as_u64().unwrap();
    assert!(
        tl.iter()
            .any(|r| r["free_pages"].as_u64().unwrap() != first),
        "the timeline moves"
    );
    let csv = std::fs::read_to_string(dir.join("timeline.csv")).unwrap();
    assert!(csv.starts_with("events,time_ns,free_pages,free_order9_blocks,free_o0,"));
    assert_eq!(csv.lines().count(), tl.len() + 1);
    assert!(dir.join("buddyinfo").is_file() && dir.join("result.json").is_file());
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("Fragmentation over the trace: free pages by order"),
        "the report holds the policy-mode timeline"
    );
    assert!(!html.contains("data-points=\"0\""), "every plot has data");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_bad_input_exits_2_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("kcompact-replay-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.txt");
    std::fs::write(&garbage, "hello\nworld 1.5: mm_page_alloc: order=99\n").unwrap();
    let o = kcompact(&["replay", garbage.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("garbage.txt") && e.contains("line 1"), "{e}");
    let o = kcompact(&["replay", dir.join("missing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let o = kcompact(&["replay", garbage.to_str().unwrap(), "--mode", "sideways"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--mode sideways"));
    let bad_zst = dir.join("bad.zst");
    std::fs::write(&bad_zst, [0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]).unwrap();
    let o = kcompact(&["replay", bad_zst.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A trace this project captured on the same machine with `kcompact capture --trace 10`
/// while `scripts/trace-thp-workload.sh` ran (interleaved page cache, half deleted, then
/// 384 MADV_HUGEPAGE faults with compaction_proactiveness raised to 90): what case0 lacks,
/// THP faults and a kcompactd run.
#[test]
fn issue_9_thp_trace_replays_with_kcompactd_next_to_the_model() {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/trace_thp");
    let trace = d.join("trace.txt.zst");
    let start = d.join("start");
    let j = replay_json(&trace, &start, &["--set", "compaction_proactiveness=90"]);
    let events = j["events"].as_u64().unwrap();
    let bad = j["inconsistencies"].as_u64().unwrap();
    assert!(bad * 20 < events, "{bad} of {events}");
    let c = j["compactions"].as_array().unwrap();
    assert_eq!(c.len(), 3, "kcompactd compacted every zone of the node");
    let normal = &c[2];
    assert_eq!(normal["status"], "contended");
    assert_eq!(normal["kernel"]["migrated"], 1725);
    assert!(
        normal["model"]["migrated"].as_u64().unwrap() > 0,
        "{normal}"
    );
    // Allocations and frees recorded after the snapshot read their pfns were placed where
    // the kernel put them (the 2 MiB THP faults among them); a batched free is recorded
    // twice (mm_page_free_batched and mm_page_free) and applied once.
    let known = &j["known"];
    let placeable = known["mm_page_alloc"].as_u64().unwrap()
        + known["mm_page_free"].as_u64().unwrap()
        - j["before_snapshot"].as_u64().unwrap();
    let applied = j["applied"].as_u64().unwrap();
    assert!(applied * 100 > placeable * 90, "{applied} of {placeable}");
    // The traced refills and drains moved blocks between the buddy and per-CPU lists.
    assert!(j["pcp_refills"]["blocks"].as_u64().unwrap() > 1000);
    assert!(j["pcp_drains"]["blocks"].as_u64().unwrap() > 1000);
    assert!(j["kernel_end_pcp"].is_array());
}

/// `replay --mem --set integrity=stamps|bytes` checks the data of every folio the replay
/// holds at the end; on a snapshot the boot-time key is refused, naming it.
#[test]
fn replay_checks_the_data_it_holds_with_integrity() {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/trace_thp");
    let trace = d.join("trace.txt.zst");
    for integrity in ["integrity=stamps", "integrity=bytes"] {
        let (out, _) = run(&[
            "replay",
            trace.to_str().unwrap(),
            "--mem",
            "1G",
            "--mode",
            "policy",
            "--set",
            integrity,
            "--json",
        ]);
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(
            j["integrity_checked_pages"].as_u64().unwrap() > 1000,
            "{integrity}"
        );
        assert_eq!(j["integrity_errors"], 0, "{integrity}");
    }
    let o = kcompact(&[
        "replay",
        trace.to_str().unwrap(),
        "--snapshot",
        d.join("start").to_str().unwrap(),
        "--set",
        "integrity=stamps",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("integrity") && e.lines().count() == 1, "{e}");
}
