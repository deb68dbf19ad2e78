//! Reclaim, kswapd, the slow path's order of reclaim and compaction, huge page requests
//! and simulated time (issue 5), with the full-state checker after the steps.

mod common;

use common::*;
use kcompact::compaction::CompactResult;
use kcompact::event::VmEvent;
use kcompact::gfp::Gfp;
use kcompact::hugepage::vma_thp_gfp_mask;
use kcompact::layout::ZoneType;
use kcompact::memmap::{MigrateType, PageFlags};
use kcompact::sysctl::ThpDefrag;
use kcompact::units::{NodeId, Order};
use kcompact::workload::{fragment_with_files, FileHoles};
use kcompact::{Machine, VmConfig};

fn normal(m: &Machine) -> kcompact::units::ZoneIdx {
    m.zone_of(NodeId(0), ZoneType::Normal)
}

fn free(m: &Machine) -> u64 {
    m.zone(normal(m)).nr_free_pages
}

/// A Normal zone of `blocks` pageblocks filled to `fill_pct` with clean page cache of one
/// file, written in order.
fn with_page_cache(blocks: u64, fill_pct: u64, cfg: VmConfig) -> (Machine, u32) {
    let mut m = small_machine(0, blocks, cfg);
    m.enable_contents(false);
    let f = m.new_file(false, true, false);
    let target = m.managed_pages() * fill_pct / 100;
    for i in 0..target {
        m.file_add(f, i, Order(0), false)
            .expect("room for page cache");
    }
    check(&m);
    (m, f)
}

/// The seed-003 pattern: clean page cache interleaved over 16 files, every second file
/// deleted — free memory in order-0 holes between reclaimable, movable pages.
fn file_holes(blocks: u64, cfg: VmConfig) -> Machine {
    let mut m = small_machine(0, blocks, cfg);
    m.enable_contents(false);
    // Written down to just above the high watermark: kswapd is never woken.
    let z = m.zone(normal(&m));
    let pages = z.nr_free_pages - z.high_wmark_pages() - 16;
    let r = fragment_with_files(
        &mut m,
        &FileHoles {
            pages,
            ..FileHoles::default()
        },
    );
    assert_eq!(r.written, pages, "the pattern fits");
    assert!(!m.kswapd_runnable(NodeId(0)));
    take_blocks_from(&mut m, 5);
    m.vmstat = Default::default();
    m.clock.latency = Default::default();
    check(&m);
    m
}

/// What stayed free in blocks of `min_order` or more goes to the kernel, so only smaller
/// free blocks are left.
fn take_blocks_from(m: &mut Machine, min_order: u8) {
    for o in (min_order..=10u8).rev() {
        while m.zone(normal(m)).free_area[o as usize].nr_free > 0 {
            m.alloc_kernel(Order(o), 0)
                .expect("a free block of this order");
        }
    }
}

fn order9_free(m: &Machine) -> u64 {
    let z = m.zone(normal(m));
    z.free_area[9].nr_free + 2 * z.free_area[10].nr_free
}

#[test]
fn kswapd_wakes_at_low_and_stops_at_high() {
    // Free pages move one at a time here (pcp=off): a per-CPU refill would take a batch
    // past the watermark at once.
    let cfg = VmConfig {
        pcp: false,
        ..VmConfig::default()
    };
    let (mut m, f) = with_page_cache(64, 50, cfg);
    let zi = normal(&m);
    let (low, high) = (m.zone(zi).low_wmark_pages(), m.zone(zi).high_wmark_pages());
    let mut index = 1 << 20;
    // Down to just above the low watermark: kswapd sleeps.
    while free(&m) > low + 1 {
        m.file_add(f, index, Order(0), false).expect("above low");
        index += 1;
    }
    assert_eq!(
        m.vmstat[VmEvent::KswapdWake],
        0,
        "no wake-up above the low watermark"
    );
    assert!(!m.kswapd_runnable(NodeId(0)));
    // Below it: the next allocation misses the fast path and wakes kswapd.
    while free(&m) > low - 1 {
        m.file_add(f, index, Order(0), false).expect("above min");
        index += 1;
    }
    assert_eq!(m.vmstat[VmEvent::KswapdWake], 1);
    assert!(m.kswapd_runnable(NodeId(0)));
    assert_eq!(
        m.vmstat[VmEvent::Allocstall],
        0,
        "kswapd's job, not the task's"
    );
    let t = m.settle();
    check(&m);
    assert!(!m.kswapd_runnable(NodeId(0)), "kswapd went back to sleep");
    assert!(
        free(&m) >= high,
        "reclaimed to high: free {} high {high}",
        free(&m)
    );
    assert!(
        m.vmstat[VmEvent::PgstealKswapd] >= high - low,
        "{:?}",
        m.vmstat[VmEvent::PgstealKswapd]
    );
    assert!(
        free(&m) < high + 2 * kcompact::reclaim::SWAP_CLUSTER_MAX * 4,
        "kswapd stops soon after high: free {} high {high}",
        free(&m)
    );
    assert!(
        t > 0 && m.clock.cpu.kswapd_ns[0] > 0,
        "kswapd's work took time"
    );
}

#[test]
fn drop_caches_frees_clean_page_cache_only() {
    let mut m = small_machine(0, 16, VmConfig::default());
    m.enable_contents(false);
    let p = m.new_process();
    let f = m.new_file(false, true, true);
    let clean: Vec<_> = (0..64)
        .map(|i| m.file_add(f, i, Order(0), false).unwrap())
        .collect();
    let dirty: Vec<_> = (64..96)
        .map(|i| m.file_add(f, i, Order(0), true).unwrap())
        .collect();
    let mapped: Vec<_> = (96..112)
        .map(|i| {
            let id = m.file_add(f, i, Order(0), false).unwrap();
            m.file_mmap(p, 0x1000 + i, f, i).unwrap();
            id
        })
        .collect();
    // Mapped and mlocked.
    for i in 112..120 {
        m.file_add(f, i, Order(0), false).unwrap();
        m.file_mmap(p, 0x1000 + i, f, i).unwrap();
    }
    m.mlock(p, 0x1000 + 112, 8, true);
    let wb = m.file_add(f, 120, Order(0), true).unwrap();
    assert!(m.folio_start_writeback(wb));
    let anon: Vec<_> = (0..32)
        .map(|v| m.fault_anon(p, v, Order(0)).unwrap())
        .collect();
    let shmem = m.new_file(true, true, false);
    m.file_add(shmem, 0, Order(0), false).unwrap();
    check(&m);
    let freed = m.drop_caches(3);
    check(&m);
    assert_eq!(freed, 64, "exactly the clean, unmapped page cache");
    for (i, _) in clean.iter().enumerate() {
        assert!(
            m.file_lookup(f, i as u64).is_none(),
            "clean page {i} dropped"
        );
    }
    for i in 64..121 {
        assert!(m.file_lookup(f, i).is_some(), "page {i} stays");
    }
    assert!(
        m.file_lookup(shmem, 0).is_some(),
        "shmem is not page cache to drop"
    );
    for id in dirty.iter().chain(&mapped).chain(&anon) {
        assert!(m.owners.get(*id).is_some());
    }
    assert_eq!(
        (
            m.vmstat[VmEvent::DropPagecache],
            m.vmstat[VmEvent::DropSlab]
        ),
        (1, 1)
    );
}

#[test]
fn order9_request_compacts_before_it_reclaims() {
    let mut m = file_holes(64, VmConfig::default());
    assert_eq!(order9_free(&m), 0, "no free huge page to start with");
    m.trace = Some(Vec::new());
    let gfp = vma_thp_gfp_mask(ThpDefrag::Always, true);
    let p = m
        .alloc_pages(gfp, Order(9), NodeId(0))
        .expect("compaction makes one");
    check(&m);
    let trace = m.take_trace_text();
    assert!(
        trace[0].starts_with("mm_compaction_try_to_compact_pages"),
        "{}",
        trace[0]
    );
    assert!(
        trace[0].contains("priority=2"),
        "the first attempt is async: {}",
        trace[0]
    );
    // Async compaction's free scanner steps 32 pages at a time (stride), so it misses
    // holes at odd pfns — as the kernel does; one round of reclaim follows, then
    // SYNC_LIGHT compaction succeeds.
    let reclaim = trace
        .iter()
        .position(|l| l.starts_with("mm_vmscan_direct_reclaim_begin"))
        .expect("reclaim after the async attempt");
    let sync = trace
        .iter()
        .rposition(|l| l.contains("try_to_compact_pages") && l.contains("priority=1"))
        .expect("then sync-light compaction");
    assert!(
        0 < reclaim && reclaim < sync,
        "compaction, reclaim, compaction"
    );
    assert_eq!(
        (
            m.vmstat[VmEvent::CompactStall],
            m.vmstat[VmEvent::CompactSuccess]
        ),
        (2, 1)
    );
    assert_eq!(m.vmstat[VmEvent::Allocstall], 1);
    m.free_pages(p, Order(9));
    check(&m);
}

#[test]
fn order9_request_reclaims_when_compaction_lacks_free_pages() {
    // Nearly full of page cache: compaction is skipped (too few free pages) until direct
    // reclaim frees some; then it compacts.
    let (mut m, _) = with_page_cache(32, 100, VmConfig::default());
    let zi = normal(&m);
    assert!(free(&m) < m.zone(zi).low_wmark_pages());
    // A THP fault's mask reclaims one round (costly, no RETRY_MAYFAIL), but that round
    // goes on past SWAP_CLUSTER_MAX while compaction is not yet suitable
    // (should_continue_reclaim()), so the compaction after it forms the block.
    let before = m.vmstat.clone();
    let thp = vma_thp_gfp_mask(ThpDefrag::Always, true);
    let got = m.alloc_pages(thp, Order(9), NodeId(0));
    check(&m);
    assert_eq!(
        m.vmstat[VmEvent::Allocstall] - before[VmEvent::Allocstall],
        1
    );
    let stolen = m.vmstat[VmEvent::PgstealDirect] - before[VmEvent::PgstealDirect];
    assert!(stolen > 32, "one round reclaimed {stolen} pages");
    assert!(
        got.is_some(),
        "reclaim then compaction made an order-9 block"
    );
    // hugetlb's mask gets one too, reclaiming and compacting again.
    let before = m.vmstat.clone();
    let gfp = Gfp::GFP_HIGHUSER_MOVABLE | Gfp::COMP | Gfp::RETRY_MAYFAIL;
    let got = m.alloc_pages(gfp, Order(9), NodeId(0));
    check(&m);
    assert!(m.vmstat[VmEvent::PgstealDirect] > before[VmEvent::PgstealDirect]);
    assert!(
        got.is_some(),
        "reclaim then compaction made an order-9 block"
    );
}

/// Reclaim for a costly order goes on past its first pass until the order could be
/// allocated at the min watermark or compaction would be suitable
/// (`should_continue_reclaim()`), and stops then, within a batch per list; without
/// compaction (no reclaim/compaction mode) it stops after one pass.
#[test]
fn costly_reclaim_continues_until_compaction_is_suitable() {
    let mut one_pass = 0;
    for compaction in [false, true] {
        let (mut m, _) = with_page_cache(
            32,
            100,
            VmConfig {
                compaction,
                ..VmConfig::default()
            },
        );
        let zi = normal(&m);
        let reclaimed = m.try_to_free_pages(&[zi], 9, Gfp::GFP_HIGHUSER_MOVABLE, ZoneType::Normal);
        check(&m);
        let z = m.zone(zi);
        let goal = z.min_wmark_pages() + kcompact::compaction::compact_gap(9);
        let allocatable = z.free_area[9].nr_free + z.free_area[10].nr_free > 0
            && z.nr_free_pages > z.min_wmark_pages() + 511;
        if compaction {
            assert!(reclaimed > 2 * one_pass, "{reclaimed} against {one_pass}");
            assert!(
                allocatable || z.nr_free_pages >= goal,
                "{} < {goal}",
                z.nr_free_pages
            );
            assert!(
                z.nr_free_pages < goal + 4 * 32,
                "{} far past {goal}",
                z.nr_free_pages
            );
        } else {
            one_pass = reclaimed;
            assert!(one_pass > 0);
            assert!(!allocatable && z.nr_free_pages < goal);
        }
    }
}

#[test]
fn noretry_thp_gives_up_after_deferral() {
    let mut m = file_holes(64, VmConfig::default());
    let zi = normal(&m);
    // Earlier failures deferred compaction for order 9.
    for _ in 0..3 {
        m.defer_compaction(zi, 9);
    }
    let gfp = vma_thp_gfp_mask(ThpDefrag::Always, false);
    assert!(gfp.contains(Gfp::NORETRY) && gfp.contains(Gfp::DIRECT_RECLAIM));
    let before = m.vmstat.clone();
    assert_eq!(m.alloc_pages(gfp, Order(9), NodeId(0)), None);
    check(&m);
    // 6.18 returns uncounted only from a skipped attempt: a deferred one is a stall and
    // a failure, with nothing scanned.
    assert_eq!(
        m.vmstat[VmEvent::CompactStall] - before[VmEvent::CompactStall],
        1,
        "deferred: one stall"
    );
    assert_eq!(
        m.vmstat[VmEvent::CompactFail] - before[VmEvent::CompactFail],
        1,
        "and one failure"
    );
    assert_eq!(m.vmstat[VmEvent::Allocstall], 0, "and no reclaim");
    assert_eq!(
        m.vmstat[VmEvent::CompactMigrateScanned],
        before[VmEvent::CompactMigrateScanned]
    );
    // The same request from a madvised VMA (no __GFP_NORETRY) reclaims, but SYNC_LIGHT
    // compaction honours the deferral too, and a costly request without
    // __GFP_RETRY_MAYFAIL does not retry: it fails after one round.
    let gfp = vma_thp_gfp_mask(ThpDefrag::Always, true);
    assert_eq!(m.alloc_pages(gfp, Order(9), NodeId(0)), None);
    assert_eq!(
        m.vmstat[VmEvent::Allocstall],
        1,
        "one round of direct reclaim"
    );
    assert_eq!(
        m.vmstat[VmEvent::CompactStall] - before[VmEvent::CompactStall],
        3,
        "still deferred: two more stalls, before and after the reclaim"
    );
    assert_eq!(
        m.vmstat[VmEvent::CompactMigrateScanned],
        before[VmEvent::CompactMigrateScanned]
    );
    // Costly orders never escalate to SYNC_FULL (the only priority that ignores
    // deferral), so even __GFP_RETRY_MAYFAIL fails while deferred; every attempt counts
    // towards the end of the deferral (2^3 considered), after which compaction runs.
    let gfp = Gfp::GFP_HIGHUSER_MOVABLE | Gfp::COMP | Gfp::RETRY_MAYFAIL;
    let mut attempts = 0;
    while m.alloc_pages(gfp, Order(9), NodeId(0)).is_none() {
        attempts += 1;
        assert!(attempts < 8, "the deferral ends");
    }
    assert!(
        attempts >= 1,
        "the first __GFP_RETRY_MAYFAIL attempt was still deferred"
    );
    assert!(m.vmstat[VmEvent::CompactStall] > before[VmEvent::CompactStall]);
    check(&m);
}

#[test]
fn noretry_thp_fails_when_compaction_is_skipped() {
    let (mut m, _) = with_page_cache(32, 100, VmConfig::default());
    let before = m.vmstat.clone();
    let gfp = vma_thp_gfp_mask(ThpDefrag::Always, false);
    assert_eq!(m.alloc_pages(gfp, Order(9), NodeId(0)), None);
    assert_eq!(
        m.vmstat[VmEvent::Allocstall],
        before[VmEvent::Allocstall],
        "a costly NORETRY request does not reclaim"
    );
    assert_eq!(
        m.vmstat[VmEvent::CompactStall],
        before[VmEvent::CompactStall],
        "skipped compaction is no stall"
    );
    assert!(m.kswapd_runnable(NodeId(0)), "but kswapd was woken");
}

#[test]
fn compaction_result_order_matches_the_kernel() {
    assert!(CompactResult::Skipped < CompactResult::Deferred);
    assert!(CompactResult::Complete < CompactResult::Success);
}

#[test]
fn thp_gfp_masks_follow_the_defrag_setting() {
    let cases = [
        (ThpDefrag::Always, false, true, false, true),
        (ThpDefrag::Always, true, true, false, false),
        (ThpDefrag::Defer, false, false, true, false),
        (ThpDefrag::Defer, true, false, true, false),
        (ThpDefrag::DeferMadvise, false, false, true, false),
        (ThpDefrag::DeferMadvise, true, true, false, false),
        (ThpDefrag::Madvise, false, false, false, false),
        (ThpDefrag::Madvise, true, true, false, false),
        (ThpDefrag::Never, true, false, false, false),
    ];
    for (d, madv, direct, kswapd, noretry) in cases {
        let g = vma_thp_gfp_mask(d, madv);
        assert_eq!(
            (
                g.contains(Gfp::DIRECT_RECLAIM),
                g.contains(Gfp::KSWAPD_RECLAIM),
                g.contains(Gfp::NORETRY)
            ),
            (direct, kswapd, noretry),
            "{} madvised={madv}: {}",
            d.name(),
            g.symbolic()
        );
        assert!(g.contains(Gfp::COMP) && g.contains(Gfp::NOMEMALLOC) && g.contains(Gfp::MOVABLE));
        assert_eq!(ThpDefrag::parse(d.name()), Some(d));
    }
}

#[test]
fn thp_faults_under_each_defrag_setting() {
    for (defrag, madvised, want_thp, want_stall, want_kcompactd) in [
        (ThpDefrag::Never, true, false, false, false),
        (ThpDefrag::Madvise, false, false, false, false),
        (ThpDefrag::Defer, false, false, false, true),
        (ThpDefrag::Madvise, true, true, true, false),
        (ThpDefrag::Always, true, true, true, false),
    ] {
        let mut m = file_holes(
            64,
            VmConfig {
                thp_defrag: defrag,
                ..VmConfig::default()
            },
        );
        let p = m.new_process();
        let id = m
            .thp_fault(p, 0x200, madvised)
            .expect("a fault gets some page");
        check(&m);
        let order = m.owners.folio(id).order.0;
        let what = format!("{} madvised={madvised}", defrag.name());
        assert_eq!(order == 9, want_thp, "{what}: order {order}");
        assert_eq!(m.vmstat[VmEvent::ThpFaultAlloc], want_thp as u64, "{what}");
        assert_eq!(
            m.vmstat[VmEvent::ThpFaultFallback],
            !want_thp as u64,
            "{what}"
        );
        assert_eq!(m.vmstat[VmEvent::CompactStall] > 0, want_stall, "{what}");
        // defer: kswapd was woken for order 9; it reclaims and, going back to sleep,
        // wakes kcompactd for the order. (Others may wake kswapd for order 0 when a
        // fallback boosts the watermark.)
        let k = m.nodes[0].kswapd;
        assert_eq!(k.awake && k.order == 9, want_kcompactd, "{what}: {k:?}");
        if want_kcompactd {
            m.settle();
            check(&m);
            assert!(m.vmstat[VmEvent::PgstealKswapd] > 0, "{what}");
            // kswapd sleeps once the node is balanced for order 9; it wakes kcompactd
            // unless its reclaim already freed an order-9 block (then kcompactd is not
            // suitable: the allocation would succeed).
            assert!(
                m.vmstat[VmEvent::CompactDaemonWake] > 0 || order9_free(&m) > 0,
                "{what}: the daemons made an order-9 block or tried"
            );
        }
    }
}

#[test]
fn mthp_fault_falls_back_through_the_enabled_orders() {
    let mut m = small_machine(
        0,
        16,
        VmConfig {
            thp_orders: (1 << 9) | (1 << 4) | (1 << 2),
            ..VmConfig::default()
        },
    );
    // Memory in order-2 kernel blocks, every second one freed: order-2 holes only.
    let mut blocks = Vec::new();
    while let Some(id) = m.alloc_kernel_gfp(Gfp::GFP_KERNEL | Gfp::NORETRY, Order(2), 0) {
        blocks.push(id);
    }
    for id in blocks {
        if (m.owners.folio(id).pfn.0 >> 2).is_multiple_of(2) {
            m.free_kernel(id);
        }
    }
    take_blocks_from(&mut m, 3);
    check(&m);
    let p = m.new_process();
    let id = m
        .thp_fault(p, 0x400, false)
        .expect("a fault gets some page");
    check(&m);
    assert_eq!(
        m.owners.folio(id).order,
        Order(2),
        "order 9 and 4 failed, 2 fit"
    );
    assert_eq!(m.vmstat[VmEvent::ThpFaultFallback], 1);
}

#[test]
fn dirty_page_cache_is_written_back_before_it_is_freed() {
    let mut m = small_machine(0, 32, VmConfig::default());
    m.enable_contents(false);
    let f = m.new_file(false, true, false);
    let target = m.managed_pages();
    let mut i = 0;
    while i < target {
        if m.file_add(f, i, Order(0), true).is_err() {
            break;
        }
        i += 1;
    }
    check(&m);
    // Direct reclaim found only dirty pages: it started writeback and freed nothing yet.
    let wb_started = (0..i)
        .filter_map(|x| m.file_lookup(f, x))
        .filter(|(_, id)| {
            m.mem
                .flags(m.owners.folio(*id).pfn)
                .contains(PageFlags::WRITEBACK)
        })
        .count();
    assert!(
        wb_started > 0 || m.clock.writeback_in_flight() > 0,
        "writeback was started"
    );
    let stolen = m.vmstat[VmEvent::PgstealDirect] + m.vmstat[VmEvent::PgstealKswapd];
    // Time passes: the writes complete, kswapd frees the written pages.
    let t0 = m.clock.now_ns;
    m.settle();
    check(&m);
    assert!(m.clock.now_ns > t0, "writeback took time");
    let steal_after = m.vmstat[VmEvent::PgstealDirect] + m.vmstat[VmEvent::PgstealKswapd];
    assert!(
        m.vmstat[VmEvent::Pgrotated] > 0,
        "written folios rotated to the inactive tail"
    );
    assert!(steal_after > stolen || free(&m) >= m.zone(normal(&m)).high_wmark_pages());
}

#[test]
fn anonymous_memory_goes_to_swap_and_comes_back_intact() {
    let mut m = small_machine(
        0,
        16,
        VmConfig {
            swap_pages: 4 * 8192,
            ..VmConfig::default()
        },
    );
    m.enable_contents(false);
    let p = m.new_process();
    let n = m.managed_pages() * 3 / 2;
    for v in 0..n {
        m.fault_anon(p, v, Order(0)).expect("swap makes room");
    }
    m.settle();
    check(&m);
    assert!(m.vmstat[VmEvent::Pswpout] > 0, "pages were swapped out");
    assert!(m.reclaim.swap_used > 0);
    // Fault everything back in: data intact (the checker compares contents).
    for v in 0..n {
        m.fault_anon(p, v, Order(0)).ok();
        m.touch(p, v);
    }
    m.settle();
    check(&m);
    assert!(m.vmstat[VmEvent::Pswpin] > 0 && m.vmstat[VmEvent::Pgmajfault] > 0);
    m.exit_process(p);
    check(&m);
    assert_eq!(m.reclaim.swap_used, 0, "exit frees the swap entries");
}

#[test]
fn oom_kills_the_largest_process_when_nothing_can_be_reclaimed() {
    let mut m = small_machine(0, 16, VmConfig::default());
    let small = m.new_process();
    let big = m.new_process();
    for v in 0..64 {
        m.fault_anon(small, v, Order(0)).unwrap();
    }
    let mut v = 0;
    while m.owners.processes[big as usize].alive {
        let _ = m.fault_anon(big, v, Order(0));
        v += 1;
        assert!(v < 1 << 20);
    }
    check(&m);
    assert_eq!(m.vmstat[VmEvent::OomKill], 1);
    assert!(
        m.owners.processes[small as usize].alive,
        "the small one lives"
    );
}

#[test]
fn nr_hugepages_gets_fewer_than_asked_and_more_with_compaction() {
    let run = |compaction: bool| {
        let mut m = file_holes(
            128,
            VmConfig {
                compaction,
                ..VmConfig::default()
            },
        );
        let asked = m.managed_pages() / 512;
        let got = m.set_nr_hugepages(asked);
        check(&m);
        (asked, got, m.vmstat.clone())
    };
    let (asked, on, v_on) = run(true);
    let (_, off, v_off) = run(false);
    assert!(on < asked, "fewer than asked: {on} of {asked}");
    assert!(on > off, "compaction=on {on} > off {off}");
    assert!(
        v_on[VmEvent::CompactStall] > 0 && v_on[VmEvent::CompactSuccess] > 0,
        "{v_on:?}"
    );
    assert_eq!(v_off[VmEvent::CompactStall], 0);
    assert!(
        v_off[VmEvent::PgstealDirect] > 0,
        "without compaction only reclaim helps"
    );
    assert_eq!(v_on[VmEvent::HtlbBuddyAllocSuccess], on);
    assert!(
        v_on[VmEvent::HtlbBuddyAllocFail] >= 1,
        "it stops at the first failure"
    );
    println!(
        "nr_hugepages={asked}: compaction=on got {on} (stalls {}, successes {}, reclaimed {}), off got {off} (reclaimed {})",
        v_on[VmEvent::CompactStall], v_on[VmEvent::CompactSuccess], v_on[VmEvent::PgstealDirect] + v_on[VmEvent::PgstealKswapd], v_off[VmEvent::PgstealDirect] + v_off[VmEvent::PgstealKswapd]
    );
}

#[test]
fn slow_path_latency_and_cpu_time_are_accounted() {
    let mut m = file_holes(64, VmConfig::default());
    let gfp = vma_thp_gfp_mask(ThpDefrag::Always, true);
    m.alloc_pages(gfp, Order(9), NodeId(0))
        .expect("compaction makes one");
    let l = &m.clock.latency;
    assert_eq!((l.count[9], l.slow[9]), (1, 1));
    let c = m.config.costs;
    assert!(
        l.max_ns[9] > c.alloc_ns + 100 * c.migrate_page_ns,
        "{}",
        l.max_ns[9]
    );
    assert_eq!(l.max_ns[9], c.alloc_ns + m.clock.cpu.direct_compact_ns);
    assert!(m.clock.latency.max_ns[0] <= c.alloc_ns, "order-0 fast path");
}

#[test]
fn nowait_high_order_request_wakes_kswapd_then_kcompactd() {
    // Page cache and anonymous pages alternate pfn by pfn over the whole zone (placed):
    // reclaiming the page cache leaves order-0 holes between anonymous pages (no swap),
    // which only compaction can merge.
    let mut m = small_machine(0, 64, VmConfig::default());
    m.enable_contents(false);
    let (f, p) = (m.new_file(false, true, false), m.new_process());
    let zi = normal(&m);
    let pages = m.zone(zi).managed_pages / 2;
    for w in 0..pages.div_ceil(512) {
        m.ensure_pgtable(p, w * 512).unwrap();
    }
    let z = m.zone(zi);
    let (start, end) = (z.zone_start_pfn.0.next_multiple_of(512), z.end_pfn().0);
    for (i, pfn) in (start..end).step_by(2).enumerate() {
        let i = i as u64;
        // (The page tables took a few pfns: those pairs are skipped.)
        m.place_at = Some(kcompact::units::Pfn(pfn));
        if m.file_add(f, i, Order(0), false).is_ok() {
            m.place_at = Some(kcompact::units::Pfn(pfn + 1));
            let _ = m.fault_anon(p, i, Order(0));
        }
        m.place_at = None;
    }
    take_blocks_from(&mut m, 2);
    m.vmstat = Default::default();
    check(&m);
    assert_eq!(m.alloc_pages(Gfp::GFP_NOWAIT, Order(2), NodeId(0)), None);
    let k = m.nodes[0].kswapd;
    assert!(k.awake && k.order == 2, "{k:?}");
    m.settle();
    check(&m);
    // kswapd reclaimed compact_gap(2) pages, dropped to order 0, reclaimed on to the
    // high watermark and, going to sleep, woke kcompactd for order 2, which compacted.
    assert!(free(&m) >= m.zone(zi).high_wmark_pages());
    assert_eq!(m.vmstat[VmEvent::CompactDaemonWake], 1);
    assert!(m.vmstat[VmEvent::CompactDaemonMigrateScanned] > 0);
    assert!(
        m.clock.cpu.kcompactd_ns[0] > 0,
        "kcompactd's work took time"
    );
    assert!(m
        .alloc_pages(Gfp::GFP_NOWAIT, Order(2), NodeId(0))
        .is_some());
}

/// Swap on zram (seed 004): reclaim compresses anonymous pages into the zsmalloc pool,
/// synchronously; the data comes back intact; freeing the entries empties the pool. With
/// `non_lru_movable` the pool's pages are movable and compaction moves them; without, they
/// are unmovable and stay where they are.
#[test]
fn zram_swap_stores_pages_in_a_movable_pool() {
    let run = |non_lru_movable: bool| {
        let mut m = small_machine(
            0,
            16,
            VmConfig {
                swap_pages: 4 * 8192,
                zram: true,
                non_lru_movable,
                ..VmConfig::default()
            },
        );
        m.enable_contents(false);
        let drv = m.reclaim.zram.expect("a zram pool");
        let p = m.new_process();
        let n = m.managed_pages() * 3 / 2;
        for v in 0..n {
            m.fault_anon(p, v, Order(0)).expect("zram makes room");
        }
        m.settle();
        check(&m);
        let pool = m.owners.drivers[drv as usize].pages.clone();
        assert!(m.vmstat[VmEvent::Pswpout] > 0, "pages were swapped out");
        assert_eq!(
            m.vmstat[VmEvent::NrVmscanWrite],
            0,
            "zram never writes to a disk"
        );
        let stored: u64 = m.reclaim.zram_objs.values().map(|v| v.len() as u64).sum();
        assert!(
            stored > 0 && (pool.len() as u64) < stored / 2,
            "{} pool pages hold {stored} compressed pages",
            pool.len()
        );
        let in_movable = pool
            .iter()
            .filter(|id| m.migratetype(m.owners.folio(**id).pfn) == MigrateType::Movable)
            .count();
        if non_lru_movable {
            // Movable requests fall back to other blocks only when movable ones are empty.
            assert!(
                in_movable * 100 >= pool.len() * 95,
                "{in_movable} of {} movable pool pages in movable blocks",
                pool.len()
            );
        } else {
            assert!(
                in_movable * 2 < pool.len(),
                "{in_movable} of {} unmovable pool pages in movable blocks",
                pool.len()
            );
        }
        // Free a third of the process: holes that compaction fills with what it can move.
        for v in (0..n).step_by(3) {
            m.munmap(p, v, 1);
        }
        let pfns: Vec<_> = m.owners.drivers[drv as usize]
            .pages
            .iter()
            .map(|id| (*id, m.owners.folio(*id).pfn))
            .collect();
        m.compact_memory();
        check(&m);
        let moved = pfns
            .iter()
            .filter(|(id, pfn)| m.owners.get(*id).is_some_and(|r| r.pfn != *pfn))
            .count();
        // Fault everything back in: data intact (the checker compares contents).
        for v in 0..n {
            m.fault_anon(p, v, Order(0)).ok();
            m.touch(p, v);
        }
        m.settle();
        check(&m);
        assert!(m.vmstat[VmEvent::Pswpin] > 0);
        m.exit_process(p);
        check(&m);
        assert_eq!(m.reclaim.swap_used, 0, "exit frees the swap entries");
        assert!(m.reclaim.zram_objs.is_empty());
        assert!(
            m.owners.drivers[drv as usize].pages.is_empty(),
            "the pool is empty"
        );
        moved
    };
    let on = run(true);
    let off = run(false);
    assert!(on > 0, "compaction moved no pool page");
    assert_eq!(off, 0, "unmovable pool pages never move");
}

/// `kswapd_try_to_sleep()`: a balanced node's kswapd naps HZ/10 before it sleeps; a
/// wake-up during the nap runs it again at once (`kswapd_low_wmark_hit_quickly`), a node
/// that fell below its high watermark by the end of the nap runs it again too
/// (`kswapd_high_wmark_hit_quickly`), and a node still balanced sleeps until woken.
#[test]
fn kswapd_naps_before_it_sleeps_and_counts_quick_wakes() {
    let cfg = VmConfig {
        pcp: false,
        ..VmConfig::default()
    };
    let (mut m, f) = with_page_cache(64, 50, cfg);
    let zi = normal(&m);
    let node = NodeId(0);
    let (low, high) = (m.zone(zi).low_wmark_pages(), m.zone(zi).high_wmark_pages());
    let mut index = 1 << 20;
    let mut use_down_to = |m: &mut Machine, pages: u64| {
        while free(m) > pages {
            m.file_add(f, index, Order(0), false).expect("above min");
            index += 1;
        }
    };
    let run = |m: &mut Machine| {
        let mut passes = 0;
        while m.kswapd_step(node) {
            passes += 1;
            assert!(passes < 10_000, "kswapd's run ends");
        }
    };
    use_down_to(&mut m, low - 1);
    assert!(m.kswapd_runnable(node));
    run(&mut m);
    check(&m);
    let nap = m.nodes[0].kswapd.nap.expect("napping after a balanced run");
    assert!(!m.kswapd_runnable(node));
    assert_eq!(nap.until_ns, m.clock.now_ns + 100_000_000, "HZ/10");
    assert_eq!(m.kswapd_due(node, 0), Some(nap.until_ns));
    assert_eq!(m.vmstat[VmEvent::KswapdLowWmarkHitQuickly], 0);
    assert_eq!(m.vmstat[VmEvent::KswapdHighWmarkHitQuickly], 0);
    // Woken during the nap.
    use_down_to(&mut m, low - 1);
    assert!(m.kswapd_runnable(node));
    assert_eq!(m.vmstat[VmEvent::KswapdLowWmarkHitQuickly], 1);
    assert_eq!(m.nodes[0].kswapd.nap, None);
    run(&mut m);
    assert!(m.nodes[0].kswapd.nap.is_some());
    // Below high but above low when the nap ends: no wake-up, but kswapd runs again.
    use_down_to(&mut m, (low + high) / 2);
    assert!(!m.kswapd_runnable(node), "above low: nobody woke it");
    assert!(
        m.kswapd_step(node),
        "the end of the nap finds the node unbalanced"
    );
    assert_eq!(m.vmstat[VmEvent::KswapdHighWmarkHitQuickly], 1);
    run(&mut m);
    check(&m);
    // Balanced when this nap ends: it sleeps until woken.
    let wakes = m.vmstat[VmEvent::KswapdWake];
    m.settle();
    assert_eq!(m.nodes[0].kswapd.nap, None);
    assert!(!m.kswapd_runnable(node));
    assert_eq!(m.kswapd_due(node, 0), None, "asleep until woken");
    assert_eq!(m.vmstat[VmEvent::KswapdHighWmarkHitQuickly], 1);
    assert_eq!(m.vmstat[VmEvent::KswapdLowWmarkHitQuickly], 1);
    assert_eq!(m.vmstat[VmEvent::KswapdWake], wakes);
    assert!(free(&m) >= high);
}

/// `try_to_free_buffers()`: a page-cache folio's buffer heads go back to their slab when
/// the folio leaves the cache, and a slab whose last object goes frees its pages; the
/// XArray nodes go with the pages at their ratio.
#[test]
fn dropping_page_cache_frees_its_buffer_heads_and_their_emptied_slabs() {
    let cfg = VmConfig {
        pcp: false,
        ..VmConfig::default()
    };
    let mut m = small_machine(0, 16, cfg);
    m.enable_contents(false);
    let f = m.new_file(false, false, true);
    let mut folios = Vec::new();
    for i in 0..6 {
        m.file_add(f, i, Order(0), i == 5).expect("room");
        folios.push(m.file_lookup(f, i).unwrap().1);
    }
    // A buffer_head cache of two objects per slab: folios 0-1 in slab A, 2-3 in B,
    // 4-5 (5 dirty: it stays through a drop) in C.
    let bh = m.kmem_cache_create_as(104, 2, Order(0));
    m.owners.cache_slab.bh_cache = Some(bh);
    let slabs: Vec<_> = (0..3)
        .map(|_| m.alloc_kernel(Order(0), 0).expect("a page"))
        .collect();
    for (i, id) in folios.iter().enumerate() {
        m.owners
            .cache_slab
            .buffer_heads
            .insert((*id, 0), slabs[i / 2]);
    }
    for s in &slabs {
        m.adopt_slab(*s, bh, 2);
    }
    // An XArray node per two pages, in a cache of one node per slab.
    let xa = m.kmem_cache_create_as(576, 1, Order(0));
    m.owners.cache_slab.xa_cache = Some(xa);
    for _ in 0..3 {
        let s = m.alloc_kernel(Order(0), 0).expect("a page");
        m.adopt_slab(s, xa, 1);
    }
    m.owners.cache_slab.xa_per_mpage = 1 << 19;
    check(&m);
    let (free0, slab0) = (free(&m), m.cache_slab_pages());
    assert_eq!(slab0, 6);
    // Truncating one page: its buffer head goes, its slab stays (folio 1 is still there).
    assert!(m.file_remove(f, 0));
    check(&m);
    assert_eq!(m.owners.caches[bh as usize].slabs.get(&slabs[0]), Some(&1));
    assert_eq!(m.cache_slab_pages(), 6, "half an XArray node owed");
    let dropped = m.drop_caches(3);
    check(&m);
    assert_eq!(dropped, 4, "folios 1-4; the dirty one stays");
    let left: Vec<_> = m.owners.caches[bh as usize].slabs.iter().collect();
    assert_eq!(
        left,
        [(&slabs[2], &1)],
        "only the dirty folio's buffer head"
    );
    assert_eq!(
        m.owners.cache_slab.buffer_heads.keys().collect::<Vec<_>>(),
        [&(folios[5], 0)]
    );
    // Five pages left the cache: two nodes and a half; one node is left.
    assert_eq!(m.owners.caches[xa as usize].slabs.len(), 1);
    assert_eq!(m.cache_slab_pages(), 2);
    assert_eq!(
        free(&m),
        free0 + 5 + 4,
        "five pages of cache and four of slab"
    );
}

/// `drop_slab()`: `drop_caches` 2 frees the unused dentries and inodes, and the slabs
/// that held only those; bit 1 alone leaves them.
#[test]
fn drop_caches_2_frees_the_unused_dentries_and_their_slabs() {
    let cfg = VmConfig {
        pcp: false,
        ..VmConfig::default()
    };
    let mut m = small_machine(0, 16, cfg);
    let dentry = m.kmem_cache_create_as(192, 21, Order(0));
    m.owners.cache_slab.fs_caches.push(dentry);
    let slabs: Vec<_> = (0..3)
        .map(|_| m.alloc_kernel(Order(0), 0).expect("a page"))
        .collect();
    m.adopt_slab(slabs[0], dentry, 21); // in use
    m.adopt_slab(slabs[1], dentry, 11); // unused
    m.adopt_slab(slabs[2], dentry, 10); // unused
    m.owners
        .cache_slab
        .prunable
        .push((dentry, vec![slabs[1], slabs[2]]));
    check(&m);
    let f0 = free(&m);
    assert_eq!(m.drop_caches(1), 0);
    assert_eq!(m.cache_slab_pages(), 3, "page cache only");
    m.drop_caches(2);
    check(&m);
    assert_eq!(m.cache_slab_pages(), 1);
    assert_eq!(free(&m), f0 + 2);
    assert_eq!(m.vmstat[VmEvent::DropSlab], 1);
    assert_eq!(m.vmstat[VmEvent::DropPagecache], 1);
    // Nothing unused is left.
    m.drop_caches(3);
    assert_eq!(m.cache_slab_pages(), 1);
    assert_eq!(
        m.owners.caches[dentry as usize].slabs.get(&slabs[0]),
        Some(&21)
    );
}

/// Lumpy reclaim (`reclaim_mode=lumpy`, Linux 2.6.35): an order-9 request's direct reclaim
/// takes the page cache around each target in its 2 MiB block, so one round frees a whole
/// block where today's reclaim, freeing pages from the tail of the LRU, does not.
#[test]
fn lumpy_reclaim_frees_the_block_around_its_target() {
    let gfp = Gfp::GFP_HIGHUSER_MOVABLE | Gfp::COMP | Gfp::RETRY_MAYFAIL;
    let run = |lumpy: bool| {
        let cfg = VmConfig {
            compaction: false,
            reclaim_lumpy: lumpy,
            ..VmConfig::default()
        };
        let (mut m, _) = with_page_cache(32, 100, cfg);
        let before = m.vmstat.clone();
        let got = m.alloc_pages(gfp, Order(9), NodeId(0));
        check(&m);
        let stolen = m.vmstat[VmEvent::PgstealDirect] - before[VmEvent::PgstealDirect];
        (
            got.is_some(),
            stolen,
            m.vmstat[VmEvent::Allocstall] - before[VmEvent::Allocstall],
        )
    };
    let (got, stolen, stalls) = run(false);
    assert!(!got, "today's reclaim without compaction: no block");
    assert!(stolen < 512, "{stolen} pages from the LRU's tail");
    assert_eq!(
        stalls, 1,
        "a costly request without compaction reclaims once"
    );
    let (got, stolen, stalls) = run(true);
    assert!(got, "lumpy reclaim freed a whole block");
    assert!(
        stolen > 256,
        "{stolen} pages: most of the block around the target"
    );
    assert_eq!(stalls, 1);
}

/// Linux 2.6.35's slow path (`alloc_retry=2.6.35`): a costly `__GFP_REPEAT` request goes on
/// reclaiming until it has reclaimed `1 << order` pages; today's gives up without
/// compaction after one round.
#[test]
fn alloc_retry_2_6_35_reclaims_a_costly_order_s_worth_before_giving_up() {
    let gfp = Gfp::GFP_HIGHUSER_MOVABLE | Gfp::COMP | Gfp::RETRY_MAYFAIL;
    let cfg = VmConfig {
        compaction: false,
        alloc_retry_2_6_35: true,
        ..VmConfig::default()
    };
    let (mut m, _) = with_page_cache(32, 100, cfg);
    let before = m.vmstat.clone();
    let t0 = m.clock.now_ns;
    let got = m.alloc_pages(gfp, Order(9), NodeId(0));
    check(&m);
    let stolen = m.vmstat[VmEvent::PgstealDirect] - before[VmEvent::PgstealDirect];
    let stalls = m.vmstat[VmEvent::Allocstall] - before[VmEvent::Allocstall];
    assert!(
        got.is_some() || stolen >= 512,
        "retried until a block or 512 pages reclaimed: {stolen}"
    );
    assert!(stalls > 1, "several rounds: {stalls}");
    assert!(
        m.clock.now_ns >= t0 + (stalls - 1) * 20_000_000,
        "congestion_wait(HZ/50) between rounds"
    );
}

/// Under `defrag_mode` (6.15+) `pgdat_balanced()` checks a non-zero order against the free
/// pages in whole free pageblocks (NR_FREE_PAGES_BLOCKS), so a zone whose free memory is
/// all in order-2 blocks is balanced for order 2 without it and not with it; order 0
/// counts every free page either way.
#[test]
fn defrag_mode_balances_kswapd_in_whole_pageblocks() {
    for defrag_mode in [false, true] {
        let mut m = small_machine(
            0,
            16,
            VmConfig {
                defrag_mode,
                ..VmConfig::default()
            },
        );
        let mut taken = Vec::new();
        while let Some(pfn) = m.alloc_pages(Gfp::GFP_NOWAIT, Order(2), NodeId(0)) {
            taken.push(pfn);
        }
        for pfn in taken.iter().step_by(2) {
            m.free_pages(*pfn, Order(2));
        }
        m.drain_all_pages(None);
        check(&m);
        let z = m.zone(normal(&m));
        assert_eq!(z.nr_free_pages_blocks, 0, "no free pageblock is left");
        assert!(
            z.nr_free_pages > 2 * z.high_wmark_pages(),
            "{}",
            z.nr_free_pages
        );
        assert!(z.free_area[2].nr_free > 0);
        assert!(m.pgdat_balanced(NodeId(0), 0, ZoneType::Normal));
        assert_eq!(
            m.pgdat_balanced(NodeId(0), 2, ZoneType::Normal),
            !defrag_mode,
            "defrag_mode={defrag_mode}"
        );
    }
}

/// The LRU lists are threaded through the folio table: a folio added goes to the head, an
/// activated one moves to the head of the active list; while ghosts are kept (a snapshot's
/// load), the place it left stays in the inactive list and the shuffle draws the order
/// over every entry, ghosts included.
#[test]
fn lru_lists_move_folios_and_shuffle_over_ghost_entries() {
    use kcompact::mmzone::LruList;
    use kcompact::rng::SimRng;
    for ghosts in [false, true] {
        let mut m = small_machine(0, 4, VmConfig::default());
        if ghosts {
            m.keep_lru_ghosts();
        }
        let f = m.new_file(false, true, false);
        let ids: Vec<_> = (0..6)
            .map(|i| m.file_add(f, i, Order(0), false).unwrap())
            .collect();
        let inactive =
            |m: &Machine| -> Vec<_> { m.lru_entries(NodeId(0), LruList::InactiveFile).collect() };
        let want: Vec<_> = ids.iter().rev().map(|id| Some(*id)).collect();
        assert_eq!(inactive(&m), want, "added at the head");
        m.folio_mark_accessed(ids[2]);
        m.folio_mark_accessed(ids[2]);
        let active: Vec<_> = m.lru_entries(NodeId(0), LruList::ActiveFile).collect();
        assert_eq!(active, vec![Some(ids[2])]);
        let mut entries = want.clone();
        if ghosts {
            entries[3] = None;
        } else {
            entries.remove(3);
        }
        assert_eq!(inactive(&m), entries);
        check(&m);
        let mut rng = SimRng::new(7);
        m.shuffle_lru_lists(&mut rng);
        let mut rng = SimRng::new(7);
        rng.shuffle(&mut entries);
        entries.retain(|e| e.is_some());
        assert_eq!(inactive(&m), entries, "shuffled as every entry was");
        check(&m);
    }
}
