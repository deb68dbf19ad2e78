//! Page flags: one `u32` per page holding the flag bits and a 4-bit order.
//!
//! Mirrors the subset of `enum pageflags` (include/linux/page-flags.h) and page types
//! (`PG_buddy`, `PG_table`, `PG_offline`) that anti-fragmentation and compaction read. The
//! order field holds the buddy order of a free block's head (`buddy_order()`) or the
//! compound order of a folio's head (`folio_order()`); it is 0 on every other page.

/// The flag bits of one page. Only the low 28 bits are flags; the top 4 are the order.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct PageFlags(pub u32);

macro_rules! page_flags {
    ($($(#[$doc:meta])* $name:ident = $bit:expr;)*) => {
        impl PageFlags {
            $($(#[$doc])* pub const $name: PageFlags = PageFlags(1 << $bit);)*
            /// Every flag with its name, for debug printing.
            pub const NAMED: &'static [(PageFlags, &'static str)] = &[$((PageFlags::$name, stringify!($name)),)*];
        }
    };
}

page_flags! {
    /// PG_locked: the folio is locked (I/O or truncation in progress).
    LOCKED = 0;
    /// PG_referenced: accessed recently (LRU aging).
    REFERENCED = 1;
    /// PG_dirty: must be written back before it can be freed.
    DIRTY = 2;
    /// PG_lru: on an LRU list.
    LRU = 3;
    /// PG_active: on an active LRU list.
    ACTIVE = 4;
    /// PG_slab: a slab page.
    SLAB = 5;
    /// PG_writeback: under writeback.
    WRITEBACK = 6;
    /// PG_reclaim: reclaim wants it written out and freed.
    RECLAIM = 7;
    /// PG_buddy (a page type): the head of a free block in the buddy allocator.
    BUDDY = 8;
    /// PG_head: the head page of a compound page (a large folio).
    HEAD = 9;
    /// The tail page of a compound page (bit 0 of `compound_head`).
    TAIL = 10;
    /// PageAnon: anonymous memory (`mapping` has PAGE_MAPPING_ANON).
    ANON = 11;
    /// PG_swapbacked: anonymous or shmem memory, backed by swap.
    SWAPBACKED = 12;
    /// PG_unevictable: on the unevictable list.
    UNEVICTABLE = 13;
    /// PG_mlocked: mlocked by a VMA.
    MLOCKED = 14;
    /// PG_reserved: not managed by the buddy allocator (firmware, kernel image, memmap).
    RESERVED = 15;
    /// PG_table (a page type): a page-table page.
    PGTABLE = 16;
    /// A hugetlb pool page (`folio_test_hugetlb`).
    HUGETLB = 17;
    /// A movable_ops page (PG_movable / PAGE_MAPPING_MOVABLE): non-LRU, driver-migratable.
    MOVABLE_OPS = 18;
    /// PG_isolated / folio isolated from the LRU: taken by migration or compaction.
    ISOLATED = 19;
    /// PG_offline (a page type): logically offline (balloon inflated).
    OFFLINE = 20;
    /// No struct page: a hole in the physical address space (kpageflags NOPAGE).
    NOPAGE = 21;
    /// PG_private: the folio has private data (buffer heads).
    PRIVATE = 22;
    /// PG_swapcache: in the swap cache.
    SWAPCACHE = 23;
    /// The zsmalloc page type (PGTY_zsmalloc).
    ZSMALLOC = 24;
    /// A device driver's page type (the model's GPU buffer pool).
    DRIVER_PAGE = 25;
    /// The accessed (young) bit of the folio's page-table entries, which
    /// `folio_referenced()` reads and clears.
    YOUNG = 26;
    /// The head of a free block on a per-CPU page list (the order field holds its order).
    /// The model's own mark: Linux sets no flag on such a page (kpageflags shows none), it
    /// only links it through `page->pcp_list`.
    PCP = 27;
}

const ORDER_SHIFT: u32 = 28;
const FLAG_MASK: u32 = (1 << ORDER_SHIFT) - 1;

impl PageFlags {
    /// No flags, order 0.
    pub const EMPTY: PageFlags = PageFlags(0);

    /// True if every bit of `other` is set.
    #[inline]
    pub fn contains(self, other: PageFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any bit of `other` is set.
    #[inline]
    pub fn intersects(self, other: PageFlags) -> bool {
        self.0 & other.0 & FLAG_MASK != 0
    }

    /// These flags with `other` set.
    #[inline]
    pub fn with(self, other: PageFlags) -> PageFlags {
        PageFlags(self.0 | other.0)
    }

    /// These flags with `other` cleared.
    #[inline]
    pub fn without(self, other: PageFlags) -> PageFlags {
        PageFlags(self.0 & !(other.0 & FLAG_MASK))
    }

    /// The order field (buddy order or compound order).
    #[inline]
    pub fn order(self) -> u8 {
        (self.0 >> ORDER_SHIFT) as u8
    }

    /// These flags with the order field set to `order`.
    #[inline]
    pub fn with_order(self, order: u8) -> PageFlags {
        debug_assert!(order < 16);
        PageFlags((self.0 & FLAG_MASK) | ((order as u32) << ORDER_SHIFT))
    }
}

impl std::ops::BitOr for PageFlags {
    type Output = PageFlags;
    fn bitor(self, rhs: PageFlags) -> PageFlags {
        PageFlags(self.0 | rhs.0)
    }
}

impl std::fmt::Debug for PageFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = Self::NAMED
            .iter()
            .filter(|(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
            .collect();
        write!(f, "[{}] order {}", names.join("|"), self.order())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_field_is_independent_of_flags() {
        let f = PageFlags::BUDDY.with_order(10).with(PageFlags::HEAD);
        assert_eq!(f.order(), 10);
        assert!(f.contains(PageFlags::BUDDY | PageFlags::HEAD));
        let g = f.without(PageFlags::BUDDY);
        assert_eq!(g.order(), 10);
        assert!(!g.contains(PageFlags::BUDDY));
        assert!(!g.with_order(0).intersects(PageFlags::BUDDY));
        assert_eq!(
            format!("{:?}", PageFlags::LRU | PageFlags::DIRTY),
            "[DIRTY|LRU] order 0"
        );
    }
}
