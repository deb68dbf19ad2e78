//! `churn`: the project's own seeded allocate/free churn, the first workload `kcompact run`
//! drove, before the scenarios of the seed experiments existed.
//!
//! Every step either allocates or frees, holding memory use around a target. Allocations
//! go through real owners: movable memory is anonymous memory a process faults in (orders
//! up to the PMD order, page tables included), unmovable, reclaimable and atomic memory is
//! kernel memory allocated with the matching GFP mask. Every `migrate_every` steps a batch
//! of random anonymous folios is isolated and migrated (SYNC_LIGHT), so migration runs
//! under load. At the end it probes how many order-9 blocks can still be allocated without
//! reclaim or compaction (giving them back), runs `compact_memory` and probes again, and
//! checks every owner's data when contents are tracked.
//!
//! Its parameters are read like every scenario's; the command line prints its
//! [`ChurnReport`] (in [`Outcome::churn`]) in the churn's own format: the attempts per
//! order, the probes, every counter and the step samples.

use super::{Metric, Outcome, Params, ScenarioError, ScenarioInfo};
use crate::gfp::Gfp;
use crate::machine::Machine;
use crate::migrate::{AllocTarget, MigrateMode, MigrateReason};
use crate::owners::process::HPAGE_PMD_ORDER;
use crate::owners::table::FolioId;
use crate::rng::SimRng;
use crate::units::{NodeId, Order, NR_PAGE_ORDERS};
use crate::views::extfrag::{unusable_free_index, ContigPageInfo};

/// The scenario's description.
pub const INFO: ScenarioInfo = ScenarioInfo {
    name: "churn",
    source: "kcompact's own",
    summary: "the original allocate/free churn: anonymous and kernel memory of orders 0..=10 held around a fill level, migration batches, then huge pages probed before and after compact_memory",
    ab_key: "compaction",
    params: &[
        ("steps", "1000000", "allocate/free steps"),
        ("fill_pct", "90", "target memory use in percent (1..=95), at most what leaves the kernel's reserves free"),
        ("max_order", "10", "largest order allocated (0..=10)"),
        ("mix", "15,75,8,2", "weights unmovable,movable,reclaimable,atomic (at least one positive)"),
        ("migrate_every", "2000", "steps between migration batches (0 = none)"),
    ],
    machine: &[],
    mem: "4G",
    run,
};

/// Runs the scenario: [`run_churn`] with the parameters' [`ChurnConfig`]; the metrics are
/// the report's figures, the report itself goes in [`Outcome::churn`].
pub fn run(
    m: &mut Machine,
    p: &Params,
    rng: &mut SimRng,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Outcome, ScenarioError> {
    let cfg = ChurnConfig::from_params(p)?;
    let r = run_churn(m, &cfg, rng, |step| progress(step, cfg.steps));
    let mut metrics = vec![
        (
            "success_pct",
            Metric::Float((r.success_pct() * 100.0).round() / 100.0),
        ),
        // As `kcompact run churn` has always reported it.
        ("pages_reclaimed", Metric::Int(0)),
        ("hugepages_obtainable", Metric::Int(r.hugepages_obtainable)),
        (
            "hugepages_after_compaction",
            Metric::Int(r.hugepages_after_compaction),
        ),
        (
            "free_order9_blocks_before_compaction",
            Metric::Int(r.free_order9_blocks_before_compaction),
        ),
        (
            "free_order9_blocks_after_compaction",
            Metric::Int(r.free_order9_blocks_after_compaction),
        ),
        ("frees", Metric::Int(r.frees)),
        ("workload_oom_kills", Metric::Int(r.workload_oom_kills)),
        ("used_pages_end", Metric::Int(r.used_pages_end)),
        (
            "attempts_by_order",
            Metric::List(r.attempts_by_order.to_vec()),
        ),
        (
            "failures_by_order",
            Metric::List(r.failures_by_order.to_vec()),
        ),
    ];
    if m.contents.enabled() {
        metrics.push((
            "integrity_checked_pages",
            Metric::Int(r.integrity_checked_pages),
        ));
        metrics.push(("integrity_errors", Metric::Int(r.integrity_errors)));
    }
    Ok(Outcome {
        metrics,
        timeline: Vec::new(),
        churn: Some(r),
    })
}

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

impl ChurnConfig {
    /// The churn's parameters (`steps`, `fill_pct`, `max_order`, `mix`, `migrate_every`);
    /// the timeline is sampled every 10000 steps.
    pub fn from_params(p: &Params) -> Result<ChurnConfig, ScenarioError> {
        let mix = p.nums("mix")?;
        if mix.iter().all(|w| *w == 0) {
            return Err(ScenarioError::BadValue {
                scenario: INFO.name,
                key: "mix".into(),
                value: p
                    .pairs()
                    .find(|(k, _)| *k == "mix")
                    .map_or("", |(_, v)| v)
                    .into(),
                why: "at least one weight must be positive".into(),
            });
        }
        Ok(ChurnConfig {
            steps: p.num("steps")?,
            fill_pct: p.num_in("fill_pct", 1, 95)?,
            mix: [mix[0], mix[1], mix[2], mix[3]],
            max_order: p.num_in("max_order", 0, 10)? as u8,
            migrate_every: p.num("migrate_every")?,
            ..ChurnConfig::default()
        })
    }
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
    /// The configuration it ran with.
    pub config: ChurnConfig,
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
    /// Times the OOM killer took the churn's process (its anonymous memory freed; the
    /// churn went on with a new one).
    pub workload_oom_kills: u64,
    /// Timeline.
    pub samples: Vec<ChurnSample>,
}

impl ChurnReport {
    /// Successful allocation attempts in percent of all (100 without attempts).
    pub fn success_pct(&self) -> f64 {
        let attempts: u64 = self.attempts_by_order.iter().sum();
        let failures: u64 = self.failures_by_order.iter().sum();
        if attempts == 0 {
            return 100.0;
        }
        100.0 * (attempts - failures) as f64 / attempts as f64
    }
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
    let mut pid = m.new_process();
    let mut next_vpn = 0u64;
    let mut live: Vec<Live> = Vec::new();
    let mut used = 0u64;
    let target = fill_target(m, cfg.fill_pct);
    let mut rep = ChurnReport {
        config: cfg.clone(),
        ..ChurnReport::default()
    };
    let weights = &ORDER_WEIGHTS[..=cfg.max_order as usize];
    let sample_every = cfg.sample_every.max(1);
    for step in 0..cfg.steps {
        if !m.owners.processes[pid as usize].alive {
            // The OOM killer took the churn's process (a fill level the machine cannot
            // hold): its anonymous memory is gone; the churn goes on with a new process.
            live.retain(|l| match l {
                Live::Anon(_, order) => {
                    used -= order.nr_pages();
                    false
                }
                Live::Kernel(..) => true,
            });
            rep.workload_oom_kills += 1;
            pid = m.new_process();
            next_vpn = 0;
        }
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
                    // Each allocation is its own mapping: its page table goes with the
                    // last one in its window.
                    m.munmap(pid, vpn, 1);
                    m.free_pgtables(pid, vpn, 1);
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
    let c = m.check_contents();
    rep.integrity_checked_pages = c.checked_pages;
    rep.integrity_errors = c.errors;
    rep
}

/// The pages the churn holds at most: `fill_pct` of managed memory, but no more than
/// leaves free, besides the page tables, what the kernel keeps for itself — the high
/// watermark kswapd restores, the per-CPU lists (auto-tuned up to the low watermark over
/// all CPUs) and the highatomic reserve (1 % of a zone) — so that a workload without
/// swap is not OOM-killed by its own fill level (90 % of 1 GiB is more than that).
fn fill_target(m: &Machine, fill_pct: u64) -> u64 {
    let managed = m.managed_pages();
    let kept: u64 = m
        .zones
        .iter()
        .map(|z| z.high_wmark_pages() + z.low_wmark_pages() + z.managed_pages / 100)
        .sum();
    let want = managed * fill_pct / 100;
    // One page-table page per 512 pages of anonymous memory.
    let room = managed.saturating_sub(kept) * 512 / 513;
    want.min(room)
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
        .filter_map(|_| table.iter().nth(rng.below(n) as usize).map(|(_, id)| id))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Layout;

    fn params(given: &[(&str, &str)]) -> Result<Params, ScenarioError> {
        let given: Vec<(String, String)> = given
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Params::new("churn", &given)
    }

    #[test]
    fn a_list_parameter_takes_as_many_whole_numbers_as_its_default() {
        let p = params(&[("mix", "0,1,0,0")]).unwrap();
        assert_eq!(p.nums("mix").unwrap(), vec![0, 1, 0, 0]);
        for bad in ["1,2", "1,2,3,4,5", "1,2,x,4", "15, 75,8,2"] {
            assert!(
                matches!(params(&[("mix", bad)]), Err(ScenarioError::BadValue { .. })),
                "mix={bad}"
            );
        }
        // Whole-number parameters stay whole numbers.
        assert!(params(&[("steps", "1,2")]).is_err());
    }

    #[test]
    fn the_defaults_are_the_churn_config_defaults_and_ranges_are_checked() {
        let cfg = ChurnConfig::from_params(&params(&[]).unwrap()).unwrap();
        assert_eq!(cfg, ChurnConfig::default());
        for (k, v, why) in [
            ("fill_pct", "0", "out of range 1..=95"),
            ("fill_pct", "96", "out of range 1..=95"),
            ("max_order", "11", "out of range 0..=10"),
            ("mix", "0,0,0,0", "at least one weight must be positive"),
        ] {
            let e = ChurnConfig::from_params(&params(&[(k, v)]).unwrap()).unwrap_err();
            assert_eq!(e.to_string(), format!("churn: {k}={v}: {why}"));
        }
    }

    #[test]
    fn the_scenario_reports_the_churn_and_its_figures_as_metrics() {
        let layout = Layout::x86_64(256 << 20, 1, 0).unwrap();
        let mut m = Machine::boot(&layout, crate::VmConfig::default()).unwrap();
        let p = params(&[("steps", "20000")]).unwrap();
        let mut seen = 0;
        let out = super::super::run(&mut m, &p, &mut SimRng::new(1), &mut |done, total| {
            assert_eq!(total, 20_000);
            seen = done;
        })
        .unwrap();
        assert_eq!(seen, 20_000, "progress reaches the last sample");
        let r = out.churn.as_ref().expect("the churn's report");
        assert_eq!(r.config.steps, 20_000);
        assert_eq!(r.samples.len(), 2, "a sample every 10000 steps");
        let int = |n: &str| match out.get(n) {
            Some(Metric::Int(v)) => *v,
            other => panic!("{n}: {other:?}"),
        };
        assert_eq!(int("frees"), r.frees);
        assert_eq!(int("hugepages_obtainable"), r.hugepages_obtainable);
        assert!(r.attempts_by_order.iter().sum::<u64>() + r.frees == 20_000);
        let Some(Metric::Float(pct)) = out.get("success_pct") else {
            panic!("success_pct")
        };
        assert_eq!(*pct, (r.success_pct() * 100.0).round() / 100.0);
        assert!(
            out.get("integrity_errors").is_none(),
            "contents not tracked"
        );
    }
}
