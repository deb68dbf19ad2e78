//! The machine: memory map, pageblocks, zones and the tunables, booted from a [`Layout`].
//!
//! [`Machine::boot`] mirrors what Linux does between `free_area_init()` and the end of
//! `init_per_zone_wmark_min()`: every pageblock starts MOVABLE (`memmap_init_range()`), every
//! managed page is handed to the buddy allocator in the largest aligned chunks, lowest pfn
//! first (`memblock_free_all()` → `__free_pages_memory()` → `__free_pages_core()`, which
//! frees to the list tail), then `min_free_kbytes`, the watermarks and the lowmem reserves
//! are computed, and khugepaged's recommended `min_free_kbytes` applied when THP is on.

use crate::buddy::FreeFlags;
use crate::event::VmStat;
use crate::layout::{Layout, ZoneType, MAX_NR_ZONES};
use crate::memmap::{MemMap, MigrateType, PageFlags, Pageblocks};
use crate::units::{NodeId, Order, Pfn, ZoneIdx, MAX_PAGE_ORDER};
use crate::zone::Zone;
use std::sync::Arc;
use thiserror::Error;

/// Tunables of the allocator: the `/proc/sys/vm` files and boot choices it reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmConfig {
    /// `vm.min_free_kbytes` as set by the user; `None` lets the kernel compute it.
    pub user_min_free_kbytes: Option<u64>,
    /// `vm.watermark_scale_factor` (1..=3000, default 10).
    pub watermark_scale_factor: u32,
    /// `vm.watermark_boost_factor` (default 15000; 0 disables boosting).
    pub watermark_boost_factor: u32,
    /// `vm.lowmem_reserve_ratio` per zone type.
    pub lowmem_reserve_ratio: [u32; MAX_NR_ZONES],
    /// THP enabled (`always` or `madvise`): khugepaged raises `min_free_kbytes` to its
    /// recommended value (`set_recommended_min_free_kbytes()`).
    pub thp_enabled: bool,
    /// CONFIG_CMA: the CMA migratetype exists and the views print it.
    pub config_cma: bool,
    /// Pages of CMA area to reserve at the top of the highest populated zone of node 0
    /// (needs `config_cma`).
    pub cma_pages: u64,
    /// `vm.defrag_mode` (Linux 6.15+, default 0): always ALLOC_NOFRAGMENT.
    pub defrag_mode: bool,
    /// `vm.extfrag_threshold` (0..=1000, default 500).
    pub extfrag_threshold: u32,
    /// `vm.compaction_proactiveness` (0..=100, default 20).
    pub compaction_proactiveness: u32,
    /// `vm.compact_unevictable_allowed` (default 1).
    pub compact_unevictable_allowed: bool,
    /// Which pinned pages the migrate scanner skips (seeds 000/001).
    pub skip_pinned: SkipPinned,
    /// CONFIG_COMPACTION (`compaction=off`: the 2010 baseline, reclaim only).
    pub compaction: bool,
    /// Non-LRU movable pages (`non_lru_movable=off`: before Linux 4.8, driver pages are
    /// unmovable).
    pub non_lru_movable: bool,
    /// How compaction treats large folios (seed 002).
    pub folio_compaction: FolioCompaction,
    /// `vm.swappiness` (0..=200, default 60).
    pub swappiness: u32,
    /// Swap space in pages (0: no swap, the default).
    pub swap_pages: u64,
    /// The swap device is zram (`swap_device=zram`): swapped pages are compressed into a
    /// zsmalloc pool in memory, synchronously, instead of written to a disk.
    pub zram: bool,
    /// The cost model that turns work into simulated time.
    pub costs: crate::clock::CostModel,
    /// `transparent_hugepage/defrag`.
    pub thp_defrag: crate::hugepage::ThpDefrag,
    /// `transparent_hugepage/enabled` is `madvise` rather than `always` (with `thp_enabled`).
    pub thp_madvise_only: bool,
    /// Anonymous folio orders faults may use (bit `o` for order `o`; the mTHP sizes'
    /// `enabled` files). The default is the PMD order alone.
    pub thp_orders: u16,
}

/// How compaction treats large folios and free pages (`folio_compaction`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum FolioCompaction {
    /// Before Linux 6.9: isolated free pages are split to order 0 and large folios are
    /// skipped by the migrate scanner.
    Split,
    /// Since Linux 6.9 (Zi Yan): free pages are kept per order and large folios migrate whole.
    #[default]
    PerOrder,
}

/// Which pinned pages compaction's migrate scanner leaves alone (`skip_pinned`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum SkipPinned {
    /// Today's Linux: anonymous folios with more references than mappings (Rientjes 2014).
    #[default]
    AnonOnly,
    /// Khalid Aziz's 2023 patch: any folio with references beyond the expected ones and its
    /// mappings, outside ZONE_MOVABLE and CMA.
    ExtraRefs,
    /// The reviewers' suggestion: any folio `folio_maybe_dma_pinned()` says may be pinned.
    DmaPinned,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            user_min_free_kbytes: None,
            watermark_scale_factor: 10,
            watermark_boost_factor: 15000,
            lowmem_reserve_ratio: [256, 256, 32, 0, 0],
            thp_enabled: true,
            config_cma: false,
            cma_pages: 0,
            defrag_mode: false,
            extfrag_threshold: 500,
            compaction_proactiveness: 20,
            compact_unevictable_allowed: true,
            skip_pinned: SkipPinned::AnonOnly,
            compaction: true,
            non_lru_movable: true,
            folio_compaction: FolioCompaction::PerOrder,
            swappiness: 60,
            swap_pages: 0,
            zram: false,
            costs: crate::clock::CostModel::default(),
            thp_defrag: crate::hugepage::ThpDefrag::Madvise,
            thp_madvise_only: false,
            thp_orders: 1 << 9,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A tunable out of its kernel range.
    #[error("{key} = {value} is out of range ({range})")]
    OutOfRange {
        /// The tunable's name.
        key: &'static str,
        /// The value given.
        value: u64,
        /// The accepted range.
        range: &'static str,
    },
    /// zram without a swap size (its disksize).
    #[error("zram needs a swap size (its disksize)")]
    Zram,
    /// CMA pages without CONFIG_CMA, or more than the zone holds.
    #[error("cma: {0}")]
    Cma(String),
}

impl VmConfig {
    /// Checks every tunable against the range the kernel's sysctl handler accepts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=3000).contains(&self.watermark_scale_factor) {
            return Err(ConfigError::OutOfRange {
                key: "watermark_scale_factor",
                value: self.watermark_scale_factor as u64,
                range: "1..=3000",
            });
        }
        if let Some(m) = self.user_min_free_kbytes {
            if m > i32::MAX as u64 {
                return Err(ConfigError::OutOfRange {
                    key: "min_free_kbytes",
                    value: m,
                    range: "0..=2147483647",
                });
            }
        }
        if self.swappiness > 200 {
            return Err(ConfigError::OutOfRange {
                key: "swappiness",
                value: self.swappiness as u64,
                range: "0..=200",
            });
        }
        if self.zram && self.swap_pages == 0 {
            return Err(ConfigError::Zram);
        }
        if self.cma_pages > 0 && !self.config_cma {
            return Err(ConfigError::Cma("cma_pages needs config_cma".into()));
        }
        Ok(())
    }
}

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
    block_zone: Vec<u8>,
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
    pub owners: crate::owners::Owners,
    /// The pages' contents, when tracked.
    pub contents: crate::owners::Contents,
    /// The current task's `capture_control`: direct compaction takes a freed block of the
    /// order it wants before it reaches the free lists.
    pub capture: Option<crate::compaction::CaptureControl>,
    /// Where the next page allocation must land: a model utility for building states from
    /// snapshots, traces and pictures (`alloc_pages` then takes exactly this block, or fails).
    pub place_at: Option<Pfn>,
    /// Each node's kcompactd.
    pub kcompactd: Vec<crate::compaction::kcompactd::Kcompactd>,
    /// Nodes whose kcompactd was woken and has not run yet.
    pub kcompactd_pending: Vec<NodeId>,
    /// Tracepoint lines (kernel text format) when tracing is on.
    pub trace: Option<Vec<String>>,
    /// The current task is in direct compaction or reclaim (`current->flags & PF_MEMALLOC`):
    /// migration does not sleep on page locks.
    pub pf_memalloc: bool,
    /// Reclaim: LRU lists, kswapd, swap.
    pub reclaim: crate::reclaim::ReclaimState,
    /// Simulated time and what each actor spent of it.
    pub clock: crate::clock::Clock,
    /// The hugetlb pool.
    pub hugetlb: crate::hugepage::HugetlbPool,
    nr_nodes: usize,
    /// Every zonelist, built once at boot (`build_all_zonelists()`), indexed by
    /// [`Machine::zonelist_slot`].
    zonelists: Vec<Arc<[ZoneIdx]>>,
}

const NO_ZONE: u8 = u8::MAX;

/// Why a machine could not be built.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BootError {
    /// The tunables were refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Two zones share a pageblock that has present pages on both sides.
    #[error("pageblock at pfn {0:#x} holds present pages of two zones")]
    SharedPageblock(u64),
    /// More zones than the model's one-byte zone index holds.
    #[error("too many zones ({0}); at most 250")]
    TooManyZones(usize),
}

impl Machine {
    /// Builds and boots a machine: see the module documentation.
    pub fn boot(layout: &Layout, config: VmConfig) -> Result<Machine, BootError> {
        config.validate()?;
        if layout.zones.len() > 250 {
            return Err(BootError::TooManyZones(layout.zones.len()));
        }
        let end = layout.end_pfn();
        let pb_order = layout.pageblock_order;
        let mut mem = MemMap::new(end);
        let mut pageblocks = Pageblocks::new(end, pb_order);
        let mut block_zone = vec![NO_ZONE; pageblocks.len()];
        let mut zones = Vec::with_capacity(layout.zones.len());
        for (zi, spec) in layout.zones.iter().enumerate() {
            for r in &spec.present {
                mem.set_present(r.start, r.end);
                let (first, last) = (
                    Pfn(r.start.0).pageblock(pb_order),
                    Pfn(r.end.0 - 1).pageblock(pb_order),
                );
                for b in first.0..=last.0 {
                    let slot = &mut block_zone[b as usize];
                    if *slot != NO_ZONE && *slot != zi as u8 {
                        return Err(BootError::SharedPageblock((b as u64) << pb_order.0));
                    }
                    *slot = zi as u8;
                }
            }
            for r in &spec.reserved {
                for p in r.start.0..r.end.0 {
                    mem.set_reserved(Pfn(p));
                }
            }
            let mut z = Zone::new(
                spec.node,
                spec.zone_type,
                spec.start_pfn,
                spec.spanned,
                spec.present_pages(),
                0,
            );
            if spec.spanned == 0 {
                z.zone_start_pfn = Pfn(0);
            }
            zones.push(z);
        }
        let present: u64 = layout.present_pages();
        let config_cma = config.config_cma;
        let mut m = Machine {
            mem,
            pageblocks: std::mem::replace(&mut pageblocks, Pageblocks::new(Pfn(0), pb_order)),
            zones,
            block_zone,
            config,
            min_free_kbytes: 1024,
            // build_all_zonelists(): grouping by mobility is pointless below one pageblock
            // per migratetype (MIGRATE_TYPES is 5 without CONFIG_CMA, 6 with it).
            mobility_disabled: present < pb_order.nr_pages() * if config_cma { 6 } else { 5 },
            totalreserve_pages: 0,
            vmstat: VmStat::default(),
            owners: Default::default(),
            contents: Default::default(),
            pf_memalloc: false,
            trace: None,
            capture: None,
            kcompactd: Vec::new(),
            place_at: None,
            kcompactd_pending: Vec::new(),
            reclaim: crate::reclaim::ReclaimState {
                lruvecs: vec![Default::default(); layout.nr_nodes()],
                kswapd: vec![Default::default(); layout.nr_nodes()],
                ..Default::default()
            },
            clock: Default::default(),
            hugetlb: Default::default(),
            nr_nodes: layout.nr_nodes(),
            zonelists: Vec::new(),
        };
        m.reserve_cma(layout)?;
        if m.config.zram {
            let drv = m.driver_new(crate::owners::driver::DriverKind::Zsmalloc, true);
            m.reclaim.zram = Some(drv);
        }
        m.build_all_zonelists(layout);
        // memblock_free_all(): every free range in ascending pfn order.
        for (zi, spec) in layout.zones.iter().enumerate() {
            for r in &spec.present {
                let mut start = r.start.0;
                for res in spec
                    .reserved
                    .iter()
                    .filter(|x| x.start >= r.start && x.end <= r.end)
                {
                    m.free_boot_range(zi, start, res.start.0);
                    start = res.end.0;
                }
                m.free_boot_range(zi, start, r.end.0);
            }
        }
        m.init_per_zone_wmark_min();
        if m.config.thp_enabled {
            m.set_recommended_min_free_kbytes();
        }
        m.vmstat = VmStat::default();
        Ok(m)
    }

    /// Marks the CMA area's pageblocks MIGRATE_CMA before their pages are freed, as
    /// `init_cma_reserved_pageblock()` does.
    fn reserve_cma(&mut self, layout: &Layout) -> Result<(), BootError> {
        let pages = self.config.cma_pages;
        if pages == 0 {
            return Ok(());
        }
        let pb = self.pageblocks.nr_pages();
        let nr_blocks = pages.div_ceil(pb);
        let zi = (0..layout.zones.len())
            .rev()
            .find(|&i| {
                layout.zones[i].node == NodeId(0)
                    && layout.zones[i].zone_type <= ZoneType::Normal
                    && layout.zones[i].managed_pages() > 0
            })
            .ok_or_else(|| ConfigError::Cma("no zone to hold it".into()))?;
        let spec = &layout.zones[zi];
        // Top-down, as memblock places it: the highest aligned range of whole pageblocks
        // inside one present range that overlaps no reserved range.
        let len = nr_blocks * pb;
        let lowest = spec.start_pfn.0.next_multiple_of(pb);
        let mut start = None;
        for r in spec.present.iter().rev() {
            let mut top = r.end.0 & !(pb - 1);
            while let Some(s) = top.checked_sub(len).filter(|s| *s >= r.start.0.max(lowest)) {
                match spec
                    .reserved
                    .iter()
                    .filter(|x| x.start.0 < s + len && x.end.0 > s)
                    .map(|x| x.start.0)
                    .min()
                {
                    None => {
                        start = Some(s);
                        break;
                    }
                    Some(x) => top = x & !(pb - 1),
                }
            }
            if start.is_some() {
                break;
            }
        }
        let start = start.ok_or_else(|| {
            ConfigError::Cma(format!(
                "{pages} pages do not fit in zone {}",
                spec.zone_type.name()
            ))
        })?;
        for b in 0..nr_blocks {
            self.pageblocks
                .set_migratetype(Pfn(start + b * pb), MigrateType::Cma);
        }
        self.zones[zi].cma_pages = nr_blocks * pb;
        Ok(())
    }

    /// Mirrors `__free_pages_memory()`: frees `[start, end)` in the largest aligned blocks.
    fn free_boot_range(&mut self, zi: usize, mut start: u64, end: u64) {
        while start < end {
            let mut order = (start.trailing_zeros() as u8).min(MAX_PAGE_ORDER);
            while start + (1u64 << order) > end {
                order -= 1;
            }
            self.zones[zi].managed_pages += 1 << order;
            self.mem.clear_block(Pfn(start), Order(order));
            self.free_one_page(
                ZoneIdx(zi as u8),
                Pfn(start),
                Order(order),
                FreeFlags::TO_TAIL,
            );
            start += 1 << order;
        }
    }

    /// Mirrors `free_reserved_page()`: a reserved page of a zone is given to the buddy
    /// allocator and the zone's managed pages grow by one (`adjust_managed_page_count()`).
    /// False if `pfn` is not a reserved page of a zone. The trace replay gives the
    /// allocator the pages a snapshot could not place (count 0, no flags: on a per-CPU
    /// list or in flight when it was captured) once the trace shows them in its hands.
    pub fn free_reserved_page(&mut self, pfn: Pfn) -> bool {
        let Some(zi) = self.page_zone(pfn) else {
            return false;
        };
        if !self
            .mem
            .flags(pfn)
            .contains(crate::memmap::PageFlags::RESERVED)
        {
            return false;
        }
        self.zones[zi.idx()].managed_pages += 1;
        self.mem.clear_block(pfn, Order(0));
        self.free_one_page(zi, pfn, Order(0), FreeFlags::NONE);
        true
    }

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
        self.nr_nodes
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
    fn build_all_zonelists(&mut self, layout: &Layout) {
        let n = self.nr_nodes as u8;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_frees_every_managed_page_into_max_order_blocks() {
        let layout = Layout::x86_64(1 << 30, 1, 0).unwrap();
        let m = Machine::boot(&layout, VmConfig::default()).unwrap();
        let dma = m.zone(m.zone_of(NodeId(0), ZoneType::Dma));
        assert_eq!(dma.managed_pages, 3840);
        assert_eq!(dma.nr_free_pages, 3840);
        // 0x100..0x1000: order-8 at 0x100, order-9 at 0x200, order-10 at 0x400, 0x800, 0xc00.
        assert_eq!(dma.free_by_order(), [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 3]);
        assert_eq!(m.nr_free_pages(), m.managed_pages());
        assert_eq!(m.page_zone(Pfn(0)), None);
        assert_eq!(
            m.page_zone(Pfn(0x1000)),
            Some(m.zone_of(NodeId(0), ZoneType::Dma32))
        );
    }

    #[test]
    fn zonelist_runs_from_highest_zone_down_then_other_nodes() {
        let layout = Layout::x86_64(16 << 30, 2, 0).unwrap();
        let m = Machine::boot(&layout, VmConfig::default()).unwrap();
        let zl = m.zonelist(NodeId(1), ZoneType::Movable, false);
        let names: Vec<_> = zl
            .iter()
            .map(|z| (m.zone(*z).node.0, m.zone(*z).name()))
            .collect();
        assert_eq!(
            names,
            [(1, "Normal"), (0, "Normal"), (0, "DMA32"), (0, "DMA")]
        );
        let zl = m.zonelist(NodeId(0), ZoneType::Dma32, true);
        assert_eq!(zl.len(), 2);
    }

    #[test]
    fn bad_tunables_are_refused() {
        let layout = Layout::x86_64(1 << 30, 1, 0).unwrap();
        let cfg = VmConfig {
            watermark_scale_factor: 0,
            ..VmConfig::default()
        };
        assert!(matches!(
            Machine::boot(&layout, cfg),
            Err(BootError::Config(ConfigError::OutOfRange { .. }))
        ));
    }
}
