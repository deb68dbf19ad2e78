//! The allocation slow path: wake the daemons, compact, reclaim, retry, or give up.
//!
//! Mirrors `__alloc_pages_slowpath()` of mainline (the classic sequence the reference
//! describes in §3): kswapd is woken, the freelists are tried at MIN, a costly or
//! non-movable high-order request first compacts asynchronously (a costly
//! `__GFP_NORETRY` request — a THP fault — fails there when compaction was skipped or
//! deferred), then the retry loop runs direct reclaim and direct compaction at rising
//! priority while `should_reclaim_retry()` or `should_compact_retry()` say so, and the OOM
//! killer is the last resort for small orders.

use crate::alloc::AllocContext;
use crate::buddy::watermark::zone_watermark_ok_free;
use crate::clock::Work;
use crate::compaction::{CompactPriority, CompactResult};
use crate::event::VmEvent;
use crate::gfp::{AllocFlags, Gfp};
use crate::layout::ZoneType;
use crate::machine::Machine;
use crate::memmap::MigrateType;
use crate::reclaim::MAX_RECLAIM_RETRIES;
use crate::units::{Order, Pfn, PAGE_ALLOC_COSTLY_ORDER};

/// `MAX_COMPACT_RETRIES`.
pub const MAX_COMPACT_RETRIES: u32 = 16;
/// The model's bound on a `__GFP_NOFAIL` request's retry loop.
const NOFAIL_LOOPS: u32 = 64;

impl Machine {
    /// Mirrors `__gfp_pfmemalloc_flags()`: reserves for `__GFP_MEMALLOC` and for a task
    /// in reclaim (PF_MEMALLOC), none under `__GFP_NOMEMALLOC`.
    ///
    /// DEVIATION(linux): no ALLOC_OOM for an OOM victim (the model's victims exit at once)
    /// and no interrupt context (`in_serving_softirq()`, `in_interrupt()`).
    fn gfp_pfmemalloc_flags(&self, gfp: Gfp) -> Option<AllocFlags> {
        if gfp.contains(Gfp::NOMEMALLOC) {
            return None;
        }
        (gfp.contains(Gfp::MEMALLOC) || self.pf_memalloc).then_some(AllocFlags::NO_WATERMARKS)
    }

    /// Mirrors `wake_all_kswapds()`: wakes kswapd of every node the request may use (once
    /// per node), at `max(order, pageblock_order)` under defrag_mode.
    pub(crate) fn wake_all_kswapds(&mut self, order: Order, gfp: Gfp, ac: &AllocContext) {
        let order = if self.config.defrag_mode {
            order.0.max(self.pageblock_order().0)
        } else {
            order.0
        };
        let mut last = None;
        for i in 0..self.ac_zonelist(ac).len() {
            let zi = self.ac_zonelist(ac)[i];
            let node = self.zone(zi).node;
            if last == Some(node) {
                continue;
            }
            last = Some(node);
            self.wakeup_kswapd(zi, gfp, order, ac.highest);
        }
    }

    /// Mirrors `__alloc_pages_slowpath()`; see the module documentation.
    pub(crate) fn alloc_pages_slowpath(
        &mut self,
        gfp: Gfp,
        order: Order,
        ac: &AllocContext,
    ) -> Option<Pfn> {
        let can_direct_reclaim = gfp.contains(Gfp::DIRECT_RECLAIM);
        let costly = order.0 > PAGE_ALLOC_COSTLY_ORDER;
        let can_compact = self.config.compaction && gfp.contains(Gfp::IO);
        let mut compaction_retries = 0;
        let mut no_progress_loops = 0;
        let mut compact_priority = CompactPriority::SyncLight;
        let mut nofail_loops = 0;
        let mut defrag_fallback_done = false;
        // alloc_retry=2.6.35: pages reclaimed over this request's attempts, and its retries.
        let (mut pages_reclaimed, mut retries_2_6_35) = (0u64, 0u32);

        let mut alloc_flags = self.alloc_flags_slowpath(gfp, order, ac.migratetype);
        if alloc_flags.has(AllocFlags::KSWAPD) {
            self.wake_all_kswapds(order, gfp, ac);
        }
        if let Some(p) = self.get_page_from_freelist(gfp, order, alloc_flags, ac) {
            return Some(p);
        }
        // The initial asynchronous compaction of costly and non-movable high-order requests.
        if can_direct_reclaim
            && can_compact
            && (costly || (order.0 > 0 && ac.migratetype != MigrateType::Movable))
            && self.gfp_pfmemalloc_flags(gfp).is_none()
        {
            let (page, r) =
                self.direct_compact_timed(gfp, order, alloc_flags, ac, CompactPriority::Async);
            if page.is_some() {
                return page;
            }
            if costly && gfp.contains(Gfp::NORETRY) {
                if matches!(r, CompactResult::Skipped | CompactResult::Deferred) {
                    return self
                        .alloc_nopage(gfp, order, ac, &mut alloc_flags, &mut defrag_fallback_done)
                        .0;
                }
                compact_priority = CompactPriority::Async;
            }
        }
        loop {
            if alloc_flags.has(AllocFlags::KSWAPD) {
                self.wake_all_kswapds(order, gfp, ac);
            }
            if let Some(reserve) = self.gfp_pfmemalloc_flags(gfp) {
                let mut f = reserve | AllocFlags(alloc_flags.0 & AllocFlags::KSWAPD.0);
                if self.config.config_cma && ac.migratetype == MigrateType::Movable {
                    f = f | AllocFlags::CMA;
                }
                alloc_flags = f;
            }
            if let Some(p) = self.get_page_from_freelist(gfp, order, alloc_flags, ac) {
                return Some(p);
            }
            let mut retry = false;
            'attempt: {
                if !can_direct_reclaim || self.pf_memalloc {
                    break 'attempt;
                }
                let (page, progress) = self.alloc_pages_direct_reclaim(gfp, order, alloc_flags, ac);
                if page.is_some() {
                    return page;
                }
                let (page, compact_result) =
                    self.direct_compact_timed(gfp, order, alloc_flags, ac, compact_priority);
                if page.is_some() {
                    return page;
                }
                if self.config.alloc_retry_2_6_35 {
                    // Linux 2.6.35's rules after direct reclaim: no progress goes to the
                    // OOM killer (a costly request gives up), progress to
                    // should_alloc_retry() after congestion_wait(BLK_RW_ASYNC, HZ/50).
                    // DEVIATION(linux): at most NOFAIL_LOOPS retries; 2.6.35 could loop
                    // for ever.
                    retries_2_6_35 += 1;
                    if retries_2_6_35 > NOFAIL_LOOPS {
                        break 'attempt;
                    }
                    if progress == 0 {
                        if gfp.contains(Gfp::FS) && !gfp.contains(Gfp::NORETRY) {
                            let (page, killed) = self.alloc_pages_may_oom(gfp, order, ac);
                            if page.is_some() {
                                return page;
                            }
                            retry = killed && (!costly || gfp.contains(Gfp::NOFAIL));
                        }
                        break 'attempt;
                    }
                    pages_reclaimed += progress;
                    if should_alloc_retry(gfp, order, pages_reclaimed) {
                        self.congestion_wait(20_000_000);
                        retry = true;
                    }
                    break 'attempt;
                }
                if gfp.contains(Gfp::NORETRY) {
                    break 'attempt;
                }
                if costly && (!can_compact || !gfp.contains(Gfp::RETRY_MAYFAIL)) {
                    break 'attempt;
                }
                if self.should_reclaim_retry(
                    gfp,
                    order,
                    ac,
                    alloc_flags,
                    progress > 0,
                    &mut no_progress_loops,
                ) {
                    retry = true;
                    break 'attempt;
                }
                if progress > 0
                    && can_compact
                    && self.should_compact_retry(
                        ac,
                        order,
                        alloc_flags,
                        compact_result,
                        &mut compact_priority,
                        &mut compaction_retries,
                    )
                {
                    retry = true;
                    break 'attempt;
                }
                // defrag_mode: reclaim and compaction failed to prevent the fallback.
                if self.config.defrag_mode && alloc_flags.has(AllocFlags::NOFRAGMENT) {
                    alloc_flags = alloc_flags.without(AllocFlags::NOFRAGMENT);
                    retry = true;
                    break 'attempt;
                }
                let (page, oom_progress) = self.alloc_pages_may_oom(gfp, order, ac);
                if page.is_some() {
                    return page;
                }
                if oom_progress {
                    no_progress_loops = 0;
                    retry = true;
                }
            }
            if retry {
                continue;
            }
            let (page, again) =
                self.alloc_nopage(gfp, order, ac, &mut alloc_flags, &mut defrag_fallback_done);
            if page.is_some() || !again {
                return page;
            }
            nofail_loops += 1;
            if nofail_loops > NOFAIL_LOOPS {
                // DEVIATION(linux): a __GFP_NOFAIL request loops forever in Linux; the model
                // gives up after a bound and counts it, so no input can hang it.
                self.vmstat[VmEvent::NofailGaveUp] += 1;
                return None;
            }
        }
    }

    /// The `nopage:` label: under defrag_mode a caller that cannot reclaim drops
    /// ALLOC_NOFRAGMENT and tries once more; a `__GFP_NOFAIL` request tries the reserves (`__alloc_pages_cpuset_fallback()` with
    /// ALLOC_MIN_RESERVE) and goes round again. Returns the page, and whether to retry.
    fn alloc_nopage(
        &mut self,
        gfp: Gfp,
        order: Order,
        ac: &AllocContext,
        alloc_flags: &mut AllocFlags,
        defrag_fallback_done: &mut bool,
    ) -> (Option<Pfn>, bool) {
        if self.config.defrag_mode
            && alloc_flags.has(AllocFlags::NOFRAGMENT)
            && !*defrag_fallback_done
            && !gfp.contains(Gfp::DIRECT_RECLAIM)
        {
            *defrag_fallback_done = true;
            *alloc_flags = alloc_flags.without(AllocFlags::NOFRAGMENT);
            if let Some(p) = self.get_page_from_freelist(gfp, order, *alloc_flags, ac) {
                return (Some(p), false);
            }
        }
        if gfp.contains(Gfp::NOFAIL) {
            let f = AllocFlags::MIN_RESERVE
                | AllocFlags::WMARK_MIN
                | AllocFlags(alloc_flags.0 & AllocFlags::CMA.0);
            if let Some(p) = self.get_page_from_freelist(gfp, order, f, ac) {
                return (Some(p), false);
            }
            return (None, true);
        }
        (None, false)
    }

    /// `__alloc_pages_direct_compact()` with its time charged to direct compaction.
    fn direct_compact_timed(
        &mut self,
        gfp: Gfp,
        order: Order,
        alloc_flags: AllocFlags,
        ac: &AllocContext,
        prio: CompactPriority,
    ) -> (Option<Pfn>, CompactResult) {
        let before = Work::of(&self.vmstat);
        let r = self.alloc_pages_direct_compact(gfp, order, alloc_flags, ac, prio);
        let cost = self.config.costs.cost(&before, &Work::of(&self.vmstat));
        self.clock.cpu.direct_compact_ns += cost;
        self.clock.last_alloc_ns += cost;
        r
    }

    /// Mirrors `__alloc_pages_direct_reclaim()`: `try_to_free_pages()`, then the freelists;
    /// if that fails once, a highatomic block is given back and it tries again. Returns the
    /// page and the progress.
    fn alloc_pages_direct_reclaim(
        &mut self,
        gfp: Gfp,
        order: Order,
        alloc_flags: AllocFlags,
        ac: &AllocContext,
    ) -> (Option<Pfn>, u64) {
        let before = Work::of(&self.vmstat);
        let zonelist: Vec<_> = self.ac_zonelist(ac).to_vec();
        let progress = self.try_to_free_pages(&zonelist, order.0, gfp, ac.highest);
        let cost = self.config.costs.cost(&before, &Work::of(&self.vmstat));
        self.clock.cpu.direct_reclaim_ns += cost;
        self.clock.last_alloc_ns += cost;
        if progress == 0 {
            return (None, 0);
        }
        let mut drained = false;
        loop {
            if let Some(p) = self.get_page_from_freelist(gfp, order, alloc_flags, ac) {
                return (Some(p), progress);
            }
            if drained {
                return (None, progress);
            }
            // Reclaim freed pages but none could be had: some may wait on the CPUs' lists
            // or in the highatomic reserve, so give those back once and try again.
            self.unreserve_highatomic_pageblock(&zonelist, ac.highest, ac.migratetype, false);
            self.drain_all_pages(None);
            drained = true;
        }
    }

    /// Mirrors `congestion_wait()` of Linux before 2.6.37 for a direct reclaimer: it sleeps
    /// until writes in flight complete or `ns` pass, the full time when there are none.
    /// Only the disk moves meanwhile; the wait is added to the allocation's latency.
    pub(crate) fn congestion_wait(&mut self, ns: u64) {
        let now = self.clock.now_ns;
        if self
            .clock
            .writeback
            .front()
            .is_some_and(|(done, _, _)| *done <= now + ns)
        {
            self.reclaim_throttle_writeback();
        } else {
            self.clock.now_ns += ns;
            self.clock.last_alloc_ns += ns;
        }
    }

    /// Mirrors `should_reclaim_retry()`: give up after 16 loops without progress (costly
    /// orders never count as progress); otherwise retry while some zone would pass MIN at
    /// the order with its free and reclaimable pages. Before giving up, the highatomic
    /// reserve is released (and a release counts as a reason to retry).
    fn should_reclaim_retry(
        &mut self,
        _gfp: Gfp,
        order: Order,
        ac: &AllocContext,
        alloc_flags: AllocFlags,
        did_some_progress: bool,
        no_progress_loops: &mut u32,
    ) -> bool {
        if did_some_progress && order.0 <= PAGE_ALLOC_COSTLY_ORDER {
            *no_progress_loops = 0;
        } else {
            *no_progress_loops += 1;
        }
        let zonelist: Vec<_> = self.ac_zonelist(ac).to_vec();
        let mut ret = false;
        if *no_progress_loops <= MAX_RECLAIM_RETRIES {
            for &zi in &zonelist {
                if self.zone(zi).zone_type > ac.highest {
                    continue;
                }
                let available = self.zone_reclaimable_pages(zi) + self.zone(zi).nr_free_pages;
                let z = self.zone(zi);
                if zone_watermark_ok_free(
                    z,
                    order,
                    z.min_wmark_pages(),
                    ac.highest,
                    alloc_flags,
                    available as i64,
                    self.config.config_cma,
                ) {
                    ret = true;
                    break;
                }
            }
        }
        if !ret {
            return self.unreserve_highatomic_pageblock(
                &zonelist,
                ac.highest,
                ac.migratetype,
                true,
            );
        }
        ret
    }

    /// Mirrors `should_compact_retry()`.
    fn should_compact_retry(
        &mut self,
        ac: &AllocContext,
        order: Order,
        alloc_flags: AllocFlags,
        result: CompactResult,
        priority: &mut CompactPriority,
        retries: &mut u32,
    ) -> bool {
        let _ = alloc_flags;
        if order.0 == 0 {
            return false;
        }
        if result == CompactResult::Skipped {
            return self.compaction_zonelist_suitable(ac, order);
        }
        if result == CompactResult::Success {
            let max = if order.0 > PAGE_ALLOC_COSTLY_ORDER {
                MAX_COMPACT_RETRIES / 4
            } else {
                MAX_COMPACT_RETRIES
            };
            *retries += 1;
            if *retries <= max {
                return true;
            }
        }
        let min = if order.0 > PAGE_ALLOC_COSTLY_ORDER {
            CompactPriority::SyncLight
        } else {
            CompactPriority::SyncFull
        };
        if *priority > min {
            *priority = match *priority {
                CompactPriority::Async => CompactPriority::SyncLight,
                _ => CompactPriority::SyncFull,
            };
            *retries = 0;
            return true;
        }
        false
    }

    /// Mirrors `compaction_zonelist_suitable()`: some zone would be suitable for
    /// compaction counting free pages and 1/order of the reclaimable ones.
    fn compaction_zonelist_suitable(&mut self, ac: &AllocContext, order: Order) -> bool {
        let zonelist: Vec<_> = self.ac_zonelist(ac).to_vec();
        for zi in zonelist {
            if self.zone(zi).zone_type > ac.highest {
                continue;
            }
            let available =
                self.zone_reclaimable_pages(zi) / order.0 as u64 + self.zone(zi).nr_free_pages;
            let min = self.zone(zi).min_wmark_pages();
            if self.__compaction_suitable(zi, order.0 as i32, min, ac.highest, available) {
                return true;
            }
        }
        false
    }

    /// Mirrors `__alloc_pages_may_oom()`: one more try at the HIGH watermark, then — for
    /// orders up to 3, `__GFP_FS`, not `__GFP_RETRY_MAYFAIL` or `__GFP_THISNODE`, and zones
    /// from Normal up — the OOM killer. Returns the page and whether something was freed.
    fn alloc_pages_may_oom(
        &mut self,
        gfp: Gfp,
        order: Order,
        ac: &AllocContext,
    ) -> (Option<Pfn>, bool) {
        let g = Gfp((gfp.0 | Gfp::HARDWALL.0) & !Gfp::DIRECT_RECLAIM.0);
        if let Some(p) =
            self.get_page_from_freelist(g, order, AllocFlags::WMARK_HIGH | AllocFlags::CPUSET, ac)
        {
            return (Some(p), false);
        }
        if order.0 > PAGE_ALLOC_COSTLY_ORDER
            || gfp.intersects(Gfp(Gfp::RETRY_MAYFAIL.0 | Gfp::THISNODE.0))
            || ac.highest < ZoneType::Normal
        {
            return (None, false);
        }
        // out_of_memory(): a request that cannot call into filesystems does not kill.
        if !gfp.contains(Gfp::FS) {
            return (None, true);
        }
        let killed = self.out_of_memory();
        if killed && gfp.contains(Gfp::NOFAIL) {
            let f = AllocFlags::NO_WATERMARKS;
            return (self.get_page_from_freelist(gfp, order, f, ac), true);
        }
        (None, killed)
    }

    /// Mirrors `out_of_memory()` → `select_bad_process()` → `oom_kill_process()`: kills the
    /// process with the highest `oom_badness()` — resident pages, page-table pages and swap
    /// entries — the lowest id on a tie. False if there is no process to kill.
    ///
    /// DEVIATION(linux): no `oom_score_adj`, no cgroups, no OOM reaper delay: the victim's
    /// memory is freed at once (what it shares or has pinned stays).
    pub fn out_of_memory(&mut self) -> bool {
        let mut best: Option<(u64, u32)> = None;
        for (pid, p) in self.owners.processes.iter().enumerate() {
            if !p.alive {
                continue;
            }
            let rss: u64 = p
                .table
                .values()
                .map(|id| self.owners.folio(id).order.nr_pages())
                .sum();
            let swap: u64 = self
                .reclaim
                .swap
                .range((pid as u32, 0)..=(pid as u32, u64::MAX))
                .map(|(_, e)| e.order.nr_pages())
                .sum();
            let points = rss + p.pgtables.len() as u64 + swap;
            if points > 0 && best.is_none_or(|(b, _)| points > b) {
                best = Some((points, pid as u32));
            }
        }
        let Some((_, pid)) = best else {
            return false;
        };
        self.exit_process(pid);
        self.vmstat[VmEvent::OomKill] += 1;
        true
    }
}

/// Mirrors Linux 2.6.35's `should_alloc_retry()` (`alloc_retry=2.6.35`): never with
/// `__GFP_NORETRY`; always for an order up to `PAGE_ALLOC_COSTLY_ORDER` or with
/// `__GFP_NOFAIL`; a costly order with `__GFP_REPEAT` — today's `__GFP_RETRY_MAYFAIL` —
/// until the request has reclaimed `1 << order` pages.
fn should_alloc_retry(gfp: Gfp, order: Order, pages_reclaimed: u64) -> bool {
    if gfp.contains(Gfp::NORETRY) {
        return false;
    }
    if order.0 <= PAGE_ALLOC_COSTLY_ORDER || gfp.contains(Gfp::NOFAIL) {
        return true;
    }
    gfp.contains(Gfp::RETRY_MAYFAIL) && pages_reclaimed < order.nr_pages()
}
