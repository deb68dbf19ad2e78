//! The buddy allocator: free lists per order and migratetype, merge on free, split on
//! allocation, and the anti-fragmentation fallback rules.
//!
//! Mirrors `mm/page_alloc.c` of Linux 6.15+ (the `__rmqueue_claim` / `__rmqueue_steal`
//! structure). The files split it the way the kernel's functions group:
//!
//! - [`free`]: accounting (`account_freepages`), the free-list primitives, merging
//!   (`__free_one_page`), `split_large_buddy`, moving a block's free pages between types.
//! - [`rmqueue`]: `expand`, `__rmqueue_smallest`, the fallback table, claim and steal,
//!   `boost_watermark`, `rmqueue_buddy`.
//! - [`pcp`]: the per-CPU page lists (`rmqueue_pcplist`, `free_frozen_page_commit`,
//!   `free_pcppages_bulk`, `high` auto-tuning and decay, the drains).
//! - [`highatomic`]: the high-order atomic reserve.
//! - [`watermark`]: `min_free_kbytes`, watermarks, lowmem reserves, `__zone_watermark_ok`.
//!
//! Every function here acts on one zone, as the kernel's do under `zone->lock`, and keeps
//! the zone's counters (NR_FREE_PAGES, NR_FREE_CMA_PAGES, NR_FREE_PAGES_BLOCKS,
//! `nr_free_highatomic`, `nr_free`) exactly as the kernel does; `crate::verify` recounts them.

pub mod free;
pub mod highatomic;
pub mod isolate;
pub mod pcp;
pub mod rmqueue;

pub use rmqueue::RmqueueMode;
pub mod watermark;

/// Mirrors `fpi_t` (FPI_* flags of `__free_one_page()`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct FreeFlags(pub u8);

impl FreeFlags {
    /// FPI_NONE.
    pub const NONE: FreeFlags = FreeFlags(0);
    /// FPI_TO_TAIL: put the merged block at the tail of its free list.
    pub const TO_TAIL: FreeFlags = FreeFlags(1 << 1);

    /// True if `other` is set.
    pub fn has(self, other: FreeFlags) -> bool {
        self.0 & other.0 != 0
    }
}
