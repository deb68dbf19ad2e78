//! kcompactd, the per-node compaction thread, and proactive compaction.
//!
//! Mirrors `kcompactd()`, `kcompactd_do_work()`, `wakeup_kcompactd()`,
//! `kcompactd_node_suitable()` and the proactive part (`should_proactive_compact_node()`,
//! `fragmentation_score_node()`). The thread is a state machine driven by simulated time:
//! [`Machine::kcompactd_run_until`] does what the thread would have done up to a moment —
//! on-demand work when woken, proactive compaction every 500 ms, backing off to 32 s when
//! it makes no progress.

use super::{CompactControl, CompactResult};
use crate::event::VmEvent;
use crate::event::{KcompactdWake, Tracepoint};
use crate::gfp::{AllocFlags, Gfp};
use crate::layout::{ZoneType, MAX_NR_ZONES};
use crate::machine::Machine;
use crate::migrate::MigrateMode;
use crate::mmzone::{Kcompactd, HPAGE_FRAG_CHECK_INTERVAL_MSEC};
use crate::units::{NodeId, Order};

/// `COMPACT_MAX_DEFER_SHIFT` as used for the proactive backoff.
const PROACTIVE_BACKOFF_SHIFT: u32 = 6;

impl Machine {
    fn kcompactd_state(&mut self, node: NodeId) -> &mut Kcompactd {
        &mut self.node_data_mut(node).kcompactd
    }

    /// Mirrors `fragmentation_score_node()`: the zones' scores weighted by their share of
    /// the node's present pages.
    pub fn fragmentation_score_node(&self, node: NodeId) -> u64 {
        let zones: Vec<_> = (0..MAX_NR_ZONES)
            .map(|i| self.zone_of(node, ZoneType::ALL[i]))
            .collect();
        let node_present: u64 = zones.iter().map(|z| self.zone(*z).present_pages).sum();
        zones
            .iter()
            .filter(|z| self.zone(**z).is_populated())
            .map(|z| {
                self.zone(*z).present_pages * self.fragmentation_score_zone(*z) / (node_present + 1)
            })
            .sum()
    }

    /// Mirrors `should_proactive_compact_node()`: not while kswapd runs
    /// (`kswapd_is_running()`: awake, in the model).
    pub fn should_proactive_compact_node(&self, node: NodeId) -> bool {
        self.config.compaction_proactiveness > 0
            && !self.kswapd_runnable(node)
            && self.fragmentation_score_node(node) > self.fragmentation_score_wmark(false)
    }

    /// Mirrors `kcompactd_node_suitable()`.
    fn kcompactd_node_suitable(&mut self, node: NodeId) -> bool {
        let k = *self.kcompactd_state(node);
        let flags = if self.config.defrag_mode {
            AllocFlags::WMARK_HIGH
        } else {
            AllocFlags::WMARK_MIN
        };
        for zt in ZoneType::ALL
            .into_iter()
            .filter(|zt| *zt <= k.highest_zoneidx)
        {
            let zi = self.zone_of(node, zt);
            if self.zone(zi).is_populated()
                && self.compaction_suit_allocation_order(
                    zi,
                    k.max_order,
                    k.highest_zoneidx,
                    flags,
                    false,
                    true,
                ) == CompactResult::Continue
            {
                return true;
            }
        }
        false
    }

    /// Mirrors `wakeup_kcompactd()`: asks node `node`'s kcompactd for `order` up to
    /// `highest`; it runs at the next [`Machine::kcompactd_run_until`] if the node is suitable.
    pub fn wakeup_kcompactd(&mut self, node: NodeId, order: i32, highest: ZoneType) {
        if order == 0 || !self.config.compaction {
            return;
        }
        let k = self.kcompactd_state(node);
        k.max_order = k.max_order.max(order);
        k.highest_zoneidx = k.highest_zoneidx.min(highest);
        if !self.kcompactd_node_suitable(node) {
            return;
        }
        self.trace_event(|| {
            Tracepoint::WakeupKcompactd(KcompactdWake {
                nid: node.0,
                order,
                highest_zoneidx: highest,
            })
        });
        self.node_data_mut(node).kcompactd_pending = true;
    }

    /// Mirrors `kcompactd_do_work()`: SYNC_LIGHT compaction of the node's zones up to the
    /// requested zone, for the requested order, with deferral.
    pub fn kcompactd_do_work(&mut self, node: NodeId) {
        let k = *self.kcompactd_state(node);
        let first = self.zone_of(node, ZoneType::Dma);
        let mut cc = CompactControl::new(
            first,
            Some(Order(k.max_order as u8)),
            Gfp::GFP_KERNEL,
            MigrateMode::SyncLight,
        );
        cc.highest_zoneidx = k.highest_zoneidx;
        cc.alloc_flags = if self.config.defrag_mode {
            AllocFlags::WMARK_HIGH
        } else {
            AllocFlags::WMARK_MIN
        };
        self.trace_event(|| {
            Tracepoint::KcompactdWake(KcompactdWake {
                nid: node.0,
                order: k.max_order,
                highest_zoneidx: k.highest_zoneidx,
            })
        });
        self.vmstat[VmEvent::CompactDaemonWake] += 1;
        for zt in ZoneType::ALL
            .into_iter()
            .filter(|zt| *zt <= k.highest_zoneidx)
        {
            let zi = self.zone_of(node, zt);
            if !self.zone(zi).is_populated() || self.compaction_deferred(zi, k.max_order) {
                continue;
            }
            if self.compaction_suit_allocation_order(
                zi,
                k.max_order,
                zt,
                cc.alloc_flags,
                false,
                true,
            ) != CompactResult::Continue
            {
                continue;
            }
            cc.zone = zi;
            match self.compact_zone(&mut cc) {
                CompactResult::Success => self.compaction_defer_reset(zi, k.max_order, false),
                CompactResult::PartialSkipped | CompactResult::Complete => {
                    // Free pages left on the CPUs' lists might merge into a block of the
                    // order wanted: give them back before deferring.
                    self.drain_all_pages(Some(zi));
                    self.defer_compaction(zi, k.max_order)
                }
                _ => {}
            }
            self.vmstat[VmEvent::CompactDaemonMigrateScanned] += cc.total_migrate_scanned;
            self.vmstat[VmEvent::CompactDaemonFreeScanned] += cc.total_free_scanned;
        }
        let k = self.kcompactd_state(node);
        if k.max_order <= cc.order_int() {
            k.max_order = 0;
        }
        if k.highest_zoneidx >= cc.highest_zoneidx {
            k.highest_zoneidx = ZoneType::Device;
        }
    }

    /// Runs node `node`'s kcompactd up to simulated time `now_ms` (mirrors the `kcompactd()`
    /// loop): pending wake-ups are served at once; each elapsed timeout runs proactive
    /// compaction when the node's fragmentation score is above the high mark, backing off
    /// to 32 s when a run does not lower the score.
    pub fn kcompactd_run_until(&mut self, node: NodeId, now_ms: u64) {
        if std::mem::take(&mut self.node_data_mut(node).kcompactd_pending) {
            self.kcompactd_do_work(node);
            let k = self.kcompactd_state(node);
            k.timeout_ms = HPAGE_FRAG_CHECK_INTERVAL_MSEC;
            k.wake_at_ms = now_ms + k.timeout_ms;
        }
        let mut guard = 0;
        while self.kcompactd_state(node).wake_at_ms <= now_ms
            && self.config.compaction
            && self.config.compaction_proactiveness > 0
        {
            guard += 1;
            assert!(guard < 1_000_000, "kcompactd loop makes no progress");
            let at = self.kcompactd_state(node).wake_at_ms;
            let mut timeout = HPAGE_FRAG_CHECK_INTERVAL_MSEC;
            if self.should_proactive_compact_node(node) {
                let prev = self.fragmentation_score_node(node);
                self.compact_node(node, true);
                if self.fragmentation_score_node(node) >= prev {
                    timeout = HPAGE_FRAG_CHECK_INTERVAL_MSEC << PROACTIVE_BACKOFF_SHIFT;
                }
            }
            let k = self.kcompactd_state(node);
            k.proactive_trigger = false;
            k.timeout_ms = timeout;
            k.wake_at_ms = at + timeout;
            self.trace_event(|| Tracepoint::KcompactdSleep { nid: node.0 });
        }
    }
}
