//! Swap for anonymous memory: swap slots, the swap cache, swap entries left in a
//! process's page table, and swap-in on a fault.
//!
//! Mirrors `add_to_swap()` (slots for the folio, the swap cache's references),
//! `swap_cache_del_folio()` when reclaim frees it, and `do_swap_page()`: a fault on a swap
//! entry maps the folio again if it is still in the swap cache, or reads it back into a
//! new folio with the same contents.
//!
//! DEVIATION(linux): a swapped-out folio comes back whole at its order (Linux reads
//! order-0 pages back except for mTHP swap-in from zram/zswap), and there is no swap
//! readahead.

use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::owners::process::MapError;
use crate::owners::{FolioId, FolioKind, FolioRec};
use crate::units::{NodeId, Order};

/// What a swap entry in a process's page table stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapEntry {
    /// The folio's order.
    pub order: Order,
    /// Its content stamp.
    pub stamp: u32,
    /// The offset of its first page in the stamp's sequence.
    pub stamp_offset: u32,
    /// The folio while it is still in the swap cache.
    pub cached: Option<FolioId>,
}

impl Machine {
    /// Free swap slots (pages).
    pub fn swap_free_pages(&self) -> u64 {
        self.config
            .swap_pages
            .saturating_sub(self.reclaim.swap_used)
    }

    /// Mirrors `add_to_swap()`: slots for every page of the folio and the swap cache's
    /// references; the folio is dirty until written out. False without room.
    pub(crate) fn add_to_swap(&mut self, id: FolioId) -> bool {
        let rec = *self.owners.folio(id);
        let nr = rec.order.nr_pages();
        if self.swap_free_pages() < nr {
            return false;
        }
        self.reclaim.swap_used += nr;
        self.mem
            .set_flag(rec.pfn, PageFlags::SWAPCACHE | PageFlags::DIRTY);
        self.mem
            .set_refcount(rec.pfn, self.mem.refcount(rec.pfn) + nr as u32);
        true
    }

    /// The swap cache lets go of a folio reclaim frees: its entry no longer names it.
    pub(crate) fn swap_cache_forget(&mut self, id: FolioId) {
        let rec = *self.owners.folio(id);
        if let Some(e) = self.reclaim.swap.get_mut(&(rec.owner, rec.index)) {
            if e.cached == Some(id) {
                e.cached = None;
            }
        }
    }

    /// The swap entry at `vpn` of `pid`, with its first virtual page, if `vpn` lies in one.
    pub fn swap_lookup(&self, pid: u32, vpn: u64) -> Option<(u64, SwapEntry)> {
        let (&(p, base), e) = self.reclaim.swap.range((pid, 0)..=(pid, vpn)).next_back()?;
        (p == pid && vpn < base + e.order.nr_pages()).then_some((base, *e))
    }

    /// True if a swap entry of `pid` overlaps `[vpn, vpn + nr)`.
    pub(crate) fn swap_overlaps(&self, pid: u32, vpn: u64, nr: u64) -> bool {
        self.swap_lookup(pid, vpn).is_some()
            || self
                .reclaim
                .swap
                .range((pid, vpn)..(pid, vpn + nr))
                .next()
                .is_some()
    }

    /// Drops one swap entry (`free_swap_and_cache()`): its slots are freed, and a folio
    /// still in the swap cache leaves it (freed, unless under writeback: then reclaim
    /// frees it later).
    pub(crate) fn swap_entry_free(&mut self, pid: u32, base: u64) {
        let Some(e) = self.reclaim.swap.remove(&(pid, base)) else {
            return;
        };
        self.reclaim.swap_used -= e.order.nr_pages();
        if let Some(id) = e.cached {
            self.swap_cache_drop(id);
        }
    }

    /// A folio in the swap cache whose entry is gone leaves the cache and is freed when
    /// no one else holds it. Under writeback or isolated it stays until that ends.
    pub(crate) fn swap_cache_drop(&mut self, id: FolioId) {
        let rec = *self.owners.folio(id);
        let f = self.mem.flags(rec.pfn);
        if f.intersects(PageFlags::WRITEBACK | PageFlags::ISOLATED)
            || !f.contains(PageFlags::SWAPCACHE)
        {
            return;
        }
        self.mem
            .clear_flag(rec.pfn, PageFlags::SWAPCACHE | PageFlags::DIRTY);
        if self.mem.mapcount(rec.pfn) == 0 {
            self.owners.folio_mut(id).orphan = true;
        }
        self.folio_put_refs(id, rec.order.nr_pages() as u32);
    }

    /// Every swap entry of `pid` in `[vpn, vpn + nr)` is dropped (munmap, exit).
    pub(crate) fn swap_free_range(&mut self, pid: u32, vpn: u64, nr: u64) {
        let bases: Vec<u64> = self
            .reclaim
            .swap
            .range((pid, vpn)..(pid, vpn.saturating_add(nr)))
            .map(|((_, b), _)| *b)
            .collect();
        for b in bases {
            self.swap_entry_free(pid, b);
        }
    }

    /// Mirrors `do_swap_page()`: a fault on the swap entry at `base` of `pid`. A folio
    /// still in the swap cache is mapped again; otherwise a new folio is read in with the
    /// old contents (`pswpin`). The entry and its slots are freed.
    pub(crate) fn swap_in(&mut self, pid: u32, base: u64) -> Result<FolioId, MapError> {
        let e = self.reclaim.swap[&(pid, base)];
        self.ensure_pgtable(pid, base)?;
        if let Some(id) = e.cached {
            let f = self.mem.flags(self.owners.folio(id).pfn);
            if !f.contains(PageFlags::ISOLATED) {
                self.reclaim.swap.remove(&(pid, base));
                self.reclaim.swap_used -= e.order.nr_pages();
                self.owners.folio_mut(id).orphan = false;
                self.map_folio(pid, base, id);
                // The fault waits for a write in flight; the swap cache's references go
                // with the entry.
                if f.contains(PageFlags::WRITEBACK) {
                    self.folio_end_writeback(id);
                }
                let pfn = self.owners.folio(id).pfn;
                self.mem.clear_flag(
                    pfn,
                    PageFlags::SWAPCACHE | PageFlags::DIRTY | PageFlags::RECLAIM,
                );
                self.folio_put_refs(id, e.order.nr_pages() as u32);
                return Ok(id);
            }
            // Isolated by reclaim or compaction: read it in anew below, as a racing
            // fault would wait and retry.
        }
        let gfp = if e.order.0 == 0 {
            crate::gfp::Gfp::GFP_HIGHUSER_MOVABLE
        } else {
            crate::gfp::Gfp::GFP_HIGHUSER_MOVABLE | crate::gfp::Gfp::COMP
        };
        let pfn = self
            .alloc_pages(gfp, e.order, NodeId(0))
            .ok_or(MapError::NoMemory)?;
        if !self.owners.processes[pid as usize].alive
            || !self.reclaim.swap.contains_key(&(pid, base))
        {
            // The OOM killer took the process (or its entry) while we allocated.
            self.free_pages(pfn, e.order);
            return Err(MapError::NoMemory);
        }
        let e = self.reclaim.swap.remove(&(pid, base)).expect("entry");
        self.reclaim.swap_used -= e.order.nr_pages();
        if let Some(old) = e.cached {
            self.swap_cache_drop(old);
        }
        let id = self.own_folio(
            pfn,
            e.order,
            crate::owners::Holder(FolioKind::Anon, pid, base),
            PageFlags::ANON | PageFlags::SWAPBACKED | PageFlags::LRU,
            0,
        );
        // The new folio holds the old data: the owner's stamp, not a fresh one.
        let rec: &mut FolioRec = self.owners.folio_mut(id);
        rec.stamp = e.stamp;
        rec.stamp_offset = e.stamp_offset;
        self.contents
            .fill(pfn, e.order.nr_pages(), e.stamp, e.stamp_offset);
        self.map_folio(pid, base, id);
        self.vmstat.pswpin += e.order.nr_pages();
        self.vmstat.pgmajfault += 1;
        Ok(id)
    }
}
