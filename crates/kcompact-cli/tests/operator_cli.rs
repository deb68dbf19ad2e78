//! End-to-end tests of what an operator asks: what-if tunables on a snapshot (`--set` on
//! `predict`, each key changing what it should, the settings that differ from the
//! machine's), `advise` on every shared case, `--live` and `watch` on this machine (root
//! and tmux; skipped with a printed reason elsewhere).

mod common;

use common::{json_ok, kcompact, stderr, stdout};
use std::path::{Path, PathBuf};

fn case(name: &str) -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/realkernel")
        .join(name)
        .join("before");
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("skipped: ../shared/data/realkernel/{name} is not here");
        None
    }
}

fn predict(dir: &Path, action: &str, set: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "predict",
        dir.to_str().unwrap(),
        "--action",
        action,
        "--json",
    ];
    for kv in set {
        args.extend(["--set", kv]);
    }
    json_ok(&args)
}

fn normal<'a>(v: &'a serde_json::Value, when: &str) -> &'a serde_json::Value {
    v[when]["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["name"] == "Normal")
        .expect("a Normal zone")
}

fn delta(v: &serde_json::Value, k: &str) -> i64 {
    v["vmstat_delta"][k]
        .as_i64()
        .unwrap_or_else(|| panic!("{k}"))
}

/// The same prediction with `settings_changed` left out.
fn without_changes(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    v.as_object_mut().unwrap().remove("settings_changed");
    v
}

/// Each run-time key on `predict` moves what it governs, and is listed against the
/// machine's value; the machine's own value changes nothing and lists nothing.
#[test]
fn every_set_key_on_predict_changes_what_it_should() {
    let Some(dir) = case("A2_g4_r1") else { return };
    let compact = predict(&dir, "compact", &[]);
    let pool = predict(&dir, "hugepages=100000", &[]);
    assert_eq!(compact["settings_changed"], serde_json::json!([]));
    // The snapshot's own values (sysctl_vm.txt) change nothing.
    let same = predict(&dir, "compact", &["extfrag_threshold=500", "defrag_mode=0"]);
    assert_eq!(same, compact);

    // min_free_kbytes: every watermark of Normal about triples (67,584 kB -> 200,000 kB).
    let v = predict(&dir, "hugepages=100000", &["min_free_kbytes=200000"]);
    let (a, b) = (normal(&pool, "before"), normal(&v, "before"));
    for w in ["min", "low", "high"] {
        let (x, y) = (
            a["watermark"][w].as_u64().unwrap(),
            b["watermark"][w].as_u64().unwrap(),
        );
        assert!(y * 10 > x * 25, "{w}: {x} -> {y}");
    }
    assert_eq!(
        v["settings_changed"],
        serde_json::json!([{"key": "min_free_kbytes", "machine": "67584", "given": "200000", "source": "the machine's"}])
    );
    assert_ne!(v["hugepages_allocated"], pool["hugepages_allocated"]);

    // extfrag_threshold=1000: every costly-order request's fragmentation index is at most
    // 1000, so compaction is never suitable and the pool grows by reclaim alone.
    let v = predict(&dir, "hugepages=100000", &["extfrag_threshold=1000"]);
    assert!(delta(&pool, "compact_stall") > 0);
    assert_eq!(delta(&v, "compact_stall"), 0);
    assert_eq!(delta(&v, "compact_migrate_scanned"), 0);

    // defrag_mode=1: allocations keep ALLOC_NOFRAGMENT and kcompactd works to the high
    // watermark; the reclaim
    // beside the pool's growth is another.
    let v = predict(&dir, "hugepages=100000", &["defrag_mode=1"]);
    assert_ne!(delta(&v, "pgsteal_kswapd"), delta(&pool, "pgsteal_kswapd"));

    // percpu_pagelist_high_fraction=8: high_min = high_max = an eighth of the zone over
    // the CPUs; the lists keep more of what compaction frees, fewer huge pages form.
    let v = predict(&dir, "compact", &["percpu_pagelist_high_fraction=8"]);
    let z = normal(&v, "before");
    assert_eq!(z["pcp_high_min_max"][0], z["pcp_high_min_max"][1]);
    assert_ne!(
        normal(&compact, "before")["pcp_high_min_max"][0],
        z["pcp_high_min_max"][0]
    );
    assert!(
        normal(&v, "after")["pcp_pages"].as_u64() > normal(&compact, "after")["pcp_pages"].as_u64()
    );
    assert!(v["after"]["hugepages"].as_u64() < compact["after"]["hugepages"].as_u64());

    // compact_unevictable_allowed=0: the snapshot's unevictable (mlocked) pages stay.
    let v = predict(&dir, "compact", &["compact_unevictable_allowed=0"]);
    assert_ne!(
        delta(&v, "compact_migrate_scanned"),
        delta(&compact, "compact_migrate_scanned")
    );

    // compaction=off: compact_memory does nothing.
    let v = predict(&dir, "compact", &["compaction=off"]);
    assert_eq!(v["after"]["hugepages"], v["before"]["hugepages"]);
    assert_eq!(delta(&v, "compact_migrate_scanned"), 0);

    // Keys whose mechanism the action does not reach change nothing but are listed:
    // no fallback steals a pageblock during compact_memory (watermark_boost_factor), no
    // swap (swappiness), no proactive timer inside a synchronous compaction.
    for kv in [
        "watermark_boost_factor=0",
        "swappiness=200",
        "compaction_proactiveness=90",
    ] {
        let v = predict(&dir, "compact", &[kv]);
        assert_eq!(without_changes(&v), without_changes(&compact), "{kv}");
        let key = kv.split('=').next().unwrap();
        assert_eq!(v["settings_changed"][0]["key"], key, "{kv}");
    }

    // Keys that cannot apply to a snapshot are refused with the reason, on every command.
    let d = dir.to_str().unwrap();
    for (cmd, kv) in [
        (
            vec!["predict", d, "--action", "compact"],
            "skip_pinned=dma-pinned",
        ),
        (vec!["analyze", d], "thp_defrag=never"),
        (vec!["advise", d], "skip_pinned=extra-refs"),
    ] {
        let mut args = cmd.clone();
        args.extend(["--set", kv]);
        let o = kcompact(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("not on a snapshot"), "{}", stderr(&o));
    }
}

/// folio_compaction=split (before 6.9): free pages split to order 0 and large folios
/// skipped, so compaction of the large-folio case migrates far fewer pages.
#[test]
fn folio_compaction_split_skips_the_large_folios() {
    let Some(dir) = case("A_g4folio_r1") else {
        return;
    };
    let per_order = predict(&dir, "compact", &[]);
    let split = predict(&dir, "compact", &["folio_compaction=split"]);
    assert!(
        delta(&split, "pgmigrate_success") * 2 < delta(&per_order, "pgmigrate_success"),
        "{} vs {}",
        delta(&split, "pgmigrate_success"),
        delta(&per_order, "pgmigrate_success")
    );
}

/// The text output names each changed setting with the machine's value.
#[test]
fn predict_and_analyze_print_the_settings_that_differ() {
    let Some(dir) = case("A2_g4_r1") else { return };
    let d = dir.to_str().unwrap();
    for args in [
        vec![
            "predict",
            d,
            "--action",
            "compact",
            "--set",
            "watermark_scale_factor=100",
        ],
        vec!["analyze", d, "--set", "watermark_scale_factor=100"],
    ] {
        let o = kcompact(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains("## settings that differ from the machine's (--set)\nwatermark_scale_factor 10 -> 100  (the machine's)"),
            "{out}"
        );
    }
}

/// `advise` on every shared case: every option is there, ranked by what the target got,
/// the baseline is what the snapshot holds, compaction never loses blocks, the costs add
/// up (nothing reclaimed without a drop or reclaim), and the validated labels are given.
#[test]
fn advise_ranks_the_options_on_every_shared_case() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/realkernel");
    let Ok(entries) = std::fs::read_dir(&root) else {
        eprintln!("skipped: ../shared/data/realkernel is not here");
        return;
    };
    let mut cases: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path().join("before"))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    for dir in &cases {
        let d = dir.to_str().unwrap();
        let v = json_ok(&["advise", d, "--json"]);
        let opts = v["options"].as_array().unwrap();
        assert_eq!(opts.len(), 12, "{d}");
        let got: Vec<u64> = opts.iter().map(|o| o["got"].as_u64().unwrap()).collect();
        assert!(got.windows(2).all(|w| w[0] >= w[1]), "{d}: {got:?}");
        let by = |n: &str| {
            opts.iter()
                .find(|o| o["option"] == n)
                .unwrap_or_else(|| panic!("{d}: no {n}"))
        };
        // The same three figures as analyze's (on the first case: analyze is as long).
        if dir == &cases[0] {
            let analyzed = json_ok(&["analyze", d, "--json"]);
            assert_eq!(by("nothing")["got"], analyzed["hugepages_now"], "{d}");
            assert_eq!(
                by("compact_memory")["got"],
                analyzed["hugepages_after_compaction"],
                "{d}"
            );
            assert_eq!(
                by("drop_caches=3+compact")["got"],
                analyzed["hugepages_after_drop_caches"],
                "{d}"
            );
        }
        assert_eq!(by("nothing")["pages_reclaimed"], 0);
        assert_eq!(by("compact_memory")["pages_reclaimed"], 0);
        assert!(
            by("drop_caches=1")["pages_reclaimed"].as_u64() > Some(0),
            "{d}"
        );
        assert!(by("compact_memory")["validated"]
            .as_str()
            .unwrap()
            .starts_with("validated"));
        assert_eq!(
            by("proactiveness=50 (1 min)")["elapsed_ms"].as_u64(),
            Some(60_000),
            "{d}"
        );
    }
}

/// `advise --target hugepages=N`: every option is followed by the pool's growth; options
/// that reach N rank by their cost, the cheapest first.
#[test]
fn advise_for_a_pool_ranks_the_cheapest_that_reaches_it_first() {
    let Some(dir) = case("A2_g4_r1") else { return };
    let v = json_ok(&[
        "advise",
        dir.to_str().unwrap(),
        "--target",
        "hugepages=5500",
        "--json",
    ]);
    let opts = v["options"].as_array().unwrap();
    let reached: Vec<&serde_json::Value> = opts
        .iter()
        .filter(|o| o["got"].as_u64() >= Some(5500))
        .collect();
    assert!(!reached.is_empty());
    // Those that reach it come first, by pages reclaimed.
    assert!(opts[..reached.len()]
        .iter()
        .all(|o| o["got"].as_u64() >= Some(5500)));
    let costs: Vec<u64> = reached
        .iter()
        .map(|o| o["pages_reclaimed"].as_u64().unwrap())
        .collect();
    assert!(costs.windows(2).all(|w| w[0] <= w[1]), "{costs:?}");
    assert!(opts.iter().all(|o| o["command"]
        .as_str()
        .unwrap()
        .ends_with("echo 5500 > /proc/sys/vm/nr_hugepages")));
    // Bad targets exit 2 naming the flag.
    for args in [
        vec!["advise", dir.to_str().unwrap(), "--target", "pages=3"],
        vec!["advise", dir.to_str().unwrap(), "--order", "11"],
        vec![
            "advise",
            dir.to_str().unwrap(),
            "--target",
            "hugepages=5",
            "--order",
            "9",
        ],
    ] {
        let o = kcompact(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

fn root_with_kpageflags() -> bool {
    std::fs::File::open("/proc/kpageflags").is_ok()
}

/// `analyze --live` reads this machine now: its buddyinfo within the drift a live capture
/// allows of /proc/buddyinfo's, and no capture directory left behind.
#[test]
fn analyze_live_reads_this_machine() {
    if !root_with_kpageflags() {
        eprintln!("skipped: --live needs Linux and root (/proc/kpageflags)");
        return;
    }
    // Nothing is written: not in the temporary directory, not in the working directory.
    let quiet = Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-writes-nothing");
    let _ = std::fs::remove_dir_all(&quiet);
    std::fs::create_dir_all(&quiet).unwrap();
    let o = std::process::Command::new(common::BIN)
        .args(["analyze", "--live", "--json"])
        .env("TMPDIR", &quiet)
        .current_dir(&quiet)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let checks = v["snapshot_check"].clone();
    assert!(checks.is_object() || checks.is_array(), "{checks}");
    let normal = v["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["name"] == "Normal")
        .expect("Normal");
    assert!(normal["managed_pages"].as_u64() > Some(0));
    assert!(v["hugepages_after_compaction"].as_u64() >= v["hugepages_now"].as_u64());
    // The capture's own pages (its copies of the page arrays among them) given back.
    assert!(
        v["load"]["capture_pages_released"].as_u64() > Some(0),
        "{}",
        v["load"]
    );
    let left: Vec<_> = std::fs::read_dir(&quiet).unwrap().flatten().collect();
    assert!(
        left.is_empty(),
        "written: {:?}",
        left.iter().map(|e| e.path()).collect::<Vec<_>>()
    );
    // A snapshot and --live together, or neither, are refused.
    assert_eq!(kcompact(&["analyze"]).status.code(), Some(2));
    assert_eq!(kcompact(&["analyze", "x", "--live"]).status.code(), Some(2));
}

/// `watch` without a terminal prints plain blocks, one per refresh.
#[test]
fn watch_prints_plain_blocks_when_not_a_terminal() {
    if !Path::new("/proc/buddyinfo").exists() {
        eprintln!("skipped: watch reads /proc (Linux)");
        return;
    }
    let o = kcompact(&[
        "watch",
        "--interval",
        "100ms",
        "--count",
        "3",
        "--predict-every",
        "off",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(
        out.matches("kcompact watch — every 0.1s").count(),
        3,
        "{out}"
    );
    assert!(!out.contains('\x1b'), "escape sequences in plain output");
    assert!(out.contains("zone   Normal"), "{out}");
    assert!(out.contains("huge pages (free order>=9 blocks"), "{out}");
    for bad in ["0s", "abc", "99999s"] {
        let o = kcompact(&["watch", "--interval", bad, "--count", "1"]);
        assert_eq!(o.status.code(), Some(2), "--interval {bad}");
    }
}

/// `watch` in a terminal (tmux): it draws, refreshes and quits on `q`.
#[test]
fn watch_draws_refreshes_and_quits_in_a_terminal() {
    let tmux_ok = std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !tmux_ok || !Path::new("/proc/buddyinfo").exists() {
        // CI installs tmux and sets this, so there the test runs.
        assert!(
            std::env::var_os("KCOMPACT_REQUIRE_TMUX").is_none(),
            "KCOMPACT_REQUIRE_TMUX is set but tmux cannot run"
        );
        eprintln!("skipped: needs tmux and /proc (Linux)");
        return;
    }
    let session = format!("kcompact-watch-test-{}", std::process::id());
    let done = std::env::temp_dir().join(format!("{session}.rc"));
    let _ = std::fs::remove_file(&done);
    let cmd = format!(
        "{} watch --interval 200ms --predict-every off; echo $? > {}",
        common::BIN,
        done.display()
    );
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux")
    };
    let o = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "200",
        "-y",
        "40",
        &cmd,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pane = || stdout(&tmux(&["capture-pane", "-p", "-t", &session]));
    let clock_of = |p: &str| {
        p.lines()
            .next()
            .unwrap_or("")
            .split(" — ")
            .nth(2)
            .unwrap_or("")
            .to_string()
    };
    // It draws...
    let mut first = String::new();
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        first = pane();
        if first.contains("zone   Normal") {
            break;
        }
    }
    assert!(first.starts_with("kcompact watch — every 0.2s"), "{first}");
    assert!(first.contains("per second"), "{first}");
    // ...refreshes (the per-second rates appear once there are two readings; the clock
    // moves)...
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let second = pane();
    assert!(second.contains("zone   Normal"), "{second}");
    assert_ne!(
        clock_of(&first),
        clock_of(&second),
        "{first}\n---\n{second}"
    );
    // ...and quits on q with exit code 0.
    tmux(&["send-keys", "-t", &session, "q"]);
    let mut rc = None;
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Ok(t) = std::fs::read_to_string(&done) {
            rc = Some(t.trim().to_string());
            break;
        }
    }
    let _ = tmux(&["kill-session", "-t", &session]);
    let _ = std::fs::remove_file(&done);
    assert_eq!(rc.as_deref(), Some("0"), "watch did not quit on q");
}
