//! The folio table and the owners' records: the state every owner file acts on (the role
//! of include/linux/mm_types.h for the model's owners).
//!
//! Types only, and the table operations that touch nothing else: the rules that change
//! pages and references live in the sibling files (`process.rs`, `file.rs`, `kernel.rs`,
//! `driver.rs`, `pin.rs`, `mod.rs`).
//!
//! Architecture Invariant: this file imports nothing that holds behaviour, so the machine's
//! state ([`crate::machine::Machine`], [`crate::mmzone`]) can name these types without an
//! import circle.

use super::rmap::Rmap;
use super::xarray::XArray;
use crate::units::{Order, Pfn};
use std::collections::{BTreeMap, BTreeSet};

/// A folio record's id: 1-based index into the folio table (the memory map stores it as
/// the head page's [`OwnerRef`](crate::memmap::OwnerRef)).
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
}

/// Who holds a new folio: its kind, the owner's id, and the position in the owner.
#[derive(Clone, Copy, Debug)]
pub struct Holder(pub FolioKind, pub u32, pub u64);

/// [`FolioSlot::kind`] of an unused slot.
const NO_FOLIO: u8 = u8::MAX;
/// [`FolioSlot::index`] when the index does not fit: it is in [`Owners::wide_index`].
const WIDE_INDEX: u32 = u32::MAX;

/// [`FolioSlot::lru`] of a folio on no LRU list.
const NOT_ON_LRU: u8 = u8::MAX;
/// [`FolioSlot::bits`]: the owner let go of the folio.
const ORPHAN: u8 = 1;
/// [`FolioSlot::bits`]: the record's `stamp_offset` is in [`Owners::stamp_offsets`].
const HAS_OFFSET: u8 = 2;
/// [`FolioSlot::bits`]: the folio's one mapping is its record's (owner, index), kept here
/// instead of in the reverse map (an anonymous folio mapped where it was faulted in).
const MAPPED_SELF: u8 = 4;

/// How the folio table stores a [`FolioRec`], with the folio's LRU links: 28 bytes. The
/// pfn fits 32 bits (the memory map holds at most 2^32 frames); an index of 2^32 - 1 or
/// more and a non-zero `stamp_offset` (only the pieces of a split folio have one) are kept
/// beside the table, by folio id.
#[derive(Clone, Copy, Debug)]
pub(super) struct FolioSlot {
    pfn: u32,
    owner: u32,
    index: u32,
    stamp: u32,
    /// `folio->lru`: the entries before (towards the head) and after (towards the tail)
    /// this folio's on its LRU list; 0 at either end (see `reclaim/lru.rs`).
    lru_prev: u32,
    lru_next: u32,
    order: u8,
    /// The [`FolioKind`] as a number, [`NO_FOLIO`] for an unused slot.
    kind: u8,
    /// [`ORPHAN`], [`HAS_OFFSET`], [`MAPPED_SELF`].
    bits: u8,
    /// The list the folio is linked on (node × `NR_LRU_LISTS` + list), or [`NOT_ON_LRU`].
    lru: u8,
}

const _: () = assert!(std::mem::size_of::<FolioSlot>() == 28);

impl FolioKind {
    const ALL: [FolioKind; 8] = [
        FolioKind::Anon,
        FolioKind::File,
        FolioKind::Shmem,
        FolioKind::Slab,
        FolioKind::PageTable,
        FolioKind::Kernel,
        FolioKind::Hugetlb,
        FolioKind::Driver,
    ];
}

impl FolioSlot {
    const EMPTY: FolioSlot = FolioSlot {
        pfn: 0,
        owner: 0,
        index: 0,
        stamp: 0,
        lru_prev: 0,
        lru_next: 0,
        order: 0,
        kind: NO_FOLIO,
        bits: 0,
        lru: NOT_ON_LRU,
    };
}

/// Every owner of memory, and the folio table that links them to pages.
#[derive(Clone, Debug, Default)]
pub struct Owners {
    /// The folio table, by id - 1.
    folios: Vec<FolioSlot>,
    /// Indices too wide for [`FolioSlot::index`], by folio id.
    wide_index: BTreeMap<u32, u64>,
    /// Non-zero `stamp_offset`s, by folio id.
    stamp_offsets: BTreeMap<u32, u32>,
    /// The last id freed (0: none): unused slots form a stack, each naming the id freed
    /// before it in its `pfn` field, so a new folio takes the id freed last.
    free_head: u32,
    /// Unused slots.
    nr_free: usize,
    /// The reverse map: (folio, process, virtual page) for every mapping but those the
    /// folio table holds ([`MAPPED_SELF`]); read and changed through `rmap_*` and
    /// [`Owners::mappers`].
    rmap: Rmap,
    /// Processes, by id.
    pub processes: Vec<Process>,
    /// Files, by id.
    pub files: Vec<File>,
    /// Slab caches, by id.
    pub caches: Vec<SlabCache>,
    /// Drivers with non-LRU pages, by id.
    pub drivers: Vec<Driver>,
    /// GUP pins: (folio, long-term), by pin id (`None` once unpinned).
    pub pins: Vec<Option<(FolioId, bool)>>,
    /// Speculative references (`folio_try_get()`) still held, by folio.
    pub speculative: BTreeSet<(FolioId, u32)>,
    /// The reclaimable slab objects that live and die with the page cache.
    pub cache_slab: CacheSlab,
    pub(super) next_stamp: u32,
    pub(super) next_spec: u32,
}

impl Owners {
    #[inline]
    fn unpack(&self, id: u32, s: &FolioSlot) -> FolioRec {
        FolioRec {
            pfn: Pfn(s.pfn as u64),
            order: Order(s.order),
            kind: FolioKind::ALL[s.kind as usize],
            owner: s.owner,
            index: if s.index == WIDE_INDEX {
                self.wide_index[&id]
            } else {
                s.index as u64
            },
            stamp: s.stamp,
            stamp_offset: if s.bits & HAS_OFFSET != 0 {
                self.stamp_offsets[&id]
            } else {
                0
            },
            orphan: s.bits & ORPHAN != 0,
        }
    }

    /// Stores `rec` in slot `id` (which must exist), with its side entries; the slot's LRU
    /// links stay.
    #[inline]
    fn pack(&mut self, id: u32, rec: FolioRec) {
        assert!(rec.pfn.0 <= u32::MAX as u64, "at most 2^32 page frames");
        let old = self.folios[id as usize - 1];
        let index = if rec.index >= WIDE_INDEX as u64 {
            self.wide_index.insert(id, rec.index);
            WIDE_INDEX
        } else {
            if old.index == WIDE_INDEX {
                self.wide_index.remove(&id);
            }
            rec.index as u32
        };
        let has_offset = rec.stamp_offset != 0;
        if has_offset {
            self.stamp_offsets.insert(id, rec.stamp_offset);
        } else if old.bits & HAS_OFFSET != 0 {
            self.stamp_offsets.remove(&id);
        }
        let s = &mut self.folios[id as usize - 1];
        *s = FolioSlot {
            pfn: rec.pfn.0 as u32,
            owner: rec.owner,
            index,
            stamp: rec.stamp,
            order: rec.order.0,
            kind: rec.kind as u8,
            bits: if rec.orphan { ORPHAN } else { 0 }
                | if has_offset { HAS_OFFSET } else { 0 }
                | s.bits & MAPPED_SELF,
            ..*s
        };
    }

    /// The record of `id`.
    #[inline]
    pub fn folio(&self, id: FolioId) -> FolioRec {
        self.get(id).expect("live folio id")
    }

    /// Changes the record of `id` with `f`.
    #[inline]
    pub fn update(&mut self, id: FolioId, f: impl FnOnce(&mut FolioRec)) {
        let mut rec = self.folio(id);
        f(&mut rec);
        let old = self.folio(id);
        if (rec.owner, rec.index) != (old.owner, old.index) {
            self.rmap_materialize(id);
        }
        self.pack(id.0, rec);
    }

    /// True if the folio's one mapping is kept in its slot ([`MAPPED_SELF`]).
    #[inline]
    fn mapped_self(&self, id: FolioId) -> bool {
        self.folios[id.0 as usize - 1].bits & MAPPED_SELF != 0
    }

    /// Moves a mapping kept in the slot into the reverse map.
    fn rmap_materialize(&mut self, id: FolioId) {
        if self.mapped_self(id) {
            let s = &mut self.folios[id.0 as usize - 1];
            s.bits &= !MAPPED_SELF;
            let rec = self.folio(id);
            self.rmap.insert((id, rec.owner, rec.index));
        }
    }

    /// Adds the mapping of `id` at `vpn` of `pid`; false if it was there. A folio's only
    /// mapping at its record's own (owner, index) is kept in its slot.
    pub fn rmap_insert(&mut self, id: FolioId, pid: u32, vpn: u64) -> bool {
        let rec = self.folio(id);
        if !self.mapped_self(id) {
            if (rec.owner, rec.index) == (pid, vpn)
                && rec.kind == FolioKind::Anon
                && self.rmap.mappers(id).next().is_none()
            {
                self.folios[id.0 as usize - 1].bits |= MAPPED_SELF;
                return true;
            }
            return self.rmap.insert((id, pid, vpn));
        }
        if (rec.owner, rec.index) == (pid, vpn) {
            return false;
        }
        self.rmap_materialize(id);
        self.rmap.insert((id, pid, vpn))
    }

    /// Removes the mapping of `id` at `vpn` of `pid`; false if it was not there.
    pub fn rmap_remove(&mut self, id: FolioId, pid: u32, vpn: u64) -> bool {
        if self.mapped_self(id) {
            let rec = self.folio(id);
            if (rec.owner, rec.index) != (pid, vpn) {
                return false;
            }
            self.folios[id.0 as usize - 1].bits &= !MAPPED_SELF;
            return true;
        }
        self.rmap.remove(&(id, pid, vpn))
    }

    /// True if `id` is mapped at `vpn` of `pid`.
    pub fn rmap_contains(&self, id: FolioId, pid: u32, vpn: u64) -> bool {
        if self.get(id).is_some() && self.mapped_self(id) {
            let rec = self.folio(id);
            return (rec.owner, rec.index) == (pid, vpn);
        }
        self.rmap.contains(&(id, pid, vpn))
    }

    /// Every mapping the reverse map holds apart from the folio table's own, in (folio,
    /// process, virtual page) order (for the checker: these may name dead folios).
    pub(crate) fn rmap_entries(&self) -> super::rmap::Iter<'_> {
        self.rmap.iter()
    }

    /// The mappings the folio table keeps itself ([`MAPPED_SELF`]), in id order.
    pub(crate) fn self_mappings(&self) -> impl Iterator<Item = (FolioId, u32, u64)> + '_ {
        self.iter()
            .filter(|(id, _)| self.mapped_self(*id))
            .map(|(id, r)| (id, r.owner, r.index))
    }

    /// The head pfn of `id` (the one field most callers want, read without unpacking).
    #[inline]
    pub fn folio_pfn(&self, id: FolioId) -> Pfn {
        let s = &self.folios[id.0 as usize - 1];
        assert!(s.kind != NO_FOLIO, "live folio id");
        Pfn(s.pfn as u64)
    }

    /// Sets whether the owner let go of `id`.
    #[inline]
    pub fn set_orphan(&mut self, id: FolioId, orphan: bool) {
        let s = &mut self.folios[id.0 as usize - 1];
        assert!(s.kind != NO_FOLIO, "live folio id");
        s.bits = s.bits & !ORPHAN | if orphan { ORPHAN } else { 0 };
    }

    /// The list `id` is linked on (node × `NR_LRU_LISTS` + list), if any.
    #[inline]
    pub(crate) fn lru_on(&self, id: FolioId) -> Option<u8> {
        let l = self.folios[id.0 as usize - 1].lru;
        (l != NOT_ON_LRU).then_some(l)
    }

    /// The entries before and after `id` on its LRU list.
    #[inline]
    pub(crate) fn lru_links(&self, id: FolioId) -> (u32, u32) {
        let s = &self.folios[id.0 as usize - 1];
        (s.lru_prev, s.lru_next)
    }

    /// Sets the list `id` is linked on and its neighbours there.
    #[inline]
    pub(crate) fn set_lru_links(&mut self, id: FolioId, on: Option<u8>, prev: u32, next: u32) {
        let s = &mut self.folios[id.0 as usize - 1];
        debug_assert!(s.kind != NO_FOLIO, "live folio id");
        s.lru = on.unwrap_or(NOT_ON_LRU);
        s.lru_prev = prev;
        s.lru_next = next;
    }

    /// The record of `id` if it is live.
    #[inline]
    pub fn get(&self, id: FolioId) -> Option<FolioRec> {
        self.folios
            .get((id.0 as usize).wrapping_sub(1))
            .filter(|s| s.kind != NO_FOLIO)
            .map(|s| self.unpack(id.0, s))
    }

    /// Every live folio with its id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (FolioId, FolioRec)> + '_ {
        self.folios
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind != NO_FOLIO)
            .map(|(i, s)| (FolioId(i as u32 + 1), self.unpack(i as u32 + 1, s)))
    }

    /// The number of live folios.
    pub fn len(&self) -> usize {
        self.folios.len() - self.nr_free
    }

    /// True if no folio is owned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the folio table holds on the heap (its side maps left out).
    pub fn table_bytes(&self) -> usize {
        self.folios.capacity() * std::mem::size_of::<FolioSlot>()
    }

    /// Adds a record (the pieces of a split folio).
    pub(crate) fn insert_record(&mut self, rec: FolioRec) -> FolioId {
        self.insert(rec)
    }

    pub(super) fn insert(&mut self, rec: FolioRec) -> FolioId {
        assert!(
            self.folios.len() < 1 << 31,
            "folio ids fit 31 bits (LRU links)"
        );
        let id = if self.free_head != 0 {
            let i = self.free_head;
            self.free_head = self.folios[i as usize - 1].pfn;
            self.nr_free -= 1;
            i
        } else {
            self.folios.push(FolioSlot::EMPTY);
            self.folios.len() as u32
        };
        self.pack(id, rec);
        FolioId(id)
    }

    pub(super) fn remove(&mut self, id: FolioId) -> FolioRec {
        let rec = self.folio(id);
        debug_assert!(self.lru_on(id).is_none(), "a freed folio left its LRU list");
        debug_assert!(!self.mapped_self(id), "a freed folio is unmapped");
        if rec.index >= WIDE_INDEX as u64 {
            self.wide_index.remove(&id.0);
        }
        if rec.stamp_offset != 0 {
            self.stamp_offsets.remove(&id.0);
        }
        self.folios[id.0 as usize - 1] = FolioSlot {
            pfn: self.free_head,
            ..FolioSlot::EMPTY
        };
        self.free_head = id.0;
        self.nr_free += 1;
        rec
    }

    /// A fresh content stamp.
    pub fn next_stamp(&mut self) -> u32 {
        self.next_stamp = self.next_stamp.wrapping_add(0x9e37_79b9) | 1;
        self.next_stamp
    }

    /// The mappers (process, virtual page) of `id`, in order.
    pub fn mappers(&self, id: FolioId) -> impl Iterator<Item = (u32, u64)> + '_ {
        let own = (self.get(id).is_some() && self.mapped_self(id)).then(|| {
            let rec = self.folio(id);
            (rec.owner, rec.index)
        });
        own.into_iter().chain(self.rmap.mappers(id))
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

/// A process: its page table (first virtual page of each mapped folio → folio) and the
/// page-table pages backing it.
#[derive(Clone, Debug, Default)]
pub struct Process {
    /// Still running.
    pub alive: bool,
    /// First virtual page → folio.
    ///
    /// DEVIATION(linux): one radix index from virtual page to folio stands for the page
    /// table levels.
    pub table: XArray,
    /// 512-page window → its page-table page.
    pub pgtables: XArray,
}

/// Why a fault or mapping failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MapError {
    /// No memory for the folio or its page table.
    NoMemory,
    /// The range is already mapped, misaligned, or the process is gone.
    Invalid,
}

/// A file.
#[derive(Clone, Debug, Default)]
pub struct File {
    /// shmem/tmpfs: swap-backed page cache.
    pub shmem: bool,
    /// The filesystem's address space has `migrate_folio` (ext4, xfs, shmem do); without
    /// it, migration falls back and refuses dirty folios.
    pub has_migrate_folio: bool,
    /// Folios carry buffer heads (PG_private), as ext4's do.
    pub buffers: bool,
    /// First page index of each cached folio → folio (`address_space.i_pages`).
    pub pages: XArray,
    /// Still exists.
    pub alive: bool,
}

/// A slab cache: objects of one size packed into slab folios. A slab folio is freed only
/// when its last object goes, which is what keeps pageblocks unmovable in practice.
#[derive(Clone, Debug)]
pub struct SlabCache {
    /// Object size in bytes.
    pub obj_size: u32,
    /// SLAB_RECLAIM_ACCOUNT: allocated as MIGRATE_RECLAIMABLE.
    pub reclaimable: bool,
    /// Slab folio order (`calculate_order()`'s choice, simplified).
    pub order: Order,
    /// Objects per slab folio.
    pub objs_per_slab: u32,
    /// Slab folio → objects in use.
    pub slabs: BTreeMap<FolioId, u32>,
}

/// Which driver.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DriverKind {
    /// zsmalloc/zram: compressed objects packed across the pages of a zspage.
    Zsmalloc,
    /// virtio-balloon: pages given to the host.
    Balloon,
    /// A GPU buffer pool: buffers of orders 0..=3, busy while the GPU uses them.
    Gpu,
}

/// What a driver's `migrate_page` answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DriverMigrate {
    /// 0: the data moved; the driver holds the destination.
    Done,
    /// 0 for a page the driver released while it was isolated: nothing moved, the
    /// destination is not taken (zsmalloc's destroyed zspage).
    Released,
    /// -EAGAIN: try again in a later pass.
    Again,
    /// A permanent error (zsmalloc's -EINVAL on a contended zspage lock).
    Fail,
}

/// Mirrors `struct movable_operations`.
pub trait MovableOps {
    /// `isolate_page()`: may the core take this page for migration?
    fn isolate_page(&mut self, page: FolioId) -> bool;
    /// `migrate_page()`: the core has a destination; does the driver move to it?
    fn migrate_page(&mut self, page: FolioId) -> DriverMigrate;
    /// `putback_page()`: migration gave up; the page is the driver's again.
    fn putback_page(&mut self, page: FolioId);
}

/// Faults a test can make a driver show.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct DriverFaults {
    /// `isolate_page` refuses.
    pub refuse_isolate: bool,
    /// `migrate_page` answers this (`Again` or `Fail`) instead of doing its work.
    pub migrate: Option<DriverMigrate>,
}

/// A zspage: pages whose objects belong together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZsPage {
    /// Its pages.
    pub pages: Vec<FolioId>,
    /// Objects stored.
    pub used: u32,
    /// Objects it can hold.
    pub capacity: u32,
}

/// A driver and its pages.
#[derive(Clone, Debug)]
pub struct Driver {
    /// Which driver.
    pub kind: DriverKind,
    /// Its pages are movable_ops pages (non_lru_movable on).
    pub movable: bool,
    /// Every page the driver holds (pages released while isolated excluded).
    pub pages: BTreeSet<FolioId>,
    /// Pages isolated by the migration core.
    pub isolated: BTreeSet<FolioId>,
    /// zsmalloc: zspages by id.
    pub zspages: BTreeMap<u32, ZsPage>,
    /// zsmalloc: zspages with room, by size class (pages, objects it can hold).
    pub partial: BTreeMap<(u32, u32), BTreeSet<u32>>,
    /// zsmalloc: page → its zspage.
    pub page_zspage: BTreeMap<FolioId, u32>,
    /// GPU: buffers the GPU is using (cannot be isolated).
    pub busy: BTreeSet<FolioId>,
    /// Injected faults.
    pub faults: DriverFaults,
    pub(super) next_zspage: u32,
}

impl MovableOps for Driver {
    fn isolate_page(&mut self, page: FolioId) -> bool {
        if self.faults.refuse_isolate || !self.pages.contains(&page) || self.busy.contains(&page) {
            return false;
        }
        // balloon_page_isolate() takes the page off the balloon list; deflation skips it.
        self.isolated.insert(page);
        true
    }

    fn migrate_page(&mut self, page: FolioId) -> DriverMigrate {
        if !self.pages.contains(&page) {
            // zs_page_migrate() on a destroyed zspage: fake success.
            self.isolated.remove(&page);
            return DriverMigrate::Released;
        }
        if let Some(r) = self.faults.migrate {
            // A failed page stays isolated until the core puts it back.
            assert!(
                matches!(r, DriverMigrate::Again | DriverMigrate::Fail),
                "inject Again or Fail, not {r:?}"
            );
            return r;
        }
        self.isolated.remove(&page);
        DriverMigrate::Done
    }

    fn putback_page(&mut self, page: FolioId) {
        self.isolated.remove(&page);
    }
}

/// The page cache's slab objects (`owners/slab.rs`): empty unless the machine was loaded
/// from a snapshot with `slabinfo`.
#[derive(Clone, Debug, Default)]
pub struct CacheSlab {
    /// The `buffer_head` cache, when there is one.
    pub bh_cache: Option<u32>,
    /// Each buffer head attached to a folio: (folio, block) → the slab holding it.
    pub buffer_heads: BTreeMap<(FolioId, u32), FolioId>,
    /// The `radix_tree_node` cache, when there is one.
    pub xa_cache: Option<u32>,
    /// XArray nodes per page-cache page (loaded ratio), as objects per 2^20 pages.
    pub xa_per_mpage: u64,
    /// The fraction of an XArray node owed by page-cache pages already removed, in
    /// objects × 2^20.
    pub xa_owed: u64,
    /// The `radix_tree_node` slab the last release took from: it stays the one with the
    /// fewest objects until it empties, as nothing else frees or allocates in that cache.
    pub xa_victim: Option<FolioId>,
    /// The dentry and inode caches' slabs that hold only unused objects, by cache: what
    /// `drop_slab()` frees (loaded from `dentry-state` / `inode-state`).
    pub prunable: Vec<(u32, Vec<FolioId>)>,
    /// The dentry and inode caches (part of `SReclaimable`).
    pub fs_caches: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(index: u64, stamp_offset: u32, kind: FolioKind) -> FolioRec {
        FolioRec {
            pfn: Pfn(u32::MAX as u64),
            order: Order(9),
            kind,
            owner: 7,
            index,
            stamp: 0xdead_beef,
            stamp_offset,
            orphan: true,
        }
    }

    /// A record comes back from the packed table as it went in, wide indices and stamp
    /// offsets included, and their side entries go with the record.
    #[test]
    fn records_survive_packing() {
        let mut o = Owners::default();
        let a = o.insert(rec(5, 0, FolioKind::Anon));
        let b = o.insert(rec(u64::MAX, 3, FolioKind::Driver));
        let c = o.insert(rec(u32::MAX as u64, 0, FolioKind::Shmem));
        assert_eq!(o.folio(a), rec(5, 0, FolioKind::Anon));
        assert_eq!(o.folio(b), rec(u64::MAX, 3, FolioKind::Driver));
        assert_eq!(o.folio(c), rec(u32::MAX as u64, 0, FolioKind::Shmem));
        o.set_lru_links(b, Some(3), 9, 0);
        o.update(b, |r| {
            r.index = 1;
            r.stamp_offset = 0;
        });
        assert_eq!(o.folio(b), rec(1, 0, FolioKind::Driver));
        assert_eq!(
            (o.lru_on(b), o.lru_links(b)),
            (Some(3), (9, 0)),
            "links stay"
        );
        o.set_orphan(b, false);
        assert!(!o.folio(b).orphan && o.lru_on(b) == Some(3));
        o.set_lru_links(b, None, 0, 0);
        assert!(o.wide_index.len() == 1 && o.stamp_offsets.is_empty());
        assert_eq!(o.remove(c), rec(u32::MAX as u64, 0, FolioKind::Shmem));
        assert!(o.wide_index.is_empty() && o.get(c).is_none());
        assert_eq!(o.len(), 2);
        assert_eq!(o.iter().map(|(id, _)| id).collect::<Vec<_>>(), vec![a, b]);
        o.remove(a);
        assert_eq!(o.len(), 1);
        let x = o.insert(rec(1, 0, FolioKind::File));
        let y = o.insert(rec(2, 0, FolioKind::File));
        let z = o.insert(rec(3, 0, FolioKind::File));
        assert_eq!(
            (x, y, z),
            (a, c, FolioId(4)),
            "the id freed last is taken first"
        );
        assert_eq!(o.len(), 4);
    }

    /// An anonymous folio's one mapping where it was faulted in is kept in its slot; a
    /// second mapping, or a new owner or index, moves it to the reverse map, and the
    /// mappers read the same either way.
    #[test]
    fn a_folio_mapped_at_its_own_place_keeps_the_mapping_in_its_slot() {
        let mut o = Owners::default();
        let a = o.insert(rec(5, 0, FolioKind::Anon));
        assert!(o.rmap_insert(a, 7, 5));
        assert!(!o.rmap_insert(a, 7, 5), "already there");
        assert_eq!(o.mappers(a).collect::<Vec<_>>(), vec![(7, 5)]);
        assert_eq!(o.rmap_entries().count(), 0, "kept in the slot");
        assert_eq!(o.self_mappings().collect::<Vec<_>>(), vec![(a, 7, 5)]);
        assert!(o.rmap_insert(a, 3, 9));
        assert_eq!(o.mappers(a).collect::<Vec<_>>(), vec![(3, 9), (7, 5)]);
        assert_eq!(o.rmap_entries().count(), 2);
        assert!(o.rmap_remove(a, 3, 9) && o.rmap_remove(a, 7, 5));
        assert!(o.rmap_insert(a, 7, 5) && o.self_mappings().count() == 1);
        o.update(a, |r| r.owner = 8);
        assert_eq!(
            o.mappers(a).collect::<Vec<_>>(),
            vec![(7, 5)],
            "owner moved"
        );
        assert!(o.self_mappings().next().is_none() && o.rmap_contains(a, 7, 5));
        assert!(!o.rmap_remove(a, 8, 5) && o.rmap_remove(a, 7, 5));
        assert_eq!(o.mappers(a).count(), 0);
    }
}
