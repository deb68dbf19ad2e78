//! `explain` on the real `page allocation failure` reports of `../shared/data/dmesg`
//! (sources in its README): the facts each report prints (order, gfp mask and names, every
//! zone's watermarks, lowmem reserves and free lists), the kernel and rules, each zone's
//! outcome with its numbers, the verdict and the changes that would have made the request
//! succeed. Skipped with a printed reason where the data is not present.

use kcompact::explain::kernel::{KernelVersion, Rules};
use kcompact::explain::render::render_text;
use kcompact::explain::{explain, parse_report, Explanation, Tri, VerdictKind, ZoneKind};
use std::path::PathBuf;

fn dump(name: &str) -> Option<Vec<u8>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/dmesg")
        .join(name);
    match std::fs::read(&p) {
        Ok(b) => Some(b),
        Err(_) => {
            eprintln!("skipped: {} is not here", p.display());
            None
        }
    }
}

fn explained(name: &str) -> Option<Explanation> {
    let b = dump(name)?;
    let r = parse_report(&b).unwrap_or_else(|e| panic!("{name}: {e}"));
    let e = explain(r);
    // The text renders without losing the verdict.
    assert!(render_text(&e).contains(&e.verdict), "{name}");
    Some(e)
}

/// (node, name, free, min, low, high, lowmem_reserve) as printed.
type ZoneFacts<'a> = (u32, &'a str, u64, u64, u64, u64, &'a [u64]);

fn assert_zones(e: &Explanation, want: &[ZoneFacts]) {
    let got: Vec<ZoneFacts> = e
        .report
        .zones
        .iter()
        .map(|z| {
            (
                z.node,
                z.name.as_str(),
                z.free_kb,
                z.min_kb,
                z.low_kb,
                z.high_kb,
                z.lowmem_reserve.as_slice(),
            )
        })
        .collect();
    assert_eq!(got, want);
}

fn outcomes(e: &Explanation) -> Vec<&'static str> {
    e.zones.iter().map(|z| z.outcome.keyword()).collect()
}

fn remedy<'a>(e: &'a Explanation, change: &str) -> Option<&'a kcompact::explain::Remedy> {
    e.would_succeed_with.iter().find(|m| m.change == change)
}

#[test]
fn radeon_3_13_order4_fails_the_pre_4_4_per_order_check() {
    let Some(e) = explained("03-linux-mm-radeon-3.13.txt") else {
        return;
    };
    let r = &e.report;
    assert_eq!((r.order, r.mode_text.as_str()), (4, "0x10c0d0"));
    assert_eq!(r.comm.as_deref(), Some("java"));
    assert_eq!(r.release.as_deref(), Some("3.13.0-29-generic"));
    assert_eq!(e.version, Some(KernelVersion(3, 13, 0)));
    assert_eq!(e.rules, Rules::Pre44);
    // Only hex is printed: decoded with the 3.13 bit table (__GFP_WAIT at 0x10, __GFP_KMEMCG
    // at 0x100000).
    let g = e.gfp.as_ref().expect("decoded");
    assert_eq!(
        g.names,
        ["GFP_KERNEL", "__GFP_COMP", "__GFP_ZERO", "__GFP_KMEMCG"]
    );
    // The mail client wrapped the Hardware name line.
    assert!(r.lines_joined >= 1);
    assert_zones(
        &e,
        &[
            (0, "DMA", 15900, 264, 328, 396, &[0, 3217, 3912, 3912]),
            (0, "DMA32", 121552, 55360, 69200, 83040, &[0, 0, 694, 694]),
            (0, "Normal", 25312, 11952, 14940, 17928, &[0, 0, 0, 0]),
        ],
    );
    let normal = &r.zones[2];
    assert_eq!(
        normal.free_by_order,
        [652, 1455, 377, 163, 14, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(normal.types_by_order[0], "UEMR");
    assert_eq!(normal.types_by_order[4], "UM");
    assert_eq!(normal.total_kb, 26392);
    assert_eq!(e.request.highest_zone, Some(ZoneKind::Normal));
    assert_eq!(e.request.can_reclaim, Tri::Yes);
    assert_eq!(e.request.can_compact, Tri::Yes);
    assert_eq!(
        outcomes(&e),
        [
            "below_lowmem_reserve",
            "too_few_high_order_pages",
            "too_few_high_order_pages"
        ]
    );
    // Normal: 6328 free - 15 = 6313 > 2988; without the 6374 pages in blocks below order 4,
    // -61 left against 2988 >> 4 = 186.
    let c = e.zones[2].check.as_ref().unwrap();
    assert_eq!(
        (c.free_pages, c.usable_free, c.effective_mark),
        (6328, 6313, 2988)
    );
    assert_eq!(c.old_step, Some((4, -61, 186)));
    assert_eq!(c.lowmem_idx, Some(2));
    // DMA: 3960 usable pages, not above 66 + lowmem_reserve[Normal] 3912.
    let d = e.zones[0].check.as_ref().unwrap();
    assert_eq!(
        (d.usable_free, d.effective_mark, d.lowmem_reserve),
        (3960, 66, 3912)
    );
    assert_eq!(e.verdict_kind, VerdictKind::Fragmented);
    assert!(
        e.verdict.contains("Node 0 Normal had 6313 free pages"),
        "{}",
        e.verdict
    );
    assert!(remedy(&e, "order <= 3").is_some_and(|m| m.sure));
    // Linux 4.4's one-block check would have passed: Normal has order-4 blocks (UM).
    assert!(remedy(&e, "Linux 4.4 or later").is_some_and(|m| m.sure));
    assert!(remedy(&e, "__GFP_REPEAT").is_some_and(|m| !m.sure));
    assert!(remedy(&e, "compaction").is_some());
}

#[test]
fn ingenic_5_10_order5_finds_only_cma_blocks() {
    let Some(e) = explained("05-linux-mips-ingenic-cma.txt") else {
        return;
    };
    let r = &e.report;
    assert_eq!((r.order, r.mode_text.as_str()), (5, "0x40cc0"));
    assert_eq!(r.gfp_names.as_deref(), Some("GFP_KERNEL|__GFP_COMP"));
    assert_eq!(e.version, Some(KernelVersion(5, 10, 0)));
    assert_eq!(e.rules, Rules::V44);
    assert!(r.lines_joined >= 10, "format=flowed wrapping undone");
    assert_zones(
        &e,
        &[
            (0, "Normal", 33244, 1956, 2444, 2932, &[0, 6144, 0]),
            (0, "HighMem", 236820, 512, 2116, 3720, &[0, 0, 0]),
        ],
    );
    let n = &r.zones[0];
    assert!(!n.node_printed);
    assert_eq!(n.free_cma_kb, Some(12300));
    assert_eq!(n.reserved_highatomic_kb, Some(0));
    assert_eq!(n.free_by_order, [2127, 1508, 472, 96, 12, 4, 1, 1, 0, 0, 0]);
    assert_eq!(
        n.types_by_order,
        ["UMEC", "UMEC", "UMEC", "UMC", "C", "C", "C", "C", "", "", ""]
    );
    assert_eq!(r.zones[1].free_by_order[8], 1);
    // MIPS32: Normal, HighMem, Movable; GFP_KERNEL stops at Normal.
    assert_eq!(e.request.highest_zone, Some(ZoneKind::Normal));
    assert_eq!(outcomes(&e), ["only_reserved_types", "not_usable"]);
    let c = e.zones[0].check.as_ref().unwrap();
    // 8311 free - 31 (order) - 3075 free CMA = 5205 > 489: the pages are there.
    assert_eq!(
        (
            c.free_pages,
            c.unusable_cma,
            c.usable_free,
            c.effective_mark
        ),
        (8311, 3075, 5205, 489)
    );
    assert_eq!(c.blocks_at_or_above, 6);
    assert_eq!(c.types_at_or_above, "C");
    assert_eq!(e.verdict_kind, VerdictKind::ReservedTypes);
    assert!(
        e.verdict.contains("only on CMA free lists"),
        "{}",
        e.verdict
    );
    assert!(remedy(&e, "order <= 3").is_some_and(|m| m.sure));
    assert!(remedy(&e, "a smaller CMA area").is_some());
    assert!(remedy(&e, "__GFP_RETRY_MAYFAIL").is_some());
}

#[test]
fn steamdeck_6_11_order7_dma32_is_fragmented_and_noio_cannot_compact() {
    let Some(e) = explained("08-linux-fsdevel-steamdeck-dma32.txt") else {
        return;
    };
    let r = &e.report;
    assert_eq!((r.order, r.mode_text.as_str()), (7, "0xc04"));
    assert_eq!(e.gfp.as_ref().unwrap().names, ["GFP_NOIO", "GFP_DMA32"]);
    assert_eq!(e.version, Some(KernelVersion(6, 11, 11)));
    assert_eq!(e.rules, Rules::V63);
    assert_eq!(r.mems_allowed.as_deref(), Some(&[0u32][..]));
    assert_zones(
        &e,
        &[
            (0, "DMA", 68, 68, 84, 100, &[0, 1808, 14772, 0, 0]),
            (0, "DMA32", 9796, 8264, 10328, 12392, &[0, 0, 12964, 0, 0]),
        ],
    );
    assert_eq!(r.zones[1].boost_kb, Some(0));
    assert_eq!(
        r.zones[1].free_by_order,
        [103, 52, 43, 58, 35, 23, 5, 0, 0, 0, 0]
    );
    assert_eq!(r.zones[1].total_kb, 9836);
    assert_eq!(e.request.highest_zone, Some(ZoneKind::Dma32));
    assert_eq!(e.request.can_reclaim, Tri::Yes);
    assert_eq!(e.request.can_compact, Tri::No, "GFP_NOIO has no __GFP_IO");
    assert_eq!(outcomes(&e), ["below_min", "no_free_block"]);
    let c = e.zones[1].check.as_ref().unwrap();
    // 2449 - 127 = 2322 > 2066 + lowmem_reserve[DMA32] 0, but nothing of order 7 or more.
    assert_eq!(
        (c.usable_free, c.effective_mark, c.lowmem_idx),
        (2322, 2066, Some(1))
    );
    assert_eq!(c.largest_free_order, Some(6));
    let v = c.compaction.as_ref().unwrap();
    // compaction_suitable(): low 2582 + 2 << 7 = 2838 > 2449 free pages.
    assert_eq!((v.has, v.needs_above, v.would_run), (2449, 2838, false));
    assert_eq!(e.verdict_kind, VerdictKind::Fragmented);
    assert!(
        e.verdict.contains("largest free block was 256 kB"),
        "{}",
        e.verdict
    );
    assert!(remedy(&e, "order <= 6").is_some_and(|m| m.sure));
    // A costly request that may not compact gains nothing from the flag.
    assert!(remedy(&e, "__GFP_RETRY_MAYFAIL").is_none());
    assert!(remedy(&e, "compaction").is_some_and(|m| m.why.contains("2838")));
}

#[test]
fn rocketraid_old_atomic_order9_has_no_block_and_no_version() {
    let Some(e) = explained("13-forum-rocketraid-insmod.txt") else {
        return;
    };
    let r = &e.report;
    assert_eq!((r.order, r.mode_text.as_str()), (9, "0x20"));
    assert_eq!(r.comm.as_deref(), Some("insmod"));
    assert_eq!(r.release, None);
    assert_eq!(e.version, None);
    // `Pid: N, comm:` (before 3.10), zone lines without managed: (before 3.8), a colon
    // after `failure` (2.6.39 on).
    assert_eq!(e.range.lo, KernelVersion(2, 6, 39));
    assert_eq!(e.range.hi, KernelVersion(3, 8, 0));
    assert_eq!(e.rules, Rules::Pre44);
    assert!(e
        .unknown
        .iter()
        .any(|u| u.starts_with("the kernel version")));
    assert_eq!(e.gfp.as_ref().unwrap().names, ["GFP_ATOMIC"]);
    assert_zones(
        &e,
        &[
            (0, "DMA", 15892, 12, 12, 16, &[0, 3243, 16121, 16121]),
            (0, "DMA32", 191196, 3264, 4080, 4896, &[0, 0, 12877, 12877]),
            (0, "Normal", 387512, 12972, 16212, 19456, &[0, 0, 0, 0]),
        ],
    );
    let n = &r.zones[2];
    assert!(!n.letters_printed);
    assert_eq!(
        n.free_by_order,
        [9796, 6523, 4151, 1168, 598, 207, 140, 170, 5, 0, 0]
    );
    assert_eq!(n.total_kb, 387928);
    assert_eq!(e.request.can_reclaim, Tri::No);
    assert_eq!(e.request.wakes_kswapd, Tri::Yes);
    assert_eq!(
        outcomes(&e),
        [
            "below_lowmem_reserve",
            "too_few_high_order_pages",
            "too_few_high_order_pages"
        ]
    );
    // GFP_ATOMIC: ALLOC_HIGH halves the mark, ALLOC_HARDER takes a quarter: 3243 -> 1217.
    let c = e.zones[2].check.as_ref().unwrap();
    assert_eq!((c.mark_pages, c.effective_mark), (3243, 1217));
    assert_eq!(c.blocks_at_or_above, 0);
    assert_eq!(c.old_step, Some((9, -615, 2)));
    // DMA has order-9 and order-10 blocks, held back by its reserve for Normal requests.
    assert_eq!(e.zones[0].check.as_ref().unwrap().blocks_at_or_above, 4);
    assert_eq!(e.verdict_kind, VerdictKind::Fragmented);
    assert!(e.verdict.contains("no free block of 2 MB"), "{}", e.verdict);
    assert!(e.verdict.contains("could not sleep"), "{}", e.verdict);
    assert!(remedy(&e, "order <= 8").is_some_and(|m| m.sure));
    assert!(remedy(&e, "__GFP_DIRECT_RECLAIM").is_some());
    assert!(remedy(&e, "more vm.min_free_kbytes").is_some_and(|m| !m.sure));
}
