//! The migrate scanner: from the zone's start upward, isolate folios to move.

use super::{CompactControl, FastStart, COMPACT_CLUSTER_MAX};
use crate::event::VmEvent;
use crate::event::{IsolateRange, Tracepoint};
use crate::machine::Machine;
use crate::memmap::{MigrateType, PageFlags};
use crate::migrate::MigrateMode;
use crate::owners::table::FolioKind;
use crate::sysctl::SkipPinned;
use crate::units::{Order, Pfn, MAX_PAGE_ORDER};

/// Mirrors `isolate_migrate_t`.
///
/// DEVIATION(linux): no ISOLATE_ABORT: it comes from a fatal signal or an aborted lock
/// under contention, and the model has neither (one task, no locks).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IsolateMigrate {
    /// ISOLATE_NONE: nothing isolated; the scanner reached the free scanner.
    None,
    /// ISOLATE_SUCCESS: folios are on `cc.migratepages`.
    Success,
}

/// Mirrors `skip_isolation_on_order()`; before Linux 6.9 (`split`) every compound page
/// was skipped.
fn skip_isolation_on_order(order: u8, target: Option<Order>, pb: Order, split: bool) -> bool {
    (split && order > 0) || target.is_some_and(|t| order >= t.0) || order >= pb.0
}

impl Machine {
    /// Mirrors `isolation_suitable()`.
    fn isolation_suitable(&self, cc: &CompactControl, pfn: Pfn) -> bool {
        cc.ignore_skip_hint || !self.pageblocks.skip(pfn)
    }

    /// Mirrors `suitable_migration_source()`.
    fn suitable_migration_source(&self, cc: &CompactControl, pfn: Pfn) -> bool {
        if self.pageblock_skip_persistent(pfn) {
            return false;
        }
        if !cc.direct_compaction {
            return true;
        }
        let block_mt = self.pageblocks.migratetype(pfn);
        if block_mt == MigrateType::Cma && !cc.alloc_flags.has(crate::gfp::AllocFlags::CMA) {
            return false;
        }
        if cc.mode != MigrateMode::Async {
            return true;
        }
        if cc.migratetype == MigrateType::Movable || cc.order >= Some(self.pageblock_order()) {
            block_mt.is_movable()
        } else {
            block_mt == cc.migratetype
        }
    }

    /// Mirrors `test_and_set_skip()`: the pageblock of `pfn`'s skip bit before this call,
    /// setting it unless the control forbids it.
    fn test_and_set_skip(&mut self, cc: &CompactControl, pfn: Pfn) -> bool {
        let was = self.pageblocks.skip(pfn);
        if !was && !cc.no_set_skip_hint {
            self.pageblocks.set_skip(pfn, true);
        }
        was
    }

    /// Mirrors `update_cached_migrate()`: the cached start moves past the block (and one
    /// more: `pageblock_end_pfn()` of an aligned pfn is the next block's end).
    fn update_cached_migrate(&mut self, cc: &CompactControl, pfn: Pfn) {
        if cc.no_set_skip_hint {
            return;
        }
        let pb = self.pageblock_order();
        let pfn = pfn.pageblock_end(pb);
        let c = &mut self.zones[cc.zone.idx()].compact;
        if pfn > c.cached_migrate_pfn[0] {
            c.cached_migrate_pfn[0] = pfn;
        }
        if cc.mode != MigrateMode::Async && pfn > c.cached_migrate_pfn[1] {
            c.cached_migrate_pfn[1] = pfn;
        }
    }

    /// Mirrors `fast_find_migrateblock()`: for high-order requests, look on the movable
    /// free lists (orders below the request, down to 4) for a free page in the lower part of
    /// the zone: its pageblock is likely nearly free, so it is migrated first.
    fn fast_find_migrateblock(&mut self, cc: &mut CompactControl) -> Pfn {
        let pb = self.pageblock_order();
        let zi = cc.zone;
        let zone_start = self.zone(zi).zone_start_pfn;
        let limit = cc.freelist_scan_limit();
        let mut pfn = cc.migrate_pfn;
        if cc.ignore_skip_hint
            || cc.finish_pageblock
            || (pfn != zone_start && pfn != pfn.align_down(pb))
            || cc.order_int() <= crate::units::PAGE_ALLOC_COSTLY_ORDER as i32
            || (cc.direct_compaction
                && cc.migratetype != MigrateType::Movable
                && cc.order_int() < pb.0 as i32)
        {
            return pfn;
        }
        let mut distance = cc.free_pfn.0.wrapping_sub(cc.migrate_pfn.0) >> 1;
        if cc.migrate_pfn != zone_start {
            distance >>= 2;
        }
        let high_pfn = Pfn(cc.migrate_pfn.0.wrapping_add(distance)).align_down(pb);
        let mut nr_scanned = 0u64;
        let mut found = false;
        let mut o = cc.order_int() - 1;
        while o >= crate::units::PAGE_ALLOC_COSTLY_ORDER as i32 && !found && nr_scanned < limit {
            let area = &self.zones[zi.idx()].free_area[o as usize];
            if area.nr_free == 0 {
                o -= 1;
                continue;
            }
            // The walk stops after `limit` entries in all: no more are read.
            let entries: Vec<Pfn> = area.free_list[MigrateType::Movable.idx()]
                .iter(&self.mem)
                .take((limit - nr_scanned + 1) as usize)
                .collect();
            for fp in entries {
                let scanned = nr_scanned;
                nr_scanned += 1;
                if scanned >= limit {
                    self.zones[zi.idx()].free_area[o as usize].free_list
                        [MigrateType::Movable.idx()]
                    .rotate_through_to_tail(&mut self.mem, fp);
                    break;
                }
                if fp >= high_pfn {
                    continue;
                }
                if self.pageblocks.skip(fp) {
                    continue;
                }
                self.zones[zi.idx()].free_area[o as usize].free_list[MigrateType::Movable.idx()]
                    .rotate_through_to_tail(&mut self.mem, fp);
                cc.fast_start_pfn = match cc.fast_start_pfn {
                    FastStart::Unset => FastStart::Found(fp),
                    FastStart::Found(p) => FastStart::Found(p.min(fp)),
                    FastStart::Used => FastStart::Used,
                };
                pfn = fp.align_down(pb).max(zone_start);
                cc.fast_search_fail = 0;
                found = true;
                break;
            }
            o -= 1;
        }
        cc.total_migrate_scanned += nr_scanned;
        if !found {
            cc.fast_search_fail += 1;
            // reinit_migrate_pfn(): fall back once on the lowest free page seen.
            if let FastStart::Found(p) = cc.fast_start_pfn {
                cc.migrate_pfn = p;
                cc.fast_start_pfn = FastStart::Used;
            }
            pfn = cc.migrate_pfn;
        }
        pfn
    }

    /// Mirrors `isolate_migratepages()`: the fast search, then the next suitable pageblock
    /// below the free scanner is scanned for folios to isolate.
    pub(crate) fn isolate_migratepages(&mut self, cc: &mut CompactControl) -> IsolateMigrate {
        let pb = self.pageblock_order();
        let zone_start = self.zone(cc.zone).zone_start_pfn;
        let mut low_pfn = self.fast_find_migrateblock(cc);
        let mut block_start = low_pfn.align_down(pb).max(zone_start);
        let mut fast_find_block = low_pfn != cc.migrate_pfn && cc.fast_search_fail == 0;
        let mut block_end = low_pfn.pageblock_end(pb);
        while block_end <= cc.free_pfn {
            let page_ok = self.page_zone(block_start) == Some(cc.zone)
                && self.page_zone(block_end.minus(1)) == Some(cc.zone);
            let mut skip = !page_ok;
            if !skip
                && (low_pfn.is_aligned(pb) || low_pfn == zone_start)
                && !fast_find_block
                && !self.isolation_suitable(cc, block_start)
            {
                skip = true;
            }
            if !skip && !self.suitable_migration_source(cc, block_start) {
                self.update_cached_migrate(cc, block_end);
                skip = true;
            }
            if !skip {
                self.isolate_migratepages_block(cc, low_pfn, block_end);
                break;
            }
            fast_find_block = false;
            low_pfn = block_end;
            cc.migrate_pfn = low_pfn;
            block_start = block_end;
            block_end = block_end.plus(pb.nr_pages());
        }
        if cc.nr_migratepages > 0 {
            IsolateMigrate::Success
        } else {
            IsolateMigrate::None
        }
    }

    /// The pinned-page filter of `isolate_migratepages_block()`, the switch of seeds
    /// 000/001 (`skip_pinned`): true if the scanner must leave folio `id` at `pfn` alone
    /// because someone may hold it in place. `mapping` is true for a page-cache folio.
    /// The reference count read here is before the kernel's `folio_try_get()`.
    ///
    /// - `anon-only` (today's Linux, Rientjes 2014): an anonymous folio with more references
    ///   than mappings; page-cache folios are always tried.
    /// - `extra-refs` (Aziz 2023): any folio with references beyond the page cache's and
    ///   the mappings' (`page_has_extra_refs()`), except in ZONE_MOVABLE and CMA, where
    ///   pins are not allowed to stay.
    /// - `dma-pinned` (the reviewers' suggestion): `anon-only`, or any folio
    ///   `folio_maybe_dma_pinned()` says may be pinned.
    fn folio_pinned_for_compaction(
        &self,
        cc: &CompactControl,
        id: crate::owners::table::FolioId,
        pfn: Pfn,
        mapping: bool,
    ) -> bool {
        let (rc, mc) = (self.mem.refcount(pfn), self.mem.mapcount(pfn));
        match self.config.skip_pinned {
            SkipPinned::AnonOnly => !mapping && rc > mc,
            SkipPinned::ExtraRefs => {
                let zt = self.zone(cc.zone).zone_type;
                let exempt = zt == crate::layout::ZoneType::Movable
                    || self.pageblocks.migratetype(pfn) == MigrateType::Cma;
                !exempt && rc > self.folio_expected_ref_count(id)
            }
            SkipPinned::DmaPinned => (!mapping && rc > mc) || self.mem.maybe_dma_pinned(pfn),
        }
    }

    /// Mirrors `isolate_migratepages_block()`: scans `[low_pfn, end_pfn)` and isolates up to
    /// 32 pages of folios that can migrate, with every skip rule in the kernel's order.
    pub(crate) fn isolate_migratepages_block(
        &mut self,
        cc: &mut CompactControl,
        mut low_pfn: Pfn,
        end_pfn: Pfn,
    ) {
        let pb = self.pageblock_order();
        let start_pfn = low_pfn;
        cc.migrate_pfn = low_pfn;
        let (mut nr_scanned, mut nr_isolated) = (0u64, 0u64);
        let mut valid_page: Option<Pfn> = None;
        let mut skip_updated = false;
        let mut locked_once = false;
        let unevictable_ok = self.config.compact_unevictable_allowed;
        let split = self.config.folio_compaction == crate::sysctl::FolioCompaction::Split;
        let async_migrate = cc.mode != MigrateMode::Sync;
        let skip_on_failure = cc.direct_compaction && cc.mode == MigrateMode::Async;
        let skip_order = cc.order.unwrap_or(Order(0));
        let mut next_skip_pfn = low_pfn.block_end(skip_order);
        // DEVIATION(linux): too_many_isolated() is not modelled: one task isolates at most
        // 32 pages at a time and there are no other isolating tasks.
        'scan: while low_pfn < end_pfn {
            if skip_on_failure && low_pfn >= next_skip_pfn {
                if nr_isolated > 0 {
                    break;
                }
                next_skip_pfn = low_pfn.block_end(skip_order);
            }
            nr_scanned += 1;
            if valid_page.is_none()
                && (low_pfn.is_aligned(pb) || low_pfn == self.zone(cc.zone).zone_start_pfn)
            {
                if !self.isolation_suitable(cc, low_pfn) {
                    low_pfn = end_pfn;
                    break;
                }
                valid_page = Some(low_pfn);
            }
            let f = self.mem.flags(low_pfn);
            let failed = 'page: {
                // Pages skipped at once still count as scanned (nr_scanned += the rest
                // of the block), for hugetlb, free and compound pages alike.
                if f.contains(PageFlags::HEAD) && f.contains(PageFlags::HUGETLB) {
                    let rest = (1u64 << f.order()) - 1;
                    low_pfn = low_pfn.plus(rest);
                    nr_scanned += rest;
                    break 'page true;
                }
                if f.contains(PageFlags::BUDDY) {
                    let o = f.order();
                    if o > 0 && o <= MAX_PAGE_ORDER {
                        low_pfn = low_pfn.plus((1u64 << o) - 1);
                        nr_scanned += (1u64 << o) - 1;
                    }
                    break 'page false;
                }
                if f.intersects(PageFlags::HEAD | PageFlags::TAIL) {
                    let head = self.mem.compound_head(low_pfn);
                    let o = self.mem.flags(head).order();
                    if skip_isolation_on_order(o, cc.order, pb, split) {
                        // The kernel reads compound_order() of the page it stands on and
                        // skips that many pages from there.
                        let end = head.plus(1u64 << o);
                        nr_scanned += end.0 - 1 - low_pfn.0;
                        low_pfn = end.minus(1);
                        break 'page true;
                    }
                }
                let Some(id) = self.folio_of(low_pfn) else {
                    break 'page true;
                };
                if self.owners.folio(id).pfn != low_pfn {
                    // A tail page: folio_get_nontail_page() fails.
                    break 'page true;
                }
                if !f.contains(PageFlags::LRU) {
                    if self.page_has_movable_ops(id)
                        && !f.contains(PageFlags::ISOLATED)
                        && self.isolate_movable_ops_page(id)
                    {
                        let nr = self.owners.folio(id).order.nr_pages();
                        cc.migratepages.push(id);
                        cc.nr_migratepages += nr;
                        nr_isolated += nr;
                        nr_scanned += nr - 1;
                        low_pfn = low_pfn.plus(nr - 1);
                        if cc.nr_migratepages >= COMPACT_CLUSTER_MAX
                            && !cc.finish_pageblock
                            && !cc.contended
                        {
                            low_pfn = low_pfn.plus(1);
                            break 'scan;
                        }
                        break 'page false;
                    }
                    break 'page true;
                }
                if self.mem.refcount(low_pfn) == 0 {
                    break 'page true;
                }
                let rec = self.owners.folio(id);
                let mapping = rec.kind.in_page_cache() && !rec.orphan;
                if self.folio_pinned_for_compaction(cc, id, low_pfn, mapping) {
                    break 'page true;
                }
                if !cc.gfp_mask.contains(crate::gfp::Gfp::FS) && mapping {
                    break 'page true;
                }
                let unevict = f.contains(PageFlags::UNEVICTABLE);
                if !unevictable_ok && unevict {
                    break 'page true;
                }
                if async_migrate && f.contains(PageFlags::WRITEBACK) {
                    break 'page true;
                }
                let dirty = f.contains(PageFlags::DIRTY);
                if (async_migrate && dirty) || (mapping && unevict) {
                    if f.contains(PageFlags::LOCKED) {
                        break 'page true;
                    }
                    let migrate_dirty = !(async_migrate && dirty && mapping)
                        || self.owners.files[rec.owner as usize].has_migrate_folio;
                    if !migrate_dirty {
                        break 'page true;
                    }
                }
                if !locked_once {
                    locked_once = true;
                    // At the first LRU lock: someone else is scanning this block already.
                    if let Some(v) = valid_page.filter(|_| !cc.ignore_skip_hint) {
                        if self.test_and_set_skip(cc, v) && !cc.finish_pageblock {
                            low_pfn = end_pfn;
                            break 'scan;
                        }
                        skip_updated = true;
                    }
                    if skip_isolation_on_order(rec.order.0, cc.order, pb, split) && rec.order.0 > 0
                    {
                        low_pfn = low_pfn.plus(rec.order.nr_pages() - 1);
                        break 'page true;
                    }
                }
                if !self.folio_isolate_lru(id) {
                    break 'page true;
                }
                let nr = rec.order.nr_pages();
                low_pfn = low_pfn.plus(nr - 1);
                cc.migratepages.push(id);
                cc.nr_migratepages += nr;
                nr_isolated += nr;
                nr_scanned += nr - 1;
                if cc.nr_migratepages >= COMPACT_CLUSTER_MAX
                    && !cc.finish_pageblock
                    && !cc.contended
                {
                    low_pfn = low_pfn.plus(1);
                    break 'scan;
                }
                false
            };
            if failed && skip_on_failure {
                if nr_isolated > 0 {
                    let list = std::mem::take(&mut cc.migratepages);
                    self.putback_movable_pages(list);
                    cc.nr_migratepages = 0;
                    nr_isolated = 0;
                }
                if low_pfn < next_skip_pfn {
                    low_pfn = next_skip_pfn.minus(1);
                    next_skip_pfn = next_skip_pfn.plus(skip_order.nr_pages());
                }
            }
            low_pfn = low_pfn.plus(1);
        }
        if low_pfn > end_pfn {
            low_pfn = end_pfn;
        }
        if low_pfn == end_pfn && (nr_isolated == 0 || cc.finish_pageblock) {
            if !cc.no_set_skip_hint && !skip_updated {
                if let Some(v) = valid_page {
                    self.pageblocks.set_skip(v, true);
                }
            }
            self.update_cached_migrate(cc, end_pfn);
        }
        self.trace_event(|| {
            Tracepoint::IsolateMigratepages(IsolateRange {
                start_pfn,
                end_pfn: low_pfn,
                nr_scanned,
                nr_taken: nr_isolated,
            })
        });
        cc.total_migrate_scanned += nr_scanned;
        self.vmstat[VmEvent::CompactIsolated] += nr_isolated;
        cc.migrate_pfn = low_pfn;
    }
}

/// The folio kinds compaction can move.
pub fn migratable_kind(k: FolioKind) -> bool {
    k.is_lru() || k == FolioKind::Driver
}
