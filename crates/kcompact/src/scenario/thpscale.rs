//! `thpscale` (mmtests thpscale): a process maps a large anonymous region, unmaps the first
//! half of every 2 MiB of it, the holes fill with page cache, and then a second mapping is
//! faulted in with transparent huge pages (`MADV_HUGEPAGE` by default): every fault must
//! compact (or fall back), and its latency is what thpscale reports.

use super::{pages_reclaimed, pct, tick, Metric, Outcome, Params, ScenarioError, ScenarioInfo};
use crate::machine::Machine;
use crate::owners::process::HPAGE_PMD_ORDER;
use crate::rng::SimRng;
use crate::units::Order;

/// The scenario's description.
pub const INFO: ScenarioInfo = ScenarioInfo {
    name: "thpscale",
    source: "mmtests thpscale",
    summary: "map a region, unmap the first half of every 2 MiB, fill the holes with page cache, then fault a THP mapping",
    ab_key: "compaction",
    params: &[
        // 85: the first region's half plus the THP mapping, the page tables, the min
        // watermark (4.4 % of a 1 GiB machine) and the per-CPU lists (invisible to the
        // watermarks; direct reclaim drains them only after it made progress) fit without
        // the OOM killer; at 90-95 % the fill or the THP phase kills a process.
        ("region_pct", "85", "the first region, percent of free memory (1..=95)"),
        ("fill_pct", "50", "how much of the holes page cache fills, percent (0..=100)"),
        ("madvise", "1", "1: the THP mapping is MADV_HUGEPAGE (0: not)"),
        ("thp_pct", "50", "the THP mapping, percent of the first region (1..=100)"),
    ],
    machine: &[],
    mem: "1G",
    run,
};

/// Runs the scenario.
pub fn run(
    m: &mut Machine,
    p: &Params,
    rng: &mut SimRng,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Outcome, ScenarioError> {
    let region_pct = p.num_in("region_pct", 1, 95)?;
    let fill_pct = p.num_in("fill_pct", 0, 100)?;
    let madvised = p.num_in("madvise", 0, 1)? == 1;
    let thp_pct = p.num_in("thp_pct", 1, 100)?;
    let mut out = Outcome::default();
    out.timeline.push(tick(m, "start", 0));
    let reclaimed_before = pages_reclaimed(m);
    let hp = 1u64 << HPAGE_PMD_ORDER;
    let region = (m.nr_free_pages() * region_pct / 100) / hp * hp;
    let a = m.new_process();
    let mut mapped = 0;
    for v in 0..region {
        if m.fault_anon(a, v, Order(0)).is_err() {
            break;
        }
        mapped += 1;
    }
    // Unmap the first half of every 2 MiB.
    let mut holes = 0;
    for base in (0..mapped).step_by(hp as usize) {
        m.munmap(a, base, hp / 2);
        holes += (hp / 2).min(mapped - base);
    }
    // The holes fill with page cache; then a random part of it is dropped again
    // (truncated files, evicted pages), leaving free pages scattered over the holes.
    let f = m.new_file(false, true, false);
    let mut cached = 0;
    while cached < holes && m.file_add(f, cached, Order(0), false).is_ok() {
        cached += 1;
    }
    let mut idx: Vec<u64> = (0..cached).collect();
    rng.shuffle(&mut idx);
    for i in idx
        .into_iter()
        .take((cached * (100 - fill_pct) / 100) as usize)
    {
        m.file_remove(f, i);
    }
    let t = m.clock.now_ns + 1_000_000_000;
    m.advance_to(t);
    out.timeline.push(tick(m, "fragmented", 0));
    progress(1, 2);
    // The THP mapping, faulted 2 MiB at a time.
    let b = m.new_process();
    let faults = (region * thp_pct / 100) / hp;
    let (mut hits, mut lat_total) = (0u64, 0u64);
    for i in 0..faults {
        let t0 = m.clock.now_ns;
        // The fault's latency: every allocation it made (the THP attempts, the fallback
        // page, its page table).
        let spent = |m: &Machine| m.clock.latency.total_ns.iter().sum::<u64>();
        let before = spent(m);
        let r = m.thp_fault(b, i * hp, madvised);
        let lat = spent(m) - before;
        lat_total += lat;
        if let Ok(id) = r {
            if m.owners.folio(id).order.0 == HPAGE_PMD_ORDER {
                hits += 1;
            } else {
                // A fallback fault maps one page; the rest of the 2 MiB faults in later.
                for v in 1..hp {
                    let _ = m.fault_anon(b, i * hp + v, Order(0));
                }
            }
        }
        let t = t0 + lat + 10_000;
        m.advance_to(t);
        if i % 32 == 31 {
            out.timeline.push(tick(m, "thp", hits));
        }
    }
    out.timeline.push(tick(m, "thp", hits));
    progress(2, 2);
    let hit_pct = pct(hits, faults);
    let mean_us = if faults > 0 {
        lat_total as f64 / faults as f64 / 1000.0
    } else {
        0.0
    };
    out.metrics = vec![
        ("thp_fault_hit_pct", Metric::Float(hit_pct)),
        (
            "fault_latency_us_mean",
            Metric::Float((mean_us * 100.0).round() / 100.0),
        ),
        ("success_pct", Metric::Float(hit_pct)),
        ("thp_faults", Metric::Int(faults)),
        ("hugepages_allocated", Metric::Int(hits)),
        (
            "pages_reclaimed",
            Metric::Int(pages_reclaimed(m) - reclaimed_before),
        ),
    ];
    Ok(out)
}
