//! The page cache's slab objects of a loaded machine, from `slabinfo` (see
//! [`crate::owners::slab`]): which loaded slab pages are the `buffer_head` and
//! `radix_tree_node` caches' slabs, and which folio's buffer heads each holds.

use super::text::SlabInfoRecord;
use crate::machine::Machine;
use crate::memmap::{MigrateType, PageFlags};
use crate::owners::slab::{BUFFER_HEAD, RADIX_TREE_NODE};
use crate::owners::table::{FolioId, FolioKind};
use crate::units::{Order, Pfn};
use std::collections::BTreeMap;

/// What [`attach_cache_slab`] made of `slabinfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheSlabLoad {
    /// `buffer_head` slabs adopted of those `slabinfo` counts.
    pub bh_slabs: (u64, u64),
    /// Buffer heads attached to page-cache folios with private data, of `active_objs`.
    pub bh_attached: (u64, u64),
    /// `radix_tree_node` slabs adopted of those `slabinfo` counts.
    pub xa_slabs: (u64, u64),
    /// Unused dentries and inodes placed for `drop_slab()` to free.
    pub fs_prunable: u64,
}

/// `/proc/sys/fs/dentry-state` and `inode-state` as a snapshot holds them: (objects,
/// unused objects) of each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsState {
    /// `nr_dentry`, `nr_unused`.
    pub dentries: (u64, u64),
    /// `nr_inodes`, `nr_unused`.
    pub inodes: (u64, u64),
}

/// Gives the loaded machine its page-cache slab objects: `slab_tag` is the owner tag the
/// loader gave slab pages. Each cache's slabs are taken from the loaded slab folios of its
/// order, those in RECLAIMABLE pageblocks first (the caches are SLAB_RECLAIM_ACCOUNT), in
/// pfn order. Buffer heads go one per page of each page-cache folio with `PG_private`:
/// those of folios a drop keeps (mapped, dirty, under writeback) fill slabs of their own
/// first, the others the rest in LRU order; objects no folio accounts for stay in use. The
/// XArray nodes are spread evenly and released at the loaded ratio of nodes to
/// page-cache pages.
///
/// With `fs` (the snapshot's `dentry-state` and `inode-state`), the dentry cache and the
/// inode caches (`*inode_cache`, the LSM's per-inode blobs included) get their slabs too:
/// each cache's objects in use fill slabs of their own, lowest pfn first, and its unused
/// ones — its share of the unused count (for inodes at least the dentries' share) — the
/// rest evenly, which `drop_slab()` then frees.
pub fn attach_cache_slab(
    m: &mut Machine,
    slabinfo: &[SlabInfoRecord],
    fs: Option<FsState>,
    slab_tag: u32,
) -> CacheSlabLoad {
    let mut out = CacheSlabLoad::default();
    let mut pages = SlabPages::of(m, slab_tag);
    let find = |name: &str| slabinfo.iter().find(|r| r.name == name && r.num_slabs > 0);
    if let Some(r) = find(BUFFER_HEAD) {
        attach_buffer_heads(m, &mut pages, r, &mut out);
    }
    if let Some(r) = find(RADIX_TREE_NODE) {
        attach_xa_nodes(m, &mut pages, r, &mut out);
    }
    if let Some(fs) = fs {
        attach_fs_caches(m, &mut pages, slabinfo, fs, &mut out);
    }
    out
}

/// The loaded slab folios not yet given to a cache, by order: those outside RECLAIMABLE
/// pageblocks last, in pfn order.
struct SlabPages(BTreeMap<u8, Vec<(bool, Pfn, FolioId)>>);

impl SlabPages {
    fn of(m: &Machine, slab_tag: u32) -> SlabPages {
        let mut by_order: BTreeMap<u8, Vec<(bool, Pfn, FolioId)>> = BTreeMap::new();
        for (id, rec) in m.owners.iter() {
            if rec.kind == FolioKind::Kernel && rec.owner == slab_tag {
                let other = m.pageblocks.migratetype(rec.pfn) != MigrateType::Reclaimable;
                by_order
                    .entry(rec.order.0)
                    .or_default()
                    .push((other, rec.pfn, id));
            }
        }
        for v in by_order.values_mut() {
            v.sort();
            v.reverse(); // taken from the end
        }
        SlabPages(by_order)
    }

    /// Up to `r.num_slabs` slab folios of the cache's order, in pfn order.
    fn take(&mut self, r: &SlabInfoRecord) -> (Order, Vec<FolioId>) {
        let order = Order(r.pagesperslab.trailing_zeros() as u8);
        let pool = self.0.entry(order.0).or_default();
        let n = (r.num_slabs as usize).min(pool.len());
        let mut got: Vec<(Pfn, FolioId)> = (0..n)
            .filter_map(|_| pool.pop())
            .map(|x| (x.1, x.2))
            .collect();
        got.sort();
        (order, got.into_iter().map(|x| x.1).collect())
    }

    /// A cache shaped as `r` says, and the slab folios it takes (not yet adopted).
    fn new_cache(&mut self, m: &mut Machine, r: &SlabInfoRecord) -> (u32, Vec<FolioId>) {
        let (order, slabs) = self.take(r);
        let cache = m.kmem_cache_create_as(r.objsize as u32, r.objperslab as u32, order);
        (cache, slabs)
    }
}

/// The `buffer_head` cache: one buffer head per page of each private page-cache folio.
fn attach_buffer_heads(
    m: &mut Machine,
    pages: &mut SlabPages,
    r: &SlabInfoRecord,
    out: &mut CacheSlabLoad,
) {
    let (cache, slabs) = pages.new_cache(m, r);
    out.bh_slabs = (slabs.len() as u64, r.num_slabs);
    m.owners.cache_slab.bh_cache = Some(cache);
    // The survivors' buffer heads (folio, page) and the others' folios (folio, pages),
    // both in folio order.
    let (mut kept, mut gone) = (Vec::new(), Vec::new());
    let mut gone_pages = 0usize;
    for (id, rec) in m.owners.iter() {
        let f = m.mem.flags(rec.pfn);
        if rec.kind == FolioKind::File && f.contains(PageFlags::PRIVATE) {
            let stays = m.mem.mapcount(rec.pfn) > 0
                || f.intersects(PageFlags::DIRTY | PageFlags::WRITEBACK);
            let n = rec.order.nr_pages() as u32;
            if stays {
                kept.extend((0..n).map(|b| (id, b)));
            } else {
                gone.push((id, n));
                gone_pages += n as usize;
            }
        }
    }
    let per = r.objperslab as usize;
    let cap = slabs.len() * per;
    let total = (r.active_objs as usize).min(cap);
    let attach = (kept.len() + gone_pages).min(total);
    // Survivors packed from the first slab; the rest spread over the remaining ones.
    let kept_n = kept.len().min(attach);
    let first_free = kept_n.div_ceil(per).min(slabs.len());
    let rest = slabs.len() - first_free;
    let gone_n = gone_pages.min(attach - kept_n).min(rest * per);
    let mut used = vec![0u32; slabs.len()];
    let mut kept_heads = Vec::with_capacity(kept_n);
    for (i, k) in kept.into_iter().take(kept_n).enumerate() {
        let s = i / per;
        kept_heads.push((k, slabs[s]));
        used[s] += 1;
    }
    // A folio's buffer heads were allocated when it entered the page cache, which is
    // when it joined the LRU: the others fill the slabs in the order reclaim meets
    // them (inactive list from its tail, then the active one; folios on no list after,
    // by id), page by page, an even share each. The ranks are unique, so the order is
    // read off by rank rather than sorted.
    let rank = lru_ranks(m);
    let mut by_rank = vec![usize::MAX; rank.len()];
    let mut unranked = Vec::new();
    for (j, (id, _)) in gone.iter().enumerate() {
        match rank.get(id.0 as usize).copied().unwrap_or(u32::MAX) {
            u32::MAX => unranked.push(j),
            r => by_rank[r as usize] = j,
        }
    }
    // Each folio's first page in that order.
    let mut first = vec![0usize; gone.len()];
    let mut i = 0;
    for j in by_rank
        .into_iter()
        .filter(|j| *j != usize::MAX)
        .chain(unranked)
    {
        first[j] = i;
        i += gone[j].1 as usize;
    }
    let share = gone_n.div_ceil(rest.max(1)).max(1);
    // gone_n fits the remaining slabs, so no slab overfills.
    let slab_at = |i: usize| first_free + i / share;
    let mut gone_heads = Vec::with_capacity(gone_n);
    for (j, &(id, n)) in gone.iter().enumerate() {
        for b in 0..n {
            let i = first[j] + b as usize;
            if i < gone_n {
                gone_heads.push(((id, b), slabs[slab_at(i)]));
                used[slab_at(i)] += 1;
            }
        }
    }
    // Every buffer head's slab, entered in the map at once: both lists are in key order
    // (folio, page), merged into one, from which the B-tree is built whole (millions of
    // keys on a page-cache-heavy machine, rather than one insertion at a time).
    let mut heads = Vec::with_capacity(kept_heads.len() + gone_heads.len());
    let (mut a, mut b) = (
        kept_heads.into_iter().peekable(),
        gone_heads.into_iter().peekable(),
    );
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.0 <= y.0 => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        };
        match next {
            Some(h) => heads.push(h),
            None => break,
        }
    }
    let map = &mut m.owners.cache_slab.buffer_heads;
    if map.is_empty() {
        *map = heads.into_iter().collect();
    } else {
        map.extend(heads);
    }
    // Objects no folio accounts for: where there is room, evenly.
    let mut extra = total - kept_n - gone_n;
    let mut i = 0;
    while extra > 0 && !slabs.is_empty() {
        if (used[i] as usize) < per {
            used[i] += 1;
            extra -= 1;
        }
        i = (i + 1) % slabs.len();
    }
    for (id, u) in slabs.iter().zip(used) {
        if u > 0 {
            m.adopt_slab(*id, cache, u);
        }
    }
    out.bh_attached = ((kept_n + gone_n) as u64, r.active_objs);
}

/// The `radix_tree_node` cache: the page cache's XArray nodes, spread evenly.
fn attach_xa_nodes(
    m: &mut Machine,
    pages: &mut SlabPages,
    r: &SlabInfoRecord,
    out: &mut CacheSlabLoad,
) {
    let (cache, slabs) = pages.new_cache(m, r);
    out.xa_slabs = (slabs.len() as u64, r.num_slabs);
    m.owners.cache_slab.xa_cache = Some(cache);
    let per = r.objperslab;
    let total = r.active_objs.min(slabs.len() as u64 * per);
    let n = slabs.len() as u64;
    for (i, id) in slabs.iter().enumerate() {
        let u = total / n.max(1) + ((i as u64) < total % n.max(1)) as u64;
        if u > 0 {
            m.adopt_slab(*id, cache, u as u32);
        }
    }
    let pages: u64 = m
        .owners
        .iter()
        .filter(|(_, r)| r.kind.in_page_cache())
        .map(|(_, r)| r.order.nr_pages())
        .sum();
    m.owners.cache_slab.xa_per_mpage = (total << 20) / pages.max(1);
}

/// The dentry and inode caches: the objects in use packed, the unused share apart.
fn attach_fs_caches(
    m: &mut Machine,
    pages: &mut SlabPages,
    slabinfo: &[SlabInfoRecord],
    fs: FsState,
    out: &mut CacheSlabLoad,
) {
    let shrinkable: Vec<SlabInfoRecord> = slabinfo
        .iter()
        .filter(|r| r.num_slabs > 0 && (r.name == "dentry" || r.name.ends_with("inode_cache")))
        .cloned()
        .collect();
    for r in shrinkable {
        // An unused dentry holds its inode: pruning it releases the inode, which
        // `prune_icache_sb()` then frees (its page cache dropped first). So an inode
        // cache loses at least the dentries' unused share, though `inode-state`
        // counts few unused inodes: `__inode_add_lru()` keeps an inode whose mapping is
        // not `mapping_shrinkable()` (it holds page cache) off the inode LRU.
        let frac = |(n, u): (u64, u64)| (u.min(n) as u128, n.max(1) as u128);
        let ((du, dn), (iu, inn)) = (frac(fs.dentries), frac(fs.inodes));
        let (unused, n) = if r.name == "dentry" || du * inn >= iu * dn {
            (du, dn)
        } else {
            (iu, inn)
        };
        let (order, slabs) = pages.take(&r);
        if slabs.is_empty() {
            continue;
        }
        let per = r.objperslab;
        let cap = slabs.len() as u64 * per;
        let active = r.active_objs.min(cap);
        let prune = (active as u128 * unused / n) as u64;
        let keep = active - prune;
        let keep_slabs = keep.div_ceil(per).min(slabs.len() as u64) as usize;
        let rest = slabs.len() - keep_slabs;
        let prune = prune.min(rest as u64 * per);
        let cache = m.kmem_cache_create_as(r.objsize as u32, per as u32, order);
        m.owners.cache_slab.fs_caches.push(cache);
        let mut prunable = Vec::new();
        for (i, id) in slabs.iter().enumerate() {
            let used = if i < keep_slabs {
                per.min(keep - i as u64 * per)
            } else {
                let j = (i - keep_slabs) as u64;
                prune / rest as u64 + u64::from(j < prune % rest as u64)
            };
            if used > 0 {
                m.adopt_slab(*id, cache, used as u32);
                if i >= keep_slabs {
                    prunable.push(*id);
                }
            }
        }
        out.fs_prunable += prune;
        m.owners.cache_slab.prunable.push((cache, prunable));
    }
}

/// Each LRU folio's place in the order reclaim takes them: the inactive file list from its
/// tail, then the active one, node by node (indexed by folio id; `u32::MAX` elsewhere).
fn lru_ranks(m: &Machine) -> Vec<u32> {
    use crate::mmzone::LruList;
    let max = m.owners.iter().map(|(id, _)| id.0).max().unwrap_or(0);
    let mut rank = vec![u32::MAX; max as usize + 1];
    let mut next = 0u32;
    for n in 0..m.nodes.len() {
        for lru in [LruList::InactiveFile, LruList::ActiveFile] {
            let node = crate::units::NodeId(n as u8);
            let entries: Vec<FolioId> = m.lru_entries(node, lru).flatten().collect();
            for &id in entries.iter().rev() {
                if rank[id.0 as usize] == u32::MAX {
                    rank[id.0 as usize] = next;
                    next += 1;
                }
            }
        }
    }
    rank
}
