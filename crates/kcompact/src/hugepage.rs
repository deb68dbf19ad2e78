//! Huge pages the way users ask for them: the hugetlb pool (`nr_hugepages`) and THP
//! faults under each `transparent_hugepage/defrag` setting, with mTHP sizes.
//!
//! Mirrors `set_max_huge_pages()` → `alloc_pool_huge_folio()` →
//! `alloc_buddy_hugetlb_folio()` (mm/hugetlb.c), `vma_thp_gfp_mask()`
//! (mm/huge_memory.c), the THP branch of `alloc_pages_mpol()` (mm/mempolicy.c), and the
//! order fallback of `alloc_anon_folio()` (mm/memory.c).

use crate::event::VmEvent;
use crate::gfp::Gfp;
use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::owners::process::HPAGE_PMD_ORDER;
use crate::owners::table::MapError;
use crate::owners::table::{FolioId, FolioKind, Holder};
use crate::sysctl::ThpDefrag;
use crate::units::{NodeId, Order};

/// Mirrors `vma_thp_gfp_mask()`: the GFP mask of a THP fault under `defrag` in a VMA that
/// is (or is not) `MADV_HUGEPAGE`.
pub fn vma_thp_gfp_mask(defrag: ThpDefrag, madvised: bool) -> Gfp {
    let light = Gfp::GFP_TRANSHUGE_LIGHT;
    match defrag {
        ThpDefrag::Always => {
            if madvised {
                Gfp::GFP_TRANSHUGE
            } else {
                Gfp::GFP_TRANSHUGE | Gfp::NORETRY
            }
        }
        ThpDefrag::Defer => light | Gfp::KSWAPD_RECLAIM,
        ThpDefrag::DeferMadvise => {
            light
                | if madvised {
                    Gfp::DIRECT_RECLAIM
                } else {
                    Gfp::KSWAPD_RECLAIM
                }
        }
        ThpDefrag::Madvise => {
            if madvised {
                light | Gfp::DIRECT_RECLAIM
            } else {
                light
            }
        }
        ThpDefrag::Never => light,
    }
}

impl Machine {
    /// Mirrors `alloc_buddy_hugetlb_folio()` for one node: `__GFP_RETRY_MAYFAIL` unless a
    /// hard try on this node failed since the last success.
    fn alloc_buddy_hugetlb_folio(&mut self, node: NodeId) -> Option<FolioId> {
        let n = node.0 as usize;
        if self.hugetlb.noretry.len() < self.nr_nodes() {
            self.hugetlb.noretry.resize(self.nr_nodes(), false);
        }
        let try_hard = !self.hugetlb.noretry[n];
        let mut gfp = Gfp::GFP_HIGHUSER_MOVABLE | Gfp::COMP | Gfp::THISNODE | Gfp::NOWARN;
        if try_hard {
            gfp = gfp | Gfp::RETRY_MAYFAIL;
        }
        let order = Order(HPAGE_PMD_ORDER);
        let pfn = self.alloc_pages(gfp, order, node);
        self.hugetlb.noretry[n] = match (pfn.is_some(), try_hard) {
            (true, false) => false,
            (false, true) => true,
            (_, _) => self.hugetlb.noretry[n],
        };
        let Some(pfn) = pfn else {
            self.vmstat[VmEvent::HtlbBuddyAllocFail] += 1;
            return None;
        };
        self.vmstat[VmEvent::HtlbBuddyAllocSuccess] += 1;
        Some(self.own_folio(
            pfn,
            order,
            Holder(FolioKind::Hugetlb, 0, 0),
            PageFlags::HUGETLB,
            1,
        ))
    }

    /// Mirrors `set_max_huge_pages()`: grows the pool one page at a time, each from the
    /// next node round-robin (`alloc_pool_huge_folio()` tries every node once), and stops
    /// at the first attempt that fails on all nodes; shrinks it by freeing pool pages.
    /// Returns the pool size reached (what `nr_hugepages` reads back).
    pub fn set_nr_hugepages(&mut self, count: u64) -> u64 {
        while (self.hugetlb.pages.len() as u64) < count {
            // The writer's CPU time for this page; kswapd and kcompactd, woken by its slow
            // path, run beside it on their CPU meanwhile.
            let t0 = self.clock.now_ns;
            let nodes = self.nr_nodes();
            let mut got = None;
            let mut spent = 0;
            for i in 0..nodes {
                let node = NodeId(((self.hugetlb.next_nid as usize + i) % nodes) as u8);
                let id = self.alloc_buddy_hugetlb_folio(node);
                spent += self.clock.last_alloc_ns;
                if let Some(id) = id {
                    self.hugetlb.next_nid = ((node.0 as usize + 1) % nodes) as u8;
                    got = Some(id);
                    break;
                }
            }
            if got.is_some() {
                spent += self.config.costs.hugetlb_folio_ns;
                self.clock.cpu.tasks_ns += self.config.costs.hugetlb_folio_ns;
            }
            self.advance_to(t0 + spent);
            match got {
                Some(id) => self.hugetlb.pages.push(id),
                None => break,
            }
        }
        while (self.hugetlb.pages.len() as u64) > count {
            let id = self.hugetlb.pages.pop().expect("pool page");
            self.free_hugetlb(id);
        }
        self.hugetlb.pages.len() as u64
    }

    /// A fault on anonymous memory at `vpn` of `pid` as Linux takes it with THP: the
    /// largest enabled folio order (`thp_orders`; PMD order is the classic THP) that is
    /// aligned and unmapped is tried first with the mask of `vma_thp_gfp_mask()`, then each
    /// smaller one, then order 0 (`alloc_anon_folio()` / `do_huge_pmd_anonymous_page()`).
    /// With THP disabled, or a VMA that is not madvised under `madvise`-only THP
    /// (`thp_madvise_only`), the fault is order 0. Counts `thp_fault_alloc` and
    /// `thp_fault_fallback` for the PMD order.
    pub fn thp_fault(&mut self, pid: u32, vpn: u64, madvised: bool) -> Result<FolioId, MapError> {
        if let Some((base, _)) = self.swap_lookup(pid, vpn) {
            return self.swap_in(pid, base);
        }
        let enabled = self.config.thp_enabled && (madvised || !self.config.thp_madvise_only);
        if enabled {
            let gfp = vma_thp_gfp_mask(self.config.thp_defrag, madvised);
            for o in (1..=HPAGE_PMD_ORDER).rev() {
                if self.config.thp_orders & (1 << o) == 0 {
                    continue;
                }
                let nr = 1u64 << o;
                let base = vpn & !(nr - 1);
                if self.lookup(pid, base).is_some()
                    || self.owners.processes[pid as usize]
                        .table
                        .any_in(base, base + nr)
                    || self.swap_overlaps(pid, base, nr)
                {
                    continue;
                }
                let r = if o == HPAGE_PMD_ORDER {
                    self.fault_pmd_thp(pid, base, gfp)
                } else {
                    self.fault_anon_gfp(pid, base, Order(o), gfp)
                };
                match r {
                    Ok(id) => {
                        if o == HPAGE_PMD_ORDER {
                            self.vmstat[VmEvent::ThpFaultAlloc] += 1;
                        }
                        return Ok(id);
                    }
                    Err(MapError::Invalid) => return Err(MapError::Invalid),
                    Err(MapError::NoMemory) => {
                        if o == HPAGE_PMD_ORDER {
                            self.vmstat[VmEvent::ThpFaultFallback] += 1;
                        }
                    }
                }
            }
        }
        self.fault_anon_gfp(pid, vpn, Order(0), Gfp::GFP_HIGHUSER_MOVABLE)
    }

    /// The PMD-order branch of `alloc_pages_mpol()` under the default policy: first the
    /// local node only, without retrying reclaim (`__GFP_THISNODE | __GFP_NORETRY`); a mask
    /// that may reclaim then tries again as asked.
    fn fault_pmd_thp(&mut self, pid: u32, base: u64, gfp: Gfp) -> Result<FolioId, MapError> {
        let order = Order(HPAGE_PMD_ORDER);
        match self.fault_anon_gfp(pid, base, order, gfp | Gfp::THISNODE | Gfp::NORETRY) {
            Err(MapError::NoMemory) if gfp.contains(Gfp::DIRECT_RECLAIM) => {
                self.fault_anon_gfp(pid, base, order, gfp)
            }
            r => r,
        }
    }
}
