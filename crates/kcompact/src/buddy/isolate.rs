//! Pageblock isolation: take a block's free pages out of the allocator's reach.
//!
//! Mirrors `set_migratetype_isolate()` / `unset_migratetype_isolate()` (mm/page_isolation.c)
//! for one pageblock, through `__move_freepages_block_isolate()` (mm/page_alloc.c).
//! alloc_contig_range and memory offlining use it; the model uses it to exercise the
//! ISOLATE rules (never allocated from, never merged across at pageblock order).

use super::FreeFlags;
use crate::machine::Machine;
use crate::memmap::MigrateType;
use crate::units::{Order, Pfn, MAX_PAGE_ORDER};

impl Machine {
    /// Takes the free range `[pfn, pfn + 2^order)` off the buddy lists, splitting the free
    /// block that holds it (the rest goes back, each piece at its list head as `expand()`
    /// does). False if the range is not wholly inside one free block. The pages are left
    /// clean for the caller to prepare. A model utility for placing pages where a snapshot
    /// or a trace says they are; Linux has no single-block equivalent.
    pub fn take_free_range(&mut self, pfn: Pfn, order: Order) -> bool {
        if !pfn.is_aligned(order) || pfn.plus(order.nr_pages()) > self.mem.end_pfn() {
            return false;
        }
        let Some((head, big)) = (order.0..=MAX_PAGE_ORDER).find_map(|o| {
            let h = pfn.align_down(Order(o));
            (self.mem.is_buddy(h)
                && self.mem.buddy_order(h).0 >= o
                && pfn < h.plus(self.mem.buddy_order(h).nr_pages()))
            .then(|| (h, self.mem.buddy_order(h)))
        }) else {
            return false;
        };
        let zi = self.page_zone(head).expect("free block in a zone");
        let mt = self.pageblocks.migratetype(head);
        self.del_from_free_list(zi, head, big, mt);
        self.account_freepages(zi, -(big.nr_pages() as i64), mt);
        let (mut cur, mut co) = (head, big);
        while co > order {
            co = co.down();
            let upper = cur.plus(co.nr_pages());
            let (keep, give) = if pfn >= upper {
                (upper, cur)
            } else {
                (cur, upper)
            };
            let gmt = self.pageblocks.migratetype(give);
            self.add_to_free_list(zi, give, co, gmt, false);
            self.account_freepages(zi, co.nr_pages() as i64, gmt);
            cur = keep;
        }
        debug_assert_eq!(cur, pfn);
        true
    }

    /// Mirrors `is_free_buddy_page()`: true if `pfn` lies in a free block on the buddy
    /// lists, of any order.
    pub fn is_free_buddy_page(&self, pfn: Pfn) -> bool {
        (0..=MAX_PAGE_ORDER).any(|o| {
            let h = pfn.align_down(Order(o));
            self.mem.is_buddy(h) && self.mem.buddy_order(h).0 >= o
        })
    }

    /// Finds a free block of order above pageblock order that covers `pfn`
    /// (`find_large_buddy()`).
    pub(crate) fn find_large_buddy(&self, pfn: Pfn) -> Option<(Pfn, Order)> {
        let pb = self.pageblock_order();
        for o in pb.0 + 1..=MAX_PAGE_ORDER {
            let start = pfn.align_down(Order(o));
            if self.mem.is_buddy(start) && self.mem.buddy_order(start).0 >= o {
                return Some((start, self.mem.buddy_order(start)));
            }
        }
        None
    }

    /// Mirrors `__move_freepages_block_isolate()`: toggles the block's isolate bit and moves
    /// its free pages between its type and ISOLATE. A free block larger than a pageblock
    /// that covers it is taken off its list and freed again pageblock by pageblock
    /// (`split_large_buddy()`), so each half lands on its own block's list.
    fn move_freepages_block_isolate(
        &mut self,
        zi: crate::units::ZoneIdx,
        start: Pfn,
        isolate: bool,
    ) {
        if let Some((big, order)) = self.find_large_buddy(start) {
            let mt = self.pageblocks.migratetype(big);
            self.del_from_free_list(zi, big, order, mt);
            self.account_freepages(zi, -(order.nr_pages() as i64), mt);
            self.pageblocks.set_isolate(start, isolate);
            self.free_one_page(zi, big, order, FreeFlags::NONE);
            return;
        }
        let (old, new) = if isolate {
            (self.pageblocks.migratetype(start), MigrateType::Isolate)
        } else {
            (
                MigrateType::Isolate,
                self.pageblocks.underlying_migratetype(start),
            )
        };
        self.move_freepages_range(zi, start, old, new);
        self.pageblocks.set_isolate(start, isolate);
    }

    /// DEVIATION(linux): no `has_unmovable_pages()` check (Linux refuses with -EBUSY) and
    /// no `zone->nr_isolate_pageblock` count: any block of managed memory can be isolated.
    ///
    /// Mirrors `set_migratetype_isolate()` for one pageblock: its free pages move to the
    /// ISOLATE lists and leave NR_FREE_PAGES. Returns false if the block is already
    /// isolated, straddles the zone's edge, or is not managed memory.
    pub fn isolate_pageblock(&mut self, pfn: Pfn) -> bool {
        let Some(zi) = self.page_zone(pfn) else {
            return false;
        };
        let start = pfn.align_down(self.pageblock_order());
        if self.pageblocks.migratetype(start) == MigrateType::Isolate
            || self.prep_move_freepages_block(zi, start).is_none()
        {
            return false;
        }
        self.move_freepages_block_isolate(zi, start, true);
        true
    }

    /// Mirrors `unset_migratetype_isolate()`: free pages return to the block's type; a
    /// wholly free block whose buddy is free and not isolated is freed again so the two
    /// merge (`__isolate_free_page()` + `__putback_isolated_page()`).
    pub fn unisolate_pageblock(&mut self, pfn: Pfn) -> bool {
        let Some(zi) = self.page_zone(pfn) else {
            return false;
        };
        let pb = self.pageblock_order();
        let start = pfn.align_down(pb);
        if self.pageblocks.migratetype(start) != MigrateType::Isolate {
            return false;
        }
        if self.mem.is_buddy(start) {
            let order = self.mem.buddy_order(start);
            // DEVIATION(linux): Linux takes any free chunk of pageblock order or more here.
            // A larger chunk covers other isolated blocks, and putting it back under this
            // block's type leaves those blocks' pages on the wrong list until
            // undo_isolate_page_range() reaches them. The model isolates one block at a
            // time, so it merges only a chunk of exactly this block and lets a larger one be
            // split per pageblock below.
            if order == pb && order.0 < MAX_PAGE_ORDER {
                let buddy = self.find_buddy(start, order);
                if buddy.is_some_and(|b| self.pageblocks.migratetype(b) != MigrateType::Isolate) {
                    self.del_from_free_list(zi, start, order, MigrateType::Isolate);
                    self.pageblocks.set_isolate(start, false);
                    let mt = self.pageblocks.migratetype(start);
                    self.free_one_block(zi, start, order, mt, FreeFlags::TO_TAIL);
                    return true;
                }
            }
        }
        self.move_freepages_block_isolate(zi, start, false);
        true
    }
}
