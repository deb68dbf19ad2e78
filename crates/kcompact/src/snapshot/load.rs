//! Building a model machine from a snapshot: the zones of `/proc/zoneinfo`, every page's
//! state from `/proc/kpageflags`, placed pfn by pfn with [`Machine::place_at`].
//!
//! What the files cannot show is assumed (docs/linux-map.md, "Snapshot loading"):
//! - refcounts and pins: each folio holds its owner's references only (no pins);
//!   kpagecount is the map count, and page cache is loaded unmapped;
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
pub fn load(
    zones: &[ZoneInfoRecord],
    flags: &[u64],
    pfn_start: u64,
    config: VmConfig,
) -> Result<(Machine, LoadReport), SnapshotError> {
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
