//! `mthp`: seed 002 (Zi Yan, "mm/compaction: enable compacting >0 order folios", Linux
//! 6.9). Memory filled with anonymous mTHP folios of orders 2 to 4, every second folio
//! unmapped, then order-9 requests that must compact. Before 6.9 (`folio_compaction=split`)
//! the migrate scanner skipped large folios and isolated free pages were split to order
//! 0; since, large folios migrate whole into free pages kept at their order.

use super::{pages_reclaimed, pct, tick, Metric, Outcome, Params, ScenarioError, ScenarioInfo};
use crate::event::VmEvent;
use crate::gfp::Gfp;
use crate::machine::Machine;
use crate::rng::SimRng;
use crate::units::Order;

/// The scenario's description.
pub const INFO: ScenarioInfo = ScenarioInfo {
    name: "mthp",
    source: "seed 002 (Zi Yan, mm/compaction: enable compacting >0 order folios, 2024)",
    summary: "memory filled with mTHP folios of orders 2-4, every second one unmapped; then order-9 requests that compact",
    ab_key: "folio_compaction",
    params: &[
        ("fill_pct", "90", "memory filled with mTHP folios, percent of free memory (1..=95)"),
        ("requests", "64", "order-9 requests (1..=100000)"),
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
    let fill = p.num_in("fill_pct", 1, 95)?;
    let requests = p.num_in("requests", 1, 100_000)?;
    let mut out = Outcome::default();
    out.timeline.push(tick(m, "start", 0));
    let target = m.nr_free_pages() * fill / 100;
    let pid = m.new_process();
    let mut folios: Vec<(u64, u64)> = Vec::new();
    let (mut vpn, mut used) = (0u64, 0u64);
    while used < target {
        let o = rng.range(2, 4) as u8;
        let nr = 1u64 << o;
        vpn = vpn.next_multiple_of(nr);
        if m.fault_anon(pid, vpn, Order(o)).is_err() {
            break;
        }
        folios.push((vpn, nr));
        vpn += nr;
        used += nr;
    }
    for (i, (v, nr)) in folios.iter().enumerate() {
        if i % 2 == 1 {
            m.munmap(pid, *v, *nr);
        }
    }
    let t = m.clock.now_ns + 1_000_000_000;
    m.advance_to(t);
    out.timeline.push(tick(m, "fragmented", 0));
    progress(1, 2);
    let before = m.vmstat.clone();
    let reclaimed_before = pages_reclaimed(m);
    let gfp = Gfp::GFP_TRANSHUGE;
    let mut got = 0;
    for r in 0..requests {
        if m.alloc_kernel_gfp(gfp, Order(9), 9).is_some() {
            got += 1;
        }
        let t = m.clock.now_ns + 1_000_000;
        m.advance_to(t);
        if r % 16 == 15 {
            out.timeline.push(tick(m, "requests", got));
        }
    }
    out.timeline.push(tick(m, "requests", got));
    progress(2, 2);
    let v = &m.vmstat;
    out.metrics = vec![
        ("success_pct", Metric::Float(pct(got, requests))),
        ("hugepages_allocated", Metric::Int(got)),
        (
            "folios_split",
            Metric::Int(
                v[VmEvent::ThpMigrationSplit] - before[VmEvent::ThpMigrationSplit]
                    + v[VmEvent::ThpSplitPage]
                    - before[VmEvent::ThpSplitPage],
            ),
        ),
        (
            "pages_migrated",
            Metric::Int(v[VmEvent::PgmigrateSuccess] - before[VmEvent::PgmigrateSuccess]),
        ),
        (
            "pages_reclaimed",
            Metric::Int(pages_reclaimed(m) - reclaimed_before),
        ),
    ];
    Ok(out)
}
