//! `/proc/buddyinfo`, `/proc/pagetypeinfo` and `/proc/zoneinfo` in the kernel's formats.

use crate::layout::ZoneType;
use crate::machine::Machine;
use crate::memmap::MigrateType;
use crate::units::{NodeId, Order, Pfn};
use crate::zone::{Wmark, Zone};
use std::fmt::Write;

/// `/proc/buddyinfo`: free blocks per order of every populated zone.
pub fn buddyinfo(m: &Machine) -> String {
    let mut s = String::new();
    for z in m.zones.iter().filter(|z| z.is_populated()) {
        let _ = write!(s, "Node {}, zone {:>8} ", z.node.0, z.name());
        for n in z.free_by_order() {
            let _ = write!(s, "{n:6} ");
        }
        s.push('\n');
    }
    s
}

/// The migratetypes the kernel prints: CMA only with CONFIG_CMA.
fn printed_types(m: &Machine) -> Vec<MigrateType> {
    MigrateType::ALL
        .into_iter()
        .filter(|t| *t != MigrateType::Cma || m.config.config_cma)
        .collect()
}

/// The kernel walks a free list only up to this many entries and prints `>100000`.
const FREECOUNT_CAP: u64 = 100_000;

/// `/proc/pagetypeinfo`: per node, the free lists by type and order, then the pageblocks
/// by type.
pub fn pagetypeinfo(m: &Machine) -> String {
    let types = printed_types(m);
    let mut s = String::new();
    let pb = m.pageblock_order();
    for node in 0..m.nr_nodes() {
        let zones: Vec<&Zone> = m
            .zones
            .iter()
            .filter(|z| z.node.0 as usize == node && z.is_populated())
            .collect();
        if zones.is_empty() {
            continue;
        }
        let _ = writeln!(s, "Page block order: {}", pb.0);
        let _ = writeln!(s, "Pages per block:  {}", pb.nr_pages());
        s.push('\n');
        let _ = write!(s, "{:<43} ", "Free pages count per migrate type at order");
        for o in Order::all() {
            let _ = write!(s, "{:6} ", o.0);
        }
        s.push('\n');
        for z in &zones {
            for t in &types {
                let _ = write!(
                    s,
                    "Node {:4}, zone {:>8}, type {:>12} ",
                    z.node.0,
                    z.name(),
                    t.name()
                );
                for o in Order::all() {
                    let n = z.free_area[o.idx()].free_list[t.idx()]
                        .iter(&m.mem)
                        .take(FREECOUNT_CAP as usize)
                        .count() as u64;
                    if n >= FREECOUNT_CAP {
                        let _ = write!(s, ">{FREECOUNT_CAP:6} ");
                    } else {
                        let _ = write!(s, "{n:6} ");
                    }
                }
                s.push('\n');
            }
        }
        let _ = write!(s, "\n{:<23}", "Number of blocks type ");
        for t in &types {
            let _ = write!(s, "{:>12} ", t.name());
        }
        s.push('\n');
        for z in &zones {
            let counts = pageblock_counts(m, z);
            let _ = write!(s, "Node {}, zone {:>8} ", z.node.0, z.name());
            for t in &types {
                let _ = write!(s, "{:12} ", counts[t.idx()]);
            }
            s.push('\n');
        }
    }
    s
}

/// Mirrors `pagetypeinfo_showblockcount_print()`: from the zone's first pfn in steps of a
/// pageblock, count the type of each block whose stepping pfn is present in this zone.
pub fn pageblock_counts(m: &Machine, z: &Zone) -> [u64; crate::memmap::pageblock::MIGRATE_TYPES] {
    let mut counts = [0u64; crate::memmap::pageblock::MIGRATE_TYPES];
    let step = m.pageblocks.nr_pages();
    let zi = m.zone_of(z.node, z.zone_type);
    let mut pfn = z.zone_start_pfn;
    while pfn < z.end_pfn() {
        if m.page_zone(pfn) == Some(zi) {
            counts[m.migratetype(pfn).idx()] += 1;
        }
        pfn = Pfn(pfn.0 + step);
    }
    counts
}

/// Per-node stat names of Linux 6.18 (`node_stat_item`), as zoneinfo prints them.
pub const NODE_STAT_NAMES: [&str; 51] = [
    "nr_inactive_anon",
    "nr_active_anon",
    "nr_inactive_file",
    "nr_active_file",
    "nr_unevictable",
    "nr_slab_reclaimable",
    "nr_slab_unreclaimable",
    "nr_isolated_anon",
    "nr_isolated_file",
    "workingset_nodes",
    "workingset_refault_anon",
    "workingset_refault_file",
    "workingset_activate_anon",
    "workingset_activate_file",
    "workingset_restore_anon",
    "workingset_restore_file",
    "workingset_nodereclaim",
    "nr_anon_pages",
    "nr_mapped",
    "nr_file_pages",
    "nr_dirty",
    "nr_writeback",
    "nr_shmem",
    "nr_shmem_hugepages",
    "nr_shmem_pmdmapped",
    "nr_file_hugepages",
    "nr_file_pmdmapped",
    "nr_anon_transparent_hugepages",
    "nr_vmscan_write",
    "nr_vmscan_immediate_reclaim",
    "nr_dirtied",
    "nr_written",
    "nr_throttled_written",
    "nr_kernel_misc_reclaimable",
    "nr_foll_pin_acquired",
    "nr_foll_pin_released",
    "nr_kernel_stack",
    "nr_page_table_pages",
    "nr_sec_page_table_pages",
    "nr_iommu_pages",
    "nr_swapcached",
    "pgpromote_success",
    "pgpromote_candidate",
    "pgpromote_candidate_nrl",
    "pgdemote_kswapd",
    "pgdemote_direct",
    "pgdemote_khugepaged",
    "pgdemote_proactive",
    "nr_hugetlb",
    "nr_balloon_pages",
    "nr_kernel_file_pages",
];

/// Per-zone stat names (`zone_stat_item`).
pub const ZONE_STAT_NAMES: [&str; 11] = [
    "nr_free_pages",
    "nr_free_pages_blocks",
    "nr_zone_inactive_anon",
    "nr_zone_active_anon",
    "nr_zone_inactive_file",
    "nr_zone_active_file",
    "nr_zone_unevictable",
    "nr_zone_write_pending",
    "nr_mlock",
    "nr_zspages",
    "nr_free_cma",
];

/// NUMA event names (`numa_stat_item`).
pub const NUMA_STAT_NAMES: [&str; 6] = [
    "numa_hit",
    "numa_miss",
    "numa_foreign",
    "numa_interleave",
    "numa_local",
    "numa_other",
];

/// The value of a per-zone stat the model keeps (0 for those it does not keep yet).
fn zone_stat(z: &Zone, name: &str) -> u64 {
    match name {
        "nr_free_pages" => z.nr_free_pages,
        "nr_free_pages_blocks" => z.nr_free_pages_blocks,
        "nr_free_cma" => z.nr_free_cma,
        _ => crate::mmzone::LruList::ALL
            .iter()
            .find(|l| l.zoneinfo_name() == name)
            .map_or(0, |l| z.nr_lru[l.idx()]),
    }
}

/// `fls()`: the 1-based index of the highest set bit (0 for 0).
fn fls(x: u64) -> u64 {
    64 - x.leading_zeros() as u64
}

use crate::buddy::pcp::zone_batchsize;

/// Mirrors `calculate_normal_threshold()`.
fn normal_threshold(managed: u64, cpus: u64) -> u64 {
    let mem = managed >> (27 - crate::units::PAGE_SHIFT);
    (2 * fls(cpus) * (1 + fls(mem))).min(125)
}

/// `/proc/zoneinfo` in the Linux 6.18 layout. The pagesets section prints each online
/// CPU's per-CPU lists (`count`, `high`, `batch`, `high_min`, `high_max`); with `pcp=off`
/// the counts are 0 and the limits the kernel's formulas.
pub fn zoneinfo(m: &Machine) -> String {
    let cpus = m.nr_cpus() as u64;
    let mut s = String::new();
    for node in 0..m.nr_nodes() {
        let first_populated = m
            .zones
            .iter()
            .position(|z| z.node.0 as usize == node && z.is_populated());
        for (zidx, z) in m
            .zones
            .iter()
            .enumerate()
            .filter(|(_, z)| z.node.0 as usize == node)
        {
            let _ = write!(s, "Node {}, zone {:>8}", z.node.0, z.name());
            if Some(zidx) == first_populated {
                s.push_str("\n  per-node stats");
                for name in NODE_STAT_NAMES {
                    let _ = write!(s, "\n      {name:<12} 0");
                }
            }
            let _ = write!(
                s,
                "\n  pages free     {}\n        boost    {}\n        min      {}\n        low      {}\n        high     {}\n        promo    {}\n        spanned  {}\n        present  {}\n        managed  {}\n        cma      {}",
                z.nr_free_pages,
                z.watermark_boost,
                z.wmark_pages(Wmark::Min),
                z.wmark_pages(Wmark::Low),
                z.wmark_pages(Wmark::High),
                z.wmark_pages(Wmark::Promo),
                z.spanned_pages,
                z.present_pages,
                z.managed_pages,
                z.cma_pages
            );
            let prot: Vec<String> = z.lowmem_reserve.iter().map(|r| r.to_string()).collect();
            let _ = write!(s, "\n        protection: ({})", prot.join(", "));
            if !z.is_populated() {
                s.push('\n');
                continue;
            }
            for name in ZONE_STAT_NAMES {
                let _ = write!(s, "\n      {name:<12} {}", zone_stat(z, name));
            }
            for name in NUMA_STAT_NAMES {
                let _ = write!(s, "\n      {name:<12} 0");
            }
            s.push_str("\n  pagesets");
            let batch = zone_batchsize(z.managed_pages);
            let high_min = (z.watermark[Wmark::Low as usize] / cpus).max(4 * batch);
            let high_max = (z.managed_pages / 8 / cpus).max(4 * batch);
            for cpu in 0..cpus {
                let (count, high, batch, high_min, high_max) = match z.pageset.get(cpu as usize) {
                    Some(p) => (p.count, p.high, p.batch, p.high_min, p.high_max),
                    None => (0, high_min, batch, high_min, high_max),
                };
                let _ = write!(
                    s,
                    "\n    cpu: {cpu}\n              count:    {count}\n              high:     {high}\n              batch:    {batch}\n              high_min: {high_min}\n              high_max: {high_max}"
                );
                let _ = write!(
                    s,
                    "\n  vm stats threshold: {}",
                    normal_threshold(z.managed_pages, cpus)
                );
            }
            let _ = write!(
                s,
                "\n  node_unreclaimable:  0\n  start_pfn:           {}\n",
                z.zone_start_pfn.0
            );
        }
    }
    s
}

/// The zone of type `zt` on node 0, for tests and views.
pub fn node0_zone(m: &Machine, zt: ZoneType) -> &Zone {
    m.zone(m.zone_of(NodeId(0), zt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_and_threshold_match_the_live_machine() {
        // DMA (managed 3840), DMA32 (772917), Normal (196608) on 2 CPUs.
        assert_eq!(zone_batchsize(3840), 1);
        assert_eq!(zone_batchsize(772917), 63);
        assert_eq!(normal_threshold(3840, 2), 4);
        assert_eq!(normal_threshold(772917, 2), 24);
        assert_eq!(normal_threshold(196608, 2), 16);
    }
}
