//! Invariants 1 to 5: the buddy allocator's lists and counters, each page's state, the
//! zones' watermarks and highatomic reserve.

use super::VerifyCounts;
use crate::machine::Machine;
use crate::memmap::{MigrateType, PageFlags};
use crate::units::{Order, Pfn, ZoneIdx, MAX_PAGE_ORDER};

/// Invariants 1, 2 and 4: walks every free list; returns which pages are inside a free
/// block.
pub(super) fn check_free_lists(m: &Machine, errs: &mut Vec<String>) -> Vec<bool> {
    let mut err = |s: String| errs.push(s);
    let end = m.mem.end_pfn();
    let pb = m.pageblock_order();
    let mut on_list = vec![false; end.idx()];
    let mut free_page = vec![false; end.idx()];
    for (zidx, z) in m.zones.iter().enumerate() {
        let zi = ZoneIdx(zidx as u8);
        let (mut nr_free_pages, mut cma, mut highatomic, mut blocks) = (0u64, 0u64, 0u64, 0u64);
        for o in Order::all() {
            let area = &z.free_area[o.idx()];
            let mut count = 0;
            for mt in MigrateType::ALL {
                for pfn in area.free_list[mt.idx()].iter(&m.mem) {
                    count += 1;
                    if count > end.0 {
                        err(format!(
                            "zone {} order {o} {}: list loops",
                            z.name(),
                            mt.name()
                        ));
                        break;
                    }
                    if on_list[pfn.idx()] {
                        err(format!("{pfn:?} is on two free lists"));
                        continue;
                    }
                    on_list[pfn.idx()] = true;
                    if !m.mem.is_buddy(pfn) || m.mem.buddy_order(pfn) != o {
                        err(format!(
                            "{pfn:?} on order-{o} {} list is not a buddy head of that order: {:?}",
                            mt.name(),
                            m.mem.flags(pfn)
                        ));
                        continue;
                    }
                    if !pfn.is_aligned(o)
                        || m.page_zone(pfn) != Some(zi)
                        || m.page_zone(pfn.plus(o.nr_pages() - 1)) != Some(zi)
                    {
                        err(format!(
                            "{pfn:?} order {o}: misaligned or outside zone {}",
                            z.name()
                        ));
                        continue;
                    }
                    let nblocks = 1u64 << o.0.saturating_sub(pb.0);
                    for b in 0..nblocks {
                        let t = m.pageblocks.migratetype(pfn.plus(b << pb.0));
                        if t != mt {
                            err(format!(
                                "{pfn:?} order {o} on {} list but its pageblock is {}",
                                mt.name(),
                                t.name()
                            ));
                        }
                    }
                    for i in 0..o.nr_pages() {
                        let p = pfn.plus(i);
                        if free_page[p.idx()] {
                            err(format!("{p:?} is inside two free blocks"));
                        }
                        free_page[p.idx()] = true;
                        if i > 0
                            && (m.mem.flags(p) != PageFlags::EMPTY
                                || m.mem.refcount(p) != 0
                                || m.mem.mapcount(p) != 0)
                        {
                            err(format!(
                                "{p:?} inside free block {pfn:?} is not clean: {:?}",
                                m.mem.flags(p)
                            ));
                        }
                    }
                    let n = o.nr_pages();
                    if mt != MigrateType::Isolate {
                        nr_free_pages += n;
                        if o >= pb {
                            blocks += n;
                        }
                    }
                    match mt {
                        MigrateType::Cma => cma += n,
                        MigrateType::HighAtomic => highatomic += n,
                        _ => {}
                    }
                    // 4: unmerged buddies.
                    if o.0 < MAX_PAGE_ORDER && o < pb {
                        if let Some(b) = m.find_buddy(pfn, o) {
                            err(format!("{pfn:?} and its buddy {b:?} are both free at order {o} but unmerged"));
                        }
                    }
                }
            }
            if count != area.nr_free {
                err(format!(
                    "zone {} order {o}: nr_free {} but lists hold {count}",
                    z.name(),
                    area.nr_free
                ));
            }
        }
        let checks = [
            ("nr_free_pages", z.nr_free_pages, nr_free_pages),
            ("nr_free_cma", z.nr_free_cma, cma),
            ("nr_free_highatomic", z.nr_free_highatomic, highatomic),
            ("nr_free_pages_blocks", z.nr_free_pages_blocks, blocks),
        ];
        for (name, have, want) in checks {
            if have != want {
                err(format!(
                    "zone {}: {name} is {have}, recount {want}",
                    z.name()
                ));
            }
        }
    }
    free_page
}

/// Invariant 8: every per-CPU list entry is a `PCP` block head of its list's order,
/// aligned, inside its zone, tagged with its list, clean inside, on no other list and in no
/// buddy block; each pcp's `count` equals its lists' pages and its `high` stays within
/// its bounds once used. Marks the pages in `free_page`; returns the pcp pages.
pub(super) fn check_pcp_lists(m: &Machine, free_page: &mut [bool], errs: &mut Vec<String>) -> u64 {
    use crate::buddy::pcp::pindex_to_order;
    use crate::mmzone::NR_PCP_LISTS;
    let mut err = |s: String| errs.push(s);
    let end = m.mem.end_pfn();
    let mut total = 0;
    for (zidx, z) in m.zones.iter().enumerate() {
        let zi = ZoneIdx(zidx as u8);
        if !m.config.pcp && !z.pageset.is_empty() {
            err(format!("zone {}: per-CPU lists with pcp=off", z.name()));
        }
        for (cpu, pcp) in z.pageset.iter().enumerate() {
            let mut pages = 0;
            for (pindex, list) in pcp.lists.iter().enumerate() {
                let o = pindex_to_order(pindex);
                for (n, pfn) in list.iter(&m.mem).enumerate() {
                    if n as u64 > end.0 {
                        err(format!("zone {} cpu {cpu} list {pindex}: loops", z.name()));
                        break;
                    }
                    let f = m.mem.flags(pfn);
                    let tag = (cpu * NR_PCP_LISTS + pindex) as u32;
                    if !f.contains(PageFlags::PCP)
                        || f.contains(PageFlags::BUDDY)
                        || f.order() != o.0
                        || m.mem.pcp_tag(pfn) != tag
                    {
                        err(format!(
                            "{pfn:?} on cpu {cpu}'s pcp list {pindex} (order {o}) is {f:?} tagged {}",
                            m.mem.pcp_tag(pfn)
                        ));
                        continue;
                    }
                    if !pfn.is_aligned(o) || m.page_zone(pfn) != Some(zi) {
                        err(format!(
                            "{pfn:?} on a pcp list of zone {} misplaced",
                            z.name()
                        ));
                        continue;
                    }
                    for i in 0..o.nr_pages() {
                        let p = pfn.plus(i);
                        if free_page[p.idx()] {
                            err(format!("{p:?} is on a pcp list and free elsewhere"));
                        }
                        free_page[p.idx()] = true;
                        if i > 0 && m.mem.flags(p) != PageFlags::EMPTY {
                            err(format!("{p:?} inside pcp block {pfn:?} is not clean"));
                        }
                    }
                    pages += o.nr_pages();
                }
            }
            if pages != pcp.count {
                err(format!(
                    "zone {} cpu {cpu}: pcp count {} but its lists hold {pages}",
                    z.name(),
                    pcp.count
                ));
            }
            // `high` moves between the bounds only when used (every use clamps it first);
            // `pageset_update()` writes the bounds alone, so after a watermark change `high`
            // may sit outside them until the next allocation or free. It never exceeds what
            // the zone manages, nor the larger bound it was last clamped to.
            let cap = z.managed_pages.max(pcp.high_min).max(pcp.high_max);
            if pcp.high > cap {
                err(format!(
                    "zone {} cpu {cpu}: high {} above {cap} (managed {}, bounds {}..={})",
                    z.name(),
                    pcp.high,
                    z.managed_pages,
                    pcp.high_min,
                    pcp.high_max
                ));
            }
            total += pages;
        }
    }
    total
}

/// Invariant 3: every present page in exactly one state; free + allocated = managed.
pub(super) fn check_page_states(
    m: &Machine,
    free_page: &[bool],
    errs: &mut Vec<String>,
) -> VerifyCounts {
    let mut err = |s: String| errs.push(s);
    let end = m.mem.end_pfn();
    let mut counts = VerifyCounts::default();
    let mut per_zone = vec![(0u64, 0u64); m.zones.len()];
    let mut p = Pfn(0);
    while p < end {
        let f = m.mem.flags(p);
        if f.contains(PageFlags::NOPAGE) {
            p = p.plus(1);
            continue;
        }
        let Some(zi) = m.page_zone(p) else {
            err(format!("{p:?} is present but in no zone"));
            p = p.plus(1);
            continue;
        };
        if f.contains(PageFlags::RESERVED) {
            counts.reserved_pages += 1;
        } else if free_page[p.idx()] {
            counts.free_pages += 1;
            per_zone[zi.idx()].0 += 1;
        } else if f.contains(PageFlags::BUDDY) {
            err(format!("{p:?} is a buddy head on no free list"));
        } else if f.contains(PageFlags::PCP) {
            err(format!("{p:?} is a pcp block head on no pcp list"));
        } else {
            counts.allocated_pages += 1;
            per_zone[zi.idx()].1 += 1;
            if f.contains(PageFlags::TAIL) {
                let head = m.mem.compound_head(p);
                let hf = m.mem.flags(head);
                if !hf.contains(PageFlags::HEAD) || head > p || p.0 - head.0 >= 1u64 << hf.order() {
                    err(format!(
                        "{p:?} is a tail of {head:?}, which is not a head covering it"
                    ));
                }
            } else if f.contains(PageFlags::HEAD) && m.mem.refcount(p) == 0 {
                err(format!("{p:?} is an allocated head with refcount 0"));
            }
        }
        p = p.plus(1);
    }
    for (zidx, z) in m.zones.iter().enumerate() {
        let (free, alloc) = per_zone[zidx];
        if free + alloc != z.managed_pages {
            err(format!(
                "zone {}: free {free} + allocated {alloc} != managed {}",
                z.name(),
                z.managed_pages
            ));
        }
    }
    counts
}

/// Invariant 5: watermarks in order; the highatomic reserve equals the HIGHATOMIC
/// pageblocks' pages.
pub(super) fn check_zones(m: &Machine, errs: &mut Vec<String>) {
    let mut err = |s: String| errs.push(s);
    let pb = m.pageblock_order();
    for (zidx, z) in m.zones.iter().enumerate() {
        let w = z.watermark;
        if !(w[0] <= w[1] && w[1] <= w[2] && w[2] <= w[3]) {
            err(format!("zone {}: watermarks out of order {w:?}", z.name()));
        }
        // 5: the highatomic reserve matches the HIGHATOMIC pageblocks.
        if z.spanned_pages > 0 {
            let first = z.zone_start_pfn.pageblock(pb).0;
            let last = Pfn(z.end_pfn().0 - 1).pageblock(pb).0;
            let ha = (first..=last)
                .filter(|b| {
                    m.page_zone(Pfn((*b as u64) << pb.0).max(z.zone_start_pfn))
                        == Some(ZoneIdx(zidx as u8))
                })
                .filter(|b| {
                    m.pageblocks
                        .underlying_migratetype(Pfn((*b as u64) << pb.0))
                        == MigrateType::HighAtomic
                })
                .count() as u64;
            if ha * m.pageblocks.nr_pages() != z.nr_reserved_highatomic {
                err(format!(
                    "zone {}: nr_reserved_highatomic {} but {ha} HIGHATOMIC pageblocks",
                    z.name(),
                    z.nr_reserved_highatomic
                ));
            }
        }
    }
}
