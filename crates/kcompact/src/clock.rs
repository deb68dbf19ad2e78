//! Simulated time: a logical clock in nanoseconds, the cost model that turns work into
//! time, and the daemons that run by it.
//!
//! Work is counted, not timed: the cost of an operation is the change in its work
//! counters (pages the compaction scanners scanned, pages migrated, pages reclaim scanned
//! and freed) priced by [`CostModel`]. A task's allocation costs `alloc_ns` plus the
//! direct reclaim and compaction it did; that is the request's latency. kswapd, kcompactd
//! and the disk (writeback completions) are actors with their own next-run times;
//! [`Machine::advance_to`] runs them in time order up to a moment, ties broken by kind
//! (writeback, kswapd, kcompactd) and then by node, so a run is deterministic. The model
//! is single-threaded: an actor's step happens at once, and its cost decides when it can
//! run again.
//!
//! The defaults are calibrated on this project's machine (see docs/linux-map.md,
//! "Simulated time"): compaction's against the kernel's own `compact_memory` timings of
//! the real-kernel cases (`scripts/calibrate-costs.py`), reclaim's and writeback's against
//! `drop_caches` and `sync` timings (`scripts/measure-reclaim-costs.sh`).

use crate::event::VmStat;
use crate::machine::Machine;
use crate::owners::FolioId;
use crate::units::{NodeId, NR_PAGE_ORDERS};
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
            migrate_scanned: v.compact_migrate_scanned,
            free_scanned: v.compact_free_scanned,
            migrated: v.pgmigrate_success,
            reclaim_scanned: v.pgscan_kswapd + v.pgscan_direct + v.pgrefill,
            reclaimed: v.pgsteal_kswapd + v.pgsteal_direct,
        }
    }
}

impl CostModel {
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
    writeback: VecDeque<(u64, u32, u32)>,
    /// Dirty page-cache folios since the last `sync_all` (stale entries are skipped).
    pub(crate) dirty: Vec<FolioId>,
    /// When the disk is free again.
    disk_busy_until: u64,
    /// When each node's kswapd can run its next step.
    kswapd_next: Vec<u64>,
}

/// The kinds of actor, in tie-break order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Actor {
    Writeback,
    Kswapd(u8),
    Kcompactd(u8),
}

impl Clock {
    /// Writes in flight.
    pub fn writeback_in_flight(&self) -> usize {
        self.writeback.len()
    }
}

impl Machine {
    /// Starts writeback of a dirty folio (`folio_start_writeback()`): the disk writes it
    /// after what is queued before it, taking `writeback_ns` per page.
    pub(crate) fn start_writeback(&mut self, id: FolioId) {
        let rec = *self.owners.folio(id);
        if !self.folio_start_writeback(id) {
            return;
        }
        let c = &mut self.clock;
        let start = c.disk_busy_until.max(c.now_ns);
        let done = start + rec.order.nr_pages() * self.config.costs.writeback_ns;
        c.disk_busy_until = done;
        c.writeback.push_back((done, id.0, rec.stamp));
    }

    /// Completes every write due by `t` (`folio_end_writeback()`).
    fn complete_writeback(&mut self) {
        let now = self.clock.now_ns;
        while let Some((done, id, stamp)) = self.clock.writeback.front().copied() {
            if done > now {
                break;
            }
            self.clock.writeback.pop_front();
            let id = FolioId(id);
            let live = self.owners.get(id).is_some_and(|r| r.stamp == stamp);
            if live
                && self
                    .mem
                    .flags(self.owners.folio(id).pfn)
                    .contains(crate::memmap::PageFlags::WRITEBACK)
            {
                self.folio_end_writeback(id);
            }
        }
    }

    /// Mirrors `reclaim_throttle()` for a direct reclaimer that made no progress while
    /// writes are in flight: the task sleeps until `SWAP_CLUSTER_MAX` of them complete or
    /// 100 ms pass (`VMSCAN_THROTTLE_WRITEBACK`'s timeout, HZ/10). Only the disk moves
    /// meanwhile; the daemons catch up at the next [`Machine::advance_to`]. The wait is
    /// added to the allocation's latency. Returns it.
    pub(crate) fn reclaim_throttle_writeback(&mut self) -> u64 {
        if self.clock.writeback.is_empty() {
            return 0;
        }
        let now = self.clock.now_ns;
        let k = (crate::reclaim::SWAP_CLUSTER_MAX as usize).min(self.clock.writeback.len()) - 1;
        let kth = self.clock.writeback[k].0;
        let target = kth.min(now + 100_000_000).max(now);
        self.clock.now_ns = target;
        self.complete_writeback();
        let waited = target - now;
        self.clock.last_alloc_ns += waited;
        waited
    }

    /// Writes back every dirty page-cache folio and waits for it (`sync`).
    pub fn sync_all(&mut self) {
        let ids = std::mem::take(&mut self.clock.dirty);
        for id in ids {
            let Some(rec) = self.owners.get(id) else {
                continue;
            };
            // Regular files only: shmem has no backing store to write to.
            if rec.kind == crate::owners::FolioKind::File && !rec.orphan {
                self.start_writeback(id);
            }
        }
        let t = self.clock.disk_busy_until.max(self.clock.now_ns);
        self.advance_to(t);
    }

    /// Runs the daemons and the disk up to time `t` in time order, then sets the clock to
    /// `t` (never backwards).
    pub fn advance_to(&mut self, t: u64) {
        let nodes = self.nr_nodes();
        if self.clock.kswapd_next.len() < nodes {
            self.clock.kswapd_next.resize(nodes, 0);
            self.clock.cpu.kswapd_ns.resize(nodes, 0);
            self.clock.cpu.kcompactd_ns.resize(nodes, 0);
        }
        let mut guard = 0u64;
        loop {
            guard += 1;
            assert!(guard < 100_000_000, "the daemons make no progress");
            let now = self.clock.now_ns;
            let mut best: Option<(u64, Actor)> = None;
            let mut consider = |at: u64, a: Actor| {
                let at = at.max(now);
                if best.is_none_or(|b| (at, a) < b) {
                    best = Some((at, a));
                }
            };
            if let Some((done, _, _)) = self.clock.writeback.front() {
                consider(*done, Actor::Writeback);
            }
            for n in 0..nodes {
                if self.kswapd_runnable(NodeId(n as u8)) {
                    consider(self.clock.kswapd_next[n], Actor::Kswapd(n as u8));
                }
                if self.config.compaction {
                    if self.kcompactd_pending.contains(&NodeId(n as u8)) {
                        consider(now, Actor::Kcompactd(n as u8));
                    } else if self.config.compaction_proactiveness > 0 {
                        let at = self.kcompactd.get(n).map_or(
                            crate::compaction::kcompactd::HPAGE_FRAG_CHECK_INTERVAL_MSEC,
                            |k| k.wake_at_ms,
                        );
                        consider(at.saturating_mul(1_000_000), Actor::Kcompactd(n as u8));
                    }
                }
            }
            let Some((at, actor)) = best else { break };
            if at > t {
                break;
            }
            self.clock.now_ns = at;
            let before = Work::of(&self.vmstat);
            match actor {
                Actor::Writeback => self.complete_writeback(),
                Actor::Kswapd(n) => {
                    self.kswapd_step(NodeId(n));
                    let cost = self.config.costs.cost(&before, &Work::of(&self.vmstat))
                        + self.config.costs.daemon_step_ns;
                    self.clock.cpu.kswapd_ns[n as usize] += cost;
                    self.clock.kswapd_next[n as usize] = at + cost;
                }
                Actor::Kcompactd(n) => {
                    self.kcompactd_run_until(NodeId(n), at / 1_000_000);
                    let cost = self.config.costs.cost(&before, &Work::of(&self.vmstat));
                    self.clock.cpu.kcompactd_ns[n as usize] += cost;
                }
            }
        }
        self.clock.now_ns = self.clock.now_ns.max(t);
    }

    /// Runs the daemons until none has work due now or soon: kswapd until it sleeps,
    /// pending kcompactd work, writes in flight. Proactive compaction's timer does not
    /// hold it up. Returns the time reached.
    pub fn settle(&mut self) -> u64 {
        let mut guard = 0;
        loop {
            guard += 1;
            assert!(guard < 10_000_000, "settle makes no progress");
            let nodes = self.nr_nodes();
            let busy = (0..nodes).any(|n| self.kswapd_runnable(NodeId(n as u8)))
                || !self.kcompactd_pending.is_empty()
                || self.clock.writeback_in_flight() > 0;
            if !busy {
                return self.clock.now_ns;
            }
            let step = self.config.costs.daemon_step_ns.max(1) * 16;
            let t = self.clock.now_ns + step;
            self.advance_to(t);
        }
    }

    /// Records an allocation request's latency.
    pub(crate) fn note_latency(&mut self, order: u8, ns: u64, slow: bool) {
        let l = &mut self.clock.latency;
        let o = order as usize;
        l.count[o] += 1;
        l.total_ns[o] += ns;
        l.max_ns[o] = l.max_ns[o].max(ns);
        l.slow[o] += slow as u64;
        self.clock.last_alloc_ns = ns;
    }
}
