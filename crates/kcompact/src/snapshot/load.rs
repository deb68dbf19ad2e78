//! Building a model machine from a snapshot: the zones of `/proc/zoneinfo`, every page's
//! state from `/proc/kpageflags`, placed pfn by pfn with [`Machine::place_at`].
//!
//! What the files cannot show is assumed (docs/linux-map.md, "Snapshot loading"):
//! - refcounts and pins: each folio holds its owner's references only (no pins);
//!   kpagecount is the map count: page cache with KPF_MMAP is mapped that many times (at
//!   most [`MAX_FILE_MAPS`]) into one process, without page-table pages of its own (the
//!   snapshot's page-table pages, placed where they are, stand for them); KPF_ACTIVE and KPF_REFERENCED
//!   carry over to the LRU flags, the PTE accessed bits (invisible) start clear;
//! - pages with no flag at all are outside the buddy allocator (reserved): on this
//!   kind of machine they are mostly memory `deferred_init` has not initialised yet, the
//!   rest per-cpu list pages and kernel pages that set no flag; whole pageblocks of them
//!   at a zone's end are left out of its span (the kernel's compaction stops before
//!   them too);
//! - anonymous folios belong to one process, at virtual page = pfn; its page tables sit
//!   on the snapshot's page-table pages;
//! - pageblocks holding page-table or other kernel pages are UNMOVABLE, those holding
//!   slab pages only RECLAIMABLE (kpageflags cannot tell reclaimable slab from the rest;
//!   on file-heavy machines dentries and inodes dominate), the rest MOVABLE.

use super::kpageflags::{classify, has, kpf, PageClass};
use super::text::ZoneInfoRecord;
use super::SnapshotError;
use crate::event::VmEvent;
use crate::gfp::Gfp;
use crate::layout::{Layout, PfnRange, ZoneSpec, ZoneType};
use crate::memmap::MigrateType;
use crate::units::{NodeId, Order, Pfn, MAX_PAGE_ORDER};
use crate::{Machine, VmConfig};

/// What loading did, for the report and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Pages placed per class ([`PageClass::ALL`] order).
    pub placed: [u64; PageClass::ALL.len()],
    /// Mappings of page cache made from kpagecount.
    pub file_mappings: u64,
    /// Folios that could not be placed (their range was not free in the model).
    pub unplaced: u64,
    /// Compound runs that are no power of two of at most MAX_PAGE_ORDER (placed page by
    /// page).
    pub odd_compounds: u64,
    /// Page tables that found no page-table page of the snapshot left and took a free
    /// page (the snapshot had fewer page-table pages than the model's process needs).
    pub pgtables_from_free: u64,
    /// Pageblocks made UNMOVABLE (page-table or other kernel pages).
    pub unmovable_blocks: u64,
    /// Pageblocks made RECLAIMABLE (slab pages only).
    pub reclaimable_blocks: u64,
}

fn zone_type(file: &str, z: &ZoneInfoRecord) -> Result<ZoneType, SnapshotError> {
    ZoneType::from_name(&z.name).ok_or_else(|| SnapshotError::File {
        file: file.to_string(),
        msg: format!("unknown zone {:?}", z.name),
    })
}

/// Runs of pfns in `[start, end)` for which `pred` holds.
fn runs(start: u64, end: u64, mut pred: impl FnMut(u64) -> bool) -> Vec<PfnRange> {
    let mut out = Vec::new();
    let mut p = start;
    while p < end {
        if !pred(p) {
            p += 1;
            continue;
        }
        let s = p;
        while p < end && pred(p) {
            p += 1;
        }
        out.push(PfnRange::new(s, p));
    }
    out
}

/// Builds a machine from a snapshot's zoneinfo and kpageflags (`flags[i]` is pfn
/// `pfn_start + i`).
/// The most mappings a loaded page-cache folio gets from its kpagecount.
pub const MAX_FILE_MAPS: u64 = 8;
/// Where the loader maps page cache in its process: mapping `k` of the folio at pfn `p`
/// sits at virtual page `(k + 1) * FILE_MAP_BASE + p`, far above the anonymous memory
/// (virtual page = pfn).
const FILE_MAP_BASE: u64 = 1 << 36;

/// [`load_with_counts`] without `/proc/kpagecount`: page cache is loaded unmapped.
pub fn load(
    zones: &[ZoneInfoRecord],
    flags: &[u64],
    pfn_start: u64,
    config: VmConfig,
) -> Result<(Machine, LoadReport), SnapshotError> {
    load_with_counts(zones, flags, None, pfn_start, config)
}

/// Builds a machine from a snapshot's zones, `/proc/kpageflags` and, when given,
/// `/proc/kpagecount` (the same pfn range); see the module documentation.
pub fn load_with_counts(
    zones: &[ZoneInfoRecord],
    flags: &[u64],
    counts: Option<&[u64]>,
    pfn_start: u64,
    config: VmConfig,
) -> Result<(Machine, LoadReport), SnapshotError> {
    if let Some(c) = counts {
        if c.len() != flags.len() {
            return Err(SnapshotError::File {
                file: "kpagecount".into(),
                msg: format!("{} pfns, but kpageflags has {}", c.len(), flags.len()),
            });
        }
    }
    let mapcount = |p: u64| -> u64 {
        counts
            .and_then(|c| c.get(p.wrapping_sub(pfn_start) as usize).copied())
            .unwrap_or(0)
    };
    let word = |p: u64| -> u64 {
        if p >= pfn_start && p - pfn_start < flags.len() as u64 {
            flags[(p - pfn_start) as usize]
        } else {
            1 << kpf::NOPAGE
        }
    };
    let mut specs = Vec::new();
    let Some(flags_end) = pfn_start.checked_add(flags.len() as u64) else {
        return Err(SnapshotError::File {
            file: "meta.txt".into(),
            msg: format!("pfn_start {pfn_start} leaves no room for the page arrays"),
        });
    };
    for z in zones.iter().filter(|z| z.spanned > 0 && z.present > 0) {
        let (start, end) = (z.start_pfn, z.start_pfn.saturating_add(z.spanned));
        if start < pfn_start || end > flags_end {
            return Err(SnapshotError::File {
                file: "zoneinfo".into(),
                msg: format!(
                    "zone {} spans pfns {start}..{end}, outside kpageflags' {pfn_start}..{flags_end}",
                    z.name
                ),
            });
        }
        // Memory `deferred_init=lazy` has not initialised yet reads as pages with no flag
        // at the zone's end; this kernel's compaction runs only up to the initialised end
        // (its trace shows Normal's zone_end = start + managed while zoneinfo's spanned is
        // far larger), so the model's zone ends there too, at a pageblock boundary.
        let mut end = end;
        let mut last = end;
        while last > start && word(last - 1) == 0 {
            last -= 1;
        }
        let init_end = last.div_ceil(1 << 9) << 9;
        // A trailing run no longer than the zone's holes (spanned - present) is a hole
        // (DMA32's end below 4 GiB), not uninitialised memory.
        let hole_end = init_end < end && end - init_end <= z.spanned.saturating_sub(z.present);
        if init_end < end && end - init_end >= 1 << 9 && !hole_end {
            end = init_end.max(start + 1);
        }
        let present_end = if hole_end { init_end } else { end };
        specs.push(ZoneSpec {
            node: NodeId(z.node as u8),
            zone_type: zone_type("zoneinfo", z)?,
            start_pfn: Pfn(start),
            spanned: end - start,
            present: runs(start, present_end, |p| !has(word(p), kpf::NOPAGE)),
            reserved: runs(start, present_end, |p| {
                let w = word(p);
                !has(w, kpf::NOPAGE)
                    && matches!(
                        classify(w, w),
                        PageClass::Reserved | PageClass::NoFlags | PageClass::NoPage
                    )
            }),
        });
    }
    let layout = Layout::from_zones(specs, Order(9)).map_err(|e| SnapshotError::File {
        file: "zoneinfo".into(),
        msg: format!("zones do not form a layout: {e}"),
    })?;
    let mut m = Machine::boot(&layout, config).map_err(|e| SnapshotError::File {
        file: "zoneinfo".into(),
        msg: format!("cannot boot the zones: {e}"),
    })?;
    let mut report = LoadReport::default();
    let class_idx = |c: PageClass| PageClass::ALL.iter().position(|x| *x == c).expect("class");
    let pid = m.new_process();
    let file_plain = m.new_file(false, true, false);
    let file_buffers = m.new_file(false, true, true);
    let shmem = m.new_file(true, true, false);
    let mut table_slots: Vec<u64> = Vec::new();
    let mut anon: Vec<(u64, Order)> = Vec::new();
    // Page cache to map: (file, pfn = index, mappings).
    let mut mapped: Vec<(u32, u64, u64)> = Vec::new();
    // LRU folios whose list position the flags give: (pfn, active, referenced).
    let mut lru_state: Vec<(u64, bool, bool)> = Vec::new();
    // Pageblocks holding kernel pages: (block, holds page-table or other kernel pages).
    let mut kernel_blocks: Vec<(u64, bool)> = Vec::new();

    for z in layout.zones.iter().filter(|z| z.spanned > 0) {
        let (start, end) = (z.start_pfn.0, z.start_pfn.0 + z.spanned);
        let mut p = start;
        while p < end {
            let w = word(p);
            let c = classify(w, w);
            if matches!(
                c,
                PageClass::NoPage | PageClass::Reserved | PageClass::NoFlags | PageClass::Free
            ) || has(w, kpf::COMPOUND_TAIL)
            {
                p += 1;
                continue;
            }
            // The folio: a compound head and its tails.
            let mut n = 1u64;
            if has(w, kpf::COMPOUND_HEAD) {
                while p + n < end && has(word(p + n), kpf::COMPOUND_TAIL) {
                    n += 1;
                }
            }
            let mut order = Order(n.trailing_zeros() as u8);
            let mut step = n;
            if !n.is_power_of_two() || order.0 > MAX_PAGE_ORDER || !p.is_multiple_of(n) {
                report.odd_compounds += 1;
                order = Order(0);
                step = 1;
            }
            if matches!(
                c,
                PageClass::Slab | PageClass::PageTable | PageClass::Kernel
            ) {
                let hard = c != PageClass::Slab;
                match kernel_blocks.last_mut() {
                    Some((b, h)) if *b == p >> 9 => *h |= hard,
                    _ => kernel_blocks.push((p >> 9, hard)),
                }
            }
            let placed = match c {
                PageClass::Anon => {
                    anon.push((p, order));
                    lru_state.push((p, has(w, kpf::ACTIVE), has(w, kpf::REFERENCED)));
                    p += step;
                    continue;
                }
                PageClass::PageTable if order.0 == 0 => {
                    table_slots.push(p);
                    p += 1;
                    continue;
                }

                PageClass::File | PageClass::Shmem => {
                    let fid = if c == PageClass::Shmem {
                        shmem
                    } else if has(w, kpf::PRIVATE) {
                        file_buffers
                    } else {
                        file_plain
                    };
                    let dirty = has(w, kpf::DIRTY) || has(w, kpf::WRITEBACK);
                    m.place_at = Some(Pfn(p));
                    match m.file_add(fid, p, order, dirty) {
                        Ok(id) => {
                            if has(w, kpf::WRITEBACK) {
                                m.folio_start_writeback(id);
                            }
                            if has(w, kpf::MMAP) && counts.is_some() {
                                mapped.push((fid, p, mapcount(p).clamp(1, MAX_FILE_MAPS)));
                            }
                            lru_state.push((p, has(w, kpf::ACTIVE), has(w, kpf::REFERENCED)));
                            true
                        }
                        Err(_) => false,
                    }
                }
                _ => {
                    m.place_at = Some(Pfn(p));
                    m.alloc_kernel_gfp(Gfp::GFP_KERNEL, order, class_idx(c) as u32)
                        .is_some()
                }
            };
            m.place_at = None;
            if placed {
                report.placed[class_idx(c)] += step;
            } else {
                report.unplaced += 1;
            }
            p += step;
        }
    }
    // Anonymous folios, each page table first, on a page-table page of the snapshot.
    table_slots.reverse();
    for (p, order) in anon {
        let window = p / crate::owners::process::PTRS_PER_PTE;
        if !m.owners.processes[pid as usize]
            .pgtables
            .contains_key(&window)
        {
            m.place_at = table_slots.pop().map(Pfn);
            if m.place_at.is_none() {
                report.pgtables_from_free += 1;
            }
            let ok = m.ensure_pgtable(pid, p).is_ok();
            m.place_at = None;
            if ok {
                report.placed[class_idx(PageClass::PageTable)] += 1;
            }
        }
        m.place_at = Some(Pfn(p));
        let ok = m.fault_anon(pid, p, order).is_ok();
        m.place_at = None;
        if ok {
            report.placed[class_idx(PageClass::Anon)] += order.nr_pages();
        } else {
            report.unplaced += 1;
        }
    }
    // Mapped page cache. The snapshot's page-table pages (placed as they are) stand for
    // these mappings' tables: no page is taken for them, so the free lists stay the
    // snapshot's.
    for (fid, p, maps) in mapped {
        let Some((_, id)) = m.file_lookup(fid, p) else {
            continue;
        };
        for k in 0..maps {
            m.map_folio(pid, (k + 1) * FILE_MAP_BASE + p, id);
            report.file_mappings += 1;
        }
    }
    // The LRU lists as the flags say: active or not, PG_referenced; no PTE accessed bit.
    for (p, active, referenced) in lru_state {
        let Some(id) = m.folio_of(Pfn(p)) else {
            continue;
        };
        let f = m.mem.flags(Pfn(p));
        let mut new = f.without(crate::memmap::PageFlags::YOUNG);
        if active && !f.contains(crate::memmap::PageFlags::UNEVICTABLE) {
            new = new.with(crate::memmap::PageFlags::ACTIVE);
        }
        if referenced {
            new = new.with(crate::memmap::PageFlags::REFERENCED);
        }
        m.folio_set_lru_flags(id, new);
    }
    for p in table_slots {
        m.place_at = Some(Pfn(p));
        if m.alloc_kernel_gfp(
            Gfp::GFP_KERNEL,
            Order(0),
            class_idx(PageClass::PageTable) as u32,
        )
        .is_some()
        {
            report.placed[class_idx(PageClass::PageTable)] += 1;
        } else {
            report.unplaced += 1;
        }
        m.place_at = None;
    }
    // Pageblock types.
    for (b, hard) in kernel_blocks {
        let start = Pfn(b << 9);
        let Some(zi) = m.page_zone(start) else {
            continue;
        };
        let mt = if hard {
            MigrateType::Unmovable
        } else {
            MigrateType::Reclaimable
        };
        if m.migratetype(start) == MigrateType::Movable
            && m.move_freepages_block(zi, start, MigrateType::Movable, mt)
                .is_some()
        {
            if hard {
                report.unmovable_blocks += 1;
            } else {
                report.reclaimable_blocks += 1;
            }
        }
    }
    Ok((m, report))
}

/// What [`reconcile_pageblock_types`] did in one zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneReconcile {
    /// Node and zone name.
    pub zone: (u32, String),
    /// Pageblocks UNMOVABLE / MOVABLE / RECLAIMABLE inferred from the pages.
    pub inferred: [u64; 3],
    /// ... after reconciling.
    pub reconciled: [u64; 3],
    /// ... as pagetypeinfo counts them.
    pub kernel: [u64; 3],
    /// Free blocks on the UNMOVABLE and RECLAIMABLE lists that differ from pagetypeinfo's,
    /// summed over orders (L1 distance), before and after.
    pub free_list_distance: (u64, u64),
}

const RECONCILED: [MigrateType; 3] = [
    MigrateType::Unmovable,
    MigrateType::Movable,
    MigrateType::Reclaimable,
];

/// Reconciles the pageblock types the loader inferred with the snapshot's
/// `/proc/pagetypeinfo`: in each zone, as long as the kernel counts more UNMOVABLE
/// (RECLAIMABLE) pageblocks than the pages showed, the block whose free chunks best fill
/// what the kernel's UNMOVABLE (RECLAIMABLE) free lists hold and the model's lack is
/// converted — first from the blocks guessed RECLAIMABLE (slab only) when the kernel has
/// fewer of those, then from MOVABLE blocks, fewest LRU pages first on a tie; where the
/// pages showed more UNMOVABLE or RECLAIMABLE blocks than the kernel counts and fewer
/// MOVABLE, the extra ones become MOVABLE (their kernel pages were stolen into a movable
/// block by a fallback), chosen the same way against the MOVABLE lists.
///
/// kpageflags cannot show a pageblock's type: a block the kernel claimed for unmovable
/// allocations keeps its type after they are freed, and reclaimable slab looks like any
/// slab. The free lists of each type, per order, are the evidence pagetypeinfo gives.
pub fn reconcile_pageblock_types(
    m: &mut Machine,
    pti: &[super::text::PagetypeInfoRecord],
) -> Vec<ZoneReconcile> {
    let mut out = Vec::new();
    for rec in pti {
        let Some(zi) = (0..m.zones.len())
            .map(|i| crate::units::ZoneIdx(i as u8))
            .find(|zi| {
                let z = m.zone(*zi);
                z.node.0 as u32 == rec.node && z.name() == rec.name && z.is_populated()
            })
        else {
            continue;
        };
        let blocks_of = |name: &str| {
            rec.blocks
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, c)| *c)
        };
        let kernel = [
            blocks_of("Unmovable"),
            blocks_of("Movable"),
            blocks_of("Reclaimable"),
        ];
        let hist_of = |name: &str| {
            rec.free
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, h)| *h)
                .unwrap_or([Some(0); 11])
        };
        let targets = [
            hist_of("Unmovable"),
            hist_of("Movable"),
            hist_of("Reclaimable"),
        ];
        let before = type_counts(m, zi);
        let d0 = free_list_distance(m, zi, &targets);
        // In order: slab-only blocks guessed RECLAIMABLE beyond the kernel's count become
        // UNMOVABLE; MOVABLE blocks become the UNMOVABLE and RECLAIMABLE ones the kernel
        // counts beyond the pages' evidence; blocks with kernel pages beyond the kernel's
        // counts become MOVABLE (a fallback stole them into a movable block). Each step
        // moves as many blocks as the target type lacks and, but for the MOVABLE pool,
        // the source type has to spare.
        let at = |t: MigrateType| RECONCILED.iter().position(|x| *x == t).expect("type");
        for (from, to) in [
            (MigrateType::Reclaimable, MigrateType::Unmovable),
            (MigrateType::Movable, MigrateType::Unmovable),
            (MigrateType::Movable, MigrateType::Reclaimable),
            (MigrateType::Reclaimable, MigrateType::Movable),
            (MigrateType::Unmovable, MigrateType::Movable),
        ] {
            let cur = type_counts(m, zi);
            let (f, t) = (at(from), at(to));
            let spare = if from == MigrateType::Movable {
                u64::MAX
            } else {
                cur[f].saturating_sub(kernel[f])
            };
            let n = kernel[t].saturating_sub(cur[t]).min(spare);
            convert_blocks(m, zi, from, to, n, &targets[t]);
        }
        out.push(ZoneReconcile {
            zone: (rec.node, rec.name.clone()),
            inferred: before,
            reconciled: type_counts(m, zi),
            kernel,
            free_list_distance: (d0, free_list_distance(m, zi, &targets)),
        });
    }
    out
}

/// Pageblocks of the zone per reconciled type.
fn type_counts(m: &Machine, zi: crate::units::ZoneIdx) -> [u64; 3] {
    let mut c = [0u64; 3];
    for b in zone_blocks(m, zi) {
        if let Some(i) = RECONCILED.iter().position(|t| *t == m.migratetype(b)) {
            c[i] += 1;
        }
    }
    c
}

fn zone_blocks(m: &Machine, zi: crate::units::ZoneIdx) -> Vec<Pfn> {
    let pb = m.pageblocks.nr_pages();
    let z = m.zone(zi);
    let mut v = Vec::new();
    let mut b = z.zone_start_pfn.0 & !(pb - 1);
    while b < z.end_pfn().0 {
        if m.page_zone(Pfn(b)) == Some(zi) || m.page_zone(Pfn(b + pb - 1)) == Some(zi) {
            v.push(Pfn(b));
        }
        b += pb;
    }
    v
}

/// Free blocks per order on the list of `mt`.
fn list_hist(m: &Machine, zi: crate::units::ZoneIdx, mt: MigrateType) -> [u64; 11] {
    let z = m.zone(zi);
    std::array::from_fn(|o| z.free_area[o].free_list[mt.idx()].iter(&m.mem).count() as u64)
}

/// L1 distance between the model's UNMOVABLE and RECLAIMABLE free lists and the kernel's
/// (orders the kernel did not count are left out).
fn free_list_distance(
    m: &Machine,
    zi: crate::units::ZoneIdx,
    targets: &[[Option<u64>; 11]; 3],
) -> u64 {
    [0usize, 2]
        .iter()
        .map(|&t| {
            let h = list_hist(m, zi, RECONCILED[t]);
            (0..11)
                .filter_map(|o| targets[t][o].map(|k| k.abs_diff(h[o])))
                .sum::<u64>()
        })
        .sum()
}

/// Converts `n` blocks of type `from` to `to`, each time the one whose free chunks best
/// fill the `to` list's shortfall against `target` (pages of chunks the list lacks, less
/// pages of chunks it would then have too many of).
fn convert_blocks(
    m: &mut Machine,
    zi: crate::units::ZoneIdx,
    from: MigrateType,
    to: MigrateType,
    n: u64,
    target: &[Option<u64>; 11],
) {
    if n == 0 {
        return;
    }
    let pb = m.pageblock_order();
    // Per candidate block: free chunks per order below pageblock order, and LRU pages.
    // A block inside a free chunk larger than a pageblock is left alone: the chunk's
    // type is that of all its blocks.
    let mut cands: Vec<(Pfn, [u64; 11], u64)> = zone_blocks(m, zi)
        .into_iter()
        .filter(|b| m.migratetype(*b) == from && m.find_large_buddy(*b).is_none())
        .map(|b| {
            let mut chunks = [0u64; 11];
            let mut lru = 0;
            let mut p = b.0;
            while p < b.0 + pb.nr_pages() {
                let f = m.mem.flags(Pfn(p));
                if m.mem.is_buddy(Pfn(p)) {
                    let o = m.mem.buddy_order(Pfn(p)).0;
                    chunks[o as usize] += 1;
                    p += 1 << o;
                    continue;
                }
                if f.contains(crate::memmap::PageFlags::LRU) {
                    lru += 1;
                }
                p += 1;
            }
            (b, chunks, lru)
        })
        .collect();
    let mut have = list_hist(m, zi, to);
    for _ in 0..n {
        let deficit: [u64; 11] =
            std::array::from_fn(|o| target[o].map_or(0, |t| t.saturating_sub(have[o])));
        let best = cands
            .iter()
            .enumerate()
            .filter(|(_, c)| c.1[9] + c.1[10] == 0)
            .max_by_key(|(_, c)| {
                // Chunks the list lacks count for, chunks beyond its count against (pages).
                let fit: i64 = (0..11)
                    .map(|o| {
                        let hit = c.1[o].min(deficit[o]) as i64;
                        let over = if target[o].is_some() {
                            c.1[o] as i64 - hit
                        } else {
                            0
                        };
                        (hit - over) << o
                    })
                    .sum();
                (fit, std::cmp::Reverse(c.2), std::cmp::Reverse(c.0))
            })
            .map(|(i, _)| i);
        let Some(i) = best else { break };
        let (b, chunks, _) = cands.swap_remove(i);
        if m.move_freepages_block(zi, b, from, to).is_some() {
            for o in 0..11 {
                have[o] += chunks[o];
            }
        }
    }
}

/// Frees the capturing process's own anonymous pages, listed by `kcompact capture` in
/// `capture_pfns.txt`: its read buffers and encoders were in use while the page arrays
/// were read, so the snapshot shows them as anonymous memory, but the process frees them
/// as soon as the capture is done — before any action the snapshot is used to predict.
/// Only pfns the model holds as anonymous folios are freed (a pfn that changed hands
/// while the arrays were read is left alone). Returns the pages freed.
pub fn release_capture_pages(m: &mut Machine, pfns: &[u64]) -> u64 {
    use crate::owners::table::FolioKind;
    let before = m.vmstat[VmEvent::Pgfree];
    for &p in pfns {
        let Some(id) = m.folio_of(Pfn(p)) else {
            continue;
        };
        let rec = *m.owners.folio(id);
        if rec.kind == FolioKind::Anon {
            m.munmap(rec.owner, rec.index, rec.order.nr_pages());
        }
    }
    m.vmstat[VmEvent::Pgfree] - before
}
