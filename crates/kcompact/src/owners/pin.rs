//! GUP pins (short- and long-term) and speculative references.

use super::table::{FolioId, Owners};
use crate::machine::Machine;
use crate::memmap::GUP_PIN_COUNTING_BIAS;
use crate::units::{Order, Pfn};

impl Machine {
    /// Mirrors FOLL_PIN in `try_grab_folio()`: a large folio gains a reference and a
    /// `_pincount`; a small one gains [`GUP_PIN_COUNTING_BIAS`] references. `longterm` is
    /// FOLL_LONGTERM (vfio, io_uring fixed buffers, RDMA). Returns the pin's id.
    ///
    /// DEVIATION(linux): a long-term pin does not first migrate the folio out of
    /// ZONE_MOVABLE or CMA (`check_and_migrate_movable_folios()`), and a shared
    /// copy-on-write anonymous folio is pinned in place (Linux unshares it first).
    pub fn pin_folio(&mut self, id: FolioId, longterm: bool) -> u32 {
        let pfn = self.owners.folio(id).pfn;
        let rc = self.mem.refcount(pfn);
        if self.owners.folio(id).order.0 > 0 {
            self.mem.set_refcount(pfn, rc + 1);
            let pc = self.mem.pincount(pfn);
            self.mem.set_pincount(pfn, pc + 1);
        } else {
            self.mem.set_refcount(pfn, rc + GUP_PIN_COUNTING_BIAS);
        }
        self.owners.pins.push(Some((id, longterm)));
        self.owners.pins.len() as u32 - 1
    }

    /// Mirrors `unpin_user_page()` (`gup_put_folio()` with FOLL_PIN).
    pub fn unpin_folio(&mut self, pin: u32) {
        let (id, _) = self.owners.pins[pin as usize].take().expect("live pin");
        let pfn = self.owners.folio(id).pfn;
        if self.owners.folio(id).order.0 > 0 {
            let pc = self.mem.pincount(pfn);
            self.mem.set_pincount(pfn, pc - 1);
            self.folio_put_refs(id, 1);
        } else {
            self.folio_put_refs(id, GUP_PIN_COUNTING_BIAS);
        }
    }

    /// Mirrors `folio_try_get()` by someone walking memory (a scanner, GUP-fast): a
    /// transient reference. Returns a token for [`Machine::put_speculative`].
    pub fn get_speculative(&mut self, id: FolioId) -> u32 {
        let pfn = self.owners.folio(id).pfn;
        let rc = self.mem.refcount(pfn);
        assert!(rc > 0, "folio_try_get on a free folio");
        self.mem.set_refcount(pfn, rc + 1);
        self.owners.next_spec_token(id)
    }

    /// Drops a speculative reference (which may free the folio).
    pub fn put_speculative(&mut self, id: FolioId, token: u32) {
        assert!(
            self.owners.speculative.remove(&(id, token)),
            "no such speculative reference"
        );
        self.folio_put_refs(id, 1);
    }

    /// Pins held on `id`: (short-term, long-term).
    pub fn pins_of(&self, id: FolioId) -> (u32, u32) {
        let mut n = (0, 0);
        for (f, lt) in self.owners.pins.iter().flatten() {
            if *f == id {
                if *lt {
                    n.1 += 1
                } else {
                    n.0 += 1
                }
            }
        }
        n
    }
}

impl Owners {
    fn next_spec_token(&mut self, id: FolioId) -> u32 {
        self.next_spec += 1;
        self.speculative.insert((id, self.next_spec));
        self.next_spec
    }
}

impl Machine {
    /// Takes a speculative reference on a page no owner holds (a scanner's
    /// `get_page_unless_zero()` on a page in flight).
    pub fn get_page_unless_zero(&mut self, pfn: Pfn) -> bool {
        let rc = self.mem.refcount(pfn);
        if rc == 0 {
            return false;
        }
        self.mem.set_refcount(pfn, rc + 1);
        true
    }

    /// Drops a reference on a page no owner holds; the last one frees it (`put_page()`).
    pub fn put_page(&mut self, pfn: Pfn, order: Order) {
        let rc = self.mem.refcount(pfn);
        assert!(rc > 0, "put_page on a free page");
        if rc == 1 {
            self.free_pages(pfn, order);
        } else {
            self.mem.set_refcount(pfn, rc - 1);
        }
    }
}
