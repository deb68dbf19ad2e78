//! The LRU lists: inactive and active anonymous and file lists and the unevictable list,
//! per node, with per-zone page counts.
//!
//! Mirrors `struct lruvec` (one per node: no memory cgroups), `folio_lru_list()`,
//! `lruvec_add_folio()` / `lruvec_del_folio()` and the `NR_ZONE_*_ANON/FILE` and
//! `NR_ZONE_UNEVICTABLE` counters. A list holds `(folio, seq)` entries; a folio's record
//! keeps the seq of its one live entry, and an entry whose folio is gone, was re-queued, is
//! off the LRU, or now belongs on another list is stale and skipped (dropped when met). So
//! taking a folio off its list is O(1) — the flag and the counters change — and the list
//! is swept of stale entries when they outnumber the live ones.
//!
//! DEVIATION(linux): classic two-list LRU, not MGLRU (the default of some distributions);
//! the model keeps one list set per node (no memory cgroups).

use crate::event::VmEvent;
use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::mmzone::{lru_list_of, LruList};
use crate::owners::table::FolioId;
use crate::units::{NodeId, Pfn};

impl Machine {
    /// True if the list entry `(id, seq)` of `lru` is the folio's live entry.
    #[inline]
    pub(crate) fn lru_entry_live(&self, lru: LruList, id: FolioId, seq: u32) -> bool {
        match self.owners.get(id) {
            Some(rec) => rec.lru_seq == seq && lru_list_of(self.mem.flags(rec.pfn)) == Some(lru),
            None => false,
        }
    }

    /// Moves the per-zone LRU counts of a folio of `nr` pages at `pfn` whose head flags
    /// change from `old` to `new` (`update_lru_size()`).
    pub(crate) fn lru_count(&mut self, pfn: Pfn, nr: u64, old: PageFlags, new: PageFlags) {
        let (a, b) = (lru_list_of(old), lru_list_of(new));
        if a == b {
            return;
        }
        let zi = self.page_zone(pfn).expect("an LRU folio lies in a zone");
        let z = &mut self.zones[zi.idx()];
        if let Some(a) = a {
            z.nr_lru[a.idx()] = z.nr_lru[a.idx()]
                .checked_sub(nr)
                .expect("LRU page count went negative");
        }
        if let Some(b) = b {
            z.nr_lru[b.idx()] += nr;
        }
    }

    /// Queues folio `id` on the list its flags name, at the head (`lruvec_add_folio()`)
    /// or at the tail (`lruvec_add_folio_tail()`); its earlier entry goes stale.
    pub(crate) fn lru_push(&mut self, id: FolioId, tail: bool) {
        let pfn = self.owners.folio(id).pfn;
        let Some(lru) = lru_list_of(self.mem.flags(pfn)) else {
            return;
        };
        let node = self
            .zone(self.page_zone(pfn).expect("LRU folio in a zone"))
            .node;
        self.reclaim.lru_seq = self.reclaim.lru_seq.wrapping_add(1);
        let seq = self.reclaim.lru_seq;
        self.owners.set_lru_seq(id, seq);
        let list = &mut self.node_data_mut(node).lruvec.lists[lru.idx()];
        if tail {
            list.push_back((id, seq));
        } else {
            list.push_front((id, seq));
        }
        if list.len() > 4096 && list.len() > 2 * self.node_lru_pages(node, lru) as usize {
            self.sweep_lru(node, lru);
        }
    }

    /// Drops the stale entries of one list.
    fn sweep_lru(&mut self, node: NodeId, lru: LruList) {
        let mut list = std::mem::take(&mut self.node_data_mut(node).lruvec.lists[lru.idx()]);
        list.retain(|(id, seq)| self.lru_entry_live(lru, *id, *seq));
        self.node_data_mut(node).lruvec.lists[lru.idx()] = list;
    }

    /// Sets a folio's head flags, moving it between lists as they say: the counts follow,
    /// and a folio that lands on another list is queued at its head.
    pub(crate) fn folio_set_lru_flags(&mut self, id: FolioId, new: PageFlags) {
        let rec = self.owners.folio(id);
        let old = self.mem.flags(rec.pfn);
        self.mem.set_flags(rec.pfn, new);
        self.lru_count(rec.pfn, rec.order.nr_pages(), old, new);
        if lru_list_of(old) != lru_list_of(new) {
            self.lru_push(id, false);
        }
    }

    /// Pages on list `lru` of `node` in zones up to the node's highest
    /// (`lruvec_lru_size()` with every zone).
    pub fn node_lru_pages(&self, node: NodeId, lru: LruList) -> u64 {
        self.zones
            .iter()
            .filter(|z| z.node == node)
            .map(|z| z.nr_lru[lru.idx()])
            .sum()
    }

    /// Pages on list `lru` of `node` in zones up to `highest` (`lruvec_lru_size()`).
    pub fn lruvec_lru_size(
        &self,
        node: NodeId,
        lru: LruList,
        highest: crate::layout::ZoneType,
    ) -> u64 {
        self.zones
            .iter()
            .filter(|z| z.node == node && z.zone_type <= highest)
            .map(|z| z.nr_lru[lru.idx()])
            .sum()
    }

    /// A process touches the page at `vpn`: the mapping's accessed bit is set (the PTE
    /// young bit, which `folio_referenced()` reads and clears).
    pub fn touch(&mut self, pid: u32, vpn: u64) {
        if let Some((_, id)) = self.lookup(pid, vpn) {
            let pfn = self.owners.folio(id).pfn;
            self.mem.set_flag(pfn, PageFlags::YOUNG);
        }
    }

    /// Mirrors `folio_mark_accessed()` for a read through the page cache: a referenced
    /// inactive folio is activated, an unreferenced one gets PG_referenced.
    pub fn folio_mark_accessed(&mut self, id: FolioId) {
        let pfn = self.owners.folio(id).pfn;
        let f = self.mem.flags(pfn);
        if !f.contains(PageFlags::REFERENCED) {
            self.mem.set_flag(pfn, PageFlags::REFERENCED);
        } else if f.contains(PageFlags::LRU)
            && !f.intersects(PageFlags::ACTIVE | PageFlags::UNEVICTABLE)
        {
            self.folio_set_lru_flags(id, f.without(PageFlags::REFERENCED).with(PageFlags::ACTIVE));
            self.vmstat[VmEvent::Pgactivate] += self.owners.folio(id).order.nr_pages();
        } else {
            // Active or isolated already: folio_activate() has nothing to do.
        }
    }
}

impl Machine {
    /// Adds `nr` pages (negative: removes) to NR_ISOLATED_ANON or NR_ISOLATED_FILE by the
    /// folio's LRU type (`node_stat_mod_folio(folio, NR_ISOLATED_ANON + folio_is_file_lru(folio))`).
    pub(crate) fn account_isolated(&mut self, pfn: Pfn, nr: i64) {
        let file = !self.mem.flags(pfn).contains(PageFlags::SWAPBACKED);
        let c = if file {
            &mut self.vmstat[VmEvent::NrIsolatedFile]
        } else {
            &mut self.vmstat[VmEvent::NrIsolatedAnon]
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
}

impl Machine {
    /// Puts every LRU list of every node in a random order drawn from `rng`. A model
    /// utility for a machine loaded from a snapshot: a live kernel's lists are in the order
    /// folios were added and rotated over its uptime, which no file shows, and reclaim takes
    /// them from the tail; the loader adds them in pfn order, which would make reclaim free
    /// memory from the lowest pfns up.
    pub fn shuffle_lru_lists(&mut self, rng: &mut crate::rng::SimRng) {
        for node in self.nodes.iter_mut() {
            for list in node.lruvec.lists.iter_mut() {
                list.make_contiguous();
                rng.shuffle(list.as_mut_slices().0);
            }
        }
    }
}
