//! Units: one newtype per kind of number, as rust-vmm does for addresses.
//!
//! A [`Pfn`] is a page frame number, an [`Order`] a power-of-two block size in pages, a
//! [`PageblockIdx`] the index of a pageblock, a [`ZoneIdx`] the index of a zone in
//! [`crate::Machine::zones`] and a [`NodeId`] a NUMA node. There are no arithmetic operators
//! across units: moving between them goes through named methods (`pfn.buddy(order)`,
//! `pfn.pageblock(pb_order)`), so a pfn is never added to an order by accident.

use std::fmt;

/// Bytes in a page (x86-64, 4 KiB pages).
pub const PAGE_SIZE: u64 = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// Mirrors `MAX_PAGE_ORDER` (include/linux/mmzone.h): the largest buddy order, inclusive.
pub const MAX_PAGE_ORDER: u8 = 10;
/// Mirrors `NR_PAGE_ORDERS`: the number of free lists per migratetype.
pub const NR_PAGE_ORDERS: usize = MAX_PAGE_ORDER as usize + 1;
/// Mirrors `HPAGE_PMD_ORDER` on x86-64 with 4 KiB pages: a PMD maps a folio of this order.
pub const HPAGE_PMD_ORDER: u8 = 9;
/// Mirrors `PAGE_ALLOC_COSTLY_ORDER`: orders above this are "costly".
pub const PAGE_ALLOC_COSTLY_ORDER: u8 = 3;
/// Mirrors `pageblock_order` on x86-64 (HPAGE_PMD_ORDER); the machine may set another.
pub const DEFAULT_PAGEBLOCK_ORDER: u8 = 9;

/// A page frame number. Mirrors the kernel's `unsigned long pfn`.
///
/// The model indexes all per-page arrays by pfn directly (pfn 0 is the first slot), so a
/// machine can have at most `u32::MAX` page frames (16 TiB).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pfn(pub u64);

impl Pfn {
    /// The pfn as an index into per-page arrays.
    #[inline]
    pub fn idx(self) -> usize {
        self.0 as usize
    }

    /// Mirrors `__find_buddy_pfn()`: the buddy of the block of `order` starting here.
    #[inline]
    pub fn buddy(self, order: Order) -> Pfn {
        Pfn(self.0 ^ (1u64 << order.0))
    }

    /// True if this pfn is the start of an aligned block of `order`.
    #[inline]
    pub fn is_aligned(self, order: Order) -> bool {
        self.0 & (order.nr_pages() - 1) == 0
    }

    /// The start of the aligned block of `order` that holds this pfn.
    #[inline]
    pub fn align_down(self, order: Order) -> Pfn {
        Pfn(self.0 & !(order.nr_pages() - 1))
    }

    /// Mirrors `block_end_pfn()`: `ALIGN(pfn + 1, 1 << order)`, the end of the aligned
    /// block of `order` holding this pfn (the last pfn of a block gives that block's end,
    /// not the next one's).
    #[inline]
    pub fn block_end(self, order: Order) -> Pfn {
        self.align_down(order).plus(order.nr_pages())
    }

    /// Mirrors `pageblock_end_pfn()`: [`Pfn::block_end`] at pageblock order.
    #[inline]
    pub fn pageblock_end(self, pageblock_order: Order) -> Pfn {
        self.block_end(pageblock_order)
    }

    /// The pageblock holding this pfn, for pageblocks of `pageblock_order`.
    #[inline]
    pub fn pageblock(self, pageblock_order: Order) -> PageblockIdx {
        PageblockIdx((self.0 >> pageblock_order.0) as u32)
    }

    /// This pfn moved by `nr_pages` (checked: overflow is a programmer error).
    #[inline]
    pub fn plus(self, nr_pages: u64) -> Pfn {
        Pfn(self.0.checked_add(nr_pages).expect("pfn overflow"))
    }

    /// This pfn moved back by `nr_pages` (checked: underflow is a programmer error).
    #[inline]
    pub fn minus(self, nr_pages: u64) -> Pfn {
        Pfn(self.0.checked_sub(nr_pages).expect("pfn underflow"))
    }

    /// This pfn moved back by `nr_pages`, if that stays at or above pfn 0.
    #[inline]
    pub fn checked_sub(self, nr_pages: u64) -> Option<Pfn> {
        self.0.checked_sub(nr_pages).map(Pfn)
    }

    /// Pages from `self` up to `end` (which must not be below `self`).
    #[inline]
    pub fn pages_until(self, end: Pfn) -> u64 {
        end.0.checked_sub(self.0).expect("pfn range reversed")
    }
}

impl fmt::Debug for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pfn {:#x}", self.0)
    }
}

impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A block order: a block of order `o` holds `2^o` pages.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Order(pub u8);

impl Order {
    /// Pages in a block of this order.
    #[inline]
    pub fn nr_pages(self) -> u64 {
        debug_assert!(self.0 < 40);
        1u64 << self.0
    }

    /// The order as an index into per-order arrays.
    #[inline]
    pub fn idx(self) -> usize {
        self.0 as usize
    }

    /// The next order up.
    #[inline]
    pub fn up(self) -> Order {
        Order(self.0 + 1)
    }

    /// The next order down (must not be order 0).
    #[inline]
    pub fn down(self) -> Order {
        Order(self.0.checked_sub(1).expect("order underflow"))
    }

    /// Every buddy order, 0 ..= MAX_PAGE_ORDER.
    pub fn all() -> impl DoubleEndedIterator<Item = Order> {
        (0..=MAX_PAGE_ORDER).map(Order)
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The index of a pageblock: `pfn >> pageblock_order`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct PageblockIdx(pub u32);

impl PageblockIdx {
    /// The first pfn of this pageblock.
    #[inline]
    pub fn start_pfn(self, pageblock_order: Order) -> Pfn {
        Pfn((self.0 as u64) << pageblock_order.0)
    }

    /// The pageblock as an index into per-pageblock arrays.
    #[inline]
    pub fn idx(self) -> usize {
        self.0 as usize
    }
}

/// The index of a zone in the machine's zone table (node-major, zone type minor).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct ZoneIdx(pub u8);

impl ZoneIdx {
    /// The zone as an index into the machine's zone table.
    #[inline]
    pub fn idx(self) -> usize {
        self.0 as usize
    }
}

/// A NUMA node id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct NodeId(pub u8);

/// Pages in `bytes`, rounded down.
pub fn bytes_to_pages(bytes: u64) -> u64 {
    bytes >> PAGE_SHIFT
}

/// Bytes in `pages`.
pub fn pages_to_bytes(pages: u64) -> u64 {
    pages << PAGE_SHIFT
}

/// KiB in `pages`.
pub fn pages_to_kb(pages: u64) -> u64 {
    pages << (PAGE_SHIFT - 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buddy_flips_one_bit() {
        assert_eq!(Pfn(0x1000).buddy(Order(0)), Pfn(0x1001));
        assert_eq!(Pfn(0x1200).buddy(Order(9)), Pfn(0x1000));
        assert_eq!(Pfn(0x1000).buddy(Order(10)), Pfn(0x1400));
    }

    #[test]
    fn pageblock_end_is_align_of_the_next_pfn() {
        let pb = Order(9);
        assert_eq!(Pfn(0x800).pageblock_end(pb), Pfn(0xa00));
        assert_eq!(Pfn(0x9fe).pageblock_end(pb), Pfn(0xa00));
        // The last pfn of a block: that block's end (regression, issue 7 fuzzing: the
        // migrate scanner stalled one pfn short of the free scanner's block).
        assert_eq!(Pfn(0x9ff).pageblock_end(pb), Pfn(0xa00));
        assert_eq!(Pfn(0xa00).pageblock_end(pb), Pfn(0xc00));
    }

    #[test]
    fn alignment_and_pageblocks() {
        assert!(Pfn(0x400).is_aligned(Order(10)));
        assert!(!Pfn(0x600).is_aligned(Order(10)));
        assert_eq!(Pfn(0x7ff).align_down(Order(9)), Pfn(0x600));
        assert_eq!(Pfn(0x7ff).pageblock(Order(9)), PageblockIdx(3));
        assert_eq!(PageblockIdx(3).start_pfn(Order(9)), Pfn(0x600));
    }
}
