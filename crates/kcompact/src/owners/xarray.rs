//! A file's page cache index: page index → the cached folio that starts there.
//!
//! Mirrors `struct xarray` as `address_space.i_pages` uses it (include/linux/xarray.h,
//! lib/xarray.c): a radix tree of 64-slot nodes (`XA_CHUNK_SHIFT` = 6) whose height grows
//! with the largest index stored, so a lookup is one slot read per level instead of a
//! search among millions of keys. Nodes live in one arena and name each other by index.
//!
//! DEVIATION(linux): a large folio takes one slot, at its first index, instead of a
//! multi-index entry over all its pages; [`XArray::load_folio`] finds the folio covering an
//! index by probing the aligned first indices a folio of each stored order could have (the
//! page cache's folios are naturally aligned, as `filemap_add_folio()` requires). The
//! tree does not shrink its height when its largest indices go; it empties completely
//! when its last entry goes.

use super::table::FolioId;

/// Mirrors `XA_CHUNK_SHIFT`: index bits per level.
const XA_CHUNK_SHIFT: u32 = 6;
/// Mirrors `XA_CHUNK_SIZE`: slots per node.
const XA_CHUNK_SIZE: usize = 1 << XA_CHUNK_SHIFT;
const XA_CHUNK_MASK: u64 = XA_CHUNK_SIZE as u64 - 1;

/// Mirrors `struct xa_node`: slots hold a child node's arena index + 1 (inner levels) or
/// a folio id (the bottom level); 0 is empty.
#[derive(Clone, Debug)]
struct XaNode {
    slots: [u32; XA_CHUNK_SIZE],
    /// Mirrors `xa_node.count`: the slots in use.
    count: u32,
}

/// A page cache index (see the module's documentation).
#[derive(Clone, Debug, Default)]
pub struct XArray {
    /// The arena of nodes; `free` lists the unused ones.
    nodes: Vec<XaNode>,
    free: Vec<u32>,
    /// The root node's arena index + 1; 0 when empty.
    root: u32,
    /// Levels below the root: the root covers indices below `64^(height + 1)`.
    height: u32,
    /// Entries stored.
    len: usize,
    /// The largest order of a folio ever stored (bounds [`XArray::load_folio`]'s probes).
    max_order: u8,
}

impl XArray {
    /// An empty index.
    pub fn new() -> XArray {
        XArray::default()
    }

    /// True if nothing is stored (`xa_empty()`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    fn covers(&self, index: u64) -> bool {
        let bits = XA_CHUNK_SHIFT * (self.height + 1);
        bits >= 64 || index >> bits == 0
    }

    fn alloc_node(&mut self) -> u32 {
        let n = XaNode {
            slots: [0; XA_CHUNK_SIZE],
            count: 0,
        };
        if let Some(i) = self.free.pop() {
            self.nodes[i as usize] = n;
            i + 1
        } else {
            // A small file's index grows a node at a time (a 128-page file needs 3 nodes,
            // not the 4 a doubling arena would hold); a big one doubles.
            if self.nodes.len() == self.nodes.capacity() && self.nodes.len() < 8 {
                self.nodes.reserve_exact(1);
            }
            self.nodes.push(n);
            self.nodes.len() as u32
        }
    }

    /// The folio stored at exactly `index` (`xa_load()`).
    #[inline]
    pub fn load(&self, index: u64) -> Option<FolioId> {
        if self.root == 0 || !self.covers(index) {
            return None;
        }
        let mut node = self.root;
        let mut shift = XA_CHUNK_SHIFT * self.height;
        loop {
            let slot =
                self.nodes[node as usize - 1].slots[((index >> shift) & XA_CHUNK_MASK) as usize];
            if slot == 0 {
                return None;
            }
            if shift == 0 {
                return Some(FolioId(slot));
            }
            node = slot;
            shift -= XA_CHUNK_SHIFT;
        }
    }

    /// The entry at or below `index` that a naturally aligned folio covering `index`
    /// would occupy: its first index and id, whether or not it reaches `index` (the
    /// caller checks with the folio's order). Among aligned folios that do not overlap,
    /// this is the nearest entry at or below `index` whenever one covers it.
    pub fn load_folio(&self, index: u64) -> Option<(u64, FolioId)> {
        (0..=self.max_order as u32).find_map(|k| {
            let base = index & !((1u64 << k) - 1);
            self.load(base).map(|id| (base, id))
        })
    }

    /// Stores `id`, a folio of `order`, at `index`; returns what was there (`xa_store()`).
    pub fn insert(&mut self, index: u64, order: u8, id: FolioId) -> Option<FolioId> {
        debug_assert!(id.0 != 0);
        self.max_order = self.max_order.max(order);
        if self.root == 0 {
            self.height = 0;
            while !self.covers(index) {
                self.height += 1;
            }
            self.root = self.alloc_node();
        }
        while !self.covers(index) {
            // xas_expand(): a new root whose first slot is the old one.
            let r = self.alloc_node();
            self.nodes[r as usize - 1].slots[0] = self.root;
            self.nodes[r as usize - 1].count = 1;
            self.root = r;
            self.height += 1;
        }
        let mut node = self.root;
        let mut shift = XA_CHUNK_SHIFT * self.height;
        while shift > 0 {
            let s = ((index >> shift) & XA_CHUNK_MASK) as usize;
            let mut child = self.nodes[node as usize - 1].slots[s];
            if child == 0 {
                child = self.alloc_node();
                let n = &mut self.nodes[node as usize - 1];
                n.slots[s] = child;
                n.count += 1;
            }
            node = child;
            shift -= XA_CHUNK_SHIFT;
        }
        let n = &mut self.nodes[node as usize - 1];
        let s = (index & XA_CHUNK_MASK) as usize;
        let old = n.slots[s];
        n.slots[s] = id.0;
        if old == 0 {
            n.count += 1;
            self.len += 1;
            None
        } else {
            Some(FolioId(old))
        }
    }

    /// Erases the entry at `index`; returns it (`xa_erase()`). Nodes left empty are freed.
    pub fn remove(&mut self, index: u64) -> Option<FolioId> {
        if self.root == 0 || !self.covers(index) {
            return None;
        }
        let mut path = [(0u32, 0usize); MAX_LEVELS];
        let mut depth = 0;
        let mut node = self.root;
        let mut shift = XA_CHUNK_SHIFT * self.height;
        loop {
            let s = ((index >> shift) & XA_CHUNK_MASK) as usize;
            path[depth] = (node, s);
            depth += 1;
            let slot = self.nodes[node as usize - 1].slots[s];
            if slot == 0 {
                return None;
            }
            if shift == 0 {
                break;
            }
            node = slot;
            shift -= XA_CHUNK_SHIFT;
        }
        let (leaf, s) = path[depth - 1];
        let old = self.nodes[leaf as usize - 1].slots[s];
        self.len -= 1;
        // Clear the slot, then free each node it leaves empty, bottom up.
        for &(n, s) in path[..depth].iter().rev() {
            let node = &mut self.nodes[n as usize - 1];
            node.slots[s] = 0;
            node.count -= 1;
            if node.count > 0 {
                break;
            }
            self.free.push(n - 1);
            if n == self.root {
                self.root = 0;
                self.height = 0;
            }
        }
        Some(FolioId(old))
    }

    /// Every entry, in index order (`xa_for_each()`).
    pub fn iter(&self) -> Iter<'_> {
        self.range_inclusive(0, u64::MAX)
    }

    /// The entries at indices `lo..hi`, in index order (`xa_for_each_range()`, whose end
    /// is inclusive).
    pub fn range(&self, lo: u64, hi: u64) -> Iter<'_> {
        let mut it = self.range_inclusive(lo, hi.saturating_sub(1));
        if lo >= hi {
            it.depth = 0;
        }
        it
    }

    fn range_inclusive(&self, lo: u64, last: u64) -> Iter<'_> {
        let mut it = Iter {
            xa: self,
            stack: [(0, 0, 0, 0); MAX_LEVELS],
            depth: 0,
            lo,
            last,
        };
        if self.root != 0 && self.covers(lo) {
            it.push(self.root, self.height, 0);
        }
        it
    }

    /// True if an entry lies at an index in `lo..hi`.
    pub fn any_in(&self, lo: u64, hi: u64) -> bool {
        if hi.saturating_sub(lo) <= 8 {
            (lo..hi).any(|i| self.load(i).is_some())
        } else {
            self.range(lo, hi).next().is_some()
        }
    }

    /// Every stored index, in order.
    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.iter().map(|(i, _)| i)
    }

    /// Every stored folio, in index order.
    pub fn values(&self) -> impl Iterator<Item = FolioId> + '_ {
        self.iter().map(|(_, id)| id)
    }
}

/// Levels a tree of 64-bit indices can have.
const MAX_LEVELS: usize = 11;

/// The entries of an [`XArray`] in index order.
pub struct Iter<'a> {
    xa: &'a XArray,
    /// (node, next slot, level, first index the node covers), `depth` of them in use.
    stack: [(u32, usize, u32, u64); MAX_LEVELS],
    depth: usize,
    lo: u64,
    last: u64,
}

impl Iter<'_> {
    /// Enters a node, at the slot holding `lo` if the node covers it.
    fn push(&mut self, node: u32, level: u32, base: u64) {
        let shift = XA_CHUNK_SHIFT * level;
        let first = if base <= self.lo {
            ((self.lo >> shift) & XA_CHUNK_MASK) as usize
        } else {
            0
        };
        self.stack[self.depth] = (node, first, level, base);
        self.depth += 1;
    }
}

impl Iterator for Iter<'_> {
    type Item = (u64, FolioId);

    fn next(&mut self) -> Option<(u64, FolioId)> {
        while self.depth > 0 {
            let top = &mut self.stack[self.depth - 1];
            let (node, s, level, base) = *top;
            if s == XA_CHUNK_SIZE {
                self.depth -= 1;
                continue;
            }
            top.1 += 1;
            let slot = self.xa.nodes[node as usize - 1].slots[s];
            if slot == 0 {
                continue;
            }
            let shift = XA_CHUNK_SHIFT * level;
            let index = base | (s as u64) << shift;
            if index > self.last {
                self.depth = 0;
                return None;
            }
            if level == 0 {
                if index < self.lo {
                    continue;
                }
                return Some((index, FolioId(slot)));
            }
            self.push(slot, level - 1, index);
        }
        None
    }
}

impl<'a> IntoIterator for &'a XArray {
    type Item = (u64, FolioId);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The index agrees with an ordered map through inserts and removals at small and
    /// huge indices, and frees every node once empty.
    #[test]
    fn agrees_with_an_ordered_map() {
        let mut xa = XArray::new();
        let mut map = BTreeMap::new();
        let mut rng = crate::rng::SimRng::new(0x2545_f491_4f6c_dd1du64);
        for step in 0..20_000u32 {
            let x = rng.next_u64();
            let index = match x % 4 {
                0 => x >> 60,
                1 => (x >> 40) & 0xfff,
                2 => x >> 20,
                _ => x,
            };
            if x.is_multiple_of(3) {
                assert_eq!(xa.remove(index), map.remove(&index));
            } else {
                let id = FolioId(step + 1);
                assert_eq!(xa.insert(index, 0, id), map.insert(index, id));
            }
            assert_eq!(xa.load(index), map.get(&index).copied());
        }
        assert_eq!(xa.len(), map.len());
        let got: Vec<(u64, FolioId)> = xa.iter().collect();
        let want: Vec<(u64, FolioId)> = map.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(got, want);
        for (lo, hi) in [
            (0, 1),
            (5, 5000),
            (1 << 20, 1 << 44),
            (rng.next_u64() >> 3, u64::MAX),
        ] {
            let got: Vec<(u64, FolioId)> = xa.range(lo, hi).collect();
            let want: Vec<(u64, FolioId)> = map.range(lo..hi).map(|(k, v)| (*k, *v)).collect();
            assert_eq!(got, want, "{lo}..{hi}");
        }
        for k in want.iter().map(|(k, _)| *k) {
            assert!(xa.remove(k).is_some());
        }
        assert!(xa.is_empty() && xa.root == 0);
        assert_eq!(xa.free.len(), xa.nodes.len());
    }

    /// `load_folio` finds the aligned large folio covering an index.
    #[test]
    fn load_folio_finds_the_covering_entry() {
        let mut xa = XArray::new();
        xa.insert(8, 3, FolioId(1));
        xa.insert(17, 0, FolioId(2));
        assert_eq!(xa.load_folio(13), Some((8, FolioId(1))));
        assert_eq!(xa.load_folio(8), Some((8, FolioId(1))));
        assert_eq!(xa.load_folio(17), Some((17, FolioId(2))));
        assert_eq!(xa.load_folio(18), None);
        assert_eq!(xa.load_folio(3), None);
    }
}
