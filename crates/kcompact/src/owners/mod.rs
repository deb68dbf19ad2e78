//! Who owns pages: processes (anonymous memory), files (page cache, shmem), slab caches,
//! other kernel memory, and the references that pin pages in place.
//!
//! Every allocated folio an owner holds has a [`FolioRec`] in the folio table; the memory
//! map's owner word on the folio's head page holds the record's id, the way `page->mapping`
//! leads from a page to its owner. Owners refer to folios by [`FolioId`], so a migration
//! that moves a folio to another pfn updates the record, and every mapping, cache slot and
//! slab that names the folio follows it — the model's `remove_migration_ptes()` and cache
//! slot replacement in one step. The reverse map ([`Owners::rmap`](table::Owners::rmap)) lists each folio's
//! mappers (process, virtual page).
//!
//! DEVIATION(linux): migration moves the record, not page-table entries: there are no
//! migration entries or anon_vma, and try_to_migrate() is the mapcount and references the
//! mappings hold, taken away and given back. Anonymous memory never enters the swap cache
//! (no swap yet), and LRU membership is the folio's flags (LRU, ACTIVE, UNEVICTABLE), not
//! ordered lists, until reclaim needs the order.
//!
//! Reference counting follows Linux: each page-table mapping holds a reference (one per
//! PTE, or one for a PMD-mapped THP), the page cache holds one per page, a kernel owner
//! (slab, page table, stack) holds one, a FOLL_PIN holds [`crate::memmap::GUP_PIN_COUNTING_BIAS`]
//! on a small folio or one plus `_pincount` on a large one, isolation holds one, and a
//! speculative `folio_try_get()` holds one while it lasts. When the count reaches zero the
//! folio is freed to the buddy allocator.

pub mod driver;
pub mod file;
pub mod huge_memory;
pub mod kernel;
pub mod pin;
pub mod process;
pub mod rmap;
pub mod slab;
pub mod table;
pub mod xarray;

use crate::machine::Machine;
use crate::memmap::{OwnerRef, PageFlags};
use crate::units::{Order, Pfn};
use table::{Contents, FolioId, FolioRec, Holder};

/// What [`Machine::check_contents`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContentCheck {
    /// Pages whose contents were checked.
    pub checked_pages: u64,
    /// Folios whose contents were lost or corrupted.
    pub errors: u64,
}

impl Machine {
    /// Turns content tracking on: `bytes` keeps real 4 KiB contents (for machines that fit
    /// in memory), otherwise one stamp per page. Must be called before any folio is owned.
    pub fn enable_contents(&mut self, bytes: bool) {
        assert!(
            self.owners.is_empty(),
            "enable content tracking before owning pages"
        );
        let n = self.mem.end_pfn().idx();
        self.contents = if bytes {
            Contents::Bytes(vec![0; n * 4096])
        } else {
            Contents::Stamps(vec![0; n])
        };
    }

    /// Checks every owned folio's tracked contents against what its owner wrote: the
    /// pages checked and the folios found wrong, `(0, 0)` when contents are not tracked.
    /// Every owner's folios are in the table (anonymous, page cache, shmem, slab, page
    /// tables, drivers, hugetlb); pages out on swap are not resident and not counted.
    pub fn check_contents(&self) -> ContentCheck {
        let mut c = ContentCheck::default();
        if !self.contents.enabled() {
            return c;
        }
        for (_, rec) in self.owners.iter() {
            c.checked_pages += rec.order.nr_pages();
            c.errors +=
                !self
                    .contents
                    .check(rec.pfn, rec.order.nr_pages(), rec.stamp, rec.stamp_offset)
                    as u64;
        }
        c
    }

    /// Makes a freshly allocated block a folio of `kind` owned by `owner` at `index`, with
    /// `flags` on its head and `refs` references; returns its record id.
    pub(crate) fn own_folio(
        &mut self,
        pfn: Pfn,
        order: Order,
        holder: Holder,
        flags: PageFlags,
        refs: u32,
    ) -> FolioId {
        let Holder(kind, owner, index) = holder;
        let stamp = self.owners.next_stamp();
        let id = self.owners.insert(FolioRec {
            pfn,
            order,
            kind,
            owner,
            index,
            stamp,
            stamp_offset: 0,
            orphan: false,
        });
        let head = self.mem.flags(pfn);
        self.mem.set_flags(pfn, head.with(flags));
        self.mem.set_refcount(pfn, refs);
        self.mem.set_owner(pfn, OwnerRef(id.0));
        self.contents.fill(pfn, order.nr_pages(), stamp, 0);
        if flags.contains(PageFlags::LRU) {
            self.lru_count(pfn, order.nr_pages(), head, head.with(flags));
            self.lru_push(id, false);
        }
        id
    }

    /// Drops `n` references to a folio; at zero the folio is freed (`folio_put()` →
    /// `__folio_put()`), its record removed, its pages returned to the buddy allocator.
    pub fn folio_put_refs(&mut self, id: FolioId, n: u32) {
        let pfn = self.owners.folio(id).pfn;
        let rc = self.mem.refcount(pfn);
        assert!(
            rc >= n,
            "{pfn:?}: dropping {n} references from a refcount of {rc}"
        );
        self.mem.set_refcount(pfn, rc - n);
        if rc == n {
            self.free_folio(id);
        }
    }

    /// A kernel owner (slab, page table, kernel memory, hugetlb, driver) lets go of its
    /// folio: its reference is dropped, and the folio lives on only while someone else
    /// (a speculative reference) still holds it.
    pub(crate) fn release_owner_ref(&mut self, id: FolioId) {
        self.owners.set_orphan(id, true);
        self.folio_put_refs(id, 1);
    }

    /// Frees a folio whose last reference is gone.
    fn free_folio(&mut self, id: FolioId) {
        self.lru_leave(id);
        let rec = self.owners.remove(id);
        debug_assert!(
            !self.owners.mappers(id).any(|_| true),
            "freeing a mapped folio"
        );
        let f = self.mem.flags(rec.pfn);
        // What the LRU and lock owners clear before the final put in Linux.
        let keep = if rec.order.0 > 0 {
            PageFlags::HEAD.with_order(f.order())
        } else {
            PageFlags::EMPTY
        };
        self.lru_count(rec.pfn, rec.order.nr_pages(), f, keep);
        self.mem.set_flags(rec.pfn, keep);
        self.mem.set_mapcount(rec.pfn, 0);
        if rec.order.0 > 0 {
            self.mem.set_pincount(rec.pfn, 0);
        }
        self.mem.set_refcount(rec.pfn, 1);
        self.free_pages(rec.pfn, rec.order);
    }

    /// The folio whose pages include `pfn`, if an owner holds it.
    pub fn folio_of(&self, pfn: Pfn) -> Option<FolioId> {
        if pfn >= self.mem.end_pfn() {
            return None;
        }
        let head = self.mem.compound_head(pfn);
        let o = self.mem.owner(head);
        (o != OwnerRef::NONE).then_some(FolioId(o.0))
    }
}
