//! The high-order atomic reserve: pageblocks set aside for high-order GFP_ATOMIC requests.

use crate::event::VmEvent;
use crate::layout::ZoneType;
use crate::machine::Machine;
use crate::memmap::MigrateType;
use crate::units::{Order, Pfn, ZoneIdx};

impl Machine {
    /// Mirrors `reserve_highatomic_pageblock()`: after a high-order atomic allocation at the
    /// MIN watermark, retype its pageblock to MIGRATE_HIGHATOMIC, up to about 1% of the zone.
    pub(crate) fn reserve_highatomic_pageblock(&mut self, zi: ZoneIdx, pfn: Pfn, order: Order) {
        let pb = self.pageblocks.nr_pages();
        let z = &self.zones[zi.idx()];
        if z.managed_pages / 100 < pb {
            return;
        }
        let max_managed = (z.managed_pages / 100).next_multiple_of(pb);
        if z.nr_reserved_highatomic >= max_managed {
            return;
        }
        let mt = self.pageblocks.migratetype(pfn);
        if !mt.is_mergeable() {
            return;
        }
        if order < self.pageblock_order() {
            if self
                .move_freepages_block(zi, pfn, mt, MigrateType::HighAtomic)
                .is_none()
            {
                return;
            }
            self.zones[zi.idx()].nr_reserved_highatomic += pb;
        } else {
            self.change_pageblock_range(pfn, order, MigrateType::HighAtomic);
            self.zones[zi.idx()].nr_reserved_highatomic += order.nr_pages();
        }
        self.vmstat[VmEvent::HighatomicReserved] += 1;
    }

    /// Mirrors `unreserve_highatomic_pageblock()`: gives one reserved block (or free chunk of
    /// pageblock order or more) back to `mt`, the requester's type. Unless `force`, a zone
    /// keeps its last reserved block. Returns true if something was released.
    pub fn unreserve_highatomic_pageblock(
        &mut self,
        zonelist: &[ZoneIdx],
        highest: ZoneType,
        mt: MigrateType,
        force: bool,
    ) -> bool {
        let pb = self.pageblocks.nr_pages();
        for &zi in zonelist {
            if self.zones[zi.idx()].zone_type > highest {
                continue;
            }
            if !force && self.zones[zi.idx()].nr_reserved_highatomic <= pb {
                continue;
            }
            for o in Order::all() {
                let Some(page) = self.zones[zi.idx()].free_area[o.idx()].free_list
                    [MigrateType::HighAtomic.idx()]
                .first() else {
                    continue;
                };
                let z = &mut self.zones[zi.idx()];
                let size = pb.max(o.nr_pages()).min(z.nr_reserved_highatomic);
                z.nr_reserved_highatomic -= size;
                let released = if o < self.pageblock_order() {
                    self.move_freepages_block(zi, page, MigrateType::HighAtomic, mt)
                        .is_some()
                } else {
                    self.move_to_free_list(zi, page, o, MigrateType::HighAtomic, mt);
                    self.change_pageblock_range(page, o, mt);
                    true
                };
                if released {
                    self.vmstat[VmEvent::HighatomicUnreserved] += 1;
                    return true;
                }
            }
        }
        false
    }
}
