//! Index-linked doubly-linked lists through the memory map: the model's `list_head`.
//!
//! A page can be on at most one list at a time (as `page->lru` in Linux is shared by the
//! buddy free lists and the LRU). Links live in the memory map's `a`/`b` words of the page,
//! so a list costs two `u32`s for its ends and nothing per element beyond the page's own
//! 16 bytes. Every operation is O(1) except the iterators.

use super::{MemMap, NIL};
use crate::units::Pfn;

/// The two ends of an index-linked list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageList {
    head: u32,
    tail: u32,
}

impl Default for PageList {
    fn default() -> Self {
        PageList {
            head: NIL,
            tail: NIL,
        }
    }
}

impl PageList {
    /// True if the list holds nothing (`list_empty()`).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.head == NIL
    }

    /// The first entry (`list_first_entry_or_null()`).
    #[inline]
    pub fn first(&self) -> Option<Pfn> {
        (self.head != NIL).then_some(Pfn(self.head as u64))
    }

    /// The last entry.
    #[inline]
    pub fn last(&self) -> Option<Pfn> {
        (self.tail != NIL).then_some(Pfn(self.tail as u64))
    }

    /// Adds `pfn` at the head (`list_add()`).
    #[inline]
    pub fn push_head(&mut self, mm: &mut MemMap, pfn: Pfn) {
        let p = pfn.0 as u32;
        mm.set_prev(p, NIL);
        mm.set_next(p, self.head);
        if self.head == NIL {
            self.tail = p;
        } else {
            mm.set_prev(self.head, p);
        }
        self.head = p;
    }

    /// Adds `pfn` at the tail (`list_add_tail()`).
    #[inline]
    pub fn push_tail(&mut self, mm: &mut MemMap, pfn: Pfn) {
        let p = pfn.0 as u32;
        mm.set_next(p, NIL);
        mm.set_prev(p, self.tail);
        if self.tail == NIL {
            self.head = p;
        } else {
            mm.set_next(self.tail, p);
        }
        self.tail = p;
    }

    /// Unlinks `pfn`, which must be on this list (`list_del()`).
    #[inline]
    pub fn remove(&mut self, mm: &mut MemMap, pfn: Pfn) {
        let p = pfn.0 as u32;
        let (prev, next) = (mm.prev(p), mm.next(p));
        if prev == NIL {
            debug_assert_eq!(self.head, p, "{pfn:?} is not on this list");
            self.head = next;
        } else {
            mm.set_next(prev, next);
        }
        if next == NIL {
            debug_assert_eq!(self.tail, p, "{pfn:?} is not on this list");
            self.tail = prev;
        } else {
            mm.set_prev(next, prev);
        }
        mm.set_prev(p, 0);
        mm.set_next(p, 0);
    }

    /// Takes the first entry off the list (`list_first_entry()` + `list_del()`).
    #[inline]
    pub fn pop_head(&mut self, mm: &mut MemMap) -> Option<Pfn> {
        let p = self.first()?;
        self.remove(mm, p);
        Some(p)
    }

    /// Takes the last entry off the list (`list_last_entry()` + `list_del()`).
    #[inline]
    pub fn pop_tail(&mut self, mm: &mut MemMap) -> Option<Pfn> {
        let p = self.last()?;
        self.remove(mm, p);
        Some(p)
    }

    /// The entries from tail to head.
    pub fn iter_rev<'a>(&self, mm: &'a MemMap) -> impl Iterator<Item = Pfn> + 'a {
        let mut cur = self.tail;
        std::iter::from_fn(move || {
            if cur == NIL {
                return None;
            }
            let p = cur;
            cur = mm.prev(p);
            Some(Pfn(p as u64))
        })
    }

    /// Mirrors `move_freelist_head()`: the entries before `pfn` move, in order, to the tail,
    /// so `pfn` becomes the first entry. O(1), like the kernel's list splice.
    pub fn rotate_to_head(&mut self, mm: &mut MemMap, pfn: Pfn) {
        let p = pfn.0 as u32;
        if self.head == NIL || self.head == p {
            return;
        }
        let prev = mm.prev(p);
        debug_assert_ne!(prev, NIL, "{pfn:?} is not on this list");
        mm.set_next(self.tail, self.head);
        mm.set_prev(self.head, self.tail);
        mm.set_prev(p, NIL);
        mm.set_next(prev, NIL);
        self.head = p;
        self.tail = prev;
    }

    /// Mirrors `move_freelist_tail()`: the entries up to and including `pfn` move, in
    /// order, to the tail. O(1).
    pub fn rotate_through_to_tail(&mut self, mm: &mut MemMap, pfn: Pfn) {
        let p = pfn.0 as u32;
        if self.tail == NIL || self.tail == p {
            return;
        }
        let next = mm.next(p);
        debug_assert_ne!(next, NIL, "{pfn:?} is not on this list");
        mm.set_next(self.tail, self.head);
        mm.set_prev(self.head, self.tail);
        mm.set_prev(next, NIL);
        mm.set_next(p, NIL);
        self.head = next;
        self.tail = p;
    }

    /// The entries from head to tail.
    pub fn iter<'a>(&self, mm: &'a MemMap) -> impl Iterator<Item = Pfn> + 'a {
        let mut cur = self.head;
        std::iter::from_fn(move || {
            if cur == NIL {
                return None;
            }
            let p = cur;
            cur = mm.next(p);
            Some(Pfn(p as u64))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_tail_insertion_and_removal_keep_order() {
        let mut mm = MemMap::new(Pfn(16));
        let mut l = PageList::default();
        assert!(l.is_empty());
        l.push_head(&mut mm, Pfn(3));
        l.push_tail(&mut mm, Pfn(5));
        l.push_head(&mut mm, Pfn(1));
        l.push_tail(&mut mm, Pfn(7));
        let v: Vec<u64> = l.iter(&mm).map(|p| p.0).collect();
        assert_eq!(v, [1, 3, 5, 7]);
        l.remove(&mut mm, Pfn(1));
        l.remove(&mut mm, Pfn(7));
        l.remove(&mut mm, Pfn(5));
        assert_eq!(l.first(), Some(Pfn(3)));
        assert_eq!(l.last(), Some(Pfn(3)));
        l.remove(&mut mm, Pfn(3));
        assert!(l.is_empty());
        assert_eq!(l.last(), None);
    }

    #[test]
    fn rotations_mirror_move_freelist_head_and_tail() {
        let mut mm = MemMap::new(Pfn(16));
        let mut l = PageList::default();
        for p in [1, 2, 3, 4, 5] {
            l.push_tail(&mut mm, Pfn(p));
        }
        l.rotate_to_head(&mut mm, Pfn(3));
        assert_eq!(
            l.iter(&mm).map(|p| p.0).collect::<Vec<_>>(),
            [3, 4, 5, 1, 2]
        );
        l.rotate_through_to_tail(&mut mm, Pfn(4));
        assert_eq!(
            l.iter(&mm).map(|p| p.0).collect::<Vec<_>>(),
            [5, 1, 2, 3, 4]
        );
        assert_eq!(
            l.iter_rev(&mm).map(|p| p.0).collect::<Vec<_>>(),
            [4, 3, 2, 1, 5]
        );
    }
}
