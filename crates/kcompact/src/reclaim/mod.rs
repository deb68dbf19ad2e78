//! Page reclaim: the LRU lists, `shrink_node()` and its parts, direct reclaim, kswapd,
//! swap for anonymous memory, and `drop_caches`.
//!
//! Mirrors mm/vmscan.c (classic LRU): [`Machine::shrink_node`] splits the work over the
//! lists (`get_scan_count()`), ages the active lists (`shrink_active_list()`) and frees
//! from the tails of the inactive lists (`shrink_inactive_list()` →
//! `shrink_folio_list()`): referenced folios are kept or activated, dirty file folios are
//! written back first, anonymous folios go to swap when there is swap, mapped folios are
//! unmapped, and a folio is freed only when nothing but its owner's references remain.
//! Reclaim frees real owners' pages: page cache leaves its file, anonymous memory leaves
//! its process for a swap entry the process faults back in (with its data).
//!
//! - [`lru`]: the lists and their counts.
//! - [`kswapd`]: the per-node daemon (`wakeup_kswapd()`, `balance_pgdat()`).
//! - [`swap`]: swap entries, `add_to_swap()`, swap-in.
//! - this file: the scan control, `shrink_node()`, `try_to_free_pages()`, `drop_caches`.

pub mod kswapd;
pub mod lru;
pub mod swap;

use crate::buddy::watermark::zone_watermark_ok;
use crate::event::Tracepoint;
use crate::event::VmEvent;
use crate::gfp::{AllocFlags, Gfp};
use crate::layout::ZoneType;
use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::mmzone::LruList;
use crate::owners::table::{FolioId, FolioKind};
use crate::units::{NodeId, Order, Pfn, ZoneIdx, PAGE_ALLOC_COSTLY_ORDER};

/// `SWAP_CLUSTER_MAX`: the reclaim batch.
pub const SWAP_CLUSTER_MAX: u64 = 32;
/// `DEF_PRIORITY`: scan `1/2^12` of each list first.
pub const DEF_PRIORITY: i32 = 12;
/// `MAX_RECLAIM_RETRIES`.
pub const MAX_RECLAIM_RETRIES: u32 = 16;

/// Mirrors `struct scan_control`.
#[derive(Clone, Copy, Debug)]
pub struct ScanControl {
    /// `nr_to_reclaim`.
    pub nr_to_reclaim: u64,
    /// `order`: the allocation order reclaim works for.
    pub order: u8,
    /// `priority`: scan `1/2^priority` of each list.
    pub priority: i32,
    /// `reclaim_idx`: the highest zone whose pages are worth freeing.
    pub reclaim_idx: ZoneType,
    /// `gfp_mask`.
    pub gfp: Gfp,
    /// `may_writepage`.
    pub may_writepage: bool,
    /// `may_unmap`.
    pub may_unmap: bool,
    /// `may_swap`.
    pub may_swap: bool,
    /// kswapd rather than direct reclaim (`current_is_kswapd()`).
    pub is_kswapd: bool,
    /// `compaction_ready`: a costly request's zone is ready for compaction.
    pub compaction_ready: bool,
    /// `lumpy_reclaim_mode` (Linux before 3.5, `reclaim_mode=lumpy`): this pass takes the
    /// LRU pages around each tag page in its order-aligned block and ignores references.
    pub lumpy: bool,
    /// `nr_scanned`.
    pub nr_scanned: u64,
    /// `nr_reclaimed`.
    pub nr_reclaimed: u64,
}

impl ScanControl {
    /// A scan control for direct reclaim (`try_to_free_pages()`).
    pub fn direct(gfp: Gfp, order: u8, reclaim_idx: ZoneType) -> ScanControl {
        ScanControl {
            nr_to_reclaim: SWAP_CLUSTER_MAX,
            order,
            priority: DEF_PRIORITY,
            reclaim_idx,
            gfp,
            may_writepage: true,
            may_unmap: true,
            may_swap: true,
            is_kswapd: false,
            compaction_ready: false,
            lumpy: false,
            nr_scanned: 0,
            nr_reclaimed: 0,
        }
    }
}

/// What `folio_check_references()` decides.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FolioRef {
    Activate,
    Keep,
    Reclaim,
    ReclaimClean,
}

/// The four evictable lists in `get_scan_count()`'s order.
const EVICTABLE: [LruList; 4] = [
    LruList::InactiveAnon,
    LruList::ActiveAnon,
    LruList::InactiveFile,
    LruList::ActiveFile,
];

impl Machine {
    /// Mirrors `can_reclaim_anon_pages()`: anonymous memory can go only where there is swap.
    pub fn can_reclaim_anon_pages(&self) -> bool {
        self.swap_free_pages() > 0
    }

    /// Mirrors `zone_reclaimable_pages()`: file LRU pages, and anonymous ones with swap.
    pub fn zone_reclaimable_pages(&self, zi: ZoneIdx) -> u64 {
        let z = self.zone(zi);
        let mut n = z.nr_lru[LruList::InactiveFile.idx()] + z.nr_lru[LruList::ActiveFile.idx()];
        if self.can_reclaim_anon_pages() {
            n += z.nr_lru[LruList::InactiveAnon.idx()] + z.nr_lru[LruList::ActiveAnon.idx()];
        }
        n
    }

    /// Mirrors `inactive_is_low()`: the inactive list is smaller than the active one by
    /// more than `sqrt(10 × size in GiB)`.
    pub fn inactive_is_low(&self, node: NodeId, inactive: LruList, reclaim_idx: ZoneType) -> bool {
        let active = if inactive.is_file() {
            LruList::ActiveFile
        } else {
            LruList::ActiveAnon
        };
        let i = self.lruvec_lru_size(node, inactive, reclaim_idx);
        let a = self.lruvec_lru_size(node, active, reclaim_idx);
        let gb = (i + a) >> (30 - crate::units::PAGE_SHIFT);
        let ratio = if gb > 0 {
            crate::buddy::watermark::int_sqrt(10 * gb)
        } else {
            1
        };
        i * ratio < a
    }

    /// Mirrors `get_scan_count()`: how many pages of each evictable list to scan at this
    /// priority — file only without swap or while inactive file pages are plentiful
    /// (`cache_trim_mode`), otherwise split by `vm.swappiness`.
    ///
    /// DEVIATION(linux): the anon/file split is swappiness alone; Linux also weighs the
    /// recent cost of refaults and rotations per list (`lruvec->anon_cost/file_cost`).
    fn get_scan_count(&self, node: NodeId, sc: &ScanControl) -> [u64; 4] {
        let can_anon = sc.may_swap && self.can_reclaim_anon_pages();
        let inactive_file = self.lruvec_lru_size(node, LruList::InactiveFile, sc.reclaim_idx);
        let cache_trim = (inactive_file >> sc.priority) > 0
            && !self.inactive_is_low(node, LruList::InactiveFile, sc.reclaim_idx);
        let swappiness = self.config.swappiness as u64;
        let (ap, fp) = if !can_anon || cache_trim || swappiness == 0 {
            (0, 1)
        } else {
            (swappiness, 200 - swappiness)
        };
        let mut out = [0u64; 4];
        for (i, lru) in EVICTABLE.iter().enumerate() {
            let size = self.lruvec_lru_size(node, *lru, sc.reclaim_idx);
            let mut scan = size >> sc.priority;
            if scan == 0 && sc.priority == 0 {
                scan = size;
            }
            let share = if lru.is_file() { fp } else { ap };
            out[i] = (scan * share).div_ceil(ap + fp);
        }
        out
    }

    /// Mirrors `shrink_node()`: [`Machine::shrink_lruvec`] again while
    /// [`Machine::should_continue_reclaim`] says reclaim/compaction needs more free pages.
    pub fn shrink_node(&mut self, node: NodeId, sc: &mut ScanControl) {
        let mut reclaimable = false;
        loop {
            let before = sc.nr_reclaimed;
            self.shrink_lruvec(node, sc);
            let nr_node_reclaimed = sc.nr_reclaimed - before;
            reclaimable |= nr_node_reclaimed > 0;
            if !self.should_continue_reclaim(node, nr_node_reclaimed, sc) {
                break;
            }
        }
        if reclaimable {
            self.node_data_mut(node).kswapd.failures = 0;
        }
    }

    /// Mirrors `in_reclaim_compaction()`: reclaim works for compaction when compaction
    /// may run for this mask and the order is costly, or non-zero under pressure
    /// (priority below `DEF_PRIORITY - 2`). Never in lumpy mode (before 2.6.37 reclaim
    /// did not work for compaction).
    fn in_reclaim_compaction(&self, sc: &ScanControl) -> bool {
        !sc.lumpy
            && self.config.compaction
            && sc.gfp.contains(Gfp::IO)
            && sc.order > 0
            && (sc.order > PAGE_ALLOC_COSTLY_ORDER || sc.priority < DEF_PRIORITY - 2)
    }

    /// Mirrors `should_continue_reclaim()`: in reclaim/compaction mode, go on reclaiming
    /// while the last pass reclaimed something, no zone up to `reclaim_idx` would already
    /// allocate the order at its min watermark or be suitable for compaction, and the
    /// inactive lists (anonymous ones only with swap) hold more than `compact_gap(order)`.
    fn should_continue_reclaim(
        &mut self,
        node: NodeId,
        nr_reclaimed: u64,
        sc: &ScanControl,
    ) -> bool {
        if !self.in_reclaim_compaction(sc) || nr_reclaimed == 0 {
            return false;
        }
        let zones: Vec<ZoneIdx> = (0..self.zones.len())
            .map(|i| ZoneIdx(i as u8))
            .filter(|zi| {
                let z = self.zone(*zi);
                z.node == node && z.zone_type <= sc.reclaim_idx && z.managed_pages > 0
            })
            .collect();
        for zi in zones {
            let z = self.zone(zi);
            let min = z.min_wmark_pages();
            if zone_watermark_ok(
                z,
                Order(sc.order),
                min,
                sc.reclaim_idx,
                AllocFlags::default(),
                self.config.config_cma,
            ) {
                return false;
            }
            if self.compaction_suitable(zi, sc.order as i32, min, sc.reclaim_idx) {
                return false;
            }
        }
        let mut inactive = self.node_lru_pages(node, LruList::InactiveFile);
        if self.can_reclaim_anon_pages() {
            inactive += self.node_lru_pages(node, LruList::InactiveAnon);
        }
        inactive > crate::compaction::compact_gap(sc.order as i32)
    }

    /// Mirrors `shrink_lruvec()`: scans the lists in batches of `SWAP_CLUSTER_MAX` until
    /// the targets are scanned or enough is reclaimed, then ages the anonymous active list
    /// if its inactive list is low.
    ///
    /// DEVIATION(linux): no proportional rescaling of the remaining targets after
    /// `nr_to_reclaim` is met (global reclaim stops there), no slab shrinkers.
    fn shrink_lruvec(&mut self, node: NodeId, sc: &mut ScanControl) {
        let mut nr = self.get_scan_count(node, sc);
        while nr[0] > 0 || nr[2] > 0 || nr[3] > 0 {
            for (i, lru) in EVICTABLE.iter().enumerate() {
                if nr[i] == 0 {
                    continue;
                }
                let n = nr[i].min(SWAP_CLUSTER_MAX);
                nr[i] -= n;
                self.shrink_list(node, *lru, n, sc);
            }
            if sc.nr_reclaimed >= sc.nr_to_reclaim {
                break;
            }
        }
        if sc.may_swap
            && self.can_reclaim_anon_pages()
            && self.inactive_is_low(node, LruList::InactiveAnon, sc.reclaim_idx)
        {
            self.shrink_active_list(node, LruList::ActiveAnon, SWAP_CLUSTER_MAX, sc);
        }
    }

    /// Mirrors `shrink_list()`: an active list is aged only when its inactive list is low.
    fn shrink_list(&mut self, node: NodeId, lru: LruList, n: u64, sc: &mut ScanControl) {
        if lru.is_active() {
            let inactive = if lru.is_file() {
                LruList::InactiveFile
            } else {
                LruList::InactiveAnon
            };
            if self.inactive_is_low(node, inactive, sc.reclaim_idx) {
                self.shrink_active_list(node, lru, n, sc);
            }
            return;
        }
        self.shrink_inactive_list(node, lru, n, sc);
    }

    /// Takes live entries from the tail of `lru` until `n` pages are taken; folios of
    /// zones above `reclaim_idx` are skipped (requeued at the head), like
    /// `isolate_lru_folios()`. Returns the folios and the pages scanned.
    fn take_from_tail(
        &mut self,
        node: NodeId,
        lru: LruList,
        n: u64,
        reclaim_idx: ZoneType,
    ) -> (Vec<FolioId>, u64) {
        let mut taken = Vec::new();
        let mut skipped = Vec::new();
        let mut scanned = 0;
        let mut budget = n * 4 + 64;
        while scanned < n && budget > 0 {
            budget -= 1;
            let Some(entry) = self.lru_pop_tail(node, lru) else {
                break;
            };
            let Some(id) = entry.filter(|id| self.lru_entry_live(lru, *id)) else {
                // A ghost entry, or a folio that belongs on no list or another one.
                budget += 1;
                continue;
            };
            let rec = self.owners.folio(id);
            let zi = self.page_zone(rec.pfn).expect("LRU folio in a zone");
            if self.zone(zi).zone_type > reclaim_idx {
                skipped.push(id);
                continue;
            }
            scanned += rec.order.nr_pages();
            taken.push(id);
        }
        for id in skipped.into_iter().rev() {
            self.lru_add_head(node, lru, id);
        }
        (taken, scanned)
    }

    /// Mirrors `shrink_active_list()`: folios from the tail of an active list move to the
    /// head of the inactive list, their accessed bits cleared.
    ///
    /// DEVIATION(linux): the model has no VM_EXEC mappings, which Linux keeps active.
    fn shrink_active_list(&mut self, node: NodeId, lru: LruList, n: u64, sc: &mut ScanControl) {
        let (taken, scanned) = self.take_from_tail(node, lru, n, sc.reclaim_idx);
        self.vmstat[VmEvent::Pgrefill] += scanned;
        for id in taken {
            let rec = self.owners.folio(id);
            let f = self.mem.flags(rec.pfn);
            self.folio_set_lru_flags(id, f.without(PageFlags::ACTIVE | PageFlags::YOUNG));
            self.vmstat[VmEvent::Pgdeactivate] += rec.order.nr_pages();
        }
    }

    /// Mirrors `shrink_inactive_list()`: isolates a batch from the tail, runs
    /// `shrink_folio_list()` on it and puts the survivors back (activated ones on the
    /// active list).
    ///
    /// With `reclaim_mode=lumpy` it is Linux 2.6.35's: the pass may be lumpy
    /// ([`Machine::set_lumpy_reclaim_mode`]), isolating whole blocks
    /// ([`Machine::isolate_lru_pages_lumpy`]), and a direct reclaimer that freed less than
    /// it took goes through the list again synchronously ([`Machine::lumpy_sync_pass`]).
    fn shrink_inactive_list(&mut self, node: NodeId, lru: LruList, n: u64, sc: &mut ScanControl) {
        self.set_lumpy_reclaim_mode(sc);
        let (taken, scanned) = if sc.lumpy {
            self.isolate_lru_pages_lumpy(node, lru, n, sc)
        } else {
            let (taken, scanned) = self.take_from_tail(node, lru, n, sc.reclaim_idx);
            for id in &taken {
                let ok = self.folio_isolate_lru(*id);
                debug_assert!(ok, "a live LRU entry isolates");
            }
            (taken, scanned)
        };
        // What was taken, to find the survivors of the first pass by (folio, stamp).
        let marks: Vec<(FolioId, u32)> = if sc.lumpy && !sc.is_kswapd {
            taken
                .iter()
                .map(|id| (*id, self.owners.folio(*id).stamp))
                .collect()
        } else {
            Vec::new()
        };
        sc.nr_scanned += scanned;
        if sc.is_kswapd {
            self.vmstat[VmEvent::PgscanKswapd] += scanned;
        } else {
            self.vmstat[VmEvent::PgscanDirect] += scanned;
        }
        if lru.is_file() {
            self.vmstat[VmEvent::PgscanFile] += scanned;
        } else {
            self.vmstat[VmEvent::PgscanAnon] += scanned;
        }
        let mut reclaimed = self.shrink_folio_list(taken, sc);
        if reclaimed < scanned && !marks.is_empty() {
            reclaimed += self.lumpy_sync_pass(&marks, sc);
        }
        sc.nr_reclaimed += reclaimed;
        if sc.is_kswapd {
            self.vmstat[VmEvent::PgstealKswapd] += reclaimed;
        } else {
            self.vmstat[VmEvent::PgstealDirect] += reclaimed;
        }
        if lru.is_file() {
            self.vmstat[VmEvent::PgstealFile] += reclaimed;
        } else {
            self.vmstat[VmEvent::PgstealAnon] += reclaimed;
        }
    }

    /// Mirrors `set_lumpy_reclaim_mode()` of Linux 2.6.35's `shrink_inactive_list()`: with
    /// `reclaim_mode=lumpy` a pass for an order above `PAGE_ALLOC_COSTLY_ORDER` is lumpy
    /// at once, one for a smaller non-zero order only once the priority has dropped below
    /// `DEF_PRIORITY - 2`.
    fn set_lumpy_reclaim_mode(&self, sc: &mut ScanControl) {
        sc.lumpy = self.config.reclaim_lumpy
            && sc.order > 0
            && (sc.order > crate::units::PAGE_ALLOC_COSTLY_ORDER || sc.priority < DEF_PRIORITY - 2);
    }

    /// Mirrors Linux 2.6.35's `isolate_lru_pages()` in lumpy mode (`ISOLATE_BOTH`): each
    /// tag folio taken from the tail of `lru` brings the LRU folios of its block of
    /// `sc.order` pages with it — active or inactive, file or anonymous, each counted as
    /// scanned — and the tags go on until `n` pages are scanned. Free pages, pages no LRU
    /// holds, unevictable folios, pages of another zone and, without swap space,
    /// anonymous folios outside the swap cache are passed over; the walk goes on to the
    /// block's end whatever it meets (stopping at the first failure came in 2.6.37).
    /// Active folios taken are deactivated (`clear_active_flags()`). Returns the folios,
    /// isolated, and the pages scanned.
    fn isolate_lru_pages_lumpy(
        &mut self,
        node: NodeId,
        lru: LruList,
        n: u64,
        sc: &ScanControl,
    ) -> (Vec<FolioId>, u64) {
        let mut taken = Vec::new();
        let mut scanned = 0;
        let block = 1u64 << sc.order;
        while scanned < n {
            let (tag, s) = self.take_from_tail(node, lru, 1, sc.reclaim_idx);
            let Some(&tag) = tag.first() else {
                break;
            };
            let ok = self.folio_isolate_lru(tag);
            debug_assert!(ok, "a live LRU entry isolates");
            scanned += s;
            taken.push(tag);
            let rec = self.owners.folio(tag);
            let zone = self.page_zone(rec.pfn);
            let start = rec.pfn.0 & !(block - 1);
            let mut pfn = start;
            while pfn < start + block {
                let p = Pfn(pfn);
                pfn += 1;
                if p.0 >= rec.pfn.0 && p.0 < rec.pfn.0 + rec.order.nr_pages() {
                    continue;
                }
                if self.page_zone(p) != zone {
                    continue;
                }
                let f = self.mem.flags(p);
                if f.contains(PageFlags::BUDDY) {
                    pfn = p.0 + (1u64 << f.order());
                    continue;
                }
                // A compound tail is not on an LRU list itself; its head is.
                let Some(id) = self
                    .folio_of(p)
                    .filter(|id| self.owners.folio(*id).pfn == p)
                else {
                    continue;
                };
                let r = self.owners.folio(id);
                pfn = p.0 + r.order.nr_pages();
                if !f.contains(PageFlags::LRU) || f.contains(PageFlags::UNEVICTABLE) {
                    continue;
                }
                if r.kind == FolioKind::Anon
                    && !f.contains(PageFlags::SWAPCACHE)
                    && !self.can_reclaim_anon_pages()
                {
                    continue;
                }
                if !self.folio_isolate_lru(id) {
                    continue;
                }
                if f.contains(PageFlags::ACTIVE) {
                    self.mem.clear_flag(p, PageFlags::ACTIVE);
                    self.vmstat[VmEvent::Pgdeactivate] += r.order.nr_pages();
                }
                scanned += r.order.nr_pages();
                taken.push(id);
            }
        }
        (taken, scanned)
    }

    /// Mirrors the second pass of Linux 2.6.35's `shrink_inactive_list()` under lumpy
    /// reclaim, for a direct reclaimer that freed less than it took: it sleeps
    /// (`congestion_wait(BLK_RW_ASYNC, HZ/10)`: until writes in flight complete, or the
    /// full 100 ms when there are none), deactivates the survivors (`clear_active_flags()`)
    /// and runs `shrink_page_list()` on them again with PAGEOUT_IO_SYNC, waiting for each
    /// one under writeback (`wait_on_page_writeback()`): synchronous lumpy writeback.
    /// Returns the pages freed. Only the disk moves while it waits, as in
    /// [`Machine::reclaim_throttle_writeback`].
    fn lumpy_sync_pass(&mut self, marks: &[(FolioId, u32)], sc: &mut ScanControl) -> u64 {
        if self.reclaim_throttle_writeback() == 0 {
            self.clock.now_ns += 100_000_000;
            self.clock.last_alloc_ns += 100_000_000;
        }
        let mut list = Vec::new();
        for &(id, stamp) in marks {
            // Freed in the first pass (the id may be another folio's by now) or not back
            // on an LRU list: nothing to do.
            if self.owners.get(id).is_none_or(|r| r.stamp != stamp) || !self.folio_isolate_lru(id) {
                continue;
            }
            let rec = self.owners.folio(id);
            if self.mem.flags(rec.pfn).contains(PageFlags::ACTIVE) {
                self.mem.clear_flag(rec.pfn, PageFlags::ACTIVE);
                self.vmstat[VmEvent::Pgdeactivate] += rec.order.nr_pages();
            }
            list.push(id);
        }
        self.wait_on_folio_writeback(&list);
        self.shrink_folio_list(list, sc)
    }

    /// Mirrors `folio_check_references()`: a folio mapped with its accessed bit set is
    /// kept once (and marked referenced) and activated the second time or when several
    /// mappings used it; an unmapped file folio with PG_referenced is reclaimed if clean.
    ///
    /// In a lumpy pass (Linux 2.6.35's `page_check_references()`) the bits are cleared and
    /// the folio reclaimed whatever they said.
    fn folio_check_references(&mut self, id: FolioId, lumpy: bool) -> FolioRef {
        let rec = self.owners.folio(id);
        let f = self.mem.flags(rec.pfn);
        let mapped = self.mem.mapcount(rec.pfn) > 0;
        let referenced_ptes = if mapped && f.contains(PageFlags::YOUNG) {
            self.owners.mappers(id).count() as u32
        } else {
            0
        };
        let referenced_folio = f.contains(PageFlags::REFERENCED);
        self.mem
            .clear_flag(rec.pfn, PageFlags::YOUNG | PageFlags::REFERENCED);
        if f.contains(PageFlags::MLOCKED) {
            return FolioRef::Activate;
        }
        if lumpy {
            return FolioRef::Reclaim;
        }
        if referenced_ptes > 0 {
            self.mem.set_flag(rec.pfn, PageFlags::REFERENCED);
            if referenced_folio || referenced_ptes > 1 {
                return FolioRef::Activate;
            }
            return FolioRef::Keep;
        }
        if referenced_folio && !f.contains(PageFlags::SWAPBACKED) {
            return FolioRef::ReclaimClean;
        }
        FolioRef::Reclaim
    }

    /// Mirrors `shrink_folio_list()` on isolated folios: returns the pages freed; every
    /// folio not freed is put back on its LRU list (activated where the rules say so).
    ///
    /// DEVIATION(linux): dirty file folios are handed to writeback at once (the flusher
    /// `wakeup_flusher_threads()` would start) and complete after the cost model's I/O
    /// time; writeback by direct reclaim itself is, as in Linux, never done. Shmem is not
    /// swapped, and an anonymous folio mapped by more than one process stays (Linux swaps
    /// it, leaving a swap entry in each).
    fn shrink_folio_list(&mut self, list: Vec<FolioId>, sc: &mut ScanControl) -> u64 {
        let mut reclaimed = 0;
        for id in list {
            let rec = self.owners.folio(id);
            let nr = rec.order.nr_pages();
            let f = self.mem.flags(rec.pfn);
            let keep = |m: &mut Machine, activate: bool| {
                if activate {
                    m.mem.set_flag(rec.pfn, PageFlags::ACTIVE);
                    m.vmstat[VmEvent::Pgactivate] += nr;
                }
                m.folio_putback_lru(id);
            };
            if f.contains(PageFlags::LOCKED) {
                keep(self, false);
                continue;
            }
            if f.intersects(PageFlags::UNEVICTABLE | PageFlags::MLOCKED) {
                keep(self, false);
                continue;
            }
            let mapped = self.mem.mapcount(rec.pfn) > 0;
            if !sc.may_unmap && mapped {
                keep(self, false);
                continue;
            }
            if f.contains(PageFlags::WRITEBACK) {
                // Case 2/3 of shrink_folio_list(): mark it for immediate reclaim when
                // the write completes, and move on.
                if sc.is_kswapd && f.contains(PageFlags::RECLAIM) {
                    self.vmstat[VmEvent::NrVmscanImmediateReclaim] += nr;
                }
                self.mem.set_flag(rec.pfn, PageFlags::RECLAIM);
                keep(self, false);
                continue;
            }
            let refs = self.folio_check_references(id, sc.lumpy);
            match refs {
                FolioRef::Activate => {
                    keep(self, true);
                    continue;
                }
                FolioRef::Keep => {
                    keep(self, false);
                    continue;
                }
                FolioRef::Reclaim | FolioRef::ReclaimClean => {}
            }
            let anon = rec.kind == FolioKind::Anon;
            if anon && !f.contains(PageFlags::SWAPCACHE) {
                let shared = self.owners.mappers(id).count() > 1;
                if shared || !sc.may_swap || !self.add_to_swap(id) {
                    keep(self, true);
                    continue;
                }
            }
            if rec.kind == FolioKind::Shmem {
                keep(self, true);
                continue;
            }
            // try_to_unmap(): every mapping goes (anonymous ones leave swap entries).
            if self.mem.mapcount(rec.pfn) > 0 {
                self.try_to_unmap(id);
            }
            let f = self.mem.flags(rec.pfn);
            if f.contains(PageFlags::DIRTY) && (refs == FolioRef::ReclaimClean || !sc.may_writepage)
            {
                keep(self, false);
                continue;
            }
            if f.contains(PageFlags::DIRTY) && anon && self.reclaim.zram.is_some() {
                // swap_writepage() to zram completes before it returns (a synchronous
                // device): the folio is clean and freed below. A failed write (no memory
                // for the compressed copy) leaves it dirty and activates it.
                if !self.zram_write(id) {
                    keep(self, true);
                    continue;
                }
                self.vmstat[VmEvent::Pswpout] += nr;
            } else if f.contains(PageFlags::DIRTY) {
                self.mem.set_flag(rec.pfn, PageFlags::RECLAIM);
                self.start_writeback(id);
                if anon {
                    self.vmstat[VmEvent::Pswpout] += nr;
                    keep(self, false);
                } else if sc.is_kswapd {
                    self.vmstat[VmEvent::NrVmscanWrite] += nr;
                    keep(self, false);
                } else {
                    keep(self, true);
                }
                continue;
            }
            if self.remove_mapping(id) {
                reclaimed += nr;
            } else {
                keep(self, false);
            }
        }
        reclaimed
    }

    /// Mirrors `try_to_unmap()` for reclaim: removes every mapping of the folio; an
    /// anonymous folio in the swap cache leaves a swap entry in the process.
    fn try_to_unmap(&mut self, id: FolioId) {
        let mappers: Vec<(u32, u64)> = self.owners.mappers(id).collect();
        let rec = self.owners.folio(id);
        for (pid, vpn) in mappers {
            if rec.kind == FolioKind::Anon {
                // The only mapper (shared folios are not swapped) owns the swap entry;
                // after a fork and the parent's unmap it may not be the faulting process.
                self.owners.update(id, |r| {
                    r.owner = pid;
                    r.index = vpn;
                });
                self.reclaim.swap.insert(
                    (pid, vpn),
                    crate::mmzone::SwapEntry {
                        order: rec.order,
                        stamp: rec.stamp,
                        stamp_offset: rec.stamp_offset,
                        cached: Some(id),
                    },
                );
            }
            self.unmap_folio(pid, vpn);
        }
    }

    /// Mirrors `__remove_mapping()` after `filemap_release_folio()`: a clean, unmapped
    /// folio holding only its cache references and our isolation reference leaves the
    /// page cache or swap cache and is freed. False if someone else holds it (a pin, a
    /// speculative reference).
    fn remove_mapping(&mut self, id: FolioId) -> bool {
        let rec = self.owners.folio(id);
        let nr = rec.order.nr_pages();
        let f = self.mem.flags(rec.pfn);
        debug_assert!(f.contains(PageFlags::ISOLATED));
        let in_swapcache = f.contains(PageFlags::SWAPCACHE);
        let cache_refs = if (rec.kind.in_page_cache() && !rec.orphan) || in_swapcache {
            nr as u32
        } else {
            0
        };
        let private = f.contains(PageFlags::PRIVATE) as u32;
        if self.mem.mapcount(rec.pfn) > 0 || self.mem.refcount(rec.pfn) != 1 + cache_refs + private
        {
            return false;
        }
        if private == 1 {
            self.free_folio_buffers(id);
            self.mem.clear_flag(rec.pfn, PageFlags::PRIVATE);
        }
        if rec.kind.in_page_cache() && !rec.orphan {
            self.owners.files[rec.owner as usize]
                .pages
                .remove(rec.index);
            self.page_cache_nodes_release(nr);
        }
        if in_swapcache {
            self.swap_cache_forget(id);
            self.mem.clear_flag(rec.pfn, PageFlags::SWAPCACHE);
        }
        self.owners.set_orphan(id, true);
        // The cache's and the buffers' references, then our isolation reference: freed.
        self.mem
            .set_refcount(rec.pfn, self.mem.refcount(rec.pfn) - cache_refs - private);
        self.account_isolated(rec.pfn, -(nr as i64));
        self.mem.clear_flag(rec.pfn, PageFlags::ISOLATED);
        self.folio_put_refs(id, 1);
        true
    }

    /// Mirrors `try_to_free_pages()` → `do_try_to_free_pages()`: direct reclaim of
    /// `SWAP_CLUSTER_MAX` pages over the request's zones, at rising priority; for a costly
    /// order a zone ready for compaction stops it (`compaction_ready()`). Returns the
    /// progress (pages freed, or 1 if it stopped for compaction).
    pub fn try_to_free_pages(
        &mut self,
        zonelist: &[ZoneIdx],
        order: u8,
        gfp: Gfp,
        highest: ZoneType,
    ) -> u64 {
        let mut sc = ScanControl::direct(gfp, order, highest);
        self.vmstat[VmEvent::Allocstall] += 1;
        self.trace_event(|| Tracepoint::DirectReclaimBegin {
            order: order as i32,
            gfp_flags: gfp.symbolic(),
        });
        let was = self.pf_memalloc;
        self.pf_memalloc = true;
        loop {
            sc.nr_scanned = 0;
            self.shrink_zones(zonelist, &mut sc);
            if sc.nr_reclaimed >= sc.nr_to_reclaim || sc.compaction_ready {
                break;
            }
            if sc.priority == 0 {
                break;
            }
            // consider_reclaim_throttle(): no progress by priority 1 — wait for writes.
            if sc.priority == 1 && sc.nr_reclaimed == 0 {
                self.reclaim_throttle_writeback();
            }
            sc.priority -= 1;
        }
        self.pf_memalloc = was;
        let nr_reclaimed = sc.nr_reclaimed;
        self.trace_event(|| Tracepoint::DirectReclaimEnd { nr_reclaimed });
        if sc.nr_reclaimed > 0 {
            return sc.nr_reclaimed;
        }
        sc.compaction_ready as u64
    }

    /// Mirrors `shrink_zones()`: each node of the zonelist once; a costly request skips a
    /// zone ready for compaction.
    fn shrink_zones(&mut self, zonelist: &[ZoneIdx], sc: &mut ScanControl) {
        let mut last: Option<NodeId> = None;
        for &zi in zonelist {
            if self.zone(zi).zone_type > sc.reclaim_idx {
                continue;
            }
            if self.config.compaction
                && sc.order > crate::units::PAGE_ALLOC_COSTLY_ORDER
                && self.compaction_ready(zi, sc)
            {
                sc.compaction_ready = true;
                continue;
            }
            let node = self.zone(zi).node;
            if last == Some(node) {
                continue;
            }
            last = Some(node);
            self.shrink_node(node, sc);
        }
    }

    /// Mirrors `compaction_ready()`: the allocation already passes MIN, or compaction is
    /// suitable and order-0 free pages exceed HIGH plus the compaction gap.
    fn compaction_ready(&mut self, zi: ZoneIdx, sc: &ScanControl) -> bool {
        use crate::buddy::watermark::zone_watermark_ok;
        use crate::gfp::AllocFlags;
        let order = crate::units::Order(sc.order);
        let cma = self.config.config_cma;
        let z = self.zone(zi);
        if zone_watermark_ok(
            z,
            order,
            z.min_wmark_pages(),
            sc.reclaim_idx,
            AllocFlags::default(),
            cma,
        ) {
            return true;
        }
        let min = z.min_wmark_pages();
        if !self.compaction_suitable(zi, sc.order as i32, min, sc.reclaim_idx) {
            return false;
        }
        let z = self.zone(zi);
        let mark = z.high_wmark_pages() + crate::compaction::compact_gap(sc.order as i32);
        zone_watermark_ok(
            z,
            crate::units::Order(0),
            mark,
            sc.reclaim_idx,
            AllocFlags::default(),
            cma,
        )
    }

    /// Mirrors a write to `/proc/sys/vm/drop_caches`: bit 1 drops clean, unmapped,
    /// unlocked page cache of every file (`drop_pagecache_sb()` →
    /// `invalidate_mapping_pages()`); dirty, under-writeback, mapped, locked and pinned
    /// folios and anonymous memory stay. Bit 2 then shrinks the slab caches
    /// (`drop_slab()`): the unused dentries and inodes a loaded snapshot's
    /// `dentry-state` / `inode-state` count ([`Machine::drop_slab`]). Returns the
    /// page-cache pages freed.
    pub fn drop_caches(&mut self, what: u32) -> u64 {
        let mut freed = 0;
        if what & 1 != 0 {
            self.vmstat[VmEvent::DropPagecache] += 1;
            for fid in 0..self.owners.files.len() {
                let ids: Vec<FolioId> = self.owners.files[fid].pages.values().collect();
                for id in ids {
                    freed += self.mapping_evict_folio(id);
                }
            }
        }
        if what & 2 != 0 {
            self.drop_slab();
            self.vmstat[VmEvent::DropSlab] += 1;
        }
        freed
    }

    /// Mirrors `mapping_evict_folio()` (with the folio trylock of
    /// `mapping_try_invalidate()`): a clean, unmapped, unlocked cached folio that only
    /// the cache (and its buffers) holds leaves the cache and is freed.
    fn mapping_evict_folio(&mut self, id: FolioId) -> u64 {
        let rec = self.owners.folio(id);
        let f = self.mem.flags(rec.pfn);
        if f.intersects(
            PageFlags::DIRTY
                | PageFlags::WRITEBACK
                | PageFlags::LOCKED
                | PageFlags::ISOLATED
                | PageFlags::SWAPBACKED,
        ) || self.mem.mapcount(rec.pfn) > 0
        {
            return 0;
        }
        let nr = rec.order.nr_pages();
        let private = f.contains(PageFlags::PRIVATE) as u32;
        if self.mem.refcount(rec.pfn) != nr as u32 + private {
            return 0;
        }
        self.file_remove(rec.owner, rec.index);
        nr
    }
}
