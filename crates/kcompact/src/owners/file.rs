//! Files and their page cache: regular files and shmem/tmpfs, clean, dirty and under
//! writeback, mapped into processes or not.
//!
//! The page cache holds one reference per page of a cached folio (and a folio with
//! buffer heads, PG_private, one more), as `filemap_add_folio()` and `folio_attach_private()`
//! take them.

use super::table::{File, MapError};
use super::table::{FolioId, FolioKind};
use super::xarray::XArray;
use crate::event::VmEvent;
use crate::gfp::Gfp;
use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::units::{NodeId, Order, Pfn};

impl Machine {
    /// Creates a file; returns its id.
    pub fn new_file(&mut self, shmem: bool, has_migrate_folio: bool, buffers: bool) -> u32 {
        self.owners.files.push(File {
            shmem,
            has_migrate_folio,
            buffers: buffers && !shmem,
            pages: XArray::new(),
            alive: true,
        });
        self.owners.files.len() as u32 - 1
    }

    /// The folio caching page `index` of file `fid`, with its first index.
    pub fn file_lookup(&self, fid: u32, index: u64) -> Option<(u64, FolioId)> {
        let (base, id) = self.owners.files[fid as usize].pages.load_folio(index)?;
        (index < base + self.owners.folio(id).order.nr_pages()).then_some((base, id))
    }

    /// Reads or writes `2^order` pages at `index` into the page cache
    /// (`filemap_add_folio()`); a write leaves the folio dirty.
    pub fn file_add(
        &mut self,
        fid: u32,
        index: u64,
        order: Order,
        dirty: bool,
    ) -> Result<FolioId, MapError> {
        let f = &self.owners.files[fid as usize];
        if !f.alive
            || !index.is_multiple_of(order.nr_pages())
            || self.file_lookup(fid, index).is_some()
            || f.pages.any_in(index, index + order.nr_pages())
        {
            return Err(MapError::Invalid);
        }
        let id = self.file_add_unindexed(fid, index, order, dirty)?;
        self.owners.files[fid as usize]
            .pages
            .insert(index, order.0, id);
        Ok(id)
    }

    /// [`Machine::file_add`] without its checks and without entering the folio in the
    /// file's index (`File::pages`): the caller enters it. A snapshot's loader adds
    /// millions of folios at unique, increasing indices and enters them in each file's
    /// index once all are placed.
    pub fn file_add_unindexed(
        &mut self,
        fid: u32,
        index: u64,
        order: Order,
        dirty: bool,
    ) -> Result<FolioId, MapError> {
        let f = &self.owners.files[fid as usize];
        let (shmem, buffers) = (f.shmem, f.buffers);
        let gfp = if order.0 == 0 {
            Gfp::GFP_HIGHUSER_MOVABLE
        } else {
            Gfp::GFP_HIGHUSER_MOVABLE | Gfp::COMP | Gfp::NOWARN
        };
        let pfn = self
            .alloc_pages(gfp, order, NodeId(0))
            .ok_or(MapError::NoMemory)?;
        let mut flags = PageFlags::LRU;
        if shmem {
            flags = flags | PageFlags::SWAPBACKED;
        }
        if dirty {
            flags = flags | PageFlags::DIRTY;
        }
        if buffers {
            flags = flags | PageFlags::PRIVATE;
        }
        let refs = order.nr_pages() as u32 + buffers as u32;
        let kind = if shmem {
            FolioKind::Shmem
        } else {
            FolioKind::File
        };
        let id = self.own_folio(pfn, order, super::Holder(kind, fid, index), flags, refs);
        if dirty {
            self.note_dirty(id);
        }
        Ok(id)
    }

    /// Maps the cached folio holding page `index` of `fid` at `vpn` of `pid` (`filemap_map_pages()`).
    pub fn file_mmap(
        &mut self,
        pid: u32,
        vpn: u64,
        fid: u32,
        index: u64,
    ) -> Result<FolioId, MapError> {
        let Some((_, id)) = self.file_lookup(fid, index) else {
            return Err(MapError::Invalid);
        };
        let nr = self.owners.folio(id).order.nr_pages();
        let p = &self.owners.processes[pid as usize];
        if !p.alive
            || !vpn.is_multiple_of(nr)
            || self.lookup(pid, vpn).is_some()
            || p.table.any_in(vpn, vpn + nr)
        {
            return Err(MapError::Invalid);
        }
        self.ensure_pgtable(pid, vpn)?;
        self.map_folio(pid, vpn, id);
        Ok(id)
    }

    /// Drops the cached folio holding page `index` (`truncate_inode_folio()`): unmaps it
    /// from every process (`unmap_mapping_range()`), takes it out of the cache, and frees
    /// it unless someone else still holds a reference.
    pub fn file_remove(&mut self, fid: u32, index: u64) -> bool {
        let Some((base, id)) = self.file_lookup(fid, index) else {
            return false;
        };
        let mappers: Vec<(u32, u64)> = self.owners.mappers(id).collect();
        for (pid, vpn) in mappers {
            self.unmap_folio(pid, vpn);
        }
        self.owners.files[fid as usize].pages.remove(base);
        if self
            .mem
            .flags(self.owners.folio(id).pfn)
            .contains(PageFlags::WRITEBACK)
        {
            // truncate_inode_pages() waits for writeback to end.
            self.folio_end_writeback(id);
        }
        let rec = self.owners.folio(id);
        let private = self.mem.flags(rec.pfn).contains(PageFlags::PRIVATE);
        if private {
            self.free_folio_buffers(id);
        }
        self.page_cache_nodes_release(rec.order.nr_pages());
        self.mem.clear_flag(
            rec.pfn,
            PageFlags::PRIVATE | PageFlags::DIRTY | PageFlags::RECLAIM,
        );
        self.owners.set_orphan(id, true);
        self.folio_put_refs(id, rec.order.nr_pages() as u32 + private as u32);
        true
    }

    /// Deletes a file: every cached folio is removed.
    pub fn delete_file(&mut self, fid: u32) {
        let bases: Vec<u64> = self.owners.files[fid as usize].pages.keys().collect();
        for b in bases {
            self.file_remove(fid, b);
        }
        self.owners.files[fid as usize].alive = false;
    }

    /// Remembers a newly dirty folio for the next `sync`; the list is swept of folios no
    /// longer dirty when it outgrows the folio table.
    fn note_dirty(&mut self, id: FolioId) {
        self.clock.dirty.push(id);
        if self.clock.dirty.len() > 4 * self.owners.len() + 1024 {
            let mut d = std::mem::take(&mut self.clock.dirty);
            d.retain(|i| {
                self.owners
                    .get(*i)
                    .is_some_and(|r| self.mem.flags(r.pfn).contains(PageFlags::DIRTY))
            });
            d.sort_unstable();
            d.dedup();
            self.clock.dirty = d;
        }
    }

    /// Marks a cached folio dirty (`folio_mark_dirty()`).
    pub fn folio_mark_dirty(&mut self, id: FolioId) {
        let pfn = self.owners.folio(id).pfn;
        if !self.mem.flags(pfn).contains(PageFlags::DIRTY) {
            self.note_dirty(id);
        }
        self.mem.set_flag(pfn, PageFlags::DIRTY);
    }

    /// Starts writeback of a dirty folio (`folio_start_writeback()` after `folio_clear_dirty_for_io()`).
    pub fn folio_start_writeback(&mut self, id: FolioId) -> bool {
        let pfn = self.owners.folio(id).pfn;
        if !self.mem.flags(pfn).contains(PageFlags::DIRTY)
            || self.mem.flags(pfn).contains(PageFlags::WRITEBACK)
        {
            return false;
        }
        self.mem.clear_flag(pfn, PageFlags::DIRTY);
        self.mem.set_flag(pfn, PageFlags::WRITEBACK);
        true
    }

    /// Ends writeback (`folio_end_writeback()`).
    ///
    /// A folio reclaim marked PG_reclaim moves to the tail of its inactive list
    /// (`folio_rotate_reclaimable()`), to be freed at the next pass.
    pub fn folio_end_writeback(&mut self, id: FolioId) {
        let pfn = self.owners.folio(id).pfn;
        let f = self.mem.flags(pfn);
        self.mem.clear_flag(pfn, PageFlags::WRITEBACK);
        if f.contains(PageFlags::RECLAIM) {
            self.mem.clear_flag(pfn, PageFlags::RECLAIM);
            if f.contains(PageFlags::LRU) && !f.contains(PageFlags::UNEVICTABLE) {
                let new = self.mem.flags(pfn).without(PageFlags::ACTIVE);
                self.lru_count(pfn, self.owners.folio(id).order.nr_pages(), f, new);
                self.mem.set_flags(pfn, new);
                self.lru_push(id, true);
                self.vmstat[VmEvent::Pgrotated] += self.owners.folio(id).order.nr_pages();
            }
        }
    }
}

impl Machine {
    /// Mirrors `filemap_release_folio()` as `try_to_free_buffers()` decides it: a folio
    /// without private data needs nothing; one under writeback, or whose buffers are dirty
    /// (`buffer_busy()`; a dirty page cache folio has dirty buffers), keeps them and the
    /// call fails; otherwise the buffers and their folio reference are dropped.
    ///
    /// DEVIATION(linux): buffers are not modelled one by one; a dirty folio is taken to
    /// have a dirty buffer and a clean one none busy (no elevated `b_count`, no locked
    /// buffer, and for ext4's `release_folio` none still held by a journal transaction).
    pub fn filemap_release_folio(&mut self, head: Pfn) -> bool {
        let f = self.mem.flags(head);
        if !f.contains(PageFlags::PRIVATE) || f.contains(PageFlags::ANON) {
            return true;
        }
        if f.contains(PageFlags::WRITEBACK) || f.contains(PageFlags::DIRTY) {
            return false;
        }
        if let Some(id) = self.folio_of(head) {
            self.free_folio_buffers(id);
        }
        self.mem.clear_flag(head, PageFlags::PRIVATE);
        self.mem.set_refcount(head, self.mem.refcount(head) - 1);
        true
    }
}
