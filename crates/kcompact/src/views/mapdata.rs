//! The physical memory map: one cell per pageblock (or per group of pageblocks on large
//! machines), with its migratetype and its pages counted by kind — the data of the HTML
//! report's map and of the terminal map [`pageblock_map`].
//!
//! A cell groups `group` pageblocks, the smallest power of two that keeps the number of
//! cells at or below the caller's limit; a grouped cell shows the migratetype most of its
//! pageblocks have and the sum of their page counts.

use crate::event::VmEvent;
use crate::machine::Machine;
use crate::memmap::{MigrateType, PageFlags};
use crate::owners::table::FolioKind;
use crate::units::{Pfn, ZoneIdx};

/// Mark: a movable or CMA block holding unmovable pages (kernel, slab, page table,
/// unmovable driver pages).
pub const MARK_UNMOVABLE: u8 = 1;
/// Mark: holds pinned pages (maybe DMA-pinned or with extra references).
pub const MARK_PINNED: u8 = 2;
/// Mark: holds reserved pages.
pub const MARK_RESERVED: u8 = 4;
/// Mark: the compaction skip bit of a block in it is set.
pub const MARK_SKIP: u8 = 8;

/// One zone's span in the map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneSpan {
    /// `Node N, zone NAME`.
    pub name: String,
    /// First pfn.
    pub start_pfn: u64,
    /// End pfn (exclusive).
    pub end_pfn: u64,
    /// Its first cell.
    pub first_cell: usize,
    /// Its cells.
    pub cells: usize,
    /// Where the migrate scanner went in the last compaction (zone start to its cached
    /// pfn), when compaction scanned this zone.
    pub migrate_scanned: Option<(u64, u64)>,
    /// Where the free scanner went (its cached pfn to the zone end).
    pub free_scanned: Option<(u64, u64)>,
}

/// The map, struct-of-arrays (one entry per cell in each vector).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryMap {
    /// Pages per pageblock.
    pub pageblock_pages: u64,
    /// Pageblocks per cell.
    pub group: u64,
    /// First pfn of each cell.
    pub pfn: Vec<u64>,
    /// Migratetype (`MigrateType as u8`) of each cell.
    pub mt: Vec<u8>,
    /// Free pages.
    pub free: Vec<u32>,
    /// Anonymous pages.
    pub anon: Vec<u32>,
    /// Page cache and shmem pages.
    pub file: Vec<u32>,
    /// Kernel memory: slab, page tables, other kernel pages, pages without an owner.
    pub kernel: Vec<u32>,
    /// Driver pages (zsmalloc, balloon, GPU).
    pub driver: Vec<u32>,
    /// Huge pages: the hugetlb pool's, and whole pageblock-order blocks kernel code
    /// holds (the highalloc test's module).
    pub hugetlb: Vec<u32>,
    /// Reserved pages.
    pub reserved: Vec<u32>,
    /// Pinned pages (counted also under their kind).
    pub pinned: Vec<u32>,
    /// Holes (no page) inside the cell's span.
    pub hole: Vec<u32>,
    /// `MARK_*` bits.
    pub marks: Vec<u8>,
    /// Zones.
    pub zones: Vec<ZoneSpan>,
}

impl MemoryMap {
    /// Number of cells.
    pub fn len(&self) -> usize {
        self.pfn.len()
    }

    /// True without cells.
    pub fn is_empty(&self) -> bool {
        self.pfn.is_empty()
    }

    /// Pages in use in cell `i` (not free, not a hole).
    pub fn used(&self, i: usize) -> u64 {
        self.cell_pages() - u64::from(self.free[i]) - u64::from(self.hole[i])
    }

    /// Pages a cell spans.
    pub fn cell_pages(&self) -> u64 {
        self.pageblock_pages * self.group
    }
}

/// Kinds a page is counted under.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Free,
    Anon,
    File,
    Kernel,
    Driver,
    Hugetlb,
    Reserved,
    Hole,
}

/// The map of every populated zone with at most `max_cells` cells (at least one
/// pageblock a cell).
pub fn memory_map(m: &Machine, max_cells: usize) -> MemoryMap {
    let pb = m.pageblock_order().nr_pages();
    let zones: Vec<ZoneIdx> = (0..m.zones.len())
        .map(|i| ZoneIdx(i as u8))
        .filter(|z| m.zone(*z).is_populated())
        .collect();
    let blocks: u64 = zones
        .iter()
        .map(|z| {
            let zone = m.zone(*z);
            zone.end_pfn().0.div_ceil(pb) - zone.zone_start_pfn.0 / pb
        })
        .sum();
    let mut group = 1u64;
    while blocks.div_ceil(group) > max_cells.max(1) as u64 {
        group *= 2;
    }
    let mut map = MemoryMap {
        pageblock_pages: pb,
        group,
        ..Default::default()
    };
    let cell_pages = pb * group;
    let scanned =
        m.vmstat[VmEvent::CompactMigrateScanned] + m.vmstat[VmEvent::CompactFreeScanned] > 0;
    for zi in zones {
        let z = m.zone(zi);
        let (start, end) = (z.zone_start_pfn.0, z.end_pfn().0);
        let first_cell = map.len();
        let mut c = start / cell_pages * cell_pages;
        while c < end {
            push_cell(m, &mut map, Pfn(c), cell_pages, start, end, group);
            c += cell_pages;
        }
        let cc = &z.compact;
        let mig = cc.cached_migrate_pfn[1].0.clamp(start, end);
        let free = cc.cached_free_pfn.0.clamp(start, end);
        map.zones.push(ZoneSpan {
            name: format!("Node {}, zone {}", z.node.0, z.name()),
            start_pfn: start,
            end_pfn: end,
            first_cell,
            cells: map.len() - first_cell,
            migrate_scanned: (scanned && mig > start).then_some((start, mig)),
            free_scanned: (scanned && free < end && free > start).then_some((free, end)),
        });
    }
    map
}

fn push_cell(
    m: &Machine,
    map: &mut MemoryMap,
    first: Pfn,
    pages: u64,
    zstart: u64,
    zend: u64,
    group: u64,
) {
    let mut counts = [0u32; 8];
    let mut pinned = 0u32;
    let mut marks = 0u8;
    let mut type_votes = [0u32; 6];
    let pb = map.pageblock_pages;
    for b in 0..group {
        let bp = first.plus(b * pb);
        if bp.0 >= zend || bp.0 + pb <= zstart {
            continue;
        }
        type_votes[m.pageblocks.migratetype(bp) as usize] += 1;
        if m.pageblocks.skip(bp) {
            marks |= MARK_SKIP;
        }
    }
    let mt = (0..6)
        .max_by_key(|i| (type_votes[*i], std::cmp::Reverse(*i)))
        .unwrap_or(0) as u8;
    let end = first.0 + pages;
    let mut p = first.0;
    // A free block that began before the cell (an order-10 block spans two pageblocks).
    if let Some(head) = (1..=crate::units::MAX_PAGE_ORDER)
        .map(|o| first.align_down(crate::units::Order(o)))
        .find(|h| {
            *h < first && m.mem.is_buddy(*h) && first < h.plus(m.mem.buddy_order(*h).nr_pages())
        })
    {
        let n = (head.0 + m.mem.buddy_order(head).nr_pages()).min(end) - p;
        counts[Kind::Free as usize] += n as u32;
        p += n;
    }
    while p < end {
        if p < zstart || p >= zend || p >= m.mem.end_pfn().0 {
            counts[Kind::Hole as usize] += 1;
            p += 1;
            continue;
        }
        let f = m.mem.flags(Pfn(p));
        if f.contains(PageFlags::NOPAGE) {
            counts[Kind::Hole as usize] += 1;
            p += 1;
            continue;
        }
        if f.contains(PageFlags::RESERVED) {
            counts[Kind::Reserved as usize] += 1;
            marks |= MARK_RESERVED;
            p += 1;
            continue;
        }
        if m.mem.is_buddy(Pfn(p)) {
            // A free block starting here; a block larger than the cell is counted for its
            // part inside the cell.
            let n = m.mem.buddy_order(Pfn(p)).nr_pages().min(end - p);
            counts[Kind::Free as usize] += n as u32;
            p += n;
            continue;
        }
        if f.contains(PageFlags::PCP) {
            // A free block on a per-CPU list (at most the THP order, within a cell).
            let n = (1u64 << f.order()).min(end - p);
            counts[Kind::Free as usize] += n as u32;
            p += n;
            continue;
        }
        let kind = match m.folio_of(Pfn(p)) {
            None => Kind::Kernel,
            Some(id) => {
                let rec = m.owners.folio(id);
                let head = m.mem.compound_head(Pfn(p));
                if p == head.0
                    && (m.mem.maybe_dma_pinned(head)
                        || m.mem.refcount(head)
                            > m.mem.mapcount(head) + 1 + rec.order.nr_pages() as u32)
                    && matches!(
                        rec.kind,
                        FolioKind::Anon | FolioKind::File | FolioKind::Shmem
                    )
                {
                    pinned += rec.order.nr_pages() as u32;
                    marks |= MARK_PINNED;
                }
                match rec.kind {
                    FolioKind::Anon => Kind::Anon,
                    FolioKind::File | FolioKind::Shmem => Kind::File,
                    FolioKind::Driver if !f.contains(PageFlags::MOVABLE_OPS) => Kind::Kernel,
                    FolioKind::Driver => Kind::Driver,
                    FolioKind::Hugetlb => Kind::Hugetlb,
                    // A whole huge page a module holds (the highalloc test's) is a huge
                    // page, not kernel memory scattered in the block.
                    FolioKind::Kernel if rec.order >= m.pageblock_order() => Kind::Hugetlb,
                    FolioKind::PageTable | FolioKind::Slab | FolioKind::Kernel => Kind::Kernel,
                }
            }
        };
        if kind == Kind::Kernel
            && matches!(mt, x if x == MigrateType::Movable as u8 || x == MigrateType::Cma as u8)
        {
            marks |= MARK_UNMOVABLE;
        }
        counts[kind as usize] += 1;
        p += 1;
    }
    map.pfn.push(first.0);
    map.mt.push(mt);
    map.free.push(counts[Kind::Free as usize]);
    map.anon.push(counts[Kind::Anon as usize]);
    map.file.push(counts[Kind::File as usize]);
    map.kernel.push(counts[Kind::Kernel as usize]);
    map.driver.push(counts[Kind::Driver as usize]);
    map.hugetlb.push(counts[Kind::Hugetlb as usize]);
    map.reserved.push(counts[Kind::Reserved as usize]);
    map.pinned.push(pinned);
    map.hole.push(counts[Kind::Hole as usize]);
    map.marks.push(marks);
}

/// The glyph of cell `i` in the terminal map: `.` free; `X` holds reserved pages; `!` a
/// movable or CMA block holding unmovable pages; `#` holds pinned pages; else the
/// migratetype's letter (`M`, `U`, `R`, `H`, `C`, `I`), upper case when at least half
/// its pages are in use, lower case otherwise; ` ` a hole.
pub fn cell_glyph(map: &MemoryMap, i: usize) -> char {
    let present = map.cell_pages() - u64::from(map.hole[i]);
    if present == 0 {
        return ' ';
    }
    if u64::from(map.free[i]) == present {
        return '.';
    }
    if map.marks[i] & MARK_RESERVED != 0 {
        return 'X';
    }
    if map.marks[i] & MARK_UNMOVABLE != 0 {
        return '!';
    }
    if map.marks[i] & MARK_PINNED != 0 {
        return '#';
    }
    let letter = match map.mt[i] {
        0 => 'U',
        1 => 'M',
        2 => 'R',
        3 => 'H',
        4 => 'C',
        _ => 'I',
    };
    if map.used(i) * 2 >= present {
        letter
    } else {
        letter.to_ascii_lowercase()
    }
}

/// The terminal map: per zone, lines of 64 cells headed by the first pfn, then a legend.
pub fn pageblock_map(map: &MemoryMap) -> String {
    let mut out = String::new();
    for z in &map.zones {
        out.push_str(&format!(
            "{} (pfn {:#x}-{:#x}, {} cell{} of {} pageblock{})\n",
            z.name,
            z.start_pfn,
            z.end_pfn,
            z.cells,
            if z.cells == 1 { "" } else { "s" },
            map.group,
            if map.group == 1 { "" } else { "s" }
        ));
        for row in (0..z.cells).step_by(64) {
            let first = z.first_cell + row;
            out.push_str(&format!("  {:#010x} ", map.pfn[first]));
            for i in first..(first + 64).min(z.first_cell + z.cells) {
                out.push(cell_glyph(map, i));
            }
            out.push('\n');
        }
    }
    out.push_str(
        "legend: . free  M/U/R/H/C/I migratetype (upper case: at least half in use)  \
         ! unmovable pages in a movable block  # pinned pages  X reserved pages\n",
    );
    out
}
