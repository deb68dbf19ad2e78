//! The reverse map: every (folio, process, virtual page) mapping, found from the folio.
//!
//! Most folios are mapped once, so each folio's first mapping (the smallest (process,
//! virtual page)) sits in a slot indexed by the folio id, and only the further mappings
//! of shared folios (fork, a file mapped twice) go into an ordered set. Iteration is in
//! (folio, process, virtual page) order, as one ordered set of all mappings would give.
//! A slot is 8 bytes: the process and the virtual page's low 32 bits; a virtual page of
//! 2^32 - 1 or more is kept beside the slots, by folio id.

use super::table::FolioId;
use std::collections::{BTreeMap, BTreeSet};

const NONE: (u32, u64) = (u32::MAX, u64::MAX);
/// A slot's virtual page when it is in [`Rmap::wide`].
const WIDE: u32 = u32::MAX;

/// The reverse map (see the module's documentation).
#[derive(Clone, Debug, Default)]
pub struct Rmap {
    /// By folio id - 1: the smallest mapping (process, virtual page or [`WIDE`]), or
    /// `(u32::MAX, WIDE)` for none.
    first: Vec<(u32, u32)>,
    /// The virtual pages of the slots that say [`WIDE`], by folio id - 1.
    wide: BTreeMap<u32, u64>,
    /// Every other mapping.
    more: BTreeSet<(FolioId, u32, u64)>,
}

impl Rmap {
    fn slot(&self, id: FolioId) -> (u32, u64) {
        let i = (id.0 as usize).wrapping_sub(1);
        self.first
            .get(i)
            .map_or(NONE, |s| self.unpack(i as u32, *s))
    }

    fn unpack(&self, i: u32, s: (u32, u32)) -> (u32, u64) {
        match s {
            (u32::MAX, WIDE) => NONE,
            (pid, WIDE) => (pid, self.wide[&i]),
            (pid, vpn) => (pid, vpn as u64),
        }
    }

    /// Sets slot `i` (which exists) to `m`.
    fn set(&mut self, i: usize, m: (u32, u64)) {
        if m != NONE && m.1 >= WIDE as u64 {
            self.wide.insert(i as u32, m.1);
            self.first[i] = (m.0, WIDE);
        } else {
            if self.first[i].1 == WIDE {
                self.wide.remove(&(i as u32));
            }
            self.first[i] = if m == NONE {
                (u32::MAX, WIDE)
            } else {
                (m.0, m.1 as u32)
            };
        }
    }

    /// Adds a mapping; false if it was there.
    pub fn insert(&mut self, m: (FolioId, u32, u64)) -> bool {
        let (id, pid, vpn) = m;
        let i = id.0 as usize - 1;
        if i >= self.first.len() {
            self.first.resize(i + 1, (u32::MAX, WIDE));
        }
        let cur = self.slot(id);
        if cur == NONE {
            self.set(i, (pid, vpn));
            true
        } else if (pid, vpn) < cur {
            self.set(i, (pid, vpn));
            self.more.insert((id, cur.0, cur.1))
        } else if (pid, vpn) == cur {
            false
        } else {
            self.more.insert(m)
        }
    }

    /// Removes a mapping; false if it was not there.
    pub fn remove(&mut self, m: &(FolioId, u32, u64)) -> bool {
        let (id, pid, vpn) = *m;
        if self.slot(id) == (pid, vpn) && (pid, vpn) != NONE {
            let next = self
                .more
                .range((id, 0, 0)..=(id, u32::MAX, u64::MAX))
                .next()
                .copied();
            let new = match next {
                Some(n) => {
                    self.more.remove(&n);
                    (n.1, n.2)
                }
                None => NONE,
            };
            self.set(id.0 as usize - 1, new);
            true
        } else {
            self.more.remove(m)
        }
    }

    /// True if the mapping is there.
    pub fn contains(&self, m: &(FolioId, u32, u64)) -> bool {
        let (id, pid, vpn) = *m;
        (self.slot(id) == (pid, vpn) && (pid, vpn) != NONE) || self.more.contains(m)
    }

    /// The mappers (process, virtual page) of `id`, in order.
    pub fn mappers(&self, id: FolioId) -> impl Iterator<Item = (u32, u64)> + '_ {
        let first = self.slot(id);
        let rest = if first == NONE {
            None
        } else {
            Some(
                self.more
                    .range((id, 0, 0)..=(id, u32::MAX, u64::MAX))
                    .map(|(_, p, v)| (*p, *v)),
            )
        };
        (first != NONE)
            .then_some(first)
            .into_iter()
            .chain(rest.into_iter().flatten())
    }

    /// Every mapping, in (folio, process, virtual page) order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            rmap: self,
            first: self.first.iter().enumerate(),
            more: self.more.iter().peekable(),
            current: None,
        }
    }
}

/// The mappings of an [`Rmap`] in order.
pub struct Iter<'a> {
    rmap: &'a Rmap,
    first: std::iter::Enumerate<std::slice::Iter<'a, (u32, u32)>>,
    more: std::iter::Peekable<std::collections::btree_set::Iter<'a, (FolioId, u32, u64)>>,
    /// The folio whose further mappings come next.
    current: Option<FolioId>,
}

impl Iterator for Iter<'_> {
    type Item = (FolioId, u32, u64);

    fn next(&mut self) -> Option<(FolioId, u32, u64)> {
        if let Some(id) = self.current {
            if let Some(n) = self.more.next_if(|n| n.0 == id) {
                return Some(*n);
            }
            self.current = None;
        }
        let (i, f) = self.first.find(|(_, f)| **f != (u32::MAX, WIDE))?;
        let (pid, vpn) = self.rmap.unpack(i as u32, *f);
        let id = FolioId(i as u32 + 1);
        self.current = Some(id);
        Some((id, pid, vpn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reverse map answers as one ordered set of every mapping would.
    #[test]
    fn agrees_with_an_ordered_set() {
        let mut r = Rmap::default();
        let mut set = BTreeSet::new();
        let mut rng = crate::rng::SimRng::new(0x9e37_79b9_7f4a_7c15u64);
        for _ in 0..20_000 {
            let x = rng.next_u64();
            // Some virtual pages too wide for a slot.
            let vpn = match (x >> 16) % 8 {
                7 => u64::MAX - 1,
                6 => u32::MAX as u64,
                v => v,
            };
            let m = (FolioId((x % 50) as u32 + 1), (x >> 8) as u32 % 4, vpn);
            if (x >> 40).is_multiple_of(2) {
                assert_eq!(r.insert(m), set.insert(m));
            } else {
                assert_eq!(r.remove(&m), set.remove(&m));
            }
            assert_eq!(r.contains(&m), set.contains(&m));
            let want: Vec<(u32, u64)> = set
                .range((m.0, 0, 0)..=(m.0, u32::MAX, u64::MAX))
                .map(|(_, p, v)| (*p, *v))
                .collect();
            assert_eq!(r.mappers(m.0).collect::<Vec<_>>(), want);
        }
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            set.iter().copied().collect::<Vec<_>>()
        );
        for m in set.iter().copied().collect::<Vec<_>>() {
            assert!(r.remove(&m));
        }
        assert!(r.wide.is_empty() && r.more.is_empty());
    }
}
