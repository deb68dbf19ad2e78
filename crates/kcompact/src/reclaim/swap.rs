//! Swap for anonymous memory: swap slots, the swap cache, swap entries left in a
//! process's page table, and swap-in on a fault.
//!
//! Mirrors `add_to_swap()` (slots for the folio, the swap cache's references),
//! `swap_cache_del_folio()` when reclaim frees it, and `do_swap_page()`: a fault on a swap
//! entry maps the folio again if it is still in the swap cache, or reads it back into a
//! new folio with the same contents.
//!
//! With `zram` the swap device is a zram disk: `swap_writepage()` compresses each page
//! into an object of the device's zsmalloc pool (a driver whose pages are movable_ops
//! pages when `non_lru_movable` is on, seed 004) and completes at once; freeing a swap
//! entry (`zram_slot_free_notify()`) or reading it back frees the objects. The pool's
//! pages are allocated by the reclaiming task (PF_MEMALLOC: reserves, no recursion into
//! reclaim) with zram's mask, `GFP_NOIO | __GFP_HIGHMEM | __GFP_MOVABLE` (earlier
//! `zram_write_page()`s first tried `__GFP_KSWAPD_RECLAIM | __GFP_NOWARN | __GFP_HIGHMEM |
//! __GFP_MOVABLE` and then that mask; under PF_MEMALLOC neither reclaims, so one attempt
//! stands for both). Same-filled pages (`ZRAM_SAME`) and incompressible ones stored
//! whole are not told apart: every page gets an object.
//!
//! DEVIATION(linux): a page's compressed size is not computed from its data: it is drawn
//! from its content stamp, uniform in 256..=3072 bytes (mean 1664, a 2.5:1 ratio, in the
//! range zram reports for application memory). Compression time is not charged.
//!
//! DEVIATION(linux): a swapped-out folio comes back whole at its order (Linux reads
//! order-0 pages back except for mTHP swap-in from zram/zswap), and there is no swap
//! readahead.

use crate::event::VmEvent;
use crate::gfp::Gfp;
use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::mmzone::SwapEntry;
use crate::owners::table::MapError;
use crate::owners::table::{FolioId, FolioKind};
use crate::units::NodeId;

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
        let rec = self.owners.folio(id);
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

    /// Removes the swap entry at `base` of `pid`: its slots are free again and, on zram,
    /// its compressed objects are freed (`zram_slot_free_notify()`).
    fn swap_entry_take(&mut self, pid: u32, base: u64) -> Option<SwapEntry> {
        let e = self.reclaim.swap.remove(&(pid, base))?;
        self.reclaim.swap_used -= e.order.nr_pages();
        if let (Some(drv), Some(objs)) = (
            self.reclaim.zram,
            self.reclaim.zram_objs.remove(&(pid, base)),
        ) {
            for zs in objs {
                self.zs_free(drv, zs);
            }
        }
        Some(e)
    }

    /// Mirrors `zram_write_page()` for every page of a dirty swap-cache folio: one
    /// compressed object per page in the zsmalloc pool. False, with nothing stored, if the
    /// pool cannot grow or the folio's swap entry is gone.
    pub(crate) fn zram_write(&mut self, id: FolioId) -> bool {
        let Some(drv) = self.reclaim.zram else {
            return false;
        };
        let rec = self.owners.folio(id);
        let key = (rec.owner, rec.index);
        if self.reclaim.swap.get(&key).and_then(|e| e.cached) != Some(id)
            || self.reclaim.zram_objs.contains_key(&key)
        {
            return false;
        }
        let gfp = Gfp::GFP_NOIO | Gfp::HIGHMEM | Gfp::MOVABLE;
        let was = self.pf_memalloc;
        self.pf_memalloc = true;
        let mut objs = Vec::with_capacity(rec.order.nr_pages() as usize);
        for i in 0..rec.order.nr_pages() as u32 {
            let size = zram_object_size(rec.stamp, rec.stamp_offset.wrapping_add(i));
            match self.zs_malloc_gfp(drv, size, gfp) {
                Some(zs) => objs.push(zs),
                None => break,
            }
        }
        self.pf_memalloc = was;
        if objs.len() as u64 != rec.order.nr_pages() {
            for zs in objs {
                self.zs_free(drv, zs);
            }
            return false;
        }
        self.reclaim.zram_objs.insert(key, objs);
        self.mem.clear_flag(rec.pfn, PageFlags::DIRTY);
        true
    }

    /// The swap cache lets go of a folio reclaim frees: its entry no longer names it.
    pub(crate) fn swap_cache_forget(&mut self, id: FolioId) {
        let rec = self.owners.folio(id);
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
        let Some(e) = self.swap_entry_take(pid, base) else {
            return;
        };
        if let Some(id) = e.cached {
            self.swap_cache_drop(id);
        }
    }

    /// A folio in the swap cache whose entry is gone leaves the cache and is freed when
    /// no one else holds it. Under writeback or isolated it stays until that ends.
    pub(crate) fn swap_cache_drop(&mut self, id: FolioId) {
        let rec = self.owners.folio(id);
        let f = self.mem.flags(rec.pfn);
        if f.intersects(PageFlags::WRITEBACK | PageFlags::ISOLATED)
            || !f.contains(PageFlags::SWAPCACHE)
        {
            return;
        }
        self.mem
            .clear_flag(rec.pfn, PageFlags::SWAPCACHE | PageFlags::DIRTY);
        if self.mem.mapcount(rec.pfn) == 0 {
            self.owners.set_orphan(id, true);
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
                self.swap_entry_take(pid, base);
                self.owners.set_orphan(id, false);
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
        let e = self.swap_entry_take(pid, base).expect("entry");
        if let Some(old) = e.cached {
            self.swap_cache_drop(old);
        }
        let id = self.own_folio(
            pfn,
            e.order,
            crate::owners::table::Holder(FolioKind::Anon, pid, base),
            PageFlags::ANON | PageFlags::SWAPBACKED | PageFlags::LRU,
            0,
        );
        // The new folio holds the old data: the owner's stamp, not a fresh one.
        self.owners.update(id, |rec| {
            rec.stamp = e.stamp;
            rec.stamp_offset = e.stamp_offset;
        });
        self.contents
            .fill(pfn, e.order.nr_pages(), e.stamp, e.stamp_offset);
        self.map_folio(pid, base, id);
        self.vmstat[VmEvent::Pswpin] += e.order.nr_pages();
        self.vmstat[VmEvent::Pgmajfault] += 1;
        Ok(id)
    }
}

/// The compressed size in bytes of the page with content `stamp` at `offset`: uniform in
/// 256..=3072, the same every time for the same data.
pub fn zram_object_size(stamp: u32, offset: u32) -> u32 {
    let mut x = (u64::from(stamp) << 32 | u64::from(offset)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    256 + (x % 2817) as u32
}
