//! One folio's migration in two phases, as mm/migrate.c does it since 6.3: unmap
//! (`migrate_folio_unmap()`: a destination, the folio lock, writeback, the reverse-map walk)
//! and move (`migrate_folio_move()`: the expected-refcount check, copy, mapping update,
//! remap), with `migrate_movable_ops_page()` for driver pages and the undo paths.

use super::{MigrateError, MigrateMode, MigrationTarget};
use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::owners::table::{FolioId, FolioRec};
use crate::units::Pfn;

/// The state `migrate_folio_unmap()` records for the move phase.
#[derive(Clone, Copy, Debug)]
pub(super) struct Unmapped {
    pub(super) src: FolioId,
    pub(super) dst: Pfn,
    /// The mapcount (and mapping references) taken away by the unmap, restored on remap.
    pub(super) was_mapped: u32,
}

impl Machine {
    /// Mirrors `migrate_folio_unmap()`.
    pub(super) fn migrate_folio_unmap(
        &mut self,
        id: FolioId,
        target: &mut dyn MigrationTarget,
        mode: MigrateMode,
    ) -> Result<Unmapped, MigrateError> {
        let rec = self.owners.folio(id);
        let dst = target
            .get_new_folio(self, rec.pfn, rec.order)
            .ok_or(MigrateError::NoMemory)?;
        let fail = |m: &mut Machine, target: &mut dyn MigrationTarget, e: MigrateError| {
            target.put_new_folio(m, dst, rec.order);
            Err(e)
        };
        let f = self.mem.flags(rec.pfn);
        if f.contains(PageFlags::LOCKED) {
            // A contended lock fails ASYNC and any caller in direct compaction or reclaim
            // (PF_MEMALLOC).
            if mode == MigrateMode::Async || self.pf_memalloc {
                return fail(self, target, MigrateError::Again);
            }
            // SYNC_LIGHT and SYNC sleep on the lock until its holder lets go.
            // DEVIATION(linux): there is no time yet, so the holder lets go at once (every
            // folio counts as uptodate for SYNC_LIGHT).
            self.mem.clear_flag(rec.pfn, PageFlags::LOCKED);
        }
        if f.contains(PageFlags::WRITEBACK) {
            if mode != MigrateMode::Sync {
                return fail(self, target, MigrateError::Busy);
            }
            // folio_wait_writeback(): the write completes.
            // DEVIATION(linux): at once; writeback takes time once time is modelled.
            self.mem.clear_flag(rec.pfn, PageFlags::WRITEBACK);
        }
        self.mem.set_flag(rec.pfn, PageFlags::LOCKED);
        if self.page_has_movable_ops(id) {
            // movable_ops pages are not mapped: nothing to unmap.
            return Ok(Unmapped {
                src: id,
                dst,
                was_mapped: 0,
            });
        }
        let mapped = self.mem.mapcount(rec.pfn);
        if mapped > 0 {
            // try_to_migrate(): an exclusive anonymous folio that may be DMA-pinned cannot
            // be unmapped (the rmap refuses to replace its PTEs).
            if f.contains(PageFlags::ANON) && self.mem.maybe_dma_pinned(rec.pfn) {
                self.mem.clear_flag(rec.pfn, PageFlags::LOCKED);
                return fail(self, target, MigrateError::Again);
            }
            self.mem.set_mapcount(rec.pfn, 0);
            self.mem
                .set_refcount(rec.pfn, self.mem.refcount(rec.pfn) - mapped);
        }
        Ok(Unmapped {
            src: id,
            dst,
            was_mapped: mapped,
        })
    }

    /// Restores a source after a failed attempt: PTEs back, lock dropped.
    pub(super) fn undo_src(&mut self, u: Unmapped) {
        let pfn = self.owners.folio(u.src).pfn;
        if u.was_mapped > 0 {
            self.mem.set_mapcount(pfn, u.was_mapped);
            self.mem
                .set_refcount(pfn, self.mem.refcount(pfn) + u.was_mapped);
        }
        self.mem.clear_flag(pfn, PageFlags::LOCKED);
    }

    /// Mirrors `migrate_folio_move()` → `move_to_new_folio()` → `__migrate_folio()`.
    pub(super) fn migrate_folio_move(
        &mut self,
        u: Unmapped,
        target: &mut dyn MigrationTarget,
    ) -> Result<(), MigrateError> {
        let rec = self.owners.folio(u.src);
        if self.page_has_movable_ops(u.src) {
            return self.migrate_movable_ops_page(u, rec, target);
        }
        let f = self.mem.flags(rec.pfn);
        let mapping = rec.kind.in_page_cache() && !rec.orphan;
        let fallback = mapping && !self.owners.files[rec.owner as usize].has_migrate_folio;
        let result = if fallback && f.contains(PageFlags::DIRTY) {
            // fallback_migrate_folio(): no writeout any more; dirty folios stay.
            Err(MigrateError::Busy)
        } else if fallback && !self.filemap_release_folio(rec.pfn) {
            // fallback_migrate_folio(): buffers that cannot be released give -EAGAIN to a
            // SYNC caller, -EBUSY to the others. Only SYNC gets here with such a folio
            // (clean, so under writeback): migrate_folio_unmap() turned the others away.
            Err(MigrateError::Again)
        } else if self.mem.refcount(rec.pfn) != self.folio_expected_ref_count(u.src) + 1 {
            Err(MigrateError::Again)
        } else {
            Ok(())
        };
        match result {
            Ok(()) => {
                self.move_folio(u, rec);
                Ok(())
            }
            Err(MigrateError::Again) => Err(MigrateError::Again),
            Err(e) => {
                self.undo_src(u);
                target.put_new_folio(self, u.dst, rec.order);
                Err(e)
            }
        }
    }

    /// Mirrors `migrate_movable_ops_page()` and what `migrate_folio_move()` does around it.
    pub(super) fn migrate_movable_ops_page(
        &mut self,
        u: Unmapped,
        rec: FolioRec,
        target: &mut dyn MigrationTarget,
    ) -> Result<(), MigrateError> {
        use crate::owners::table::{DriverMigrate, MovableOps};
        match self.owners.drivers[rec.owner as usize].migrate_page(u.src) {
            DriverMigrate::Done => {
                // The driver copied the data and took a reference on the destination; the
                // core drops its allocation reference and the source's isolation reference,
                // and the driver puts its reference on the source.
                let (src, dst) = (rec.pfn, u.dst);
                self.contents.copy(src, dst, rec.order.nr_pages());
                let sf = self.mem.flags(src);
                let df = self.mem.flags(dst);
                let travel = PageFlags::MOVABLE_OPS
                    | PageFlags::ZSMALLOC
                    | PageFlags::OFFLINE
                    | PageFlags::DRIVER_PAGE;
                self.mem.set_flags(dst, df.with(PageFlags(sf.0 & travel.0)));
                // DEVIATION(linux): a transient reference someone holds on the source page
                // (a scanner's folio_try_get()) follows the record to the destination; in
                // Linux it keeps the old page allocated until its holder drops it.
                let extra = self.mem.refcount(src) - 2;
                self.mem.set_refcount(dst, 1 + extra);
                self.hand_over(u.src, rec, dst);
                self.driver_pages_migrated += rec.order.nr_pages();
                Ok(())
            }
            DriverMigrate::Released => {
                // Nothing moved: the destination is freed by the core's folio_put(), the
                // source by dropping its isolation reference.
                self.free_pages(u.dst, rec.order);
                self.mem
                    .clear_flag(rec.pfn, PageFlags::LOCKED | PageFlags::ISOLATED);
                self.folio_put_refs(u.src, 1);
                Ok(())
            }
            DriverMigrate::Again => Err(MigrateError::Again),
            DriverMigrate::Fail => {
                self.undo_src(u);
                target.put_new_folio(self, u.dst, rec.order);
                Err(MigrateError::Busy)
            }
        }
    }

    /// The successful end of a move: copy, hand the folio's identity to the destination,
    /// remap, free the source.
    fn move_folio(&mut self, u: Unmapped, rec: FolioRec) {
        let (src, dst) = (rec.pfn, u.dst);
        let sf = self.mem.flags(src);
        // migrate_folio_done(): the source leaves the isolated count.
        self.account_isolated(src, -(rec.order.nr_pages() as i64));
        self.contents.copy(src, dst, rec.order.nr_pages());
        // folio_migrate_flags(): the state that travels with the data. Linux does not copy
        // PG_mlocked but remove_migration_ptes() sets it again for VM_LOCKED mappings; the
        // model has no VMAs, so it carries the flag over (the same end state).
        let travel = PageFlags::ANON
            | PageFlags::SWAPBACKED
            | PageFlags::DIRTY
            | PageFlags::ACTIVE
            | PageFlags::UNEVICTABLE
            | PageFlags::MLOCKED
            | PageFlags::PRIVATE
            | PageFlags::REFERENCED
            | PageFlags::SLAB
            | PageFlags::PGTABLE
            | PageFlags::SWAPCACHE
            | PageFlags::YOUNG;
        let df = self.mem.flags(dst);
        let new = df
            .with(PageFlags(sf.0 & travel.0 & 0x0fff_ffff))
            .with(PageFlags::LRU);
        self.lru_count(dst, rec.order.nr_pages(), df, new);
        self.mem.set_flags(dst, new);
        let cache_refs = self.folio_expected_ref_count(u.src) - self.mem.mapcount(src);
        // dst: the allocation reference, the cache's references, the restored mappings;
        // then the allocation reference is dropped (folio_put(dst)).
        self.mem.set_refcount(dst, cache_refs + u.was_mapped);
        self.mem.set_mapcount(dst, u.was_mapped);
        self.hand_over(u.src, rec, dst);
        if self.mem.flags(dst).contains(PageFlags::LRU) {
            self.lru_push(u.src, false);
        }
    }

    /// The folio's record moves to `dst`; the source, down to its isolation reference,
    /// is freed (`migrate_folio_done()`).
    fn hand_over(&mut self, id: FolioId, rec: FolioRec, dst: Pfn) {
        let src = rec.pfn;
        self.mem.set_owner(dst, crate::memmap::OwnerRef(id.0));
        self.owners.update(id, |r| r.pfn = dst);
        let head = if rec.order.0 > 0 {
            PageFlags::HEAD.with_order(rec.order.0)
        } else {
            PageFlags::EMPTY
        };
        self.mem.set_flags(src, head);
        self.mem.set_mapcount(src, 0);
        self.mem.set_refcount(src, 1);
        self.mem.set_owner(src, crate::memmap::OwnerRef::NONE);
        self.free_pages(src, rec.order);
    }
}
