//! Boot: a [`Machine`] built from a [`Layout`] and its tunables.
//!
//! [`Machine::boot`] mirrors what Linux does between `free_area_init()` and the end of
//! `init_per_zone_wmark_min()`: every pageblock starts MOVABLE (`memmap_init_range()`), every
//! managed page is handed to the buddy allocator in the largest aligned chunks, lowest pfn
//! first (`memblock_free_all()` → `__free_pages_memory()` → `__free_pages_core()`, which
//! frees to the list tail), then `min_free_kbytes`, the watermarks and the lowmem reserves
//! are computed, and khugepaged's recommended `min_free_kbytes` applied when THP is on.
//! [`MachineConfig::boot`] does the same from a size and `--set` tunables (an x86-64 VM's
//! layout).

use crate::buddy::FreeFlags;
use crate::event::VmStat;
use crate::layout::{Layout, LayoutError, ZoneType};
use crate::machine::{Machine, NO_ZONE};
use crate::memmap::{MemMap, MigrateType, Pageblocks};
use crate::mmzone::{PgData, ReclaimState};
use crate::sysctl::{ConfigError, Integrity, MachineConfig, VmConfig};
use crate::units::{NodeId, Order, Pfn, ZoneIdx, MAX_PAGE_ORDER};
use crate::zone::Zone;
use thiserror::Error;

/// Why a machine could not be built.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BootError {
    /// The tunables were refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Two zones share a pageblock that has present pages on both sides.
    #[error("pageblock at pfn {0:#x} holds present pages of two zones")]
    SharedPageblock(u64),
    /// The layout could not be built.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// `integrity=bytes` keeps 4 KiB per page: too much for a machine this large.
    #[error("integrity=bytes keeps every page's 4 KiB: at most {max_gib}G of model memory")]
    IntegrityTooLarge {
        /// The largest machine in GiB.
        max_gib: u64,
    },
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
            cpu: 0,
            trace: None,
            capture: None,
            place_at: None,
            nodes: vec![PgData::default(); layout.nr_nodes()],
            reclaim: ReclaimState::default(),
            clock: Default::default(),
            hugetlb: Default::default(),
            driver_pages_migrated: 0,
            zonelists: Vec::new(),
        };
        m.reserve_cma(layout)?;
        if m.config.zram {
            let drv = m.driver_new(crate::owners::table::DriverKind::Zsmalloc, true);
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

    /// Mirrors `free_reserved_page()`: a reserved page of a zone is freed as any page is
    /// (`__free_page()`: onto the current CPU's list) and the zone's managed pages grow by
    /// one (`adjust_managed_page_count()`). False if `pfn` is not a reserved page of a zone.
    pub fn free_reserved_page(&mut self, pfn: Pfn) -> bool {
        let Some(zi) = self.unreserve(pfn) else {
            return false;
        };
        self.free_frozen_pages(zi, pfn, Order(0));
        true
    }

    /// A reserved page of a zone given straight to the buddy lists, its zone's managed
    /// pages growing by one. A model utility: the trace replay gives the allocator a page
    /// the snapshot could not place (count 0, no flags: on a per-CPU list or in flight
    /// when it was captured) once the trace allocates it, wherever the kernel held it.
    pub fn adopt_reserved_page(&mut self, pfn: Pfn) -> bool {
        let Some(zi) = self.unreserve(pfn) else {
            return false;
        };
        self.free_one_page(zi, pfn, Order(0), FreeFlags::NONE);
        true
    }

    /// Clears a reserved page of a zone for freeing, counting it managed; its zone.
    fn unreserve(&mut self, pfn: Pfn) -> Option<crate::units::ZoneIdx> {
        let zi = self.page_zone(pfn)?;
        if !self
            .mem
            .flags(pfn)
            .contains(crate::memmap::PageFlags::RESERVED)
        {
            return None;
        }
        self.zones[zi.idx()].managed_pages += 1;
        self.mem.clear_block(pfn, Order(0));
        Some(zi)
    }
}

impl Machine {
    /// A write of `value` to run-time tunable `key` on this running machine: the value is
    /// checked by the table ([`VmConfig::set_runtime`]) and its sysctl handler's effect
    /// applied — `min_free_kbytes_sysctl_handler()` and `watermark_scale_factor_sysctl_handler()`
    /// recompute the watermarks (`setup_per_zone_wmarks()`),
    /// `percpu_pagelist_high_fraction_sysctl_handler()` the per-CPU lists' limits; the
    /// switches take effect on the next operation that reads them.
    pub fn sysctl_write(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        self.config.set_runtime(key, value)?;
        match key {
            "min_free_kbytes" => {
                let kb = self
                    .config
                    .user_min_free_kbytes
                    .unwrap_or(self.min_free_kbytes);
                self.set_min_free_kbytes(kb);
            }
            "watermark_scale_factor" => self.setup_per_zone_wmarks(),
            // percpu_pagelist_high_fraction_sysctl_handler(): every populated zone's
            // per-CPU limits recomputed (zone_set_pageset_high_and_batch()).
            "percpu_pagelist_high_fraction" => self.zone_pcp_update_all(),
            _ => {}
        }
        Ok(())
    }
}

/// The largest machine `integrity=bytes` is allowed on.
pub const INTEGRITY_BYTES_MAX: u64 = 8 << 30;

impl MachineConfig {
    /// Boots the machine this configuration describes: an x86-64 VM's layout of
    /// `mem_bytes` over `nodes` nodes with `movable_bytes` of ZONE_MOVABLE each, the
    /// tunables, and content tracking as `integrity` asks.
    pub fn boot(&self) -> Result<Machine, BootError> {
        if self.integrity == Integrity::Bytes && self.mem_bytes > INTEGRITY_BYTES_MAX {
            return Err(BootError::IntegrityTooLarge {
                max_gib: INTEGRITY_BYTES_MAX >> 30,
            });
        }
        let layout = Layout::x86_64(self.mem_bytes, self.nodes, self.movable_bytes)?;
        let mut m = Machine::boot(&layout, self.vm.clone())?;
        match self.integrity {
            Integrity::Off => {}
            Integrity::Stamps => m.enable_contents(false),
            Integrity::Bytes => m.enable_contents(true),
        }
        Ok(m)
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

    #[test]
    fn every_node_count_the_table_accepts_boots_at_every_size() {
        // Node shares above 4 GiB that are no whole number of pageblocks, nodes without
        // memory below it, the most nodes there can be, with and without ZONE_MOVABLE.
        for nodes in [1, 2, 3, 5, 7, 13, crate::layout::MAX_NODES] {
            for mem in [64 << 20, 3 << 30, (4 << 30) + (4 << 20), 5 << 30, 17 << 30] {
                for movable in [0, 256 << 20] {
                    let mut c = MachineConfig::new(mem);
                    c.set("nodes", &nodes.to_string()).unwrap();
                    c.movable_bytes = movable;
                    let m = c.boot().unwrap_or_else(|e| {
                        panic!("nodes={nodes} mem={mem} movable={movable}: {e}")
                    });
                    assert_eq!(m.nr_nodes(), nodes as usize);
                    crate::verify::verify(&m).unwrap();
                }
            }
        }
        let mut c = MachineConfig::new(1 << 30);
        let e = c
            .set("nodes", &(crate::layout::MAX_NODES + 1).to_string())
            .unwrap_err();
        assert!(e.to_string().contains("nodes"), "{e}");
    }
}
