//! Freeing and merging, and moving free pages between migratetypes.

use super::FreeFlags;
use crate::machine::Machine;
use crate::memmap::MigrateType;
use crate::units::{Order, Pfn, ZoneIdx, MAX_PAGE_ORDER};

impl Machine {
    /// Mirrors `account_freepages()`: NR_FREE_PAGES and the CMA / highatomic counts follow
    /// pages entering (`nr > 0`) or leaving the free lists of type `mt`. Isolated pages are
    /// not counted.
    pub(crate) fn account_freepages(&mut self, zi: ZoneIdx, nr: i64, mt: MigrateType) {
        if mt == MigrateType::Isolate {
            return;
        }
        let z = &mut self.zones[zi.idx()];
        z.nr_free_pages = add_signed(z.nr_free_pages, nr);
        match mt {
            MigrateType::Cma => z.nr_free_cma = add_signed(z.nr_free_cma, nr),
            MigrateType::HighAtomic => z.nr_free_highatomic = add_signed(z.nr_free_highatomic, nr),
            _ => {}
        }
    }

    /// Mirrors `__add_to_free_list()` + `set_buddy_order()`: `pfn` becomes a free block head
    /// of `order` on `free_list[mt]`, at the head or the tail.
    pub(crate) fn add_to_free_list(
        &mut self,
        zi: ZoneIdx,
        pfn: Pfn,
        order: Order,
        mt: MigrateType,
        tail: bool,
    ) {
        debug_assert!(
            pfn.is_aligned(order),
            "{pfn:?} not aligned to order {order}"
        );
        debug_assert_eq!(
            self.pageblocks.migratetype(pfn),
            mt,
            "{pfn:?}: free list type differs from its pageblock"
        );
        self.mem.set_buddy(pfn, order);
        let z = &mut self.zones[zi.idx()];
        let area = &mut z.free_area[order.idx()];
        if tail {
            area.free_list[mt.idx()].push_tail(&mut self.mem, pfn);
        } else {
            area.free_list[mt.idx()].push_head(&mut self.mem, pfn);
        }
        area.nr_free += 1;
        if order >= self.pageblocks.order() && mt != MigrateType::Isolate {
            z.nr_free_pages_blocks += order.nr_pages();
        }
    }

    /// Mirrors `__del_page_from_free_list()`: unlinks a free block head and clears its buddy
    /// state. NR_FREE_PAGES is the caller's business.
    pub(crate) fn del_from_free_list(
        &mut self,
        zi: ZoneIdx,
        pfn: Pfn,
        order: Order,
        mt: MigrateType,
    ) {
        debug_assert!(self.mem.is_buddy(pfn) && self.mem.buddy_order(pfn) == order);
        let z = &mut self.zones[zi.idx()];
        let area = &mut z.free_area[order.idx()];
        area.free_list[mt.idx()].remove(&mut self.mem, pfn);
        area.nr_free -= 1;
        if order >= self.pageblocks.order() && mt != MigrateType::Isolate {
            z.nr_free_pages_blocks -= order.nr_pages();
        }
        self.mem.clear_buddy(pfn);
    }

    /// Mirrors `move_to_free_list()`: moves a free block to the tail of another type's list
    /// at the same order, with the accounting following it.
    pub(crate) fn move_to_free_list(
        &mut self,
        zi: ZoneIdx,
        pfn: Pfn,
        order: Order,
        old: MigrateType,
        new: MigrateType,
    ) {
        let z = &mut self.zones[zi.idx()];
        let area = &mut z.free_area[order.idx()];
        area.free_list[old.idx()].remove(&mut self.mem, pfn);
        area.free_list[new.idx()].push_tail(&mut self.mem, pfn);
        let n = order.nr_pages() as i64;
        if order >= self.pageblocks.order()
            && (old == MigrateType::Isolate) != (new == MigrateType::Isolate)
        {
            let delta = if old == MigrateType::Isolate { n } else { -n };
            z.nr_free_pages_blocks = add_signed(z.nr_free_pages_blocks, delta);
        }
        self.account_freepages(zi, -n, old);
        self.account_freepages(zi, n, new);
    }

    /// Mirrors `page_is_buddy()` via `find_buddy_page_pfn()`: the buddy of the block of
    /// `order` at `pfn`, if it is a free block of exactly that order in the same zone.
    #[inline]
    pub(crate) fn find_buddy(&self, pfn: Pfn, order: Order) -> Option<Pfn> {
        let buddy = pfn.buddy(order);
        if buddy >= self.mem.end_pfn()
            || !self.mem.is_buddy(buddy)
            || self.mem.buddy_order(buddy) != order
        {
            return None;
        }
        // Below pageblock order the buddy shares our pageblock, hence our zone.
        if order < self.pageblocks.order() {
            return Some(buddy);
        }
        self.same_zone(pfn, buddy).then_some(buddy)
    }

    /// Mirrors `buddy_merge_likely()`: true if the block's order+1 parent has a free buddy,
    /// so a free of the other half would merge two levels up; the block then goes to the
    /// list tail so it is not allocated first.
    fn buddy_merge_likely(&self, pfn: Pfn, buddy_pfn: Pfn, order: Order) -> bool {
        if order.0 >= MAX_PAGE_ORDER - 1 {
            return false;
        }
        let higher = Pfn(buddy_pfn.0 & pfn.0);
        self.find_buddy(higher, order.up()).is_some()
    }

    /// Mirrors `change_pageblock_range()`: sets the type of every pageblock a block of
    /// `order` (at least pageblock order) covers.
    pub(crate) fn change_pageblock_range(&mut self, pfn: Pfn, order: Order, mt: MigrateType) {
        let pb = self.pageblocks.order();
        let nr_blocks = 1u64 << order.0.saturating_sub(pb.0);
        for i in 0..nr_blocks {
            self.set_pageblock_migratetype(pfn.plus(i << pb.0), mt);
        }
    }

    /// Mirrors `__free_one_page()`: frees a block of `order` whose pages are all clean,
    /// merging with free buddies while they exist, and inserting the result at the head or
    /// tail of `free_list[mt]`.
    ///
    /// At pageblock order and above, two blocks of different types merge only if both types
    /// are mergeable (UNMOVABLE, MOVABLE, RECLAIMABLE), and the buddy's blocks then take our
    /// type. Compaction capture joins this path with the compaction engine.
    pub(crate) fn free_one_block(
        &mut self,
        zi: ZoneIdx,
        mut pfn: Pfn,
        mut order: Order,
        mt: MigrateType,
        fpi: FreeFlags,
    ) {
        assert!(
            pfn.is_aligned(order),
            "{pfn:?} freed at order {order} is misaligned"
        );
        debug_assert!(!self.mem.is_buddy(pfn), "{pfn:?} double free");
        self.account_freepages(zi, order.nr_pages() as i64, mt);
        let pb_order = self.pageblocks.order();
        let mut buddy_pfn = Pfn(0);
        while order.0 < MAX_PAGE_ORDER {
            if self.compaction_capture(zi, pfn, order, mt) {
                self.account_freepages(zi, -(order.nr_pages() as i64), mt);
                return;
            }
            buddy_pfn = pfn.buddy(order);
            let Some(buddy) = self.find_buddy(pfn, order) else {
                break;
            };
            debug_assert!(
                buddy == buddy_pfn && self.mem.buddy_order(buddy) == order,
                "{pfn:?}: buddy {buddy:?} is not a free block of order {order}"
            );
            let mut buddy_mt = mt;
            if order >= pb_order {
                buddy_mt = self.pageblocks.migratetype(buddy);
                if buddy_mt != mt && (!mt.is_mergeable() || !buddy_mt.is_mergeable()) {
                    break;
                }
            }
            self.del_from_free_list(zi, buddy, order, buddy_mt);
            if buddy_mt != mt {
                self.change_pageblock_range(buddy, order, mt);
            }
            pfn = Pfn(pfn.0 & buddy.0);
            order = order.up();
        }
        // DEVIATION(linux): no free-page shuffling (`page_alloc.shuffle`, off by default),
        // so the random tail placement of shuffle-order blocks never happens.
        debug_assert!(pfn.is_aligned(order), "merged block {pfn:?} misaligned");
        let to_tail = fpi.has(FreeFlags::TO_TAIL) || self.buddy_merge_likely(pfn, buddy_pfn, order);
        self.add_to_free_list(zi, pfn, order, mt, to_tail);
    }

    /// Mirrors `free_one_page()` → `split_large_buddy()`: a block larger than a pageblock is
    /// freed one pageblock at a time, each with its own pageblock's type.
    pub(crate) fn free_one_page(&mut self, zi: ZoneIdx, pfn: Pfn, order: Order, fpi: FreeFlags) {
        let end = pfn.plus(order.nr_pages());
        let step = order.min(self.pageblocks.order());
        let mut p = pfn;
        while p < end {
            let mt = self.pageblocks.migratetype(p);
            self.free_one_block(zi, p, step, mt, fpi);
            p = p.plus(step.nr_pages());
        }
    }

    /// Mirrors `prep_move_freepages_block()`: the pageblock holding `pfn`, if the zone spans
    /// all of it, with its free pages and its movable (LRU or movable_ops) pages counted.
    pub(crate) fn prep_move_freepages_block(
        &self,
        zi: ZoneIdx,
        pfn: Pfn,
    ) -> Option<(Pfn, u64, u64)> {
        let pb = self.pageblocks.order();
        let start = pfn.align_down(pb);
        let end = start.plus(pb.nr_pages());
        let z = &self.zones[zi.idx()];
        if !z.spans(start) || !z.spans(end.minus(1)) {
            return None;
        }
        let (mut free, mut movable) = (0u64, 0u64);
        let mut p = start;
        while p < end {
            if self.mem.is_buddy(p) {
                let n = self.mem.buddy_order(p).nr_pages();
                free += n;
                p = p.plus(n);
                continue;
            }
            if self.page_is_movable_for_claim(p) {
                movable += 1;
            }
            p = p.plus(1);
        }
        Some((start, free, movable))
    }

    /// `PageLRU(page) || page_has_movable_ops(page)`, read through the folio head for tails.
    #[inline]
    pub(crate) fn page_is_movable_for_claim(&self, pfn: Pfn) -> bool {
        use crate::memmap::PageFlags;
        let head = self.mem.compound_head(pfn);
        self.mem
            .flags(head)
            .intersects(PageFlags::LRU | PageFlags::MOVABLE_OPS)
    }

    /// Mirrors `__move_freepages_block()`: moves every free block inside the pageblock at
    /// `start` from `old` to `new` lists (tail); returns the pages moved.
    pub(crate) fn move_freepages_range(
        &mut self,
        zi: ZoneIdx,
        start: Pfn,
        old: MigrateType,
        new: MigrateType,
    ) -> u64 {
        let end = start.plus(self.pageblocks.nr_pages());
        let mut p = start;
        let mut moved = 0;
        while p < end {
            if !self.mem.is_buddy(p) {
                p = p.plus(1);
                continue;
            }
            let order = self.mem.buddy_order(p);
            self.move_to_free_list(zi, p, order, old, new);
            moved += order.nr_pages();
            p = p.plus(order.nr_pages());
        }
        moved
    }

    /// Mirrors `move_freepages_block()`: moves the pageblock's free pages from `old` to
    /// `new` and retypes the block; `None` if the block straddles the zone's edge.
    pub(crate) fn move_freepages_block(
        &mut self,
        zi: ZoneIdx,
        pfn: Pfn,
        old: MigrateType,
        new: MigrateType,
    ) -> Option<u64> {
        let (start, _, _) = self.prep_move_freepages_block(zi, pfn)?;
        let moved = self.move_freepages_range(zi, start, old, new);
        self.set_pageblock_migratetype(start, new);
        Some(moved)
    }
}

impl Machine {
    /// Gives the pageblock holding `pfn` type `new`, its free pages moving with it. A free
    /// block larger than a pageblock that covers it is one free block on one list: all its
    /// pageblocks take the type (as `try_to_claim_block()` claims such a block whole, and
    /// as `__free_one_page()` gives a merged buddy the block's type). False if the block is
    /// already `new`, isolated, CMA, a highatomic reserve or straddles the zone's edge. A
    /// model utility: the replay sets a block to the type the kernel's trace shows it had;
    /// Linux changes types only by its fallback and reserve rules. Returns the pageblocks
    /// retyped.
    pub fn retype_pageblock(&mut self, pfn: Pfn, new: MigrateType) -> u64 {
        let Some(zi) = self.page_zone(pfn) else {
            return 0;
        };
        let start = pfn.align_down(self.pageblocks.order());
        let old = self.pageblocks.migratetype(start);
        if old == new || !old.is_mergeable() || !new.is_mergeable() {
            return 0;
        }
        if let Some((big, order)) = self.find_large_buddy(start) {
            let mt = self.pageblocks.migratetype(big);
            self.del_from_free_list(zi, big, order, mt);
            self.account_freepages(zi, -(order.nr_pages() as i64), mt);
            let pb = self.pageblocks.order().nr_pages();
            let mut n = 0;
            for i in 0..order.nr_pages() / pb {
                let p = big.plus(i * pb);
                n += (self.pageblocks.migratetype(p) != new) as u64;
                self.set_pageblock_migratetype(p, new);
            }
            self.add_to_free_list(zi, big, order, new, false);
            self.account_freepages(zi, order.nr_pages() as i64, new);
            return n;
        }
        self.move_freepages_block(zi, start, old, new).is_some() as u64
    }
}

impl Machine {
    /// Puts every free list of every zone in a random order drawn from `rng`. A model
    /// utility for a machine loaded from a snapshot: a live kernel's lists are in the order
    /// pages were freed over its uptime, which no file shows; the order `__rmqueue()` and
    /// the fast free-page search meet them in matters (case0's trace shows the kernel's
    /// order-0 MOVABLE list, read off 2,805 successive refills, unordered by pfn: the next
    /// pfn was higher 1,374 times and lower 1,430), and the loader's own order is an
    /// artefact of how it placed the pages.
    pub fn shuffle_free_lists(&mut self, rng: &mut crate::rng::SimRng) {
        for zi in 0..self.zones.len() {
            for o in 0..self.zones[zi].free_area.len() {
                for mt in 0..self.zones[zi].free_area[o].free_list.len() {
                    let mut blocks = Vec::new();
                    let list = &mut self.zones[zi].free_area[o].free_list[mt];
                    while let Some(p) = list.pop_head(&mut self.mem) {
                        blocks.push(p);
                    }
                    rng.shuffle(&mut blocks);
                    for p in blocks {
                        list.push_tail(&mut self.mem, p);
                    }
                }
            }
        }
    }
}

/// `a + d` for a counter that must never go negative.
#[inline]
pub(crate) fn add_signed(a: u64, d: i64) -> u64 {
    a.checked_add_signed(d)
        .expect("free-page counter went negative")
}
