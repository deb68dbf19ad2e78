//! `file-holes`: seed 003's first test. Memory filled with clean page cache of 512 KiB
//! files written by many writers at once (page-interleaved, mixed with filesystem
//! metadata in slab), every second file deleted, then the huge page pool raised in steps
//! of 5 % of memory, each step an `echo N > nr_hugepages`.

use super::{pages_reclaimed, pct, tick, Metric, Outcome, Params, ScenarioError, ScenarioInfo};
use crate::machine::Machine;
use crate::rng::SimRng;
use crate::workload::{fragment_with_files_rng, FileHoles};

/// The scenario's description.
pub const INFO: ScenarioInfo = ScenarioInfo {
    name: "file-holes",
    source: "seed 003 (Mel Gorman, memory compaction v8, 2010): first test",
    summary: "512 KiB files written in parallel fill memory, every second one deleted; then nr_hugepages raised 5 % of memory at a time",
    ab_key: "compaction",
    params: &[
        ("fill_pct", "100", "how much of the free memory above the high watermark the files fill (1..=100)"),
        ("open_files", "64", "files written at once, a page at a time round-robin (1..=4096)"),
        ("slab_every", "64", "a filesystem-metadata slab object every this many file pages (0: none)"),
        ("step_pct", "5", "each step asks for this much more of memory as huge pages (1..=100)"),
        ("steps", "20", "steps (1..=100)"),
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
    let fill = p.num_in("fill_pct", 1, 100)?;
    let open = p.num_in("open_files", 1, 4096)?;
    let slab_every = p.num("slab_every")?;
    let step_pct = p.num_in("step_pct", 1, 100)?;
    let steps = p.num_in("steps", 1, 100)?;
    let mut out = Outcome::default();
    out.timeline.push(tick(m, "start", 0));
    let high: u64 = m.zones.iter().map(|z| z.high_wmark_pages()).sum();
    let room = m.nr_free_pages().saturating_sub(high + 64);
    fragment_with_files_rng(
        m,
        &FileHoles {
            pages: room * fill / 100,
            open_files: open,
            file_pages: 128,
            slab_every,
            dirty_pct: 0,
        },
        Some(rng),
    );
    let t = m.clock.now_ns + 1_000_000_000;
    m.advance_to(t);
    out.timeline.push(tick(m, "filled", 0));
    let reclaimed_before = pages_reclaimed(m);
    let per_step = (m.managed_pages() * step_pct / 100 / 512).max(1);
    let mut by_step = Vec::new();
    let mut requested = 0;
    let mut got = 0;
    for s in 1..=steps {
        requested = per_step * s;
        got = m.set_nr_hugepages(requested);
        by_step.push(got);
        let t = m.clock.now_ns + 1_000_000_000;
        m.advance_to(t);
        out.timeline.push(tick(m, "hugepages", got));
        progress(s, steps);
    }
    out.metrics = vec![
        ("hugepages_requested", Metric::Int(requested)),
        ("hugepages_allocated", Metric::Int(got)),
        ("hugepages_by_step", Metric::List(by_step)),
        (
            "pages_reclaimed",
            Metric::Int(pages_reclaimed(m) - reclaimed_before),
        ),
        ("success_pct", Metric::Float(pct(got, requested))),
    ];
    Ok(out)
}
