//! The compaction control and outcomes (the role of `struct compact_control` in
//! mm/internal.h and the enums of include/linux/compaction.h): types only, so the
//! tracepoints and the state below the behaviour files can name them.

use crate::gfp::{AllocFlags, Gfp};
use crate::layout::ZoneType;
use crate::memmap::MigrateType;
use crate::migrate::mode::MigrateMode;
use crate::owners::table::FolioId;
use crate::units::{Order, Pfn, ZoneIdx, NR_PAGE_ORDERS};

/// Mirrors `enum compact_result`; ordered as the kernel orders it (callers take the max).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum CompactResult {
    /// COMPACT_NOT_SUITABLE_ZONE.
    NotSuitableZone,
    /// COMPACT_SKIPPED: not enough free memory to compact.
    Skipped,
    /// COMPACT_DEFERRED: compaction failed recently; not tried.
    Deferred,
    /// COMPACT_NO_SUITABLE_PAGE.
    NoSuitablePage,
    /// COMPACT_CONTINUE.
    Continue,
    /// COMPACT_COMPLETE: the whole zone was scanned.
    Complete,
    /// COMPACT_PARTIAL_SKIPPED: the scanners met but part of the zone was skipped.
    PartialSkipped,
    /// COMPACT_CONTENDED: aborted (lock contention, fatal signal, no destination).
    Contended,
    /// COMPACT_SUCCESS: a page of the requested order is free.
    Success,
}

/// How one zone's compaction ended, as the `mm_compaction_end` tracepoint reports it, with
/// the scanners' work (`compact_migrate_scanned` / `compact_free_scanned` for the zone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactEnd {
    /// The zone compacted.
    pub zone: ZoneIdx,
    /// The status (`complete`, `contended`, ...).
    pub status: CompactResult,
    /// Where the migrate scanner stopped.
    pub migrate_pfn: Pfn,
    /// Where the free scanner stopped.
    pub free_pfn: Pfn,
    /// Pages the migrate scanner looked at.
    pub migrate_scanned: u64,
    /// Pages the free scanner looked at.
    pub free_scanned: u64,
}

impl CompactResult {
    /// The name trace output uses.
    pub fn name(self) -> &'static str {
        match self {
            CompactResult::NotSuitableZone => "not_suitable_zone",
            CompactResult::Skipped => "skipped",
            CompactResult::Deferred => "deferred",
            CompactResult::NoSuitablePage => "no_suitable_page",
            CompactResult::Continue => "continue",
            CompactResult::Complete => "complete",
            CompactResult::PartialSkipped => "partial_skipped",
            CompactResult::Contended => "contended",
            CompactResult::Success => "success",
        }
    }

    /// Every result, in the kernel's order.
    pub const ALL: [CompactResult; 9] = [
        CompactResult::NotSuitableZone,
        CompactResult::Skipped,
        CompactResult::Deferred,
        CompactResult::NoSuitablePage,
        CompactResult::Continue,
        CompactResult::Complete,
        CompactResult::PartialSkipped,
        CompactResult::Contended,
        CompactResult::Success,
    ];

    /// The result named `name` in trace output (`complete`, `contended`, ...).
    pub fn from_name(name: &str) -> Option<CompactResult> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// Mirrors `enum compact_priority`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum CompactPriority {
    /// COMPACT_PRIO_SYNC_FULL: whole zone, skip hints and block suitability ignored.
    SyncFull = 0,
    /// COMPACT_PRIO_SYNC_LIGHT (the default for costly orders).
    SyncLight = 1,
    /// COMPACT_PRIO_ASYNC (the first attempt).
    Async = 2,
}

/// `cc->fast_start_pfn`: where `reinit_migrate_pfn()` may restart the migrate scanner (the
/// kernel's 0 and `ULONG_MAX` as variants).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FastStart {
    /// 0: no fast search found a free page yet.
    Unset,
    /// The lowest free page a fast search found.
    Found(Pfn),
    /// `ULONG_MAX`: the migrate scanner was restarted there once; not again.
    Used,
}

/// `COMPACT_CLUSTER_MAX`: pages isolated per migrate-scanner batch.
pub const COMPACT_CLUSTER_MAX: u64 = 32;

/// `COMPACTION_HPAGE_ORDER`.
pub const COMPACTION_HPAGE_ORDER: i32 = 9;

/// Mirrors `struct compact_control`.
#[derive(Clone, Debug)]
pub struct CompactControl {
    /// `freepages[order]`: isolated free blocks, kept at their buddy order.
    pub freepages: [Vec<Pfn>; NR_PAGE_ORDERS],
    /// `migratepages`: isolated folios to move.
    pub migratepages: Vec<FolioId>,
    /// `nr_freepages`: pages on `freepages`.
    pub nr_freepages: u64,
    /// `nr_migratepages`: pages still to migrate.
    pub nr_migratepages: u64,
    /// `free_pfn`: where the free scanner goes on (downward).
    pub free_pfn: Pfn,
    /// `migrate_pfn`: where the migrate scanner goes on (upward).
    pub migrate_pfn: Pfn,
    /// The zone being compacted.
    pub zone: ZoneIdx,
    /// `total_migrate_scanned`.
    pub total_migrate_scanned: u64,
    /// `total_free_scanned`.
    pub total_free_scanned: u64,
    /// `gfp_mask`.
    pub gfp_mask: Gfp,
    /// `order`: the order wanted, or `None` to compact the whole zone (the kernel's −1,
    /// `is_via_compact_memory()`).
    pub order: Option<Order>,
    /// `migratetype` (from `gfp_mask`).
    pub migratetype: MigrateType,
    /// `alloc_flags`.
    pub alloc_flags: AllocFlags,
    /// `highest_zoneidx`.
    pub highest_zoneidx: ZoneType,
    /// `mode`.
    pub mode: MigrateMode,
    /// `ignore_skip_hint`.
    pub ignore_skip_hint: bool,
    /// `no_set_skip_hint`.
    pub no_set_skip_hint: bool,
    /// `ignore_block_suitable`.
    pub ignore_block_suitable: bool,
    /// `direct_compaction`.
    pub direct_compaction: bool,
    /// `proactive_compaction`.
    pub proactive_compaction: bool,
    /// `whole_zone`.
    pub whole_zone: bool,
    /// `contended`.
    pub contended: bool,
    /// `finish_pageblock`.
    pub finish_pageblock: bool,
    /// `fast_start_pfn`: the lowest free page a fast migrate search found.
    pub fast_start_pfn: FastStart,
    /// `fast_search_fail`: failed fast searches (shared by both scanners).
    pub fast_search_fail: u32,
    /// `search_order`: where the next fast free search starts.
    pub search_order: i32,
}

impl CompactControl {
    /// A control for `order` (`None`: the whole zone) with `gfp` in `mode`; every flag off.
    pub fn new(zone: ZoneIdx, order: Option<Order>, gfp: Gfp, mode: MigrateMode) -> CompactControl {
        CompactControl {
            freepages: Default::default(),
            migratepages: Vec::new(),
            nr_freepages: 0,
            nr_migratepages: 0,
            free_pfn: Pfn(0),
            migrate_pfn: Pfn(0),
            zone,
            total_migrate_scanned: 0,
            total_free_scanned: 0,
            gfp_mask: gfp,
            order,
            migratetype: gfp.migratetype(true),
            alloc_flags: AllocFlags::default(),
            highest_zoneidx: ZoneType::Dma,
            mode,
            ignore_skip_hint: false,
            no_set_skip_hint: false,
            ignore_block_suitable: false,
            direct_compaction: false,
            proactive_compaction: false,
            whole_zone: false,
            contended: false,
            finish_pageblock: false,
            fast_start_pfn: FastStart::Unset,
            fast_search_fail: 0,
            search_order: order.map_or(-1, |o| o.0 as i32),
        }
    }

    /// The order as the kernel's `int` holds it (−1 for the whole zone), for the
    /// arithmetic and the trace lines that use that form.
    pub fn order_int(&self) -> i32 {
        self.order.map_or(-1, |o| o.0 as i32)
    }

    /// Mirrors `freelist_scan_limit()`.
    pub fn freelist_scan_limit(&self) -> u64 {
        (COMPACT_CLUSTER_MAX >> self.fast_search_fail.min(63)) + 1
    }

    /// Mirrors `compact_scanners_met()`.
    pub fn scanners_met(&self, pb_order: Order) -> bool {
        (self.free_pfn.0 >> pb_order.0) <= (self.migrate_pfn.0 >> pb_order.0)
    }
}

/// Mirrors `compact_gap()` of mainline (`2 << order`).
pub fn compact_gap(order: i32) -> u64 {
    2u64 << order.max(0)
}
