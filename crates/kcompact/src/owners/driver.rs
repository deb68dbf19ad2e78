//! Drivers whose pages are not on an LRU list but can be migrated through
//! `movable_operations` (seed 004): a zsmalloc pool backing zram, a virtio balloon, and a
//! GPU buffer pool.
//!
//! Mirrors the current protocol (Linux 6.17+): a driver page carries PG_movable_ops
//! ([`PageFlags::MOVABLE_OPS`]) and its page type (zsmalloc, offline for the balloon; the
//! model gives the GPU pool a type of its own); the migration core owns the isolated bit
//! ([`PageFlags::ISOLATED`]) and calls [`MovableOps`]: `isolate_page` (may refuse),
//! `migrate_page` (done, `-EAGAIN`, or a permanent error) and `putback_page`. A driver may
//! release a page while it is isolated — the race seed 004's review discusses — and then
//! reports the migration done without taking the destination.
//!
//! With `movable` off (Linux before 4.8, `non_lru_movable=off`) the same drivers allocate
//! unmovable pages that compaction can never move.

use super::table::{
    Driver, DriverFaults, DriverKind, FolioId, FolioKind, Holder, MovableOps, ZsPage,
};
use crate::gfp::Gfp;
use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::units::{NodeId, Order};
use std::collections::{BTreeMap, BTreeSet};

/// Pages per zspage and objects per zspage for zsmalloc's size class of `obj_size`.
fn zs_class(obj_size: u32) -> (u32, u32) {
    let pages = match obj_size {
        0..=1024 => 1,
        1025..=2048 => 2,
        2049..=3072 => 3,
        _ => 4,
    };
    (pages, pages * 4096 / obj_size.max(32))
}

impl Machine {
    /// Registers a driver; returns its id. Its pages are movable_ops pages if `movable` and
    /// the machine has `non_lru_movable`.
    pub fn driver_new(&mut self, kind: DriverKind, movable: bool) -> u32 {
        let movable = movable && self.config.non_lru_movable;
        self.owners.drivers.push(Driver {
            kind,
            movable,
            pages: BTreeSet::new(),
            isolated: BTreeSet::new(),
            zspages: BTreeMap::new(),
            partial: BTreeMap::new(),
            page_zspage: BTreeMap::new(),
            busy: BTreeSet::new(),
            faults: DriverFaults::default(),
            next_zspage: 0,
        });
        self.owners.drivers.len() as u32 - 1
    }

    /// A page for driver `drv` allocated with `gfp` — without `__GFP_MOVABLE` when the
    /// driver's pages are not movable (before Linux 4.8 the drivers passed the same flags
    /// without it: "zram: use __GFP_MOVABLE for memory allocation" added it).
    fn driver_alloc(&mut self, drv: u32, order: Order, gfp: Gfp) -> Option<FolioId> {
        let d = &self.owners.drivers[drv as usize];
        let (movable, kind) = (d.movable, d.kind);
        let mut gfp = if movable {
            gfp
        } else {
            Gfp(gfp.0 & !Gfp::MOVABLE.0)
        };
        if order.0 > 0 {
            gfp = gfp | Gfp::COMP;
        }
        let pfn = self.alloc_pages(gfp, order, NodeId(0))?;
        let ty = match kind {
            DriverKind::Zsmalloc => PageFlags::ZSMALLOC,
            DriverKind::Balloon => PageFlags::OFFLINE,
            DriverKind::Gpu => PageFlags::DRIVER_PAGE,
        };
        let flags = if movable {
            ty | PageFlags::MOVABLE_OPS
        } else {
            ty
        };
        let id = self.own_folio(pfn, order, Holder(FolioKind::Driver, drv, 0), flags, 1);
        self.owners.drivers[drv as usize].pages.insert(id);
        Some(id)
    }

    /// The driver lets go of a page: an isolated page becomes the migration core's to
    /// finish (its migration reports it released); otherwise it is freed.
    fn driver_release(&mut self, drv: u32, id: FolioId) {
        let d = &mut self.owners.drivers[drv as usize];
        assert!(d.pages.remove(&id), "driver {drv} does not hold {id:?}");
        d.busy.remove(&id);
        // An isolated page stays with the migration core, which finds it released.
        d.isolated.remove(&id);
        self.release_owner_ref(id);
    }

    /// `zs_malloc()`: stores an object of `size` bytes in pool `drv`; returns its zspage.
    /// New pages come with zram's first-try mask (no direct reclaim).
    pub fn zs_malloc(&mut self, drv: u32, size: u32) -> Option<u32> {
        let gfp = Gfp::KSWAPD_RECLAIM | Gfp::NOWARN | Gfp::HIGHMEM | Gfp::MOVABLE;
        self.zs_malloc_gfp(drv, size, gfp)
    }

    /// [`Machine::zs_malloc`] with the mask the caller passes for new pages.
    pub fn zs_malloc_gfp(&mut self, drv: u32, size: u32, gfp: Gfp) -> Option<u32> {
        let (pages, capacity) = zs_class(size);
        let d = &mut self.owners.drivers[drv as usize];
        if let Some(&zs) = d.partial.get(&(pages, capacity)).and_then(|p| p.first()) {
            let z = d.zspages.get_mut(&zs).expect("a partial zspage is live");
            z.used += 1;
            if z.used == z.capacity {
                d.partial
                    .get_mut(&(pages, capacity))
                    .expect("class")
                    .remove(&zs);
            }
            return Some(zs);
        }
        let mut got = Vec::new();
        for _ in 0..pages {
            match self.driver_alloc(drv, Order(0), gfp) {
                Some(id) => got.push(id),
                None => {
                    for id in got {
                        self.driver_release(drv, id);
                    }
                    return None;
                }
            }
        }
        let d = &mut self.owners.drivers[drv as usize];
        let zs = d.next_zspage;
        d.next_zspage += 1;
        for id in &got {
            d.page_zspage.insert(*id, zs);
        }
        if capacity > 1 {
            d.partial.entry((pages, capacity)).or_default().insert(zs);
        }
        d.zspages.insert(
            zs,
            ZsPage {
                pages: got,
                used: 1,
                capacity,
            },
        );
        Some(zs)
    }

    /// `zs_free()`: removes an object from zspage `zs`; an empty zspage is destroyed.
    pub fn zs_free(&mut self, drv: u32, zs: u32) {
        let d = &mut self.owners.drivers[drv as usize];
        let z = d.zspages.get_mut(&zs).expect("live zspage");
        z.used -= 1;
        let class = (z.pages.len() as u32, z.capacity);
        if z.used > 0 {
            d.partial.entry(class).or_default().insert(zs);
            return;
        }
        if let Some(p) = d.partial.get_mut(&class) {
            p.remove(&zs);
        }
        let z = d.zspages.remove(&zs).expect("live zspage");
        for id in z.pages {
            self.owners.drivers[drv as usize].page_zspage.remove(&id);
            self.driver_release(drv, id);
        }
    }

    /// `balloon_page_alloc()` + `balloon_page_enqueue()`: one more page for the host.
    pub fn balloon_inflate(&mut self, drv: u32) -> Option<FolioId> {
        let gfp = Gfp::GFP_HIGHUSER_MOVABLE | Gfp::NOMEMALLOC | Gfp::NORETRY | Gfp::NOWARN;
        self.driver_alloc(drv, Order(0), gfp)
    }

    /// `balloon_page_dequeue()`: one page back from the host; isolated pages are skipped.
    pub fn balloon_deflate(&mut self, drv: u32) -> bool {
        let d = &self.owners.drivers[drv as usize];
        let Some(&id) = d.pages.iter().find(|p| !d.isolated.contains(p)) else {
            return false;
        };
        self.driver_release(drv, id);
        true
    }

    /// A GPU buffer of `order`.
    pub fn gpu_alloc(&mut self, drv: u32, order: Order) -> Option<FolioId> {
        self.driver_alloc(drv, order, Gfp::GFP_HIGHUSER_MOVABLE | Gfp::NOWARN)
    }

    /// Frees a GPU buffer.
    pub fn gpu_free(&mut self, drv: u32, id: FolioId) {
        self.driver_release(drv, id);
    }

    /// Marks a GPU buffer busy (in use by the GPU: it cannot be isolated) or idle.
    pub fn gpu_set_busy(&mut self, drv: u32, id: FolioId, busy: bool) {
        let d = &mut self.owners.drivers[drv as usize];
        if busy && d.pages.contains(&id) {
            d.busy.insert(id);
        } else {
            d.busy.remove(&id);
        }
    }

    /// Mirrors `page_has_movable_ops()`.
    pub fn page_has_movable_ops(&self, id: FolioId) -> bool {
        let rec = self.owners.folio(id);
        rec.kind == FolioKind::Driver && self.mem.flags(rec.pfn).contains(PageFlags::MOVABLE_OPS)
    }

    /// Mirrors `isolate_movable_ops_page()`: a reference unless the count is 0, the flag,
    /// the page lock, not already isolated, the driver's consent; then the isolated bit.
    pub fn isolate_movable_ops_page(&mut self, id: FolioId) -> bool {
        let pfn = self.owners.folio(id).pfn;
        let f = self.mem.flags(pfn);
        if !self.page_has_movable_ops(id)
            || self.mem.refcount(pfn) == 0
            || f.intersects(PageFlags::LOCKED | PageFlags::ISOLATED)
        {
            return false;
        }
        let drv = self.owners.folio(id).owner;
        if !self.owners.drivers[drv as usize].isolate_page(id) {
            return false;
        }
        self.mem.set_flag(pfn, PageFlags::ISOLATED);
        self.mem.set_refcount(pfn, self.mem.refcount(pfn) + 1);
        true
    }

    /// Mirrors `putback_movable_ops_page()`.
    pub fn putback_movable_ops_page(&mut self, id: FolioId) {
        let rec = self.owners.folio(id);
        if !rec.orphan {
            self.owners.drivers[rec.owner as usize].putback_page(id);
        }
        self.mem.clear_flag(rec.pfn, PageFlags::ISOLATED);
        self.folio_put_refs(id, 1);
    }
}
