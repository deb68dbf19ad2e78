//! The machine description: nodes, zones and their pfn ranges, present and reserved memory.
//!
//! A [`Layout`] says where memory is, not what is in it. It comes either from a size, laid
//! out the way an x86-64 virtual machine of the project's kind is (see [`Layout::x86_64`]),
//! or from explicit zone ranges ([`Layout::from_zones`]), as the snapshot importer reads
//! them from `/proc/zoneinfo`.
//!
//! Mirrors the outcome of `free_area_init()` / `zone_sizes_init()` (mm/mm_init.c): each zone
//! has `zone_start_pfn`, `spanned_pages` (start to end, holes included), `present_pages`
//! (pages that exist) and `managed_pages` (pages the buddy allocator was given).

use crate::units::{bytes_to_pages, NodeId, Order, Pfn, DEFAULT_PAGEBLOCK_ORDER, MAX_PAGE_ORDER};
use thiserror::Error;

/// Mirrors `enum zone_type` on x86-64 (CONFIG_ZONE_DMA, DMA32, DEVICE; no HIGHMEM).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[repr(u8)]
pub enum ZoneType {
    /// ZONE_DMA: the first 16 MiB.
    Dma = 0,
    /// ZONE_DMA32: below 4 GiB.
    Dma32 = 1,
    /// ZONE_NORMAL: everything else the kernel may use for any allocation.
    Normal = 2,
    /// ZONE_MOVABLE: movable allocations only (`movablecore=` / `kernelcore=`).
    Movable = 3,
    /// ZONE_DEVICE: device memory; never populated in the model, printed by zoneinfo.
    Device = 4,
}

/// Mirrors `MAX_NR_ZONES` on this configuration.
pub const MAX_NR_ZONES: usize = 5;

impl ZoneType {
    /// Every zone type in index order.
    pub const ALL: [ZoneType; MAX_NR_ZONES] = [
        ZoneType::Dma,
        ZoneType::Dma32,
        ZoneType::Normal,
        ZoneType::Movable,
        ZoneType::Device,
    ];

    /// Mirrors `zone_names[]`.
    pub fn name(self) -> &'static str {
        match self {
            ZoneType::Dma => "DMA",
            ZoneType::Dma32 => "DMA32",
            ZoneType::Normal => "Normal",
            ZoneType::Movable => "Movable",
            ZoneType::Device => "Device",
        }
    }

    /// The zone type named `name` (as `/proc/zoneinfo` prints it).
    pub fn from_name(name: &str) -> Option<ZoneType> {
        Self::ALL.iter().copied().find(|z| z.name() == name)
    }

    /// The zone type as an index (`zone_idx()`).
    #[inline]
    pub fn idx(self) -> usize {
        self as usize
    }

    /// Mirrors `is_highmem_idx()`-or-movable: zones whose MIN watermark is not a share of
    /// `min_free_kbytes` (`__setup_per_zone_wmarks()`).
    pub fn is_highmem_or_movable(self) -> bool {
        matches!(self, ZoneType::Movable)
    }
}

/// A pfn range `[start, end)`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PfnRange {
    /// First pfn.
    pub start: Pfn,
    /// One past the last pfn.
    pub end: Pfn,
}

impl PfnRange {
    /// A range `[start, end)`.
    pub fn new(start: u64, end: u64) -> PfnRange {
        PfnRange {
            start: Pfn(start),
            end: Pfn(end),
        }
    }

    /// Pages in the range.
    pub fn nr_pages(&self) -> u64 {
        self.start.pages_until(self.end)
    }
}

/// One zone of one node as the layout describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneSpec {
    /// The node the zone belongs to.
    pub node: NodeId,
    /// Which zone.
    pub zone_type: ZoneType,
    /// `zone_start_pfn` (0 for an empty zone).
    pub start_pfn: Pfn,
    /// `spanned_pages`.
    pub spanned: u64,
    /// Pfn ranges that exist (sum = `present_pages`), sorted, within the span.
    pub present: Vec<PfnRange>,
    /// Present pfn ranges never given to the buddy allocator (firmware, kernel image,
    /// memmap), sorted; `managed_pages` = present − reserved.
    pub reserved: Vec<PfnRange>,
}

impl ZoneSpec {
    /// `present_pages`.
    pub fn present_pages(&self) -> u64 {
        self.present.iter().map(PfnRange::nr_pages).sum()
    }

    /// `managed_pages` at boot: present pages minus reserved ones.
    pub fn managed_pages(&self) -> u64 {
        self.present_pages() - self.reserved.iter().map(PfnRange::nr_pages).sum::<u64>()
    }

    /// One past the zone's last pfn (`zone_end_pfn()`).
    pub fn end_pfn(&self) -> Pfn {
        self.start_pfn.plus(self.spanned)
    }
}

/// Where memory is: every zone of every node (empty ones included, as zoneinfo prints
/// them), in node-major, zone-type-minor order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Every zone, `nodes × MAX_NR_ZONES` of them.
    pub zones: Vec<ZoneSpec>,
    /// `pageblock_order`.
    pub pageblock_order: Order,
}

/// Why a layout was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LayoutError {
    /// The memory size is outside what the model supports.
    #[error("memory size {bytes} bytes is out of range: the model takes {min} MiB to {max} TiB")]
    SizeOutOfRange {
        /// Requested bytes.
        bytes: u64,
        /// Smallest size in MiB.
        min: u64,
        /// Largest size in TiB.
        max: u64,
    },
    /// Bad node count.
    #[error("node count {0} is out of range (1 to {MAX_NODES}: {MAX_NR_ZONES} zones a node, at most 250 zones)")]
    Nodes(u32),
    /// A pageblock order the allocator cannot use.
    #[error("pageblock order {0} is out of range (1 to {MAX_PAGE_ORDER})")]
    PageblockOrder(u8),
    /// Zone ranges that overlap, are unsorted, or leave the span.
    #[error("zone {zone} of node {node}: {why}")]
    BadZone {
        /// Node.
        node: u8,
        /// Zone name.
        zone: &'static str,
        /// What is wrong.
        why: String,
    },
    /// Too many page frames for the model's 32-bit page indices.
    #[error("the layout ends at pfn {0:#x}, beyond the model's limit of 2^32 page frames")]
    TooLarge(u64),
}

/// Most nodes a layout from a size has: the model numbers zones in a byte (at most 250
/// zones), [`MAX_NR_ZONES`] a node.
pub const MAX_NODES: u32 = 250 / MAX_NR_ZONES as u32;

/// Smallest machine the model builds from a size.
pub const MIN_MEM_BYTES: u64 = 64 << 20;
/// Largest machine the model builds from a size.
pub const MAX_MEM_BYTES: u64 = 8 << 40;

/// x86-64 physical layout facts used by [`Layout::x86_64`], as seen on this project's VM
/// (`/proc/iomem` and `/proc/zoneinfo` of a Linux 6.18 guest).
mod x86 {
    /// ZONE_DMA ends at 16 MiB.
    pub const DMA_END_PFN: u64 = 0x1000;
    /// ZONE_DMA32 ends at 4 GiB.
    pub const DMA32_END_PFN: u64 = 0x10_0000;
    /// RAM below 4 GiB ends at 3 GiB; the PCI hole follows.
    pub const LOW_RAM_END_PFN: u64 = 0xc_0000;
    /// The legacy VGA/BIOS hole: 0x9f000 .. 1 MiB is not RAM.
    pub const BIOS_HOLE: (u64, u64) = (0x9f, 0x100);
    /// The kernel image and early allocations, reserved at 16 MiB: 9419 pages on the VM.
    pub const KERNEL_RESERVED_PAGES: u64 = 9419;
}

impl Layout {
    /// DEVIATION(linux): memory is fully initialised at boot (no deferred or lazy struct-page
    /// init), and the reserved ranges are the VM's as measured, not memblock's own
    /// bookkeeping; a snapshot's layout comes from its zoneinfo instead.
    ///
    /// A machine of `mem_bytes` of RAM over `nodes` nodes, laid out like an x86-64 VM:
    /// DMA from pfn 1 to 16 MiB (with the BIOS hole, the first MiB reserved), DMA32 up to
    /// 3 GiB of RAM then the PCI hole to 4 GiB, Normal above 4 GiB. Further nodes get equal
    /// shares of the Normal memory. `movable_bytes` of each node's top is ZONE_MOVABLE (as
    /// `movablecore=` would). The struct-page array (64 bytes per present page) is reserved
    /// at the top of each node, as memblock places it.
    pub fn x86_64(mem_bytes: u64, nodes: u32, movable_bytes: u64) -> Result<Layout, LayoutError> {
        if !(MIN_MEM_BYTES..=MAX_MEM_BYTES).contains(&mem_bytes) {
            return Err(LayoutError::SizeOutOfRange {
                bytes: mem_bytes,
                min: MIN_MEM_BYTES >> 20,
                max: MAX_MEM_BYTES >> 40,
            });
        }
        if !(1..=MAX_NODES).contains(&nodes) {
            return Err(LayoutError::Nodes(nodes));
        }
        let total = bytes_to_pages(mem_bytes);
        // RAM pfns: [0, low_end) below the PCI hole (pfn 0 and the BIOS hole are firmware's),
        // then [4 GiB, 4 GiB + rest).
        let low_end = total.min(x86::LOW_RAM_END_PFN);
        let high_pages = total - low_end;
        let mut zones = Vec::new();
        let node0 = NodeId(0);
        // DMA.
        let dma_end = low_end.min(x86::DMA_END_PFN);
        let mut dma_present = vec![PfnRange::new(1, dma_end.min(x86::BIOS_HOLE.0))];
        if dma_end > x86::BIOS_HOLE.1 {
            dma_present.push(PfnRange::new(x86::BIOS_HOLE.1, dma_end));
        }
        // x86 reserves all memory below 1 MiB (since Linux 5.13).
        let dma_reserved = vec![PfnRange::new(1, x86::BIOS_HOLE.0)];
        zones.push(ZoneSpec {
            node: node0,
            zone_type: ZoneType::Dma,
            start_pfn: Pfn(1),
            spanned: dma_end - 1,
            present: dma_present,
            reserved: dma_reserved,
        });
        // DMA32.
        let mut dma32 = empty_zone(node0, ZoneType::Dma32);
        if low_end > x86::DMA_END_PFN {
            let (start, end) = (x86::DMA_END_PFN, low_end);
            let kernel = x86::KERNEL_RESERVED_PAGES.min((end - start) / 4);
            dma32.start_pfn = Pfn(start);
            dma32.spanned = if high_pages > 0 {
                x86::DMA32_END_PFN - start
            } else {
                end - start
            };
            dma32.present = vec![PfnRange::new(start, end)];
            dma32.reserved = vec![PfnRange::new(start, start + kernel)];
        }
        // Normal (and Movable) per node: node 0 holds the low zones and its share above 4G.
        // Node boundaries on whole MAX_ORDER blocks (a pageblock never spans two nodes'
        // zones); the last node takes what is left.
        let per_node = (high_pages / nodes as u64) & !((1u64 << MAX_PAGE_ORDER) - 1);
        let mut next = x86::DMA32_END_PFN;
        let mut normals = Vec::new();
        for n in 0..nodes {
            let share = if n + 1 == nodes {
                high_pages - per_node * n as u64
            } else {
                per_node
            };
            normals.push((NodeId(n as u8), next, next + share));
            next += share;
        }
        let movable_pages = bytes_to_pages(movable_bytes);
        for (i, &(node, start, end)) in normals.iter().enumerate() {
            if i == 0 {
                zones.push(dma32.clone());
            } else {
                zones.push(empty_zone(node, ZoneType::Dma));
                zones.push(empty_zone(node, ZoneType::Dma32));
            }
            let node_present: u64 = (end - start)
                + if i == 0 {
                    zones[0].present_pages() + dma32.present_pages()
                } else {
                    0
                };
            // memmap: 64 bytes per present page of the node, at the node's top.
            let memmap_pages = (node_present * 64).div_ceil(crate::units::PAGE_SIZE);
            let mov = movable_pages.min((end - start) / 2);
            let mov_start = (end - mov) & !((1u64 << MAX_PAGE_ORDER) - 1);
            let normal_end = if mov > 0 { mov_start.max(start) } else { end };
            let mut normal = empty_zone(node, ZoneType::Normal);
            if normal_end > start {
                normal.start_pfn = Pfn(start);
                normal.spanned = normal_end - start;
                normal.present = vec![PfnRange::new(start, normal_end)];
                let r = memmap_pages.min((normal_end - start) / 2);
                if r > 0 {
                    normal.reserved = vec![PfnRange::new(normal_end - r, normal_end)];
                }
            }
            zones.push(normal);
            let mut movable = empty_zone(node, ZoneType::Movable);
            if end > normal_end {
                movable.start_pfn = Pfn(normal_end);
                movable.spanned = end - normal_end;
                movable.present = vec![PfnRange::new(normal_end, end)];
            }
            zones.push(movable);
            zones.push(empty_zone(node, ZoneType::Device));
        }
        Layout::from_zones(zones, Order(DEFAULT_PAGEBLOCK_ORDER))
    }

    /// A layout from explicit zones (for example read from `/proc/zoneinfo`). Zones missing
    /// from `zones` are added empty; every present and reserved range is checked.
    pub fn from_zones(
        mut zones: Vec<ZoneSpec>,
        pageblock_order: Order,
    ) -> Result<Layout, LayoutError> {
        if pageblock_order.0 == 0 || pageblock_order.0 > MAX_PAGE_ORDER {
            return Err(LayoutError::PageblockOrder(pageblock_order.0));
        }
        let nodes = zones
            .iter()
            .map(|z| z.node.0 as usize + 1)
            .max()
            .unwrap_or(1);
        for n in 0..nodes {
            for zt in ZoneType::ALL {
                if !zones
                    .iter()
                    .any(|z| z.node.0 as usize == n && z.zone_type == zt)
                {
                    zones.push(empty_zone(NodeId(n as u8), zt));
                }
            }
        }
        zones.sort_by_key(|z| (z.node, z.zone_type));
        if zones
            .windows(2)
            .any(|w| w[0].node == w[1].node && w[0].zone_type == w[1].zone_type)
        {
            let z = zones
                .windows(2)
                .find(|w| w[0].node == w[1].node && w[0].zone_type == w[1].zone_type)
                .expect("found above");
            return Err(bad(&z[0], "listed twice".into()));
        }
        let mut last_end = 0u64;
        for z in zones.iter().filter(|z| z.spanned > 0) {
            check_ranges(z, &z.present, z.start_pfn.0, z.end_pfn().0, "present")?;
            for r in &z.reserved {
                if !z
                    .present
                    .iter()
                    .any(|p| p.start <= r.start && r.end <= p.end)
                {
                    return Err(bad(
                        z,
                        format!("reserved range {r:?} is not inside a present range"),
                    ));
                }
            }
            check_ranges(z, &z.reserved, z.start_pfn.0, z.end_pfn().0, "reserved")?;
            if z.start_pfn.0 < last_end {
                return Err(bad(z, "overlaps the zone before it".into()));
            }
            last_end = z.end_pfn().0;
        }
        if last_end > u32::MAX as u64 {
            return Err(LayoutError::TooLarge(last_end));
        }
        Ok(Layout {
            zones,
            pageblock_order,
        })
    }

    /// One past the highest spanned pfn: the size of the memory map.
    pub fn end_pfn(&self) -> Pfn {
        // Round up to MAX_PAGE_ORDER so buddy lookups of the last block stay in bounds.
        let end = self.zones.iter().map(|z| z.end_pfn().0).max().unwrap_or(0);
        Pfn(end.next_multiple_of(1 << MAX_PAGE_ORDER))
    }

    /// The number of nodes.
    pub fn nr_nodes(&self) -> usize {
        self.zones
            .iter()
            .map(|z| z.node.0 as usize + 1)
            .max()
            .unwrap_or(1)
    }

    /// Total present pages.
    pub fn present_pages(&self) -> u64 {
        self.zones.iter().map(ZoneSpec::present_pages).sum()
    }
}

fn empty_zone(node: NodeId, zone_type: ZoneType) -> ZoneSpec {
    ZoneSpec {
        node,
        zone_type,
        start_pfn: Pfn(0),
        spanned: 0,
        present: vec![],
        reserved: vec![],
    }
}

fn bad(z: &ZoneSpec, why: String) -> LayoutError {
    LayoutError::BadZone {
        node: z.node.0,
        zone: z.zone_type.name(),
        why,
    }
}

fn check_ranges(
    z: &ZoneSpec,
    ranges: &[PfnRange],
    lo: u64,
    hi: u64,
    what: &str,
) -> Result<(), LayoutError> {
    let mut prev_end = lo;
    for r in ranges {
        if r.start.0 < prev_end || r.end.0 > hi || r.start >= r.end {
            return Err(bad(
                z,
                format!(
                    "{what} range {:#x}..{:#x} is empty, unsorted or outside {lo:#x}..{hi:#x}",
                    r.start.0, r.end.0
                ),
            ));
        }
        prev_end = r.end.0;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(l: &Layout, node: u8, zt: ZoneType) -> &ZoneSpec {
        l.zones
            .iter()
            .find(|z| z.node == NodeId(node) && z.zone_type == zt)
            .unwrap()
    }

    /// The 24 GiB layout matches this project's VM's `/proc/zoneinfo` for DMA and DMA32
    /// exactly, and Normal's span.
    #[test]
    fn x86_64_24g_matches_the_vm() {
        let l = Layout::x86_64(24 << 30, 1, 0).unwrap();
        let dma = zone(&l, 0, ZoneType::Dma);
        assert_eq!(
            (
                dma.start_pfn,
                dma.spanned,
                dma.present_pages(),
                dma.managed_pages()
            ),
            (Pfn(1), 4095, 3998, 3840)
        );
        let dma32 = zone(&l, 0, ZoneType::Dma32);
        assert_eq!(
            (
                dma32.start_pfn,
                dma32.spanned,
                dma32.present_pages(),
                dma32.managed_pages()
            ),
            (Pfn(4096), 1044480, 782336, 772917)
        );
        let normal = zone(&l, 0, ZoneType::Normal);
        assert_eq!(
            (normal.start_pfn, normal.spanned, normal.present_pages()),
            (Pfn(1048576), 5505024, 5505024)
        );
        assert!(normal.managed_pages() < normal.present_pages());
        assert_eq!(l.zones.len(), MAX_NR_ZONES);
        assert_eq!(zone(&l, 0, ZoneType::Movable).spanned, 0);
    }

    #[test]
    fn small_machine_has_no_normal_zone() {
        let l = Layout::x86_64(1 << 30, 1, 0).unwrap();
        assert_eq!(zone(&l, 0, ZoneType::Normal).spanned, 0);
        let dma32 = zone(&l, 0, ZoneType::Dma32);
        assert_eq!(dma32.end_pfn(), Pfn(0x40000));
    }

    #[test]
    fn nodes_and_movable_split_the_high_memory() {
        let l = Layout::x86_64(16 << 30, 2, 1 << 30).unwrap();
        assert_eq!(l.nr_nodes(), 2);
        assert_eq!(l.zones.len(), 2 * MAX_NR_ZONES);
        let n1 = zone(&l, 1, ZoneType::Normal);
        let m1 = zone(&l, 1, ZoneType::Movable);
        assert_eq!(n1.end_pfn(), m1.start_pfn);
        assert_eq!(m1.spanned, 1 << 18);
        let total: u64 = l.zones.iter().map(|z| z.present_pages()).sum();
        assert_eq!(
            total,
            (16 << 30) / 4096 - 98,
            "all RAM but pfn 0 and the BIOS hole"
        );
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(matches!(
            Layout::x86_64(0, 1, 0),
            Err(LayoutError::SizeOutOfRange { .. })
        ));
        assert!(matches!(
            Layout::x86_64(1 << 50, 1, 0),
            Err(LayoutError::SizeOutOfRange { .. })
        ));
        assert_eq!(Layout::x86_64(1 << 30, 0, 0), Err(LayoutError::Nodes(0)));
    }

    #[test]
    fn overlapping_zones_are_refused() {
        let mk = |zt, s: u64, e: u64| ZoneSpec {
            node: NodeId(0),
            zone_type: zt,
            start_pfn: Pfn(s),
            spanned: e - s,
            present: vec![PfnRange::new(s, e)],
            reserved: vec![],
        };
        let err = Layout::from_zones(
            vec![mk(ZoneType::Dma, 0, 4096), mk(ZoneType::Dma32, 4000, 8192)],
            Order(9),
        );
        assert!(matches!(err, Err(LayoutError::BadZone { .. })), "{err:?}");
        let ok = Layout::from_zones(
            vec![mk(ZoneType::Dma, 0, 4096), mk(ZoneType::Dma32, 4096, 8192)],
            Order(9),
        )
        .unwrap();
        assert_eq!(ok.end_pfn(), Pfn(8192));
    }
}
