//! The reclaimable slab objects drop_caches and reclaim free. Those that live and die with
//! the page cache: the buffer heads of
//! a folio's blocks (`buffer_head`, one per block, freed by `try_to_free_buffers()` when
//! the folio's buffers are released) and the page cache's XArray nodes
//! (`radix_tree_node`, freed as a mapping's pages go). When a slab's last object is freed,
//! its pages go back to the buddy allocator — which is how `drop_caches` and reclaim free
//! slab memory besides the page cache itself.
//!
//! A machine loaded from a snapshot gets them from `slabinfo`: the caches' slabs are the
//! loaded slab pages, and each page-cache page with `PG_private` holds one buffer head (on
//! this machine's captures the two counts agree within 0.03 %: D_g4_s1 527,579 private
//! pages and 527,718 buffer heads before `drop_caches`, 2,680 and 2,769 after).
//!
//! DEVIATION(linux): the model's own page cache (scenarios, replay) has no buffer heads or
//! XArray nodes; only a loaded machine's does. The XArray nodes are not tied to indices:
//! they go with page-cache pages at the loaded ratio of nodes to pages. Which slab holds
//! which folio's buffer head is not in the files: those of folios that stay in the cache
//! through a drop (mapped, dirty, under writeback) fill slabs of their own, lowest pfn
//! first (the kernel's survivors of a drop fill whole slabs: 2,769 buffer heads in 71
//! slabs of 39 on D_g4_s1), and the others fill the rest in the order reclaim meets their
//! folios, an even share per slab (they were allocated as the folios entered the cache and
//! the LRU); XArray nodes are freed from the slab with the fewest objects first.
//!
//! And the unused dentries and inodes `drop_slab()` frees: a snapshot with `dentry-state`
//! and `inode-state` gives the dentry and inode caches' unused share slabs of their own
//! (`snapshot/slab.rs`), freed whole by [`Machine::drop_slab`].

use super::table::{FolioId, FolioKind, SlabCache};
use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::units::Order;
use std::collections::BTreeMap;

/// The two caches' names in `slabinfo`.
pub const BUFFER_HEAD: &str = "buffer_head";
/// `radix_tree_node`: XArray nodes.
pub const RADIX_TREE_NODE: &str = "radix_tree_node";

impl Machine {
    /// Creates a reclaimable slab cache shaped as `slabinfo` shows it.
    pub fn kmem_cache_create_as(&mut self, objsize: u32, objs_per_slab: u32, order: Order) -> u32 {
        self.owners.caches.push(SlabCache {
            obj_size: objsize,
            reclaimable: true,
            order,
            objs_per_slab,
            slabs: BTreeMap::new(),
        });
        self.owners.caches.len() as u32 - 1
    }

    /// Makes the kernel folio `id` (a loaded slab page) a slab of `cache` holding `used`
    /// objects.
    pub fn adopt_slab(&mut self, id: FolioId, cache: u32, used: u32) {
        let rec = self.owners.folio(id);
        assert_eq!(
            rec.kind,
            FolioKind::Kernel,
            "only a kernel folio becomes a slab"
        );
        assert!(used > 0);
        self.owners.update(id, |r| {
            r.kind = FolioKind::Slab;
            r.owner = cache;
        });
        let pfn = rec.pfn;
        self.mem.set_flag(pfn, PageFlags::SLAB);
        self.owners.caches[cache as usize].slabs.insert(id, used);
    }

    /// Mirrors the `free_buffer_head()` calls of `try_to_free_buffers()`: the buffer heads
    /// of folio `id` go back to their slabs (a slab's pages are freed with its last
    /// object). Called wherever a page-cache folio's `PG_private` is cleared.
    pub fn free_folio_buffers(&mut self, id: FolioId) {
        let Some(cache) = self.owners.cache_slab.bh_cache else {
            return;
        };
        let keys: Vec<(FolioId, u32)> = self
            .owners
            .cache_slab
            .buffer_heads
            .range((id, 0)..=(id, u32::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            let slab = self
                .owners
                .cache_slab
                .buffer_heads
                .remove(&k)
                .expect("listed");
            self.kmem_cache_free(cache, slab);
        }
    }

    /// The page cache lost `nr` pages: the XArray nodes that held them go, at the loaded
    /// ratio of nodes to pages, from the slab with the fewest objects first.
    ///
    /// The slab with the fewest objects keeps being that slab as objects leave it, until
    /// it empties (nothing else allocates or frees in the loader's `radix_tree_node`
    /// cache), so it is remembered rather than searched for at every node: a search per
    /// node made dropping a 24 GiB machine's page cache quadratic.
    pub fn page_cache_nodes_release(&mut self, nr: u64) {
        let Some(cache) = self.owners.cache_slab.xa_cache else {
            return;
        };
        let cs = &mut self.owners.cache_slab;
        cs.xa_owed += nr * cs.xa_per_mpage;
        let mut owed = cs.xa_owed >> 20;
        cs.xa_owed &= (1 << 20) - 1;
        while owed > 0 {
            let c = &self.owners.caches[cache as usize];
            let fewest = || {
                c.slabs
                    .iter()
                    .min_by_key(|(id, used)| (**used, **id))
                    .map(|(s, _)| *s)
            };
            let victim = self
                .owners
                .cache_slab
                .xa_victim
                .filter(|v| c.slabs.contains_key(v));
            let Some(slab) = victim.or_else(fewest) else {
                return;
            };
            debug_assert_eq!(
                Some(slab),
                fewest(),
                "the remembered slab has the fewest objects"
            );
            self.owners.cache_slab.xa_victim = Some(slab);
            self.kmem_cache_free(cache, slab);
            owed -= 1;
        }
    }

    /// Mirrors what `drop_slab()` does to the dentry and inode caches
    /// (`super_cache_scan()` → `prune_dcache_sb()`, `prune_icache_sb()`): every unused
    /// dentry and inode is freed, and the slabs that held only those go back to the buddy
    /// allocator. Returns the pages freed.
    pub fn drop_slab(&mut self) -> u64 {
        let prunable = std::mem::take(&mut self.owners.cache_slab.prunable);
        let mut pages = 0;
        for (cache, slabs) in prunable {
            for slab in slabs {
                let Some(&used) = self.owners.caches[cache as usize].slabs.get(&slab) else {
                    continue;
                };
                pages += self.owners.caches[cache as usize].order.nr_pages();
                for _ in 0..used {
                    self.kmem_cache_free(cache, slab);
                }
            }
        }
        pages
    }

    /// Pages of the page cache's and the file systems' slab caches (the part of
    /// `SReclaimable` the model holds).
    pub fn cache_slab_pages(&self) -> u64 {
        let cs = &self.owners.cache_slab;
        [cs.bh_cache, cs.xa_cache]
            .into_iter()
            .flatten()
            .chain(cs.fs_caches.iter().copied())
            .map(|c| {
                let c = &self.owners.caches[c as usize];
                c.slabs.len() as u64 * c.order.nr_pages()
            })
            .sum()
    }
}
