//! kswapd, the per-node reclaim daemon.
//!
//! Mirrors `wakeup_kswapd()`, `balance_pgdat()`, `kswapd_shrink_node()`,
//! `pgdat_balanced()`, `prepare_kswapd_sleep()` and the `kswapd()` loop. The thread is a
//! state machine driven by simulated time: a wake-up marks it runnable, and each
//! [`Machine::kswapd_step`] is one pass of `balance_pgdat()`'s priority loop, whose cost the
//! clock charges to kswapd before the next pass. It reclaims until some zone of the node
//! is above its high watermark for the order (plus any boost), works boosts off, then
//! (`kswapd_try_to_sleep()`), if the node is balanced, resets the compaction skip hints,
//! wakes kcompactd for the order it was woken for and naps for HZ/10: a wake-up during the
//! nap runs it again at once (`kswapd_low_wmark_hit_quickly`), a node unbalanced when the
//! nap ends (or after the run) runs it again (`kswapd_high_wmark_hit_quickly`), and a
//! balanced one sleeps until woken.

use super::{ScanControl, DEF_PRIORITY, MAX_RECLAIM_RETRIES, SWAP_CLUSTER_MAX};
use crate::buddy::watermark::zone_watermark_ok_free;
use crate::event::VmEvent;
use crate::gfp::{AllocFlags, Gfp};
use crate::layout::ZoneType;
use crate::machine::Machine;
use crate::mmzone::{Balance, KswapdNap, KSWAPD_NAP_NS};
use crate::units::{NodeId, Order, ZoneIdx};

impl Machine {
    /// The zones of `node` up to `highest`, populated ones.
    fn node_zones_upto(&self, node: NodeId, highest: ZoneType) -> Vec<ZoneIdx> {
        ZoneType::ALL
            .into_iter()
            .filter(|zt| *zt <= highest)
            .map(|zt| self.zone_of(node, zt))
            .filter(|zi| self.zone(*zi).managed_pages > 0)
            .collect()
    }

    /// Mirrors `pgdat_balanced()`: some zone up to `highest` passes its high watermark
    /// (with its boost) at `order`. Under `defrag_mode` a non-zero order counts only the
    /// free pages in whole free pageblocks (`NR_FREE_PAGES_BLOCKS`, 6.15+), so kswapd
    /// reclaims until the watermark is met in blocks — or until `kswapd_shrink_node()` has
    /// dropped the order after a compaction gap and kcompactd takes over.
    pub fn pgdat_balanced(&self, node: NodeId, order: u8, highest: ZoneType) -> bool {
        let zones = self.node_zones_upto(node, highest);
        if zones.is_empty() {
            return true;
        }
        zones.iter().any(|zi| {
            let z = self.zone(*zi);
            let free_pages = if self.config.defrag_mode && order > 0 {
                z.nr_free_pages_blocks
            } else {
                z.nr_free_pages
            };
            zone_watermark_ok_free(
                z,
                Order(order),
                z.high_wmark_pages(),
                highest,
                AllocFlags::default(),
                free_pages as i64,
                self.config.config_cma,
            )
        })
    }

    /// Mirrors `pgdat_watermark_boosted()`.
    fn pgdat_watermark_boosted(&self, node: NodeId, highest: ZoneType) -> bool {
        self.node_zones_upto(node, highest)
            .iter()
            .any(|zi| self.zone(*zi).watermark_boost > 0)
    }

    /// True if kswapd of `node` has anything it could reclaim.
    fn node_has_reclaimable(&self, node: NodeId) -> bool {
        self.zones
            .iter()
            .enumerate()
            .filter(|(_, z)| z.node == node)
            .any(|(i, _)| self.zone_reclaimable_pages(ZoneIdx(i as u8)) > 0)
    }

    /// Mirrors `wakeup_kswapd()`: records the order and zone kswapd of the zone's node
    /// should work for and wakes it — unless the node is hopeless (16 fruitless runs) or
    /// already balanced and not boosted, when a caller that cannot reclaim directly wakes
    /// kcompactd instead.
    pub fn wakeup_kswapd(&mut self, zi: ZoneIdx, gfp: Gfp, order: u8, highest: ZoneType) {
        if self.zone(zi).managed_pages == 0 {
            return;
        }
        let node = self.zone(zi).node;
        let k = &mut self.node_data_mut(node).kswapd;
        if k.highest.is_none_or(|h| h < highest) {
            k.highest = Some(highest);
        }
        k.order = k.order.max(order);
        if k.awake {
            // Running: it reads the order and zone when its run ends.
            return;
        }
        let failures = k.failures;
        if failures >= MAX_RECLAIM_RETRIES
            || (self.pgdat_balanced(node, order, highest)
                && !self.pgdat_watermark_boosted(node, highest))
        {
            if !gfp.contains(Gfp::DIRECT_RECLAIM) {
                self.wakeup_kcompactd(node, order as i32, highest);
            }
            return;
        }
        self.vmstat[VmEvent::KswapdWake] += 1;
        if !self.node_has_reclaimable(node) {
            // Nothing to reclaim: balance_pgdat() would reclaim nothing and, boosted, take
            // the boosts back and wake kcompactd at pageblock order. Done at once so a
            // machine without page cache or swap needs no clock for it.
            // DEVIATION(linux): this shortcut does not count a kswapd failure, so boosts
            // keep being taken back on a machine with nothing reclaimable.
            self.kswapd_finish_boost(node, highest);
            let k = &mut self.node_data_mut(node).kswapd;
            k.order = 0;
            k.highest = None;
            return;
        }
        let k = &mut self.node_data_mut(node).kswapd;
        k.awake = true;
        if let Some(nap) = k.nap.take() {
            // Woken during the nap: it runs again for the order it stopped at, or higher.
            k.order = k.order.max(nap.reclaim_order);
            self.vmstat[VmEvent::KswapdLowWmarkHitQuickly] += 1;
        }
    }

    /// Mirrors `set_reclaim_active()` / `clear_reclaim_active()`: ZONE_RECLAIM_ACTIVE on the
    /// node's zones up to `highest` with managed pages while `balance_pgdat()` runs, so their
    /// per-CPU lists keep few pages.
    fn set_reclaim_active(&mut self, node: NodeId, highest: ZoneType, on: bool) {
        for zi in self.node_zones_upto(node, highest) {
            if self.zone(zi).managed_pages > 0 {
                self.zones[zi.idx()].reclaim_active = on;
            }
        }
    }

    /// The end of a boosted `balance_pgdat()`: boosts of the zones up to `highest` are
    /// cleared and kcompactd is woken at pageblock order.
    fn kswapd_finish_boost(&mut self, node: NodeId, highest: ZoneType) {
        if !self.pgdat_watermark_boosted(node, highest) {
            return;
        }
        for zi in self.node_zones_upto(node, highest) {
            self.zones[zi.idx()].watermark_boost = 0;
        }
        let pb = self.pageblock_order().0 as i32;
        self.wakeup_kcompactd(node, pb, highest);
    }

    /// True if kswapd of `node` is running (`kswapd_is_running()`: awake, not napping).
    pub fn kswapd_runnable(&self, node: NodeId) -> bool {
        self.node_data(node).kswapd.awake
    }

    /// When kswapd of `node` next acts: at `next` while it runs, when its nap's timer fires
    /// while it naps; `None` while it sleeps until woken.
    pub fn kswapd_due(&self, node: NodeId, next: u64) -> Option<u64> {
        let k = &self.node_data(node).kswapd;
        if k.awake {
            Some(next)
        } else {
            k.nap.map(|n| n.until_ns)
        }
    }

    /// Mirrors `prepare_kswapd_sleep()`: kswapd may sleep when the node is hopeless (16
    /// fruitless runs) or balanced at `order` for `highest`.
    fn prepare_kswapd_sleep(&self, node: NodeId, order: u8, highest: ZoneType) -> bool {
        self.node_data(node).kswapd.failures >= MAX_RECLAIM_RETRIES
            || self.pgdat_balanced(node, order, highest)
    }

    /// Mirrors `kswapd_try_to_sleep()` up to its nap: a node that may sleep has its skip
    /// hints reset, kcompactd woken for `alloc_order`, and kswapd naps; otherwise kswapd
    /// runs again (`kswapd_high_wmark_hit_quickly`). True if kswapd keeps running.
    fn kswapd_try_to_sleep(
        &mut self,
        node: NodeId,
        alloc_order: u8,
        reclaim_order: u8,
        highest: ZoneType,
    ) -> bool {
        if !self.prepare_kswapd_sleep(node, reclaim_order, highest) {
            self.vmstat[VmEvent::KswapdHighWmarkHitQuickly] += 1;
            return true;
        }
        for zi in self.node_zones_upto(node, ZoneType::Device) {
            self.reset_isolation_suitable_zone(zi);
        }
        self.wakeup_kcompactd(node, alloc_order as i32, highest);
        let until_ns = self.clock.now_ns + KSWAPD_NAP_NS;
        let k = &mut self.node_data_mut(node).kswapd;
        k.awake = false;
        k.nap = Some(KswapdNap {
            until_ns,
            reclaim_order,
            highest,
        });
        false
    }

    /// The end of kswapd's nap with no wake-up (`schedule_timeout()` returned 0): a node
    /// that may sleep sleeps fully; otherwise kswapd runs again
    /// (`kswapd_high_wmark_hit_quickly`).
    fn kswapd_nap_ended(&mut self, node: NodeId) -> bool {
        let Some(nap) = self.node_data_mut(node).kswapd.nap.take() else {
            return false;
        };
        if self.prepare_kswapd_sleep(node, nap.reclaim_order, nap.highest) {
            return false;
        }
        self.vmstat[VmEvent::KswapdHighWmarkHitQuickly] += 1;
        self.node_data_mut(node).kswapd.awake = true;
        true
    }

    /// One pass of kswapd on `node` (one iteration of `balance_pgdat()`'s priority loop,
    /// starting a run when none is in progress). Returns false once kswapd went back to
    /// sleep.
    pub fn kswapd_step(&mut self, node: NodeId) -> bool {
        if !self.node_data(node).kswapd.awake && !self.kswapd_nap_ended(node) {
            return false;
        }
        let k = self.node_data(node).kswapd;
        let mut b = match k.run {
            Some(b) => b,
            None => {
                // kswapd_highest_zoneidx(): the zone a wake-up named, else the last run's.
                let highest = k.highest.or(k.prev_highest).unwrap_or(ZoneType::Device);
                let order = k.order;
                let boost: u64 = self
                    .node_zones_upto(node, highest)
                    .iter()
                    .map(|zi| self.zone(*zi).watermark_boost)
                    .sum();
                let k = &mut self.node_data_mut(node).kswapd;
                k.order = 0;
                k.highest = None;
                self.vmstat[VmEvent::Pageoutrun] += 1;
                self.set_reclaim_active(node, highest, true);
                Balance {
                    alloc_order: order,
                    order,
                    highest,
                    priority: DEF_PRIORITY,
                    nr_boost_reclaim: boost,
                    boosted: boost > 0,
                    nr_reclaimed: 0,
                }
            }
        };
        let done = self.balance_pgdat_pass(node, &mut b);
        if !done {
            self.node_data_mut(node).kswapd.run = Some(b);
            return true;
        }
        // The end of balance_pgdat(), then kswapd_try_to_sleep().
        self.set_reclaim_active(node, b.highest, false);
        if b.nr_reclaimed == 0 {
            self.node_data_mut(node).kswapd.failures += 1;
        }
        if b.boosted {
            self.kswapd_finish_boost(node, b.highest);
        }
        let k = &mut self.node_data_mut(node).kswapd;
        k.run = None;
        k.prev_highest = Some(b.highest);
        // kswapd(): a run that fell back to order 0 tries to sleep for the order it ended at
        // and wakes kcompactd for the one it was woken for; otherwise it tries to sleep for
        // what was asked meanwhile (order 0 if nothing).
        let (alloc_order, reclaim_order, highest) = if b.order < b.alloc_order {
            (b.alloc_order, b.order, b.highest)
        } else {
            (k.order, k.order, k.highest.unwrap_or(b.highest))
        };
        self.kswapd_try_to_sleep(node, alloc_order, reclaim_order, highest)
    }

    /// One iteration of `balance_pgdat()`'s loop; true when the run is over.
    fn balance_pgdat_pass(&mut self, node: NodeId, b: &mut Balance) -> bool {
        if b.priority < 1 {
            return true;
        }
        let balanced = self.pgdat_balanced(node, b.order, b.highest);
        if !balanced && b.nr_boost_reclaim > 0 {
            // Boosting is best effort: reclaim for the watermark itself instead.
            b.nr_boost_reclaim = 0;
            b.priority = DEF_PRIORITY;
            return false;
        }
        if b.nr_boost_reclaim == 0 && balanced {
            return true;
        }
        let mut sc = ScanControl {
            nr_to_reclaim: 0,
            order: b.order,
            priority: b.priority,
            reclaim_idx: b.highest,
            gfp: Gfp::GFP_KERNEL,
            may_writepage: b.nr_boost_reclaim == 0,
            may_unmap: true,
            may_swap: b.nr_boost_reclaim == 0,
            is_kswapd: true,
            compaction_ready: false,
            lumpy: false,
            nr_scanned: 0,
            nr_reclaimed: 0,
        };
        // kswapd_shrink_node(): reclaim up to the high watermarks of the zones.
        sc.nr_to_reclaim = self
            .node_zones_upto(node, b.highest)
            .iter()
            .map(|zi| self.zone(*zi).high_wmark_pages().max(SWAP_CLUSTER_MAX))
            .sum();
        // kswapd_age_node(): age the anonymous list when its inactive part is low.
        let was = self.pf_memalloc;
        self.pf_memalloc = true;
        self.shrink_node(node, &mut sc);
        self.pf_memalloc = was;
        let mut raise_priority = true;
        if sc.nr_scanned >= sc.nr_to_reclaim {
            raise_priority = false;
        }
        if b.order > 0 && sc.nr_reclaimed >= crate::compaction::compact_gap(b.order as i32) {
            b.order = 0;
        }
        b.nr_reclaimed += sc.nr_reclaimed;
        b.nr_boost_reclaim -= b.nr_boost_reclaim.min(sc.nr_reclaimed);
        if b.nr_boost_reclaim > 0 && sc.nr_reclaimed == 0 {
            return true;
        }
        if raise_priority || sc.nr_reclaimed == 0 {
            b.priority -= 1;
        }
        b.priority < 1
    }
}
