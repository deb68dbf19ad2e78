//! Splitting a large folio into order-0 folios (mm/huge_memory.c), which migration does on
//! `-ENOMEM` and compaction's `split` mode relies on.

use super::table::{FolioId, FolioRec};
use crate::event::VmEvent;
use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::owners::process::HPAGE_PMD_ORDER;
use crate::units::Order;

impl Machine {
    /// Mirrors `split_folio_to_list()` for an isolated large folio: every page becomes an
    /// order-0 folio with its share of the references, mappings and cache slots; the pieces
    /// go on `list`, still isolated. Fails (false) if the folio holds references its owners
    /// do not account for (`can_split_folio()`), such as a pin.
    pub fn split_folio(&mut self, id: FolioId, list: &mut Vec<FolioId>) -> bool {
        let rec = self.owners.folio(id);
        assert!(rec.order.0 > 0, "split of an order-0 folio");
        assert!(
            !self.mem.flags(rec.pfn).contains(PageFlags::LRU),
            "split of a folio still on an LRU list"
        );
        let head = rec.pfn;
        if self.mem.refcount(head) != self.folio_expected_ref_count(id) + 1
            || self.mem.pincount(head) > 0
            || self.mem.flags(head).contains(PageFlags::SWAPCACHE)
        {
            if rec.order.0 == HPAGE_PMD_ORDER {
                self.vmstat[VmEvent::ThpSplitPageFailed] += 1;
            }
            return false;
        }
        // A page cache folio's buffers must go before a split; dirty ones cannot
        // (split_huge_page_to_list_to_order(): -EBUSY).
        if !self.filemap_release_folio(head) {
            return false;
        }
        let nr = rec.order.nr_pages();
        let hf = self.mem.flags(head);
        let keep = PageFlags(hf.0 & 0x0fff_ffff).without(PageFlags::HEAD);
        let mappers: Vec<(u32, u64)> = self.owners.mappers(id).collect();
        let private = hf.contains(PageFlags::PRIVATE);
        let cache = rec.kind.in_page_cache() && !rec.orphan;
        // Each mapping becomes one PTE per page.
        let per_page_maps = mappers.len() as u32;
        for (pid, vpn) in &mappers {
            self.owners.rmap_remove(id, *pid, *vpn);
            self.owners.processes[*pid as usize].table.remove(*vpn);
        }
        if cache {
            self.owners.files[rec.owner as usize]
                .pages
                .remove(rec.index);
        }
        let mut ids = Vec::with_capacity(nr as usize);
        for i in 0..nr {
            let pfn = head.plus(i);
            let pid = if i == 0 {
                id
            } else {
                let stamp = rec.stamp;
                let pid = self.owners.insert_record(FolioRec {
                    pfn,
                    order: Order(0),
                    index: rec.index + i,
                    stamp,
                    stamp_offset: rec.stamp_offset + i as u32,
                    ..rec
                });
                self.mem.set_flags(pfn, PageFlags::EMPTY);
                pid
            };
            let mut flags = keep.with_order(0);
            if i > 0 {
                flags = flags.without(PageFlags::PRIVATE);
            }
            self.mem.set_flags(pfn, flags);
            let refs = per_page_maps + cache as u32 + (i == 0 && private) as u32 + 1;
            self.mem.set_refcount(pfn, refs);
            self.mem.set_mapcount(pfn, per_page_maps);
            self.mem.set_owner(pfn, crate::memmap::OwnerRef(pid.0));
            ids.push(pid);
        }
        self.owners.update(id, |first| first.order = Order(0));
        for (i, pid) in ids.iter().enumerate() {
            for (p, vpn) in &mappers {
                let v = vpn + i as u64;
                self.owners.rmap_insert(*pid, *p, v);
                self.owners.processes[*p as usize].table.insert(v, 0, *pid);
            }
            if cache {
                self.owners.files[rec.owner as usize]
                    .pages
                    .insert(rec.index + i as u64, 0, *pid);
            }
        }
        // try_split_folio(): the tail pieces are queued first, then the head piece.
        list.extend(&ids[1..]);
        list.push(ids[0]);
        if rec.order.0 == HPAGE_PMD_ORDER {
            self.vmstat[VmEvent::ThpSplitPage] += 1;
        }
        true
    }
}
