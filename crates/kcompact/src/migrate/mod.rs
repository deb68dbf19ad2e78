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
//!
//! The files follow the kernel's split:
//! - this file: `migrate_pages()`, `migrate_pages_sync()`, `migrate_pages_batch()`,
//!   `putback_movable_pages()`, the expected refcount, the results and counters;
//! - `unmap_move`: one folio's unmap and move phases, driver pages, the undo paths;
//! - [`target`]: `MigrationTarget` (`get_new_folio` / `put_new_folio`) and
//!   `alloc_migration_target()`;
//! - [`mode`]: `enum migrate_mode` and `enum migrate_reason` (types only).
//!
//! Elsewhere, where the kernel has them: LRU isolation and putback in
//! [`crate::reclaim::lru`], `filemap_release_folio()` in [`crate::owners::file`], folio
//! splitting in [`crate::owners::huge_memory`], `get_page_unless_zero()` / `put_page()` in
//! [`crate::owners::pin`], and compaction's target in [`crate::compaction::free_scan`].

pub mod mode;
pub mod target;
mod unmap_move;

use crate::event::VmEvent;
pub use mode::{MigrateMode, MigrateReason};
pub use target::{AllocTarget, MigrationTarget};
use unmap_move::Unmapped;

use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::owners::process::HPAGE_PMD_ORDER;
use crate::owners::table::{FolioId, FolioKind, FolioRec};

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
        self.vmstat[VmEvent::PgmigrateSuccess] += stats.nr_succeeded;
        self.vmstat[VmEvent::PgmigrateFail] += stats.nr_failed_pages;
        self.vmstat[VmEvent::ThpMigrationSuccess] += stats.nr_thp_succeeded;
        self.vmstat[VmEvent::ThpMigrationFail] += stats.nr_thp_failed;
        self.vmstat[VmEvent::ThpMigrationSplit] += stats.nr_thp_split;
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
        // As the kernel warns: a synchronous batch is one folio (migrate_pages_sync()).
        debug_assert!(
            mode == MigrateMode::Async || from.len() <= 1,
            "a {mode:?} batch of {} folios",
            from.len()
        );
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
                let rec = self.owners.folio(id);
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
                let rec = self.owners.folio(u.src);
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
}
