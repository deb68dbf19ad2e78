//! Who owns pages: processes (anonymous memory), files (page cache, shmem), slab caches,
//! other kernel memory, and the references that pin pages in place.
//!
//! Every allocated folio an owner holds has a [`FolioRec`] in the folio table; the memory
//! map's owner word on the folio's head page holds the record's id, the way `page->mapping`
//! leads from a page to its owner. Owners refer to folios by [`FolioId`], so a migration
//! that moves a folio to another pfn updates the record, and every mapping, cache slot and
//! slab that names the folio follows it — the model's `remove_migration_ptes()` and cache
//! slot replacement in one step. The reverse map ([`Owners::rmap`]) lists each folio's
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
pub mod kernel;
pub mod pin;
pub mod process;

use crate::machine::Machine;
use crate::memmap::{OwnerRef, PageFlags};
use crate::units::{Order, Pfn};
use std::collections::BTreeSet;

/// A folio record's id: 1-based index into the folio table (the memory map stores it as
/// the head page's [`OwnerRef`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct FolioId(pub u32);

/// What kind of owner holds a folio.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FolioKind {
    /// Anonymous memory of a process (`owner` = process id, `index` = first virtual page).
    Anon,
    /// Page cache of a regular file (`owner` = file id, `index` = page index in the file).
    File,
    /// Page cache of a shmem/tmpfs file (swap-backed).
    Shmem,
    /// A slab page (`owner` = cache id).
    Slab,
    /// A page-table page (`owner` = process id, `index` = the 512-page window it maps).
    PageTable,
    /// Other unmovable kernel memory: stacks, network buffers (`owner` = a tag).
    Kernel,
    /// A hugetlb pool page.
    Hugetlb,
    /// A page of a device driver (`owner` = driver id): zsmalloc, balloon, GPU pool.
    Driver,
}

impl FolioKind {
    /// True for folios that live on an LRU list (anonymous, file and shmem).
    pub fn is_lru(self) -> bool {
        matches!(self, FolioKind::Anon | FolioKind::File | FolioKind::Shmem)
    }

    /// True if the folio's refcount includes page-cache references.
    pub fn in_page_cache(self) -> bool {
        matches!(self, FolioKind::File | FolioKind::Shmem)
    }
}

/// One folio an owner holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FolioRec {
    /// The head pfn.
    pub pfn: Pfn,
    /// The folio's order.
    pub order: Order,
    /// The kind of owner.
    pub kind: FolioKind,
    /// The owner's id (process, file, cache, tag).
    pub owner: u32,
    /// The position in the owner (first virtual page, file index, window).
    pub index: u64,
    /// The content stamp the owner expects the folio's pages to hold.
    pub stamp: u32,
    /// The offset of the folio's first page in the stamp's page sequence (non-zero for
    /// the pieces of a split folio).
    pub stamp_offset: u32,
    /// The owner let go of the folio; it lives on only through other references.
    pub orphan: bool,
    /// The sequence number of the folio's live LRU list entry.
    pub lru_seq: u32,
}

/// Who holds a new folio: its kind, the owner's id, and the position in the owner.
#[derive(Clone, Copy, Debug)]
pub struct Holder(pub FolioKind, pub u32, pub u64);

/// Every owner of memory, and the folio table that links them to pages.
#[derive(Clone, Debug, Default)]
pub struct Owners {
    folios: Vec<Option<FolioRec>>,
    free_ids: Vec<u32>,
    /// The reverse map: (folio, process, virtual page) for every mapping.
    pub rmap: BTreeSet<(FolioId, u32, u64)>,
    /// Processes, by id.
    pub processes: Vec<process::Process>,
    /// Files, by id.
    pub files: Vec<file::File>,
    /// Slab caches, by id.
    pub caches: Vec<kernel::SlabCache>,
    /// Drivers with non-LRU pages, by id.
    pub drivers: Vec<driver::Driver>,
    /// GUP pins: (folio, long-term), by pin id (`None` once unpinned).
    pub pins: Vec<Option<(FolioId, bool)>>,
    /// Speculative references (`folio_try_get()`) still held, by folio.
    pub speculative: BTreeSet<(FolioId, u32)>,
    next_stamp: u32,
    next_spec: u32,
}

impl Owners {
    /// The record of `id`.
    #[inline]
    pub fn folio(&self, id: FolioId) -> &FolioRec {
        self.folios[id.0 as usize - 1]
            .as_ref()
            .expect("live folio id")
    }

    /// The record of `id`, mutable.
    #[inline]
    pub fn folio_mut(&mut self, id: FolioId) -> &mut FolioRec {
        self.folios[id.0 as usize - 1]
            .as_mut()
            .expect("live folio id")
    }

    /// The record of `id` if it is live.
    pub fn get(&self, id: FolioId) -> Option<&FolioRec> {
        self.folios
            .get((id.0 as usize).wrapping_sub(1))
            .and_then(|r| r.as_ref())
    }

    /// Every live folio with its id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (FolioId, &FolioRec)> {
        self.folios
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| (FolioId(i as u32 + 1), r)))
    }

    /// The number of live folios.
    pub fn len(&self) -> usize {
        self.folios.len() - self.free_ids.len()
    }

    /// True if no folio is owned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a record (the pieces of a split folio).
    pub(crate) fn insert_record(&mut self, rec: FolioRec) -> FolioId {
        self.insert(rec)
    }

    fn insert(&mut self, rec: FolioRec) -> FolioId {
        if let Some(i) = self.free_ids.pop() {
            self.folios[i as usize - 1] = Some(rec);
            FolioId(i)
        } else {
            self.folios.push(Some(rec));
            FolioId(self.folios.len() as u32)
        }
    }

    fn remove(&mut self, id: FolioId) -> FolioRec {
        let rec = self.folios[id.0 as usize - 1]
            .take()
            .expect("live folio id");
        self.free_ids.push(id.0);
        rec
    }

    /// A fresh content stamp.
    pub fn next_stamp(&mut self) -> u32 {
        self.next_stamp = self.next_stamp.wrapping_add(0x9e37_79b9) | 1;
        self.next_stamp
    }

    /// The mappers of `id` from the reverse map.
    pub fn mappers(&self, id: FolioId) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.rmap
            .range((id, 0, 0)..=(id, u32::MAX, u64::MAX))
            .map(|(_, p, v)| (*p, *v))
    }
}

/// The page contents the model tracks, for checking that no data is lost or corrupted.
#[derive(Clone, Debug, Default)]
pub enum Contents {
    /// Nothing tracked.
    #[default]
    Off,
    /// One stamp per page (4 bytes a page).
    Stamps(Vec<u32>),
    /// Real 4 KiB contents per page, derived from the stamp and the page's offset.
    Bytes(Vec<u8>),
}

impl Contents {
    /// Writes the owner's stamp into the pages of a folio whose first page is page
    /// `offset` of the stamp's sequence.
    pub fn fill(&mut self, pfn: Pfn, nr: u64, stamp: u32, offset: u32) {
        match self {
            Contents::Off => {}
            Contents::Stamps(v) => v[pfn.idx()..pfn.idx() + nr as usize].fill(stamp),
            Contents::Bytes(v) => {
                for i in 0..nr as usize {
                    let page = &mut v[(pfn.idx() + i) * 4096..(pfn.idx() + i + 1) * 4096];
                    fill_page(page, stamp, offset + i as u32);
                }
            }
        }
    }

    /// Copies `nr` pages from `src` to `dst` (`folio_mc_copy()`).
    pub fn copy(&mut self, src: Pfn, dst: Pfn, nr: u64) {
        match self {
            Contents::Off => {}
            Contents::Stamps(v) => v.copy_within(src.idx()..src.idx() + nr as usize, dst.idx()),
            Contents::Bytes(v) => v.copy_within(
                src.idx() * 4096..(src.idx() + nr as usize) * 4096,
                dst.idx() * 4096,
            ),
        }
    }

    /// True if the folio's pages hold what its owner wrote.
    pub fn check(&self, pfn: Pfn, nr: u64, stamp: u32, offset: u32) -> bool {
        match self {
            Contents::Off => true,
            Contents::Stamps(v) => v[pfn.idx()..pfn.idx() + nr as usize]
                .iter()
                .all(|s| *s == stamp),
            Contents::Bytes(v) => {
                let mut want = [0u8; 4096];
                (0..nr as usize).all(|i| {
                    fill_page(&mut want, stamp, offset + i as u32);
                    v[(pfn.idx() + i) * 4096..(pfn.idx() + i + 1) * 4096] == want
                })
            }
        }
    }

    /// True if pages are tracked at all.
    pub fn enabled(&self) -> bool {
        !matches!(self, Contents::Off)
    }
}

/// A page's bytes for `stamp`: a xorshift stream seeded by the stamp and the page offset.
fn fill_page(page: &mut [u8], stamp: u32, offset: u32) {
    let mut x = (stamp as u64) << 32 | offset as u64 | 1;
    for chunk in page.chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
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
            lru_seq: 0,
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
        self.owners.folio_mut(id).orphan = true;
        self.folio_put_refs(id, 1);
    }

    /// Frees a folio whose last reference is gone.
    fn free_folio(&mut self, id: FolioId) {
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
