//! Whether compaction is worth running, and when it is done.

use super::{compact_gap, CompactControl, CompactResult};
use crate::buddy::rmqueue::Fallback;
use crate::buddy::watermark::zone_watermark_ok_free;
use crate::event::{Tracepoint, ZoneResult};
use crate::gfp::AllocFlags;
use crate::layout::ZoneType;
use crate::machine::Machine;
use crate::memmap::MigrateType;
use crate::units::{Order, ZoneIdx, MAX_PAGE_ORDER, PAGE_ALLOC_COSTLY_ORDER};
use crate::views::extfrag::{extfrag_for_order, fragmentation_index, ContigPageInfo};
use crate::zone::Wmark;

impl Machine {
    /// Mirrors `fragmentation_index()` of a zone for `order`.
    pub fn fragmentation_index(&self, zi: ZoneIdx, order: Order) -> i64 {
        let nr_free = self.zone(zi).free_by_order();
        fragmentation_index(order, &ContigPageInfo::new(&nr_free, order))
    }

    /// Mirrors `fragmentation_score_zone()`: `extfrag_for_order()` at the THP order.
    pub fn fragmentation_score_zone(&self, zi: ZoneIdx) -> u64 {
        extfrag_for_order(
            &self.zone(zi).free_by_order(),
            Order(super::COMPACTION_HPAGE_ORDER as u8),
        )
    }

    /// Mirrors `__compaction_suitable()`: enough order-0 free pages (CMA included) above
    /// `watermark` plus the compaction gap (plus LOW − MIN for costly orders) to compact.
    pub fn __compaction_suitable(
        &self,
        zi: ZoneIdx,
        order: i32,
        watermark: u64,
        highest: ZoneType,
        free_pages: u64,
    ) -> bool {
        let z = self.zone(zi);
        let mut mark = watermark + compact_gap(order);
        if order > PAGE_ALLOC_COSTLY_ORDER as i32 {
            mark += z.low_wmark_pages() - z.min_wmark_pages();
        }
        zone_watermark_ok_free(
            z,
            Order(0),
            mark,
            highest,
            AllocFlags::CMA,
            free_pages as i64,
            self.config.config_cma,
        )
    }

    /// Mirrors `compaction_suitable()`: the watermark test, then for costly orders the
    /// fragmentation index: a failure for lack of memory (index in 0..=extfrag_threshold)
    /// is not compaction's to fix.
    pub fn compaction_suitable(
        &mut self,
        zi: ZoneIdx,
        order: i32,
        watermark: u64,
        highest: ZoneType,
    ) -> bool {
        let mut suitable =
            self.__compaction_suitable(zi, order, watermark, highest, self.zone(zi).nr_free_pages);
        let mut result = if suitable {
            CompactResult::Continue
        } else {
            CompactResult::Skipped
        };
        if suitable && order > PAGE_ALLOC_COSTLY_ORDER as i32 {
            let fi = self.fragmentation_index(zi, Order(order as u8));
            if (0..=self.config.extfrag_threshold as i64).contains(&fi) {
                suitable = false;
                result = CompactResult::NotSuitableZone;
            }
        }
        let z = self.zone(zi);
        let zr = ZoneResult {
            node: z.node.0,
            zone: z.zone_type,
            order,
            ret: result,
        };
        self.trace_event(|| Tracepoint::Suitable(zr));
        suitable
    }

    /// Mirrors `compaction_suit_allocation_order()`: SUCCESS if the allocation would
    /// already succeed, SKIPPED if compaction cannot help, CONTINUE otherwise.
    #[allow(clippy::too_many_arguments)] // the kernel function's own parameters
    pub fn compaction_suit_allocation_order(
        &mut self,
        zi: ZoneIdx,
        order: i32,
        highest: ZoneType,
        alloc_flags: AllocFlags,
        is_async: bool,
        kcompactd: bool,
    ) -> CompactResult {
        let z = self.zone(zi);
        let free = if kcompactd && self.config.defrag_mode {
            z.nr_free_pages_blocks
        } else {
            z.nr_free_pages
        };
        let wm = z.wmark_pages(match alloc_flags.wmark() {
            0 => Wmark::Min,
            1 => Wmark::Low,
            _ => Wmark::High,
        });
        let cma = self.config.config_cma;
        if zone_watermark_ok_free(
            z,
            Order(order as u8),
            wm,
            highest,
            alloc_flags,
            free as i64,
            cma,
        ) {
            return CompactResult::Success;
        }
        if order > PAGE_ALLOC_COSTLY_ORDER as i32
            && is_async
            && !alloc_flags.has(AllocFlags::CMA)
            && !zone_watermark_ok_free(
                z,
                Order(0),
                wm + compact_gap(order),
                highest,
                AllocFlags::default(),
                z.nr_free_pages as i64,
                cma,
            )
        {
            return CompactResult::Skipped;
        }
        if !self.compaction_suitable(zi, order, wm, highest) {
            return CompactResult::Skipped;
        }
        CompactResult::Continue
    }

    /// Mirrors `compact_finished()`: `__compact_finished()` with NO_SUITABLE_PAGE read as
    /// CONTINUE.
    pub(crate) fn compact_finished(&mut self, cc: &mut CompactControl) -> CompactResult {
        let ret = self.__compact_finished(cc);
        let z = self.zone(cc.zone);
        let zr = ZoneResult {
            node: z.node.0,
            zone: z.zone_type,
            order: cc.order_int(),
            ret,
        };
        self.trace_event(|| Tracepoint::Finished(zr));
        if ret == CompactResult::NoSuitablePage {
            CompactResult::Continue
        } else {
            ret
        }
    }

    /// Mirrors `__compact_finished()`, its checks in the kernel's order.
    fn __compact_finished(&mut self, cc: &mut CompactControl) -> CompactResult {
        let pb = self.pageblock_order();
        let zi = cc.zone;
        if cc.scanners_met(pb) {
            // reset_cached_positions()
            let (start, end) = (self.zone(zi).zone_start_pfn, self.zone(zi).end_pfn());
            let c = &mut self.zones[zi.idx()].compact;
            c.cached_migrate_pfn = [start, start];
            c.cached_free_pfn = end.minus(1).align_down(pb);
            if cc.direct_compaction {
                c.blockskip_flush = true;
            }
            return if cc.whole_zone {
                CompactResult::Complete
            } else {
                CompactResult::PartialSkipped
            };
        }
        let mut ret;
        if cc.proactive_compaction {
            if self.kswapd_runnable(self.zone(zi).node) {
                return CompactResult::PartialSkipped;
            }
            let low = self.fragmentation_score_wmark(true);
            ret = if self.fragmentation_score_zone(zi) > low {
                CompactResult::Continue
            } else {
                CompactResult::Success
            };
        } else {
            let Some(order) = cc.order else {
                return CompactResult::Continue;
            };
            if !cc.migrate_pfn.is_aligned(pb) {
                return CompactResult::Continue;
            }
            let order = order.0;
            if self.config.defrag_mode && !cc.direct_compaction {
                let z = self.zone(zi);
                let ok = zone_watermark_ok_free(
                    z,
                    Order(order),
                    z.high_wmark_pages(),
                    cc.highest_zoneidx,
                    cc.alloc_flags,
                    z.nr_free_pages_blocks as i64,
                    self.config.config_cma,
                );
                return if ok {
                    CompactResult::Success
                } else {
                    CompactResult::Continue
                };
            }
            ret = CompactResult::NoSuitablePage;
            for o in order..=MAX_PAGE_ORDER {
                let area = &self.zone(zi).free_area[o as usize];
                if !area.free_list[cc.migratetype.idx()].is_empty() {
                    return CompactResult::Success;
                }
                if self.config.config_cma
                    && cc.migratetype == MigrateType::Movable
                    && !area.free_list[MigrateType::Cma.idx()].is_empty()
                {
                    return CompactResult::Success;
                }
                if let Fallback::Found(_) =
                    self.find_suitable_fallback(zi, Order(o), cc.migratetype, true)
                {
                    return CompactResult::Success;
                }
            }
        }
        if cc.contended {
            ret = CompactResult::Contended;
        }
        ret
    }

    /// Mirrors `fragmentation_score_wmark()` (mainline): the low mark is
    /// `max(100 − proactiveness, 5)`, the high one 10 above it, at most 100.
    pub fn fragmentation_score_wmark(&self, low: bool) -> u64 {
        let wl = 100u64
            .saturating_sub(self.config.compaction_proactiveness as u64)
            .max(5);
        if low {
            wl
        } else {
            (wl + 10).min(100)
        }
    }
}
