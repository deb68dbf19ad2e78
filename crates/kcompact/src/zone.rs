//! Zones: free areas, watermarks, lowmem reserves and the zone's free-page counters.
//!
//! Mirrors `struct zone` (include/linux/mmzone.h) for the fields anti-fragmentation reads.
//! Compaction's per-zone state (cached scanner pfns, deferral) joins it with the compaction
//! engine.

use crate::layout::{ZoneType, MAX_NR_ZONES};
use crate::memmap::list::PageList;
use crate::memmap::pageblock::MIGRATE_TYPES;
use crate::mmzone::PerCpuPages;
use crate::units::{NodeId, Pfn, NR_PAGE_ORDERS};

/// Mirrors `enum zone_watermarks`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wmark {
    /// WMARK_MIN.
    Min = 0,
    /// WMARK_LOW.
    Low = 1,
    /// WMARK_HIGH.
    High = 2,
    /// WMARK_PROMO.
    Promo = 3,
}

/// Mirrors `struct free_area`: one free list per migratetype and the count of free blocks
/// of this order over all of them.
#[derive(Clone, Debug, Default)]
pub struct FreeArea {
    /// `free_list[migratetype]`: free block heads, linked through the memory map.
    pub free_list: [PageList; MIGRATE_TYPES],
    /// `nr_free`: free blocks of this order, all types together.
    pub nr_free: u64,
}

/// Mirrors `struct zone`, the parts the buddy allocator and its views use.
#[derive(Clone, Debug)]
pub struct Zone {
    /// The node (`zone->zone_pgdat->node_id`).
    pub node: NodeId,
    /// Which zone of the node.
    pub zone_type: ZoneType,
    /// `zone_start_pfn`.
    pub zone_start_pfn: Pfn,
    /// `spanned_pages`.
    pub spanned_pages: u64,
    /// `present_pages`.
    pub present_pages: u64,
    /// `managed_pages`: pages the buddy allocator manages (free or allocated from it).
    pub managed_pages: u64,
    /// `cma_pages`: pages of the zone in CMA areas.
    pub cma_pages: u64,
    /// `_watermark[MIN, LOW, HIGH, PROMO]` without the boost.
    pub watermark: [u64; 4],
    /// `watermark_boost`: raised by fallback allocations that fragment, worked off by kswapd.
    pub watermark_boost: u64,
    /// `lowmem_reserve[]`: pages this zone keeps back from allocations that could use a
    /// higher zone (zoneinfo's `protection`).
    pub lowmem_reserve: [u64; MAX_NR_ZONES],
    /// `nr_reserved_highatomic`: pages in pageblocks reserved as MIGRATE_HIGHATOMIC.
    pub nr_reserved_highatomic: u64,
    /// `nr_free_highatomic`: free pages in those blocks.
    pub nr_free_highatomic: u64,
    /// `free_area[order]`.
    pub free_area: [FreeArea; NR_PAGE_ORDERS],
    /// NR_FREE_PAGES: free pages in the buddy allocator, isolated blocks excluded.
    pub nr_free_pages: u64,
    /// NR_FREE_CMA_PAGES.
    pub nr_free_cma: u64,
    /// NR_FREE_PAGES_BLOCKS: free pages in blocks of pageblock order or more, isolated
    /// blocks excluded.
    pub nr_free_pages_blocks: u64,
    /// `ZONE_BOOSTED_WATERMARK`: a fallback boosted the watermark; kswapd should be woken.
    pub boosted_watermark: bool,
    /// Compaction's per-zone state.
    pub compact: ZoneCompaction,
    /// `NR_ZONE_INACTIVE_ANON` … `NR_ZONE_UNEVICTABLE`: pages on each LRU list.
    pub nr_lru: [u64; crate::mmzone::NR_LRU_LISTS],
    /// `per_cpu_pageset`: each CPU's free-page lists (empty when `pcp=off`).
    pub pageset: Vec<PerCpuPages>,
    /// `pageset_high_min`, `pageset_high_max`, `pageset_batch`: what every CPU's pcp was
    /// last sized to (`zone_set_pageset_high_and_batch()`).
    pub pageset_sizes: (u64, u64, u64),
    /// `ZONE_BELOW_HIGH`: an allocation found the zone below its high watermark; frees
    /// shrink `pcp->high` until a drain brings it back above.
    pub below_high: bool,
    /// `ZONE_RECLAIM_ACTIVE`: kswapd is reclaiming the zone; the pcps keep few pages.
    pub reclaim_active: bool,
}

/// The zone fields compaction keeps between runs (`struct zone`, CONFIG_COMPACTION).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneCompaction {
    /// `compact_cached_free_pfn`: where the free scanner resumes.
    pub cached_free_pfn: Pfn,
    /// `compact_cached_migrate_pfn[ASYNC, SYNC]`: where the migrate scanner resumes.
    pub cached_migrate_pfn: [Pfn; 2],
    /// `compact_init_migrate_pfn`: the first block worth scanning, set by a skip-bit reset.
    pub init_migrate_pfn: Pfn,
    /// `compact_init_free_pfn`.
    pub init_free_pfn: Pfn,
    /// `compact_considered`: attempts skipped since the last deferral.
    pub considered: u32,
    /// `compact_defer_shift`: attempts to skip are `2^shift`.
    pub defer_shift: u32,
    /// `compact_order_failed`: deferral applies to orders at or above this.
    pub order_failed: i32,
    /// `compact_blockskip_flush`: the skip bits should be cleared on the next reset.
    pub blockskip_flush: bool,
}

impl Zone {
    /// An empty zone of the given span; free lists empty, watermarks zero.
    pub fn new(
        node: NodeId,
        zone_type: ZoneType,
        start: Pfn,
        spanned: u64,
        present: u64,
        managed: u64,
    ) -> Zone {
        Zone {
            node,
            zone_type,
            zone_start_pfn: start,
            spanned_pages: spanned,
            present_pages: present,
            managed_pages: managed,
            cma_pages: 0,
            watermark: [0; 4],
            watermark_boost: 0,
            lowmem_reserve: [0; MAX_NR_ZONES],
            nr_reserved_highatomic: 0,
            nr_free_highatomic: 0,
            free_area: Default::default(),
            nr_free_pages: 0,
            nr_free_cma: 0,
            nr_free_pages_blocks: 0,
            boosted_watermark: false,
            compact: ZoneCompaction::default(),
            nr_lru: [0; crate::mmzone::NR_LRU_LISTS],
            pageset: Vec::new(),
            pageset_sizes: (0, 0, 0),
            below_high: false,
            reclaim_active: false,
        }
    }

    /// `zone_end_pfn()`.
    #[inline]
    pub fn end_pfn(&self) -> Pfn {
        self.zone_start_pfn.plus(self.spanned_pages)
    }

    /// `zone_spans_pfn()`.
    #[inline]
    pub fn spans(&self, pfn: Pfn) -> bool {
        self.zone_start_pfn <= pfn && pfn < self.end_pfn()
    }

    /// Free pages on every CPU's per-CPU lists of this zone (the sum of zoneinfo's
    /// `count:`), which NR_FREE_PAGES and buddyinfo do not show.
    pub fn pcp_pages(&self) -> u64 {
        self.pageset.iter().map(|p| p.count).sum()
    }

    /// `populated_zone()`: the zone has present pages.
    #[inline]
    pub fn is_populated(&self) -> bool {
        self.present_pages > 0
    }

    /// `zone->name`.
    pub fn name(&self) -> &'static str {
        self.zone_type.name()
    }

    /// Mirrors `wmark_pages()`: the watermark plus the current boost.
    #[inline]
    pub fn wmark_pages(&self, w: Wmark) -> u64 {
        self.watermark[w as usize] + self.watermark_boost
    }

    /// `min_wmark_pages()`.
    pub fn min_wmark_pages(&self) -> u64 {
        self.wmark_pages(Wmark::Min)
    }

    /// `low_wmark_pages()`.
    pub fn low_wmark_pages(&self) -> u64 {
        self.wmark_pages(Wmark::Low)
    }

    /// `high_wmark_pages()`.
    pub fn high_wmark_pages(&self) -> u64 {
        self.wmark_pages(Wmark::High)
    }

    /// Free blocks of each order (buddyinfo's columns).
    pub fn free_by_order(&self) -> [u64; NR_PAGE_ORDERS] {
        std::array::from_fn(|o| self.free_area[o].nr_free)
    }
}
