//! A test per rule of the per-CPU page lists (mm/page_alloc.c, Linux 6.18): refill sizes,
//! the free path's limit and drains, `high` tuning and decay, the zone flags that shrink
//! the lists, the drains compaction and reclaim do (and the ones `compact_memory` does not),
//! and the lists' invisibility to NR_FREE_PAGES and the watermarks.

mod common;

use common::*;
use kcompact::buddy::pcp::{order_to_pindex, zone_batchsize};
use kcompact::gfp::Gfp;
use kcompact::layout::ZoneType;
use kcompact::memmap::MigrateType;
use kcompact::units::{NodeId, Order, Pfn, ZoneIdx};
use kcompact::{Machine, VmConfig};

/// A one-zone machine of 520 pageblocks (266,240 pages: batch 63) on `cpus` CPUs.
fn machine(cpus: u32) -> Machine {
    let cfg = VmConfig {
        cpus,
        watermark_boost_factor: 0,
        ..VmConfig::default()
    };
    small_machine(0, 520, cfg)
}

fn normal(m: &Machine) -> ZoneIdx {
    m.zone_of(NodeId(0), ZoneType::Normal)
}

fn pcp(m: &Machine, cpu: usize) -> &kcompact::mmzone::PerCpuPages {
    &m.zone(normal(m)).pageset[cpu]
}

fn alloc(m: &mut Machine, order: u8) -> Pfn {
    m.alloc_pages(Gfp::GFP_HIGHUSER_MOVABLE, Order(order), NodeId(0))
        .expect("memory")
}

#[test]
fn sizes_follow_zone_batchsize_and_the_low_watermark() {
    let m = machine(2);
    let z = m.zone(normal(&m));
    assert_eq!(zone_batchsize(z.managed_pages), 63);
    let low = z.low_wmark_pages();
    for cpu in 0..2 {
        let p = pcp(&m, cpu);
        assert_eq!(p.batch, 63);
        assert_eq!(p.high_min, (low / 2).max(4 * 63), "high_min: low / CPUs");
        assert_eq!(p.high_max, (z.managed_pages / 8 / 2).max(4 * 63));
        assert_eq!((p.count, p.high), (0, 0), "high stays 0 until first used");
    }
    // A fraction fixes high at managed / fraction per CPU.
    let cfg = VmConfig {
        percpu_pagelist_high_fraction: 8,
        ..VmConfig::default()
    };
    let m = small_machine(0, 520, cfg);
    let p = &m.zone(normal(&m)).pageset[0];
    assert_eq!(p.high_min, p.high_max);
    assert_eq!(p.high_min, m.zone(normal(&m)).managed_pages / 8 / 2);
}

#[test]
fn order_0_refills_double_while_no_free_intervenes() {
    let mut m = machine(1);
    let free0 = m.nr_free_pages();
    let mut taken = Vec::new();
    let mut refills = Vec::new();
    let mut before = m.nr_free_pages();
    for _ in 0..4100 {
        taken.push(alloc(&mut m, 0));
        let now = m.nr_free_pages();
        if now < before {
            refills.push(before - now);
        }
        before = now;
    }
    assert_eq!(refills[..6], [63, 126, 252, 504, 1008, 2016]);
    assert!(refills[6..].iter().all(|r| *r == 2016), "{refills:?}");
    check(&m);
    // A free halves alloc_factor: the next refill after a free is half the last.
    let f = pcp(&m, 0).alloc_factor;
    free_page(&mut m, taken.pop().unwrap());
    assert_eq!(pcp(&m, 0).alloc_factor, f >> 1);
    assert_eq!(
        free0 - m.nr_free_pages(),
        taken.len() as u64 + 1 + pcp(&m, 0).count - 1,
        "pages left the buddy lists for the task or the list"
    );
}

#[test]
fn high_order_refills_take_batch_shifted_by_the_order() {
    for (order, blocks) in [(1u8, 31u64), (2, 15), (3, 7), (9, 2)] {
        let mut m = machine(1);
        let before = m.nr_free_pages();
        alloc(&mut m, order);
        let taken = before - m.nr_free_pages();
        assert_eq!(
            taken,
            blocks << order,
            "order {order}: {blocks} blocks per refill"
        );
        assert_eq!(pcp(&m, 0).count, (blocks - 1) << order);
        check(&m);
    }
    // Orders 4..=8 and 10 never touch the lists.
    let mut m = machine(1);
    alloc(&mut m, 4);
    alloc(&mut m, 10);
    assert_eq!(m.nr_pcp_pages(), 0);
}

#[test]
fn a_refill_goes_to_the_list_of_the_request_and_alloc_takes_the_head() {
    let mut m = machine(1);
    let p = alloc(&mut m, 0);
    let head = pcp(&m, 0).lists[order_to_pindex(MigrateType::Movable, Order(0))]
        .first()
        .expect("the rest of the refill");
    // __rmqueue hands out ascending pfns from a split block; the list keeps that order.
    assert_eq!(head, p.plus(1));
    assert_eq!(alloc(&mut m, 0), head);
}

#[test]
fn frees_go_to_the_current_cpu_and_a_full_list_drains_a_batch_or_more() {
    let mut m = machine(2);
    let pages: Vec<Pfn> = (0..30_000).map(|_| alloc(&mut m, 0)).collect();
    m.drain_all_pages(None);
    let high_min = pcp(&m, 1).high_min;
    m.cpu = 1;
    let mut drained_at = None;
    for (i, p) in pages.iter().enumerate() {
        let before = m.nr_free_pages();
        free_page(&mut m, *p);
        if m.nr_free_pages() > before && drained_at.is_none() {
            drained_at = Some((i, m.nr_free_pages() - before));
        }
    }
    check(&m);
    assert_eq!(pcp(&m, 0).count, 0, "CPU 0 freed nothing");
    let (i, n) = drained_at.expect("the list overflowed");
    assert_eq!(
        i as u64 + 1,
        high_min,
        "the first drain comes at high ({i})"
    );
    // nr_pcp_free(): the pages freed in a row (free_count, at most batch << 5), at least a
    // batch, leaving a batch.
    assert_eq!(n, (63u64 << 5).min(high_min - 63), "drained {n}");
    assert!(
        pcp(&m, 1).count <= pcp(&m, 1).high,
        "the list is at or below its limit"
    );
    // nr_pcp_high() raises high only to hold free_count + batch, which high_min already
    // does here.
    assert_eq!(pcp(&m, 1).high, high_min);
}

#[test]
fn the_drain_takes_the_freed_list_first_oldest_first() {
    let mut m = machine(1);
    let a: Vec<Pfn> = (0..200).map(|_| alloc(&mut m, 0)).collect();
    let b = alloc(&mut m, 1);
    m.drain_all_pages(None);
    for p in &a {
        free_page(&mut m, *p);
    }
    m.free_pages(b, Order(1));
    let order0 = order_to_pindex(MigrateType::Movable, Order(0));
    let oldest = pcp(&m, 0).lists[order0].last().expect("pages");
    assert_eq!(oldest, a[0], "the first freed is the oldest, at the tail");
    // A whole drain starts at list 0 (order 0, unmovable), so the movable order-0 list
    // goes before the order-1 list.
    let zi = normal(&m);
    m.drain_pages_zone(0, zi);
    assert_eq!(m.nr_pcp_pages(), 0);
    check(&m);
}

#[test]
fn a_burst_of_high_order_frees_drains_at_once() {
    // free_high needs free_count >= batch + high_min / 2, and free_count stops near
    // batch << 5: a small low watermark (and so high_min) lets a burst reach it.
    let cfg = VmConfig {
        cpus: 1,
        thp_enabled: false,
        user_min_free_kbytes: Some(128),
        watermark_boost_factor: 0,
        ..VmConfig::default()
    };
    let mut m = small_machine(0, 520, cfg);
    assert!(63 + pcp(&m, 0).high_min / 2 < 63 << 5);
    let blocks: Vec<Pfn> = (0..3000).map(|_| alloc(&mut m, 2)).collect();
    m.drain_all_pages(None);
    let high_before = pcp(&m, 0).high;
    let mut drained = false;
    for b in blocks {
        let before = m.nr_free_pages();
        m.free_pages(b, Order(2));
        drained |= m.nr_free_pages() > before;
    }
    check(&m);
    assert!(drained, "free_high drained the burst");
    assert!(
        pcp(&m, 0).high <= high_before.max(pcp(&m, 0).high_min),
        "free_high lowers high"
    );
    assert!(pcp(&m, 0).count < 2016 + 63, "at most batch << 5 kept");
}

#[test]
fn below_high_watermark_frees_shrink_the_list_to_high_min() {
    let mut m = machine(1);
    let zi = normal(&m);
    let high = m.zone(zi).high_wmark_pages();
    let mut pages = Vec::new();
    while m.nr_free_pages() > high + 10 {
        pages.push(alloc(&mut m, 0));
    }
    // The next allocations find the zone below its high watermark.
    for _ in 0..4000 {
        pages.push(alloc(&mut m, 0));
    }
    assert!(
        m.zone(zi).below_high,
        "ZONE_BELOW_HIGH set by the allocation"
    );
    let high_min = pcp(&m, 0).high_min;
    for p in pages.drain(..2000) {
        free_page(&mut m, p);
        assert!(
            pcp(&m, 0).count <= high_min.max(63) + 1 || !m.zone(zi).below_high,
            "while below high, each free drains down to high_min"
        );
    }
    check(&m);
    // Once the drains bring the zone above its high watermark the flag clears.
    for p in pages {
        free_page(&mut m, p);
    }
    assert!(!m.zone(zi).below_high);
}

#[test]
fn reclaim_active_limits_the_list_to_four_batches() {
    let mut m = machine(1);
    let pages: Vec<Pfn> = (0..3000).map(|_| alloc(&mut m, 0)).collect();
    m.drain_all_pages(None);
    let zi = normal(&m);
    m.zones[zi.idx()].reclaim_active = true;
    for p in pages {
        free_page(&mut m, p);
        assert!(pcp(&m, 0).count <= 4 * 63, "{}", pcp(&m, 0).count);
    }
    check(&m);
}

#[test]
fn decay_lowers_high_by_an_eighth_and_drains_what_is_above_it() {
    let mut m = machine(1);
    let pages: Vec<Pfn> = (0..60_000).map(|_| alloc(&mut m, 0)).collect();
    m.drain_all_pages(None);
    for p in pages {
        free_page(&mut m, p);
    }
    let zi = normal(&m);
    let start = pcp(&m, 0).clone();
    assert!(
        start.count > start.high_min * 2,
        "a full list: {}",
        start.count
    );
    assert!(m.decay_pcp_high(zi, 0));
    let p = pcp(&m, 0);
    let want = start
        .count
        .saturating_sub(63 << 5)
        .max(start.high - start.high / 8)
        .max(start.high_min);
    assert_eq!(p.high, want);
    assert!(p.count <= p.high);
    assert!(
        start.count - p.count <= 63 << 5,
        "at most 2016 pages a tick"
    );
    let mut ticks = 1;
    while m.decay_pcp_high(zi, 0) {
        ticks += 1;
        assert!(ticks < 1000);
    }
    assert_eq!(pcp(&m, 0).high, pcp(&m, 0).high_min);
    assert!(pcp(&m, 0).count <= pcp(&m, 0).high_min);
    check(&m);
    // On the clock: a second per tick.
    let mut m2 = machine(1);
    let pages: Vec<Pfn> = (0..60_000).map(|_| alloc(&mut m2, 0)).collect();
    for p in pages {
        free_page(&mut m2, p);
    }
    let t0 = m2.clock.now_ns;
    m2.advance_to(t0 + ticks * 1_000_000_000 + 1_000_000_000);
    assert!(pcp(&m2, 0).count <= pcp(&m2, 0).high_min);
}

#[test]
fn pcp_pages_are_not_free_pages_to_the_watermarks() {
    let mut m = machine(1);
    let pages: Vec<Pfn> = (0..5000).map(|_| alloc(&mut m, 0)).collect();
    m.drain_all_pages(None);
    let free = m.nr_free_pages();
    for p in &pages[..1000] {
        free_page(&mut m, *p);
    }
    assert_eq!(
        m.nr_free_pages(),
        free,
        "NR_FREE_PAGES does not see the list"
    );
    assert_eq!(m.nr_pcp_pages(), 1000);
    let bi = kcompact::views::buddyinfo(&m);
    assert!(bi.contains("Normal"));
    m.drain_all_pages(None);
    assert_eq!(m.nr_free_pages(), free + 1000);
    assert_eq!(m.nr_pcp_pages(), 0);
    check(&m);
}

#[test]
fn isolated_blocks_bypass_the_lists_and_reserves_free_to_the_movable_list() {
    let mut m = machine(1);
    let p = alloc(&mut m, 0);
    let q = alloc(&mut m, 0);
    m.drain_all_pages(None);
    m.isolate_pageblock(p);
    free_page(&mut m, p);
    assert_eq!(
        m.nr_pcp_pages(),
        0,
        "a page of an isolated block skips the lists"
    );
    m.unisolate_pageblock(p);
    let r = alloc(&mut m, 0);
    m.drain_all_pages(None);
    m.pageblocks.set_migratetype(q, MigrateType::HighAtomic);
    free_page(&mut m, q);
    let movable = order_to_pindex(MigrateType::Movable, Order(0));
    assert_eq!(pcp(&m, 0).lists[movable].first(), Some(q));
    m.pageblocks.set_migratetype(q, MigrateType::Movable);
    free_page(&mut m, r);
    check(&m);
}

#[test]
fn compact_memory_does_not_drain_but_a_high_order_compaction_does() {
    let mut m = machine(1);
    let pid = m.new_process();
    let mut vpn = 0;
    while m.nr_free_pages() > 40_000 {
        m.fault_anon(pid, vpn, Order(0)).expect("memory");
        vpn += 1;
    }
    for v in (0..vpn).step_by(2) {
        m.munmap(pid, v, 1);
    }
    m.drain_all_pages(None);
    check(&m);
    let mut a = m.clone();
    a.compact_memory();
    check(&a);
    assert!(
        a.nr_pcp_pages() > 0,
        "migration frees its sources onto the list and compact_memory never drains"
    );
    // A direct order-9 compaction drains this CPU's list as its migrate scanner leaves
    // each block it migrated from.
    let mut b = m.clone();
    let gfp = Gfp::GFP_TRANSHUGE;
    let (ac, _) = b.prepare_alloc(gfp, NodeId(0));
    let (page, _) = b.alloc_pages_direct_compact(
        gfp,
        Order(9),
        kcompact::gfp::AllocFlags::WMARK_MIN,
        &ac,
        kcompact::compaction::CompactPriority::SyncLight,
    );
    check(&b);
    assert!(page.is_some(), "compaction made a huge page");
    assert!(
        b.nr_pcp_pages() < a.nr_pcp_pages(),
        "check_drain gave the migrated-from pages back ({} vs {})",
        b.nr_pcp_pages(),
        a.nr_pcp_pages()
    );
}

#[test]
fn pcp_off_keeps_no_lists() {
    let cfg = VmConfig {
        pcp: false,
        ..VmConfig::default()
    };
    let mut m = small_machine(0, 520, cfg);
    let p = alloc(&mut m, 0);
    free_page(&mut m, p);
    assert!(m.zone(normal(&m)).pageset.is_empty());
    assert_eq!(m.nr_pcp_pages(), 0);
    check(&m);
}
