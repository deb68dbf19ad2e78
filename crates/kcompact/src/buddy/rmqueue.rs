//! Taking pages off the free lists: split, the fallback table, claim and steal.

use crate::event::ExtfragEvent;
use crate::gfp::AllocFlags;
use crate::machine::Machine;
use crate::memmap::MigrateType;
use crate::units::{Order, Pfn, ZoneIdx, MAX_PAGE_ORDER};

/// Mirrors `fallbacks[MIGRATE_PCPTYPES][MIGRATE_PCPTYPES - 1]`: the types a request may take
/// pages from when its own lists are empty, in the order tried.
pub fn fallbacks(mt: MigrateType) -> &'static [MigrateType] {
    use MigrateType::*;
    match mt {
        Unmovable => &[Reclaimable, Movable],
        Movable => &[Reclaimable, Unmovable],
        Reclaimable => &[Unmovable, Movable],
        HighAtomic | Cma | Isolate => &[],
    }
}

/// Mirrors `enum fallback_result` of `find_suitable_fallback()`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fallback {
    /// A fallback list of this type has a block of this order.
    Found(MigrateType),
    /// Nothing to fall back on at this order.
    Empty,
    /// This order is too small to claim a block for this request: stop the claim scan.
    NoClaim,
}

/// Mirrors `should_try_claim_block()`: claiming a whole block is tried for large candidate
/// blocks (at least half a pageblock), for unmovable and reclaimable requests, and when
/// grouping by mobility is off; small movable requests only steal.
pub fn should_try_claim_block(
    order: Order,
    start_mt: MigrateType,
    pb_order: Order,
    mobility_disabled: bool,
) -> bool {
    order >= pb_order
        || order.0 >= pb_order.0 / 2
        || matches!(start_mt, MigrateType::Reclaimable | MigrateType::Unmovable)
        || mobility_disabled
}

/// Mirrors `mult_frac(x, n, d)`: `x * n / d` without overflow.
#[inline]
pub fn mult_frac(x: u64, n: u64, d: u64) -> u64 {
    (x / d) * n + ((x % d) * n) / d
}

/// Mirrors `enum rmqueue_mode`: where `__rmqueue()` starts looking, so a bulk refill does
/// not search the lists that came up empty for its previous page.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum RmqueueMode {
    /// RMQUEUE_NORMAL: the requested type's lists first.
    Normal,
    /// RMQUEUE_CMA: the CMA lists first.
    Cma,
    /// RMQUEUE_CLAIM: claim a block of another type first.
    Claim,
    /// RMQUEUE_STEAL: steal a page of another type.
    Steal,
}

impl Machine {
    /// Mirrors `expand()`: splits a block of order `high` down to `low`, putting each upper
    /// half at the head of `free_list[mt]` of its order. Returns the pages put back.
    ///
    /// # Panics
    ///
    /// In debug builds, if `low > high` or `pfn` is not aligned to `high` (each half must be
    /// a buddy of the part kept).
    pub(crate) fn expand(
        &mut self,
        zi: ZoneIdx,
        pfn: Pfn,
        low: Order,
        high: Order,
        mt: MigrateType,
    ) -> u64 {
        debug_assert!(
            low <= high && pfn.is_aligned(high),
            "expand {pfn:?} {low}..{high}"
        );
        let mut added = 0;
        let mut h = high;
        while h > low {
            h = h.down();
            let half = pfn.plus(h.nr_pages());
            debug_assert_eq!(
                half.buddy(h),
                pfn,
                "the split half is the kept part's buddy"
            );
            self.add_to_free_list(zi, half, h, mt, false);
            added += h.nr_pages();
        }
        debug_assert_eq!(added, high.nr_pages() - low.nr_pages());
        added
    }

    /// Mirrors `page_del_and_expand()`.
    fn page_del_and_expand(
        &mut self,
        zi: ZoneIdx,
        pfn: Pfn,
        low: Order,
        high: Order,
        mt: MigrateType,
    ) {
        self.del_from_free_list(zi, pfn, high, mt);
        let nr = high.nr_pages() - self.expand(zi, pfn, low, high, mt);
        self.account_freepages(zi, -(nr as i64), mt);
    }

    /// Mirrors `__rmqueue_smallest()`: the head of the smallest non-empty `free_list[mt]` of
    /// at least `order`, split down to `order`.
    pub(crate) fn rmqueue_smallest(
        &mut self,
        zi: ZoneIdx,
        order: Order,
        mt: MigrateType,
    ) -> Option<Pfn> {
        for cur in order.0..=MAX_PAGE_ORDER {
            let cur = Order(cur);
            if let Some(pfn) = self.zones[zi.idx()].free_area[cur.idx()].free_list[mt.idx()].first()
            {
                self.page_del_and_expand(zi, pfn, order, cur, mt);
                return Some(pfn);
            }
        }
        None
    }

    /// Mirrors `find_suitable_fallback()`.
    pub fn find_suitable_fallback(
        &self,
        zi: ZoneIdx,
        order: Order,
        mt: MigrateType,
        claimable: bool,
    ) -> Fallback {
        if claimable
            && !should_try_claim_block(order, mt, self.pageblock_order(), self.mobility_disabled)
        {
            return Fallback::NoClaim;
        }
        let area = &self.zones[zi.idx()].free_area[order.idx()];
        if area.nr_free == 0 {
            return Fallback::Empty;
        }
        fallbacks(mt)
            .iter()
            .find(|fb| !area.free_list[fb.idx()].is_empty())
            .map_or(Fallback::Empty, |fb| Fallback::Found(*fb))
    }

    /// Mirrors `boost_watermark()`: a fragmenting fallback raises the zone's watermarks by a
    /// pageblock, up to `watermark_boost_factor` / 10000 of the high mark, so kswapd
    /// reclaims ahead of further fallbacks.
    pub(crate) fn boost_watermark(&mut self, zi: ZoneIdx) -> bool {
        let factor = self.config.watermark_boost_factor as u64;
        let pb = self.pageblocks.nr_pages();
        let z = &mut self.zones[zi.idx()];
        if factor == 0 || pb * 4 > z.managed_pages {
            return false;
        }
        let max_boost = mult_frac(
            z.watermark[crate::zone::Wmark::High as usize],
            factor,
            10000,
        );
        if max_boost == 0 {
            return false;
        }
        let max_boost = max_boost.max(pb);
        z.watermark_boost = (z.watermark_boost + pb).min(max_boost);
        true
    }

    /// Mirrors `try_to_claim_block()`: take over the pageblock holding the free block at
    /// `pfn` (of `cur` order, on `block_mt`'s list) for `start_mt`, and allocate from it.
    #[allow(clippy::too_many_arguments)] // the kernel function's own parameters
    fn try_to_claim_block(
        &mut self,
        zi: ZoneIdx,
        pfn: Pfn,
        cur: Order,
        order: Order,
        start_mt: MigrateType,
        block_mt: MigrateType,
        alloc_flags: AllocFlags,
    ) -> Option<Pfn> {
        let pb = self.pageblock_order();
        if cur >= pb {
            // A whole pageblock or more: take it all.
            self.del_from_free_list(zi, pfn, cur, block_mt);
            self.account_freepages(zi, -(cur.nr_pages() as i64), block_mt);
            self.change_pageblock_range(pfn, cur, start_mt);
            let added = self.expand(zi, pfn, order, cur, start_mt);
            self.account_freepages(zi, added as i64, start_mt);
            return Some(pfn);
        }
        if self.boost_watermark(zi) && alloc_flags.has(AllocFlags::KSWAPD) {
            self.zones[zi.idx()].boosted_watermark = true;
        }
        let (start, free, movable) = self.prep_move_freepages_block(zi, pfn)?;
        let alike = if start_mt == MigrateType::Movable {
            movable
        } else if block_mt == MigrateType::Movable {
            pb.nr_pages() - (free + movable)
        } else {
            0
        };
        if free + alike >= 1 << (pb.0 - 1) || self.mobility_disabled {
            self.move_freepages_range(zi, start, block_mt, start_mt);
            self.set_pageblock_migratetype(start, start_mt);
            return self.rmqueue_smallest(zi, order, start_mt);
        }
        None
    }

    /// Mirrors `__rmqueue_claim()`: from the largest order down, find a fallback block and
    /// try to claim its pageblock. Under ALLOC_NOFRAGMENT only whole pageblocks are taken.
    fn rmqueue_claim(
        &mut self,
        zi: ZoneIdx,
        order: Order,
        start_mt: MigrateType,
        alloc_flags: AllocFlags,
    ) -> Option<Pfn> {
        let pb = self.pageblock_order();
        let min_order = if order < pb && alloc_flags.has(AllocFlags::NOFRAGMENT) {
            pb
        } else {
            order
        };
        for cur in (min_order.0..=MAX_PAGE_ORDER).rev() {
            let cur = Order(cur);
            let fb = match self.find_suitable_fallback(zi, cur, start_mt, true) {
                Fallback::Empty => continue,
                Fallback::NoClaim => break,
                Fallback::Found(fb) => fb,
            };
            let head = self.zones[zi.idx()].free_area[cur.idx()].free_list[fb.idx()]
                .first()
                .expect("found non-empty");
            if let Some(page) =
                self.try_to_claim_block(zi, head, cur, order, start_mt, fb, alloc_flags)
            {
                self.note_extfrag(page, order, cur, start_mt, fb);
                return Some(page);
            }
        }
        None
    }

    /// Mirrors `__rmqueue_steal()`: take the smallest fallback block and split it, leaving
    /// the remainder on the fallback type's lists and the pageblock's type alone.
    fn rmqueue_steal(&mut self, zi: ZoneIdx, order: Order, start_mt: MigrateType) -> Option<Pfn> {
        for cur in order.0..=MAX_PAGE_ORDER {
            let cur = Order(cur);
            let Fallback::Found(fb) = self.find_suitable_fallback(zi, cur, start_mt, false) else {
                continue;
            };
            let head = self.zones[zi.idx()].free_area[cur.idx()].free_list[fb.idx()]
                .first()
                .expect("found non-empty");
            self.page_del_and_expand(zi, head, order, cur, fb);
            self.note_extfrag(head, order, cur, start_mt, fb);
            return Some(head);
        }
        None
    }

    /// Records an `mm_page_alloc_extfrag` event.
    fn note_extfrag(
        &mut self,
        pfn: Pfn,
        order: Order,
        fallback_order: Order,
        alloc_mt: MigrateType,
        fallback_mt: MigrateType,
    ) {
        let ev = ExtfragEvent {
            pfn,
            alloc_order: order,
            fallback_order,
            alloc_migratetype: alloc_mt,
            fallback_migratetype: fallback_mt,
            change_ownership: self.pageblocks.migratetype(pfn) == alloc_mt,
            fragmenting: fallback_order < self.pageblock_order(),
        };
        self.vmstat.note_extfrag(&ev);
    }

    /// Mirrors `__rmqueue()`: CMA balancing, then the free lists of the requested type and
    /// the fallbacks in rising fragmentation risk (CMA, claiming a block, stealing a page
    /// unless ALLOC_NOFRAGMENT), starting at `mode`, which remembers across a bulk refill
    /// where the last page was found.
    pub(crate) fn rmqueue_inner(
        &mut self,
        zi: ZoneIdx,
        order: Order,
        mt: MigrateType,
        alloc_flags: AllocFlags,
        mode: &mut RmqueueMode,
    ) -> Option<Pfn> {
        let cma = alloc_flags.has(AllocFlags::CMA) && self.config.config_cma;
        if cma {
            let z = &self.zones[zi.idx()];
            if z.nr_free_cma > z.nr_free_pages / 2 {
                if let Some(p) = self.rmqueue_smallest(zi, order, MigrateType::Cma) {
                    return Some(p);
                }
            }
        }
        if *mode == RmqueueMode::Normal {
            if let Some(p) = self.rmqueue_smallest(zi, order, mt) {
                return Some(p);
            }
        }
        if *mode <= RmqueueMode::Cma && cma {
            if let Some(p) = self.rmqueue_smallest(zi, order, MigrateType::Cma) {
                *mode = RmqueueMode::Cma;
                return Some(p);
            }
        }
        if *mode <= RmqueueMode::Claim {
            if let Some(p) = self.rmqueue_claim(zi, order, mt, alloc_flags) {
                // The preferred list has pages again.
                *mode = RmqueueMode::Normal;
                return Some(p);
            }
        }
        if !alloc_flags.has(AllocFlags::NOFRAGMENT) {
            if let Some(p) = self.rmqueue_steal(zi, order, mt) {
                *mode = RmqueueMode::Steal;
                return Some(p);
            }
        }
        None
    }

    /// Mirrors `rmqueue_buddy()`: the highatomic reserve first for ALLOC_HIGHATOMIC, then
    /// `__rmqueue`, then the reserve again for OOM and non-blocking requests.
    pub(crate) fn rmqueue_buddy(
        &mut self,
        zi: ZoneIdx,
        order: Order,
        mt: MigrateType,
        alloc_flags: AllocFlags,
    ) -> Option<Pfn> {
        let mut page = None;
        if order.0 > 0 && alloc_flags.has(AllocFlags::HIGHATOMIC) {
            page = self.rmqueue_smallest(zi, order, MigrateType::HighAtomic);
        }
        if page.is_none() {
            page = self.rmqueue_inner(zi, order, mt, alloc_flags, &mut RmqueueMode::Normal);
            if page.is_none()
                && alloc_flags.has(AllocFlags(AllocFlags::OOM.0 | AllocFlags::NON_BLOCK.0))
            {
                page = self.rmqueue_smallest(zi, order, MigrateType::HighAtomic);
            }
        }
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_order_of_every_migratetype() {
        use MigrateType::*;
        assert_eq!(fallbacks(Unmovable), [Reclaimable, Movable]);
        assert_eq!(fallbacks(Movable), [Reclaimable, Unmovable]);
        assert_eq!(fallbacks(Reclaimable), [Unmovable, Movable]);
        assert!(fallbacks(HighAtomic).is_empty());
        assert!(fallbacks(Cma).is_empty());
        assert!(fallbacks(Isolate).is_empty());
    }

    #[test]
    fn claim_is_tried_for_large_orders_and_kernel_types_only() {
        let pb = Order(9);
        assert!(!should_try_claim_block(
            Order(3),
            MigrateType::Movable,
            pb,
            false
        ));
        assert!(should_try_claim_block(
            Order(4),
            MigrateType::Movable,
            pb,
            false
        ));
        assert!(should_try_claim_block(
            Order(0),
            MigrateType::Unmovable,
            pb,
            false
        ));
        assert!(should_try_claim_block(
            Order(0),
            MigrateType::Reclaimable,
            pb,
            false
        ));
        assert!(should_try_claim_block(
            Order(0),
            MigrateType::Movable,
            pb,
            true
        ));
        assert!(should_try_claim_block(
            Order(9),
            MigrateType::Movable,
            pb,
            false
        ));
    }

    #[test]
    fn mult_frac_is_exact_floor() {
        assert_eq!(mult_frac(20124, 15000, 10000), 30186);
        assert_eq!(mult_frac(7, 3, 2), 10);
        assert_eq!(mult_frac(u64::MAX / 2, 2, 2), u64::MAX / 2);
    }
}
