//! Invariant 6: owners and the page metadata agree.

use crate::event::VmEvent;
use crate::machine::Machine;
use crate::memmap::{OwnerRef, PageFlags, GUP_PIN_COUNTING_BIAS};
use crate::owners::process::map_refs;
use crate::owners::table::{FolioId, FolioKind, FolioRec, Owners};
use std::collections::BTreeMap;

/// What the owners' tables say each folio should carry, by folio id (the few folios with
/// pins or speculative references only, so checking a machine adds no memory per page).
struct Refs {
    /// GUP pins.
    pins: BTreeMap<u32, u32>,
    /// Speculative references.
    spec: BTreeMap<u32, u32>,
}

impl Refs {
    /// Page-table mappings of `id`, as references (`map_refs()` each).
    fn maps(o: &Owners, id: FolioId, rec: &FolioRec) -> u32 {
        o.mappers(id).count() as u32 * map_refs(rec.order)
    }

    fn pins(&self, id: FolioId) -> u32 {
        self.pins.get(&id.0).copied().unwrap_or(0)
    }

    fn spec(&self, id: FolioId) -> u32 {
        self.spec.get(&id.0).copied().unwrap_or(0)
    }
}

/// Invariant 6: owners and page metadata agree.
pub(super) fn check_owners(m: &Machine, errs: &mut Vec<String>) {
    let refs = count_references(&m.owners, errs);
    check_owner_tables(&m.owners, errs);
    check_buffer_heads(m, errs);
    check_isolated_counts(m, errs);
    for (id, rec) in m.owners.iter() {
        check_folio(m, &refs, id, &rec, errs);
    }
}

/// The reverse map against the page tables, and the references pins and speculative
/// holders take.
fn count_references(o: &Owners, errs: &mut Vec<String>) -> Refs {
    for (id, pid, vpn) in o.rmap_entries().chain(o.self_mappings()) {
        if o.get(id).is_none() {
            errs.push(format!("reverse map names dead folio {id:?}"));
            continue;
        }
        if o.processes[pid as usize].table.load(vpn) != Some(id) {
            errs.push(format!(
                "reverse map ({id:?}, {pid}, {vpn:#x}) has no page table entry"
            ));
        }
    }
    for (pid, p) in o.processes.iter().enumerate() {
        for (vpn, id) in &p.table {
            if !o.rmap_contains(id, pid as u32, vpn) {
                errs.push(format!(
                    "process {pid} maps {id:?} at {vpn:#x} without a reverse-map entry"
                ));
            }
        }
    }
    let mut pins = BTreeMap::new();
    for (id, _) in o.pins.iter().flatten() {
        match o.get(*id) {
            Some(_) => *pins.entry(id.0).or_insert(0) += 1,
            None => errs.push(format!("pin on dead folio {id:?}")),
        }
    }
    let mut spec = BTreeMap::new();
    for (id, _) in &o.speculative {
        match o.get(*id) {
            Some(_) => *spec.entry(id.0).or_insert(0) += 1,
            None => errs.push(format!("speculative reference on dead folio {id:?}")),
        }
    }
    Refs { pins, spec }
}

/// Buffer heads: each on a page-cache folio with private data, in a slab of the
/// buffer_head cache holding at least as many objects as are attached to it.
fn check_buffer_heads(m: &Machine, errs: &mut Vec<String>) {
    let o = &m.owners;
    let mut attached: std::collections::BTreeMap<FolioId, u32> = Default::default();
    for (&(folio, _), &slab) in &o.cache_slab.buffer_heads {
        let ok = o.get(folio).is_some_and(|r| {
            r.kind.in_page_cache() && m.mem.flags(r.pfn).contains(PageFlags::PRIVATE)
        });
        if !ok {
            errs.push(format!(
                "buffer head of {folio:?}: not a page-cache folio with private data"
            ));
        }
        *attached.entry(slab).or_default() += 1;
    }
    for (slab, n) in attached {
        let used = o
            .cache_slab
            .bh_cache
            .and_then(|c| o.caches[c as usize].slabs.get(&slab).copied());
        if used.is_none_or(|u| u < n) {
            errs.push(format!(
                "buffer_head slab {slab:?}: {n} attached, {used:?} in use"
            ));
        }
    }
}

/// Page caches, drivers (with zsmalloc's zspages and partial lists) and slab caches name
/// live folios of their own.
fn check_owner_tables(o: &Owners, errs: &mut Vec<String>) {
    for (fid, f) in o.files.iter().enumerate() {
        for (index, id) in &f.pages {
            match o.get(id) {
                Some(r)
                    if r.kind.in_page_cache()
                        && r.owner == fid as u32
                        && r.index == index
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
}

/// NR_ISOLATED_ANON / NR_ISOLATED_FILE equal the isolated LRU folios' pages.
fn check_isolated_counts(m: &Machine, errs: &mut Vec<String>) {
    let o = &m.owners;
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
    if (iso_anon, iso_file)
        != (
            m.vmstat[VmEvent::NrIsolatedAnon],
            m.vmstat[VmEvent::NrIsolatedFile],
        )
    {
        errs.push(format!(
            "NR_ISOLATED_ANON/FILE are {}/{} but {iso_anon}/{iso_file} pages are isolated",
            m.vmstat[VmEvent::NrIsolatedAnon],
            m.vmstat[VmEvent::NrIsolatedFile]
        ));
    }
}

/// One folio's head page against its record and the references the tables account for.
fn check_folio(m: &Machine, refs: &Refs, id: FolioId, rec: &FolioRec, errs: &mut Vec<String>) {
    let pfn = rec.pfn;
    let f = m.mem.flags(pfn);
    let what = || describe(id, rec);
    if f.intersects(PageFlags::BUDDY | PageFlags::TAIL) || m.mem.owner(pfn) != OwnerRef(id.0) {
        errs.push(format!(
            "{}: head is {f:?} with owner {:?}",
            what(),
            m.mem.owner(pfn)
        ));
        return;
    }
    if (rec.order.0 > 0) != f.contains(PageFlags::HEAD) || f.order() != rec.order.0 {
        errs.push(format!(
            "{}: head flags {f:?} disagree with its order",
            what()
        ));
    }
    let mapped = Refs::maps(&m.owners, id, rec);
    if m.mem.mapcount(pfn) != mapped {
        errs.push(format!(
            "{}: mapcount {} but {mapped} mappings",
            what(),
            m.mem.mapcount(pfn)
        ));
    }
    let npins = refs.pins(id);
    let large = rec.order.0 > 0;
    if large && m.mem.pincount(pfn) != npins {
        errs.push(format!(
            "{}: pincount {} but {npins} pins",
            what(),
            m.mem.pincount(pfn)
        ));
    }
    check_folio_refcount(m, refs, id, rec, errs);
    check_folio_lru(m, id, rec, errs);
}

/// How a folio is named in a message.
fn describe(id: FolioId, rec: &FolioRec) -> String {
    format!(
        "folio {id:?} at {:?} ({:?}, order {})",
        rec.pfn, rec.kind, rec.order.0
    )
}

/// The folio's refcount against what its mappings, cache, private data, owner, isolation,
/// pins and speculative holders account for; a driver page's state against its driver.
fn check_folio_refcount(
    m: &Machine,
    refs: &Refs,
    id: FolioId,
    rec: &FolioRec,
    errs: &mut Vec<String>,
) {
    let o = &m.owners;
    let pfn = rec.pfn;
    let f = m.mem.flags(pfn);
    let what = || describe(id, rec);
    let (mapped, npins, large) = (
        Refs::maps(&m.owners, id, rec),
        refs.pins(id),
        rec.order.0 > 0,
    );
    let cache = if (rec.kind.in_page_cache() && !rec.orphan) || f.contains(PageFlags::SWAPCACHE) {
        rec.order.nr_pages() as u32
    } else {
        0
    };
    let owner_ref = (!rec.kind.is_lru() && !rec.orphan) as u32;
    if rec.kind == FolioKind::Driver {
        let d = &o.drivers[rec.owner as usize];
        if f.contains(PageFlags::MOVABLE_OPS) != d.movable || d.pages.contains(&id) == rec.orphan {
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
        + refs.spec(id);
    if m.mem.refcount(pfn) != want {
        errs.push(format!(
            "{}: refcount {} but owners, mappings, pins and isolation account for {want}",
            what(),
            m.mem.refcount(pfn)
        ));
    }
}

/// LRU membership (one list or isolated), an anonymous folio's orphan state, and the
/// tracked contents.
fn check_folio_lru(m: &Machine, id: FolioId, rec: &FolioRec, errs: &mut Vec<String>) {
    let pfn = rec.pfn;
    let f = m.mem.flags(pfn);
    let what = || describe(id, rec);
    let mapped = Refs::maps(&m.owners, id, rec);
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
