//! The clock's behaviour: writeback on the disk, reclaim throttling, `sync`, and
//! [`Machine::advance_to`], which runs the daemons and the disk in time order (the types it
//! moves are in the parent module).

use super::{Actor, Work, STAT_INTERVAL_NS};
use crate::machine::Machine;
use crate::owners::table::FolioId;
use crate::units::NodeId;

impl Machine {
    /// Starts writeback of a dirty folio (`folio_start_writeback()`): the disk writes it
    /// after what is queued before it, taking `writeback_ns` per page.
    pub(crate) fn start_writeback(&mut self, id: FolioId) {
        let rec = self.owners.folio(id);
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

    /// Mirrors `wait_on_page_writeback()` for each of `ids` under writeback: a direct
    /// reclaimer waits until the disk has written the last of them. Only the disk moves
    /// meanwhile; the wait is added to the allocation's latency. Returns it.
    pub(crate) fn wait_on_folio_writeback(&mut self, ids: &[FolioId]) -> u64 {
        let now = self.clock.now_ns;
        let last = self
            .clock
            .writeback
            .iter()
            .filter(|(_, id, stamp)| {
                ids.contains(&FolioId(*id))
                    && self
                        .owners
                        .get(FolioId(*id))
                        .is_some_and(|r| r.stamp == *stamp)
            })
            .map(|(done, _, _)| *done)
            .max();
        let Some(done) = last.filter(|d| *d > now) else {
            return 0;
        };
        self.clock.now_ns = done;
        self.complete_writeback();
        let waited = done - now;
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
            if rec.kind == crate::owners::table::FolioKind::File && !rec.orphan {
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
        let cpus = self.nr_cpus() as usize;
        if self.clock.vmstat_last.len() < cpus {
            self.clock.vmstat_last.resize(cpus, 0);
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
                if let Some(at) = self.kswapd_due(NodeId(n as u8), self.clock.kswapd_next[n]) {
                    consider(at, Actor::Kswapd(n as u8));
                }
                if self.config.compaction {
                    if self.nodes[n].kcompactd_pending {
                        consider(now, Actor::Kcompactd(n as u8));
                    } else if self.config.compaction_proactiveness > 0 {
                        let at = self.nodes[n].kcompactd.wake_at_ms;
                        consider(at.saturating_mul(1_000_000), Actor::Kcompactd(n as u8));
                    }
                }
            }
            for cpu in 0..cpus as u32 {
                if self.pcp_needs_decay(cpu) {
                    // vmstat_update() re-arms itself each whole second while there is work.
                    let last = self.clock.vmstat_last[cpu as usize];
                    let next = (last / STAT_INTERVAL_NS + 1) * STAT_INTERVAL_NS;
                    consider(
                        next.max(now.next_multiple_of(STAT_INTERVAL_NS)),
                        Actor::Vmstat(cpu),
                    );
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
                Actor::Vmstat(cpu) => {
                    self.clock.vmstat_last[cpu as usize] = at;
                    self.refresh_cpu_vm_stats(cpu);
                }
                Actor::Kswapd(n) => {
                    let cpu = self.daemon_cpu();
                    self.on_cpu(cpu, |m| m.kswapd_step(NodeId(n)));
                    let cost = self.config.costs.cost(&before, &Work::of(&self.vmstat))
                        + self.config.costs.daemon_step_ns;
                    self.clock.cpu.kswapd_ns[n as usize] += cost;
                    self.clock.kswapd_next[n as usize] = at + cost;
                }
                Actor::Kcompactd(n) => {
                    let cpu = self.daemon_cpu();
                    self.on_cpu(cpu, |m| m.kcompactd_run_until(NodeId(n), at / 1_000_000));
                    let cost = self.config.costs.cost(&before, &Work::of(&self.vmstat));
                    self.clock.cpu.kcompactd_ns[n as usize] += cost;
                }
            }
        }
        self.clock.now_ns = self.clock.now_ns.max(t);
    }

    /// Runs the daemons until none has work due now or soon: kswapd until it sleeps (its
    /// HZ/10 nap included, at whose end it may run again), pending kcompactd work, writes
    /// in flight. Proactive compaction's timer does not hold it up. Returns the time
    /// reached.
    pub fn settle(&mut self) -> u64 {
        let mut guard = 0;
        loop {
            guard += 1;
            assert!(guard < 10_000_000, "settle makes no progress");
            let nodes = self.nr_nodes();
            let busy = (0..nodes).any(|n| self.kswapd_due(NodeId(n as u8), 0).is_some())
                || self.nodes.iter().any(|p| p.kcompactd_pending)
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
