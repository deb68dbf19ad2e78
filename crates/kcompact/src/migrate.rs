//! Page migration: move folios to new pages while their owners keep using them.
//!
//! Mirrors `mm/migrate.c`: [`Machine::migrate_pages`] takes isolated folios in batches of
//! up to 512 pages; ASYNC runs one batch with up to 10 passes, SYNC and SYNC_LIGHT first an
//! ASYNC batch of 3 passes and then every leftover folio alone with 7 passes in the real
//! mode. Each pass unmaps (`migrate_folio_unmap()`: a destination from the target, the
//! folio lock, writeback, the reverse-map walk) and then moves (`migrate_folio_move()`: the
//! expected-refcount check, copy, mapping update, remap). `-EAGAIN` stays for the next
//! pass; `-ENOMEM` splits a large folio or ends the batch; other errors are permanent.
//! Counters `pgmigrate_success` / `pgmigrate_fail` / `thp_migration_*` are added once at
//! the end, as Linux does.

use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::owners::process::HPAGE_PMD_ORDER;
use crate::owners::table::{FolioId, FolioKind, FolioRec};
use crate::units::{Order, Pfn};

/// Mirrors `enum migrate_mode`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum MigrateMode {
    /// MIGRATE_ASYNC: never block.
    Async,
    /// MIGRATE_SYNC_LIGHT: may block on locks, not on writeback.
    SyncLight,
    /// MIGRATE_SYNC: may block on locks and wait for writeback.
    Sync,
}

impl MigrateMode {
    /// The name trace output uses.
    pub fn name(self) -> &'static str {
        match self {
            MigrateMode::Async => "MIGRATE_ASYNC",
            MigrateMode::SyncLight => "MIGRATE_SYNC_LIGHT",
            MigrateMode::Sync => "MIGRATE_SYNC",
        }
    }
}

/// Mirrors `enum migrate_reason` (the reasons the model uses).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MigrateReason {
    /// MR_COMPACTION.
    Compaction,
    /// MR_SYSCALL (move_pages, migrate_pages).
    Syscall,
    /// MR_NUMA_MISPLACED: large folios are not split on -ENOMEM.
    NumaMisplaced,
    /// MR_CONTIG_RANGE (alloc_contig_range, CMA).
    ContigRange,
}

/// Why one folio did not migrate in one attempt (the kernel's errno).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MigrateError {
    /// -EAGAIN: try again in the next pass.
    Again,
    /// -ENOMEM: no destination page.
    NoMemory,
    /// -EBUSY: permanent for this call (writeback, dirty without migrate_folio).
    Busy,
}

/// Mirrors `get_new_folio` / `put_new_folio`: where migration gets destination folios.
pub trait MigrationTarget {
    /// A free block of exactly `order` for the contents of `src`, or `None`.
    fn get_new_folio(&mut self, m: &mut Machine, src: Pfn, order: Order) -> Option<Pfn>;
    /// Takes back a destination that was not used.
    fn put_new_folio(&mut self, m: &mut Machine, dst: Pfn, order: Order);
}

/// Mirrors `alloc_migration_target()`: destinations from the page allocator, movable,
/// anywhere on the machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllocTarget;

impl MigrationTarget for AllocTarget {
    fn get_new_folio(&mut self, m: &mut Machine, src: Pfn, order: Order) -> Option<Pfn> {
        use crate::gfp::Gfp;
        let mut gfp = Gfp::GFP_HIGHUSER_MOVABLE | Gfp::RETRY_MAYFAIL;
        if order.0 > 0 {
            // Large folios are allocated as THP allocations are: no reclaim, no kswapd.
            gfp = Gfp((gfp.0 & !Gfp::RECLAIM.0) | Gfp::GFP_TRANSHUGE.0);
        }
        let node = m.page_zone(src).map(|z| m.zone(z).node).unwrap_or_default();
        m.alloc_pages(gfp, order, node)
    }

    fn put_new_folio(&mut self, m: &mut Machine, dst: Pfn, order: Order) {
        m.free_pages(dst, order);
    }
}

/// A fault to inject while migrating, for tests (seeded by the caller).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Injection {
    /// Nothing.
    None,
    /// Someone takes a speculative reference on the source between unmap and move (it is
    /// recorded in [`crate::owners::table::Owners::speculative`] and stays until its holder drops it).
    SpeculativeRef,
}

/// Mirrors `struct migrate_pages_stats`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct MigrateStats {
    /// Base pages migrated.
    pub nr_succeeded: u64,
    /// Base pages that failed.
    pub nr_failed_pages: u64,
    /// THP folios migrated.
    pub nr_thp_succeeded: u64,
    /// THP folios that failed.
    pub nr_thp_failed: u64,
    /// THP folios split.
    pub nr_thp_split: u64,
    /// Large folios of any order split.
    pub nr_split: u64,
}

/// What one `migrate_pages()` call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrateResult {
    /// Folios not migrated, or `Err(NoMemory)` (the kernel's return value).
    pub rc: Result<u64, MigrateError>,
    /// The counters.
    pub stats: MigrateStats,
    /// Folios left over, still isolated: the caller puts them back
    /// ([`Machine::putback_movable_pages`]).
    pub ret: Vec<FolioId>,
}

/// The state `migrate_folio_unmap()` records for the move phase.
#[derive(Clone, Copy, Debug)]
struct Unmapped {
    src: FolioId,
    dst: Pfn,
    /// The mapcount (and mapping references) taken away by the unmap, restored on remap.
    was_mapped: u32,
}

/// `NR_MAX_BATCHED_MIGRATION`.
pub const NR_MAX_BATCHED_MIGRATION: u64 = 512;
/// `NR_MAX_MIGRATE_PAGES_RETRY`.
pub const NR_MAX_MIGRATE_PAGES_RETRY: u32 = 10;
/// `NR_MAX_MIGRATE_ASYNC_RETRY`.
pub const NR_MAX_MIGRATE_ASYNC_RETRY: u32 = 3;
/// `NR_MAX_MIGRATE_SYNC_RETRY`.
pub const NR_MAX_MIGRATE_SYNC_RETRY: u32 = NR_MAX_MIGRATE_PAGES_RETRY - NR_MAX_MIGRATE_ASYNC_RETRY;

fn is_thp(rec: &FolioRec) -> bool {
    rec.order.0 >= HPAGE_PMD_ORDER
}

impl Machine {
    /// Adds `nr` pages (negative: removes) to NR_ISOLATED_ANON or NR_ISOLATED_FILE by the
    /// folio's LRU type (`node_stat_mod_folio(folio, NR_ISOLATED_ANON + folio_is_file_lru(folio))`).
    pub(crate) fn account_isolated(&mut self, pfn: Pfn, nr: i64) {
        let file = !self.mem.flags(pfn).contains(PageFlags::SWAPBACKED);
        let c = if file {
            &mut self.vmstat.nr_isolated_file
        } else {
            &mut self.vmstat.nr_isolated_anon
        };
        *c = c.checked_add_signed(nr).expect("NR_ISOLATED went negative");
    }

    /// Mirrors `folio_isolate_lru()`: takes an LRU folio off its list for migration, holding
    /// a reference. False if it is not on an LRU list.
    pub fn folio_isolate_lru(&mut self, id: FolioId) -> bool {
        let pfn = self.owners.folio(id).pfn;
        let f = self.mem.flags(pfn);
        if !f.contains(PageFlags::LRU) || self.mem.refcount(pfn) == 0 {
            return false;
        }
        let new = f.without(PageFlags::LRU).with(PageFlags::ISOLATED);
        self.lru_count(pfn, self.owners.folio(id).order.nr_pages(), f, new);
        self.mem.set_flags(pfn, new);
        self.mem.set_refcount(pfn, self.mem.refcount(pfn) + 1);
        self.account_isolated(pfn, self.owners.folio(id).order.nr_pages() as i64);
        true
    }

    /// Mirrors `folio_putback_lru()`: back on the LRU, the isolation reference dropped
    /// (which frees a folio its owner let go of meanwhile).
    pub fn folio_putback_lru(&mut self, id: FolioId) {
        let pfn = self.owners.folio(id).pfn;
        let f = self.mem.flags(pfn);
        assert!(
            f.contains(PageFlags::ISOLATED),
            "{pfn:?} put back but not isolated"
        );
        self.account_isolated(pfn, -(self.owners.folio(id).order.nr_pages() as i64));
        let new = f.without(PageFlags::ISOLATED).with(PageFlags::LRU);
        self.lru_count(pfn, self.owners.folio(id).order.nr_pages(), f, new);
        self.mem.set_flags(pfn, new);
        self.lru_push(id, false);
        self.folio_put_refs(id, 1);
    }

    /// Mirrors `putback_movable_pages()`.
    pub fn putback_movable_pages(&mut self, list: Vec<FolioId>) {
        for id in list {
            if self.page_has_movable_ops(id) {
                self.putback_movable_ops_page(id);
            } else {
                self.folio_putback_lru(id);
            }
        }
    }

    /// Mirrors `folio_expected_ref_count()`: references the folio's owners account for —
    /// a page-cache reference per page, one for private data, one per mapping.
    pub fn folio_expected_ref_count(&self, id: FolioId) -> u32 {
        let rec = self.owners.folio(id);
        let f = self.mem.flags(rec.pfn);
        let mut refs = self.mem.mapcount(rec.pfn);
        if rec.kind.in_page_cache() && !rec.orphan {
            refs += rec.order.nr_pages() as u32;
        }
        if !f.contains(PageFlags::ANON) && f.contains(PageFlags::PRIVATE) {
            refs += 1;
        }
        if f.contains(PageFlags::SWAPCACHE) {
            refs += rec.order.nr_pages() as u32;
        }
        refs
    }

    /// Mirrors `migrate_pages()` with `get_new_folio`/`put_new_folio` from `target`.
    pub fn migrate_pages(
        &mut self,
        from: Vec<FolioId>,
        target: &mut dyn MigrationTarget,
        mode: MigrateMode,
        reason: MigrateReason,
    ) -> MigrateResult {
        self.migrate_pages_inject(from, target, mode, reason, &mut |_| Injection::None)
    }

    /// [`Machine::migrate_pages`] with a fault injector asked once per folio before each
    /// move attempt.
    pub fn migrate_pages_inject(
        &mut self,
        mut from: Vec<FolioId>,
        target: &mut dyn MigrationTarget,
        mode: MigrateMode,
        reason: MigrateReason,
        inject: &mut dyn FnMut(FolioId) -> Injection,
    ) -> MigrateResult {
        for id in &from {
            let pfn = self.owners.folio(*id).pfn;
            assert!(
                self.mem.flags(pfn).contains(PageFlags::ISOLATED),
                "{pfn:?} migrated without isolation"
            );
        }
        let mut stats = MigrateStats::default();
        let mut ret = Vec::new();
        let mut rc_gather: Result<u64, MigrateError> = Ok(0);
        // migrate_hugetlbs(): hugetlb migration is not modelled, so any hugetlb folio on
        // the list fails (the kernel fails those whose hstate cannot migrate the same way).
        let mut hugetlb_failed = 0;
        from.retain(|id| {
            let rec = self.owners.folio(*id);
            let keep = rec.kind != FolioKind::Hugetlb;
            if !keep {
                stats.nr_failed_pages += rec.order.nr_pages();
                hugetlb_failed += 1;
                ret.push(*id);
            }
            keep
        });
        if let Ok(g) = &mut rc_gather {
            *g += hugetlb_failed;
        }
        while !from.is_empty() {
            let mut nr_pages = 0;
            let mut cut = from.len();
            for (i, id) in from.iter().enumerate() {
                nr_pages += self.owners.folio(*id).order.nr_pages();
                if nr_pages >= NR_MAX_BATCHED_MIGRATION {
                    cut = i + 1;
                    break;
                }
            }
            let rest = from.split_off(cut);
            let mut batch = std::mem::replace(&mut from, rest);
            let mut split = Vec::new();
            let rc = if mode == MigrateMode::Async {
                self.migrate_pages_batch(
                    &mut batch,
                    target,
                    mode,
                    reason,
                    &mut ret,
                    Some(&mut split),
                    &mut stats,
                    NR_MAX_MIGRATE_PAGES_RETRY,
                    inject,
                )
            } else {
                self.migrate_pages_sync(
                    &mut batch, target, mode, reason, &mut ret, &mut split, &mut stats, inject,
                )
            };
            ret.append(&mut batch);
            match rc {
                Err(e) => {
                    rc_gather = Err(e);
                    ret.append(&mut split);
                    ret.append(&mut from);
                    break;
                }
                Ok(n) => {
                    if !split.is_empty() {
                        // The pieces get one forced-ASYNC pass; the split already counted as
                        // one failure, so this call's result is ignored.
                        let _ = self.migrate_pages_batch(
                            &mut split,
                            target,
                            MigrateMode::Async,
                            reason,
                            &mut ret,
                            None,
                            &mut stats,
                            1,
                            inject,
                        );
                        ret.append(&mut split);
                    }
                    if let Ok(g) = &mut rc_gather {
                        *g += n;
                    }
                }
            }
        }
        if ret.is_empty() {
            rc_gather = Ok(0);
        }
        self.vmstat.pgmigrate_success += stats.nr_succeeded;
        self.vmstat.pgmigrate_fail += stats.nr_failed_pages;
        self.vmstat.thp_migration_success += stats.nr_thp_succeeded;
        self.vmstat.thp_migration_fail += stats.nr_thp_failed;
        self.vmstat.thp_migration_split += stats.nr_thp_split;
        MigrateResult {
            rc: rc_gather,
            stats,
            ret,
        }
    }

    /// Mirrors `migrate_pages_sync()`.
    #[allow(clippy::too_many_arguments)] // the kernel function's own parameters
    fn migrate_pages_sync(
        &mut self,
        from: &mut Vec<FolioId>,
        target: &mut dyn MigrationTarget,
        mode: MigrateMode,
        reason: MigrateReason,
        ret: &mut Vec<FolioId>,
        split: &mut Vec<FolioId>,
        stats: &mut MigrateStats,
        inject: &mut dyn FnMut(FolioId) -> Injection,
    ) -> Result<u64, MigrateError> {
        let mut astats = MigrateStats::default();
        let mut failed_async = Vec::new();
        let rc = self.migrate_pages_batch(
            from,
            target,
            MigrateMode::Async,
            reason,
            &mut failed_async,
            Some(split),
            &mut astats,
            NR_MAX_MIGRATE_ASYNC_RETRY,
            inject,
        );
        stats.nr_succeeded += astats.nr_succeeded;
        stats.nr_thp_succeeded += astats.nr_thp_succeeded;
        stats.nr_thp_split += astats.nr_thp_split;
        stats.nr_split += astats.nr_split;
        if let Err(e) = rc {
            stats.nr_failed_pages += astats.nr_failed_pages;
            stats.nr_thp_failed += astats.nr_thp_failed;
            ret.append(&mut failed_async);
            return Err(e);
        }
        stats.nr_thp_failed += astats.nr_thp_split;
        let mut nr_failed = astats.nr_split;
        from.append(&mut failed_async);
        while !from.is_empty() {
            let mut one = vec![from.remove(0)];
            let rc = self.migrate_pages_batch(
                &mut one,
                target,
                mode,
                reason,
                ret,
                Some(split),
                stats,
                NR_MAX_MIGRATE_SYNC_RETRY,
                inject,
            );
            ret.append(&mut one);
            nr_failed += rc?;
        }
        Ok(nr_failed)
    }

    /// Mirrors `migrate_pages_batch()`: unmap passes, then move passes.
    #[allow(clippy::too_many_arguments)] // the kernel function's own parameters
    fn migrate_pages_batch(
        &mut self,
        from: &mut Vec<FolioId>,
        target: &mut dyn MigrationTarget,
        mode: MigrateMode,
        reason: MigrateReason,
        ret: &mut Vec<FolioId>,
        mut split: Option<&mut Vec<FolioId>>,
        stats: &mut MigrateStats,
        nr_pass: u32,
        inject: &mut dyn FnMut(FolioId) -> Injection,
    ) -> Result<u64, MigrateError> {
        let nosplit = reason == MigrateReason::NumaMisplaced;
        let mut nr_failed = 0u64;
        let (mut retry, mut thp_retry, mut nr_retry_pages) = (1u64, 0u64, 0u64);
        let mut unmapped: Vec<Unmapped> = Vec::with_capacity(from.len());
        let mut rc_saved = None;
        let mut pass = 0;
        'unmap: while pass < nr_pass && retry > 0 {
            retry = 0;
            thp_retry = 0;
            nr_retry_pages = 0;
            // Walk the list once, keeping what stays for the next pass in order (no shifting).
            let pending = std::mem::take(from);
            let mut kept = Vec::new();
            let mut idx = 0;
            while idx < pending.len() {
                let id = pending[idx];
                idx += 1;
                let rec = *self.owners.folio(id);
                let (n, thp, large) = (rec.order.nr_pages(), is_thp(&rec) as u64, rec.order.0 > 0);
                // Freed from under us: only the isolation reference is left (movable_ops
                // pages are the driver's to report).
                if self.mem.refcount(rec.pfn) == 1 && !self.page_has_movable_ops(id) {
                    self.account_isolated(rec.pfn, -(n as i64));
                    let f = self.mem.flags(rec.pfn);
                    self.mem.set_flags(
                        rec.pfn,
                        f.without(PageFlags::ACTIVE | PageFlags::UNEVICTABLE | PageFlags::ISOLATED),
                    );
                    self.folio_put_refs(id, 1);
                    stats.nr_succeeded += n;
                    stats.nr_thp_succeeded += thp;
                    continue;
                }
                match self.migrate_folio_unmap(id, target, mode) {
                    Ok(u) => unmapped.push(u),
                    Err(MigrateError::Again) => {
                        retry += 1;
                        thp_retry += thp;
                        nr_retry_pages += n;
                        kept.push(id);
                    }
                    Err(MigrateError::NoMemory) => {
                        nr_failed += 1;
                        stats.nr_thp_failed += thp;
                        if large && !nosplit {
                            if let Some(list) = split.as_deref_mut() {
                                // try_split_folio() only trylocks in ASYNC mode.
                                let locked = self.mem.flags(rec.pfn).contains(PageFlags::LOCKED);
                                if !(mode == MigrateMode::Async && locked)
                                    && self.split_folio(id, list)
                                {
                                    stats.nr_thp_split += thp;
                                    stats.nr_split += 1;
                                    continue;
                                }
                            }
                        }
                        stats.nr_failed_pages += n + nr_retry_pages;
                        stats.nr_thp_failed += thp_retry;
                        rc_saved = Some(MigrateError::NoMemory);
                        kept.push(id);
                        kept.extend_from_slice(&pending[idx..]);
                        *from = kept;
                        break 'unmap;
                    }
                    Err(MigrateError::Busy) => {
                        ret.push(id);
                        nr_failed += 1;
                        stats.nr_thp_failed += thp;
                        stats.nr_failed_pages += n;
                    }
                }
            }
            *from = kept;
            pass += 1;
        }
        if rc_saved.is_none() {
            nr_failed += retry;
            stats.nr_thp_failed += thp_retry;
            stats.nr_failed_pages += nr_retry_pages;
        }
        // Move passes.
        let mut retry = 1u64;
        let (mut thp_retry, mut nr_retry_pages) = (0u64, 0u64);
        let mut pass = 0;
        while pass < nr_pass && retry > 0 && !unmapped.is_empty() {
            retry = 0;
            thp_retry = 0;
            nr_retry_pages = 0;
            let pending = std::mem::take(&mut unmapped);
            for u in pending {
                let rec = *self.owners.folio(u.src);
                let (n, thp) = (rec.order.nr_pages(), is_thp(&rec) as u64);
                if inject(u.src) == Injection::SpeculativeRef && !self.page_has_movable_ops(u.src) {
                    self.get_speculative(u.src);
                }
                match self.migrate_folio_move(u, target) {
                    Ok(()) => {
                        stats.nr_succeeded += n;
                        stats.nr_thp_succeeded += thp;
                    }
                    Err(MigrateError::Again) => {
                        retry += 1;
                        thp_retry += thp;
                        nr_retry_pages += n;
                        unmapped.push(u);
                    }
                    Err(_) => {
                        ret.push(u.src);
                        nr_failed += 1;
                        stats.nr_thp_failed += thp;
                        stats.nr_failed_pages += n;
                    }
                }
            }
            pass += 1;
        }
        if pass > 0 {
            nr_failed += retry;
            stats.nr_thp_failed += thp_retry;
            stats.nr_failed_pages += nr_retry_pages;
        }
        // migrate_folios_undo(): whatever is still unmapped goes back as it was.
        for u in unmapped {
            self.undo_src(u);
            target.put_new_folio(self, u.dst, self.owners.folio(u.src).order);
            ret.push(u.src);
        }
        match rc_saved {
            Some(e) => Err(e),
            None => Ok(nr_failed),
        }
    }

    /// Mirrors `migrate_folio_unmap()`.
    fn migrate_folio_unmap(
        &mut self,
        id: FolioId,
        target: &mut dyn MigrationTarget,
        mode: MigrateMode,
    ) -> Result<Unmapped, MigrateError> {
        let rec = *self.owners.folio(id);
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
    fn undo_src(&mut self, u: Unmapped) {
        let pfn = self.owners.folio(u.src).pfn;
        if u.was_mapped > 0 {
            self.mem.set_mapcount(pfn, u.was_mapped);
            self.mem
                .set_refcount(pfn, self.mem.refcount(pfn) + u.was_mapped);
        }
        self.mem.clear_flag(pfn, PageFlags::LOCKED);
    }

    /// Mirrors `migrate_folio_move()` → `move_to_new_folio()` → `__migrate_folio()`.
    fn migrate_folio_move(
        &mut self,
        u: Unmapped,
        target: &mut dyn MigrationTarget,
    ) -> Result<(), MigrateError> {
        let rec = *self.owners.folio(u.src);
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
    fn migrate_movable_ops_page(
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
        self.owners.folio_mut(id).pfn = dst;
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
        self.mem.clear_flag(head, PageFlags::PRIVATE);
        self.mem.set_refcount(head, self.mem.refcount(head) - 1);
        true
    }

    /// Mirrors `split_folio_to_list()` for an isolated large folio: every page becomes an
    /// order-0 folio with its share of the references, mappings and cache slots; the pieces
    /// go on `list`, still isolated. Fails (false) if the folio holds references its owners
    /// do not account for (`can_split_folio()`), such as a pin.
    pub fn split_folio(&mut self, id: FolioId, list: &mut Vec<FolioId>) -> bool {
        let rec = *self.owners.folio(id);
        assert!(rec.order.0 > 0, "split of an order-0 folio");
        assert!(
            !self.mem.flags(rec.pfn).contains(PageFlags::LRU),
            "split of a folio still on an LRU list"
        );
        let head = rec.pfn;
        if self.mem.refcount(head) != self.folio_expected_ref_count(id) + 1
            || self.mem.pincount(head) > 0
            || self.mem.flags(head).contains(PageFlags::SWAPCACHE)
        {
            if rec.order.0 == HPAGE_PMD_ORDER {
                self.vmstat.thp_split_page_failed += 1;
            }
            return false;
        }
        // A page cache folio's buffers must go before a split; dirty ones cannot
        // (split_huge_page_to_list_to_order(): -EBUSY).
        if !self.filemap_release_folio(head) {
            return false;
        }
        let nr = rec.order.nr_pages();
        let hf = self.mem.flags(head);
        let keep = PageFlags(hf.0 & 0x0fff_ffff).without(PageFlags::HEAD);
        let mappers: Vec<(u32, u64)> = self.owners.mappers(id).collect();
        let private = hf.contains(PageFlags::PRIVATE);
        let cache = rec.kind.in_page_cache() && !rec.orphan;
        // Each mapping becomes one PTE per page.
        let per_page_maps = mappers.len() as u32;
        for (pid, vpn) in &mappers {
            self.owners.rmap.remove(&(id, *pid, *vpn));
            self.owners.processes[*pid as usize].table.remove(vpn);
        }
        if cache {
            self.owners.files[rec.owner as usize]
                .pages
                .remove(&rec.index);
        }
        let mut ids = Vec::with_capacity(nr as usize);
        for i in 0..nr {
            let pfn = head.plus(i);
            let pid = if i == 0 {
                id
            } else {
                let stamp = rec.stamp;
                let pid = self.owners.insert_record(FolioRec {
                    pfn,
                    order: Order(0),
                    index: rec.index + i,
                    stamp,
                    stamp_offset: rec.stamp_offset + i as u32,
                    ..rec
                });
                self.mem.set_flags(pfn, PageFlags::EMPTY);
                pid
            };
            let mut flags = keep.with_order(0);
            if i > 0 {
                flags = flags.without(PageFlags::PRIVATE);
            }
            self.mem.set_flags(pfn, flags);
            let refs = per_page_maps + cache as u32 + (i == 0 && private) as u32 + 1;
            self.mem.set_refcount(pfn, refs);
            self.mem.set_mapcount(pfn, per_page_maps);
            self.mem.set_owner(pfn, crate::memmap::OwnerRef(pid.0));
            ids.push(pid);
        }
        let first = self.owners.folio_mut(id);
        first.order = Order(0);
        for (i, pid) in ids.iter().enumerate() {
            for (p, vpn) in &mappers {
                let v = vpn + i as u64;
                self.owners.rmap.insert((*pid, *p, v));
                self.owners.processes[*p as usize].table.insert(v, *pid);
            }
            if cache {
                self.owners.files[rec.owner as usize]
                    .pages
                    .insert(rec.index + i as u64, *pid);
            }
        }
        // try_split_folio(): the tail pieces are queued first, then the head piece.
        list.extend(&ids[1..]);
        list.push(ids[0]);
        if rec.order.0 == HPAGE_PMD_ORDER {
            self.vmstat.thp_split_page += 1;
        }
        true
    }
}

/// Destinations from a private pool of isolated free blocks kept at their buddy order, as
/// compaction keeps `cc->freepages[order]` since Linux 6.9 (seed 002).
///
/// `get_new_folio` mirrors `compaction_alloc()` (a block of exactly the source's order,
/// splitting a larger one like the buddy allocator); `put_new_folio` mirrors
/// `compaction_free()`: the block returns to the pool only if dropping our reference frees
/// it — someone who took a speculative reference meanwhile frees it to the buddy allocator
/// when they let go (the refcount rule of seed 002's review).
#[derive(Clone, Debug, Default)]
pub struct FreePagesTarget {
    /// Free blocks by order.
    pub lists: [Vec<Pfn>; crate::units::NR_PAGE_ORDERS],
    /// Pages in the pool (`cc->nr_freepages`).
    pub nr_freepages: u64,
    /// Destinations handed back while someone else held a reference: (pfn, order).
    pub lost: Vec<(Pfn, Order)>,
}

impl FreePagesTarget {
    /// Takes `count` free blocks of `order` from the buddy allocator (ignoring watermarks)
    /// into the pool. Returns how many it got.
    pub fn fill(&mut self, m: &mut Machine, order: Order, count: u64) -> u64 {
        use crate::gfp::{AllocFlags, Gfp};
        let (ac, _) = m.prepare_alloc(Gfp::GFP_HIGHUSER_MOVABLE, crate::units::NodeId(0));
        let mut got = 0;
        for _ in 0..count {
            let Some(p) = m.get_page_from_freelist(
                Gfp::GFP_HIGHUSER_MOVABLE,
                order,
                AllocFlags::NO_WATERMARKS,
                &ac,
            ) else {
                break;
            };
            // Isolated free pages carry no reference and no state.
            m.mem.clear_block(p, order);
            self.lists[order.idx()].push(p);
            self.nr_freepages += order.nr_pages();
            got += 1;
        }
        got
    }

    /// Mirrors `release_free_list()`: every pooled block back to the buddy allocator.
    pub fn release(&mut self, m: &mut Machine) {
        for (o, list) in self.lists.iter_mut().enumerate() {
            for p in list.drain(..) {
                m.mem.prep_allocated(p, Order(o as u8), false);
                m.free_pages(p, Order(o as u8));
            }
        }
        self.nr_freepages = 0;
    }
}

/// The per-order part of `compaction_alloc()`: takes a block of at least `order` from
/// isolated free lists kept per order (the smallest that fits) and puts what is left
/// above `order` back, split as `expand()` would. The caller prepares the page.
pub(crate) fn take_from_order_lists(
    lists: &mut [Vec<Pfn>; crate::units::NR_PAGE_ORDERS],
    order: Order,
) -> Option<Pfn> {
    let start =
        (order.0..=crate::units::MAX_PAGE_ORDER).find(|o| !lists[*o as usize].is_empty())?;
    let p = lists[start as usize].pop().expect("non-empty");
    let mut o = start;
    while o > order.0 {
        o -= 1;
        lists[o as usize].push(p.plus(1 << o));
    }
    Some(p)
}

impl MigrationTarget for FreePagesTarget {
    fn get_new_folio(&mut self, m: &mut Machine, _src: Pfn, order: Order) -> Option<Pfn> {
        let p = take_from_order_lists(&mut self.lists, order)?;
        self.nr_freepages -= order.nr_pages();
        m.mem.prep_allocated(p, order, order.0 > 0);
        Some(p)
    }

    fn put_new_folio(&mut self, m: &mut Machine, dst: Pfn, order: Order) {
        let rc = m.mem.refcount(dst);
        assert!(rc >= 1, "{dst:?} handed back without its reference");
        m.mem.set_refcount(dst, rc - 1);
        if rc == 1 {
            m.mem.clear_block(dst, order);
            self.lists[order.idx()].push(dst);
            self.nr_freepages += order.nr_pages();
        } else {
            self.lost.push((dst, order));
        }
    }
}

impl Machine {
    /// Takes a speculative reference on a page no owner holds (a scanner's
    /// `get_page_unless_zero()` on a page in flight).
    pub fn get_page_unless_zero(&mut self, pfn: Pfn) -> bool {
        let rc = self.mem.refcount(pfn);
        if rc == 0 {
            return false;
        }
        self.mem.set_refcount(pfn, rc + 1);
        true
    }

    /// Drops a reference on a page no owner holds; the last one frees it (`put_page()`).
    pub fn put_page(&mut self, pfn: Pfn, order: Order) {
        let rc = self.mem.refcount(pfn);
        assert!(rc > 0, "put_page on a free page");
        if rc == 1 {
            self.free_pages(pfn, order);
        } else {
            self.mem.set_refcount(pfn, rc - 1);
        }
    }
}
