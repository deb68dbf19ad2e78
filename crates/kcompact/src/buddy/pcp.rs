//! The per-CPU page lists: each CPU's cache of free pages of each zone.
//!
//! Mirrors the per-CPU pageset code of mm/page_alloc.c as of Linux 6.18: allocations of
//! orders 0..=3 and of the THP order are served from the current CPU's lists
//! (`rmqueue_pcplist()`), refilled from the buddy lists `batch` blocks at a time (order-0
//! refills doubling up to `batch << 5` while no free intervenes, `nr_pcp_alloc()`); frees of
//! those orders go to the lists (`free_frozen_page_commit()`) and are drained back to the
//! buddy allocator in bulk (`free_pcppages_bulk()`) when the list holds more than `high`
//! pages. `high` tunes itself between `high_min` (the low watermark shared by the node's
//! CPUs) and `high_max` (an eighth of the zone per CPU): refills and full lists raise it,
//! frees while the zone is below its high watermark or kswapd is reclaiming it lower it,
//! and the vmstat tick decays it by an eighth a second (`decay_pcp_high()`), draining what
//! is above it. Pages on the lists are not `PageBuddy`, not free pages for NR_FREE_PAGES,
//! buddyinfo or the watermarks, and compaction's free scanner cannot see them.
//!
//! Drains happen where the kernel drains: `drain_all_pages()` after direct reclaim makes
//! progress without a page, kcompactd's zone drain, `compact_zone()`'s drain of the current
//! CPU when a high-order request's migrate scanner leaves a block it migrated from, and the
//! decay. `compact_memory` (order −1) and `drop_caches` do not drain.
//!
//! DEVIATION(linux): the pcp lock is never contended (one simulated task at a time), so
//! the trylock that can send a free straight to the buddy lists always succeeds; the 6.19
//! chunked drains are one call (the same pages in the same order).

use super::{FreeFlags, RmqueueMode};
use crate::event::Tracepoint;
use crate::gfp::AllocFlags;
use crate::machine::Machine;
use crate::memmap::{MigrateType, PageFlags};
use crate::mmzone::{
    PerCpuPages, NR_PCP_LISTS, PCPF_FREE_HIGH_BATCH, PCPF_PREV_FREE_HIGH_ORDER, PCP_BATCH_SCALE_MAX,
};
use crate::units::{Order, Pfn, ZoneIdx, HPAGE_PMD_ORDER, PAGE_ALLOC_COSTLY_ORDER};
use crate::zone::Wmark;

/// `NR_LOWORDER_PCP_LISTS`: the lists of orders 0..=PAGE_ALLOC_COSTLY_ORDER.
const NR_LOWORDER_PCP_LISTS: usize = 3 * (PAGE_ALLOC_COSTLY_ORDER as usize + 1);
/// `MIN_PERCPU_PAGELIST_HIGH_FRACTION`.
pub const MIN_PERCPU_PAGELIST_HIGH_FRACTION: u32 = 8;

/// Mirrors `pcp_allowed_order()`: orders 0..=PAGE_ALLOC_COSTLY_ORDER and the PMD order.
#[inline]
pub fn pcp_allowed_order(order: Order) -> bool {
    order.0 <= PAGE_ALLOC_COSTLY_ORDER || order.0 == HPAGE_PMD_ORDER
}

/// Mirrors `order_to_pindex()`: the list of a block of `order` and (PCP) type `mt`; the THP
/// order has one list for movable blocks and one for the other two types.
#[inline]
pub fn order_to_pindex(mt: MigrateType, order: Order) -> usize {
    debug_assert!((mt as usize) < 3 && pcp_allowed_order(order));
    if order.0 > PAGE_ALLOC_COSTLY_ORDER {
        NR_LOWORDER_PCP_LISTS + (mt == MigrateType::Movable) as usize
    } else {
        3 * order.0 as usize + mt as usize
    }
}

/// Mirrors `pindex_to_order()`.
#[inline]
pub fn pindex_to_order(pindex: usize) -> Order {
    if pindex >= NR_LOWORDER_PCP_LISTS {
        Order(HPAGE_PMD_ORDER)
    } else {
        Order((pindex / 3) as u8)
    }
}

/// Mirrors `zone_batchsize()` for an MMU kernel: a quarter of a MiB's pages at most,
/// rounded to `2^n - 1` ("to avoid cache aliasing"); 1 for tiny zones.
pub fn zone_batchsize(managed: u64) -> u64 {
    let b = (managed >> 12).min(64);
    let b = b + b / 2;
    if b <= 1 {
        return 1;
    }
    (1u64 << (63 - b.leading_zeros())) - 1
}

impl Machine {
    /// The number of online CPUs.
    #[inline]
    pub fn nr_cpus(&self) -> u32 {
        self.config.cpus
    }

    /// The CPU the daemons (kswapd, kcompactd) run on: the last one, so that on a machine
    /// with more than one CPU they run beside the task that woke them.
    ///
    /// DEVIATION(linux): the scheduler's placement is not modelled; the daemons always run
    /// on the last CPU.
    pub fn daemon_cpu(&self) -> u32 {
        self.nr_cpus() - 1
    }

    /// Runs `f` with the current task on `cpu` (the daemons' steps, a scenario's tasks).
    pub fn on_cpu<R>(&mut self, cpu: u32, f: impl FnOnce(&mut Machine) -> R) -> R {
        let cpu = cpu.min(self.nr_cpus() - 1);
        let was = std::mem::replace(&mut self.cpu, cpu);
        let r = f(self);
        self.cpu = was;
        r
    }

    /// Free pages on every zone's per-CPU lists.
    pub fn nr_pcp_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.pcp_pages()).sum()
    }

    /// Mirrors `zone_highsize()`: the share of `total` (the low watermark, or the zone over
    /// `fraction`) each CPU of the zone's node may keep, at least four batches.
    fn zone_highsize(&self, zi: ZoneIdx, batch: u64, fraction: u32) -> u64 {
        let z = self.zone(zi);
        let total = if fraction > 0 {
            z.managed_pages / fraction as u64
        } else {
            z.wmark_pages(Wmark::Low)
        };
        // The model's CPUs all belong to every node's cpumask (one socket).
        let n = self.nr_cpus() as u64;
        (total / n).max(batch << 2)
    }

    /// Mirrors `zone_set_pageset_high_and_batch()` → `pageset_update()`: sizes every CPU's
    /// pcp of the zone (batch, high_min, high_max; `high` and the lists stay).
    pub fn zone_set_pageset_high_and_batch(&mut self, zi: ZoneIdx) {
        if !self.config.pcp {
            return;
        }
        let batch = zone_batchsize(self.zone(zi).managed_pages);
        let fraction = self.config.percpu_pagelist_high_fraction;
        let (high_min, high_max) = if fraction > 0 {
            let h = self.zone_highsize(zi, batch, fraction);
            (h, h)
        } else {
            (
                self.zone_highsize(zi, batch, 0),
                self.zone_highsize(zi, batch, MIN_PERCPU_PAGELIST_HIGH_FRACTION),
            )
        };
        let cpus = self.nr_cpus() as usize;
        let free_high_batch = self.config.pcp_free_high_batch;
        let z = &mut self.zones[zi.idx()];
        if z.pageset.len() != cpus {
            z.pageset = vec![PerCpuPages::default(); cpus];
        }
        z.pageset_sizes = (high_min, high_max, batch);
        for pcp in &mut z.pageset {
            pcp.batch = batch;
            pcp.high_min = high_min;
            pcp.high_max = high_max;
            if free_high_batch {
                pcp.flags |= PCPF_FREE_HIGH_BATCH;
            }
        }
    }

    /// Mirrors `zone_pcp_update()` for every zone (after the watermarks change).
    pub fn zone_pcp_update_all(&mut self) {
        for i in 0..self.zones.len() {
            if self.zones[i].is_populated() {
                self.zone_set_pageset_high_and_batch(ZoneIdx(i as u8));
            }
        }
    }

    /// Mirrors `nr_pcp_alloc()`: how many blocks of `order` a refill takes, raising `high`
    /// by the refill (unless the zone is below its high watermark) and doubling the next
    /// order-0 refill while the list keeps running dry.
    fn nr_pcp_alloc(&mut self, zi: ZoneIdx, cpu: usize, order: Order) -> u64 {
        let below_high = self.zone(zi).below_high;
        let pcp = &mut self.zones[zi.idx()].pageset[cpu];
        let base = pcp.batch;
        pcp.high = kclamp(pcp.high, pcp.high_min, pcp.high_max);
        let mut high = pcp.high;
        if high < base {
            return 1;
        }
        let mut batch = if order.0 > 0 {
            base
        } else {
            base << pcp.alloc_factor
        };
        if pcp.high_min != pcp.high_max && !below_high {
            high = (high + batch).min(pcp.high_max);
            pcp.high = high;
        }
        if order.0 == 0 {
            let max_nr_alloc = high.saturating_sub(pcp.count + base).max(base);
            if batch <= max_nr_alloc && (pcp.alloc_factor as u32) < PCP_BATCH_SCALE_MAX {
                pcp.alloc_factor += 1;
            }
            batch = batch.min(max_nr_alloc);
        }
        if batch > 1 {
            batch = (batch >> order.0).max(2);
        }
        batch
    }

    /// Mirrors `rmqueue_bulk()`: up to `count` blocks of `order` from the buddy lists onto
    /// `cpu`'s list for (`mt`, `order`), in the order `__rmqueue()` hands them out (to the
    /// tail), keeping its fallback mode across the loop. Returns the blocks taken.
    fn rmqueue_bulk(
        &mut self,
        zi: ZoneIdx,
        cpu: usize,
        order: Order,
        count: u64,
        mt: MigrateType,
        alloc_flags: AllocFlags,
    ) -> u64 {
        let pindex = order_to_pindex(mt, order);
        let mut mode = RmqueueMode::Normal;
        let mut taken = 0;
        while taken < count {
            let Some(p) = self.rmqueue_inner(zi, order, mt, alloc_flags, &mut mode) else {
                break;
            };
            self.mem.set_pcp(p, order, pcp_tag(cpu, pindex));
            let z = &mut self.zones[zi.idx()];
            z.pageset[cpu].lists[pindex].push_tail(&mut self.mem, p);
            taken += 1;
        }
        taken
    }

    /// Mirrors `rmqueue_pcplist()` → `__rmqueue_pcplist()`: the head of the current CPU's
    /// list for (`mt`, `order`), refilled from the buddy lists when it is empty. `None` if
    /// the refill found nothing (the caller tries the buddy lists).
    pub(crate) fn rmqueue_pcplist(
        &mut self,
        zi: ZoneIdx,
        order: Order,
        mt: MigrateType,
        alloc_flags: AllocFlags,
    ) -> Option<Pfn> {
        let cpu = self.cpu as usize;
        let pindex = order_to_pindex(mt, order);
        let pcp = &mut self.zones[zi.idx()].pageset[cpu];
        pcp.free_count >>= 1;
        if pcp.lists[pindex].is_empty() {
            let batch = self.nr_pcp_alloc(zi, cpu, order);
            let n = self.rmqueue_bulk(zi, cpu, order, batch, mt, alloc_flags);
            self.zones[zi.idx()].pageset[cpu].count += n << order.0;
            if n == 0 {
                return None;
            }
        }
        let z = &mut self.zones[zi.idx()];
        let pcp = &mut z.pageset[cpu];
        let p = pcp.lists[pindex].pop_head(&mut self.mem)?;
        pcp.count -= order.nr_pages();
        self.mem.clear_pcp(p);
        Some(p)
    }

    /// Mirrors `__free_frozen_pages()` / `free_unref_folios()` for one block: a block of a
    /// pcp order whose pageblock is not isolated goes on the current CPU's list (HIGHATOMIC
    /// and CMA blocks on the movable list), everything else to the buddy lists. The block
    /// must be clean (`__free_pages_prepare()` done).
    pub(crate) fn free_frozen_pages(&mut self, zi: ZoneIdx, pfn: Pfn, order: Order) {
        if !self.config.pcp || !pcp_allowed_order(order) {
            self.free_one_page(zi, pfn, order, FreeFlags::NONE);
            return;
        }
        let mt = match self.migratetype(pfn) {
            MigrateType::Isolate => {
                self.free_one_page(zi, pfn, order, FreeFlags::NONE);
                return;
            }
            mt if mt.is_mergeable() => mt,
            _ => MigrateType::Movable,
        };
        self.free_frozen_page_commit(zi, self.cpu as usize, pfn, mt, order);
    }

    /// Mirrors `free_frozen_page_commit()`: adds the block at the head of its list, tracks
    /// the burst of frees, and drains what the list holds above its limit.
    fn free_frozen_page_commit(
        &mut self,
        zi: ZoneIdx,
        cpu: usize,
        pfn: Pfn,
        mt: MigrateType,
        order: Order,
    ) {
        let pindex = order_to_pindex(mt, order);
        self.mem.set_pcp(pfn, order, pcp_tag(cpu, pindex));
        let z = &mut self.zones[zi.idx()];
        let pcp = &mut z.pageset[cpu];
        pcp.alloc_factor >>= 1;
        pcp.lists[pindex].push_head(&mut self.mem, pfn);
        pcp.count += order.nr_pages();
        let batch = pcp.batch;
        let mut free_high = false;
        if order.0 > 0 && order.0 <= PAGE_ALLOC_COSTLY_ORDER {
            // High orders other than THP fragment: stop storing them once a burst of frees
            // without allocations is under way.
            free_high = pcp.free_count >= batch + pcp.high_min / 2
                && pcp.flags & PCPF_PREV_FREE_HIGH_ORDER != 0
                && (pcp.flags & PCPF_FREE_HIGH_BATCH == 0 || pcp.count >= batch);
            pcp.flags |= PCPF_PREV_FREE_HIGH_ORDER;
        } else {
            pcp.flags &= !PCPF_PREV_FREE_HIGH_ORDER;
        }
        if pcp.free_count < batch << PCP_BATCH_SCALE_MAX {
            pcp.free_count += order.nr_pages();
        }
        let high = self.nr_pcp_high(zi, cpu, batch, free_high);
        let pcp = &self.zones[zi.idx()].pageset[cpu];
        if pcp.count < high {
            return;
        }
        let to_free = nr_pcp_free(pcp, batch, high, free_high);
        self.free_pcppages_bulk(zi, cpu, to_free, pindex);
        let z = self.zone(zi);
        if z.below_high
            && crate::buddy::watermark::zone_watermark_ok(
                z,
                Order(0),
                z.wmark_pages(Wmark::High),
                crate::layout::ZoneType::Movable,
                AllocFlags::default(),
                self.config.config_cma,
            )
        {
            self.zones[zi.idx()].below_high = false;
        }
    }

    /// Mirrors `nr_pcp_high()`: the limit this free is checked against, after tuning
    /// `high` (down while the zone is short of memory or after a burst of high-order frees,
    /// up to hold a batch of frees when the list is full).
    fn nr_pcp_high(&mut self, zi: ZoneIdx, cpu: usize, batch: u64, free_high: bool) -> u64 {
        let (below_high, reclaim_active) = {
            let z = self.zone(zi);
            (z.below_high, z.reclaim_active)
        };
        let pcp = &mut self.zones[zi.idx()].pageset[cpu];
        let (high_min, high_max) = (pcp.high_min, pcp.high_max);
        let mut high = kclamp(pcp.high, high_min, high_max);
        pcp.high = high;
        if high == 0 {
            return 0;
        }
        if free_high {
            pcp.high = high
                .saturating_sub(batch << PCP_BATCH_SCALE_MAX)
                .max(high_min);
            return 0;
        }
        if reclaim_active {
            let free_count = pcp.free_count.max(batch);
            pcp.high = high.saturating_sub(free_count).max(high_min);
            return (batch << 2).min(pcp.high);
        }
        if high_min == high_max {
            return high;
        }
        if below_high {
            let free_count = pcp.free_count.max(batch);
            pcp.high = high.saturating_sub(free_count).max(high_min);
            high = pcp.count.max(high_min);
        } else if pcp.count >= high {
            let need_high = pcp.free_count + batch;
            if pcp.high < need_high {
                pcp.high = kclamp(need_high, high_min, high_max);
            }
        }
        high
    }

    /// Mirrors `free_pcppages_bulk()`: gives `count` pages of `cpu`'s lists back to the
    /// buddy allocator, list `pindex` first, then round robin over the others, each list
    /// emptied oldest first before the next; every block goes to its pageblock's type as
    /// it is now.
    fn free_pcppages_bulk(&mut self, zi: ZoneIdx, cpu: usize, count: u64, pindex: usize) {
        let mut count = count.min(self.zones[zi.idx()].pageset[cpu].count) as i64;
        let mut pindex = pindex;
        let mut first = true;
        while count > 0 {
            if !first {
                pindex = (pindex + 1) % NR_PCP_LISTS;
            }
            first = false;
            let lists = &self.zones[zi.idx()].pageset[cpu].lists;
            let mut guard = 0;
            while lists[pindex].is_empty() {
                pindex = (pindex + 1) % NR_PCP_LISTS;
                guard += 1;
                assert!(
                    guard <= NR_PCP_LISTS,
                    "pcp count {count} with every list empty"
                );
            }
            let order = pindex_to_order(pindex);
            loop {
                let pcp = &mut self.zones[zi.idx()].pageset[cpu];
                let p = pcp.lists[pindex]
                    .pop_tail(&mut self.mem)
                    .expect("a non-empty list");
                count -= order.nr_pages() as i64;
                pcp.count -= order.nr_pages();
                let empty = pcp.lists[pindex].is_empty();
                self.mem.clear_pcp(p);
                // The block goes to its pageblock's type as it is now; a THP-order block
                // larger than a (configured) pageblock goes a pageblock at a time.
                let mt = self.pageblocks.migratetype(p) as i32;
                self.free_one_page(zi, p, order, FreeFlags::NONE);
                self.trace_event(|| Tracepoint::PagePcpuDrain {
                    pfn: p,
                    order,
                    migratetype: mt,
                });
                if count <= 0 || empty {
                    break;
                }
            }
        }
    }

    /// Mirrors `drain_pages_zone()`: every page of `cpu`'s lists of zone `zi` back to the
    /// buddy allocator (in chunks of `batch << 5`, the kernel's lock hold limit).
    pub fn drain_pages_zone(&mut self, cpu: u32, zi: ZoneIdx) {
        let cpu = cpu as usize;
        loop {
            let Some(pcp) = self.zones[zi.idx()].pageset.get(cpu) else {
                return;
            };
            if pcp.count == 0 {
                return;
            }
            let n = pcp.count.min(pcp.batch << PCP_BATCH_SCALE_MAX);
            self.free_pcppages_bulk(zi, cpu, n, 0);
        }
    }

    /// Mirrors `drain_local_pages()`: the current CPU's lists of `zone`, or of every zone.
    pub fn drain_local_pages(&mut self, zone: Option<ZoneIdx>) {
        let cpu = self.cpu;
        self.drain_cpu(cpu, zone);
    }

    fn drain_cpu(&mut self, cpu: u32, zone: Option<ZoneIdx>) {
        match zone {
            Some(zi) => self.drain_pages_zone(cpu, zi),
            None => {
                for i in 0..self.zones.len() {
                    if self.zones[i].is_populated() {
                        self.drain_pages_zone(cpu, ZoneIdx(i as u8));
                    }
                }
            }
        }
    }

    /// Mirrors `drain_all_pages()`: every CPU's lists of `zone` (or of every zone) back to
    /// the buddy allocator, CPU by CPU.
    pub fn drain_all_pages(&mut self, zone: Option<ZoneIdx>) {
        for cpu in 0..self.nr_cpus() {
            self.drain_cpu(cpu, zone);
        }
    }

    /// Mirrors `decay_pcp_high()`: `high` loses an eighth (not below `high_min`, and not
    /// more than `batch << 5` below the count), and what the list holds above it is
    /// drained. True while there is more to do on later ticks.
    pub fn decay_pcp_high(&mut self, zi: ZoneIdx, cpu: u32) -> bool {
        let cpu = cpu as usize;
        let Some(pcp) = self.zones[zi.idx()].pageset.get_mut(cpu) else {
            return false;
        };
        let mut todo = false;
        if pcp.high > pcp.high_min {
            pcp.high = pcp
                .count
                .saturating_sub(pcp.batch << PCP_BATCH_SCALE_MAX)
                .max(pcp.high - (pcp.high >> 3))
                .max(pcp.high_min);
            todo = pcp.high > pcp.high_min;
        }
        let mut to_drain = pcp.count.saturating_sub(pcp.high);
        let batch = pcp.batch;
        while to_drain > 0 {
            let n = to_drain.min(batch);
            self.free_pcppages_bulk(zi, cpu, n, 0);
            to_drain -= n;
            todo = true;
        }
        todo
    }

    /// True if a vmstat tick of `cpu` would decay or drain one of its pcps: `high` above
    /// `high_min`, or more pages than `high`.
    pub fn pcp_needs_decay(&self, cpu: u32) -> bool {
        self.zones.iter().any(|z| {
            z.pageset
                .get(cpu as usize)
                .is_some_and(|p| p.high > p.high_min || p.count > p.high)
        })
    }

    /// Mirrors `refresh_cpu_vm_stats(true)` for `cpu`: the pcp decay of every zone (the
    /// vmstat counters themselves need no folding in the model). True while any zone
    /// has more to do.
    pub fn refresh_cpu_vm_stats(&mut self, cpu: u32) -> bool {
        let mut todo = false;
        for i in 0..self.zones.len() {
            if self.zones[i].is_populated() {
                todo |= self.decay_pcp_high(ZoneIdx(i as u8), cpu);
            }
        }
        todo
    }

    /// Gives reserved page `pfn` of a zone to `cpu`'s per-CPU lists as a free order-0 block
    /// on the list of its pageblock's type, the zone's managed pages growing by one, as a
    /// snapshot shows a page waiting there (a model utility: `free_reserved_page()` with the
    /// page left on the list). False if `pfn` is no reserved page of a zone or the machine
    /// has no per-CPU lists.
    pub fn adopt_reserved_page_to_pcp(&mut self, pfn: Pfn, cpu: u32) -> bool {
        let Some(zi) = self.page_zone(pfn) else {
            return false;
        };
        if !self.config.pcp
            || cpu >= self.nr_cpus()
            || !self.mem.flags(pfn).contains(PageFlags::RESERVED)
        {
            return false;
        }
        let mt = match self.migratetype(pfn) {
            MigrateType::Isolate => return false,
            mt if mt.is_mergeable() => mt,
            _ => MigrateType::Movable,
        };
        self.zones[zi.idx()].managed_pages += 1;
        self.mem.clear_block(pfn, Order(0));
        let cpu = cpu as usize;
        let pindex = order_to_pindex(mt, Order(0));
        self.mem.set_pcp(pfn, Order(0), pcp_tag(cpu, pindex));
        let pcp = &mut self.zones[zi.idx()].pageset[cpu];
        pcp.lists[pindex].push_tail(&mut self.mem, pfn);
        pcp.count += 1;
        true
    }

    /// The start of a refill of `cpu`'s list for `order` that a trace recorded (its
    /// `mm_page_alloc_zone_locked` events with `percpu_refill`): `nr_pcp_alloc()`'s effect
    /// on `high` and `alloc_factor`. Returns the blocks the kernel would take.
    pub fn pcp_refill_begin(&mut self, zi: ZoneIdx, cpu: u32, order: Order) -> u64 {
        if !self.config.pcp || cpu >= self.nr_cpus() || !pcp_allowed_order(order) {
            return 0;
        }
        self.nr_pcp_alloc(zi, cpu as usize, order)
    }

    /// One block of a traced refill: `[pfn, pfn + 2^order)` taken off the buddy lists onto
    /// `cpu`'s list for (`mt`, `order`), as `rmqueue_bulk()` does. False if the block is not
    /// free in the buddy lists.
    pub fn pcp_refill_block(&mut self, pfn: Pfn, order: Order, cpu: u32, mt: MigrateType) -> bool {
        let Some(zi) = self.page_zone(pfn) else {
            return false;
        };
        if !self.config.pcp
            || cpu >= self.nr_cpus()
            || !pcp_allowed_order(order)
            || !self.take_free_range(pfn, order)
        {
            return false;
        }
        let mt = if mt.is_mergeable() {
            mt
        } else {
            MigrateType::Movable
        };
        let (cpu, pindex) = (cpu as usize, order_to_pindex(mt, order));
        self.mem.set_pcp(pfn, order, pcp_tag(cpu, pindex));
        let pcp = &mut self.zones[zi.idx()].pageset[cpu];
        pcp.lists[pindex].push_tail(&mut self.mem, pfn);
        pcp.count += order.nr_pages();
        true
    }

    /// A placed allocation's block taken off the per-CPU list holding it, with the list's
    /// bookkeeping of an allocation from it (`rmqueue_pcplist()` halves `free_count`).
    pub(crate) fn take_pcp_block_for_alloc(&mut self, pfn: Pfn, order: Order) -> bool {
        match self.take_pcp_block_of(pfn, order) {
            Some((zi, cpu)) => {
                self.zones[zi.idx()].pageset[cpu].free_count >>= 1;
                true
            }
            None => false,
        }
    }

    /// One block of a traced drain (`mm_page_pcpu_drain`): taken off its per-CPU list and
    /// freed to the buddy lists at its pageblock's type. False if no list holds it.
    pub fn pcp_drain_block(&mut self, pfn: Pfn, order: Order) -> bool {
        let Some(zi) = self.page_zone(pfn) else {
            return false;
        };
        if !self.take_pcp_block(pfn, order) {
            return false;
        }
        self.free_one_page(zi, pfn, order, FreeFlags::NONE);
        true
    }

    /// True if `pfn` lies in a block on a per-CPU list.
    pub fn is_pcp_page(&self, pfn: Pfn) -> bool {
        (0..=HPAGE_PMD_ORDER).any(|o| {
            let h = pfn.align_down(Order(o));
            self.mem.is_pcp(h) && self.mem.flags(h).order() >= o
        })
    }

    /// Frees to the buddy lists every per-CPU block that overlaps `[pfn, pfn + 2^order)`,
    /// as the drain that must have come before a recorded allocation there would have
    /// (a trace can miss it: recorded from the middle, or without `mm_page_pcpu_drain`).
    /// Returns how many blocks it freed. A model utility for placed allocations.
    pub(crate) fn drain_pcp_blocks_over(&mut self, pfn: Pfn, order: Order) -> u64 {
        let end = pfn.plus(order.nr_pages()).min(self.mem.end_pfn());
        let mut drained = 0;
        // A block that starts before `pfn` and covers it starts at an aligned pfn below.
        let mut p = (0..=HPAGE_PMD_ORDER)
            .map(|o| pfn.align_down(Order(o)))
            .filter(|&h| h < end && self.mem.is_pcp(h))
            .find(|&h| pfn < h.plus(Order(self.mem.flags(h).order()).nr_pages()))
            .unwrap_or(pfn);
        while p < end {
            if !self.mem.is_pcp(p) {
                p = p.plus(1);
                continue;
            }
            let o = Order(self.mem.flags(p).order());
            if self.pcp_drain_block(p, o) {
                drained += 1;
            }
            p = p.plus(o.nr_pages());
        }
        drained
    }

    /// Takes block `[pfn, pfn + 2^order)` off whichever per-CPU list holds it as a block of
    /// exactly that order. A model utility for placing pages where a snapshot or a trace
    /// says they are.
    pub fn take_pcp_block(&mut self, pfn: Pfn, order: Order) -> bool {
        self.take_pcp_block_of(pfn, order).is_some()
    }

    /// [`Machine::take_pcp_block`], returning the zone and CPU whose list held the block.
    fn take_pcp_block_of(&mut self, pfn: Pfn, order: Order) -> Option<(ZoneIdx, usize)> {
        let f = self.mem.flags(pfn);
        if !f.contains(PageFlags::PCP) || f.order() != order.0 {
            return None;
        }
        let zi = self.page_zone(pfn)?;
        let tag = self.mem.pcp_tag(pfn) as usize;
        let (cpu, pindex) = (tag / NR_PCP_LISTS, tag % NR_PCP_LISTS);
        let pcp = &mut self.zones[zi.idx()].pageset[cpu];
        pcp.lists[pindex].remove(&mut self.mem, pfn);
        pcp.count -= order.nr_pages();
        self.mem.clear_pcp(pfn);
        Some((zi, cpu))
    }
}

/// The kernel's `clamp()`: `min(max(v, lo), hi)`, so `hi` wins when the bounds cross (a
/// small zone's `high_min`, from its low watermark, can exceed `high_max`).
#[inline]
fn kclamp(v: u64, lo: u64, hi: u64) -> u64 {
    v.max(lo).min(hi)
}

/// The tag a block on list `pindex` of `cpu`'s pcp carries in the memory map.
#[inline]
fn pcp_tag(cpu: usize, pindex: usize) -> u32 {
    (cpu * NR_PCP_LISTS + pindex) as u32
}

/// Mirrors `nr_pcp_free()`: how many pages a full list gives back (the pages freed in a
/// row, at least a batch, leaving a batch; up to `batch << 5` after a burst of high-order
/// frees).
fn nr_pcp_free(pcp: &PerCpuPages, batch: u64, high: u64, free_high: bool) -> u64 {
    if free_high {
        return pcp.count.min(batch << PCP_BATCH_SCALE_MAX);
    }
    if high < batch {
        return 1;
    }
    // clamp_t() with the kernel's min/max order: the upper bound wins when they cross.
    pcp.free_count.max(batch).min(high - batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pindex_covers_every_pcp_order_and_type_once() {
        let mut seen = [false; NR_PCP_LISTS];
        for o in (0..=PAGE_ALLOC_COSTLY_ORDER).chain([HPAGE_PMD_ORDER]) {
            for mt in [
                MigrateType::Unmovable,
                MigrateType::Movable,
                MigrateType::Reclaimable,
            ] {
                let p = order_to_pindex(mt, Order(o));
                assert_eq!(pindex_to_order(p), Order(o));
                if o == HPAGE_PMD_ORDER && mt != MigrateType::Movable {
                    assert_eq!(p, 12);
                } else {
                    assert!(!seen[p], "pindex {p} twice");
                }
                seen[p] = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
        assert!(!pcp_allowed_order(Order(4)) && !pcp_allowed_order(Order(10)));
    }

    #[test]
    fn batch_sizes_of_the_real_zones() {
        assert_eq!(zone_batchsize(3840), 1);
        assert_eq!(zone_batchsize(772_917), 63);
        assert_eq!(zone_batchsize(5_406_162), 63);
        assert_eq!(zone_batchsize(1 << 14), 3);
    }
}
