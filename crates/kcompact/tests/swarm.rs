//! Swarm test of the buddy allocator against a naive reference model, in lockstep.
//!
//! Each seed draws its own machine (zone sizes, tunables, CMA, defrag_mode) and its own
//! operation mix (allocation orders, migratetypes, ALLOC flags, frees, isolation, highatomic
//! unreserve, LRU marking), so different seeds stress different corners (swarm testing).
//! The reference model is a plain per-page state vector. After every step the full-state
//! checker runs and the model's free pages (buddy and per-CPU lists) are compared with the
//! reference's; allocation results are checked against what the reference says was
//! possible. Most seeds run with per-CPU lists on 1 to 4 CPUs, switching CPUs, draining and
//! decaying between operations.
//!
//! A failure prints its seed; rerun one seed with
//! `KCOMPACT_SWARM_SEED=N cargo test -p kcompact --test swarm`.

mod common;

use common::small_layout_pb;
use kcompact::alloc::AllocContext;
use kcompact::event::VmEvent;
use kcompact::gfp::{AllocFlags, Gfp};
use kcompact::layout::ZoneType;
use kcompact::memmap::{MigrateType, PageFlags};
use kcompact::rng::SimRng;
use kcompact::units::{NodeId, Order, Pfn, MAX_PAGE_ORDER};
use kcompact::verify::verify;
use kcompact::{Machine, VmConfig};

const SEEDS: u64 = 64;
const STEPS_PER_SEED: u64 = 16_384;

/// The reference model: what each page is, nothing else.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RefPage {
    /// Not managed memory.
    Absent,
    Free,
    /// Allocated as part of allocation `id`.
    Alloc(u32),
}

struct Reference {
    pages: Vec<RefPage>,
}

impl Reference {
    fn from(m: &Machine) -> Reference {
        let end = m.mem.end_pfn().0;
        let mut pages = vec![RefPage::Absent; end as usize];
        for z in &m.zones {
            for o in Order::all() {
                for mt in MigrateType::ALL {
                    for p in z.free_area[o.idx()].free_list[mt.idx()].iter(&m.mem) {
                        for i in 0..o.nr_pages() {
                            pages[p.plus(i).idx()] = RefPage::Free;
                        }
                    }
                }
            }
        }
        Reference { pages }
    }

    /// Free pages of each zone by the reference's count.
    fn free_in(&self, m: &Machine, zi: usize) -> u64 {
        let z = &m.zones[zi];
        if z.spanned_pages == 0 {
            return 0;
        }
        (z.zone_start_pfn.0..z.end_pfn().0)
            .filter(|p| self.pages[*p as usize] == RefPage::Free)
            .count() as u64
    }

    /// True if some aligned run of `2^order` free pages lies in a pageblock of a type the
    /// request may use, in one of `zones`.
    fn could_allocate(
        &self,
        m: &Machine,
        zones: &[kcompact::units::ZoneIdx],
        order: Order,
        usable: &dyn Fn(MigrateType) -> bool,
        on_pcp: &[bool],
    ) -> bool {
        for zi in zones {
            let z = m.zone(*zi);
            let mut p = z.zone_start_pfn.align_down(order).0;
            while p + order.nr_pages() <= z.end_pfn().0 {
                let pfn = Pfn(p);
                if pfn >= z.zone_start_pfn
                    && usable(m.migratetype(pfn))
                    && (0..order.nr_pages()).all(|i| {
                        self.pages[(p + i) as usize] == RefPage::Free && !on_pcp[(p + i) as usize]
                    })
                {
                    return true;
                }
                p += order.nr_pages();
            }
        }
        false
    }
}

/// Which pages are inside blocks on the model's per-CPU lists.
fn pcp_pages(m: &Machine) -> Vec<bool> {
    let mut on = vec![false; m.mem.end_pfn().idx()];
    for z in &m.zones {
        for pcp in &z.pageset {
            for (pindex, list) in pcp.lists.iter().enumerate() {
                let o = kcompact::buddy::pcp::pindex_to_order(pindex);
                for p in list.iter(&m.mem) {
                    for i in 0..o.nr_pages() {
                        on[p.plus(i).idx()] = true;
                    }
                }
            }
        }
    }
    on
}

/// One seed's machine and operation mix.
struct Swarm {
    seed: u64,
    rng: SimRng,
    m: Machine,
    reference: Reference,
    live: Vec<(Pfn, Order, u32)>,
    next_id: u32,
    op_weights: [u64; 11],
    drains: u64,
    ticks_with_work: u64,
    order_weights: [u64; 11],
    type_weights: [u64; 5],
    ops: u64,
    oracle_checks: u64,
    last_op: &'static str,
}

const GFPS: [Gfp; 5] = [
    Gfp::GFP_KERNEL,
    Gfp::GFP_HIGHUSER_MOVABLE,
    Gfp::GFP_KERNEL_RECLAIMABLE,
    Gfp::GFP_ATOMIC,
    Gfp(Gfp::GFP_KERNEL.0 | Gfp::DMA32.0),
];

impl Swarm {
    fn new(seed: u64) -> Swarm {
        let mut rng = SimRng::new(seed);
        // Every tenth seed is a machine too small to group pages by mobility.
        let tiny = seed % 10 == 3;
        let dma32 = if tiny || rng.chance(1, 3) {
            0
        } else {
            rng.range(4, 12)
        };
        let normal = if tiny {
            rng.range(2, 4)
        } else {
            rng.range(8, 20)
        };
        let config_cma = !tiny && rng.chance(1, 4);
        let pcp = rng.chance(3, 4);
        let cfg = VmConfig {
            pcp,
            cpus: rng.range(1, 4) as u32,
            percpu_pagelist_high_fraction: if rng.chance(1, 4) { 8 } else { 0 },
            watermark_boost_factor: if rng.chance(1, 2) { 15000 } else { 0 },
            watermark_scale_factor: [10, 100, 1000][rng.below(3) as usize],
            defrag_mode: rng.chance(1, 5),
            thp_enabled: rng.chance(1, 2),
            config_cma,
            cma_pages: if config_cma { 512 * rng.range(1, 2) } else { 0 },
            ..VmConfig::default()
        };
        // A quarter of the seeds use a smaller pageblock (as on arm64 with 64K pages or
        // CONFIG_ARCH_FORCE_MAX_ORDER kernels); the highatomic reserve (1% of a zone, at
        // least a pageblock) only fits the small machines then.
        let pb = if !tiny && rng.chance(1, 4) {
            Order(rng.range(4, 8) as u8)
        } else {
            Order(9)
        };
        let m = Machine::boot(&small_layout_pb(dma32, normal, pb), cfg).expect("boot");
        let reference = Reference::from(&m);
        let w = |rng: &mut SimRng, n: u64| rng.range(0, n);
        let op_weights = [
            w(&mut rng, 40) + 10,
            w(&mut rng, 40) + 5,
            w(&mut rng, 40) + 10,
            w(&mut rng, 3),
            w(&mut rng, 3),
            w(&mut rng, 2),
            w(&mut rng, 10),
            w(&mut rng, 2),
            w(&mut rng, 10),
            w(&mut rng, 2),
            w(&mut rng, 4),
        ];
        let mut order_weights = [0u64; 11];
        for (o, x) in order_weights.iter_mut().enumerate() {
            *x = if o == 0 {
                w(&mut rng, 100) + 20
            } else if rng.chance(2, 3) {
                w(&mut rng, 30)
            } else {
                0
            };
        }
        let mut type_weights = [0u64; 5];
        for x in type_weights.iter_mut() {
            *x = if rng.chance(3, 4) {
                w(&mut rng, 20) + 1
            } else {
                0
            };
        }
        if type_weights.iter().all(|x| *x == 0) {
            type_weights[1] = 1;
        }
        Swarm {
            seed,
            rng,
            m,
            reference,
            live: Vec::new(),
            next_id: 1,
            op_weights,
            order_weights,
            type_weights,
            ops: 0,
            drains: 0,
            ticks_with_work: 0,
            oracle_checks: 0,
            last_op: "boot",
        }
    }

    fn fail(&self, step: u64, what: String) -> ! {
        panic!(
            "swarm seed={} step={step} (pageblock order {}, after {}): {what}\nrerun: KCOMPACT_SWARM_SEED={} cargo test -p kcompact --test swarm",
            self.seed,
            self.m.pageblock_order().0,
            self.last_op,
            self.seed
        );
    }

    fn step(&mut self, step: u64) {
        let op = self.rng.weighted(&self.op_weights);
        self.last_op = [
            "alloc",
            "alloc with explicit flags",
            "free",
            "isolate",
            "unisolate",
            "unreserve",
            "toggle LRU",
            "free many",
            "switch CPU",
            "drain pcp",
            "vmstat tick",
        ][op];
        match op {
            0 => self.alloc(step, false),
            1 => self.alloc(step, true),
            2 => self.free_one(step),
            3 => self.isolate(true),
            4 => self.isolate(false),
            5 => self.unreserve(),
            6 => self.toggle_lru(),
            7 => self.free_many(step),
            8 => self.m.cpu = self.rng.below(self.m.nr_cpus() as u64) as u32,
            9 => self.drain(),
            _ => {
                let cpu = self.rng.below(self.m.nr_cpus() as u64) as u32;
                self.ticks_with_work += self.m.refresh_cpu_vm_stats(cpu) as u64;
            }
        }
        self.ops += 1;
        self.check(step);
    }

    fn alloc(&mut self, step: u64, explicit_flags: bool) {
        let kind = self.rng.weighted(&self.type_weights);
        let order = Order(self.rng.weighted(&self.order_weights) as u8);
        let mut gfp = GFPS[kind];
        if order.0 > 0 && self.rng.chance(3, 4) {
            gfp = gfp | Gfp::COMP;
        }
        let node = NodeId(0);
        let (ac, base) = self.m.prepare_alloc(gfp, node);
        let (flags, page) = if explicit_flags {
            let mut f = AllocFlags(self.rng.below(3) as u32);
            for extra in [
                AllocFlags::NOFRAGMENT,
                AllocFlags::HIGHATOMIC,
                AllocFlags::NON_BLOCK,
                AllocFlags::MIN_RESERVE,
                AllocFlags::NO_WATERMARKS,
                AllocFlags::KSWAPD,
                AllocFlags::OOM,
            ] {
                if self.rng.chance(1, 3) {
                    f = f | extra;
                }
            }
            if base.has(AllocFlags::CMA) {
                f = f | AllocFlags::CMA;
            }
            (f, self.m.get_page_from_freelist(gfp, order, f, &ac))
        } else {
            let before_fail = self.m.vmstat[VmEvent::AllocFail];
            let p = self.m.alloc_pages(gfp, order, node);
            assert_eq!(
                self.m.vmstat[VmEvent::AllocFail],
                before_fail + p.is_none() as u64
            );
            (AllocFlags::default(), p)
        };
        match page {
            Some(p) => self.record_alloc(step, p, order, gfp, &ac, flags),
            None => self.check_failure(step, order, &ac, flags, explicit_flags),
        }
    }

    fn record_alloc(
        &mut self,
        step: u64,
        p: Pfn,
        order: Order,
        gfp: Gfp,
        ac: &AllocContext,
        flags: AllocFlags,
    ) {
        let Some(zi) = self.m.page_zone(p) else {
            self.fail(
                step,
                format!("allocation returned {p:?}, outside every zone"),
            )
        };
        if !self.m.ac_zonelist(ac).contains(&zi) {
            self.fail(
                step,
                format!(
                    "{p:?} from zone {} which {gfp:?} may not use",
                    self.m.zone(zi).name()
                ),
            );
        }
        if !p.is_aligned(order) {
            self.fail(step, format!("{p:?} misaligned for order {order}"));
        }
        let id = self.next_id;
        self.next_id += 1;
        for i in 0..order.nr_pages() {
            let q = p.plus(i);
            if self.reference.pages[q.idx()] != RefPage::Free {
                self.fail(step, format!("allocation of {p:?} order {order} handed out {q:?}, which the reference has as {:?}", self.reference.pages[q.idx()]));
            }
            self.reference.pages[q.idx()] = RefPage::Alloc(id);
        }
        let mt = self.m.migratetype(p);
        let cma_ok = self.m.config.config_cma && ac.migratetype == MigrateType::Movable;
        let _ = flags;
        match mt {
            MigrateType::Isolate => {
                self.fail(step, format!("{p:?} came from an isolated pageblock"))
            }
            MigrateType::Cma if !cma_ok => self.fail(
                step,
                format!("{p:?} from a CMA block for {gfp:?} with {flags:?}"),
            ),
            _ => {}
        }
        let head = self.m.mem.flags(p);
        if head.intersects(PageFlags::BUDDY) || self.m.mem.refcount(p) != 1 {
            self.fail(
                step,
                format!(
                    "{p:?} allocated in state {head:?} refcount {}",
                    self.m.mem.refcount(p)
                ),
            );
        }
        if gfp.contains(Gfp::MOVABLE) && self.rng.chance(1, 2) {
            self.m.mem.set_flag(p, PageFlags::LRU);
        }
        self.live.push((p, order, id));
    }

    fn check_failure(
        &mut self,
        step: u64,
        order: Order,
        ac: &AllocContext,
        flags: AllocFlags,
        explicit: bool,
    ) {
        // Only a request that ignores watermarks and may fall back must succeed whenever a
        // suitable free block exists; the others may fail on watermarks.
        if !explicit
            || !flags.has(AllocFlags::NO_WATERMARKS)
            || order.0 > self.m.pageblock_order().0
        {
            return;
        }
        if flags.has(AllocFlags::NOFRAGMENT) && self.m.config.defrag_mode {
            return;
        }
        let highatomic = flags.has(AllocFlags(
            AllocFlags::HIGHATOMIC.0 | AllocFlags::OOM.0 | AllocFlags::NON_BLOCK.0,
        ));
        let cma = flags.has(AllocFlags::CMA)
            && self.m.config.config_cma
            && ac.migratetype == MigrateType::Movable;
        let usable = |t: MigrateType| {
            t.is_mergeable()
                || (t == MigrateType::HighAtomic && highatomic)
                || (t == MigrateType::Cma && cma)
        };
        let usable_for_order = |t: MigrateType| {
            usable(t)
                && (t != MigrateType::HighAtomic
                    || order.0 > 0
                    || flags.has(AllocFlags(AllocFlags::OOM.0 | AllocFlags::NON_BLOCK.0)))
        };
        self.oracle_checks += 1;
        // Free pages waiting on per-CPU lists are not on the buddy lists the request falls
        // back to.
        let on_pcp = pcp_pages(&self.m);
        if self.reference.could_allocate(
            &self.m,
            self.m.ac_zonelist(ac),
            order,
            &usable_for_order,
            &on_pcp,
        ) {
            self.fail(step, format!("order-{order} {:?} request with {flags:?} failed although the reference has a free aligned block", ac.migratetype));
        }
    }

    fn free_one(&mut self, step: u64) {
        if self.live.is_empty() {
            return;
        }
        let i = self.rng.below(self.live.len() as u64) as usize;
        let (p, order, id) = self.live.swap_remove(i);
        self.free(step, p, order, id);
    }

    fn free_many(&mut self, step: u64) {
        let n = self.rng.range(1, 64).min(self.live.len() as u64);
        for _ in 0..n {
            self.free_one(step);
        }
    }

    fn free(&mut self, step: u64, p: Pfn, order: Order, id: u32) {
        for i in 0..order.nr_pages() {
            let q = p.plus(i);
            if self.reference.pages[q.idx()] != RefPage::Alloc(id) {
                self.fail(
                    step,
                    format!(
                        "freeing {p:?} order {order}: the reference has {q:?} as {:?}",
                        self.reference.pages[q.idx()]
                    ),
                );
            }
            self.reference.pages[q.idx()] = RefPage::Free;
        }
        self.m.mem.clear_flag(p, PageFlags::LRU);
        self.m.free_pages(p, order);
    }

    fn drain(&mut self) {
        self.drains += 1;
        if self.rng.chance(1, 2) {
            self.m.drain_all_pages(None);
            assert_eq!(self.m.nr_pcp_pages(), 0, "drain_all_pages leaves nothing");
        } else {
            let zi = self.rng.below(self.m.zones.len() as u64) as u8;
            let zone = self
                .rng
                .chance(1, 2)
                .then_some(kcompact::units::ZoneIdx(zi));
            self.m.drain_local_pages(zone);
        }
    }

    fn isolate(&mut self, on: bool) {
        let end = self.m.mem.end_pfn().0;
        let p = Pfn(self.rng.range(0x1000, end - 1));
        if on {
            self.m.isolate_pageblock(p);
            // As every caller of start_isolate_page_range() does (alloc_contig_range(),
            // offline_pages()): blocks already on the per-CPU lists could otherwise still
            // be handed out from the isolated pageblock.
            let zone = self.m.page_zone(p);
            self.m.drain_all_pages(zone);
        } else {
            self.m.unisolate_pageblock(p);
        }
    }

    fn unreserve(&mut self) {
        let zl = self.m.zonelist(NodeId(0), ZoneType::Movable, false);
        let force = self.rng.chance(1, 2);
        let mt = [
            MigrateType::Unmovable,
            MigrateType::Movable,
            MigrateType::Reclaimable,
        ][self.rng.below(3) as usize];
        self.m
            .unreserve_highatomic_pageblock(&zl, ZoneType::Movable, mt, force);
    }

    fn toggle_lru(&mut self) {
        if let Some(&(p, _, _)) = self
            .live
            .get(self.rng.below(self.live.len().max(1) as u64) as usize)
        {
            if self.m.mem.flags(p).contains(PageFlags::LRU) {
                self.m.mem.clear_flag(p, PageFlags::LRU);
            } else {
                self.m.mem.set_flag(p, PageFlags::LRU);
            }
        }
    }

    fn check(&self, step: u64) {
        if let Err(e) = verify(&self.m) {
            self.fail(step, format!("checker:\n{e}"));
        }
        for (zi, z) in self.m.zones.iter().enumerate() {
            if z.spanned_pages == 0 {
                continue;
            }
            let isolated: u64 = (0..=MAX_PAGE_ORDER)
                .map(|o| {
                    z.free_area[o as usize].free_list[MigrateType::Isolate.idx()]
                        .iter(&self.m.mem)
                        .count() as u64
                        * (1 << o)
                })
                .sum();
            let want = self.reference.free_in(&self.m, zi);
            if z.nr_free_pages + isolated + z.pcp_pages() != want {
                self.fail(
                    step,
                    format!(
                        "zone {}: model has {} free (+{isolated} isolated, +{} on per-CPU lists), reference {want}",
                        z.name(),
                        z.nr_free_pages,
                        z.pcp_pages()
                    ),
                );
            }
        }
    }
}

/// What the swarm exercised, summed over seeds, so the test can insist every path ran.
#[derive(Default, Debug)]
struct Coverage {
    ops: u64,
    failures_checked_against_reference: u64,
    extfrag_claims: u64,
    extfrag_steals: u64,
    highatomic_reserved: u64,
    highatomic_unreserved: u64,
    alloc_fail: u64,
    boost_wakes: u64,
    isolated_now: u64,
    cma_machines: u64,
    defrag_mode_machines: u64,
    mobility_disabled_machines: u64,
    small_pageblock_machines: u64,
    pcp_machines: u64,
    multi_cpu_machines: u64,
    drains: u64,
    ticks_with_work: u64,
}

fn run_seed(seed: u64, cov: &mut Coverage) {
    let mut s = Swarm::new(seed);
    s.check(0);
    for step in 1..=STEPS_PER_SEED {
        s.step(step);
    }
    // Drain what is left and expect every page back free.
    while let Some((p, o, id)) = s.live.pop() {
        s.free(STEPS_PER_SEED + 1, p, o, id);
    }
    s.check(STEPS_PER_SEED + 1);
    let v = &s.m.vmstat;
    cov.ops += s.ops;
    cov.failures_checked_against_reference += s.oracle_checks;
    cov.extfrag_claims += v[VmEvent::AllocExtfragChangeOwnership];
    cov.extfrag_steals += v[VmEvent::AllocExtfrag] - v[VmEvent::AllocExtfragChangeOwnership];
    cov.highatomic_reserved += v[VmEvent::HighatomicReserved];
    cov.highatomic_unreserved += v[VmEvent::HighatomicUnreserved];
    cov.alloc_fail += v[VmEvent::AllocFail];
    cov.boost_wakes += v[VmEvent::KswapdBoostWake];
    cov.isolated_now +=
        s.m.zones
            .iter()
            .map(|z| {
                z.free_area
                    .iter()
                    .map(|a| {
                        a.free_list[MigrateType::Isolate.idx()]
                            .iter(&s.m.mem)
                            .count() as u64
                    })
                    .sum::<u64>()
            })
            .sum::<u64>();
    cov.cma_machines += s.m.config.config_cma as u64;
    cov.defrag_mode_machines += s.m.config.defrag_mode as u64;
    cov.mobility_disabled_machines += s.m.mobility_disabled as u64;
    cov.small_pageblock_machines += (s.m.pageblock_order().0 < 9) as u64;
    cov.pcp_machines += s.m.config.pcp as u64;
    cov.multi_cpu_machines += (s.m.config.pcp && s.m.nr_cpus() > 1) as u64;
    cov.drains += s.drains;
    cov.ticks_with_work += s.ticks_with_work;
}

#[test]
fn swarm_against_reference_model() {
    let seeds: Vec<u64> = match std::env::var("KCOMPACT_SWARM_SEED") {
        Ok(v) => vec![v.parse().expect("KCOMPACT_SWARM_SEED must be a number")],
        Err(_) => (1..=SEEDS).collect(),
    };
    let mut cov = Coverage::default();
    for s in &seeds {
        run_seed(*s, &mut cov);
    }
    eprintln!(
        "swarm: {} seeds, {} operations, zero violations; {cov:?}",
        seeds.len(),
        cov.ops
    );
    if seeds.len() as u64 == SEEDS {
        assert!(
            cov.ops >= 1_000_000,
            "the swarm must run at least a million operations, ran {}",
            cov.ops
        );
        for (what, n) in [
            (
                "failures checked against the reference",
                cov.failures_checked_against_reference,
            ),
            ("block claims", cov.extfrag_claims),
            ("steals", cov.extfrag_steals),
            ("highatomic reservations", cov.highatomic_reserved),
            ("highatomic releases", cov.highatomic_unreserved),
            ("failed allocations", cov.alloc_fail),
            ("boost kswapd wakes", cov.boost_wakes),
            ("CMA machines", cov.cma_machines),
            ("defrag_mode machines", cov.defrag_mode_machines),
            (
                "machines without mobility grouping",
                cov.mobility_disabled_machines,
            ),
            (
                "machines with small pageblocks",
                cov.small_pageblock_machines,
            ),
            ("machines with per-CPU lists", cov.pcp_machines),
            ("per-CPU lists on several CPUs", cov.multi_cpu_machines),
            ("pcp drains", cov.drains),
            ("vmstat ticks that decayed a pcp", cov.ticks_with_work),
        ] {
            assert!(n > 0, "the swarm never exercised {what}: {cov:?}");
        }
    }
}
