//! Memory compaction: move movable pages from the bottom of a zone to free pages at its
//! top, so free pages merge into large blocks.
//!
//! Mirrors `mm/compaction.c`. One [`CompactControl`] (`struct compact_control`) carries a
//! run's parameters and state; [`Machine::compact_zone`] drives the loop: `compact_finished`
//! → `isolate_migratepages` (the migrate scanner, from the zone's start) → `migrate_pages`
//! with `compaction_alloc` / `compaction_free` (the free scanner, from the zone's end) — until
//! the scanners meet or the requested order is free. The files follow the kernel's parts:
//!
//! - [`suitable`]: `compaction_suitable`, `compaction_suit_allocation_order`,
//!   `__compact_finished`, the fragmentation score.
//! - [`migrate_scan`]: `isolate_migratepages`, `isolate_migratepages_block`,
//!   `suitable_migration_source`, skip hints on the migrate side.
//! - [`free_scan`]: `isolate_freepages`, `isolate_freepages_block`, `__isolate_free_page`,
//!   `suitable_migration_target`, `compaction_alloc` / `compaction_free`.
//! - [`defer`]: `defer_compaction`, `compaction_deferred`, `compaction_defer_reset`,
//!   `compaction_restarting`, and the skip-bit reset.
//! - this file: the control, `compact_zone`, `compact_zone_order`, `try_to_compact_pages`,
//!   `compact_node`, `compact_memory`.

pub mod control;
pub mod defer;
pub mod free_scan;
pub mod kcompactd;
pub mod migrate_scan;
pub mod suitable;

pub use control::{
    compact_gap, CompactControl, CompactEnd, CompactPriority, CompactResult, FastStart,
    COMPACTION_HPAGE_ORDER, COMPACT_CLUSTER_MAX,
};

use crate::event::VmEvent;
use crate::event::{CompactionRun, Tracepoint};
use crate::gfp::{AllocFlags, Gfp};
use crate::layout::ZoneType;
use crate::machine::Machine;
use crate::migrate::{MigrateMode, MigrateReason};
use crate::mmzone::CaptureControl;
use crate::units::{Order, Pfn, ZoneIdx, NR_PAGE_ORDERS};

impl Machine {
    /// Mirrors `compaction_capture()` in `__free_one_page()`: a block of the order a direct
    /// compactor of this zone waits for is handed to it instead of the free lists.
    pub(crate) fn compaction_capture(
        &mut self,
        zi: ZoneIdx,
        pfn: Pfn,
        order: Order,
        mt: crate::memmap::MigrateType,
    ) -> bool {
        use crate::memmap::MigrateType;
        let pb = self.pageblock_order();
        let Some(capc) = &mut self.capture else {
            return false;
        };
        if capc.zone != Some(zi) || capc.page.is_some() || order != capc.order {
            return false;
        }
        if matches!(mt, MigrateType::Cma | MigrateType::Isolate) {
            return false;
        }
        if order < pb && mt == MigrateType::Movable && capc.migratetype != MigrateType::Movable {
            return false;
        }
        capc.page = Some(pfn);
        true
    }

    /// Mirrors `__alloc_pages_direct_compact()`: compact the request's zones at `prio`,
    /// capturing a freed block of the order wanted; counts `compact_stall`,
    /// `compact_success`, `compact_fail`. Returns the page (if any) and the result.
    pub fn alloc_pages_direct_compact(
        &mut self,
        gfp: Gfp,
        order: Order,
        alloc_flags: AllocFlags,
        ac: &crate::alloc::AllocContext,
        prio: CompactPriority,
    ) -> (Option<Pfn>, CompactResult) {
        use crate::memmap::MigrateType;
        let mut compact_order = order.0 as i32;
        if alloc_flags.has(AllocFlags::NOFRAGMENT) && ac.migratetype != MigrateType::Movable {
            compact_order = compact_order.max(self.pageblock_order().0 as i32);
        }
        if compact_order == 0 {
            return (None, CompactResult::Skipped);
        }
        self.capture = Some(CaptureControl {
            zone: None,
            migratetype: ac.migratetype,
            order,
            page: None,
        });
        let zonelist: Vec<ZoneIdx> = self.ac_zonelist(ac).to_vec();
        let mut result =
            self.try_to_compact_pages(gfp, compact_order, alloc_flags, &zonelist, ac.highest, prio);
        let capc = self.capture.take().expect("capture control");
        if capc.page.is_some() {
            result = CompactResult::Success;
        }
        // Linux 6.18 returns uncounted only when compaction was skipped: a deferred attempt
        // is a stall and a failure (later kernels leave those uncounted too). The H_g4_s1
        // case shows it: 4 stalls and 4 failures with no page scanned.
        if result == CompactResult::Skipped {
            return (None, result);
        }
        self.vmstat[VmEvent::CompactStall] += 1;
        let page = match capc.page {
            Some(p) => {
                self.vmstat[VmEvent::CompactCapture] += 1;
                self.mem.clear_block(p, order);
                self.mem.prep_allocated(p, order, gfp.contains(Gfp::COMP));
                Some(p)
            }
            None => self.get_page_from_freelist(gfp, order, alloc_flags, ac),
        };
        match page {
            Some(p) => {
                let zi = self.page_zone(p).expect("page in a zone");
                self.zones[zi.idx()].compact.blockskip_flush = false;
                self.compaction_defer_reset(zi, compact_order, true);
                self.vmstat[VmEvent::CompactSuccess] += 1;
                self.vmstat[VmEvent::Pgalloc] += order.nr_pages();
            }
            None => self.vmstat[VmEvent::CompactFail] += 1,
        }
        (page, result)
    }

    /// The tracepoints recorded so far as the kernel's trace text, one line each; tracing
    /// stays on with an empty record.
    pub fn take_trace_text(&mut self) -> Vec<String> {
        self.trace
            .as_mut()
            .map(|t| std::mem::take(t).iter().map(|e| e.to_string()).collect())
            .unwrap_or_default()
    }

    /// Records a tracepoint when tracing is on (`event` is built only then).
    pub(crate) fn trace_event(&mut self, event: impl FnOnce() -> Tracepoint) {
        if let Some(t) = &mut self.trace {
            t.push(event());
        }
    }

    /// Mirrors `compact_zone()`.
    pub fn compact_zone(&mut self, cc: &mut CompactControl) -> CompactResult {
        let pb = self.pageblock_order();
        let zi = cc.zone;
        cc.total_migrate_scanned = 0;
        cc.total_free_scanned = 0;
        cc.nr_migratepages = 0;
        cc.nr_freepages = 0;
        cc.migratetype = cc.gfp_mask.migratetype(!self.mobility_disabled);
        if let Some(order) = cc.order {
            let ret = self.compaction_suit_allocation_order(
                zi,
                order.0 as i32,
                cc.highest_zoneidx,
                cc.alloc_flags,
                cc.mode == MigrateMode::Async,
                !cc.direct_compaction,
            );
            if ret != CompactResult::Continue {
                return ret;
            }
        }
        if cc
            .order
            .is_some_and(|o| self.compaction_restarting(zi, o.0 as i32))
        {
            self.reset_isolation_suitable_zone(zi);
        }
        let (start, end) = (self.zone(zi).zone_start_pfn, self.zone(zi).end_pfn());
        let sync = (cc.mode != MigrateMode::Async) as usize;
        let last_block = end.minus(1).align_down(pb);
        if cc.whole_zone {
            cc.migrate_pfn = start;
            cc.free_pfn = last_block;
        } else {
            let c = &mut self.zones[zi.idx()].compact;
            cc.migrate_pfn = c.cached_migrate_pfn[sync];
            cc.free_pfn = c.cached_free_pfn;
            if cc.free_pfn < start || cc.free_pfn >= end {
                cc.free_pfn = last_block;
                c.cached_free_pfn = cc.free_pfn;
            }
            if cc.migrate_pfn < start || cc.migrate_pfn >= end {
                cc.migrate_pfn = start;
                c.cached_migrate_pfn = [start, start];
            }
            if cc.migrate_pfn <= c.init_migrate_pfn {
                cc.whole_zone = true;
            }
        }
        cc.fast_start_pfn = FastStart::Unset;
        let mut last_migrated_pfn = Pfn(0);
        let mut update_cached = sync == 0 && {
            let c = &self.zones[zi.idx()].compact;
            c.cached_migrate_pfn[0] == c.cached_migrate_pfn[1]
        };
        let run = |cc: &CompactControl| CompactionRun {
            zone_start: start,
            migrate_pfn: cc.migrate_pfn,
            free_pfn: cc.free_pfn,
            zone_end: end,
            sync: sync == 1,
        };
        self.trace_event(|| Tracepoint::CompactionBegin(run(cc)));
        let mut ret;
        // Every turn of the loop moves a scanner or migrates; bounding the turns makes a
        // missed termination a named failure instead of a hang.
        let max_turns = 4 * (end.0 - start.0) + 1_000_000;
        let mut turns = 0u64;
        'outer: loop {
            turns += 1;
            assert!(
                turns <= max_turns,
                "compact_zone makes no progress: zone {:?}..{:?}, migrate_pfn {:?}, free_pfn {:?}, order {}, nr_migratepages {}, nr_freepages {}",
                start,
                end,
                cc.migrate_pfn,
                cc.free_pfn,
                cc.order_int(),
                cc.nr_migratepages,
                cc.nr_freepages
            );
            ret = self.compact_finished(cc);
            if ret != CompactResult::Continue {
                break;
            }
            let iteration_start = cc.migrate_pfn;
            cc.finish_pageblock =
                last_migrated_pfn.align_down(pb) == iteration_start.align_down(pb);
            loop {
                match self.isolate_migratepages(cc) {
                    migrate_scan::IsolateMigrate::None => {
                        if update_cached {
                            let c = &mut self.zones[zi.idx()].compact;
                            c.cached_migrate_pfn[1] = c.cached_migrate_pfn[0];
                        }
                        // Nothing isolated, but an earlier block's migrations may still
                        // wait on this CPU's lists.
                        self.compact_check_drain(cc, &mut last_migrated_pfn);
                        continue 'outer;
                    }
                    migrate_scan::IsolateMigrate::Success => {
                        update_cached = false;
                        last_migrated_pfn = Pfn(cc.migrate_pfn.0.saturating_sub(1))
                            .align_down(pb)
                            .max(start);
                    }
                }
                let snapshot = cc.nr_migratepages;
                let list = std::mem::replace(
                    &mut cc.migratepages,
                    Vec::with_capacity(COMPACT_CLUSTER_MAX as usize),
                );
                let mode = cc.mode;
                let r = self.migrate_pages(list, cc, mode, MigrateReason::Compaction);
                let succeeded = r.stats.nr_succeeded;
                self.trace_event(|| Tracepoint::Migratepages {
                    nr_migrated: succeeded,
                    nr_failed: snapshot.saturating_sub(succeeded),
                });
                cc.nr_migratepages = 0;
                let failed = r.rc != Ok(0);
                self.putback_movable_pages(r.ret);
                if failed {
                    if r.rc.is_err() && !cc.scanners_met(pb) {
                        ret = CompactResult::Contended;
                        break 'outer;
                    }
                    if !cc.migrate_pfn.is_aligned(pb)
                        && !cc.ignore_skip_hint
                        && !cc.finish_pageblock
                        && cc.mode < MigrateMode::Sync
                    {
                        cc.finish_pageblock = true;
                        if cc.order_int() == COMPACTION_HPAGE_ORDER {
                            last_migrated_pfn = Pfn(0);
                        }
                        continue;
                    }
                }
                if self.capture.is_some_and(|c| c.page.is_some()) {
                    ret = CompactResult::Success;
                    break 'outer;
                }
                self.compact_check_drain(cc, &mut last_migrated_pfn);
                break;
            }
        }
        // release_free_list(): unused free pages go back to the buddy allocator.
        if cc.nr_freepages > 0 {
            let mut highest = Pfn(0);
            for o in 0..NR_PAGE_ORDERS {
                for p in std::mem::take(&mut cc.freepages[o]) {
                    highest = highest.max(p);
                    self.mem.prep_allocated(p, Order(o as u8), false);
                    self.free_pages(p, Order(o as u8));
                }
            }
            cc.nr_freepages = 0;
            let hp = highest.align_down(pb);
            let c = &mut self.zones[zi.idx()].compact;
            if hp > c.cached_free_pfn {
                c.cached_free_pfn = hp;
            }
        }
        self.vmstat[VmEvent::CompactMigrateScanned] += cc.total_migrate_scanned;
        self.vmstat[VmEvent::CompactFreeScanned] += cc.total_free_scanned;
        // The kernel's two VM_BUG_ONs on the way out: every isolated page was migrated or
        // put back, and every isolated free page went back to the buddy allocator.
        debug_assert!(
            cc.migratepages.is_empty(),
            "compact_zone ends with folios isolated"
        );
        debug_assert!(
            cc.nr_freepages == 0 && cc.freepages.iter().all(Vec::is_empty),
            "compact_zone ends with free pages isolated"
        );
        self.trace_event(|| Tracepoint::CompactionEnd(run(cc), ret));
        ret
    }

    /// The `check_drain` step of `compact_zone()`: once a high-order request's migrate
    /// scanner has left the `2^order` block it last migrated from, the pages the migration
    /// freed onto this CPU's lists go back to the buddy allocator (`lru_add_drain_cpu_zone()`
    /// → `drain_local_pages()`), so they can merge and `compact_finished()` sees them.
    /// `compact_memory` (no order) never drains.
    fn compact_check_drain(&mut self, cc: &CompactControl, last_migrated_pfn: &mut Pfn) {
        let Some(order) = cc.order.filter(|o| o.0 > 0) else {
            return;
        };
        if *last_migrated_pfn == Pfn(0) {
            return;
        }
        if *last_migrated_pfn < cc.migrate_pfn.align_down(order) {
            self.drain_local_pages(Some(cc.zone));
            *last_migrated_pfn = Pfn(0);
        }
    }

    /// Mirrors `compact_zone_order()`: a direct compaction attempt on one zone.
    pub fn compact_zone_order(
        &mut self,
        zi: ZoneIdx,
        order: i32,
        gfp: Gfp,
        prio: CompactPriority,
        alloc_flags: AllocFlags,
        highest: ZoneType,
    ) -> CompactResult {
        let mode = if prio == CompactPriority::Async {
            MigrateMode::Async
        } else {
            MigrateMode::SyncLight
        };
        let mut cc = CompactControl::new(zi, Some(Order(order as u8)), gfp, mode);
        cc.alloc_flags = alloc_flags;
        cc.highest_zoneidx = highest;
        cc.direct_compaction = true;
        let full = prio == CompactPriority::SyncFull;
        cc.whole_zone = full;
        cc.ignore_skip_hint = full;
        cc.ignore_block_suitable = full;
        self.compact_zone(&mut cc)
    }

    /// Mirrors `try_to_compact_pages()`: direct compaction over the zones a request may
    /// use, with deferral; returns the best result.
    pub fn try_to_compact_pages(
        &mut self,
        gfp: Gfp,
        order: i32,
        alloc_flags: AllocFlags,
        zonelist: &[ZoneIdx],
        highest: ZoneType,
        prio: CompactPriority,
    ) -> CompactResult {
        if !self.config.compaction || !gfp.contains(Gfp::IO) {
            return CompactResult::Skipped;
        }
        let mut rc = CompactResult::Skipped;
        self.trace_event(|| Tracepoint::TryToCompactPages {
            order,
            gfp_mask: gfp.symbolic(),
            priority: prio as i32,
        });
        for &zi in zonelist {
            if self.zone(zi).zone_type > highest {
                continue;
            }
            if prio > CompactPriority::SyncFull && self.compaction_deferred(zi, order) {
                rc = rc.max(CompactResult::Deferred);
                continue;
            }
            if let Some(c) = &mut self.capture {
                c.zone = Some(zi);
            }
            let mut status = self.compact_zone_order(zi, order, gfp, prio, alloc_flags, highest);
            if let Some(c) = &mut self.capture {
                c.zone = None;
                if c.page.is_some() {
                    status = CompactResult::Success;
                }
            }
            rc = rc.max(status);
            if status == CompactResult::Success {
                self.compaction_defer_reset(zi, order, false);
                break;
            }
            if prio != CompactPriority::Async
                && matches!(
                    status,
                    CompactResult::Complete | CompactResult::PartialSkipped
                )
            {
                self.defer_compaction(zi, order);
            }
        }
        rc
    }

    /// Mirrors `compact_node()`: every populated zone of `node` compacted as
    /// `/proc/sys/vm/compact_memory` does (order −1, SYNC, whole zone, skip hints ignored),
    /// or as proactive compaction does (SYNC_LIGHT). Returns each zone's end.
    pub fn compact_node(&mut self, node: crate::units::NodeId, proactive: bool) -> Vec<CompactEnd> {
        let mut ends = Vec::new();
        if !self.config.compaction {
            return ends;
        }
        let mode = if proactive {
            MigrateMode::SyncLight
        } else {
            MigrateMode::Sync
        };
        let first = self.zone_of(node, ZoneType::Dma);
        let mut cc = CompactControl::new(first, None, Gfp::GFP_KERNEL, mode);
        cc.ignore_skip_hint = true;
        cc.whole_zone = true;
        cc.proactive_compaction = proactive;
        for zt in ZoneType::ALL {
            let zi = self.zone_of(node, zt);
            if !self.zone(zi).is_populated() {
                continue;
            }
            cc.zone = zi;
            let status = self.compact_zone(&mut cc);
            if proactive {
                self.vmstat[VmEvent::CompactDaemonMigrateScanned] += cc.total_migrate_scanned;
                self.vmstat[VmEvent::CompactDaemonFreeScanned] += cc.total_free_scanned;
            }
            ends.push(CompactEnd {
                zone: zi,
                status,
                migrate_pfn: cc.migrate_pfn,
                free_pfn: cc.free_pfn,
                migrate_scanned: cc.total_migrate_scanned,
                free_scanned: cc.total_free_scanned,
            });
        }
        ends
    }

    /// Mirrors a write of 1 to `/proc/sys/vm/compact_memory` (`compact_nodes()`). Returns
    /// each compacted zone's end.
    pub fn compact_memory(&mut self) -> Vec<CompactEnd> {
        let mut ends = Vec::new();
        for n in 0..self.nr_nodes() {
            ends.extend(self.compact_node(crate::units::NodeId(n as u8), false));
        }
        ends
    }
}
