//! Events and counters: what the allocator did, named as Linux names it.
//!
//! [`VmStat`] holds the `/proc/vmstat` event counters the model keeps; [`ExtfragEvent`]
//! mirrors the `mm_page_alloc_extfrag` tracepoint. Reports fold these; they never re-scan
//! state to learn what happened.

use crate::memmap::MigrateType;
use crate::units::{Order, Pfn};

/// Mirrors the `kmem:mm_page_alloc_extfrag` tracepoint: an allocation fell back to
/// another migratetype's free block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExtfragEvent {
    /// First pfn of the allocated block.
    pub pfn: Pfn,
    /// The order asked for.
    pub alloc_order: Order,
    /// The order of the free block it came from.
    pub fallback_order: Order,
    /// The requested type.
    pub alloc_migratetype: MigrateType,
    /// The type of the list it came from.
    pub fallback_migratetype: MigrateType,
    /// The pageblock now has the requested type.
    pub change_ownership: bool,
    /// The fallback split a block smaller than a pageblock (mixing types in it).
    pub fragmenting: bool,
}

impl ExtfragEvent {
    /// The event text as the kernel's trace output prints it (after `mm_page_alloc_extfrag: `).
    pub fn trace_text(&self, pageblock_order: Order) -> String {
        format!(
            "page=0000000000000000 pfn=0x{:x} alloc_order={} fallback_order={} pageblock_order={} alloc_migratetype={} fallback_migratetype={} fragmenting={} change_ownership={}",
            self.pfn.0,
            self.alloc_order.0,
            self.fallback_order.0,
            pageblock_order.0,
            self.alloc_migratetype as u8,
            self.fallback_migratetype as u8,
            self.fragmenting as u8,
            self.change_ownership as u8
        )
    }
}

/// Event counters, with `/proc/vmstat` names where Linux has one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmStat {
    /// `pgalloc_*` summed: pages allocated.
    pub pgalloc: u64,
    /// `pgfree`: pages freed.
    pub pgfree: u64,
    /// Allocation requests that failed (no page returned); not a Linux counter.
    pub alloc_fail: u64,
    /// `mm_page_alloc_extfrag` events.
    pub alloc_extfrag: u64,
    /// ... of which fragmenting (fallback order below pageblock order).
    pub alloc_extfrag_fragmenting: u64,
    /// ... of which took the pageblock over (claim).
    pub alloc_extfrag_change_ownership: u64,
    /// Pageblocks reserved as MIGRATE_HIGHATOMIC.
    pub highatomic_reserved: u64,
    /// Reserved highatomic blocks released.
    pub highatomic_unreserved: u64,
    /// kswapd wake-ups requested by a boosted watermark (`wakeup_kswapd` from `rmqueue`).
    pub kswapd_boost_wake: u64,
    /// `pgmigrate_success`: base pages migrated.
    pub pgmigrate_success: u64,
    /// `pgmigrate_fail`: base pages that failed to migrate.
    pub pgmigrate_fail: u64,
    /// `thp_migration_success`.
    pub thp_migration_success: u64,
    /// `thp_migration_fail`.
    pub thp_migration_fail: u64,
    /// `thp_migration_split`.
    pub thp_migration_split: u64,
    /// `thp_split_page`: PMD-order folios split.
    pub thp_split_page: u64,
    /// `thp_split_page_failed`: PMD-order folios that could not be split.
    pub thp_split_page_failed: u64,
    /// `compact_migrate_scanned`.
    pub compact_migrate_scanned: u64,
    /// `compact_free_scanned`.
    pub compact_free_scanned: u64,
    /// `compact_isolated`: pages isolated by either scanner.
    pub compact_isolated: u64,
    /// `compact_stall`: direct compaction attempts.
    pub compact_stall: u64,
    /// `compact_fail`.
    pub compact_fail: u64,
    /// `compact_success`.
    pub compact_success: u64,
    /// Direct compactions that captured their block (not a Linux counter).
    pub compact_capture: u64,
    /// `compact_daemon_wake`.
    pub compact_daemon_wake: u64,
    /// `compact_daemon_migrate_scanned`.
    pub compact_daemon_migrate_scanned: u64,
    /// `compact_daemon_free_scanned`.
    pub compact_daemon_free_scanned: u64,
    /// NR_ISOLATED_ANON: anonymous (swap-backed) pages isolated from the LRU.
    pub nr_isolated_anon: u64,
    /// NR_ISOLATED_FILE: file pages isolated from the LRU.
    pub nr_isolated_file: u64,
    /// `pgscan_kswapd`: pages kswapd scanned on the inactive lists.
    pub pgscan_kswapd: u64,
    /// `pgscan_direct`: pages direct reclaim scanned.
    pub pgscan_direct: u64,
    /// `pgsteal_kswapd`: pages kswapd reclaimed.
    pub pgsteal_kswapd: u64,
    /// `pgsteal_direct`: pages direct reclaim reclaimed.
    pub pgsteal_direct: u64,
    /// `pgscan_anon`.
    pub pgscan_anon: u64,
    /// `pgscan_file`.
    pub pgscan_file: u64,
    /// `pgsteal_anon`.
    pub pgsteal_anon: u64,
    /// `pgsteal_file`.
    pub pgsteal_file: u64,
    /// `pgrefill`: pages scanned on the active lists.
    pub pgrefill: u64,
    /// `pgactivate`.
    pub pgactivate: u64,
    /// `pgdeactivate`.
    pub pgdeactivate: u64,
    /// `pgrotated`: written-back folios moved to the inactive tail.
    pub pgrotated: u64,
    /// `pswpin`: pages read back from swap.
    pub pswpin: u64,
    /// `pswpout`: pages written to swap.
    pub pswpout: u64,
    /// `pgmajfault`: faults that read from swap.
    pub pgmajfault: u64,
    /// `allocstall_*` summed: direct reclaim entries.
    pub allocstall: u64,
    /// `pageoutrun`: kswapd `balance_pgdat()` runs.
    pub pageoutrun: u64,
    /// kswapd wake-ups that found it asleep (not a Linux counter).
    pub kswapd_wake: u64,
    /// `nr_vmscan_write`: pages kswapd wrote back itself.
    pub nr_vmscan_write: u64,
    /// `nr_vmscan_immediate_reclaim`.
    pub nr_vmscan_immediate_reclaim: u64,
    /// `drop_pagecache`: writes of 1 or 3 to drop_caches.
    pub drop_pagecache: u64,
    /// `drop_slab`: writes of 2 or 3 to drop_caches.
    pub drop_slab: u64,
    /// `oom_kill`: processes the OOM killer killed.
    pub oom_kill: u64,
    /// `thp_fault_alloc`.
    pub thp_fault_alloc: u64,
    /// `thp_fault_fallback`.
    pub thp_fault_fallback: u64,
    /// `htlb_buddy_alloc_success`.
    pub htlb_buddy_alloc_success: u64,
    /// `htlb_buddy_alloc_fail`.
    pub htlb_buddy_alloc_fail: u64,
    /// __GFP_NOFAIL requests the model gave up on after its loop bound (not a Linux counter).
    pub nofail_gave_up: u64,
}

impl VmStat {
    /// Counts an extfrag event.
    pub fn note_extfrag(&mut self, ev: &ExtfragEvent) {
        self.alloc_extfrag += 1;
        self.alloc_extfrag_fragmenting += ev.fragmenting as u64;
        self.alloc_extfrag_change_ownership += ev.change_ownership as u64;
    }

    /// The counters as (name, value) pairs.
    pub fn pairs(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("pgalloc", self.pgalloc),
            ("pgfree", self.pgfree),
            ("alloc_fail", self.alloc_fail),
            ("alloc_extfrag", self.alloc_extfrag),
            ("alloc_extfrag_fragmenting", self.alloc_extfrag_fragmenting),
            (
                "alloc_extfrag_change_ownership",
                self.alloc_extfrag_change_ownership,
            ),
            ("highatomic_reserved", self.highatomic_reserved),
            ("highatomic_unreserved", self.highatomic_unreserved),
            ("kswapd_boost_wake", self.kswapd_boost_wake),
            ("pgmigrate_success", self.pgmigrate_success),
            ("pgmigrate_fail", self.pgmigrate_fail),
            ("thp_migration_success", self.thp_migration_success),
            ("thp_migration_fail", self.thp_migration_fail),
            ("thp_migration_split", self.thp_migration_split),
            ("compact_migrate_scanned", self.compact_migrate_scanned),
            ("compact_free_scanned", self.compact_free_scanned),
            ("compact_isolated", self.compact_isolated),
            ("compact_stall", self.compact_stall),
            ("compact_fail", self.compact_fail),
            ("compact_success", self.compact_success),
            ("compact_capture", self.compact_capture),
            ("compact_daemon_wake", self.compact_daemon_wake),
            (
                "compact_daemon_migrate_scanned",
                self.compact_daemon_migrate_scanned,
            ),
            (
                "compact_daemon_free_scanned",
                self.compact_daemon_free_scanned,
            ),
            ("thp_split_page", self.thp_split_page),
            ("thp_split_page_failed", self.thp_split_page_failed),
            ("nr_isolated_anon", self.nr_isolated_anon),
            ("nr_isolated_file", self.nr_isolated_file),
            ("pgscan_kswapd", self.pgscan_kswapd),
            ("pgscan_direct", self.pgscan_direct),
            ("pgsteal_kswapd", self.pgsteal_kswapd),
            ("pgsteal_direct", self.pgsteal_direct),
            ("pgscan_anon", self.pgscan_anon),
            ("pgscan_file", self.pgscan_file),
            ("pgsteal_anon", self.pgsteal_anon),
            ("pgsteal_file", self.pgsteal_file),
            ("pgrefill", self.pgrefill),
            ("pgactivate", self.pgactivate),
            ("pgdeactivate", self.pgdeactivate),
            ("pgrotated", self.pgrotated),
            ("pswpin", self.pswpin),
            ("pswpout", self.pswpout),
            ("pgmajfault", self.pgmajfault),
            ("allocstall", self.allocstall),
            ("pageoutrun", self.pageoutrun),
            ("kswapd_wake", self.kswapd_wake),
            ("nr_vmscan_write", self.nr_vmscan_write),
            (
                "nr_vmscan_immediate_reclaim",
                self.nr_vmscan_immediate_reclaim,
            ),
            ("drop_pagecache", self.drop_pagecache),
            ("drop_slab", self.drop_slab),
            ("oom_kill", self.oom_kill),
            ("thp_fault_alloc", self.thp_fault_alloc),
            ("thp_fault_fallback", self.thp_fault_fallback),
            ("htlb_buddy_alloc_success", self.htlb_buddy_alloc_success),
            ("htlb_buddy_alloc_fail", self.htlb_buddy_alloc_fail),
            ("nofail_gave_up", self.nofail_gave_up),
        ]
    }
}
