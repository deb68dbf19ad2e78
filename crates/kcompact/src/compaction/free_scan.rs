//! The free scanner: from the zone's end downward, isolate free blocks to migrate into.

use super::CompactControl;
use crate::event::VmEvent;
use crate::event::{IsolateRange, Tracepoint};
use crate::machine::Machine;
use crate::memmap::{MigrateType, PageFlags};
use crate::migrate::{MigrateMode, MigrationTarget};
use crate::units::{Order, Pfn, MAX_PAGE_ORDER};
use crate::zone::Wmark;

impl Machine {
    /// Mirrors `suitable_migration_target()`.
    fn suitable_migration_target(&self, cc: &CompactControl, pfn: Pfn) -> bool {
        if self.mem.is_buddy(pfn) {
            let want = match cc.order {
                Some(o) if o.0 > 0 => o.0,
                _ => self.pageblock_order().0,
            };
            if self.mem.buddy_order(pfn).0 >= want {
                return false;
            }
        }
        if cc.ignore_block_suitable {
            return true;
        }
        self.pageblocks.migratetype(pfn).is_movable()
    }

    /// Mirrors `__isolate_free_page()`: takes a free block off its list if the zone stays
    /// above MIN + the block; blocks of at least half a pageblock turn their mergeable
    /// pageblocks MOVABLE. Returns the pages taken (0 on a watermark failure).
    pub(crate) fn isolate_free_page(&mut self, pfn: Pfn, order: Order) -> u64 {
        let zi = self.page_zone(pfn).expect("free page in a zone");
        let mt = self.pageblocks.migratetype(pfn);
        if mt != MigrateType::Isolate {
            let z = self.zone(zi);
            let mark = z.watermark[Wmark::Min as usize] + order.nr_pages();
            if !crate::buddy::watermark::zone_watermark_ok(
                z,
                Order(0),
                mark,
                crate::layout::ZoneType::Dma,
                crate::gfp::AllocFlags::CMA,
                self.config.config_cma,
            ) {
                return 0;
            }
        }
        self.del_from_free_list(zi, pfn, order, mt);
        self.account_freepages(zi, -(order.nr_pages() as i64), mt);
        let pb = self.pageblock_order();
        if order.0 + 1 >= pb.0 {
            let end = pfn.plus(order.nr_pages());
            let mut p = pfn;
            while p < end {
                let bmt = self.pageblocks.migratetype(p);
                if bmt.is_mergeable() {
                    self.move_freepages_block(zi, p, bmt, MigrateType::Movable);
                }
                p = p.align_down(pb).plus(pb.nr_pages());
            }
        }
        order.nr_pages()
    }

    /// Puts an isolated free block on the control's lists: whole at its order (Linux 6.9+),
    /// or as order-0 pages (`folio_compaction=split`: `split_map_pages()` before 6.9).
    fn keep_free_page(&self, cc: &mut CompactControl, pfn: Pfn, order: Order) {
        if self.config.folio_compaction == crate::sysctl::FolioCompaction::Split {
            cc.freepages[0].extend((0..order.nr_pages()).map(|i| pfn.plus(i)));
        } else {
            cc.freepages[order.idx()].push(pfn);
        }
    }

    /// Mirrors `update_pageblock_skip()` on the free side.
    fn update_pageblock_skip_free(&mut self, cc: &CompactControl, block: Pfn, pfn: Pfn) {
        if cc.no_set_skip_hint {
            return;
        }
        self.pageblocks.set_skip(block, true);
        let c = &mut self.zones[cc.zone.idx()].compact;
        if pfn < c.cached_free_pfn {
            c.cached_free_pfn = pfn;
        }
    }

    /// Mirrors `isolate_freepages_block()` (not strict): scans `[*start, end)` with
    /// `stride`, isolating free blocks whole until the migrate side's needs are met.
    fn isolate_freepages_block(
        &mut self,
        cc: &mut CompactControl,
        start: &mut Pfn,
        end: Pfn,
        stride: u64,
    ) -> u64 {
        let mut blockpfn = *start;
        let (mut nr_scanned, mut total) = (0u64, 0u64);
        while blockpfn < end {
            nr_scanned += 1;
            let f = self.mem.flags(blockpfn);
            if f.contains(PageFlags::HEAD) {
                let o = f.order();
                if o <= MAX_PAGE_ORDER && blockpfn.plus(1u64 << o) <= end {
                    blockpfn = blockpfn.plus((1u64 << o) - 1);
                    nr_scanned += (1u64 << o) - 1;
                }
            } else if f.contains(PageFlags::BUDDY) {
                let o = Order(f.order());
                let got = self.isolate_free_page(blockpfn, o);
                if got == 0 {
                    break;
                }
                nr_scanned += got - 1;
                total += got;
                cc.nr_freepages += got;
                self.keep_free_page(cc, blockpfn, o);
                if cc.nr_migratepages <= cc.nr_freepages {
                    blockpfn = blockpfn.plus(got);
                    break;
                }
                blockpfn = blockpfn.plus(got - 1);
            }
            blockpfn = blockpfn.plus(stride);
        }
        if blockpfn > end {
            blockpfn = end;
        }
        let s = *start;
        self.trace_event(|| {
            Tracepoint::IsolateFreepages(IsolateRange {
                start_pfn: s,
                end_pfn: blockpfn,
                nr_scanned,
                nr_taken: total,
            })
        });
        *start = blockpfn;
        cc.total_free_scanned += nr_scanned;
        self.vmstat[VmEvent::CompactIsolated] += total;
        total
    }

    /// Mirrors `next_search_order()`: the orders below the request, round-robin from
    /// `search_order`; -1 once around.
    fn next_search_order(cc: &mut CompactControl, order: i32) -> i32 {
        let mut o = order - 1;
        if o < 0 {
            o = cc.order_int() - 1;
        }
        if o == cc.search_order {
            cc.search_order -= 1;
            if cc.search_order < 0 {
                cc.search_order = cc.order_int() - 1;
            }
            return -1;
        }
        o
    }

    /// Mirrors `fast_isolate_freepages()`: for a high-order request, take a free block of a
    /// lower order from the movable free lists, preferring the top quarter of the range
    /// between the scanners (the upper half is acceptable), then isolate around it.
    fn fast_isolate_freepages(&mut self, cc: &mut CompactControl) {
        let pb = self.pageblock_order();
        let zi = cc.zone;
        if cc.order.is_none_or(|o| o.0 == 0) {
            return;
        }
        let zone_start = self.zone(zi).zone_start_pfn;
        let mut limit = (cc.freelist_scan_limit() >> 1).max(1);
        let mut scan_start = false;
        if cc.free_pfn >= self.zone(zi).compact.init_free_pfn {
            limit = pb.nr_pages() >> 1;
            scan_start = true;
        }
        // Unsigned arithmetic as in C: once the scanners have crossed during a migration,
        // the distance wraps and no free page qualifies.
        let distance = cc.free_pfn.0.wrapping_sub(cc.migrate_pfn.0);
        let mut low_pfn = Pfn(cc.free_pfn.0.wrapping_sub(distance / 4)).align_down(pb);
        let min_pfn = Pfn(cc.free_pfn.0.wrapping_sub(distance / 2)).align_down(pb);
        if min_pfn > low_pfn {
            low_pfn = min_pfn;
        }
        cc.search_order = cc.search_order.min(cc.order_int() - 1);
        let (mut nr_scanned, mut total) = (0u64, 0u64);
        let mut highest = Pfn(0);
        let mut page: Option<Pfn> = None;
        let mut o = cc.search_order;
        while page.is_none() && o >= 0 {
            let mut order_scanned = 0u64;
            let mut high_pfn = Pfn(0);
            if self.zones[zi.idx()].free_area[o as usize].nr_free > 0 {
                let entries: Vec<Pfn> = self.zones[zi.idx()].free_area[o as usize].free_list
                    [MigrateType::Movable.idx()]
                .iter_rev(&self.mem)
                .take(limit as usize)
                .collect();
                let mut last = None;
                for fp in entries {
                    last = Some(fp);
                    order_scanned += 1;
                    nr_scanned += 1;
                    if fp >= highest {
                        highest = fp.align_down(pb).max(zone_start);
                    }
                    if fp >= low_pfn {
                        cc.fast_search_fail = 0;
                        cc.search_order = o;
                        page = Some(fp);
                        break;
                    }
                    if fp >= min_pfn && fp > high_pfn {
                        high_pfn = fp;
                        limit >>= 1;
                    }
                    if order_scanned >= limit {
                        break;
                    }
                }
                if page.is_none() && high_pfn.0 != 0 {
                    page = Some(high_pfn);
                    last = Some(high_pfn);
                }
                if let Some(fp) = last {
                    self.zones[zi.idx()].free_area[o as usize].free_list
                        [MigrateType::Movable.idx()]
                    .rotate_to_head(&mut self.mem, fp);
                }
                if let Some(p) = page {
                    let got = self.isolate_free_page(p, Order(o as u8));
                    if got > 0 {
                        nr_scanned += got - 1;
                        total += got;
                        cc.nr_freepages += got;
                        self.keep_free_page(cc, p, Order(o as u8));
                        self.vmstat[VmEvent::CompactIsolated] += got;
                    } else {
                        o = cc.search_order + 1;
                        page = None;
                    }
                }
                if cc.nr_freepages >= cc.nr_migratepages {
                    break;
                }
                if order_scanned >= limit {
                    limit = (limit >> 1).max(1);
                }
            }
            o = Self::next_search_order(cc, o);
        }
        let fp = cc.free_pfn;
        self.trace_event(|| {
            Tracepoint::FastIsolateFreepages(IsolateRange {
                start_pfn: min_pfn,
                end_pfn: fp,
                nr_scanned,
                nr_taken: total,
            })
        });
        if page.is_none() {
            cc.fast_search_fail += 1;
            if scan_start {
                if highest >= min_pfn {
                    page = Some(highest);
                    cc.free_pfn = highest;
                } else if cc.direct_compaction && self.page_zone(min_pfn) == Some(zi) {
                    if self.suitable_migration_target(cc, min_pfn) {
                        page = Some(min_pfn);
                    }
                    cc.free_pfn = min_pfn;
                }
            }
        }
        let c = &mut self.zones[zi.idx()].compact;
        if highest.0 != 0 && highest >= c.cached_free_pfn {
            c.cached_free_pfn = Pfn(highest.0.saturating_sub(pb.nr_pages()));
        }
        cc.total_free_scanned += nr_scanned;
        if let Some(p) = page {
            self.fast_isolate_around(cc, p);
        }
    }

    /// Mirrors `fast_isolate_around()`: isolate the rest of the pageblock a fast search hit.
    fn fast_isolate_around(&mut self, cc: &mut CompactControl, pfn: Pfn) {
        if cc.nr_freepages >= cc.nr_migratepages
            || (cc.direct_compaction && cc.mode == MigrateMode::Async)
        {
            return;
        }
        let pb = self.pageblock_order();
        let z = self.zone(cc.zone);
        let mut s = pfn.align_down(pb).max(z.zone_start_pfn);
        let e = pfn
            .plus(1)
            .align_down(pb)
            .plus(pb.nr_pages())
            .min(z.end_pfn());
        if self.page_zone(s) != Some(cc.zone) || self.page_zone(e.minus(1)) != Some(cc.zone) {
            return;
        }
        self.isolate_freepages_block(cc, &mut s, e, 1);
        if s == e && !cc.no_set_skip_hint {
            self.pageblocks.set_skip(e.minus(1), true);
        }
    }

    /// Mirrors `isolate_freepages()`: the fast search first; then pageblocks from
    /// `cc.free_pfn` downward to the migrate scanner's block, MOVABLE (or CMA) targets only.
    pub(crate) fn isolate_freepages(&mut self, cc: &mut CompactControl) {
        self.fast_isolate_freepages(cc);
        if cc.nr_freepages != 0 {
            return;
        }
        let pb = self.pageblock_order();
        let zone_end = self.zone(cc.zone).end_pfn();
        let mut isolate_start = cc.free_pfn;
        let mut block_start = isolate_start.align_down(pb);
        let mut block_end = block_start.plus(pb.nr_pages()).min(zone_end);
        let low_pfn = cc.migrate_pfn.pageblock_end(pb);
        let mut stride: u64 = if cc.mode == MigrateMode::Async { 32 } else { 1 };
        loop {
            if block_start < low_pfn {
                break;
            }
            let in_zone = self.page_zone(block_start) == Some(cc.zone)
                && self.page_zone(block_end.minus(1)) == Some(cc.zone);
            if in_zone
                && self.suitable_migration_target(cc, block_start)
                && (cc.ignore_skip_hint || !self.pageblocks.skip(block_start))
            {
                let n = self.isolate_freepages_block(cc, &mut isolate_start, block_end, stride);
                if isolate_start == block_end {
                    let below = Pfn(block_start.0.saturating_sub(pb.nr_pages()));
                    self.update_pageblock_skip_free(cc, block_start, below);
                }
                if cc.nr_freepages >= cc.nr_migratepages {
                    if isolate_start >= block_end {
                        isolate_start = Pfn(block_start.0.saturating_sub(pb.nr_pages()));
                    }
                    break;
                } else if isolate_start < block_end {
                    break;
                }
                stride = if n > 0 { 1 } else { (stride * 2).min(32) };
            }
            if block_start.0 < pb.nr_pages() {
                isolate_start = Pfn(0);
                break;
            }
            block_end = block_start;
            block_start = block_start.minus(pb.nr_pages());
            isolate_start = block_start;
        }
        cc.free_pfn = isolate_start;
    }
}

/// `compaction_alloc()` / `compaction_free()`: the control is migration's target.
impl MigrationTarget for CompactControl {
    fn get_new_folio(&mut self, m: &mut Machine, _src: Pfn, order: Order) -> Option<Pfn> {
        let mut has_isolated = false;
        loop {
            if let Some(p) = take_from_order_lists(&mut self.freepages, order) {
                self.nr_freepages -= order.nr_pages();
                self.nr_migratepages = self.nr_migratepages.saturating_sub(order.nr_pages());
                m.mem.prep_allocated(p, order, order.0 > 0);
                return Some(p);
            }
            if has_isolated {
                return None;
            }
            m.isolate_freepages(self);
            has_isolated = true;
        }
    }

    fn put_new_folio(&mut self, m: &mut Machine, dst: Pfn, order: Order) {
        let rc = m.mem.refcount(dst);
        m.mem.set_refcount(dst, rc - 1);
        if rc == 1 {
            m.mem.clear_block(dst, order);
            self.freepages[order.idx()].push(dst);
            self.nr_freepages += order.nr_pages();
        }
        self.nr_migratepages += order.nr_pages();
    }
}

/// The per-order part of `compaction_alloc()`: takes a block of at least `order` from
/// isolated free lists kept per order (the smallest that fits) and puts what is left
/// above `order` back, split as `expand()` would. The caller prepares the page.
pub fn take_from_order_lists(
    lists: &mut [Vec<Pfn>; crate::units::NR_PAGE_ORDERS],
    order: Order,
) -> Option<Pfn> {
    let start =
        (order.0..=crate::units::MAX_PAGE_ORDER).find(|o| !lists[*o as usize].is_empty())?;
    let p = lists[start as usize].pop().expect("non-empty");
    let mut o = start;
    while o > order.0 {
        o -= 1;
        lists[o as usize].push(p.plus(1 << o));
    }
    Some(p)
}
