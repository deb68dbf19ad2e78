//! One text picture of a zone: a line per pageblock, a glyph per page.
//!
//! Each line is the block's migratetype letter (`M`ovable, `U`nmovable, `R`eclaimable,
//! `H`ighAtomic, `C`MA, `I`solate), `*` if its compaction skip bit is set (else a space),
//! a space, and one glyph per page: `.` free, `,` free on a per-CPU list, `M` anonymous, `P` anonymous and maybe
//! DMA-pinned, `F` page cache, `T` page table, `U` other kernel memory or slab, `D` driver
//! page, `H` hugetlb, `-` allocated without an owner, `R` reserved, ` ` hole. Pages of a
//! large folio after its head use the lower-case glyph. Golden tests, debugging and the
//! reports draw the same picture.

use crate::machine::Machine;
use crate::memmap::{MigrateType, PageFlags};
use crate::owners::table::FolioKind;
use crate::units::{Pfn, ZoneIdx};

/// The migratetype's letter in the picture.
pub fn type_glyph(mt: MigrateType) -> char {
    match mt {
        MigrateType::Movable => 'M',
        MigrateType::Unmovable => 'U',
        MigrateType::Reclaimable => 'R',
        MigrateType::HighAtomic => 'H',
        MigrateType::Cma => 'C',
        MigrateType::Isolate => 'I',
    }
}

/// The glyph of one page.
pub fn page_glyph(m: &Machine, pfn: Pfn) -> char {
    let f = m.mem.flags(pfn);
    if f.contains(PageFlags::NOPAGE) {
        return ' ';
    }
    if f.contains(PageFlags::RESERVED) {
        return 'R';
    }
    let head = m.mem.compound_head(pfn);
    let in_free_block = (0..=crate::units::MAX_PAGE_ORDER)
        .map(|o| pfn.align_down(crate::units::Order(o)))
        .any(|h| m.mem.is_buddy(h) && pfn < h.plus(m.mem.buddy_order(h).nr_pages()));
    if in_free_block {
        return '.';
    }
    let in_pcp_block = (0..=crate::units::MAX_PAGE_ORDER)
        .map(|o| pfn.align_down(crate::units::Order(o)))
        .any(|h| {
            let hf = m.mem.flags(h);
            hf.contains(PageFlags::PCP) && pfn < h.plus(1 << hf.order())
        });
    if in_pcp_block {
        return ',';
    }
    let Some(id) = m.folio_of(pfn) else {
        return '-';
    };
    let rec = m.owners.folio(id);
    let g = match rec.kind {
        FolioKind::Anon if m.mem.maybe_dma_pinned(head) => 'P',
        FolioKind::Anon => 'M',
        FolioKind::File | FolioKind::Shmem => 'F',
        FolioKind::PageTable => 'T',
        FolioKind::Slab | FolioKind::Kernel => 'U',
        FolioKind::Driver => 'D',
        FolioKind::Hugetlb => 'H',
    };
    if head != pfn {
        g.to_ascii_lowercase()
    } else {
        g
    }
}

/// The zone's picture, a line per pageblock.
pub fn zone_picture(m: &Machine, zi: ZoneIdx) -> String {
    let z = m.zone(zi);
    let pb = m.pageblock_order();
    let mut out = String::new();
    let mut b = z.zone_start_pfn.align_down(pb);
    while b < z.end_pfn() {
        out.push(type_glyph(m.pageblocks.migratetype(b)));
        out.push(if m.pageblocks.skip(b) { '*' } else { ' ' });
        out.push(' ');
        for i in 0..pb.nr_pages() {
            let p = b.plus(i);
            out.push(if z.spans(p) { page_glyph(m, p) } else { ' ' });
        }
        out.push('\n');
        b = b.plus(pb.nr_pages());
    }
    out
}
