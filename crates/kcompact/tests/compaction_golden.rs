//! Golden tests: small zones drawn as text (`kcompact::views::map` pictures, pageblocks of
//! 4 pages), compacted, and compared with the expected picture, the compaction trace in the
//! kernel's text format, the outcome and the counters. Each expected trace was checked by
//! hand against mm/compaction.c; the comments say why each step happens.

mod common;

use common::*;
use kcompact::compaction::{CompactControl, CompactPriority, CompactResult};
use kcompact::event::VmEvent;
use kcompact::gfp::{AllocFlags, Gfp};
use kcompact::layout::ZoneType;
use kcompact::migrate::MigrateMode;
use kcompact::units::NodeId;
use kcompact::views::map::zone_picture;

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn trace_without_finished(m: &mut kcompact::Machine) -> Vec<String> {
    m.trace
        .take()
        .unwrap()
        .iter()
        .map(|t| t.to_string())
        .filter(|l| !l.starts_with("mm_compaction_finished"))
        .collect()
}

/// `compact_memory` on one zone: SYNC, whole zone, skip hints ignored, order -1.
#[test]
fn golden_compact_memory_on_a_small_zone() {
    let pic = "\
M  TM.M
M  .M.U
M  M..M
M  .P..
M  ....
M  .M.F
";
    let mut m = from_picture(pic);
    let zi = m.zone_of(NodeId(0), ZoneType::Normal);
    assert_eq!(zone_picture(&m, zi), pic, "the picture round-trips");
    m.trace = Some(Vec::new());
    let mut cc = CompactControl::new(zi, None, Gfp::GFP_KERNEL, MigrateMode::Sync);
    cc.ignore_skip_hint = true;
    cc.whole_zone = true;
    assert_eq!(m.compact_zone(&mut cc), CompactResult::Complete);
    check(&m);
    // Block 0's two anonymous pages went to the top block's free pages; block 1's one to
    // block 3; block 2's two found no free page (the free scanner skips block 4, a whole free
    // pageblock, and the scanners met) and stayed. The pinned page never moved. The top
    // block, fully scanned, got its skip bit.
    assert_eq!(
        zone_picture(&m, zi),
        "\
M  T...
M  ...U
M  M..M
M  MP..
M  ....
M* MMMF
"
    );
    let expected = lines(
        "
        mm_compaction_begin: zone_start=0x1000 migrate_pfn=0x1000 free_pfn=0x1014 zone_end=0x1018, mode=sync
        mm_compaction_isolate_migratepages: range=(0x1000 ~ 0x1004) nr_scanned=4 nr_taken=2
        mm_compaction_isolate_freepages: range=(0x1014 ~ 0x1017) nr_scanned=3 nr_taken=2
        mm_compaction_migratepages: nr_migrated=2 nr_failed=0
        mm_compaction_isolate_migratepages: range=(0x1004 ~ 0x1008) nr_scanned=4 nr_taken=1
        mm_compaction_isolate_freepages: range=(0x1017 ~ 0x1018) nr_scanned=1 nr_taken=0
        mm_compaction_isolate_freepages: range=(0x100c ~ 0x100d) nr_scanned=1 nr_taken=1
        mm_compaction_migratepages: nr_migrated=1 nr_failed=0
        mm_compaction_isolate_migratepages: range=(0x1008 ~ 0x100c) nr_scanned=4 nr_taken=2
        mm_compaction_migratepages: nr_migrated=0 nr_failed=2
        mm_compaction_end: zone_start=0x1000 migrate_pfn=0x100c free_pfn=0x100d zone_end=0x1018, mode=sync status=complete
        ",
    );
    assert_eq!(trace_without_finished(&mut m), expected);
    let v = &m.vmstat;
    assert_eq!(
        (
            v[VmEvent::CompactMigrateScanned],
            v[VmEvent::CompactFreeScanned],
            v[VmEvent::CompactIsolated]
        ),
        (12, 5, 8)
    );
    // The second folio of the last batch was never tried after -ENOMEM: one failure counted.
    assert_eq!(
        (v[VmEvent::PgmigrateSuccess], v[VmEvent::PgmigrateFail]),
        (3, 1)
    );
}

/// Direct compaction, ASYNC, for an order-2 (one pageblock) movable request.
#[test]
fn golden_async_direct_compaction_for_order_2() {
    let pic = "\
M  TM.M
M  .M.U
M  M.M.
M  .P..
M  .M.M
M  .M.F
";
    let mut m = from_picture(pic);
    let zi = m.zone_of(NodeId(0), ZoneType::Normal);
    m.trace = Some(Vec::new());
    let zl = m.zonelist(NodeId(0), ZoneType::Movable, false);
    let r = m.try_to_compact_pages(
        Gfp::GFP_HIGHUSER_MOVABLE | Gfp::COMP,
        2,
        AllocFlags::WMARK_MIN,
        &zl,
        ZoneType::Movable,
        CompactPriority::Async,
    );
    check(&m);
    // Block 0: the page table fails isolation and async direct compaction skips the rest of
    // the order-2 block; block 1: the unmovable page spoils the block, what was isolated is
    // put back; block 2 is emptied into the top half (the fast search gives up, falls back
    // to the block at min_pfn, the linear scan strides 32 in ASYNC, the second fast search
    // finds the order-1 pair). The scanners meet: PARTIAL_SKIPPED, though block 2 is free.
    assert_eq!(r, CompactResult::PartialSkipped);
    assert_eq!(
        zone_picture(&m, zi),
        "\
M* TM.M
M* .M.U
M* ....
M  .PM.
M* MM.M
M  .M.F
"
    );
    let expected = lines(
        "
        mm_compaction_try_to_compact_pages: order=2 gfp_mask=GFP_HIGHUSER_MOVABLE|__GFP_COMP priority=2
        mm_compaction_suitable: node=0 zone=Normal   order=2 ret=continue
        mm_compaction_begin: zone_start=0x1000 migrate_pfn=0x1000 free_pfn=0x1014 zone_end=0x1018, mode=async
        mm_compaction_isolate_migratepages: range=(0x1000 ~ 0x1004) nr_scanned=1 nr_taken=0
        mm_compaction_isolate_migratepages: range=(0x1004 ~ 0x1008) nr_scanned=4 nr_taken=0
        mm_compaction_isolate_migratepages: range=(0x1008 ~ 0x100c) nr_scanned=4 nr_taken=2
        mm_compaction_fast_isolate_freepages: range=(0x1010 ~ 0x1014) nr_scanned=3 nr_taken=0
        mm_compaction_isolate_freepages: range=(0x1010 ~ 0x1014) nr_scanned=1 nr_taken=1
        mm_compaction_fast_isolate_freepages: range=(0x100c ~ 0x100c) nr_scanned=4 nr_taken=2
        mm_compaction_migratepages: nr_migrated=2 nr_failed=0
        mm_compaction_end: zone_start=0x1000 migrate_pfn=0x100c free_pfn=0x100c zone_end=0x1018, mode=async status=partial_skipped
        ",
    );
    assert_eq!(trace_without_finished(&mut m), expected);
    assert_eq!(
        m.zone(zi).free_area[2].nr_free,
        1,
        "block 2 is a free order-2 block"
    );
}

/// The property of `compact_memory` checked on random small zones (drawn as pictures):
///
/// 1. pinned anonymous pages, kernel pages and page tables never move;
/// 2. every unpinned anonymous or page-cache folio that sat below the start of the last
///    batch the migrate scanner isolated has moved: the scanner passed it, nothing but a pin
///    can keep such a folio from being isolated in SYNC mode, and only the last batch can
///    run out of free pages (-ENOMEM ends the zone once the scanners meet);
/// 3. the run ends COMPLETE, the state passes the full checker, and no page was freed or
///    allocated (free pages before = after).
#[test]
fn property_compact_memory_moves_everything_below_the_last_batch() {
    use kcompact::rng::SimRng;
    let (mut checked_moved, mut checked_fixed) = (0, 0);
    for seed in 0..300u64 {
        let mut rng = SimRng::new(seed);
        let blocks = rng.range(6, 24);
        let mut pic = String::new();
        for b in 0..blocks {
            let ty = if rng.chance(1, 6) { 'U' } else { 'M' };
            pic.push(ty);
            pic.push_str("  ");
            for i in 0..4 {
                let g = if b == 0 && i == 0 {
                    'T'
                } else {
                    ['.', '.', '.', 'M', 'M', 'M', 'P', 'U', 'F'][rng.below(9) as usize]
                };
                pic.push(g);
            }
            pic.push('\n');
        }
        let mut m = from_picture(&pic);
        let zi = m.zone_of(NodeId(0), ZoneType::Normal);
        let before: Vec<(
            kcompact::owners::table::FolioId,
            kcompact::owners::table::FolioRec,
            bool,
        )> = m
            .owners
            .iter()
            .map(|(id, r)| (id, r, m.mem.maybe_dma_pinned(r.pfn)))
            .collect();
        let free_before = m.nr_free_pages();
        m.trace = Some(Vec::new());
        let mut cc = CompactControl::new(zi, None, Gfp::GFP_KERNEL, MigrateMode::Sync);
        cc.ignore_skip_hint = true;
        cc.whole_zone = true;
        let r = m.compact_zone(&mut cc);
        check(&m);
        assert_eq!(r, CompactResult::Complete, "seed {seed}\n{pic}");
        assert_eq!(m.nr_free_pages(), free_before, "seed {seed}");
        let trace = m.take_trace_text();
        let last_batch_start = trace
            .iter()
            .filter_map(|l| l.strip_prefix("mm_compaction_isolate_migratepages: range=(0x"))
            .filter(|l| !l.ends_with("nr_taken=0"))
            .filter_map(|l| u64::from_str_radix(l.split(' ').next().unwrap(), 16).ok())
            .next_back()
            .unwrap_or(u64::MAX);
        for (id, rec, pinned) in before {
            let now = m.owners.folio(id).pfn;
            let movable = matches!(
                rec.kind,
                kcompact::owners::table::FolioKind::Anon | kcompact::owners::table::FolioKind::File
            );
            if !movable || pinned {
                checked_fixed += 1;
                assert_eq!(
                    now, rec.pfn,
                    "seed {seed}: {:?} at {:?} moved\n{pic}",
                    rec.kind, rec.pfn
                );
            } else if rec.pfn.0 < last_batch_start {
                checked_moved += 1;
                assert_ne!(now, rec.pfn, "seed {seed}: {:?} at {:?} below the last batch (0x{last_batch_start:x}) stayed\n{pic}\n{}", rec.kind, rec.pfn, zone_picture(&m, zi));
            }
        }
    }
    assert!(
        checked_moved > 1000 && checked_fixed > 1000,
        "the property was exercised: {checked_moved} moved, {checked_fixed} fixed"
    );
}
