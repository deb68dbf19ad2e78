//! Deferral after failures, and the reset of skip hints.

use crate::event::{Defer, Tracepoint};
use crate::machine::Machine;
use crate::units::ZoneIdx;

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

    /// Mirrors `__reset_isolation_suitable()` when `compact_blockskip_flush` is set: the
    /// zone's skip hints are cleared and the cached scanner positions go back to the ends.
    ///
    /// DEVIATION(linux): every skip bit is cleared and the scanners restart at the zone's
    /// ends; Linux samples blocks from both ends and restarts each scanner at the first
    /// block worth scanning (`__reset_isolation_pfn()`).
    pub fn reset_isolation_suitable_zone(&mut self, zi: ZoneIdx) {
        if !self.zones[zi.idx()].compact.blockskip_flush {
            return;
        }
        self.zones[zi.idx()].compact.blockskip_flush = false;
        let pb = self.pageblock_order();
        let (start, end) = (self.zone(zi).zone_start_pfn, self.zone(zi).end_pfn());
        let mut p = start.align_down(pb);
        while p < end {
            self.pageblocks.set_skip(p, false);
            p = p.plus(pb.nr_pages());
        }
        let last = end.minus(1).align_down(pb);
        let c = &mut self.zones[zi.idx()].compact;
        c.init_migrate_pfn = start;
        c.cached_migrate_pfn = [start, start];
        c.init_free_pfn = last;
        c.cached_free_pfn = last;
    }
}
