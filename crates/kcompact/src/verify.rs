//! The full-state checker: every free list recounted, every page in exactly one state.
//!
//! [`verify`] walks the whole machine and returns every violated invariant it finds. Tests
//! run it after every operation; it is too slow for production paths (O(pages)).
//!
//! Invariants checked:
//! 1. Every free list entry is a `BUDDY` head of that list's order, aligned, inside its zone,
//!    in pageblocks whose type is the list's type; no page is on two lists.
//! 2. `nr_free` per order equals the list lengths; NR_FREE_PAGES, NR_FREE_CMA_PAGES,
//!    NR_FREE_PAGES_BLOCKS and `nr_free_highatomic` equal their recounts.
//! 3. Every present page is in exactly one state: reserved, inside a free block, or
//!    allocated (a head with a reference, a tail of a head, or a page of a non-compound
//!    high-order block); free + allocated = managed per zone.
//! 4. No two free buddies are left unmerged below pageblock order (at and above it, types
//!    may legitimately keep them apart).
//! 6. Owners and pages agree: every folio record's head carries its id, flags and order;
//!    refcount = mappings + page-cache references + private + a kernel owner's reference +
//!    isolation + pins + speculative references; mapcount = the reverse map's mappings;
//!    the reverse map, page tables, page caches and slab lists name each other; every LRU
//!    folio is on exactly one LRU list (or isolated); tracked contents are intact.
//! 7. Reclaim: each zone's LRU page counts equal the recount of its LRU folios by list,
//!    and each list holds exactly one live entry per folio on it; swap slots in use equal
//!    the pages of the swap entries, and an entry's cached folio is the process's
//!    anonymous folio in the swap cache.
//! 5. Watermarks are ordered min ≤ low ≤ high ≤ promo; the highatomic reserve equals the
//!    pages of HIGHATOMIC pageblocks (isolated ones included: isolation keeps the type
//!    underneath).

use crate::machine::Machine;
use crate::memmap::{MigrateType, PageFlags};
use crate::units::{Order, Pfn, ZoneIdx, MAX_PAGE_ORDER};

/// What the checker counted, for tests that want the figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyCounts {
    /// Free pages (isolated included).
    pub free_pages: u64,
    /// Allocated pages.
    pub allocated_pages: u64,
    /// Reserved pages.
    pub reserved_pages: u64,
}

/// Checks every invariant of the module documentation; `Err` lists the violations (at most
/// 20, then a count).
pub fn verify(m: &Machine) -> Result<VerifyCounts, String> {
    let mut errs: Vec<String> = Vec::new();
    let mut err = |s: String| errs.push(s);
    let end = m.mem.end_pfn();
    let pb = m.pageblock_order();
    // 1 + 2: walk the lists.
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
        let w = z.watermark;
        if !(w[0] <= w[1] && w[1] <= w[2] && w[2] <= w[3]) {
            err(format!("zone {}: watermarks out of order {w:?}", z.name()));
        }
    }
    // 3: every page in one state.
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
    verify_owners(m, &mut errs);
    verify_reclaim(m, &mut errs);
    if errs.is_empty() {
        Ok(counts)
    } else {
        let n = errs.len();
        errs.truncate(20);
        if n > 20 {
            errs.push(format!("... and {} more", n - 20));
        }
        Err(errs.join("\n"))
    }
}

/// Invariant 7: LRU counts and lists, swap entries.
fn verify_reclaim(m: &Machine, errs: &mut Vec<String>) {
    use crate::mmzone::{lru_list_of, LruList, NR_LRU_LISTS};
    let mut counts = vec![[0u64; NR_LRU_LISTS]; m.zones.len()];
    let mut folios = vec![[0u64; NR_LRU_LISTS]; m.nr_nodes()];
    for (_, rec) in m.owners.iter() {
        if let Some(l) = lru_list_of(m.mem.flags(rec.pfn)) {
            let Some(zi) = m.page_zone(rec.pfn) else {
                errs.push(format!("LRU folio at {:?} outside every zone", rec.pfn));
                continue;
            };
            counts[zi.idx()][l.idx()] += rec.order.nr_pages();
            folios[m.zone(zi).node.0 as usize][l.idx()] += 1;
        }
    }
    for (i, z) in m.zones.iter().enumerate() {
        if z.nr_lru != counts[i] {
            errs.push(format!(
                "zone {} of node {}: LRU counts {:?} but {:?} pages are on the lists",
                z.name(),
                z.node.0,
                z.nr_lru,
                counts[i]
            ));
        }
    }
    for (node, v) in m.nodes.iter().map(|p| &p.lruvec).enumerate() {
        for l in LruList::ALL {
            let live = v.lists[l.idx()]
                .iter()
                .filter(|(id, seq)| m.lru_entry_live(l, *id, *seq))
                .count() as u64;
            if live != folios[node][l.idx()] {
                errs.push(format!(
                    "node {node} {l:?}: {live} live entries for {} folios",
                    folios[node][l.idx()]
                ));
            }
        }
    }
    let used: u64 = m.reclaim.swap.values().map(|e| e.order.nr_pages()).sum();
    if used != m.reclaim.swap_used {
        errs.push(format!(
            "swap slots in use {} but entries hold {used}",
            m.reclaim.swap_used
        ));
    }
    if let Some(drv) = m.reclaim.zram {
        let objs: u64 = m.reclaim.zram_objs.values().map(|v| v.len() as u64).sum();
        let stored: u64 = m.owners.drivers[drv as usize]
            .zspages
            .values()
            .map(|z| u64::from(z.used))
            .sum();
        if objs != stored {
            errs.push(format!(
                "zram: swap entries hold {objs} objects but the pool stores {stored}"
            ));
        }
        for (key, v) in &m.reclaim.zram_objs {
            let pages = m.reclaim.swap.get(key).map(|e| e.order.nr_pages());
            if pages != Some(v.len() as u64) {
                errs.push(format!(
                    "zram: objects of {key:?} ({}) do not match its swap entry ({pages:?} pages)",
                    v.len()
                ));
            }
        }
    } else if !m.reclaim.zram_objs.is_empty() {
        errs.push("zram objects without a zram device".into());
    }
    for ((pid, vpn), e) in &m.reclaim.swap {
        if let Some(id) = e.cached {
            let ok = m.owners.get(id).is_some_and(|r| {
                r.kind == crate::owners::table::FolioKind::Anon
                    && r.owner == *pid
                    && r.index == *vpn
                    && m.mem.flags(r.pfn).contains(PageFlags::SWAPCACHE)
            });
            if !ok {
                errs.push(format!(
                    "swap entry ({pid}, {vpn:#x}) names {id:?}, which is not its cached folio"
                ));
            }
        }
        if m.owners.processes[*pid as usize].table.contains_key(vpn) {
            errs.push(format!("({pid}, {vpn:#x}) is both mapped and swapped out"));
        }
    }
}

/// Invariant 6: owners and page metadata agree.
fn verify_owners(m: &Machine, errs: &mut Vec<String>) {
    use crate::memmap::{OwnerRef, GUP_PIN_COUNTING_BIAS};
    use crate::owners::process::map_refs;
    use crate::owners::table::FolioKind;
    let o = &m.owners;
    let slots = o.iter().map(|(id, _)| id.0 as usize + 1).max().unwrap_or(0);
    let mut maps = vec![0u32; slots];
    for (id, pid, vpn) in &o.rmap {
        let Some(rec) = o.get(*id) else {
            errs.push(format!("reverse map names dead folio {id:?}"));
            continue;
        };
        maps[id.0 as usize] += map_refs(rec.order);
        if o.processes[*pid as usize].table.get(vpn) != Some(id) {
            errs.push(format!(
                "reverse map ({id:?}, {pid}, {vpn:#x}) has no page table entry"
            ));
        }
    }
    for (pid, p) in o.processes.iter().enumerate() {
        for (vpn, id) in &p.table {
            if !o.rmap.contains(&(*id, pid as u32, *vpn)) {
                errs.push(format!(
                    "process {pid} maps {id:?} at {vpn:#x} without a reverse-map entry"
                ));
            }
        }
    }
    let mut pins = vec![0u32; slots];
    for (id, _) in o.pins.iter().flatten() {
        match pins.get_mut(id.0 as usize) {
            Some(n) => *n += 1,
            None => errs.push(format!("pin on dead folio {id:?}")),
        }
    }
    let mut spec = vec![0u32; slots];
    for (id, _) in &o.speculative {
        match spec.get_mut(id.0 as usize) {
            Some(n) => *n += 1,
            None => errs.push(format!("speculative reference on dead folio {id:?}")),
        }
    }
    for (fid, f) in o.files.iter().enumerate() {
        for (index, id) in &f.pages {
            match o.get(*id) {
                Some(r)
                    if r.kind.in_page_cache()
                        && r.owner == fid as u32
                        && r.index == *index
                        && !r.orphan => {}
                _ => errs.push(format!(
                    "file {fid} index {index} names {id:?}, which is not its cached folio"
                )),
            }
        }
    }
    for (did, d) in o.drivers.iter().enumerate() {
        for id in d.pages.iter().chain(&d.isolated).chain(&d.busy) {
            if o.get(*id).map(|r| (r.kind, r.owner, r.orphan))
                != Some((FolioKind::Driver, did as u32, false))
            {
                errs.push(format!(
                    "driver {did} lists {id:?}, which is not its live page"
                ));
            }
        }
        for (zs, z) in &d.zspages {
            if z.used == 0
                || z.used > z.capacity
                || z.pages.iter().any(|p| d.page_zspage.get(p) != Some(zs))
            {
                errs.push(format!("driver {did}: zspage {zs} is inconsistent"));
            }
            let class = (z.pages.len() as u32, z.capacity);
            let listed = d.partial.get(&class).is_some_and(|p| p.contains(zs));
            if listed != (z.used < z.capacity) {
                errs.push(format!(
                    "driver {did}: zspage {zs} with {}/{} objects {} the partial list",
                    z.used,
                    z.capacity,
                    if listed { "on" } else { "missing from" }
                ));
            }
        }
        let partial: usize = d.partial.values().map(|p| p.len()).sum();
        let want = d.zspages.values().filter(|z| z.used < z.capacity).count();
        if partial != want {
            errs.push(format!(
                "driver {did}: {partial} zspages on partial lists, {want} have room"
            ));
        }
    }
    for (cid, c) in o.caches.iter().enumerate() {
        for (id, used) in &c.slabs {
            if *used == 0
                || *used > c.objs_per_slab
                || o.get(*id).map(|r| (r.kind, r.owner)) != Some((FolioKind::Slab, cid as u32))
            {
                errs.push(format!(
                    "slab cache {cid}: slab {id:?} with {used} objects is inconsistent"
                ));
            }
        }
    }
    let (mut iso_anon, mut iso_file) = (0u64, 0u64);
    for (_, rec) in o.iter() {
        let f = m.mem.flags(rec.pfn);
        if rec.kind.is_lru() && f.contains(PageFlags::ISOLATED) {
            let n = rec.order.nr_pages();
            if f.contains(PageFlags::SWAPBACKED) {
                iso_anon += n
            } else {
                iso_file += n
            }
        }
    }
    if (iso_anon, iso_file) != (m.vmstat.nr_isolated_anon, m.vmstat.nr_isolated_file) {
        errs.push(format!(
            "NR_ISOLATED_ANON/FILE are {}/{} but {iso_anon}/{iso_file} pages are isolated",
            m.vmstat.nr_isolated_anon, m.vmstat.nr_isolated_file
        ));
    }
    for (id, rec) in o.iter() {
        let pfn = rec.pfn;
        let f = m.mem.flags(pfn);
        let what = || {
            format!(
                "folio {id:?} at {pfn:?} ({:?}, order {})",
                rec.kind, rec.order.0
            )
        };
        if f.intersects(PageFlags::BUDDY | PageFlags::TAIL) || m.mem.owner(pfn) != OwnerRef(id.0) {
            errs.push(format!(
                "{}: head is {f:?} with owner {:?}",
                what(),
                m.mem.owner(pfn)
            ));
            continue;
        }
        if (rec.order.0 > 0) != f.contains(PageFlags::HEAD) || f.order() != rec.order.0 {
            errs.push(format!(
                "{}: head flags {f:?} disagree with its order",
                what()
            ));
        }
        let mapped = maps[id.0 as usize];
        if m.mem.mapcount(pfn) != mapped {
            errs.push(format!(
                "{}: mapcount {} but {mapped} mappings",
                what(),
                m.mem.mapcount(pfn)
            ));
        }
        let npins = pins[id.0 as usize];
        let large = rec.order.0 > 0;
        if large && m.mem.pincount(pfn) != npins {
            errs.push(format!(
                "{}: pincount {} but {npins} pins",
                what(),
                m.mem.pincount(pfn)
            ));
        }
        let cache = if (rec.kind.in_page_cache() && !rec.orphan) || f.contains(PageFlags::SWAPCACHE)
        {
            rec.order.nr_pages() as u32
        } else {
            0
        };
        let owner_ref = (!rec.kind.is_lru() && !rec.orphan) as u32;
        if rec.kind == FolioKind::Driver {
            let d = &o.drivers[rec.owner as usize];
            if f.contains(PageFlags::MOVABLE_OPS) != d.movable
                || d.pages.contains(&id) == rec.orphan
            {
                errs.push(format!(
                    "{}: driver page state disagrees with driver {} ({f:?})",
                    what(),
                    rec.owner
                ));
            }
            if !rec.orphan && f.contains(PageFlags::ISOLATED) != d.isolated.contains(&id) {
                errs.push(format!(
                    "{}: isolated bit disagrees with the driver",
                    what()
                ));
            }
        }
        let pin_refs = if large {
            npins
        } else {
            npins * GUP_PIN_COUNTING_BIAS
        };
        let want = mapped
            + cache
            + f.contains(PageFlags::PRIVATE) as u32
            + owner_ref
            + f.contains(PageFlags::ISOLATED) as u32
            + pin_refs
            + spec[id.0 as usize];
        if m.mem.refcount(pfn) != want {
            errs.push(format!(
                "{}: refcount {} but owners, mappings, pins and isolation account for {want}",
                what(),
                m.mem.refcount(pfn)
            ));
        }
        if rec.kind.is_lru() {
            if f.contains(PageFlags::LRU) == f.contains(PageFlags::ISOLATED) {
                errs.push(format!(
                    "{}: must be on an LRU list or isolated, exactly one: {f:?}",
                    what()
                ));
            }
            if f.contains(PageFlags::ACTIVE) && f.contains(PageFlags::UNEVICTABLE) {
                errs.push(format!(
                    "{}: on two LRU lists (active and unevictable)",
                    what()
                ));
            }
        } else if f.contains(PageFlags::LRU)
            || (rec.kind != FolioKind::Driver && f.contains(PageFlags::ISOLATED))
        {
            errs.push(format!(
                "{}: a kernel folio on an LRU list or isolated",
                what()
            ));
        }
        if rec.kind == FolioKind::Anon
            && rec.orphan != (mapped == 0 && !f.contains(PageFlags::SWAPCACHE))
        {
            errs.push(format!(
                "{}: orphan {} with {mapped} mappings",
                what(),
                rec.orphan
            ));
        }
        if !m
            .contents
            .check(pfn, rec.order.nr_pages(), rec.stamp, rec.stamp_offset)
        {
            errs.push(format!("{}: contents lost or corrupted", what()));
        }
    }
}
