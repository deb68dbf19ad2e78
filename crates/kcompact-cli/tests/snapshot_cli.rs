//! End-to-end tests of `kcompact predict` and `kcompact analyze` on the real snapshots in
//! `../shared/data` (skipped with a printed reason where they are missing), and their bad
//! input: exit code 2 and a message naming the file.

mod common;

use common::{json_ok, kcompact};
use std::path::{Path, PathBuf};

fn case(name: &str) -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/realkernel")
        .join(name);
    d.is_dir().then_some(d)
}

fn o9(zones: &serde_json::Value) -> u64 {
    zones
        .as_array()
        .expect("zones")
        .iter()
        .map(|z| {
            let f = z["free_by_order"].as_array().expect("free_by_order");
            f[9].as_u64().unwrap() + 2 * f[10].as_u64().unwrap()
        })
        .sum()
}

/// `kcompact predict CASE/before --action compact --json` on a real case, with the case's
/// `before/` path; None (and a printed reason) where the case is not here.
fn predict_compact(name: &str) -> Option<(PathBuf, serde_json::Value)> {
    predict_action(name, "compact").map(|(dir, v)| (dir.join("before"), v))
}

/// `kcompact predict CASE/before --action ACTION --json` on a real case, with the case's
/// directory; None (and a printed reason) where the case is not here.
fn predict_action(name: &str, action: &str) -> Option<(PathBuf, serde_json::Value)> {
    let Some(dir) = case(name) else {
        eprintln!("skipped: ../shared/data/realkernel/{name} is not here");
        return None;
    };
    let before = dir.join("before");
    let v = json_ok(&[
        "predict",
        before.to_str().unwrap(),
        "--action",
        action,
        "--json",
    ]);
    Some((dir, v))
}

#[test]
fn predict_compact_on_a_real_snapshot_gains_like_the_kernel() {
    let Some((_, v)) = predict_compact("A_g8_r1") else {
        return;
    };
    assert_eq!(v["action"], "compact");
    let (b, a) = (o9(&v["before"]["zones"]), o9(&v["after"]["zones"]));
    assert_eq!(b, v["before"]["hugepages"].as_u64().unwrap());
    // The kernel: 3073 -> 5036 free order>=9 blocks (+1963) on this image.
    assert_eq!(b, 3073, "the loaded image has the snapshot's free blocks");
    let gain = a as i64 - b as i64;
    assert!(
        (gain - 1963).abs() * 10 <= 1963,
        "gain +{gain}, kernel +1963"
    );
    let d = &v["vmstat_delta"];
    assert!(d["pgmigrate_success"].as_u64().unwrap() > 400_000);
    assert!(d["compact_migrate_scanned"].as_u64().unwrap() > 0);
    // Same snapshot, same output.
    let (_, again) = predict_compact("A_g8_r1").expect("still here");
    assert_eq!(v, again);
}

#[test]
fn analyze_a_real_snapshot_names_its_blockers() {
    let Some(dir) = case("A2_g4_r1") else {
        eprintln!("skipped: ../shared/data/realkernel/A2_g4_r1 is not here");
        return;
    };
    let v = json_ok(&["analyze", dir.join("before").to_str().unwrap(), "--json"]);
    let now = v["hugepages_now"].as_u64().unwrap();
    let after = v["hugepages_after_compaction"].as_u64().unwrap();
    let dropped = v["hugepages_after_drop_caches"].as_u64().unwrap();
    assert!(
        dropped > after,
        "dropping the page cache too frees more: {dropped} vs {after}"
    );
    // buddyinfo, read just before the page arrays, says 5067; the machine moved a little.
    assert!(
        now.abs_diff(5067) <= 5,
        "buddyinfo of the snapshot: 5067, loaded {now}"
    );
    assert!(after > now);
    // The loaded free lists against buddyinfo read before and after the page arrays.
    let check = v["buddyinfo_check"].as_array().unwrap();
    let normal = check.iter().find(|c| c["zone"] == "Normal").unwrap();
    let (m, b, p) = (
        normal["model_free_pages"].as_u64().unwrap(),
        normal["buddyinfo_free_pages"].as_u64().unwrap(),
        normal["buddyinfo_post_free_pages"].as_u64().unwrap(),
    );
    assert!(
        m + m / 100 >= b.min(p) && m <= b.max(p) + m / 100,
        "model {m} free pages, buddyinfo {b} before and {p} after"
    );
    let blockers = v["blockers"].as_array().unwrap();
    let reasons: Vec<&str> = blockers
        .iter()
        .map(|b| b["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"unmovable slab"), "{reasons:?}");
    assert!(
        reasons.contains(&"not initialised (deferred_init)"),
        "{reasons:?}"
    );
    let counts: Vec<u64> = blockers
        .iter()
        .map(|b| b["pageblocks"].as_u64().unwrap())
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] >= w[1]),
        "ranked: {counts:?}"
    );
    let text = kcompact(&["analyze", dir.join("before").to_str().unwrap()]);
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(t.contains("Node 0, zone   Normal"), "{t}");
    assert!(t.contains(&format!("hugepages_now {now}")), "{t}");
}

#[test]
fn predict_drop_caches_and_hugepages_on_a_real_snapshot() {
    let Some(dir) = case("A2_g8_r1") else {
        eprintln!("skipped: ../shared/data/realkernel/A2_g8_r1 is not here");
        return;
    };
    let before = dir.join("before");
    let snap = before.to_str().unwrap();
    // drop_caches: the clean page cache (about 4 GiB of files here) goes, and the holes
    // it leaves merge with the free ones into huge pages, with no compaction at all.
    let v = json_ok(&["predict", snap, "--action", "drop-caches", "--json"]);
    let dropped = v["pages_dropped"].as_u64().unwrap();
    assert!(dropped > 900_000, "dropped {dropped} pages");
    assert!(o9(&v["after"]["zones"]) > o9(&v["before"]["zones"]) + 1000);
    assert_eq!(v["vmstat_delta"]["drop_pagecache"], 1);
    assert_eq!(v["vmstat_delta"]["compact_migrate_scanned"], 0);
    // nr_hugepages past what is free: the rest comes from direct compaction and from
    // kswapd, woken by the high-order requests, reclaiming page cache on its CPU while the
    // pool grows (as the kernel's did in H_g8_s1), until the first allocation that fails;
    // the pool then stops growing. (The measured nr_hugepages cases, H_*, are compared in
    // docs/results.md.)
    let free = o9(&v["before"]["zones"]);
    let v = json_ok(&["predict", snap, "--action", "hugepages=9000", "--json"]);
    let got = v["hugepages_allocated"].as_u64().unwrap();
    assert!(
        got < 9000 && got > free + 200,
        "got {got} of 9000, {free} free"
    );
    let d = &v["vmstat_delta"];
    assert!(
        d["compact_success"].as_u64().unwrap() > (got - free) / 4,
        "{d}"
    );
    assert!(d["pgsteal_kswapd"].as_u64().unwrap() > 100_000, "{d}");
    assert!(d["kswapd_high_wmark_hit_quickly"].is_u64(), "{d}");
    assert!(v["simulated_cpu_ms"].as_u64().unwrap() > 0);
    assert_eq!(v["vmstat_delta"]["htlb_buddy_alloc_fail"], 1);
    assert_eq!(
        v["vmstat_delta"]["htlb_buddy_alloc_success"].as_u64(),
        Some(got)
    );
    // Asking for fewer than that is granted in full.
    let ask = (free + got) / 2;
    let v = json_ok(&[
        "predict",
        snap,
        "--action",
        &format!("hugepages={ask}"),
        "--json",
    ]);
    assert_eq!(v["hugepages_allocated"].as_u64(), Some(ask));
    assert_eq!(v["vmstat_delta"]["htlb_buddy_alloc_fail"], 0);
    let text = kcompact(&["predict", snap, "--action", "hugepages=100"]);
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(t.contains("echo 100 > /proc/sys/vm/nr_hugepages"), "{t}");
    assert!(t.contains("hugepages_allocated 100"), "{t}");
}

#[test]
fn bad_snapshots_exit_2_naming_the_file() {
    let tmp = std::env::temp_dir().join(format!("kcompact-snap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let dir = tmp.to_str().unwrap();
    // Missing directory.
    let o = kcompact(&["analyze", &format!("{dir}/nope")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such snapshot directory"));
    // Missing meta.txt.
    let o = kcompact(&["predict", dir, "--action", "compact"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("meta.txt"));
    // A zoneinfo with garbage, then a truncated kpageflags.
    std::fs::write(tmp.join("meta.txt"), "pfn_start=1\npfn_end=3\n").unwrap();
    std::fs::write(tmp.join("zoneinfo"), "Node 0, zone DMA\n  spanned  x\n").unwrap();
    let o = kcompact(&["analyze", dir]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("zoneinfo: line 2: spanned"), "{e}");
    std::fs::write(
        tmp.join("zoneinfo"),
        "Node 0, zone DMA\n  spanned  2\n  present  2\n  managed 2\n  start_pfn: 1\n",
    )
    .unwrap();
    std::fs::write(tmp.join("kpageflags"), [0u8; 12]).unwrap();
    let o = kcompact(&["analyze", dir]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("kpageflags: byte 8"), "{e}");
    // Sizes that disagree with meta.txt.
    std::fs::write(tmp.join("kpageflags"), [0u8; 8]).unwrap();
    let o = kcompact(&["analyze", dir]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds 1 pfns"));
    // A zone beyond the page arrays.
    std::fs::write(tmp.join("kpageflags"), [0u8; 16]).unwrap();
    std::fs::write(
        tmp.join("zoneinfo"),
        "Node 0, zone DMA\n  spanned  99999999999\n  present  2\n  managed 2\n  start_pfn: 1\n",
    )
    .unwrap();
    let o = kcompact(&["analyze", dir]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("outside kpageflags"));
    std::fs::write(
        tmp.join("zoneinfo"),
        "Node 0, zone DMA\n  spanned  2\n  present  2\n  managed 2\n  start_pfn: 1\n",
    )
    .unwrap();
    // An unknown action.
    for bad in ["explode", "hugepages=", "hugepages=-3", "hugepages=x"] {
        let o = kcompact(&["predict", dir, "--action", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("compact, drop-caches, hugepages=N"),
            "{bad}: {e}"
        );
    }
    // A well-formed tiny snapshot loads: two pages, one free.
    let mut flags = (1u64 << 10).to_le_bytes().to_vec();
    flags.extend((1u64 << 5).to_le_bytes());
    std::fs::write(tmp.join("kpageflags"), flags).unwrap();
    let v = json_ok(&["analyze", dir, "--json"]);
    assert_eq!(v["zones"][0]["name"], "DMA");
    assert_eq!(v["zones"][0]["managed_pages"], 2);
    assert_eq!(v["zones"][0]["free_by_order"][0], 1, "pfn 1 is free");
    assert_eq!(
        v["load"]["placed_by_class"]["file"], 1,
        "pfn 2 is page cache"
    );
    // The capture's own pages (capture_pfns.txt): a bad line names the file and line; an
    // anonymous page listed there is free again, a page cache page is left alone.
    std::fs::write(tmp.join("capture_pfns.txt"), "2\nzz\n").unwrap();
    let o = kcompact(&["analyze", dir]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("capture_pfns.txt: line 2"), "{e}");
    std::fs::write(tmp.join("capture_pfns.txt"), "2\n").unwrap();
    let v = json_ok(&["analyze", dir, "--json"]);
    assert_eq!(v["load"]["capture_pages_released"], 0, "page cache stays");
    // Four pages: free, anonymous (LRU|MMAP|ANON), a page table, free.
    let flags: Vec<u8> = [1u64 << 10, 1 << 5 | 1 << 11 | 1 << 12, 1 << 26, 1 << 10]
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    std::fs::write(tmp.join("kpageflags"), flags).unwrap();
    std::fs::write(tmp.join("meta.txt"), "pfn_start=1\npfn_end=5\n").unwrap();
    std::fs::write(
        tmp.join("zoneinfo"),
        "Node 0, zone DMA\n  spanned  4\n  present  4\n  managed 4\n  start_pfn: 1\n",
    )
    .unwrap();
    let v = json_ok(&["analyze", dir, "--json"]);
    assert_eq!(v["load"]["placed_by_class"]["anon"], 1);
    assert_eq!(v["load"]["capture_pages_released"], 1);
    // The capture process exits: its page goes where a freed page goes, its CPU's list.
    assert_eq!(v["zones"][0]["free_by_order"][0], 2);
    assert_eq!(v["zones"][0]["pcp_pages"], 1, "the capture's page is free");
    std::fs::remove_file(tmp.join("capture_pfns.txt")).unwrap();
    let v = json_ok(&["analyze", dir, "--json"]);
    assert_eq!(v["zones"][0]["free_by_order"][0], 2, "without the list");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Issue 7: on A_g4_r1 the kernel's sync compaction of Normal ended `contended` with the
/// migrate scanner at 0x322a00 (an order-3 dirty ext4 folio with buffers found no order-3
/// destination and could not be split); `predict` reports the same end.
#[test]
fn issue7_predict_ends_a_g4_r1_contended_where_the_kernel_did() {
    let Some((before, v)) = predict_compact("A_g4_r1") else {
        return;
    };
    let ends = v["compaction"].as_array().expect("compaction ends");
    let status: Vec<&str> = ends.iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["complete", "complete", "contended"]);
    assert_eq!(ends[2]["zone"], "Normal");
    assert_eq!(ends[2]["migrate_pfn"], 0x322a00);
    let text = kcompact(&["predict", before.to_str().unwrap(), "--action", "compact"]);
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(
        out.contains("zone   Normal status=contended migrate_pfn=0x322a00"),
        "{out}"
    );
}

/// `--set` applies a run-time tunable to the loaded snapshot (a what-if), and refuses a
/// boot-time key with exit 2.
#[test]
fn predict_and_analyze_take_run_time_tunables() {
    let Some(dir) = case("A2_g4_r1") else {
        eprintln!("skipped: ../shared/data/realkernel/A2_g4_r1 is not here");
        return;
    };
    let before = dir.join("before");
    let b = before.to_str().unwrap();
    let after = |set: &[&str]| {
        let mut args = vec!["predict", b, "--action", "hugepages=100000", "--json"];
        args.extend_from_slice(set);
        json_ok(&args)
    };
    // The snapshot's own value (its sysctl_vm.txt: 10) changes no outcome and lists no
    // change; writing it recomputes the watermarks from the zones' managed pages now, as
    // the kernel's handler does (setup_per_zone_wmarks()): Normal's min 13,422 against
    // the zoneinfo's 13,434 — the same formula on other inputs (the managed counts of
    // when the kernel last set them). Another value
    // changes the run (watermarks drive kswapd and the allocations' watermark checks).
    let plain = after(&[]);
    let same = after(&["--set", "watermark_scale_factor=10"]);
    for k in ["hugepages_allocated", "vmstat_delta", "settings_changed"] {
        assert_eq!(same[k], plain[k], "{k}");
    }
    assert_eq!(same["after"]["hugepages"], plain["after"]["hugepages"]);
    let wide = after(&["--set", "watermark_scale_factor=1000"]);
    assert_ne!(
        wide["hugepages_allocated"], plain["hugepages_allocated"],
        "watermark_scale_factor=1000 left the pool as it was"
    );
    for cmd in [
        vec!["predict", b, "--action", "compact", "--set", "nodes=2"],
        vec!["analyze", b, "--set", "nodes=2"],
    ] {
        let o = kcompact(&cmd);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--set nodes: a boot-time choice"), "{err}");
    }
}

/// A `key=value` or `key value` figure from one of a case's text files.
fn kernel_figure(path: &Path, key: &str) -> u64 {
    let t = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    t.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find_map(|w| (w[0] == key).then(|| w[1].parse().ok()).flatten())
        .or_else(|| {
            t.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or_else(|| panic!("{key} in {}", path.display()))
}

/// `echo 100000 > nr_hugepages` on H_g8_s1 (8 GiB fragmented): the kernel's kswapd, woken
/// by the order-9 requests and napping between runs (`kswapd_low_wmark_hit_quickly` at
/// almost every run), reclaimed a million page-cache pages on its CPU while the pool grew.
/// The model's pool, kswapd reclaim and direct compaction against the kernel's run.
#[test]
fn nr_hugepages_on_h_g8_grows_with_kswapd_beside_it_like_the_kernels() {
    let Some((dir, v)) = predict_action("H_g8_s1", "hugepages=100000") else {
        return;
    };
    let d = &v["vmstat_delta"];
    let kernel = |key: &str| kernel_figure(&dir.join("vmstat_delta"), key);
    let within = |what: &str, model: u64, kernel: u64, pct: u64| {
        eprintln!("{what}: model {model}, kernel {kernel}");
        assert!(
            model.abs_diff(kernel) * 100 <= kernel * pct,
            "{what}: model {model}, kernel {kernel}, more than {pct} % apart"
        );
    };
    // The pool is 7.3 % short (the issue's goal is 5 %): the last allocation's
    // compaction meets skip hints kswapd has not reset yet (docs/results.md, "nr_hugepages
    // against the kernel").
    within(
        "pool",
        v["hugepages_allocated"].as_u64().unwrap(),
        kernel_figure(&dir.join("exp.log"), "nr_hugepages"),
        10,
    );
    within(
        "pgsteal_kswapd",
        d["pgsteal_kswapd"].as_u64().unwrap(),
        kernel("pgsteal_kswapd"),
        25,
    );
    within(
        "compact_stall",
        d["compact_stall"].as_u64().unwrap(),
        kernel("compact_stall"),
        35,
    );
    // The page cache's slab went with it: most of buffer_head's and radix_tree_node's
    // pages (kernel: 53,858 + 7,258 before, 3,164 + 4,182 after).
    assert!(v["slab_pages_freed"].as_u64().unwrap() > 40_000, "{v}");
    // kswapd ran again and again, woken during its nap.
    assert!(
        d["kswapd_low_wmark_hit_quickly"].as_u64().unwrap() * 2 > d["pageoutrun"].as_u64().unwrap(),
        "{d}"
    );
    // The write's duration (the kernel's action_ms): the model's is short of it.
    within(
        "action_ms",
        v["action_ms"].as_u64().unwrap(),
        kernel_figure(&dir.join("exp.log"), "action_ms"),
        35,
    );
}

/// `echo 3 > drop_caches` on D_g4_s1: the page cache and its slab go, and the write takes
/// about as long as the kernel's (`invalidate_mapping_pages()` costed per page as reclaim's
/// lookup and free).
#[test]
fn drop_caches_on_d_g4_frees_the_page_cache_its_slab_in_the_kernels_time() {
    let Some((dir, v)) = predict_action("D_g4_s1", "drop-caches") else {
        return;
    };
    assert!(v["pages_dropped"].as_u64().unwrap() > 500_000, "{v}");
    assert!(v["slab_pages_freed"].as_u64().unwrap() > 25_000, "{v}");
    let model = v["action_ms"].as_u64().unwrap();
    let kernel = kernel_figure(&dir.join("exp.log"), "action_ms");
    assert!(
        model.abs_diff(kernel) * 5 <= kernel,
        "action_ms: model {model}, kernel {kernel}"
    );
}
