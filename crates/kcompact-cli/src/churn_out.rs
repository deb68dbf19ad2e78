//! The churn's own output format, kept from before the seeds' scenarios existed: the
//! attempts and failures per order, the probes before and after `compact_memory`, every
//! counter, buddyinfo, pagetypeinfo and the unusable index on stdout; with `--out`, its
//! result.json, a timeline per step and its report.

use crate::out::write_result;
use crate::outdir::OutDir;
use crate::report::{
    kernel_views, run_sections, vmstat_table, write_report, Report, Section, Series,
};
use crate::settings::Settings;
use kcompact::scenario::churn::{ChurnReport, ChurnSample};
use kcompact::scenario::Outcome;
use kcompact::views::{buddyinfo, pagetypeinfo, unusable_index};
use kcompact::Machine;
use serde_json::json;
use std::fmt::Write as _;

/// What `kcompact run churn` prints.
pub fn summary(m: &Machine, s: &Settings, seed: u64, r: &ChurnReport) -> String {
    let c = &r.config;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "kcompact {} — scenario churn, seed {seed}",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        o,
        "machine: {} MiB, {} node(s), {} managed pages, min_free_kbytes {}, pageblock order {}",
        s.machine.mem_bytes >> 20,
        m.nr_nodes(),
        m.managed_pages(),
        m.min_free_kbytes,
        m.pageblock_order().0
    );
    let _ = writeln!(
        o,
        "churn: {} steps, fill {}%, mix {:?}, max order {}",
        c.steps, c.fill_pct, c.mix, c.max_order
    );
    o += &order_table(r);
    let _ = writeln!(o, "\nsuccess_pct {:.2}", r.success_pct());
    let _ = writeln!(o, "frees {}", r.frees);
    if r.workload_oom_kills > 0 {
        let _ = writeln!(
            o,
            "workload_oom_kills {} (the churn's process OOM-killed; it went on with a new one)",
            r.workload_oom_kills
        );
    }
    if m.contents.enabled() {
        let _ = writeln!(o, "integrity_checked_pages {}", r.integrity_checked_pages);
        let _ = writeln!(o, "integrity_errors {}", r.integrity_errors);
    }
    let _ = writeln!(o, "used_pages_end {}", r.used_pages_end);
    let _ = writeln!(
        o,
        "hugepages_obtainable {} (order-9 blocks free for GFP_TRANSHUGE_LIGHT at the end)",
        r.hugepages_obtainable
    );
    let _ = writeln!(
        o,
        "compact_memory: free order-9 blocks {} -> {}, hugepages_after_compaction {}",
        r.free_order9_blocks_before_compaction,
        r.free_order9_blocks_after_compaction,
        r.hugepages_after_compaction
    );
    for (k, v) in m.vmstat.pairs() {
        let _ = writeln!(o, "{k} {v}");
    }
    let _ = writeln!(o, "\n/proc/buddyinfo:\n{}", buddyinfo(m));
    let _ = writeln!(o, "/proc/pagetypeinfo:\n{}", pagetypeinfo(m));
    let _ = write!(o, "extfrag/unusable_index:\n{}", unusable_index(m));
    o
}

/// Attempts, failures and success per order, for the orders tried.
fn order_table(r: &ChurnReport) -> String {
    let mut o = format!(
        "\n{:<6} {:>10} {:>10} {:>9}\n",
        "order", "attempts", "failures", "success%"
    );
    for (ord, (a, f)) in r
        .attempts_by_order
        .iter()
        .zip(&r.failures_by_order)
        .enumerate()
    {
        if *a > 0 {
            let _ = writeln!(
                o,
                "{ord:<6} {a:>10} {f:>10} {:>9.2}",
                100.0 * (a - f) as f64 / *a as f64
            );
        }
    }
    o
}

/// result.json's `config` of a churn run.
pub fn config_json(m: &Machine, s: &Settings, r: &ChurnReport) -> serde_json::Value {
    let c = &r.config;
    json!({
        "mem_bytes": s.machine.mem_bytes, "nodes": s.machine.nodes, "movable_bytes": s.machine.movable_bytes,
        "min_free_kbytes": m.min_free_kbytes, "watermark_scale_factor": s.machine.vm.watermark_scale_factor,
        "watermark_boost_factor": s.machine.vm.watermark_boost_factor, "thp": s.machine.vm.thp_enabled,
        "cma_pages": s.machine.vm.cma_pages, "defrag_mode": s.machine.vm.defrag_mode,
        "steps": c.steps, "fill_pct": c.fill_pct, "mix": c.mix, "max_order": c.max_order,
        "integrity": s.machine.integrity.name(),
        "migrate_every": c.migrate_every,
    })
}

/// The files of `kcompact run churn --out DIR`: result.json (`metrics` from the outcome),
/// the kernel-format files, timeline.csv (a row per sample) and the report.
pub fn write_out(
    dir: &mut OutDir,
    m: &Machine,
    s: &Settings,
    seed: u64,
    out: &Outcome,
    r: &ChurnReport,
) -> anyhow::Result<()> {
    let result = write_result(dir, m, "churn", seed, config_json(m, s, r), out)?;
    let mut csv = String::from("step,free_pages,free_order9_blocks,unusable_order9\n");
    for smp in &r.samples {
        let _ = writeln!(
            csv,
            "{},{},{},{}",
            smp.step, smp.free_pages, smp.free_order9_blocks, smp.unusable_order9
        );
    }
    crate::out::write(dir, "timeline.csv", csv);
    write_report(dir, &report(m, seed, &result, r))
}

/// The report of a churn run.
fn report(m: &Machine, seed: u64, result: &serde_json::Value, r: &ChurnReport) -> Report {
    let line = |name: &str, f: &dyn Fn(&ChurnSample) -> u64| Series {
        name: name.to_string(),
        points: r
            .samples
            .iter()
            .map(|x| (x.step as f64, f(x) as f64))
            .collect(),
    };
    let mut sections = run_sections(m, seed, result);
    sections.push(Section::Chart {
        title: "Free pages and free order-9 blocks over the run".into(),
        x_label: "step".into(),
        y_label: "count".into(),
        series: vec![
            line("free pages", &|x| x.free_pages),
            line("free order >= 9 blocks", &|x| x.free_order9_blocks),
        ],
    });
    sections.extend(kernel_views(m));
    sections.push(vmstat_table("/proc/vmstat (non-zero counters)", m));
    Report {
        title: "kcompact run churn".to_string(),
        subtitle: format!("the allocate/free churn workload — seed {seed}"),
        sections,
    }
}
