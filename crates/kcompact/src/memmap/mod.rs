//! The model's `struct page`: per-page metadata as struct-of-arrays indexed by [`Pfn`].
//!
//! Linux spends 64 bytes per page on `struct page`, most of it in unions whose meaning
//! depends on the page's state. The model keeps 16 bytes, in four parallel arrays, with the
//! same idea of state-dependent words:
//!
//! | array      | free block head (`BUDDY`) | per-CPU list block head (`PCP`) | compound tail (`TAIL`) | any other page          |
//! |------------|---------------------------|---------------------------------|------------------------|-------------------------|
//! | `flags`    | flags + buddy order       | flags + block order             | flags                  | flags + compound order  |
//! | `a`        | previous on the free list | previous on the pcp list        | pfn of the head        | refcount (`_refcount`)  |
//! | `b`        | next on the free list     | next on the pcp list            | 0 (first tail: pincount) | owner reference       |
//! | `mapcount` | 0                         | which pcp list (CPU, pindex)    | mapcount of this page  | mapcount (`_mapcount`+1)|
//!
//! Pages inside a free block other than its head carry no flags and zero words, as in Linux
//! where only the head of a buddy block has `PageBuddy`. The refcount of a folio lives on its
//! head only (tails read 0), as in Linux; pins use the same counter with
//! [`GUP_PIN_COUNTING_BIAS`]. Per-pageblock state (migratetype, skip bit) lives in
//! [`Pageblocks`].
//!
//! Architecture invariant: no per-page heap objects. Every list through pages is
//! index-linked (see [`list`]).

pub mod flags;
pub mod list;
pub mod pageblock;

pub use flags::PageFlags;
pub use pageblock::{MigrateType, Pageblocks};

use crate::units::{Order, Pfn};

/// Mirrors `GUP_PIN_COUNTING_BIAS` (include/linux/mm.h): a FOLL_PIN adds this much to the
/// refcount of a small folio, so a refcount of at least this value means "maybe DMA-pinned".
pub const GUP_PIN_COUNTING_BIAS: u32 = 1024;

/// The "no link" value of an index-linked list.
pub const NIL: u32 = u32::MAX;

/// An owner reference: which object owns an allocated page (0 = none recorded).
///
/// Owners (processes, files, slab caches, drivers) hand these out; the memory map only
/// stores them, the way `page->mapping` points to an owner without the page knowing its type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct OwnerRef(pub u32);

impl OwnerRef {
    /// No owner recorded.
    pub const NONE: OwnerRef = OwnerRef(0);
}

/// Per-page metadata for every pfn of the machine, holes included.
#[derive(Clone, Debug)]
pub struct MemMap {
    flags: Vec<PageFlags>,
    a: Vec<u32>,
    b: Vec<u32>,
    mapcount: Vec<u32>,
}

/// Bytes of metadata per simulated page; the target is at most 16 (Linux: 64).
pub const BYTES_PER_PAGE: usize = std::mem::size_of::<PageFlags>() + 3 * std::mem::size_of::<u32>();
const _: () = assert!(
    BYTES_PER_PAGE <= 16,
    "per-page metadata must stay within 16 bytes"
);
const _: () = assert!(std::mem::size_of::<PageFlags>() == 4);

impl MemMap {
    /// A memory map for pfns `0 .. end`, every page a hole (`NOPAGE`) until the layout says
    /// otherwise.
    pub fn new(end: Pfn) -> MemMap {
        assert!(end.0 <= u32::MAX as u64, "at most 2^32 page frames");
        let n = end.idx();
        MemMap {
            flags: vec![PageFlags::NOPAGE; n],
            a: vec![0; n],
            b: vec![0; n],
            mapcount: vec![0; n],
        }
    }

    /// One past the last pfn.
    #[inline]
    pub fn end_pfn(&self) -> Pfn {
        Pfn(self.flags.len() as u64)
    }

    /// Bytes this memory map holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.flags.capacity() * BYTES_PER_PAGE
    }

    /// The page's flags.
    #[inline]
    pub fn flags(&self, pfn: Pfn) -> PageFlags {
        self.flags[pfn.idx()]
    }

    /// Sets the page's flags (order field included).
    #[inline]
    pub fn set_flags(&mut self, pfn: Pfn, flags: PageFlags) {
        self.flags[pfn.idx()] = flags;
    }

    /// Sets `flag` on the page.
    #[inline]
    pub fn set_flag(&mut self, pfn: Pfn, flag: PageFlags) {
        let f = &mut self.flags[pfn.idx()];
        *f = f.with(flag);
    }

    /// Clears `flag` on the page.
    #[inline]
    pub fn clear_flag(&mut self, pfn: Pfn, flag: PageFlags) {
        let f = &mut self.flags[pfn.idx()];
        *f = f.without(flag);
    }

    /// Mirrors `PageBuddy()`: the head of a free buddy block.
    #[inline]
    pub fn is_buddy(&self, pfn: Pfn) -> bool {
        self.flags[pfn.idx()].contains(PageFlags::BUDDY)
    }

    /// Mirrors `buddy_order()`: the order of the free block headed here.
    #[inline]
    pub fn buddy_order(&self, pfn: Pfn) -> Order {
        debug_assert!(self.is_buddy(pfn), "{pfn:?} is not a buddy head");
        Order(self.flags[pfn.idx()].order())
    }

    /// The compound order of the folio headed here (0 for a small folio).
    #[inline]
    pub fn folio_order(&self, pfn: Pfn) -> Order {
        debug_assert!(!self.is_buddy(pfn) && !self.flags(pfn).contains(PageFlags::TAIL));
        Order(self.flags[pfn.idx()].order())
    }

    /// Mirrors `compound_head()`: the head of the folio holding this page.
    #[inline]
    pub fn compound_head(&self, pfn: Pfn) -> Pfn {
        if self.flags[pfn.idx()].contains(PageFlags::TAIL) {
            Pfn(self.a[pfn.idx()] as u64)
        } else {
            pfn
        }
    }

    /// Mirrors `page_ref_count()`: the refcount of an allocated page (0 for free pages and
    /// tails, whose folio's count is on its head).
    #[inline]
    pub fn refcount(&self, pfn: Pfn) -> u32 {
        let f = self.flags[pfn.idx()];
        if f.intersects(PageFlags::BUDDY | PageFlags::PCP | PageFlags::TAIL | PageFlags::NOPAGE) {
            0
        } else {
            self.a[pfn.idx()]
        }
    }

    /// Sets the refcount of a page that is neither a free head nor a tail.
    #[inline]
    pub fn set_refcount(&mut self, pfn: Pfn, count: u32) {
        debug_assert!(!self.flags[pfn.idx()]
            .intersects(PageFlags::BUDDY | PageFlags::TAIL | PageFlags::NOPAGE));
        self.a[pfn.idx()] = count;
    }

    /// The owner of an allocated page (a folio's head).
    #[inline]
    pub fn owner(&self, pfn: Pfn) -> OwnerRef {
        let f = self.flags[pfn.idx()];
        if f.intersects(PageFlags::BUDDY | PageFlags::PCP | PageFlags::TAIL | PageFlags::NOPAGE) {
            OwnerRef::NONE
        } else {
            OwnerRef(self.b[pfn.idx()])
        }
    }

    /// Records the owner of an allocated folio head.
    #[inline]
    pub fn set_owner(&mut self, pfn: Pfn, owner: OwnerRef) {
        debug_assert!(!self.flags[pfn.idx()]
            .intersects(PageFlags::BUDDY | PageFlags::TAIL | PageFlags::NOPAGE));
        self.b[pfn.idx()] = owner.0;
    }

    /// Mirrors `folio->_pincount` of a large folio (kept in its first tail page, as Linux
    /// keeps it in the folio's second page).
    #[inline]
    pub fn pincount(&self, head: Pfn) -> u32 {
        debug_assert!(self.flags(head).contains(PageFlags::HEAD));
        self.b[head.idx() + 1]
    }

    /// Sets the `_pincount` of a large folio.
    #[inline]
    pub fn set_pincount(&mut self, head: Pfn, count: u32) {
        debug_assert!(self.flags(head).contains(PageFlags::HEAD));
        self.b[head.idx() + 1] = count;
    }

    /// Mirrors `folio_maybe_dma_pinned()`: a large folio with a pincount, or a small one
    /// whose refcount reaches [`GUP_PIN_COUNTING_BIAS`].
    #[inline]
    pub fn maybe_dma_pinned(&self, head: Pfn) -> bool {
        if self.flags(head).contains(PageFlags::HEAD) {
            self.pincount(head) > 0
        } else {
            self.refcount(head) >= GUP_PIN_COUNTING_BIAS
        }
    }

    /// The number of page-table mappings of this page (Linux `page_mapcount()`).
    #[inline]
    pub fn mapcount(&self, pfn: Pfn) -> u32 {
        if self.flags[pfn.idx()].contains(PageFlags::PCP) {
            return 0;
        }
        self.mapcount[pfn.idx()]
    }

    /// Sets the page's mapcount.
    #[inline]
    pub fn set_mapcount(&mut self, pfn: Pfn, count: u32) {
        self.mapcount[pfn.idx()] = count;
    }

    /// Makes `head` the head of a folio of `order` with refcount 1: mirrors
    /// `prep_compound_page()` for order > 0 (tails point at the head) and `set_page_refcounted()`.
    pub fn prep_allocated(&mut self, head: Pfn, order: Order, compound: bool) {
        let hi = head.idx();
        let mut f = PageFlags::EMPTY;
        if compound && order.0 > 0 {
            f = f.with(PageFlags::HEAD).with_order(order.0);
            for i in 1..order.nr_pages() as usize {
                self.flags[hi + i] = PageFlags::TAIL;
                self.a[hi + i] = head.0 as u32;
                self.b[hi + i] = 0;
            }
        } else {
            // A non-compound high-order allocation: every page is its own small page, with
            // only the first holding the reference (as `split_page()` would before use).
            for i in 1..order.nr_pages() as usize {
                self.flags[hi + i] = PageFlags::EMPTY;
                self.a[hi + i] = 0;
                self.b[hi + i] = 0;
            }
        }
        self.flags[hi] = f;
        self.a[hi] = 1;
        self.b[hi] = 0;
    }

    /// Clears every page of a block that is about to be freed back to the buddy allocator:
    /// mirrors the state `__free_pages_prepare()` leaves (no flags, no references, no owner).
    pub fn clear_block(&mut self, head: Pfn, order: Order) {
        let hi = head.idx();
        let n = order.nr_pages() as usize;
        if n == 1 {
            self.flags[hi] = PageFlags::EMPTY;
            self.a[hi] = 0;
            self.b[hi] = 0;
            self.mapcount[hi] = 0;
            return;
        }
        self.flags[hi..hi + n].fill(PageFlags::EMPTY);
        self.a[hi..hi + n].fill(0);
        self.b[hi..hi + n].fill(0);
        self.mapcount[hi..hi + n].fill(0);
    }

    /// Marks a page as a free block head of `order` (`__SetPageBuddy` + `set_buddy_order`).
    /// Its links are set by the free list it joins.
    #[inline]
    pub fn set_buddy(&mut self, pfn: Pfn, order: Order) {
        self.flags[pfn.idx()] = PageFlags::BUDDY.with_order(order.0);
    }

    /// Clears the buddy state of a free block head (`__ClearPageBuddy`), leaving a clean
    /// page; links are zeroed.
    #[inline]
    pub fn clear_buddy(&mut self, pfn: Pfn) {
        debug_assert!(self.is_buddy(pfn));
        self.flags[pfn.idx()] = PageFlags::EMPTY;
        self.a[pfn.idx()] = 0;
        self.b[pfn.idx()] = 0;
    }

    /// Marks a clean block's head as on a per-CPU list of `order`, tagged with the list it
    /// is on (`tag`, kept in the mapcount word, which a free page does not use). Its links
    /// are set by the list it joins.
    #[inline]
    pub fn set_pcp(&mut self, pfn: Pfn, order: Order, tag: u32) {
        debug_assert!(
            self.flags[pfn.idx()] == PageFlags::EMPTY,
            "{pfn:?} is not clean"
        );
        self.flags[pfn.idx()] = PageFlags::PCP.with_order(order.0);
        self.mapcount[pfn.idx()] = tag;
    }

    /// True if the page heads a block on a per-CPU list.
    #[inline]
    pub fn is_pcp(&self, pfn: Pfn) -> bool {
        self.flags[pfn.idx()].contains(PageFlags::PCP)
    }

    /// The tag [`MemMap::set_pcp`] stored: which list holds the block.
    #[inline]
    pub fn pcp_tag(&self, pfn: Pfn) -> u32 {
        debug_assert!(self.is_pcp(pfn));
        self.mapcount[pfn.idx()]
    }

    /// Takes the per-CPU list mark off a block head (after it left its list), leaving a
    /// clean page.
    #[inline]
    pub fn clear_pcp(&mut self, pfn: Pfn) {
        debug_assert!(self.is_pcp(pfn));
        self.flags[pfn.idx()] = PageFlags::EMPTY;
        self.a[pfn.idx()] = 0;
        self.b[pfn.idx()] = 0;
        self.mapcount[pfn.idx()] = 0;
    }

    /// Marks `[start, end)` as present, clean pages (no longer holes).
    pub fn set_present(&mut self, start: Pfn, end: Pfn) {
        self.flags[start.idx()..end.idx()].fill(PageFlags::EMPTY);
    }

    /// Marks a page reserved (present, never given to the buddy allocator).
    pub fn set_reserved(&mut self, pfn: Pfn) {
        self.flags[pfn.idx()] = PageFlags::RESERVED;
        self.a[pfn.idx()] = 1;
        self.b[pfn.idx()] = 0;
    }

    #[inline]
    fn prev(&self, pfn: u32) -> u32 {
        self.a[pfn as usize]
    }
    #[inline]
    fn next(&self, pfn: u32) -> u32 {
        self.b[pfn as usize]
    }
    #[inline]
    fn set_prev(&mut self, pfn: u32, v: u32) {
        self.a[pfn as usize] = v;
    }
    #[inline]
    fn set_next(&mut self, pfn: u32, v: u32) {
        self.b[pfn as usize] = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_sixteen_bytes_per_page() {
        assert_eq!(BYTES_PER_PAGE, 16);
        let m = MemMap::new(Pfn(1024));
        assert_eq!(m.heap_bytes(), 1024 * 16);
    }

    #[test]
    fn compound_tails_point_at_head_and_read_no_refcount() {
        let mut m = MemMap::new(Pfn(64));
        for p in 0..64 {
            m.set_flags(Pfn(p), PageFlags::EMPTY);
        }
        m.prep_allocated(Pfn(16), Order(3), true);
        assert_eq!(m.refcount(Pfn(16)), 1);
        assert_eq!(m.folio_order(Pfn(16)), Order(3));
        for p in 17..24 {
            assert_eq!(m.compound_head(Pfn(p)), Pfn(16));
            assert_eq!(m.refcount(Pfn(p)), 0);
        }
        assert_eq!(m.compound_head(Pfn(24)), Pfn(24));
        m.clear_block(Pfn(16), Order(3));
        assert_eq!(m.compound_head(Pfn(17)), Pfn(17));
        assert_eq!(m.refcount(Pfn(16)), 0);
    }
}
