//! Kernel memory: slab caches (unmovable and reclaimable), page tables, stacks, network
//! buffers, and the hugetlb pool. None of it is on an LRU list; compaction cannot move it.

use super::table::{FolioId, FolioKind, SlabCache};
use crate::gfp::Gfp;
use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::units::{NodeId, Order, PAGE_SIZE};
use std::collections::BTreeMap;

impl Machine {
    /// `kmem_cache_create()`: a cache of `obj_size`-byte objects.
    pub fn kmem_cache_create(&mut self, obj_size: u32, reclaimable: bool) -> u32 {
        assert!(
            (8..=65536).contains(&obj_size),
            "object size {obj_size} out of range"
        );
        // DEVIATION(linux): SLUB's calculate_order() weighs waste and CPU count; the model
        // takes the smallest order holding 8 objects, with no per-cpu or partial slabs.
        let order = (0..=3u8)
            .find(|o| (PAGE_SIZE << o) / obj_size as u64 >= 8)
            .unwrap_or(3);
        let objs = ((PAGE_SIZE << order) / obj_size as u64).max(1) as u32;
        self.owners.caches.push(SlabCache {
            obj_size,
            reclaimable,
            order: Order(order),
            objs_per_slab: objs,
            slabs: BTreeMap::new(),
        });
        self.owners.caches.len() as u32 - 1
    }

    /// `kmem_cache_alloc()`: an object from a partially used slab (lowest id first), or
    /// from a new slab folio. Returns the slab holding it.
    pub fn kmem_cache_alloc(&mut self, cache: u32) -> Option<FolioId> {
        let c = &self.owners.caches[cache as usize];
        if let Some((&slab, _)) = c.slabs.iter().find(|(_, used)| **used < c.objs_per_slab) {
            *self.owners.caches[cache as usize]
                .slabs
                .get_mut(&slab)
                .expect("slab") += 1;
            return Some(slab);
        }
        let (order, reclaimable) = (c.order, c.reclaimable);
        let mut gfp = if reclaimable {
            Gfp::GFP_KERNEL_RECLAIMABLE
        } else {
            Gfp::GFP_KERNEL
        };
        if order.0 > 0 {
            gfp = gfp | Gfp::COMP | Gfp::NOWARN;
        }
        let pfn = self.alloc_pages(gfp, order, NodeId(0))?;
        let id = self.own_folio(
            pfn,
            order,
            super::Holder(FolioKind::Slab, cache, 0),
            PageFlags::SLAB,
            1,
        );
        self.owners.caches[cache as usize].slabs.insert(id, 1);
        Some(id)
    }

    /// `kmem_cache_free()` of an object in `slab`; the slab folio is freed with its last
    /// object.
    pub fn kmem_cache_free(&mut self, cache: u32, slab: FolioId) {
        let used = self.owners.caches[cache as usize]
            .slabs
            .get_mut(&slab)
            .expect("object's slab");
        assert!(*used > 0, "free of an object of an empty slab");
        *used -= 1;
        if *used == 0 {
            self.owners.caches[cache as usize].slabs.remove(&slab);
            let pfn = self.owners.folio(slab).pfn;
            self.mem.clear_flag(pfn, PageFlags::SLAB);
            self.release_owner_ref(slab);
        }
    }

    /// Other unmovable kernel memory (kernel stacks, network buffers): `2^order` pages
    /// tagged `tag`.
    pub fn alloc_kernel(&mut self, order: Order, tag: u32) -> Option<FolioId> {
        self.alloc_kernel_gfp(Gfp::GFP_KERNEL, order, tag)
    }

    /// Kernel memory allocated with `gfp` (GFP_ATOMIC, a reclaimable mask, ...).
    pub fn alloc_kernel_gfp(&mut self, gfp: Gfp, order: Order, tag: u32) -> Option<FolioId> {
        let gfp = if order.0 > 0 { gfp | Gfp::COMP } else { gfp };
        let pfn = self.alloc_pages(gfp, order, NodeId(0))?;
        Some(self.own_folio(
            pfn,
            order,
            super::Holder(FolioKind::Kernel, tag, 0),
            PageFlags::EMPTY,
            1,
        ))
    }

    /// Frees kernel memory from [`Machine::alloc_kernel`].
    pub fn free_kernel(&mut self, id: FolioId) {
        assert_eq!(self.owners.folio(id).kind, FolioKind::Kernel);
        self.release_owner_ref(id);
    }

    /// Adds a page to the hugetlb pool (`alloc_pool_huge_folio()`), order 9.
    pub fn alloc_hugetlb(&mut self) -> Option<FolioId> {
        let gfp = Gfp::GFP_HIGHUSER_MOVABLE | Gfp::COMP | Gfp::RETRY_MAYFAIL | Gfp::NOWARN;
        let pfn = self.alloc_pages(gfp, Order(9), NodeId(0))?;
        Some(self.own_folio(
            pfn,
            Order(9),
            super::Holder(FolioKind::Hugetlb, 0, 0),
            PageFlags::HUGETLB,
            1,
        ))
    }

    /// Returns a hugetlb pool page to the buddy allocator.
    pub fn free_hugetlb(&mut self, id: FolioId) {
        assert_eq!(self.owners.folio(id).kind, FolioKind::Hugetlb);
        self.release_owner_ref(id);
    }
}
