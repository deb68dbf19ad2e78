//! The machine: the whole physical memory state in one value — the memory map, pageblocks,
//! zones, nodes ([`PgData`]), owners, counters, the clock and the tunables — with the lookups
//! every layer uses (`page_zone()`, zonelists, `NODE_DATA()`).
//!
//! This file composes state types from the files below it (`memmap/`, `zone.rs`,
//! `mmzone.rs`, `owners/table.rs`, `clock/`, `sysctl.rs`); the rules that change the state are
//! `impl Machine` blocks in the behaviour files above it, each named after the kernel
//! function it mirrors. Boot is in [`crate::boot`].
//!
//! Architecture Invariant: this file imports no behaviour file, so the state types sit below
//! every rule and the core has no import circle.

use crate::event::VmStat;
use crate::layout::{Layout, ZoneType, MAX_NR_ZONES};
use crate::memmap::{MemMap, MigrateType, PageFlags, Pageblocks};
use crate::mmzone::PgData;
use crate::sysctl::VmConfig;
use crate::units::{NodeId, Order, Pfn, ZoneIdx};
use crate::zone::Zone;
use std::sync::Arc;

/// A simulated machine: the whole physical memory state.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Per-page metadata.
    pub mem: MemMap,
    /// Per-pageblock migratetype and skip bits.
    pub pageblocks: Pageblocks,
    /// Every zone of every node, node-major (`nodes × MAX_NR_ZONES`), empty ones included.
    pub zones: Vec<Zone>,
    /// The zone each pageblock belongs to (`page_zone()`), `NO_ZONE` for holes.
    pub(crate) block_zone: Vec<u8>,
    /// The tunables.
    pub config: VmConfig,
    /// The effective `min_free_kbytes`.
    pub min_free_kbytes: u64,
    /// `page_group_by_mobility_disabled`.
    pub mobility_disabled: bool,
    /// `totalreserve_pages`.
    pub totalreserve_pages: u64,
    /// Event counters (/proc/vmstat names).
    pub vmstat: VmStat,
    /// Who owns allocated pages.
    pub owners: crate::owners::table::Owners,
    /// The pages' contents, when tracked.
    pub contents: crate::owners::table::Contents,
    /// The current task's `capture_control`: direct compaction takes a freed block of the
    /// order it wants before it reaches the free lists.
    pub capture: Option<crate::mmzone::CaptureControl>,
    /// Where the next page allocation must land: a model utility for building states from
    /// snapshots, traces and pictures (`alloc_pages` then takes exactly this block, or fails).
    pub place_at: Option<Pfn>,
    /// Each node's state beyond its zones: LRU lists, kswapd, kcompactd (`NODE_DATA()`).
    pub nodes: Vec<PgData>,
    /// Tracepoints recorded when tracing is on (`Display` gives the kernel's text).
    pub trace: Option<Vec<crate::event::Tracepoint>>,
    /// The current task is in direct compaction or reclaim (`current->flags & PF_MEMALLOC`):
    /// migration does not sleep on page locks.
    pub pf_memalloc: bool,
    /// The CPU the current task runs on (`smp_processor_id()`): its per-CPU page lists
    /// serve the task's allocations and frees. Scenarios place their tasks; the daemons
    /// run on [`Machine::daemon_cpu`].
    pub cpu: u32,
    /// Reclaim: LRU lists, kswapd, swap.
    pub reclaim: crate::mmzone::ReclaimState,
    /// Simulated time and what each actor spent of it.
    pub clock: crate::clock::Clock,
    /// The hugetlb pool.
    pub hugetlb: crate::mmzone::HugetlbPool,
    /// Driver (movable_ops) pages migrated, zsmalloc, balloon and GPU together: the
    /// model's own count (Linux counts them in `pgmigrate_success` with the rest).
    pub driver_pages_migrated: u64,
    /// Every zonelist, built once at boot (`build_all_zonelists()`), indexed by
    /// [`Machine::zonelist_slot`].
    pub(crate) zonelists: Vec<Arc<[ZoneIdx]>>,
}

/// `block_zone`'s mark for a pageblock of no zone (a hole).
pub(crate) const NO_ZONE: u8 = u8::MAX;

impl Machine {
    /// Free blocks of each order over every zone (`Zone::free_by_order` summed).
    pub fn free_by_order(&self) -> [u64; crate::units::NR_PAGE_ORDERS] {
        std::array::from_fn(|o| self.zones.iter().map(|z| z.free_area[o].nr_free).sum())
    }

    /// Mirrors `page_zone()`: the zone holding `pfn`, if it is present memory.
    #[inline]
    pub fn page_zone(&self, pfn: Pfn) -> Option<ZoneIdx> {
        if pfn >= self.mem.end_pfn() || self.mem.flags(pfn).contains(PageFlags::NOPAGE) {
            return None;
        }
        let z = self.block_zone[pfn.pageblock(self.pageblocks.order()).idx()];
        (z != NO_ZONE).then_some(ZoneIdx(z))
    }

    /// Mirrors `page_zone_id()` comparisons: true if both pfns are present in one zone.
    #[inline]
    pub fn same_zone(&self, a: Pfn, b: Pfn) -> bool {
        match (self.page_zone(a), self.page_zone(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        }
    }

    /// The zone at `zi`.
    #[inline]
    pub fn zone(&self, zi: ZoneIdx) -> &Zone {
        &self.zones[zi.idx()]
    }

    /// The number of nodes (`nr_online_nodes`).
    pub fn nr_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Mirrors `NODE_DATA()`: node `nid`'s state beyond its zones.
    #[inline]
    pub fn node_data(&self, nid: NodeId) -> &PgData {
        &self.nodes[nid.0 as usize]
    }

    /// Mirrors `NODE_DATA()`, for changing it.
    #[inline]
    pub fn node_data_mut(&mut self, nid: NodeId) -> &mut PgData {
        &mut self.nodes[nid.0 as usize]
    }

    /// The zone of type `zt` on `node`.
    pub fn zone_of(&self, node: NodeId, zt: ZoneType) -> ZoneIdx {
        ZoneIdx((node.0 as usize * MAX_NR_ZONES + zt.idx()) as u8)
    }

    /// `pageblock_order`.
    #[inline]
    pub fn pageblock_order(&self) -> Order {
        self.pageblocks.order()
    }

    /// DEVIATION(linux): node distances are all equal (remote 20, local 10), so the order
    /// of remote nodes is the kernel's tie-break alone, without `node_load` balancing.
    ///
    /// Mirrors `build_zonelists()` for every node: the local node's zones from the highest
    /// type down, then the other nodes' (higher ids first, then lower, as the distance
    /// tie-break orders them), keeping populated zones (`populated_zone()`), for every highest
    /// zone type, with and without __GFP_THISNODE.
    pub(crate) fn build_all_zonelists(&mut self, layout: &Layout) {
        let n = self.nr_nodes() as u8;
        let mut lists = Vec::new();
        for node in 0..n {
            for this_node_only in [false, true] {
                for highest in ZoneType::ALL {
                    let mut order: Vec<u8> = vec![node];
                    if !this_node_only {
                        order.extend((node + 1..n).chain(0..node));
                    }
                    let mut out = Vec::new();
                    for nd in order {
                        for zt in ZoneType::ALL.iter().rev().filter(|zt| **zt <= highest) {
                            let zi = self.zone_of(NodeId(nd), *zt);
                            if layout.zones[zi.idx()].present_pages() > 0 {
                                out.push(zi);
                            }
                        }
                    }
                    lists.push(Arc::from(out));
                }
            }
        }
        self.zonelists = lists;
    }

    /// The index of a zonelist among those [`Machine::zonelist_by_slot`] reads.
    pub fn zonelist_slot(node: NodeId, highest: ZoneType, this_node_only: bool) -> usize {
        (node.0 as usize * 2 + this_node_only as usize) * MAX_NR_ZONES + highest.idx()
    }

    /// The zonelist in `slot` (see [`Machine::zonelist_slot`]).
    #[inline]
    pub fn zonelist_by_slot(&self, slot: usize) -> &[ZoneIdx] {
        &self.zonelists[slot]
    }

    /// The zonelist of a request on `node` that may use zones up to `highest` (only the
    /// node's own with __GFP_THISNODE), preferred zone first.
    pub fn zonelist(
        &self,
        node: NodeId,
        highest: ZoneType,
        this_node_only: bool,
    ) -> Arc<[ZoneIdx]> {
        self.zonelists[Self::zonelist_slot(node, highest, this_node_only)].clone()
    }

    /// Total managed pages.
    pub fn managed_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.managed_pages).sum()
    }

    /// Total free pages (NR_FREE_PAGES over all zones).
    pub fn nr_free_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.nr_free_pages).sum()
    }

    /// The migratetype of the pageblock holding `pfn` (`get_pfnblock_migratetype()`).
    #[inline]
    pub fn migratetype(&self, pfn: Pfn) -> MigrateType {
        self.pageblocks.migratetype(pfn)
    }

    /// Mirrors `set_pageblock_migratetype()`, which stores UNMOVABLE for the mobility
    /// types when grouping by mobility is disabled.
    #[inline]
    pub fn set_pageblock_migratetype(&mut self, pfn: Pfn, mt: MigrateType) {
        let mt = if self.mobility_disabled && mt.is_mergeable() {
            MigrateType::Unmovable
        } else {
            mt
        };
        self.pageblocks.set_migratetype(pfn, mt);
    }
}
