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
    /// Finds a free block of order above pageblock order that covers `pfn`
    /// (`find_large_buddy()`).
    fn find_large_buddy(&self, pfn: Pfn) -> Option<(Pfn, Order)> {
        let pb = self.pageblock_order();
        for o in pb.0 + 1..=MAX_PAGE_ORDER {
            let start = pfn.align_down(Order(o));
            if self.mem.is_buddy(start) && self.mem.buddy_order(start).0 >= o {
                return Some((start, self.mem.buddy_order(start)));
            }
        }
        None
    }

    /// Isolates the pageblock holding `pfn`: its free pages move to the ISOLATE lists and
    /// leave NR_FREE_PAGES. Returns false if the block is already isolated, straddles the
    /// zone's edge, or is not managed memory.
    pub fn isolate_pageblock(&mut self, pfn: Pfn) -> bool {
        let Some(zi) = self.page_zone(pfn) else { return false };
        let start = pfn.align_down(self.pageblock_order());
        let old = self.pageblocks.migratetype(start);
        if old == MigrateType::Isolate || self.prep_move_freepages_block(zi, start).is_none() {
            return false;
        }
        if let Some((big, order)) = self.find_large_buddy(start) {
            let mt = self.pageblocks.migratetype(big);
            self.del_from_free_list(zi, big, order, mt);
            self.account_freepages(zi, -(order.nr_pages() as i64), mt);
            self.pageblocks.set_isolate(start, true);
            self.free_one_page(zi, big, order, FreeFlags::NONE);
            return true;
        }
        self.move_freepages_range(zi, start, old, MigrateType::Isolate);
        self.pageblocks.set_isolate(start, true);
        true
    }

    /// Undoes [`Self::isolate_pageblock`]: free pages return to the block's type, and a
    /// wholly free block is freed again so it can merge with its buddy (as
    /// `unset_migratetype_isolate()` does through `__putback_isolated_page()`).
    pub fn unisolate_pageblock(&mut self, pfn: Pfn) -> bool {
        let Some(zi) = self.page_zone(pfn) else { return false };
        let pb = self.pageblock_order();
        let start = pfn.align_down(pb);
        if self.pageblocks.migratetype(start) != MigrateType::Isolate {
            return false;
        }
        self.pageblocks.set_isolate(start, false);
        let mt = self.pageblocks.migratetype(start);
        let whole = self.mem.is_buddy(start) && self.mem.buddy_order(start) >= pb;
        if whole {
            let order = self.mem.buddy_order(start);
            self.del_from_free_list(zi, start, order, MigrateType::Isolate);
            self.free_one_block(zi, start, order, mt, FreeFlags::TO_TAIL);
        } else {
            self.move_freepages_range(zi, start, MigrateType::Isolate, mt);
        }
        true
    }
}
