//! One test per buddy-allocator rule of `mm/page_alloc.c`, each on a small machine built
//! for it, with the full-state checker after every step.

mod common;

use common::*;
use kcompact::event::VmEvent;
use kcompact::gfp::{AllocFlags, Gfp};
use kcompact::layout::ZoneType;
use kcompact::memmap::{MigrateType, PageFlags};
use kcompact::units::{NodeId, Order, Pfn};
use kcompact::{Machine, VmConfig};

/// These rules are the buddy allocator's own: allocations and frees go straight to its
/// lists (`pcp=off`); the per-CPU lists above them have their rules in `pcp_rules.rs`.
fn buddy_only() -> VmConfig {
    VmConfig {
        pcp: false,
        ..VmConfig::default()
    }
}

fn no_boost() -> VmConfig {
    VmConfig {
        watermark_boost_factor: 0,
        ..buddy_only()
    }
}

/// The first pfn of the Normal zone's pageblock `i` in `small_layout(0, n)`.
fn block(i: u64) -> Pfn {
    Pfn(0x1000 + i * 512)
}

/// Drains the machine with unmovable pages, types block `b` UNMOVABLE and frees `n` pages
/// at even offsets in it (none of them merge).
fn unmovable_block_with_scattered_free(m: &mut kcompact::Machine, b: u64, n: u64) {
    drain(m, Gfp::GFP_KERNEL);
    m.set_pageblock_migratetype(block(b), MigrateType::Unmovable);
    for i in 0..n {
        m.free_pages(block(b).plus(2 * i), Order(0));
    }
}

fn free_list_len(m: &kcompact::Machine, order: u8, mt: MigrateType) -> usize {
    let z = m.zone(m.zone_of(NodeId(0), ZoneType::Normal));
    z.free_area[order as usize].free_list[mt.idx()]
        .iter(&m.mem)
        .count()
}

/// Drains a one-zone machine, flags every page LRU (movable), and frees `free` pages at
/// even offsets of block 1, so none of them merge.
fn block_with_scattered_free(free: u64, lru: bool) -> kcompact::Machine {
    let mut m = small_machine(0, 8, no_boost());
    let pages = drain(&mut m, Gfp::GFP_HIGHUSER_MOVABLE);
    if lru {
        for p in &pages {
            m.mem.set_flag(*p, PageFlags::LRU);
        }
    }
    for i in 0..free {
        free_page(&mut m, block(1).plus(2 * i));
    }
    check(&m);
    m
}

#[test]
fn claim_threshold_unmovable_request_in_movable_block() {
    // free + alike >= 256 claims: with every allocated page movable, alike = 512 - free -
    // movable = 0, so the free count alone decides.
    for (free, claims) in [(255, false), (256, true)] {
        let mut m = block_with_scattered_free(free, true);
        let p = alloc_flags(&mut m, Gfp::GFP_KERNEL, Order(0), AllocFlags::NO_WATERMARKS)
            .expect("a page");
        assert_eq!(p.align_down(Order(9)), block(1));
        let want = if claims {
            MigrateType::Unmovable
        } else {
            MigrateType::Movable
        };
        assert_eq!(m.migratetype(block(1)), want, "free={free}");
        assert_eq!(m.vmstat[VmEvent::AllocExtfrag], 1);
        assert_eq!(
            m.vmstat[VmEvent::AllocExtfragChangeOwnership],
            claims as u64
        );
        if claims {
            assert_eq!(
                free_list_len(&m, 0, MigrateType::Unmovable) as u64,
                free - 1
            );
            assert_eq!(free_list_len(&m, 0, MigrateType::Movable), 0);
        } else {
            assert_eq!(free_list_len(&m, 0, MigrateType::Movable) as u64, free - 1);
        }
        check(&m);
    }
}

#[test]
fn claim_counts_unmovable_pages_as_alike_for_unmovable_requests() {
    // No page is LRU: the 512 - free - 0 allocated pages count as alike, so even a few free
    // pages claim the block.
    let mut m = block_with_scattered_free(3, false);
    alloc_flags(&mut m, Gfp::GFP_KERNEL, Order(0), AllocFlags::NO_WATERMARKS).expect("a page");
    assert_eq!(m.migratetype(block(1)), MigrateType::Unmovable);
    check(&m);
}

#[test]
fn claim_threshold_movable_request_in_unmovable_block() {
    // A movable request claims only from candidate orders >= 4, and counts LRU pages as
    // alike: one free order-4 chunk (16 pages) plus 240 LRU pages reach 256.
    for (lru_pages, claims) in [(239u64, false), (240, true)] {
        let mut m = small_machine(0, 8, no_boost());
        drain(&mut m, Gfp::GFP_KERNEL);
        m.set_pageblock_migratetype(block(2), MigrateType::Unmovable);
        for i in 0..lru_pages {
            m.mem.set_flag(block(2).plus(16 + i), PageFlags::LRU);
        }
        for i in 0..16 {
            m.free_pages(block(2).plus(i), Order(0));
        }
        assert_eq!(free_list_len(&m, 4, MigrateType::Unmovable), 1);
        check(&m);
        let p = alloc_flags(
            &mut m,
            Gfp::GFP_HIGHUSER_MOVABLE,
            Order(0),
            AllocFlags::NO_WATERMARKS,
        )
        .expect("a page");
        assert_eq!(p, block(2));
        let want = if claims {
            MigrateType::Movable
        } else {
            MigrateType::Unmovable
        };
        assert_eq!(m.migratetype(block(2)), want, "lru={lru_pages}");
        // Either way the remainder of the order-4 chunk is split: 1+2+4+8 pages on the lists of
        // the block's type now.
        for o in 0..4 {
            assert_eq!(free_list_len(&m, o, want), 1);
        }
        check(&m);
    }
}

#[test]
fn small_movable_requests_only_steal() {
    // Free order-0 pages in an unmovable block: should_try_claim_block() is false below
    // order 4 for MOVABLE, so the scan stops (NOCLAIM) and the page is stolen.
    let mut m = small_machine(0, 8, no_boost());
    drain(&mut m, Gfp::GFP_KERNEL);
    m.set_pageblock_migratetype(block(3), MigrateType::Unmovable);
    for i in 0..300 {
        m.mem.set_flag(block(3).plus(2 * i + 1), PageFlags::LRU);
    }
    for i in 0..200 {
        m.free_pages(block(3).plus(2 * i), Order(0));
    }
    alloc_flags(
        &mut m,
        Gfp::GFP_HIGHUSER_MOVABLE,
        Order(0),
        AllocFlags::NO_WATERMARKS,
    )
    .expect("a page");
    assert_eq!(m.migratetype(block(3)), MigrateType::Unmovable);
    assert_eq!(m.vmstat[VmEvent::AllocExtfragFragmenting], 1);
    assert_eq!(m.vmstat[VmEvent::AllocExtfragChangeOwnership], 0);
    check(&m);
}

#[test]
fn whole_free_pageblock_is_claimed_outright() {
    let mut m = small_machine(0, 8, no_boost());
    let pages = drain(&mut m, Gfp::GFP_HIGHUSER_MOVABLE);
    for p in pages.iter().filter(|p| p.align_down(Order(9)) == block(1)) {
        m.free_pages(*p, Order(0));
    }
    assert_eq!(free_list_len(&m, 9, MigrateType::Movable), 1);
    let p = alloc_flags(
        &mut m,
        Gfp::GFP_KERNEL_RECLAIMABLE,
        Order(2),
        AllocFlags::WMARK_MIN,
    )
    .expect("a page");
    assert_eq!(p, block(1));
    assert_eq!(m.migratetype(block(1)), MigrateType::Reclaimable);
    assert_eq!(m.vmstat[VmEvent::AllocExtfragFragmenting], 0);
    // expand() put the remainder on the RECLAIMABLE lists, orders 2..=8.
    for o in 2..9 {
        assert_eq!(
            free_list_len(&m, o, MigrateType::Reclaimable),
            1,
            "order {o}"
        );
    }
    check(&m);
}

#[test]
fn nofragment_refuses_partial_fallback_then_retries() {
    // Normal has only scattered free pages in an unmovable block; with ALLOC_NOFRAGMENT the
    // first pass may take whole pageblocks only and none is free, so the flag is dropped
    // and the second pass steals.
    let mut m = small_machine(0, 8, no_boost());
    unmovable_block_with_scattered_free(&mut m, 0, 10);
    let p = alloc_flags(
        &mut m,
        Gfp::GFP_HIGHUSER_MOVABLE,
        Order(0),
        AllocFlags::NO_WATERMARKS | AllocFlags::NOFRAGMENT,
    );
    assert!(p.is_some());
    assert_eq!(m.vmstat[VmEvent::AllocExtfragFragmenting], 1);
    // Under defrag_mode the flag is never dropped: the request fails instead.
    let mut m = small_machine(
        0,
        8,
        VmConfig {
            defrag_mode: true,
            ..no_boost()
        },
    );
    unmovable_block_with_scattered_free(&mut m, 0, 10);
    let p = alloc_flags(
        &mut m,
        Gfp::GFP_HIGHUSER_MOVABLE,
        Order(0),
        AllocFlags::NO_WATERMARKS | AllocFlags::NOFRAGMENT,
    );
    assert_eq!(p, None);
    check(&m);
}

#[test]
fn nofragment_is_set_for_normal_zone_requests_when_dma32_exists() {
    let m = small_machine(8, 8, no_boost());
    let normal = m.zone_of(NodeId(0), ZoneType::Normal);
    let dma32 = m.zone_of(NodeId(0), ZoneType::Dma32);
    assert!(m
        .alloc_flags_nofragment(Some(normal), Gfp::GFP_KERNEL)
        .has(AllocFlags::NOFRAGMENT));
    assert!(!m
        .alloc_flags_nofragment(Some(dma32), Gfp::GFP_KERNEL)
        .has(AllocFlags::NOFRAGMENT));
    assert!(m
        .alloc_flags_nofragment(Some(normal), Gfp::GFP_KERNEL)
        .has(AllocFlags::KSWAPD));
    let one_zone = small_machine(0, 8, no_boost());
    let n = one_zone.zone_of(NodeId(0), ZoneType::Normal);
    assert!(one_zone
        .alloc_flags_nofragment(Some(n), Gfp::GFP_KERNEL)
        .has(AllocFlags::NOFRAGMENT));
}

/// Frees the two pageblocks of an order-10 block, the first typed `a`, the second `b`, and
/// returns the resulting (order-9 count, order-10 count) of the zone.
fn free_pair(
    a: MigrateType,
    b: MigrateType,
    isolate_second: bool,
) -> (u64, u64, kcompact::Machine) {
    let mut m = small_machine(
        0,
        8,
        VmConfig {
            config_cma: true,
            ..no_boost()
        },
    );
    let pages = drain(&mut m, Gfp::GFP_HIGHUSER_MOVABLE);
    let z = m.zone_of(NodeId(0), ZoneType::Normal);
    for (blk, t) in [(block(0), a), (block(1), b)] {
        if t == MigrateType::HighAtomic {
            m.zones[z.idx()].nr_reserved_highatomic += 512;
        }
        m.set_pageblock_migratetype(blk, t);
    }
    if isolate_second {
        assert!(m.isolate_pageblock(block(1)));
    }
    for p in pages.iter().filter(|p| p.0 < block(2).0) {
        m.free_pages(*p, Order(0));
    }
    check(&m);
    let zone = m.zone(z);
    (zone.free_area[9].nr_free, zone.free_area[10].nr_free, m)
}

#[test]
fn merges_refused_across_isolate_highatomic_and_cma_at_pageblock_order() {
    use MigrateType::*;
    for other in [HighAtomic, Cma] {
        let (o9, o10, _) = free_pair(Movable, other, false);
        assert_eq!(
            (o9, o10),
            (2, 0),
            "MOVABLE + {} must not merge",
            other.name()
        );
    }
    let (o9, o10, m) = free_pair(Movable, Movable, true);
    assert_eq!((o9, o10), (2, 0), "MOVABLE + ISOLATE must not merge");
    // Isolated free pages are not counted as free.
    assert_eq!(
        m.zone(m.zone_of(NodeId(0), ZoneType::Normal)).nr_free_pages,
        512
    );
    // Two blocks of the same non-mergeable type do merge.
    let (o9, o10, _) = free_pair(HighAtomic, HighAtomic, false);
    assert_eq!((o9, o10), (0, 1));
}

#[test]
fn mergeable_types_merge_and_the_buddy_takes_the_freed_type() {
    use MigrateType::*;
    let (o9, o10, m) = free_pair(Unmovable, Reclaimable, false);
    assert_eq!((o9, o10), (0, 1));
    // The last page freed was in block 1 (RECLAIMABLE): block 0 was retyped to it.
    assert_eq!(m.migratetype(block(0)), Reclaimable);
    assert_eq!(m.migratetype(block(1)), Reclaimable);
    assert_eq!(free_list_len(&m, 10, Reclaimable), 1);
}

#[test]
fn unisolating_a_free_block_merges_it_again() {
    let (_, _, mut m) = free_pair(MigrateType::Movable, MigrateType::Movable, true);
    assert!(m.unisolate_pageblock(block(1)));
    let z = m.zone(m.zone_of(NodeId(0), ZoneType::Normal));
    assert_eq!((z.free_area[9].nr_free, z.free_area[10].nr_free), (0, 1));
    assert_eq!(z.nr_free_pages, 1024);
    check(&m);
}

#[test]
fn expand_puts_upper_halves_at_list_heads() {
    let mut m = small_machine(0, 8, no_boost());
    let p = alloc_flags(
        &mut m,
        Gfp::GFP_HIGHUSER_MOVABLE,
        Order(0),
        AllocFlags::NO_WATERMARKS,
    )
    .expect("a page");
    assert_eq!(p, block(0));
    let z = m.zone(m.zone_of(NodeId(0), ZoneType::Normal));
    for o in 0..10u8 {
        let head = z.free_area[o as usize].free_list[MigrateType::Movable.idx()].first();
        assert_eq!(head, Some(block(0).plus(1 << o)), "order {o}");
    }
    check(&m);
}

#[test]
fn freed_block_goes_to_the_tail_when_a_merge_is_likely() {
    // Allocate pages 0..4 of a block as order-0. Free page 3 (its buddy 2 is allocated):
    // the order-1 parent's buddy (0..1) is allocated, so page 3 goes to the head. Then free
    // 4..8 region's state decides: free page 1 with page 3 free — page 1's parent (0,1) has
    // buddy (2,3) which is not one free order-1 block, so head again.
    let mut m = small_machine(0, 8, no_boost());
    let pages = drain(&mut m, Gfp::GFP_HIGHUSER_MOVABLE);
    assert!(pages.contains(&block(0).plus(5)));
    // Free 4 and 5: they merge into an order-1 block at 4.
    m.free_pages(block(0).plus(4), Order(0));
    m.free_pages(block(0).plus(5), Order(0));
    // Now free 7: its buddy 6 is allocated, but its order-1 parent (6,7) has buddy (4,5),
    // which is a free order-1 block — merging is likely, so 7 goes to the tail.
    m.free_pages(block(0).plus(1000), Order(0));
    m.free_pages(block(0).plus(7), Order(0));
    let z = m.zone(m.zone_of(NodeId(0), ZoneType::Normal));
    let order0: Vec<Pfn> = z.free_area[0].free_list[MigrateType::Movable.idx()]
        .iter(&m.mem)
        .collect();
    assert_eq!(order0, [block(0).plus(1000), block(0).plus(7)]);
    check(&m);
}

#[test]
fn watermark_check_needs_free_pages_above_mark_and_a_usable_block() {
    use kcompact::buddy::watermark::zone_watermark_ok;
    let mut m = small_machine(0, 8, no_boost());
    let zi = m.zone_of(NodeId(0), ZoneType::Normal);
    let pages = drain(&mut m, Gfp::GFP_HIGHUSER_MOVABLE);
    // 100 scattered free pages: order 0 passes a mark of 99, not 100; order 1 never does.
    for p in pages.iter().take(200).step_by(2) {
        m.free_pages(*p, Order(0));
    }
    let z = m.zone(zi);
    assert_eq!(z.nr_free_pages, 100);
    assert!(zone_watermark_ok(
        z,
        Order(0),
        99,
        ZoneType::Normal,
        AllocFlags::WMARK_MIN,
        false
    ));
    assert!(!zone_watermark_ok(
        z,
        Order(0),
        100,
        ZoneType::Normal,
        AllocFlags::WMARK_MIN,
        false
    ));
    assert!(!zone_watermark_ok(
        z,
        Order(1),
        10,
        ZoneType::Normal,
        AllocFlags::WMARK_MIN,
        false
    ));
    // __GFP_HIGH (MIN_RESERVE) halves the mark; with NON_BLOCK a further quarter goes.
    assert!(zone_watermark_ok(
        z,
        Order(0),
        198,
        ZoneType::Normal,
        AllocFlags::MIN_RESERVE,
        false
    ));
    assert!(!zone_watermark_ok(
        z,
        Order(0),
        199,
        ZoneType::Normal,
        AllocFlags::MIN_RESERVE,
        false
    ));
    assert!(!zone_watermark_ok(
        z,
        Order(0),
        265,
        ZoneType::Normal,
        AllocFlags::MIN_RESERVE | AllocFlags::NON_BLOCK,
        false
    ));
    assert!(zone_watermark_ok(
        z,
        Order(0),
        264,
        ZoneType::Normal,
        AllocFlags::MIN_RESERVE | AllocFlags::NON_BLOCK,
        false
    ));
    // The lowmem reserve of the request's highest zone counts against it.
    let mut z2 = z.clone();
    z2.lowmem_reserve[ZoneType::Movable.idx()] = 50;
    assert!(!zone_watermark_ok(
        &z2,
        Order(0),
        60,
        ZoneType::Movable,
        AllocFlags::WMARK_MIN,
        false
    ));
    assert!(zone_watermark_ok(
        &z2,
        Order(0),
        60,
        ZoneType::Normal,
        AllocFlags::WMARK_MIN,
        false
    ));
}

#[test]
fn highatomic_reserve_and_unreserve() {
    // 128 pageblocks so 1% of the zone is at least one block.
    let mut m = small_machine(0, 128, no_boost());
    let zi = m.zone_of(NodeId(0), ZoneType::Normal);
    let ac = ctx(&m, Gfp::GFP_ATOMIC);
    let flags = m.alloc_flags_slowpath(Gfp::GFP_ATOMIC, Order(2), MigrateType::Unmovable);
    assert!(
        flags.has(AllocFlags::HIGHATOMIC)
            && flags.has(AllocFlags::NON_BLOCK)
            && flags.has(AllocFlags::MIN_RESERVE)
    );
    let p = m
        .get_page_from_freelist(Gfp::GFP_ATOMIC, Order(2), flags, &ac)
        .expect("atomic page");
    assert_eq!(m.migratetype(p), MigrateType::HighAtomic);
    assert_eq!(m.zone(zi).nr_reserved_highatomic, 512);
    assert_eq!(m.zone(zi).nr_free_highatomic, 508);
    check(&m);
    // The reserve is capped at ALIGN(managed/100, 512) = 1024 pages here: two blocks.
    let mut reserved = vec![p];
    for _ in 0..2000 {
        if let Some(q) = m.get_page_from_freelist(Gfp::GFP_ATOMIC, Order(9), flags, &ac) {
            reserved.push(q);
        }
    }
    assert_eq!(m.zone(zi).nr_reserved_highatomic, 1024);
    check(&m);
    // Free everything back; unreserve (not forced) keeps the last block, forced gives all.
    let q = reserved.remove(0);
    m.free_pages(q, Order(2));
    for q in reserved {
        m.free_pages(q, Order(9));
    }
    check(&m);
    // The two reserved blocks are buddies and merged into one free order-10 HIGHATOMIC
    // chunk: one unreserve gives max(pageblock, 1 << order) = 1024 pages back at once,
    // retyped to the requester's type.
    let zl = m.zonelist(NodeId(0), ZoneType::Normal, false);
    assert_eq!(
        m.zone(zi).free_area[10].free_list[MigrateType::HighAtomic.idx()]
            .iter(&m.mem)
            .count(),
        1
    );
    assert!(m.unreserve_highatomic_pageblock(&zl, ZoneType::Normal, MigrateType::Movable, false));
    assert_eq!(m.zone(zi).nr_reserved_highatomic, 0);
    assert_eq!(m.zone(zi).nr_free_highatomic, 0);
    assert_eq!(m.migratetype(block(0)), MigrateType::Movable);
    check(&m);
    // With a single reserved block, an unforced unreserve keeps it; a forced one does not.
    let p = m
        .get_page_from_freelist(Gfp::GFP_ATOMIC, Order(2), flags, &ac)
        .expect("atomic page");
    assert_eq!(m.zone(zi).nr_reserved_highatomic, 512);
    m.free_pages(p, Order(2));
    assert!(!m.unreserve_highatomic_pageblock(&zl, ZoneType::Normal, MigrateType::Movable, false));
    assert_eq!(m.zone(zi).nr_reserved_highatomic, 512);
    assert!(m.unreserve_highatomic_pageblock(&zl, ZoneType::Normal, MigrateType::Unmovable, true));
    assert_eq!(m.zone(zi).nr_reserved_highatomic, 0);
    check(&m);
}

#[test]
fn boost_rises_by_a_pageblock_per_fragmenting_fallback_up_to_its_cap() {
    let mut m = small_machine(0, 64, buddy_only());
    let zi = m.zone_of(NodeId(0), ZoneType::Normal);
    let high = m.zone(zi).watermark[2];
    let cap = (high * 15000 / 10000).max(512);
    for p in drain(&mut m, Gfp::GFP_HIGHUSER_MOVABLE) {
        m.mem.set_flag(p, PageFlags::LRU);
    }
    // Scattered free pages in many movable blocks of LRU pages: no block can be claimed, so
    // each unmovable order-0 request without ALLOC_KSWAPD boosts, then steals.
    for b in 0..40 {
        for i in 0..4 {
            free_page(&mut m, Pfn(0x1000 + b * 512 + 2 * i));
        }
    }
    let mut last = 0;
    for k in 1..=20u64 {
        alloc_flags(&mut m, Gfp::GFP_KERNEL, Order(0), AllocFlags::NO_WATERMARKS).expect("page");
        let boost = m.zone(zi).watermark_boost;
        assert!(boost >= last);
        last = boost;
        assert_eq!(boost, (k * 512).min(cap), "after {k} fallbacks");
    }
    assert!(!m.zone(zi).boosted_watermark, "no ALLOC_KSWAPD, no flag");
    check(&m);
}

#[test]
fn kswapd_wake_for_a_boost_takes_the_boost_back() {
    let mut m = small_machine(0, 64, buddy_only());
    let zi = m.zone_of(NodeId(0), ZoneType::Normal);
    drain(&mut m, Gfp::GFP_HIGHUSER_MOVABLE);
    for i in 0..4 {
        free_page(&mut m, Pfn(0x1000 + 2 * i));
    }
    alloc_flags(
        &mut m,
        Gfp::GFP_KERNEL,
        Order(0),
        AllocFlags::NO_WATERMARKS | AllocFlags::KSWAPD,
    )
    .expect("page");
    assert_eq!(m.vmstat[VmEvent::KswapdBoostWake], 1);
    assert_eq!(m.zone(zi).watermark_boost, 0);
    check(&m);
}

#[test]
fn cma_pages_serve_movable_requests_only() {
    let cfg = VmConfig {
        config_cma: true,
        cma_pages: 1024,
        ..no_boost()
    };
    let mut m = small_machine(0, 8, cfg);
    let zi = m.zone_of(NodeId(0), ZoneType::Normal);
    assert_eq!(m.zone(zi).cma_pages, 1024);
    assert_eq!(m.zone(zi).nr_free_cma, 1024);
    // Unmovable requests never get CMA pages: drain them all and check.
    let mut unmov = Vec::new();
    while let Some(p) = alloc_flags(&mut m, Gfp::GFP_KERNEL, Order(0), AllocFlags::NO_WATERMARKS) {
        unmov.push(p);
    }
    assert!(unmov.iter().all(|p| m.migratetype(*p) != MigrateType::Cma));
    assert_eq!(unmov.len() as u64, m.zone(zi).managed_pages - 1024);
    assert_eq!(m.zone(zi).nr_free_cma, 1024);
    // A movable request may use them.
    let p = alloc_flags(
        &mut m,
        Gfp::GFP_HIGHUSER_MOVABLE,
        Order(0),
        AllocFlags::NO_WATERMARKS | AllocFlags::CMA,
    );
    assert_eq!(p.map(|p| m.migratetype(p)), Some(MigrateType::Cma));
    check(&m);
}

#[test]
fn free_pages_clears_compound_metadata() {
    let mut m = small_machine(0, 8, no_boost());
    let p = m
        .alloc_pages(Gfp::GFP_HIGHUSER_MOVABLE | Gfp::COMP, Order(3), NodeId(0))
        .expect("page");
    assert!(m.mem.flags(p).contains(PageFlags::HEAD));
    assert_eq!(m.mem.compound_head(p.plus(7)), p);
    check(&m);
    m.free_pages(p, Order(3));
    assert_eq!(m.nr_free_pages(), m.managed_pages());
    check(&m);
}

/// Issue 2, found by the swarm: two adjacent isolated free pageblocks merge into one
/// ISOLATE chunk; un-isolating the first must not put the whole chunk back under its type
/// (merging it with a free neighbour) while the second is still isolated. Needs a chunk
/// above pageblock order and below MAX_PAGE_ORDER, so pageblocks of order 7 here.
#[test]
fn regression_issue2_unisolate_inside_a_larger_isolated_chunk() {
    let mut m = Machine::boot(&small_layout_pb(0, 8, Order(7)), no_boost()).expect("boot");
    let blk = |i: u64| Pfn(0x1000 + i * 128);
    let pages = drain(&mut m, Gfp::GFP_HIGHUSER_MOVABLE);
    assert!(m.isolate_pageblock(blk(0)));
    assert!(m.isolate_pageblock(blk(1)));
    for p in pages.iter().filter(|p| p.0 < blk(4).0) {
        free_page(&mut m, *p);
    }
    let z = m.zone_of(NodeId(0), ZoneType::Normal);
    let on = |m: &Machine, o: usize, mt: MigrateType| {
        m.zone(z).free_area[o].free_list[mt.idx()]
            .iter(&m.mem)
            .count()
    };
    assert_eq!(
        (
            on(&m, 8, MigrateType::Isolate),
            on(&m, 8, MigrateType::Movable)
        ),
        (1, 1)
    );
    check(&m);
    assert!(m.unisolate_pageblock(blk(0)));
    check(&m);
    assert_eq!(m.migratetype(blk(1)), MigrateType::Isolate);
    assert_eq!(
        m.zone(z).nr_free_pages,
        3 * 128,
        "the still-isolated block's pages are not free"
    );
    assert!(m.unisolate_pageblock(blk(1)));
    check(&m);
    assert_eq!(
        on(&m, 9, MigrateType::Movable),
        1,
        "all four blocks merge once none is isolated"
    );
}

/// Issue 2, found by the swarm: isolating a HIGHATOMIC pageblock keeps its type underneath
/// and its share of the reserve.
#[test]
fn regression_issue2_isolated_highatomic_block_keeps_its_reserve() {
    let mut m = small_machine(0, 128, no_boost());
    let zi = m.zone_of(NodeId(0), ZoneType::Normal);
    let ac = ctx(&m, Gfp::GFP_ATOMIC);
    let flags = m.alloc_flags_slowpath(Gfp::GFP_ATOMIC, Order(1), MigrateType::Unmovable);
    let p = m
        .get_page_from_freelist(Gfp::GFP_ATOMIC, Order(1), flags, &ac)
        .expect("page");
    assert_eq!(m.migratetype(p), MigrateType::HighAtomic);
    assert!(m.isolate_pageblock(p));
    assert_eq!(m.zone(zi).nr_reserved_highatomic, 512);
    assert_eq!(
        m.zone(zi).nr_free_highatomic,
        0,
        "isolated free pages leave every count"
    );
    check(&m);
    assert!(m.unisolate_pageblock(p));
    assert_eq!(m.migratetype(p), MigrateType::HighAtomic);
    assert_eq!(m.zone(zi).nr_free_highatomic, 510);
    check(&m);
}

#[test]
fn memalloc_requests_ignore_watermarks_in_the_slow_path() {
    let mut m = small_machine(0, 16, no_boost());
    let zi = m.zone_of(NodeId(0), ZoneType::Normal);
    let min = m.zone(zi).watermark[0];
    // Leave fewer free pages than the MIN watermark.
    while m.zone(zi).nr_free_pages > min / 2 {
        alloc_flags(&mut m, Gfp::GFP_KERNEL, Order(0), AllocFlags::NO_WATERMARKS).expect("page");
    }
    assert_eq!(m.alloc_pages(Gfp::GFP_KERNEL, Order(0), NodeId(0)), None);
    assert!(m
        .alloc_pages(Gfp::GFP_KERNEL | Gfp::MEMALLOC, Order(0), NodeId(0))
        .is_some());
    assert_eq!(
        m.alloc_pages(
            Gfp::GFP_KERNEL | Gfp::MEMALLOC | Gfp::NOMEMALLOC,
            Order(0),
            NodeId(0)
        ),
        None
    );
    check(&m);
}

#[test]
fn defrag_mode_lets_reclaimers_fall_back_only_after_reclaim_fails() {
    let mut m = small_machine(
        0,
        16,
        VmConfig {
            defrag_mode: true,
            ..no_boost()
        },
    );
    for p in drain(&mut m, Gfp::GFP_HIGHUSER_MOVABLE) {
        m.mem.set_flag(p, PageFlags::LRU);
    }
    // Plenty of free pages (above every watermark), all scattered in movable blocks.
    for b in 0..16 {
        for i in 0..200 {
            free_page(&mut m, Pfn(0x1000 + b * 512 + 2 * i));
        }
    }
    // A caller that cannot reclaim falls back at once.
    let p = m
        .alloc_pages(Gfp::GFP_ATOMIC, Order(0), NodeId(0))
        .expect("atomic may fall back");
    assert_eq!(m.migratetype(p), MigrateType::Movable);
    assert_eq!(m.vmstat[VmEvent::AllocExtfragFragmenting], 1);
    assert_eq!(m.vmstat[VmEvent::Allocstall], 0);
    // A caller that may reclaim falls back only after reclaim gave up: 16 loops without
    // progress, then one more past MAX_RECLAIM_RETRIES.
    let p = m
        .alloc_pages(Gfp::GFP_KERNEL, Order(0), NodeId(0))
        .expect("falls back once reclaim and compaction failed");
    assert_eq!(m.migratetype(p), MigrateType::Movable);
    assert_eq!(m.vmstat[VmEvent::AllocExtfragFragmenting], 2);
    assert_eq!(
        m.vmstat[VmEvent::Allocstall],
        17,
        "reclaim was tried first, every loop"
    );
    check(&m);
}

/// `Machine::shuffle_free_lists`: the same blocks on the same lists, in an order that
/// depends on the seed alone.
#[test]
fn shuffled_free_lists_keep_their_blocks_and_depend_on_the_seed_alone() {
    let mut m = small_machine(0, 8, no_boost());
    let pages = drain(&mut m, Gfp::GFP_HIGHUSER_MOVABLE);
    // Every second page free, in pfn order: 2,048 order-0 blocks on one list.
    for p in pages.iter().filter(|p| p.0 % 2 == 0) {
        m.free_pages(*p, Order(0));
    }
    let zi = m.zone_of(NodeId(0), ZoneType::Normal);
    let list = |m: &Machine| -> Vec<Pfn> {
        m.zone(zi).free_area[0].free_list[MigrateType::Movable.idx()]
            .iter(&m.mem)
            .collect()
    };
    let before = list(&m);
    assert!(before.len() > 1000, "{}", before.len());
    let shuffled = |seed: u64| {
        let mut c = m.clone();
        c.shuffle_free_lists(&mut kcompact::rng::SimRng::new(seed));
        check(&c);
        list(&c)
    };
    let (a, b, c) = (shuffled(1), shuffled(1), shuffled(2));
    assert_eq!(a, b, "same seed, same order");
    assert_ne!(a, c, "another seed, another order");
    assert_ne!(a, before, "shuffled");
    let mut sorted = a.clone();
    sorted.sort();
    let mut want = before.clone();
    want.sort();
    assert_eq!(sorted, want, "the same blocks");
}
