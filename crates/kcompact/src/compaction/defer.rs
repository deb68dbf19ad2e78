//! Deferral after failures, and the reset of skip hints.

use crate::event::{Defer, Tracepoint};
use crate::machine::Machine;
use crate::memmap::{MigrateType, PageFlags};
use crate::units::{Pfn, ZoneIdx, PAGE_ALLOC_COSTLY_ORDER};

/// `COMPACT_MAX_DEFER_SHIFT`.
pub const COMPACT_MAX_DEFER_SHIFT: u32 = 6;

impl Machine {
    fn trace_defer(&mut self, event: fn(Defer) -> Tracepoint, zi: ZoneIdx, order: i32) {
        let z = self.zone(zi);
        let c = z.compact;
        let d = Defer {
            node: z.node.0,
            zone: z.zone_type,
            order,
            order_failed: c.order_failed,
            considered: c.considered,
            limit: 1u64 << c.defer_shift,
        };
        self.trace_event(|| event(d));
    }

    /// Mirrors `defer_compaction()`: after a failure, skip the next `2^shift` attempts at
    /// this order or above (the shift grows by one per failure, at most 6).
    pub fn defer_compaction(&mut self, zi: ZoneIdx, order: i32) {
        let c = &mut self.zones[zi.idx()].compact;
        c.considered = 0;
        c.defer_shift += 1;
        if order < c.order_failed {
            c.order_failed = order;
        }
        c.defer_shift = c.defer_shift.min(COMPACT_MAX_DEFER_SHIFT);
        self.trace_defer(Tracepoint::DeferCompaction, zi, order);
    }

    /// Mirrors `compaction_deferred()`: true if this attempt should be skipped.
    pub fn compaction_deferred(&mut self, zi: ZoneIdx, order: i32) -> bool {
        let c = &mut self.zones[zi.idx()].compact;
        let limit = 1u32 << c.defer_shift;
        if order < c.order_failed {
            return false;
        }
        c.considered += 1;
        if c.considered >= limit {
            c.considered = limit;
            return false;
        }
        self.trace_defer(Tracepoint::Deferred, zi, order);
        true
    }

    /// Mirrors `compaction_defer_reset()`: after a success, orders up to this one are no
    /// longer deferred; an allocation that succeeded clears the backoff.
    pub fn compaction_defer_reset(&mut self, zi: ZoneIdx, order: i32, alloc_success: bool) {
        let c = &mut self.zones[zi.idx()].compact;
        if alloc_success {
            c.considered = 0;
            c.defer_shift = 0;
        }
        if order >= c.order_failed {
            c.order_failed = order + 1;
        }
        self.trace_defer(Tracepoint::DeferReset, zi, order);
    }

    /// Mirrors `compaction_restarting()`: deferred to the maximum and all of it spent.
    pub fn compaction_restarting(&self, zi: ZoneIdx, order: i32) -> bool {
        let c = &self.zone(zi).compact;
        if order < c.order_failed {
            return false;
        }
        c.defer_shift == COMPACT_MAX_DEFER_SHIFT && c.considered >= 1 << COMPACT_MAX_DEFER_SHIFT
    }

    /// Mirrors `pageblock_skip_persistent()`: `pfn` is part of a compound page of at least
    /// pageblock order (a hugetlb page, a THP), whose block stays skipped until it is freed.
    pub(crate) fn pageblock_skip_persistent(&self, pfn: Pfn) -> bool {
        let f = self.mem.flags(pfn);
        if !f.intersects(PageFlags::HEAD | PageFlags::TAIL) {
            return false;
        }
        let head = self.mem.compound_head(pfn);
        self.mem.flags(head).order() >= self.pageblock_order().0
    }

    /// Mirrors `__reset_isolation_pfn()`: true if the block holding `pfn` may restart a
    /// scanner. A block already clear counts when both checks are asked for; otherwise a
    /// page every `1 << PAGE_ALLOC_COSTLY_ORDER` of the block is sampled for an LRU page
    /// (`check_source`) or a free block's head (`check_target`), and the first found clears
    /// the block's skip hint. The free side picks only MOVABLE blocks until it has one.
    fn reset_isolation_pfn(&mut self, zi: ZoneIdx, pfn: Pfn, source: bool, target: bool) -> bool {
        if self.page_zone(pfn) != Some(zi) || self.pageblock_skip_persistent(pfn) {
            return false;
        }
        if source && target && !self.pageblocks.skip(pfn) {
            return true;
        }
        if !source && target && self.pageblocks.migratetype(pfn) != MigrateType::Movable {
            return false;
        }
        let pb = self.pageblock_order();
        let z = self.zone(zi);
        let start = pfn.align_down(pb).max(z.zone_start_pfn);
        let page = if self.page_zone(start).is_some() {
            start
        } else {
            pfn
        };
        let end = page.pageblock_end(pb).minus(1).min(z.end_pfn().minus(1));
        if self.page_zone(end).is_none() {
            return false;
        }
        let mut p = page;
        while p <= end {
            let lru = source
                && self
                    .mem
                    .flags(p)
                    .intersects(PageFlags::HEAD | PageFlags::TAIL | PageFlags::LRU)
                && self
                    .mem
                    .flags(self.mem.compound_head(p))
                    .contains(PageFlags::LRU);
            if lru || (target && self.mem.is_buddy(p)) {
                self.pageblocks.set_skip(p, false);
                return true;
            }
            p = p.plus(1 << PAGE_ALLOC_COSTLY_ORDER);
        }
        false
    }

    /// Mirrors `__reset_isolation_suitable()` when `compact_blockskip_flush` is set (a
    /// whole-zone compaction met its scanners since): the zone is walked from both ends a
    /// pageblock at a time, the migrate side clearing the skip hint of blocks whose samples
    /// show an LRU page, the free side of blocks whose samples show a free page; each
    /// scanner restarts at the first block its side cleared (no distance between them if
    /// neither found one). Hints of other blocks stay set.
    pub fn reset_isolation_suitable_zone(&mut self, zi: ZoneIdx) {
        if !self.zones[zi.idx()].compact.blockskip_flush {
            return;
        }
        self.zones[zi.idx()].compact.blockskip_flush = false;
        let nr = self.pageblock_order().nr_pages();
        let (start, end) = (self.zone(zi).zone_start_pfn, self.zone(zi).end_pfn());
        let (mut migrate_pfn, mut free_pfn) = (start, end.minus(1));
        let (mut reset_migrate, mut reset_free) = (free_pfn, migrate_pfn);
        let (mut source_set, mut free_set) = (false, false);
        while migrate_pfn < free_pfn {
            if self.reset_isolation_pfn(zi, migrate_pfn, true, source_set)
                && migrate_pfn < reset_migrate
            {
                source_set = true;
                reset_migrate = migrate_pfn;
                let c = &mut self.zones[zi.idx()].compact;
                c.init_migrate_pfn = migrate_pfn;
                c.cached_migrate_pfn = [migrate_pfn, migrate_pfn];
            }
            if self.reset_isolation_pfn(zi, free_pfn, free_set, true) && free_pfn > reset_free {
                free_set = true;
                reset_free = free_pfn;
                let c = &mut self.zones[zi.idx()].compact;
                c.init_free_pfn = free_pfn;
                c.cached_free_pfn = free_pfn;
            }
            migrate_pfn = migrate_pfn.plus(nr);
            free_pfn = Pfn(free_pfn.0.saturating_sub(nr));
        }
        if reset_migrate >= reset_free {
            let c = &mut self.zones[zi.idx()].compact;
            c.cached_migrate_pfn = [migrate_pfn, migrate_pfn];
            c.cached_free_pfn = free_pfn;
        }
    }
}
