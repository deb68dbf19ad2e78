//! The page allocator's entry points: allocate and free.
//!
//! Mirrors `__alloc_pages()` → `prepare_alloc_pages()` → `get_page_from_freelist()` →
//! `rmqueue()` for the fast path; a miss goes to the slow path ([`crate::slowpath`]).
//! Freeing mirrors `__free_pages()` → `free_one_page()`.

use crate::buddy::pcp::pcp_allowed_order;
use crate::buddy::watermark::zone_watermark_fast;
use crate::event::VmEvent;
use crate::gfp::{AllocFlags, Gfp};
use crate::layout::ZoneType;
use crate::machine::Machine;
use crate::memmap::{MigrateType, PageFlags};
use crate::units::{NodeId, Order, Pfn, ZoneIdx, MAX_PAGE_ORDER};
use crate::zone::Wmark;

/// Mirrors `struct alloc_context`: where an allocation may look and what it asks for.
#[derive(Clone, Debug)]
pub struct AllocContext {
    /// The zones to try, preferred first (`ac->zonelist` from `ac->preferred_zoneref`):
    /// a slot of the machine's zonelists, read with [`Machine::ac_zonelist`].
    pub zonelist: usize,
    /// `ac->highest_zoneidx` (from `gfp_zone()`).
    pub highest: ZoneType,
    /// `ac->migratetype` (from `gfp_migratetype()`).
    pub migratetype: MigrateType,
}

impl Machine {
    /// The zones an allocation context may use, preferred first.
    #[inline]
    pub fn ac_zonelist(&self, ac: &AllocContext) -> &[ZoneIdx] {
        self.zonelist_by_slot(ac.zonelist)
    }

    /// Mirrors `prepare_alloc_pages()`: the zonelist, highest zone and migratetype of a
    /// request on `node`, and ALLOC_CMA for movable requests.
    pub fn prepare_alloc(&self, gfp: Gfp, node: NodeId) -> (AllocContext, AllocFlags) {
        let highest = gfp.zone();
        let migratetype = gfp.migratetype(!self.mobility_disabled);
        let zonelist = Machine::zonelist_slot(node, highest, gfp.contains(Gfp::THISNODE));
        let mut flags = AllocFlags::WMARK_LOW;
        if self.config.config_cma && migratetype == MigrateType::Movable {
            flags = flags | AllocFlags::CMA;
        }
        (
            AllocContext {
                zonelist,
                highest,
                migratetype,
            },
            flags,
        )
    }

    /// Mirrors `alloc_flags_nofragment()`: ALLOC_KSWAPD from the gfp, and ALLOC_NOFRAGMENT
    /// when the preferred zone is Normal and a DMA32 zone exists to fall back to (or always
    /// under `defrag_mode`).
    pub fn alloc_flags_nofragment(&self, preferred: Option<ZoneIdx>, gfp: Gfp) -> AllocFlags {
        let mut flags = if gfp.contains(Gfp::KSWAPD_RECLAIM) {
            AllocFlags::KSWAPD
        } else {
            AllocFlags::default()
        };
        if self.config.defrag_mode {
            return flags | AllocFlags::NOFRAGMENT;
        }
        let Some(zi) = preferred else { return flags };
        let z = self.zone(zi);
        if z.zone_type != ZoneType::Normal {
            return flags;
        }
        if self.nr_nodes() > 1
            && !self
                .zone(self.zone_of(z.node, ZoneType::Dma32))
                .is_populated()
        {
            return flags;
        }
        flags = flags | AllocFlags::NOFRAGMENT;
        flags
    }

    /// Mirrors `alloc_flags_slowpath()` (formerly `gfp_to_alloc_flags()`; the slow path's
    /// flags) with this machine's CMA and `defrag_mode` settings; see
    /// [`alloc_flags_slowpath`].
    pub fn alloc_flags_slowpath(
        &self,
        gfp: Gfp,
        order: Order,
        migratetype: MigrateType,
    ) -> AllocFlags {
        alloc_flags_slowpath(
            gfp,
            order,
            self.config.config_cma && migratetype == MigrateType::Movable,
            self.config.defrag_mode,
        )
    }

    /// Allocates `2^order` pages for `gfp` on `node`: the fast path at the LOW watermark,
    /// then one attempt at MIN with the slow path's reserve flags. Returns the first pfn; the
    /// head page has refcount 1 (and is a compound head with __GFP_COMP).
    pub fn alloc_pages(&mut self, gfp: Gfp, order: Order, node: NodeId) -> Option<Pfn> {
        if let Some(at) = self.place_at.take() {
            // A placed allocation (see Machine::place_at): exactly this block, from a
            // per-CPU list or the buddy lists (after draining the per-CPU blocks it
            // overlaps), or nothing.
            let placed = self.take_pcp_block_for_alloc(at, order)
                || self.take_free_range(at, order)
                || (self.drain_pcp_blocks_over(at, order) > 0 && self.take_free_range(at, order));
            if !placed {
                self.vmstat[VmEvent::AllocFail] += 1;
                return None;
            }
            self.prep_new_page(at, order, gfp);
            self.vmstat[VmEvent::Pgalloc] += order.nr_pages();
            return Some(at);
        }
        assert!(
            order.0 <= MAX_PAGE_ORDER,
            "order {order} above MAX_PAGE_ORDER"
        );
        assert!((node.0 as usize) < self.nr_nodes(), "no node {}", node.0);
        let (ac, mut flags) = self.prepare_alloc(gfp, node);
        flags = flags | self.alloc_flags_nofragment(self.ac_zonelist(&ac).first().copied(), gfp);
        // alloc_flags_nonblocking(): a high-order __GFP_HIGH request that cannot reclaim may
        // use the highatomic reserve from the fast path on.
        if !gfp.intersects(Gfp(Gfp::DIRECT_RECLAIM.0 | Gfp::NOMEMALLOC.0))
            && order.0 > 0
            && gfp.contains(Gfp::HIGH)
        {
            flags = flags | AllocFlags::HIGHATOMIC;
        }
        self.clock.last_alloc_ns = self.config.costs.alloc_ns;
        self.clock.cpu.tasks_ns += self.config.costs.alloc_ns;
        let mut page = self.get_page_from_freelist(gfp, order, flags, &ac);
        let slow = page.is_none();
        if slow {
            page = self.alloc_pages_slowpath(gfp, order, &ac);
        }
        let ns = self.clock.last_alloc_ns;
        self.note_latency(order.0, ns, slow);
        match page {
            Some(_) => self.vmstat[VmEvent::Pgalloc] += order.nr_pages(),
            None => self.vmstat[VmEvent::AllocFail] += 1,
        }
        page
    }

    /// Mirrors `get_page_from_freelist()`: the first zone of the zonelist that passes its
    /// watermark and has a page. Under ALLOC_NOFRAGMENT, moving to a remote node or running
    /// out of zones drops the flag and starts over (unless `defrag_mode`).
    ///
    /// A zone not yet marked ZONE_BELOW_HIGH is first tested at its high watermark; passing
    /// it goes straight to the allocation, failing it sets the mark (which makes frees
    /// shrink the per-CPU lists) before the allocation's own watermark is tested.
    ///
    /// DEVIATION(linux): no cpusets, dirty-page spreading, node reclaim, deferred-init
    /// growth, or skipping of nodes whose kswapd is awake (`skip_kswapd_nodes`, which
    /// only spreads allocations across nodes).
    pub fn get_page_from_freelist(
        &mut self,
        gfp: Gfp,
        order: Order,
        mut flags: AllocFlags,
        ac: &AllocContext,
    ) -> Option<Pfn> {
        'retry: loop {
            let no_fallback = flags.has(AllocFlags::NOFRAGMENT);
            let preferred_node = self.ac_zonelist(ac).first().map(|z| self.zone(*z).node);
            for i in 0..self.ac_zonelist(ac).len() {
                let zi = self.ac_zonelist(ac)[i];
                let z = self.zone(zi);
                if no_fallback
                    && !self.config.defrag_mode
                    && self.nr_nodes() > 1
                    && Some(z.node) != preferred_node
                {
                    flags = flags.without(AllocFlags::NOFRAGMENT);
                    continue 'retry;
                }
                let cma = self.config.config_cma;
                let high_ok = !z.below_high
                    && zone_watermark_fast(
                        z,
                        order,
                        z.wmark_pages(Wmark::High),
                        ac.highest,
                        flags,
                        cma,
                    );
                if !high_ok {
                    if self.config.pcp {
                        self.zones[zi.idx()].below_high = true;
                    }
                    let z = self.zone(zi);
                    let mark = z.wmark_pages(wmark_of(flags));
                    if !zone_watermark_fast(z, order, mark, ac.highest, flags, cma)
                        && !flags.has(AllocFlags::NO_WATERMARKS)
                    {
                        continue;
                    }
                }
                // Postcondition (checked in debug builds: summing the per-CPU lists costs
                // more than the allocation itself).
                let free_before = cfg!(debug_assertions)
                    .then(|| self.zone(zi).nr_free_pages + self.zone(zi).pcp_pages());
                if let Some(pfn) = self.rmqueue(zi, order, flags, ac.migratetype) {
                    self.prep_new_page(pfn, order, gfp);
                    if let Some(before) = free_before {
                        let z = self.zone(zi);
                        debug_assert_eq!(
                            before - z.nr_free_pages - z.pcp_pages(),
                            order.nr_pages(),
                            "allocating {pfn:?} at order {order} must take exactly its pages"
                        );
                    }
                    if flags.has(AllocFlags::HIGHATOMIC)
                        && order.0 > 0
                        && flags.wmark() == AllocFlags::WMARK_MIN.wmark()
                    {
                        self.reserve_highatomic_pageblock(zi, pfn, order);
                    }
                    return Some(pfn);
                }
            }
            if no_fallback && !self.config.defrag_mode {
                flags = flags.without(AllocFlags::NOFRAGMENT);
                continue 'retry;
            }
            return None;
        }
    }

    /// Mirrors `rmqueue()`: the current CPU's per-CPU lists for orders they serve, else the
    /// buddy lists; then the boosted-watermark kswapd wake-up.
    fn rmqueue(
        &mut self,
        zi: ZoneIdx,
        order: Order,
        flags: AllocFlags,
        mt: MigrateType,
    ) -> Option<Pfn> {
        let mut page = None;
        if self.config.pcp && pcp_allowed_order(order) {
            page = self.rmqueue_pcplist(zi, order, mt, flags);
        }
        if page.is_none() {
            page = self.rmqueue_buddy(zi, order, mt, flags);
        }
        if flags.has(AllocFlags::KSWAPD) && self.zones[zi.idx()].boosted_watermark {
            self.zones[zi.idx()].boosted_watermark = false;
            let zt = self.zone(zi).zone_type;
            self.vmstat[VmEvent::KswapdBoostWake] += 1;
            self.wakeup_kswapd(zi, Gfp::NONE, 0, zt);
        }
        page
    }

    /// Mirrors `prep_new_page()`: refcount 1 on the head, compound metadata with __GFP_COMP.
    fn prep_new_page(&mut self, pfn: Pfn, order: Order, gfp: Gfp) {
        debug_assert!(
            (0..order.nr_pages()).all(|i| self.mem.flags(pfn.plus(i)) == PageFlags::EMPTY)
        );
        self.mem.prep_allocated(pfn, order, gfp.contains(Gfp::COMP));
    }

    /// Frees a block allocated at `order` (mirrors `__free_pages()` dropping the last
    /// reference, `__free_pages_prepare()`, then `free_frozen_pages()`: the current CPU's
    /// per-CPU list for the orders it holds, else `free_one_page()`). Every page's state is
    /// cleared; a block freed to the buddy lists merges with free buddies.
    pub fn free_pages(&mut self, pfn: Pfn, order: Order) {
        assert!(
            order.0 <= MAX_PAGE_ORDER && pfn.is_aligned(order),
            "bad free of {pfn:?} at order {order}"
        );
        let zi = self
            .page_zone(pfn)
            .unwrap_or_else(|| panic!("free of {pfn:?}, which is no managed page"));
        let f = self.mem.flags(pfn);
        // __free_pages_prepare()'s bad-page checks: no free page may still be on a list, under
        // I/O, mapped by slab or locked.
        let bad = PageFlags::BUDDY
            | PageFlags::TAIL
            | PageFlags::RESERVED
            | PageFlags::NOPAGE
            | PageFlags::LRU
            | PageFlags::LOCKED
            | PageFlags::WRITEBACK
            | PageFlags::SLAB
            | PageFlags::ISOLATED;
        assert!(!f.intersects(bad), "free of {pfn:?} in state {f:?}");
        assert!(
            !f.contains(PageFlags::HEAD) || f.order() == order.0,
            "free of a folio of order {} at order {order}",
            f.order()
        );
        // Postcondition, for a block that bypasses the per-CPU lists (debug builds; a block
        // freed to a list may push older ones into isolated pageblocks, whose pages
        // NR_FREE_PAGES leaves out: the checker recounts that case).
        let to_pcp = self.config.pcp && crate::buddy::pcp::pcp_allowed_order(order);
        let before = (cfg!(debug_assertions) && !to_pcp).then(|| {
            let pb = self.pageblock_order();
            let step = order.min(pb).nr_pages();
            let counted = (0..order.nr_pages() / step)
                .filter(|i| self.migratetype(pfn.plus(i * step)) != MigrateType::Isolate)
                .count() as u64
                * step;
            let free = (self.zone(zi).nr_free_pages + self.zone(zi).pcp_pages()) as i64;
            (counted, free, self.capture.and_then(|c| c.page))
        });
        self.mem.clear_block(pfn, order);
        self.free_frozen_pages(zi, pfn, order);
        self.vmstat[VmEvent::Pgfree] += order.nr_pages();
        if let Some((counted, free_before, captured_before)) = before {
            // A direct compactor may have captured the merged block (compaction_capture()).
            let captured = match self.capture {
                Some(c) if c.page.is_some() && captured_before.is_none() => {
                    c.order.nr_pages() as i64
                }
                _ => 0,
            };
            debug_assert!(
                (self.zone(zi).nr_free_pages + self.zone(zi).pcp_pages()) as i64 - free_before
                    == counted as i64 - captured,
                "freeing {pfn:?} at order {order} must add exactly its non-isolated, uncaptured pages"
            );
        }
    }
}

fn wmark_of(flags: AllocFlags) -> crate::zone::Wmark {
    use crate::zone::Wmark;
    match flags.wmark() {
        0 => Wmark::Min,
        1 => Wmark::Low,
        _ => Wmark::High,
    }
}

/// Mirrors `alloc_flags_slowpath()` (formerly `gfp_to_alloc_flags()`; the slow path's
/// flags): MIN watermark, __GFP_HIGH's reserve access, the non-blocking and highatomic
/// rights of callers that cannot reclaim; ALLOC_CMA when `cma_movable` (CONFIG_CMA and a
/// movable request), ALLOC_NOFRAGMENT under `defrag_mode`.
pub fn alloc_flags_slowpath(
    gfp: Gfp,
    order: Order,
    cma_movable: bool,
    defrag_mode: bool,
) -> AllocFlags {
    let mut f = AllocFlags::WMARK_MIN | AllocFlags::CPUSET;
    if gfp.contains(Gfp::HIGH) {
        f = f | AllocFlags::MIN_RESERVE;
    }
    if gfp.contains(Gfp::KSWAPD_RECLAIM) {
        f = f | AllocFlags::KSWAPD;
    }
    if !gfp.contains(Gfp::DIRECT_RECLAIM) {
        if !gfp.contains(Gfp::NOMEMALLOC) {
            f = f | AllocFlags::NON_BLOCK;
            if order.0 > 0 && f.has(AllocFlags::MIN_RESERVE) {
                f = f | AllocFlags::HIGHATOMIC;
            }
        }
        if f.has(AllocFlags::MIN_RESERVE) {
            f = f.without(AllocFlags::CPUSET);
        }
    }
    if cma_movable {
        f = f | AllocFlags::CMA;
    }
    if defrag_mode {
        f = f | AllocFlags::NOFRAGMENT;
    }
    f
}
