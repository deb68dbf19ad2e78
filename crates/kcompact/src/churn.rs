//! A seeded allocate/free churn: the workload `kcompact run` drives until the scenarios
//! of the seed experiments exist.
//!
//! Every step either allocates or frees, holding memory use around a target. Allocations
//! go through real owners: movable memory is anonymous memory a process faults in (orders
//! up to the PMD order, page tables included), unmovable, reclaimable and atomic memory is
//! kernel memory allocated with the matching GFP mask. Every `migrate_every` steps a batch
//! of random anonymous folios is isolated and migrated (SYNC_LIGHT), so migration runs
//! under load. At the end it probes how many order-9 blocks can still be allocated without
//! reclaim or compaction (giving them back), runs `compact_memory` and probes again, and
//! checks every owner's data when contents are tracked.

use crate::gfp::Gfp;
use crate::machine::Machine;
use crate::migrate::{AllocTarget, MigrateMode, MigrateReason};
use crate::owners::process::HPAGE_PMD_ORDER;
use crate::owners::table::FolioId;
use crate::rng::SimRng;
use crate::units::{NodeId, Order, NR_PAGE_ORDERS};
use crate::views::extfrag::{unusable_free_index, ContigPageInfo};

/// What the churn does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChurnConfig {
    /// Steps (each one allocation or one free).
    pub steps: u64,
    /// Target share of managed memory in use, percent (1..=95).
    pub fill_pct: u64,
    /// Weights of unmovable, movable, reclaimable and atomic (GFP_ATOMIC) allocations.
    pub mix: [u64; 4],
    /// Largest order allocated (0..=10; movable memory stops at the PMD order).
    pub max_order: u8,
    /// Steps between timeline samples.
    pub sample_every: u64,
    /// Steps between migration batches (0: none).
    pub migrate_every: u64,
}

impl Default for ChurnConfig {
    fn default() -> Self {
        ChurnConfig {
            steps: 1_000_000,
            fill_pct: 90,
            mix: [15, 75, 8, 2],
            max_order: 10,
            sample_every: 10_000,
            migrate_every: 2_000,
        }
    }
}

/// One timeline sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChurnSample {
    /// Step number.
    pub step: u64,
    /// Free pages over all zones.
    pub free_pages: u64,
    /// Free blocks of order ≥ 9 (order 10 counts as 2).
    pub free_order9_blocks: u64,
    /// Unusable free space index at order 9 of the largest zone, thousandths.
    pub unusable_order9: i64,
}

/// What the churn measured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChurnReport {
    /// Allocation attempts per order.
    pub attempts_by_order: [u64; NR_PAGE_ORDERS],
    /// Failed attempts per order.
    pub failures_by_order: [u64; NR_PAGE_ORDERS],
    /// Frees.
    pub frees: u64,
    /// Pages in use at the end (before the probe).
    pub used_pages_end: u64,
    /// Order-9 movable blocks the probe could allocate at the end.
    pub hugepages_obtainable: u64,
    /// Free order-9 blocks (order 10 counts twice) before `compact_memory` at the end.
    pub free_order9_blocks_before_compaction: u64,
    /// ... and after it.
    pub free_order9_blocks_after_compaction: u64,
    /// Order-9 blocks the probe gets after `compact_memory`.
    pub hugepages_after_compaction: u64,
    /// Pages whose contents were checked at the end (0 without content tracking).
    pub integrity_checked_pages: u64,
    /// Folios whose contents were wrong.
    pub integrity_errors: u64,
    /// Timeline.
    pub samples: Vec<ChurnSample>,
}

const KERNEL_GFP: [Gfp; 4] = [
    Gfp::GFP_KERNEL,
    Gfp::GFP_HIGHUSER_MOVABLE,
    Gfp::GFP_KERNEL_RECLAIMABLE,
    Gfp::GFP_ATOMIC,
];
const ORDER_WEIGHTS: [u64; NR_PAGE_ORDERS] = [600, 120, 80, 60, 30, 20, 15, 10, 8, 30, 4];

/// A live allocation of the churn.
#[derive(Clone, Copy, Debug)]
enum Live {
    /// Anonymous memory of the churn's process at this virtual page.
    Anon(u64, Order),
    /// Kernel memory.
    Kernel(FolioId, Order),
}

/// Runs the churn on `m`, calling `progress(step)` every sample.
pub fn run_churn(
    m: &mut Machine,
    cfg: &ChurnConfig,
    rng: &mut SimRng,
    mut progress: impl FnMut(u64),
) -> ChurnReport {
    assert!(
        (1..=95).contains(&cfg.fill_pct) && cfg.max_order <= 10 && cfg.mix.iter().any(|w| *w > 0)
    );
    let pid = m.new_process();
    let mut next_vpn = 0u64;
    let mut live: Vec<Live> = Vec::new();
    let mut used = 0u64;
    let target = m.managed_pages() * cfg.fill_pct / 100;
    let mut rep = ChurnReport::default();
    let weights = &ORDER_WEIGHTS[..=cfg.max_order as usize];
    let sample_every = cfg.sample_every.max(1);
    for step in 0..cfg.steps {
        let want_alloc = if used < target {
            rng.chance(3, 4)
        } else {
            rng.chance(1, 4)
        };
        if want_alloc || live.is_empty() {
            let kind = rng.weighted(&cfg.mix);
            let mut order = Order(rng.weighted(weights) as u8);
            if kind == 1 {
                order = order.min(Order(HPAGE_PMD_ORDER));
            }
            rep.attempts_by_order[order.idx()] += 1;
            let got = if kind == 1 {
                // Dense, naturally aligned virtual addresses: one page table per 512 pages.
                let vpn = next_vpn.next_multiple_of(order.nr_pages());
                next_vpn = vpn + order.nr_pages();
                m.fault_anon(pid, vpn, order)
                    .ok()
                    .map(|_| Live::Anon(vpn, order))
            } else {
                m.alloc_kernel_gfp(KERNEL_GFP[kind], order, kind as u32)
                    .map(|id| Live::Kernel(id, order))
            };
            match got {
                Some(l) => {
                    live.push(l);
                    used += order.nr_pages();
                }
                None => rep.failures_by_order[order.idx()] += 1,
            }
        } else {
            let i = rng.below(live.len() as u64) as usize;
            match live.swap_remove(i) {
                Live::Anon(vpn, order) => {
                    m.munmap(pid, vpn, 1);
                    used -= order.nr_pages();
                }
                Live::Kernel(id, order) => {
                    m.free_kernel(id);
                    used -= order.nr_pages();
                }
            }
            rep.frees += 1;
        }
        if cfg.migrate_every > 0 && (step + 1) % cfg.migrate_every == 0 {
            migrate_some(m, pid, rng);
        }
        if (step + 1) % sample_every == 0 {
            rep.samples.push(sample(m, step + 1));
            progress(step + 1);
        }
    }
    rep.used_pages_end = used;
    rep.hugepages_obtainable = probe_hugepages(m);
    rep.free_order9_blocks_before_compaction = sample(m, cfg.steps).free_order9_blocks;
    m.compact_memory();
    rep.free_order9_blocks_after_compaction = sample(m, cfg.steps).free_order9_blocks;
    rep.hugepages_after_compaction = probe_hugepages(m);
    if m.contents.enabled() {
        for (_, rec) in m.owners.iter() {
            rep.integrity_checked_pages += rec.order.nr_pages();
            rep.integrity_errors +=
                !m.contents
                    .check(rec.pfn, rec.order.nr_pages(), rec.stamp, rec.stamp_offset)
                    as u64;
        }
    }
    rep
}

/// How many order-9 blocks a THP allocation that neither reclaims nor compacts gets now
/// (they are given back).
fn probe_hugepages(m: &mut Machine) -> u64 {
    let mut huge = Vec::new();
    while let Some(p) = m.alloc_pages(Gfp::GFP_TRANSHUGE_LIGHT, Order(9), NodeId(0)) {
        huge.push(p);
    }
    let n = huge.len() as u64;
    for p in huge {
        m.free_pages(p, Order(9));
    }
    n
}

/// Isolates up to 32 random anonymous folios of `pid` and migrates them (SYNC_LIGHT).
fn migrate_some(m: &mut Machine, pid: u32, rng: &mut SimRng) {
    let table = &m.owners.processes[pid as usize].table;
    if table.is_empty() {
        return;
    }
    let n = table.len() as u64;
    let picks: Vec<FolioId> = (0..32)
        .filter_map(|_| table.iter().nth(rng.below(n) as usize).map(|(_, id)| *id))
        .collect();
    let mut list = Vec::new();
    for id in picks {
        if !list.contains(&id) && m.folio_isolate_lru(id) {
            list.push(id);
        }
    }
    let r = m.migrate_pages(
        list,
        &mut AllocTarget,
        MigrateMode::SyncLight,
        MigrateReason::Compaction,
    );
    m.putback_movable_pages(r.ret);
}

/// A timeline sample of `m` at `step`.
pub fn sample(m: &Machine, step: u64) -> ChurnSample {
    let free_order9_blocks = m
        .zones
        .iter()
        .map(|z| z.free_area[9].nr_free + 2 * z.free_area[10].nr_free)
        .sum();
    let biggest = m
        .zones
        .iter()
        .max_by_key(|z| z.managed_pages)
        .expect("a zone");
    let info = ContigPageInfo::new(&biggest.free_by_order(), Order(9));
    ChurnSample {
        step,
        free_pages: m.nr_free_pages(),
        free_order9_blocks,
        unusable_order9: unusable_free_index(Order(9), &info),
    }
}
