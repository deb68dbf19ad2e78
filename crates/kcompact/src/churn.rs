//! A seeded allocate/free churn: the workload `kcompact run` drives until the scenarios
//! of the seed experiments exist.
//!
//! Every step either allocates (a migratetype drawn from the mix, an order drawn from a
//! distribution weighted toward small orders) or frees a random live allocation, holding
//! memory use around a target. Movable allocations are flagged LRU, as user pages are once
//! faulted in, so the claim rule counts them as movable. At the end it probes how many
//! order-9 blocks can still be allocated without reclaim or compaction, then gives them back.

use crate::gfp::Gfp;
use crate::machine::Machine;
use crate::memmap::PageFlags;
use crate::rng::SimRng;
use crate::units::{NodeId, Order, Pfn, NR_PAGE_ORDERS};
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
    /// Largest order allocated (0..=10).
    pub max_order: u8,
    /// Steps between timeline samples.
    pub sample_every: u64,
}

impl Default for ChurnConfig {
    fn default() -> Self {
        ChurnConfig {
            steps: 1_000_000,
            fill_pct: 90,
            mix: [15, 75, 8, 2],
            max_order: 10,
            sample_every: 10_000,
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
    /// Timeline.
    pub samples: Vec<ChurnSample>,
}

const TYPES: [Gfp; 4] = [
    Gfp::GFP_KERNEL,
    Gfp::GFP_HIGHUSER_MOVABLE,
    Gfp::GFP_KERNEL_RECLAIMABLE,
    Gfp::GFP_ATOMIC,
];
const ORDER_WEIGHTS: [u64; NR_PAGE_ORDERS] = [600, 120, 80, 60, 30, 20, 15, 10, 8, 30, 4];

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
    let mut live: Vec<(Pfn, Order)> = Vec::new();
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
            let order = Order(rng.weighted(weights) as u8);
            let mut gfp = TYPES[kind];
            if order.0 > 0 {
                gfp = gfp | Gfp::COMP;
            }
            rep.attempts_by_order[order.idx()] += 1;
            match m.alloc_pages(gfp, order, NodeId(rng.below(m.nr_nodes() as u64) as u8)) {
                Some(pfn) => {
                    if kind == 1 {
                        m.mem.set_flag(pfn, PageFlags::LRU);
                    }
                    live.push((pfn, order));
                    used += order.nr_pages();
                }
                None => rep.failures_by_order[order.idx()] += 1,
            }
        } else {
            let i = rng.below(live.len() as u64) as usize;
            let (pfn, order) = live.swap_remove(i);
            m.mem.clear_flag(pfn, PageFlags::LRU);
            m.free_pages(pfn, order);
            used -= order.nr_pages();
            rep.frees += 1;
        }
        if (step + 1) % sample_every == 0 {
            rep.samples.push(sample(m, step + 1));
            progress(step + 1);
        }
    }
    rep.used_pages_end = used;
    let mut huge = Vec::new();
    while let Some(p) = m.alloc_pages(Gfp::GFP_TRANSHUGE_LIGHT, Order(9), NodeId(0)) {
        huge.push(p);
    }
    rep.hugepages_obtainable = huge.len() as u64;
    for p in huge {
        m.free_pages(p, Order(9));
    }
    rep
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
