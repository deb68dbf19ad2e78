//! `compaction-test`: the kernel selftest `tools/testing/selftests/mm/compaction_test.c`
//! (the test of "Allow compaction of unevictable pages"). A process maps and mlocks 100 MiB
//! chunks of anonymous memory up to 80 % of MemFree, touching every page, unmaps every
//! second chunk, then asks for 100000 huge pages; it passes if the pool reaches at least
//! a third of that 80 % (`compaction_index` ≤ 3).

use super::{pages_reclaimed, pct, tick, Metric, Outcome, Params, ScenarioError, ScenarioInfo};
use crate::machine::Machine;
use crate::rng::SimRng;
use crate::units::Order;

/// The scenario's description.
pub const INFO: ScenarioInfo = ScenarioInfo {
    name: "compaction-test",
    source: "kernel selftest tools/testing/selftests/mm/compaction_test.c",
    summary: "mlocked 100 MiB chunks up to 80 % of free memory, every second one unmapped, then nr_hugepages=100000",
    ab_key: "compact_unevictable_allowed",
    params: &[
        ("chunk_mib", "100", "size of each mapped chunk, MiB (the selftest's MAP_SIZE_MB; 1..=100000)"),
        ("request", "100000", "huge pages asked for (the selftest writes 100000)"),
    ],
    machine: &[],
    mem: "1G",
    run,
};

/// Runs the scenario.
pub fn run(
    m: &mut Machine,
    p: &Params,
    _rng: &mut SimRng,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Outcome, ScenarioError> {
    let chunk = p.num_in("chunk_mib", 1, 100_000)? * 256;
    let request = p.num_in("request", 1, 100_000_000)?;
    let mut out = Outcome::default();
    out.timeline.push(tick(m, "start", 0));
    let reclaimed_before = pages_reclaimed(m);
    let mem_free = m.nr_free_pages();
    let pid = m.new_process();
    let mut fragmentable = mem_free * 8 / 10;
    let mut chunks = Vec::new();
    let mut vpn = 0u64;
    // MAP_LOCKED chunks, every page touched (faulted one at a time, as the selftest's
    // write loop does), mlocked.
    'map: while fragmentable > 0 {
        for i in 0..chunk {
            if m.fault_anon(pid, vpn + i, Order(0)).is_err() {
                m.munmap(pid, vpn, i);
                break 'map;
            }
        }
        m.mlock(pid, vpn, chunk, true);
        chunks.push(vpn);
        vpn += chunk;
        fragmentable = fragmentable.saturating_sub(chunk);
    }
    // The selftest's list is newest first; it unmaps one entry and skips the next.
    for (i, base) in chunks.iter().rev().enumerate() {
        if i % 2 == 0 {
            m.munmap(pid, *base, chunk);
        }
    }
    progress(1, 2);
    out.timeline.push(tick(m, "mapped", 0));
    m.set_nr_hugepages(0);
    let got = m.set_nr_hugepages(request);
    out.timeline.push(tick(m, "hugepages", got));
    // compaction_index = mem_free * 0.8 / (nr_hugepages * hugepage size); fail above 3.
    let target = mem_free * 8 / 10;
    let index = if got == 0 {
        u64::MAX
    } else {
        target / (got * 512)
    };
    let pass = index <= 3;
    // The chunks and the pool checked before they are given back.
    let integrity = super::integrity_metrics(m);
    m.set_nr_hugepages(0);
    m.exit_process(pid);
    progress(2, 2);
    out.metrics = vec![
        ("hugepages_allocated", Metric::Int(got)),
        ("selftest_pass", Metric::Int(pass as u64)),
        ("compaction_index", Metric::Int(index.min(1_000_000))),
        (
            "pages_reclaimed",
            Metric::Int(pages_reclaimed(m) - reclaimed_before),
        ),
        (
            "success_pct",
            Metric::Float(pct(got, (target / 512).max(1))),
        ),
    ];
    out.metrics.extend(integrity);
    Ok(out)
}
