//! Processes and their anonymous memory: faults, fork, copy-on-write, munmap, exit, mlock.
//!
//! A process maps whole folios: a page table entry names the folio by id at the folio's
//! first virtual page. Each mapping holds one reference per PTE (`2^order`), or one for a
//! PMD-mapped THP, and adds as much to the folio's mapcount, as in Linux.

use super::table::{FolioId, FolioKind, MapError, Process};
use crate::gfp::Gfp;
use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::units::{NodeId, Order};

pub use crate::units::HPAGE_PMD_ORDER;
/// Pages one page-table page maps (`PTRS_PER_PTE`).
pub const PTRS_PER_PTE: u64 = 512;

/// References and mapcount one mapping of a folio of `order` adds: one per PTE, one for a
/// PMD-mapped THP.
pub fn map_refs(order: Order) -> u32 {
    if order.0 == HPAGE_PMD_ORDER {
        1
    } else {
        1 << order.0
    }
}

impl Machine {
    /// Starts a process; returns its id.
    pub fn new_process(&mut self) -> u32 {
        self.owners.processes.push(Process {
            alive: true,
            ..Default::default()
        });
        self.owners.processes.len() as u32 - 1
    }

    /// The folio mapped at `vpn` of process `pid`, with its first virtual page.
    pub fn lookup(&self, pid: u32, vpn: u64) -> Option<(u64, FolioId)> {
        let p = &self.owners.processes[pid as usize];
        let (base, id) = p.table.load_folio(vpn)?;
        (vpn < base + self.owners.folio(id).order.nr_pages()).then_some((base, id))
    }

    fn range_free(&self, pid: u32, vpn: u64, nr: u64) -> bool {
        let p = &self.owners.processes[pid as usize];
        p.alive
            && self.lookup(pid, vpn).is_none()
            && !p.table.any_in(vpn, vpn + nr)
            && !self.swap_overlaps(pid, vpn, nr)
    }

    /// Allocates for process `pid`; if the OOM killer took `pid` while it allocated, the
    /// block is given back and the fault fails (the task would die returning to user space).
    pub(crate) fn alloc_for(
        &mut self,
        pid: u32,
        gfp: Gfp,
        order: Order,
    ) -> Result<crate::units::Pfn, MapError> {
        let pfn = self
            .alloc_pages(gfp, order, NodeId(0))
            .ok_or(MapError::NoMemory)?;
        if !self.owners.processes[pid as usize].alive {
            self.free_pages(pfn, order);
            return Err(MapError::NoMemory);
        }
        Ok(pfn)
    }

    /// Allocates the page-table page for the window holding `vpn` if there is none
    /// (`__pte_alloc()`), as unmovable kernel memory.
    pub fn ensure_pgtable(&mut self, pid: u32, vpn: u64) -> Result<(), MapError> {
        let window = vpn / PTRS_PER_PTE;
        if self.owners.processes[pid as usize]
            .pgtables
            .load(window)
            .is_some()
        {
            return Ok(());
        }
        if !self.owners.processes[pid as usize].alive {
            return Err(MapError::Invalid);
        }
        let pfn = self.alloc_for(pid, Gfp::GFP_KERNEL_ACCOUNT, Order(0))?;
        let id = self.own_folio(
            pfn,
            Order(0),
            super::Holder(FolioKind::PageTable, pid, window),
            PageFlags::PGTABLE,
            1,
        );
        self.owners.processes[pid as usize]
            .pgtables
            .insert(window, 0, id);
        Ok(())
    }

    /// Maps folio `id` at `vpn` of `pid`: page table, reverse map, references, mapcount.
    pub(crate) fn map_folio(&mut self, pid: u32, vpn: u64, id: FolioId) {
        let rec = self.owners.folio(id);
        let c = map_refs(rec.order);
        self.owners.processes[pid as usize]
            .table
            .insert(vpn, rec.order.0, id);
        self.owners.rmap_insert(id, pid, vpn);
        self.mem.set_flag(rec.pfn, PageFlags::YOUNG);
        let rc = self.mem.refcount(rec.pfn);
        self.mem.set_refcount(rec.pfn, rc + c);
        let mc = self.mem.mapcount(rec.pfn);
        self.mem.set_mapcount(rec.pfn, mc + c);
    }

    /// Unmaps the folio whose first page is at `base` in `pid` (`zap_pte_range()` for it).
    pub(crate) fn unmap_folio(&mut self, pid: u32, base: u64) {
        let id = self.owners.processes[pid as usize]
            .table
            .remove(base)
            .expect("mapped");
        assert!(
            self.owners.rmap_remove(id, pid, base),
            "reverse map out of step"
        );
        let rec = self.owners.folio(id);
        let c = map_refs(rec.order);
        let mc = self.mem.mapcount(rec.pfn);
        self.mem.set_mapcount(rec.pfn, mc - c);
        if rec.kind == FolioKind::Anon
            && mc == c
            && !self.mem.flags(rec.pfn).contains(PageFlags::SWAPCACHE)
        {
            // The last mapping of anonymous memory: nothing owns it any more (a folio in
            // the swap cache is still the swap entry's).
            self.owners.set_orphan(id, true);
        }
        self.folio_put_refs(id, c);
    }

    /// A page fault on anonymous memory (`do_anonymous_page()` / `do_huge_pmd_anonymous_page()`):
    /// allocates a folio of `order` for `vpn` (aligned to it) and maps it.
    pub fn fault_anon(&mut self, pid: u32, vpn: u64, order: Order) -> Result<FolioId, MapError> {
        if self.owners.processes[pid as usize].alive {
            if let Some((base, _)) = self.swap_lookup(pid, vpn) {
                return self.swap_in(pid, base);
            }
        }
        let gfp = match order.0 {
            0 => Gfp::GFP_HIGHUSER_MOVABLE,
            HPAGE_PMD_ORDER => Gfp::GFP_TRANSHUGE_LIGHT,
            _ => Gfp::GFP_HIGHUSER_MOVABLE | Gfp::COMP | Gfp::NOWARN,
        };
        self.fault_anon_gfp(pid, vpn, order, gfp)
    }

    /// [`Machine::fault_anon`] with the GFP mask the fault uses (a THP fault's mask
    /// depends on `transparent_hugepage/defrag`).
    pub fn fault_anon_gfp(
        &mut self,
        pid: u32,
        vpn: u64,
        order: Order,
        gfp: Gfp,
    ) -> Result<FolioId, MapError> {
        if !vpn.is_multiple_of(order.nr_pages()) || !self.range_free(pid, vpn, order.nr_pages()) {
            return Err(MapError::Invalid);
        }
        self.ensure_pgtable(pid, vpn)?;
        let pfn = self.alloc_for(pid, gfp, order)?;
        let id = self.own_folio(
            pfn,
            order,
            super::Holder(FolioKind::Anon, pid, vpn),
            PageFlags::ANON | PageFlags::SWAPBACKED | PageFlags::LRU,
            0,
        );
        self.map_folio(pid, vpn, id);
        Ok(id)
    }

    /// Unmaps every folio whose first page lies in `[vpn, vpn + nr)` (`munmap()`,
    /// `MADV_DONTNEED`).
    ///
    /// DEVIATION(linux): whole folios only; Linux splits a PMD and unmaps part of a large
    /// folio, leaving it partially mapped on the deferred-split queue.
    pub fn munmap(&mut self, pid: u32, vpn: u64, nr: u64) {
        let bases: Vec<u64> = self.owners.processes[pid as usize]
            .table
            .range(vpn, vpn + nr)
            .map(|(b, _)| b)
            .collect();
        for b in bases {
            self.unmap_folio(pid, b);
        }
        self.swap_free_range(pid, vpn, nr);
    }

    /// Mirrors `mm/memory.c: free_pgtables()` → `free_pgd_range()` after an `munmap()`:
    /// frees the page tables of the windows `[vpn, vpn + nr)` touches that map nothing
    /// any more, no folio and no swap entry. The page tables of a window still in use
    /// stay.
    ///
    /// DEVIATION(linux): [`Machine::munmap`] keeps empty page tables, as the scenarios were
    /// measured with; a workload that unmaps whole mappings calls this after it.
    pub fn free_pgtables(&mut self, pid: u32, vpn: u64, nr: u64) {
        let (first, last) = (vpn / PTRS_PER_PTE, (vpn + nr.max(1) - 1) / PTRS_PER_PTE);
        for window in first..=last {
            let p = &self.owners.processes[pid as usize];
            let Some(id) = p.pgtables.load(window) else {
                continue;
            };
            let span = window * PTRS_PER_PTE..(window + 1) * PTRS_PER_PTE;
            let swapped = self
                .reclaim
                .swap
                .range((pid, span.start)..(pid, span.end))
                .next()
                .is_some();
            if p.table.any_in(span.start, span.end) || swapped {
                continue;
            }
            self.owners.processes[pid as usize].pgtables.remove(window);
            self.release_owner_ref(id);
        }
    }

    /// `madvise(MADV_DONTNEED)`: drops the anonymous folios of `[vpn, vpn + nr)` — for the
    /// model the same as [`Machine::munmap`] (the range stays a valid mapping in Linux, but
    /// holds no pages until the next fault).
    pub fn madvise_dontneed(&mut self, pid: u32, vpn: u64, nr: u64) {
        self.munmap(pid, vpn, nr);
    }

    /// `fork()`: the child maps every folio the parent maps (anonymous memory becomes
    /// shared, copy-on-write) and gets its own page tables.
    /// A maybe-DMA-pinned anonymous folio is not shared: the child gets its own copy at
    /// once (`copy_present_page()`, as `folio_try_dup_anon_rmap_*()` refuses to share it).
    pub fn fork(&mut self, pid: u32) -> Result<u32, MapError> {
        let child = self.new_process();
        let entries: Vec<(u64, FolioId)> =
            self.owners.processes[pid as usize].table.iter().collect();
        for (base, id) in entries {
            if !self.owners.processes[pid as usize].alive {
                // The OOM killer took the parent meanwhile.
                self.exit_process(child);
                return Err(MapError::NoMemory);
            }
            if let Err(e) = self.ensure_pgtable(child, base) {
                self.exit_process(child);
                return Err(e);
            }
            let rec = self.owners.folio(id);
            if rec.kind == FolioKind::Anon && self.mem.maybe_dma_pinned(rec.pfn) {
                match self.copy_anon_folio(child, base, id) {
                    Ok(copy) => self.map_folio(child, base, copy),
                    Err(e) => {
                        self.exit_process(child);
                        return Err(e);
                    }
                }
                continue;
            }
            self.map_folio(child, base, id);
        }
        Ok(child)
    }

    /// A copy of anonymous folio `src` for `pid` at `base`: same order, same data, not yet
    /// mapped (`folio_prealloc()` + `copy_mc_user_highpage()`).
    fn copy_anon_folio(&mut self, pid: u32, base: u64, src: FolioId) -> Result<FolioId, MapError> {
        let rec = self.owners.folio(src);
        let gfp = if rec.order.0 == 0 {
            Gfp::GFP_HIGHUSER_MOVABLE
        } else {
            Gfp::GFP_HIGHUSER_MOVABLE | Gfp::COMP
        };
        let pfn = self.alloc_for(pid, gfp, rec.order)?;
        let flags = PageFlags::ANON | PageFlags::SWAPBACKED | PageFlags::LRU;
        let new = self.own_folio(
            pfn,
            rec.order,
            super::Holder(FolioKind::Anon, pid, base),
            flags,
            0,
        );
        self.contents.copy(rec.pfn, pfn, rec.order.nr_pages());
        self.owners.update(new, |r| {
            r.stamp = rec.stamp;
            r.stamp_offset = rec.stamp_offset;
        });
        Ok(new)
    }

    /// A write to a shared anonymous folio (`do_wp_page()` → `wp_page_copy()`): the writer
    /// gets its own copy. Returns the new folio, or `None` if the folio was not shared.
    ///
    /// DEVIATION(linux): the copy has the folio's order; Linux copies a single page.
    pub fn cow_write(&mut self, pid: u32, vpn: u64) -> Result<Option<FolioId>, MapError> {
        let Some((base, id)) = self.lookup(pid, vpn) else {
            return Err(MapError::Invalid);
        };
        let rec = self.owners.folio(id);
        if rec.kind != FolioKind::Anon || self.mem.mapcount(rec.pfn) <= map_refs(rec.order) {
            return Ok(None);
        }
        let new = self.copy_anon_folio(pid, base, id)?;
        self.unmap_folio(pid, base);
        self.map_folio(pid, base, new);
        Ok(Some(new))
    }

    /// Process exit: unmaps everything and frees the page tables.
    pub fn exit_process(&mut self, pid: u32) {
        let bases: Vec<u64> = self.owners.processes[pid as usize].table.keys().collect();
        for b in bases {
            self.unmap_folio(pid, b);
        }
        self.swap_free_range(pid, 0, u64::MAX);
        let tables: Vec<FolioId> =
            std::mem::take(&mut self.owners.processes[pid as usize].pgtables)
                .values()
                .collect();
        for t in tables {
            self.release_owner_ref(t);
        }
        self.owners.processes[pid as usize].alive = false;
    }

    /// `mlock()` / `munlock()` of the folios mapped in `[vpn, vpn + nr)`: mlocked folios are
    /// unevictable (they can still migrate: mlock does not pin).
    pub fn mlock(&mut self, pid: u32, vpn: u64, nr: u64, on: bool) {
        let ids: Vec<FolioId> = self.owners.processes[pid as usize]
            .table
            .range(vpn, vpn + nr)
            .map(|(_, i)| i)
            .collect();
        for id in ids {
            let f = self.mem.flags(self.owners.folio(id).pfn);
            let new = if on {
                f.with(PageFlags::MLOCKED | PageFlags::UNEVICTABLE)
                    .without(PageFlags::ACTIVE)
            } else {
                f.without(PageFlags::MLOCKED | PageFlags::UNEVICTABLE)
            };
            self.folio_set_lru_flags(id, new);
        }
    }
}
