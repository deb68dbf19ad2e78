//! Per-pageblock state: the migratetype and the compaction skip hint.
//!
//! Mirrors `pageblock_flags` (include/linux/pageblock-flags.h): three migratetype bits,
//! `PB_compact_skip`, and — as since Linux 6.17 — a separate `PB_migrate_isolate` bit, so
//! that isolating a block and undoing it restores the type it had. The getter reports
//! `Isolate` while that bit is set, as `get_pageblock_migratetype()` does.

use crate::units::{Order, PageblockIdx, Pfn};

/// Mirrors `enum migratetype` (include/linux/mmzone.h) with CONFIG_CMA.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[repr(u8)]
pub enum MigrateType {
    /// MIGRATE_UNMOVABLE: kernel allocations that never move.
    Unmovable = 0,
    /// MIGRATE_MOVABLE: user and page-cache pages that migration can move.
    Movable = 1,
    /// MIGRATE_RECLAIMABLE: slab caches reclaim can shrink.
    Reclaimable = 2,
    /// MIGRATE_HIGHATOMIC: the high-order atomic reserve.
    HighAtomic = 3,
    /// MIGRATE_CMA: contiguous-memory-allocator area, movable allocations only.
    Cma = 4,
    /// MIGRATE_ISOLATE: blocks being isolated; never allocated from, never merged across.
    Isolate = 5,
}

/// Mirrors `MIGRATE_PCPTYPES`: the types with per-cpu lists and the "mergeable" ones.
pub const MIGRATE_PCPTYPES: usize = 3;
/// Mirrors `MIGRATE_TYPES` with CONFIG_CMA (the model always has room for CMA lists).
pub const MIGRATE_TYPES: usize = 6;

impl MigrateType {
    /// Every migratetype in the kernel's enum order.
    pub const ALL: [MigrateType; MIGRATE_TYPES] = [
        MigrateType::Unmovable,
        MigrateType::Movable,
        MigrateType::Reclaimable,
        MigrateType::HighAtomic,
        MigrateType::Cma,
        MigrateType::Isolate,
    ];

    /// The type from its numeric value.
    pub fn from_u8(v: u8) -> Option<MigrateType> {
        Self::ALL.get(v as usize).copied()
    }

    /// The type as an index into per-type arrays.
    #[inline]
    pub fn idx(self) -> usize {
        self as usize
    }

    /// Mirrors `migratetype_names[]` (mm/vmstat.c).
    pub fn name(self) -> &'static str {
        match self {
            MigrateType::Unmovable => "Unmovable",
            MigrateType::Movable => "Movable",
            MigrateType::Reclaimable => "Reclaimable",
            MigrateType::HighAtomic => "HighAtomic",
            MigrateType::Cma => "CMA",
            MigrateType::Isolate => "Isolate",
        }
    }

    /// Mirrors `migratetype_is_mergeable()`: types below MIGRATE_PCPTYPES may merge with
    /// each other at pageblock order and above.
    #[inline]
    pub fn is_mergeable(self) -> bool {
        (self as usize) < MIGRATE_PCPTYPES
    }

    /// Mirrors `is_migrate_movable()`: MOVABLE or CMA.
    #[inline]
    pub fn is_movable(self) -> bool {
        matches!(self, MigrateType::Movable | MigrateType::Cma)
    }
}

const MT_MASK: u8 = 0b111;
const PB_COMPACT_SKIP: u8 = 1 << 3;
const PB_MIGRATE_ISOLATE: u8 = 1 << 4;

/// One byte per pageblock: migratetype, skip hint, isolate bit.
#[derive(Clone, Debug)]
pub struct Pageblocks {
    bits: Vec<u8>,
    order: Order,
}

impl Pageblocks {
    /// Pageblocks covering pfns `0 .. end`, all MOVABLE (as `memmap_init_range()` leaves
    /// them at boot).
    pub fn new(end: Pfn, order: Order) -> Pageblocks {
        let n = end.0.div_ceil(order.nr_pages()) as usize;
        Pageblocks {
            bits: vec![MigrateType::Movable as u8; n],
            order,
        }
    }

    /// `pageblock_order`.
    #[inline]
    pub fn order(&self) -> Order {
        self.order
    }

    /// `pageblock_nr_pages`.
    #[inline]
    pub fn nr_pages(&self) -> u64 {
        self.order.nr_pages()
    }

    /// The number of pageblocks.
    pub fn len(&self) -> usize {
        self.bits.len()
    }

    /// True if there are no pageblocks.
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    /// Mirrors `get_pfnblock_migratetype()`.
    #[inline]
    pub fn migratetype(&self, pfn: Pfn) -> MigrateType {
        self.block_migratetype(pfn.pageblock(self.order))
    }

    /// The migratetype of pageblock `pb`.
    #[inline]
    pub fn block_migratetype(&self, pb: PageblockIdx) -> MigrateType {
        let v = self.bits[pb.idx()];
        if v & PB_MIGRATE_ISOLATE != 0 {
            MigrateType::Isolate
        } else {
            MigrateType::from_u8(v & MT_MASK).expect("valid migratetype bits")
        }
    }

    /// The type kept under the isolate bit (what the block returns to when un-isolated).
    #[inline]
    pub fn underlying_migratetype(&self, pfn: Pfn) -> MigrateType {
        MigrateType::from_u8(self.bits[pfn.pageblock(self.order).idx()] & MT_MASK)
            .expect("valid migratetype bits")
    }

    /// Mirrors `set_pageblock_migratetype()` (isolation goes through [`Self::set_isolate`]).
    #[inline]
    pub fn set_migratetype(&mut self, pfn: Pfn, mt: MigrateType) {
        assert!(mt != MigrateType::Isolate, "isolation uses set_isolate");
        let v = &mut self.bits[pfn.pageblock(self.order).idx()];
        *v = (*v & !MT_MASK) | mt as u8;
    }

    /// Sets or clears `PB_migrate_isolate` on the block holding `pfn`.
    pub fn set_isolate(&mut self, pfn: Pfn, on: bool) {
        let v = &mut self.bits[pfn.pageblock(self.order).idx()];
        if on {
            *v |= PB_MIGRATE_ISOLATE;
        } else {
            *v &= !PB_MIGRATE_ISOLATE;
        }
    }

    /// Mirrors `get_pageblock_skip()`.
    #[inline]
    pub fn skip(&self, pfn: Pfn) -> bool {
        self.bits[pfn.pageblock(self.order).idx()] & PB_COMPACT_SKIP != 0
    }

    /// Mirrors `set_pageblock_skip()` / `clear_pageblock_skip()`.
    #[inline]
    pub fn set_skip(&mut self, pfn: Pfn, on: bool) {
        let v = &mut self.bits[pfn.pageblock(self.order).idx()];
        if on {
            *v |= PB_COMPACT_SKIP;
        } else {
            *v &= !PB_COMPACT_SKIP;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolate_bit_shadows_and_restores_the_type() {
        let mut pb = Pageblocks::new(Pfn(4096), Order(9));
        assert_eq!(pb.len(), 8);
        assert_eq!(pb.migratetype(Pfn(600)), MigrateType::Movable);
        pb.set_migratetype(Pfn(600), MigrateType::Reclaimable);
        pb.set_isolate(Pfn(512), true);
        assert_eq!(pb.migratetype(Pfn(1023)), MigrateType::Isolate);
        pb.set_skip(Pfn(512), true);
        pb.set_isolate(Pfn(512), false);
        assert_eq!(pb.migratetype(Pfn(1023)), MigrateType::Reclaimable);
        assert!(pb.skip(Pfn(700)));
        assert!(!pb.skip(Pfn(0)));
    }

    #[test]
    fn mergeable_and_movable_types() {
        let mergeable: Vec<_> = MigrateType::ALL
            .iter()
            .filter(|m| m.is_mergeable())
            .collect();
        assert_eq!(mergeable.len(), 3);
        assert!(!MigrateType::HighAtomic.is_mergeable());
        assert!(!MigrateType::Cma.is_mergeable());
        assert!(!MigrateType::Isolate.is_mergeable());
        assert!(MigrateType::Cma.is_movable() && MigrateType::Movable.is_movable());
    }
}
