//! The snapshot parsers on the real machine's snapshots in `../shared/data/realkernel`:
//! every case's zoneinfo and buddyinfo parse, and the free blocks rebuilt from kpageflags
//! agree with buddyinfo read just before and just after the page arrays (a live machine
//! moves while ~100 MB are copied; the two reads bound the drift).
//! Skips with a printed reason where the data is missing.

use kcompact::event::VmEvent;
use kcompact::snapshot::kpageflags::{class_counts, rebuild_free_blocks, PageClass};
use kcompact::snapshot::text::{parse_buddyinfo, parse_zoneinfo};
use kcompact::snapshot::u64_array;
use std::path::{Path, PathBuf};

fn data_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/realkernel");
    d.is_dir().then_some(d)
}

fn snapshots(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for case in std::fs::read_dir(root).expect("realkernel dir").flatten() {
        for side in ["before", "after"] {
            let d = case.path().join(side);
            if d.join("kpageflags.zst").is_file() {
                out.push(d);
            }
        }
    }
    out.sort();
    out
}

fn read_zst(p: &Path) -> Vec<u8> {
    zstd::decode_all(std::fs::File::open(p).expect("open")).expect("zstd")
}

fn meta(dir: &Path, key: &str) -> u64 {
    let t = std::fs::read_to_string(dir.join("meta.txt")).expect("meta.txt");
    t.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in meta.txt"))
        .parse()
        .expect("number")
}

/// Free pages of a per-order count.
fn pages(c: &[u64; 11]) -> u64 {
    c.iter().enumerate().map(|(o, n)| n << o).sum()
}

#[test]
fn rebuilt_free_blocks_match_buddyinfo_on_every_real_snapshot() {
    let Some(root) = data_dir() else {
        eprintln!("skipped: ../shared/data/realkernel is not here");
        return;
    };
    let snaps = snapshots(&root);
    assert!(
        snaps.len() >= 12,
        "the cases' before/after snapshots: {snaps:?}"
    );
    let mut worst_high = 0f64;
    for dir in &snaps {
        let name = dir.strip_prefix(&root).unwrap().display().to_string();
        let zones = parse_zoneinfo(
            "zoneinfo",
            &std::fs::read_to_string(dir.join("zoneinfo")).unwrap(),
        )
        .unwrap();
        let pre = parse_buddyinfo(
            "buddyinfo",
            &std::fs::read_to_string(dir.join("buddyinfo")).unwrap(),
        )
        .unwrap();
        let post = parse_buddyinfo(
            "buddyinfo.post",
            &std::fs::read_to_string(dir.join("buddyinfo.post")).unwrap(),
        )
        .unwrap();
        let flags = u64_array("kpageflags", &read_zst(&dir.join("kpageflags.zst"))).unwrap();
        let base = meta(dir, "pfn_start");
        assert_eq!(
            base + flags.len() as u64,
            meta(dir, "pfn_end"),
            "{name}: pfn range"
        );
        for b in &pre {
            let z = zones
                .iter()
                .find(|z| z.node == b.node && z.name == b.name)
                .unwrap_or_else(|| panic!("{name}: zone {} in zoneinfo", b.name));
            let a = post.iter().find(|p| p.name == b.name).expect("post line");
            let got = rebuild_free_blocks(&flags, base, z.start_pfn, z.start_pfn + z.spanned);
            // Free pages: between the two reads, less what sat on per-cpu lists (no BUDDY
            // flag there) — allow 1 % of the zone's managed pages for pcp and drift.
            let (lo, hi) = (
                pages(&b.nr_free).min(pages(&a.nr_free)),
                pages(&b.nr_free).max(pages(&a.nr_free)),
            );
            let slack = z.managed / 100 + 64;
            let g = pages(&got);
            assert!(
                g + slack >= lo && g <= hi + slack,
                "{name} {}: rebuilt {g} free pages, buddyinfo {lo}..{hi}",
                b.name
            );
            // High orders are what compaction is about: order >= 9 blocks (order 10 = 2).
            let o9 = |c: &[u64; 11]| c[9] + 2 * c[10];
            let (klo, khi) = (
                o9(&b.nr_free).min(o9(&a.nr_free)),
                o9(&b.nr_free).max(o9(&a.nr_free)),
            );
            let gg = o9(&got);
            let off = if gg < klo {
                (klo - gg) as f64 / klo.max(1) as f64
            } else if gg > khi {
                (gg - khi) as f64 / khi.max(1) as f64
            } else {
                0.0
            };
            worst_high = worst_high.max(off);
            eprintln!(
                "{name:28} {:7} rebuilt free {g:8} (buddyinfo {lo}..{hi}), order>=9 {gg:5} (buddyinfo {klo}..{khi})",
                b.name
            );
            assert!(
                off <= 0.02,
                "{name} {}: order>=9 blocks rebuilt {gg}, buddyinfo {klo}..{khi}",
                b.name
            );
        }
        let normal = zones
            .iter()
            .find(|z| z.name == "Normal")
            .expect("Normal zone");
        let classes = class_counts(
            &flags,
            base,
            normal.start_pfn,
            normal.start_pfn + normal.spanned,
        );
        let summary: Vec<String> = PageClass::ALL
            .iter()
            .zip(classes)
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{}={n}", c.name()))
            .collect();
        eprintln!("{name:28} Normal classes: {}", summary.join(" "));
        assert_eq!(
            classes.iter().sum::<u64>(),
            normal
                .spanned
                .min(flags.len() as u64 + base - normal.start_pfn)
        );
    }
    eprintln!(
        "worst order>=9 disagreement outside the two reads: {:.2} %",
        worst_high * 100.0
    );
}

fn o9(c: &[u64; 11]) -> u64 {
    c[9] + 2 * c[10]
}

/// Loads each case's `before/` snapshot into the model, checks it, runs `compact_memory`
/// as `echo 1 > /proc/sys/vm/compact_memory` did, and sets the gain in free order >= 9
/// blocks against the kernel's (`buddyinfo_post_immediate` minus `before/buddyinfo`).
#[test]
fn loaded_cases_compact_like_the_kernel() {
    use kcompact::snapshot::load::{load, SnapshotFiles};
    use kcompact::VmConfig;
    let Some(root) = data_dir() else {
        eprintln!("skipped: ../shared/data/realkernel is not here");
        return;
    };
    let mut rows = Vec::new();
    for case in [
        "A2_g4_r1",
        "A2_g8_r1",
        "A_g4_r1",
        "A_g4folio_r1",
        "A_g4mix_r1",
        "A_g8_r1",
    ] {
        let dir = root.join(case).join("before");
        if !dir.is_dir() {
            continue;
        }
        let zones = parse_zoneinfo(
            "zoneinfo",
            &std::fs::read_to_string(dir.join("zoneinfo")).unwrap(),
        )
        .unwrap();
        let flags = u64_array("kpageflags", &read_zst(&dir.join("kpageflags.zst"))).unwrap();
        let (mut m, report) = load(
            &SnapshotFiles {
                pfn_start: meta(&dir, "pfn_start"),
                zoneinfo: &zones,
                kpageflags: &flags,
                ..Default::default()
            },
            VmConfig::default(),
        )
        .expect("the snapshot loads");
        kcompact::verify::verify(&m).unwrap_or_else(|e| panic!("{case}: {e}"));
        // Pageblock types: inferred from the pages, against pagetypeinfo's block counts.
        let pti = std::fs::read_to_string(dir.join("pagetypeinfo")).unwrap();
        let normal_blocks = pti
            .lines()
            .skip_while(|l| !l.starts_with("Number of blocks type"))
            .find(|l| l.contains("Normal"))
            .expect("Normal block counts")
            .split_whitespace()
            .skip(4)
            .map(|w| w.parse::<u64>().unwrap())
            .collect::<Vec<_>>();
        let model_blocks = kcompact::views::procfs::pageblock_counts(
            &m,
            kcompact::views::procfs::node0_zone(&m, kcompact::layout::ZoneType::Normal),
        );
        eprintln!(
            "{case:14} Normal pageblocks unmovable/movable/reclaimable: model {}/{}/{}, pagetypeinfo {}/{}/{}",
            model_blocks[0], model_blocks[1], model_blocks[2], normal_blocks[0], normal_blocks[1], normal_blocks[2]
        );
        let (mk, kk) = (
            model_blocks[0] + model_blocks[2],
            normal_blocks[0] + normal_blocks[2],
        );
        assert!(
            mk.abs_diff(kk) * 5 <= kk,
            "{case}: non-movable pageblocks model {mk}, kernel {kk}"
        );
        assert_eq!(
            model_blocks.iter().sum::<u64>(),
            normal_blocks.iter().sum::<u64>(),
            "{case}: Normal's pageblocks (the initialised span)"
        );
        // Reconciled with pagetypeinfo (as the CLI loads snapshots): the block counts are
        // the kernel's exactly, and the UNMOVABLE/RECLAIMABLE free lists end up closer to
        // the kernel's on most cases (4094 -> 1152 free blocks apart on A2_g4); where the
        // counts force a worse fit (A_g4folio: 346 -> 479) it stays within half again.
        let pt = kcompact::snapshot::text::parse_pagetypeinfo("pagetypeinfo", &pti).unwrap();
        let rec = kcompact::snapshot::load::reconcile_pageblock_types(&mut m, &pt);
        kcompact::verify::verify(&m).unwrap_or_else(|e| panic!("{case} reconciled: {e}"));
        let normal = rec.iter().find(|r| r.zone.1 == "Normal").expect("Normal");
        assert_eq!(
            normal.reconciled.to_vec(),
            normal_blocks[..3].to_vec(),
            "{case}: reconciled block counts"
        );
        let (d0, d1) = normal.free_list_distance;
        eprintln!("{case:14} free-list distance to pagetypeinfo: inferred {d0}, reconciled {d1}");
        assert!(d1 * 2 <= d0 * 3, "{case}: free lists {d0} -> {d1}");
        let model_before: u64 = m
            .zones
            .iter()
            .map(|z| z.free_area[9].nr_free + 2 * z.free_area[10].nr_free)
            .sum();
        let real_before: u64 = parse_buddyinfo(
            "buddyinfo",
            &std::fs::read_to_string(dir.join("buddyinfo")).unwrap(),
        )
        .unwrap()
        .iter()
        .map(|b| o9(&b.nr_free))
        .sum();
        let o9_of = |p: PathBuf| -> u64 {
            parse_buddyinfo("buddyinfo", &std::fs::read_to_string(p).unwrap())
                .unwrap()
                .iter()
                .map(|b| o9(&b.nr_free))
                .sum()
        };
        // Right after compact_memory, and in the `after/` capture once the machine settled:
        // free page reporting takes freshly merged order-9 chunks off the free lists for a
        // while, so the first read undercounts (by 0-104 blocks on these cases).
        let real_immediate = o9_of(root.join(case).join("buddyinfo_post_immediate"));
        let real_after = o9_of(root.join(case).join("after/buddyinfo"));
        let work = kcompact::clock::Work::of(&m.vmstat);
        let ends = m.compact_memory();
        kcompact::verify::verify(&m).unwrap_or_else(|e| panic!("{case} after compaction: {e}"));
        // Each zone ends as the kernel's run did (its `mm_compaction_end` events): the same
        // status, and the migrate scanner stops within 1 % of the zone's span of where the
        // kernel's stopped. A_g4_r1 is the run that ended `contended`: an order-3 dirty ext4
        // folio with buffers found no order-3 destination, could not be split (its buffers
        // are dirty), and -ENOMEM ended the zone.
        let trace = kcompact::replay::parse::parse_trace(
            &String::from_utf8(read_zst(&root.join(case).join("trace.txt.zst"))).unwrap(),
        );
        let kernel_ends = trace.compaction_ends();
        assert_eq!(kernel_ends.len(), ends.len(), "{case}: zones compacted");
        for (k, e) in kernel_ends.iter().zip(&ends) {
            let (zs, ze, kmig, kstatus) = (k.zone_start, k.zone_end, k.migrate_pfn, &k.status);
            let z = m.zone(e.zone);
            assert_eq!(z.zone_start_pfn.0.max(1), zs, "{case}: zone order");
            assert_eq!(e.status.name(), kstatus, "{case} {}: status", z.name());
            assert!(
                e.migrate_pfn.0.abs_diff(kmig) * 100 <= ze - zs,
                "{case} {}: migrate scanner stopped at {:#x}, the kernel's at {kmig:#x}",
                z.name(),
                e.migrate_pfn.0
            );
            eprintln!(
                "{case:14} {:6} model {} migrate_pfn {:#x} free_pfn {:#x}; kernel {kstatus} migrate_pfn {kmig:#x}",
                z.name(),
                e.status.name(),
                e.migrate_pfn.0,
                e.free_pfn.0
            );
        }
        // Simulated time: the calibrated cost model prices the model's own work close to
        // the wall time the kernel's compact_memory took (scripts/calibrate-costs.py).
        let model_ms = m
            .config
            .costs
            .cost(&work, &kcompact::clock::Work::of(&m.vmstat)) as f64
            / 1e6;
        let log = std::fs::read_to_string(root.join(case).join("expA.log")).expect("expA.log");
        let kernel_ms: f64 = log
            .split("compact_memory_ms=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("compact_memory_ms in expA.log");
        eprintln!("{case:14} compact_memory simulated {model_ms:.0} ms, kernel {kernel_ms:.0} ms");
        assert!(
            (model_ms - kernel_ms).abs() <= 0.25 * kernel_ms,
            "{case}: simulated {model_ms:.0} ms vs kernel {kernel_ms:.0} ms"
        );
        let model_after: u64 = m
            .zones
            .iter()
            .map(|z| z.free_area[9].nr_free + 2 * z.free_area[10].nr_free)
            .sum();
        let mg = model_after as i64 - model_before as i64;
        let (kg, kg_immediate) = (
            real_after as i64 - real_before as i64,
            real_immediate as i64 - real_before as i64,
        );
        eprintln!(
            "{case:14} loaded {:?} unplaced {} unmovable blocks {}; order>=9 model {model_before} -> {model_after} (+{mg}), kernel {real_before} -> {real_immediate} right after (+{kg_immediate}), {real_after} settled (+{kg}); migrated model {} ",
            report.placed, report.unplaced, report.unmovable_blocks, m.vmstat[VmEvent::PgmigrateSuccess]
        );
        rows.push((case, model_before, real_before, mg, kg));
    }
    assert_eq!(rows.len(), 6, "all six A cases");
    for (case, mb, rb, mg, kg) in &rows {
        // The free blocks are placed exactly where the snapshot has them.
        assert!(
            mb.abs_diff(*rb) * 100 <= *rb,
            "{case}: order>=9 before {mb} vs {rb}"
        );
        let err = (*mg - *kg) as f64 / *kg as f64;
        eprintln!("{case:14} gain error {:+.1} %", err * 100.0);
        // The target: within 10 % of the kernel's gain on every case (the kernel's
        // own repeats vary by about 7 % at 4 GiB and 1.5 % at 8 GiB).
        assert!(
            err.abs() <= 0.10,
            "{case}: gain model +{mg} vs kernel +{kg}"
        );
    }
}

/// The C cases (../shared/data/README.md): 4 GiB fragmented, then a process faulted 1 GiB
/// of anonymous memory into the holes; in C_pin it is long-term pinned (io_uring
/// registered buffers), in C_none not; then `compact_memory` three times. `pin.pfns.zst`
/// lists the buffer's pfns. The kernel moved none of the pinned pages, yet scanned them
/// on every pass (compact_migrate_scanned ~3.2 M per pass with the pins, ~2.0 M without
/// on later passes), and moved 47,908 buffer pages in C_none.
#[test]
fn long_term_pinned_buffer_never_moves_like_c_pin() {
    use kcompact::snapshot::load::{load, SnapshotFiles};
    use kcompact::units::Pfn;
    use kcompact::VmConfig;
    let Some(root) = data_dir() else {
        eprintln!("skipped: ../shared/data/realkernel is not here");
        return;
    };
    // The kernel's figures (expC.log): compact_migrate_scanned per pass, pgmigrate_success
    // of pass 1, buffer pages whose pfn changed.
    let kernel: [(&str, bool, [u64; 3], u64, u64); 2] = [
        ("C_pin", true, [3_177_983, 3_184_639, 3_179_519], 142_729, 0),
        (
            "C_none",
            false,
            [1_949_183, 2_020_351, 2_020_863],
            147_110,
            47_908,
        ),
    ];
    for (case, pin, k_scanned, k_migrated, k_moved) in kernel {
        let dir = root.join(case);
        if !dir.join("pin.pfns.zst").is_file() {
            eprintln!("skipped {case}: no pin.pfns.zst");
            continue;
        }
        let before = dir.join("before");
        let zones = parse_zoneinfo(
            "zoneinfo",
            &std::fs::read_to_string(before.join("zoneinfo")).unwrap(),
        )
        .unwrap();
        let flags = u64_array("kpageflags", &read_zst(&before.join("kpageflags.zst"))).unwrap();
        let (mut m, _) = load(
            &SnapshotFiles {
                pfn_start: meta(&before, "pfn_start"),
                zoneinfo: &zones,
                kpageflags: &flags,
                ..Default::default()
            },
            VmConfig::default(),
        )
        .expect("loads");
        let text = String::from_utf8(read_zst(&dir.join("pin.pfns.zst"))).unwrap();
        let mut pfns: Vec<u64> = text
            .lines()
            .map(|l| u64::from_str_radix(l.trim(), 16).expect("hex pfn"))
            .collect();
        pfns.sort_unstable();
        assert_eq!(pfns.len(), 262_144, "{case}: 1 GiB of buffer pages");
        let mut ids: Vec<_> = pfns.iter().filter_map(|p| m.folio_of(Pfn(*p))).collect();
        ids.sort_unstable();
        ids.dedup();
        if pin {
            for id in &ids {
                m.pin_folio(*id, true);
            }
        }
        let mut passes = Vec::new();
        for _ in 0..3 {
            let (scanned, migrated) = (
                m.vmstat[VmEvent::CompactMigrateScanned],
                m.vmstat[VmEvent::PgmigrateSuccess],
            );
            m.compact_memory();
            passes.push((
                m.vmstat[VmEvent::CompactMigrateScanned] - scanned,
                m.vmstat[VmEvent::PgmigrateSuccess] - migrated,
            ));
        }
        kcompact::verify::verify(&m).unwrap_or_else(|e| panic!("{case}: {e}"));
        let moved = ids
            .iter()
            .filter(|id| pfns.binary_search(&m.owners.folio(**id).pfn.0).is_err())
            .count();
        eprintln!(
            "{case}: {} buffer folios found, {moved} moved; passes (migrate scanned, migrated): {passes:?}",
            ids.len()
        );
        assert!(
            ids.len() > 200_000,
            "{case}: the buffer's pages are loaded as anonymous folios"
        );
        if pin {
            assert_eq!(moved, 0, "{case}: a long-term-pinned page moved");
        } else {
            assert!(
                moved.abs_diff(k_moved as usize) * 10 <= k_moved as usize,
                "{case}: {moved} buffer pages moved, kernel {k_moved}"
            );
        }
        // Every pass scans what the kernel scanned (the pinned pages again and again).
        for (i, ((s, _), k)) in passes.iter().zip(k_scanned).enumerate() {
            assert!(
                s.abs_diff(k) * 100 <= k * 3,
                "{case} pass {}: compact_migrate_scanned {s}, kernel {k}",
                i + 1
            );
        }
        assert!(
            passes[0].1.abs_diff(k_migrated) * 100 <= k_migrated * 5,
            "{case} pass 1: pgmigrate_success {}, kernel {k_migrated}",
            passes[0].1
        );
    }
}

/// kpagecount is the map count: page cache the kernel had mapped (KPF_MMAP) is mapped in
/// the loaded model, so `drop_caches` leaves it as the kernel's would; the loaded LRU
/// lists follow KPF_ACTIVE.
#[test]
fn kpagecount_maps_page_cache_that_drop_caches_then_keeps() {
    use kcompact::snapshot::kpageflags::{has, kpf};
    use kcompact::snapshot::load::{load, SnapshotFiles};
    let Some(root) = data_dir() else {
        eprintln!("skipped: ../shared/data/realkernel is not here");
        return;
    };
    let dir = root.join("A2_g4_r1").join("before");
    let zones = parse_zoneinfo(
        "zoneinfo",
        &std::fs::read_to_string(dir.join("zoneinfo")).unwrap(),
    )
    .unwrap();
    let flags = u64_array("kpageflags", &read_zst(&dir.join("kpageflags.zst"))).unwrap();
    let counts = u64_array("kpagecount", &read_zst(&dir.join("kpagecount.zst"))).unwrap();
    let start = meta(&dir, "pfn_start");
    let (mut m, report) = load(
        &SnapshotFiles {
            pfn_start: start,
            zoneinfo: &zones,
            kpageflags: &flags,
            kpagecount: Some(&counts),
            ..Default::default()
        },
        kcompact::VmConfig::default(),
    )
    .expect("loads");
    kcompact::verify::verify(&m).unwrap_or_else(|e| panic!("{e}"));
    let mapped_file: Vec<u64> = (0..flags.len())
        .filter(|&i| {
            let w = flags[i];
            has(w, kpf::MMAP)
                && has(w, kpf::LRU)
                && !has(w, kpf::ANON)
                && !has(w, kpf::COMPOUND_TAIL)
        })
        .map(|i| start + i as u64)
        .collect();
    assert!(!mapped_file.is_empty());
    assert!(
        report.file_mappings >= mapped_file.len() as u64 * 9 / 10,
        "{report:?}"
    );
    let active = (0..flags.len())
        .filter(|&i| has(flags[i], kpf::ACTIVE) && has(flags[i], kpf::LRU))
        .count() as u64;
    let model_active: u64 = m.zones.iter().map(|z| z.nr_lru[1] + z.nr_lru[3]).sum();
    assert!(
        model_active.abs_diff(active) * 20 <= active.max(1),
        "active LRU pages: model {model_active}, kpageflags {active}"
    );
    let freed = m.drop_caches(1);
    kcompact::verify::verify(&m).unwrap_or_else(|e| panic!("{e}"));
    assert!(freed > 0);
    let still = mapped_file
        .iter()
        .filter(|p| m.folio_of(kcompact::units::Pfn(**p)).is_some())
        .count();
    assert!(
        still as u64 * 10 >= mapped_file.len() as u64 * 9,
        "mapped page cache stays: {still} of {}",
        mapped_file.len()
    );
}

/// H_g4_s1: the kernel's `echo 100000 > nr_hugepages` stopped at 9,828 pages in 43 ms after
/// 4 direct compaction stalls and one kcompactd wake-up that scanned nothing at all — Normal
/// was deferred for order 9 by earlier failures, which no /proc file shows. Loaded with
/// that deferral (what the counters imply), the model stops where the kernel stopped: the
/// pool grows from the blocks already free, every compaction attempt is deferred and
/// counted as a stall and a failure, and kswapd runs once.
#[test]
fn nr_hugepages_with_normal_deferred_stops_where_h_g4_did() {
    use kcompact::layout::ZoneType;
    use kcompact::units::NodeId;
    let Some(root) = data_dir() else {
        eprintln!("skipped: ../shared/data/realkernel is not here");
        return;
    };
    let case = root.join("H_g4_s1");
    let dir = case.join("before");
    if !dir.is_dir() {
        eprintln!("skipped: {} is not here", dir.display());
        return;
    }
    let (mut m, _) = load_full(&dir, false);
    let normal = m.zone_of(NodeId(0), ZoneType::Normal);
    for _ in 0..6 {
        m.defer_compaction(normal, 9);
    }
    let before = m.vmstat.clone();
    let got = m.set_nr_hugepages(100_000);
    let log = std::fs::read_to_string(case.join("exp.log")).unwrap();
    let kernel: u64 = log
        .split_whitespace()
        .find_map(|w| w.strip_prefix("nr_hugepages="))
        .expect("nr_hugepages= in exp.log")
        .parse()
        .unwrap();
    let d = |e: VmEvent| m.vmstat[e] - before[e];
    eprintln!(
        "H_g4_s1 deferred: pool model {got}, kernel {kernel}; {} ms; stalls {} scanned {} pageoutrun {}",
        m.clock.now_ns / 1_000_000,
        d(VmEvent::CompactStall),
        d(VmEvent::CompactMigrateScanned),
        d(VmEvent::Pageoutrun)
    );
    assert!(
        got.abs_diff(kernel) * 100 <= kernel * 2,
        "pool {got}, kernel {kernel}"
    );
    assert!(d(VmEvent::CompactStall) > 0);
    assert_eq!(d(VmEvent::CompactStall), d(VmEvent::CompactFail));
    assert_eq!(d(VmEvent::CompactMigrateScanned), 0);
    assert_eq!(d(VmEvent::CompactDaemonMigrateScanned), 0);
    assert!(d(VmEvent::Pageoutrun) <= 2);
}

/// D_g4_s1 (`echo 3 > drop_caches` on 4 GiB of fragmented page cache): with `slabinfo`,
/// each page-cache page with private data holds a buffer head, and the XArray nodes go
/// with the pages; dropping the cache empties most of their slabs, which the kernel's
/// `slabinfo` after the drop shows, and the free pages gained come within 2 % of the
/// kernel's.
#[test]
fn drop_caches_frees_the_page_caches_slab_like_d_g4() {
    use kcompact::snapshot::text::parse_slabinfo;
    let Some(root) = data_dir() else {
        eprintln!("skipped: ../shared/data/realkernel is not here");
        return;
    };
    let case = root.join("D_g4_s1");
    let dir = case.join("before");
    if !dir.is_dir() {
        eprintln!("skipped: {} is not here", dir.display());
        return;
    }
    let text = |d: &Path, n: &str| std::fs::read_to_string(d.join(n)).unwrap();
    let slab = parse_slabinfo("slabinfo", &text(&dir, "slabinfo")).unwrap();
    let slab_after = parse_slabinfo("slabinfo", &text(&case.join("after"), "slabinfo")).unwrap();
    let (mut m, report) = load_full(&dir, true);
    kcompact::verify::verify(&m).unwrap_or_else(|e| panic!("{e}"));
    let cs = report.cache_slab.clone().expect("slabinfo was given");
    eprintln!("D_g4_s1 {cs:?}");
    // Every buffer_head slab slabinfo counts is a loaded slab page, and every buffer
    // head but a handful belongs to a page-cache page with private data.
    assert_eq!(cs.bh_slabs.0, cs.bh_slabs.1);
    assert_eq!(cs.xa_slabs.0, cs.xa_slabs.1);
    assert!(cs.bh_attached.0 * 1000 >= cs.bh_attached.1 * 999, "{cs:?}");
    let pages_of = |s: &[kcompact::snapshot::text::SlabInfoRecord]| -> u64 {
        s.iter()
            .filter(|r| r.name == "buffer_head" || r.name == "radix_tree_node")
            .map(|r| r.num_slabs * r.pagesperslab)
            .sum()
    };
    let kernel_slab_freed = pages_of(&slab) - pages_of(&slab_after);
    let (slab0, free0) = (m.cache_slab_pages(), free_pages_all(&m));
    m.drop_caches(3);
    kcompact::verify::verify(&m).unwrap_or_else(|e| panic!("{e}"));
    let model_slab_freed = slab0 - m.cache_slab_pages();
    let model_gain = free_pages_all(&m) - free0;
    let log = text(&case, "exp.log");
    let kernel_free = |which: &str| -> u64 {
        log.lines()
            .find(|l| l.starts_with(which))
            .and_then(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("free_pages_all="))
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{which} free_pages_all= in exp.log"))
    };
    let kernel_gain = kernel_free("buddyinfo_post_immediate") - kernel_free("buddyinfo_pre");
    eprintln!(
        "D_g4_s1 drop_caches: slab pages freed model {model_slab_freed}, kernel {kernel_slab_freed}; free pages gained model {model_gain}, kernel {kernel_gain}"
    );
    assert!(
        model_slab_freed.abs_diff(kernel_slab_freed) * 20 <= kernel_slab_freed,
        "slab pages freed: model {model_slab_freed}, kernel {kernel_slab_freed}"
    );
    assert!(
        model_gain.abs_diff(kernel_gain) * 50 <= kernel_gain,
        "free pages gained: model {model_gain}, kernel {kernel_gain}"
    );
}

/// Free pages on the buddy lists of every zone (what buddyinfo adds up to).
fn free_pages_all(m: &kcompact::Machine) -> u64 {
    m.zones
        .iter()
        .map(|z| {
            z.free_area
                .iter()
                .enumerate()
                .map(|(o, a)| a.nr_free << o)
                .sum::<u64>()
        })
        .sum()
}

/// Loads the snapshot in `dir` with every file `predict` reads (`slabinfo` if asked).
fn load_full(
    dir: &Path,
    with_slabinfo: bool,
) -> (kcompact::Machine, kcompact::snapshot::load::LoadReport) {
    use kcompact::snapshot::load::{load, SnapshotFiles};
    use kcompact::snapshot::text::{parse_pagetypeinfo, parse_slabinfo};
    let text = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    let zones = parse_zoneinfo("zoneinfo", &text("zoneinfo")).unwrap();
    let post = parse_zoneinfo("zoneinfo.post", &text("zoneinfo.post")).unwrap();
    let pti = parse_pagetypeinfo("pagetypeinfo", &text("pagetypeinfo")).unwrap();
    let slab = parse_slabinfo("slabinfo", &text("slabinfo")).unwrap();
    let flags = u64_array("kpageflags", &read_zst(&dir.join("kpageflags.zst"))).unwrap();
    let counts = u64_array("kpagecount", &read_zst(&dir.join("kpagecount.zst"))).unwrap();
    let cap: Vec<u64> = text("capture_pfns.txt")
        .lines()
        .filter_map(|l| u64::from_str_radix(l.trim(), 16).ok())
        .collect();
    load(
        &SnapshotFiles {
            pfn_start: meta(dir, "pfn_start"),
            zoneinfo: &zones,
            kpageflags: &flags,
            kpagecount: Some(&counts),
            pagetypeinfo: Some(&pti),
            capture_pfns: Some(&cap),
            zoneinfo_post: Some(&post),
            slabinfo: with_slabinfo.then_some(&slab[..]),
            fs_state: None,
            ..Default::default()
        },
        kcompact::VmConfig::default(),
    )
    .expect("loads")
}
