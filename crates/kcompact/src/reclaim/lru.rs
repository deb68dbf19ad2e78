//! The LRU lists: inactive and active anonymous and file lists and the unevictable list,
//! per node, with per-zone page counts.
//!
//! Mirrors `struct lruvec` (one per node: no memory cgroups), `folio_lru_list()`,
//! `lruvec_add_folio()` / `lruvec_del_folio()` and the `NR_ZONE_*_ANON/FILE` and
//! `NR_ZONE_UNEVICTABLE` counters. The lists are threaded through the folio table, as
//! Linux threads them through `folio->lru`: each folio on a list has the ids of the
//! entries before and after it there (no list memory of its own). Which list a folio
//! belongs on is what its flags say ([`lru_list_of`]); a folio whose flags stop naming
//! the list it is linked on (isolated, or moved without being queued again) stays linked
//! where it was and is dropped when reclaim meets it, so taking a folio off its list is
//! O(1) — the flag and the counters change. Queueing a folio again (`lru_push`) unlinks
//! it first.
//!
//! While a snapshot is loaded, the place a folio left stays in its list as a *ghost*
//! entry, until [`Machine::shuffle_lru_lists`] has drawn the lists' order over every
//! entry, ghosts included, so the loaded lists come out in the order they always had.
//!
//! DEVIATION(linux): classic two-list LRU, not MGLRU (the default of some distributions);
//! the model keeps one list set per node (no memory cgroups).

use crate::event::VmEvent;
use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::mmzone::{lru_list_of, LruList, NR_LRU_LISTS};
use crate::owners::table::FolioId;
use crate::units::{NodeId, Pfn};

/// An LRU link naming a ghost entry (the rest is its number in [`crate::mmzone::Lruvec::ghosts`]).
const GHOST: u32 = 1 << 31;

/// A list's number in a folio's `lru` field: node × `NR_LRU_LISTS` + list.
fn list_code(node: NodeId, lru: LruList) -> u8 {
    node.0 * NR_LRU_LISTS as u8 + lru.idx() as u8
}

impl Machine {
    /// The entries before and after entry `x` of a list of `node`.
    #[inline]
    fn lru_entry_links(&self, node: NodeId, x: u32) -> (u32, u32) {
        if x & GHOST != 0 {
            self.node_data(node).lruvec.ghosts[(x & !GHOST) as usize]
        } else {
            self.owners.lru_links(FolioId(x))
        }
    }

    /// Sets the neighbours of entry `x` (linked on list `code` of `node`).
    #[inline]
    fn set_lru_entry_links(&mut self, node: NodeId, code: u8, x: u32, prev: u32, next: u32) {
        if x & GHOST != 0 {
            self.node_data_mut(node).lruvec.ghosts[(x & !GHOST) as usize] = (prev, next);
        } else {
            self.owners
                .set_lru_links(FolioId(x), Some(code), prev, next);
        }
    }

    #[inline]
    fn set_lru_prev(&mut self, node: NodeId, code: u8, x: u32, prev: u32) {
        let (_, next) = self.lru_entry_links(node, x);
        self.set_lru_entry_links(node, code, x, prev, next);
    }

    #[inline]
    fn set_lru_next(&mut self, node: NodeId, code: u8, x: u32, next: u32) {
        let (prev, _) = self.lru_entry_links(node, x);
        self.set_lru_entry_links(node, code, x, prev, next);
    }

    /// Links entry `x` at the head (`list_add()`) or the tail (`list_add_tail()`) of
    /// list `lru` of `node`.
    fn lru_link(&mut self, node: NodeId, lru: LruList, x: u32, tail: bool) {
        let code = list_code(node, lru);
        let l = self.node_data(node).lruvec.lists[lru.idx()];
        if tail {
            self.set_lru_entry_links(node, code, x, l.tail, 0);
            if l.tail == 0 {
                self.node_data_mut(node).lruvec.lists[lru.idx()].head = x;
            } else {
                self.set_lru_next(node, code, l.tail, x);
            }
            self.node_data_mut(node).lruvec.lists[lru.idx()].tail = x;
        } else {
            self.set_lru_entry_links(node, code, x, 0, l.head);
            if l.head == 0 {
                self.node_data_mut(node).lruvec.lists[lru.idx()].tail = x;
            } else {
                self.set_lru_prev(node, code, l.head, x);
            }
            self.node_data_mut(node).lruvec.lists[lru.idx()].head = x;
        }
        self.node_data_mut(node).lruvec.lists[lru.idx()].len += 1;
    }

    /// Unlinks entry `x` from list `lru` of `node` (`list_del()`).
    fn lru_unlink(&mut self, node: NodeId, lru: LruList, x: u32) {
        let code = list_code(node, lru);
        let (prev, next) = self.lru_entry_links(node, x);
        if prev == 0 {
            self.node_data_mut(node).lruvec.lists[lru.idx()].head = next;
        } else {
            self.set_lru_next(node, code, prev, next);
        }
        if next == 0 {
            self.node_data_mut(node).lruvec.lists[lru.idx()].tail = prev;
        } else {
            self.set_lru_prev(node, code, next, prev);
        }
        self.node_data_mut(node).lruvec.lists[lru.idx()].len -= 1;
        if x & GHOST == 0 {
            self.owners.set_lru_links(FolioId(x), None, 0, 0);
        }
    }

    /// Takes folio `id` off the list it is linked on, if any: while a snapshot loads a
    /// ghost entry keeps its place.
    pub(crate) fn lru_leave(&mut self, id: FolioId) {
        let Some(code) = self.owners.lru_on(id) else {
            return;
        };
        let node = NodeId(code / NR_LRU_LISTS as u8);
        let lru = LruList::ALL[(code % NR_LRU_LISTS as u8) as usize];
        if !self.reclaim.lru_ghosts {
            self.lru_unlink(node, lru, id.0);
            return;
        }
        // list_replace(): the ghost takes the folio's links.
        let (prev, next) = self.owners.lru_links(id);
        let v = &mut self.node_data_mut(node).lruvec;
        let g = GHOST | v.ghosts.len() as u32;
        assert!(v.ghosts.len() < GHOST as usize, "ghost entries fit 31 bits");
        v.ghosts.push((prev, next));
        if prev == 0 {
            v.lists[lru.idx()].head = g;
        }
        if next == 0 {
            v.lists[lru.idx()].tail = g;
        }
        if prev != 0 {
            self.set_lru_next(node, code, prev, g);
        }
        if next != 0 {
            self.set_lru_prev(node, code, next, g);
        }
        self.owners.set_lru_links(id, None, 0, 0);
    }

    /// Unlinks and returns the entry at the tail of list `lru` of `node` (a folio id, or
    /// `None` for a ghost entry), or `None` when the list is empty.
    pub(crate) fn lru_pop_tail(&mut self, node: NodeId, lru: LruList) -> Option<Option<FolioId>> {
        let x = self.node_data(node).lruvec.lists[lru.idx()].tail;
        if x == 0 {
            return None;
        }
        self.lru_unlink(node, lru, x);
        Some((x & GHOST == 0).then_some(FolioId(x)))
    }

    /// Links folio `id` (on no list) at the head of list `lru` of `node`.
    pub(crate) fn lru_add_head(&mut self, node: NodeId, lru: LruList, id: FolioId) {
        debug_assert!(self.owners.lru_on(id).is_none());
        self.lru_link(node, lru, id.0, false);
    }

    /// The entries of list `lru` of `node` from head to tail (folio ids, `None` for ghost
    /// entries).
    pub fn lru_entries(&self, node: NodeId, lru: LruList) -> LruEntries<'_> {
        LruEntries {
            m: self,
            node,
            next: self.node_data(node).lruvec.lists[lru.idx()].head,
        }
    }

    /// True if folio `id`, linked on list `lru`, belongs there by its flags (reclaim takes
    /// it; otherwise it is dropped when met).
    #[inline]
    pub(crate) fn lru_entry_live(&self, lru: LruList, id: FolioId) -> bool {
        lru_list_of(self.mem.flags(self.owners.folio_pfn(id))) == Some(lru)
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
    /// or at the tail (`lruvec_add_folio_tail()`), leaving the place it had. A folio whose
    /// flags name no list stays where it is.
    pub(crate) fn lru_push(&mut self, id: FolioId, tail: bool) {
        let pfn = self.owners.folio_pfn(id);
        let Some(lru) = lru_list_of(self.mem.flags(pfn)) else {
            return;
        };
        let node = self
            .zone(self.page_zone(pfn).expect("LRU folio in a zone"))
            .node;
        self.lru_leave(id);
        self.lru_link(node, lru, id.0, tail);
        let len = self.node_data(node).lruvec.lists[lru.idx()].len;
        if self.reclaim.lru_ghosts && len > 4096 && len > 2 * self.node_lru_pages(node, lru) {
            self.sweep_lru(node, lru);
        }
    }

    /// Drops the ghost entries of one list, and the folios linked there that belong on no
    /// list or another one, while ghosts are kept (a list with more entries than twice its
    /// pages); the order of the others stays.
    fn sweep_lru(&mut self, node: NodeId, lru: LruList) {
        let mut x = self.node_data(node).lruvec.lists[lru.idx()].head;
        while x != 0 {
            let (_, next) = self.lru_entry_links(node, x);
            if x & GHOST != 0 || !self.lru_entry_live(lru, FolioId(x)) {
                self.lru_unlink(node, lru, x);
            }
            x = next;
        }
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
    /// Keeps a ghost entry where a folio leaves an LRU list, until
    /// [`Machine::shuffle_lru_lists`]: the snapshot loader's lists, shuffled over every
    /// entry a folio ever had there, come out in the order they always had.
    ///
    /// DEVIATION(linux): no kernel list keeps a place for a folio that left it; the
    /// ghosts exist only while a snapshot loads, so the loaded LRU order (which no /proc
    /// file shows) stays the one earlier versions of the loader drew.
    pub fn keep_lru_ghosts(&mut self) {
        self.reclaim.lru_ghosts = true;
    }

    /// Puts every LRU list of every node in a random order drawn from `rng` (ghost entries
    /// drawn with the rest, then dropped). A model utility for a machine loaded from a
    /// snapshot: a live kernel's lists are in the order folios were added and rotated over
    /// its uptime, which no file shows, and reclaim takes them from the tail; the loader
    /// adds them in pfn order, which would make reclaim free memory from the lowest pfns up.
    pub fn shuffle_lru_lists(&mut self, rng: &mut crate::rng::SimRng) {
        for n in 0..self.nodes.len() {
            let node = NodeId(n as u8);
            for lru in LruList::ALL {
                let mut order: Vec<u32> = Vec::new();
                while let Some(e) = self.lru_pop_tail(node, lru) {
                    order.push(e.map_or(GHOST, |id| id.0));
                }
                order.reverse();
                rng.shuffle(&mut order);
                for x in order.into_iter().filter(|x| *x != GHOST) {
                    self.lru_link(node, lru, x, true);
                }
            }
            self.node_data_mut(node).lruvec.ghosts = Vec::new();
        }
        self.reclaim.lru_ghosts = false;
    }
}

/// The entries of one LRU list from head to tail: folio ids, `None` for ghost entries.
pub struct LruEntries<'a> {
    m: &'a Machine,
    node: NodeId,
    next: u32,
}

impl Iterator for LruEntries<'_> {
    type Item = Option<FolioId>;

    fn next(&mut self) -> Option<Option<FolioId>> {
        if self.next == 0 {
            return None;
        }
        let x = self.next;
        self.next = self.m.lru_entry_links(self.node, x).1;
        Some((x & GHOST == 0).then_some(FolioId(x)))
    }
}
