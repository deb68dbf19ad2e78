//! Simulated time: a logical clock in nanoseconds, the cost model that turns work into
//! time, and the daemons that run by it.
//!
//! Work is counted, not timed: the cost of an operation is the change in its work
//! counters (pages the compaction scanners scanned, pages migrated, pages reclaim scanned
//! and freed) priced by [`CostModel`]. A task's allocation costs `alloc_ns` plus the
//! direct reclaim and compaction it did; that is the request's latency. kswapd, kcompactd
//! and the disk (writeback completions) are actors with their own next-run times;
//! [`Machine::advance_to`](crate::machine::Machine::advance_to) runs them in time order up to a moment, ties broken by kind
//! (writeback, kswapd, kcompactd) and then by node, so a run is deterministic. The model
//! is single-threaded: an actor's step happens at once, and its cost decides when it can
//! run again.
//!
//! The defaults are calibrated on this project's machine (see docs/linux-map.md,
//! "Simulated time"): compaction's against the kernel's own `compact_memory` timings of
//! the real-kernel cases (`scripts/calibrate-costs.py`), reclaim's and writeback's against
//! `drop_caches` and `sync` timings (`scripts/measure-reclaim-costs.sh`).

pub mod advance;

use crate::event::VmEvent;
use crate::event::VmStat;
use crate::owners::table::FolioId;
use crate::units::NR_PAGE_ORDERS;
use std::collections::VecDeque;

/// What each kind of work costs, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostModel {
    /// One page allocation or free through the fast path.
    pub alloc_ns: u64,
    /// A page the migrate scanner passes (`compact_migrate_scanned`).
    pub migrate_scan_ns: u64,
    /// A page the free scanner passes (`compact_free_scanned`).
    pub free_scan_ns: u64,
    /// A page migrated: isolation, unmap, copy, remap, free (`pgmigrate_success`).
    pub migrate_page_ns: u64,
    /// A page reclaim scans on an LRU list (`pgscan_*`, `pgrefill`).
    pub reclaim_scan_ns: u64,
    /// A page reclaim frees (`pgsteal_*`, and `drop_caches`).
    pub reclaim_free_ns: u64,
    /// A page written back to its file or to swap: disk time, not CPU.
    pub writeback_ns: u64,
    /// The least time a daemon's step takes (a wake-up and a context switch).
    pub daemon_step_ns: u64,
    /// Making a hugetlb page of a fresh order-9 block (`prep_compound_page()` over its
    /// 512 pages, hugetlb's own init, the pool loop's `cond_resched()`): calibrated on the
    /// H_g4_s1 case, whose pool grew by 9,828 pages in 43 ms, nearly all from free blocks.
    pub hugetlb_folio_ns: u64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            alloc_ns: 100,
            migrate_scan_ns: 4,
            free_scan_ns: 43,
            migrate_page_ns: 1_491,
            reclaim_scan_ns: 100,
            reclaim_free_ns: 270,
            writeback_ns: 1_300,
            daemon_step_ns: 5_000,
            hugetlb_folio_ns: 4_275,
        }
    }
}

/// The work counters the cost model prices, read from the event counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// `compact_migrate_scanned`.
    pub migrate_scanned: u64,
    /// `compact_free_scanned`.
    pub free_scanned: u64,
    /// `pgmigrate_success`.
    pub migrated: u64,
    /// `pgscan_kswapd + pgscan_direct + pgrefill`.
    pub reclaim_scanned: u64,
    /// `pgsteal_kswapd + pgsteal_direct`.
    pub reclaimed: u64,
}

impl Work {
    /// The counters now.
    pub fn of(v: &VmStat) -> Work {
        Work {
            migrate_scanned: v[VmEvent::CompactMigrateScanned],
            free_scanned: v[VmEvent::CompactFreeScanned],
            migrated: v[VmEvent::PgmigrateSuccess],
            reclaim_scanned: v[VmEvent::PgscanKswapd]
                + v[VmEvent::PgscanDirect]
                + v[VmEvent::Pgrefill],
            reclaimed: v[VmEvent::PgstealKswapd] + v[VmEvent::PgstealDirect],
        }
    }
}

impl CostModel {
    /// The time `drop_caches` takes to drop `pages` page-cache pages
    /// (`invalidate_mapping_pages()`): each looked up in its mapping, as reclaim scans a
    /// page, then removed and freed, as reclaim frees one. (D_g4_s1: 555,305 pages at
    /// 370 ns is 205 ms; the kernel's write took 199 ms.)
    pub fn invalidate_ns(&self, pages: u64) -> u64 {
        pages * (self.reclaim_scan_ns + self.reclaim_free_ns)
    }

    /// The time the work between `a` and `b` takes.
    pub fn cost(&self, a: &Work, b: &Work) -> u64 {
        (b.migrate_scanned - a.migrate_scanned) * self.migrate_scan_ns
            + (b.free_scanned - a.free_scanned) * self.free_scan_ns
            + (b.migrated - a.migrated) * self.migrate_page_ns
            + (b.reclaim_scanned - a.reclaim_scanned) * self.reclaim_scan_ns
            + (b.reclaimed - a.reclaimed) * self.reclaim_free_ns
    }
}

/// Allocation latency per order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Requests.
    pub count: [u64; NR_PAGE_ORDERS],
    /// Total latency (ns).
    pub total_ns: [u64; NR_PAGE_ORDERS],
    /// Worst latency (ns).
    pub max_ns: [u64; NR_PAGE_ORDERS],
    /// Requests that went to the slow path.
    pub slow: [u64; NR_PAGE_ORDERS],
}

/// CPU time by actor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActorCpu {
    /// Tasks' allocations outside direct reclaim and compaction.
    pub tasks_ns: u64,
    /// Direct reclaim (in tasks' allocations).
    pub direct_reclaim_ns: u64,
    /// Direct compaction (in tasks' allocations).
    pub direct_compact_ns: u64,
    /// kswapd of each node.
    pub kswapd_ns: Vec<u64>,
    /// kcompactd of each node.
    pub kcompactd_ns: Vec<u64>,
}

/// The clock and what happened by it.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Now, in ns since boot.
    pub now_ns: u64,
    /// CPU time by actor.
    pub cpu: ActorCpu,
    /// Allocation latency.
    pub latency: Latency,
    /// The latency of the last allocation request.
    pub last_alloc_ns: u64,
    /// Writes in flight in submission order: (completion time, folio, its content stamp).
    /// The disk serves them one after another, so completion times never decrease.
    pub(crate) writeback: VecDeque<(u64, u32, u32)>,
    /// Dirty page-cache folios since the last `sync_all` (stale entries are skipped).
    pub(crate) dirty: Vec<FolioId>,
    /// When the disk is free again.
    pub(crate) disk_busy_until: u64,
    /// When each node's kswapd can run its next step.
    pub(crate) kswapd_next: Vec<u64>,
    /// When each CPU's vmstat tick last ran (`vmstat_update`).
    pub(crate) vmstat_last: Vec<u64>,
}

/// The kinds of actor, in tie-break order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Actor {
    Writeback,
    Kswapd(u8),
    Kcompactd(u8),
    Vmstat(u32),
}

/// `sysctl_stat_interval`: the vmstat tick of each CPU (HZ, one second).
pub const STAT_INTERVAL_NS: u64 = 1_000_000_000;

impl Clock {
    /// Writes in flight.
    pub fn writeback_in_flight(&self) -> usize {
        self.writeback.len()
    }
}
