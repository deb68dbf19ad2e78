//! `kcompact run`: a workload on a model machine, its figures, the kernel's views, files.

use crate::cli::RunArgs;
use crate::out::{vmstat_json, write_kernel_files, zones_json};
use crate::settings::Settings;
use anyhow::Context;
use kcompact::churn::{run_churn, ChurnReport};
use kcompact::rng::SimRng;
use kcompact::views::{buddyinfo, pagetypeinfo, unusable_index};
use kcompact::Machine;
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

/// The workloads `run` knows.
const SCENARIOS: &[&str] = &["churn"];

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let scenario = args
        .scenario
        .clone()
        .unwrap_or_else(|| "highalloc".to_string());
    if !SCENARIOS.contains(&scenario.as_str()) {
        return crate::scenario_cmd::run(&args, &scenario);
    }
    let settings = Settings::parse(&args.machine)?;
    let mut m = settings.boot()?;
    let mut rng = SimRng::new(args.seed);
    let bar = crate::ui::progress_bar(settings.churn.steps, "{bar:40} {pos}/{len} steps {elapsed}");
    let report = run_churn(&mut m, &settings.churn, &mut rng, |step| {
        if let Some(b) = &bar {
            b.set_position(step);
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    kcompact::verify::verify(&m)
        .map_err(|e| anyhow::anyhow!("the model's state is inconsistent after the run:\n{e}"))?;
    print!("{}", summary(&m, &settings, args.seed, &scenario, &report));
    if let Some(dir) = &args.out {
        write_out(dir, &m, &settings, args.seed, &scenario, &report)?;
        println!("\nwrote {}", dir.display());
    }
    if report.integrity_errors > 0 {
        anyhow::bail!(
            "{} folios lost or corrupted their data",
            report.integrity_errors
        );
    }
    Ok(())
}

fn success_pct(r: &ChurnReport) -> f64 {
    let attempts: u64 = r.attempts_by_order.iter().sum();
    let failures: u64 = r.failures_by_order.iter().sum();
    if attempts == 0 {
        return 100.0;
    }
    100.0 * (attempts - failures) as f64 / attempts as f64
}

fn summary(m: &Machine, s: &Settings, seed: u64, scenario: &str, r: &ChurnReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "kcompact {} — scenario {scenario}, seed {seed}",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        o,
        "machine: {} MiB, {} node(s), {} managed pages, min_free_kbytes {}, pageblock order {}",
        s.mem_bytes >> 20,
        m.nr_nodes(),
        m.managed_pages(),
        m.min_free_kbytes,
        m.pageblock_order().0
    );
    let _ = writeln!(
        o,
        "churn: {} steps, fill {}%, mix {:?}, max order {}",
        s.churn.steps, s.churn.fill_pct, s.churn.mix, s.churn.max_order
    );
    let _ = writeln!(
        o,
        "\n{:<6} {:>10} {:>10} {:>9}",
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
    let _ = writeln!(o, "\nsuccess_pct {:.2}", success_pct(r));
    let _ = writeln!(o, "frees {}", r.frees);
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

fn write_out(
    dir: &Path,
    m: &Machine,
    s: &Settings,
    seed: u64,
    scenario: &str,
    r: &ChurnReport,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let zones = zones_json(m);
    let vmstat = vmstat_json(m);
    let mut result = json!({
        "kcompact_version": env!("CARGO_PKG_VERSION"),
        "scenario": scenario,
        "seed": seed,
        "config": {
            "mem_bytes": s.mem_bytes, "nodes": s.nodes, "movable_bytes": s.movable_bytes,
            "min_free_kbytes": m.min_free_kbytes, "watermark_scale_factor": s.vm.watermark_scale_factor,
            "watermark_boost_factor": s.vm.watermark_boost_factor, "thp": s.vm.thp_enabled,
            "cma_pages": s.vm.cma_pages, "defrag_mode": s.vm.defrag_mode,
            "steps": s.churn.steps, "fill_pct": s.churn.fill_pct, "mix": s.churn.mix, "max_order": s.churn.max_order,
        },
        "metrics": {
            "success_pct": (success_pct(r) * 100.0).round() / 100.0,
            "pages_reclaimed": 0,
            "hugepages_obtainable": r.hugepages_obtainable,
            "hugepages_after_compaction": r.hugepages_after_compaction,
            "free_order9_blocks_before_compaction": r.free_order9_blocks_before_compaction,
            "free_order9_blocks_after_compaction": r.free_order9_blocks_after_compaction,
            "frees": r.frees,
            "used_pages_end": r.used_pages_end,
            "attempts_by_order": r.attempts_by_order,
            "failures_by_order": r.failures_by_order,
        },
        "vmstat": vmstat,
        "zones": zones,
    });
    if m.contents.enabled() {
        result["metrics"]["integrity_checked_pages"] = json!(r.integrity_checked_pages);
        result["metrics"]["integrity_errors"] = json!(r.integrity_errors);
    }
    result["config"]["integrity"] = json!(format!("{:?}", s.integrity).to_lowercase());
    result["config"]["migrate_every"] = json!(s.churn.migrate_every);
    crate::out::write(
        dir,
        "result.json",
        serde_json::to_string_pretty(&result)? + "\n",
    )?;
    write_kernel_files(dir, m)?;
    let mut csv = String::from("step,free_pages,free_order9_blocks,unusable_order9\n");
    for smp in &r.samples {
        let _ = writeln!(
            csv,
            "{},{},{},{}",
            smp.step, smp.free_pages, smp.free_order9_blocks, smp.unusable_order9
        );
    }
    crate::out::write(dir, "timeline.csv", csv)?;
    use crate::report::{
        kernel_views, kv_table, map_section, vmstat_table, Report, Section, Series,
    };
    let flat = crate::report::flat_json;
    let line = |name: &str, f: &dyn Fn(&kcompact::churn::ChurnSample) -> u64| Series {
        name: name.to_string(),
        points: r
            .samples
            .iter()
            .map(|x| (x.step as f64, f(x) as f64))
            .collect(),
    };
    let mut sections = vec![
        kv_table("Metrics", flat(&result["metrics"])),
        kv_table("Configuration and seed", {
            let mut c = vec![("seed".to_string(), seed.to_string())];
            c.extend(flat(&result["config"]));
            c
        }),
        map_section("Physical memory at the end of the run", m),
        Section::Chart {
            title: "Free pages and free order-9 blocks over the run".into(),
            x_label: "step".into(),
            y_label: "count".into(),
            series: vec![
                line("free pages", &|x| x.free_pages),
                line("free order >= 9 blocks", &|x| x.free_order9_blocks),
            ],
        },
    ];
    sections.extend(kernel_views(m));
    sections.push(vmstat_table("/proc/vmstat (non-zero counters)", m));
    crate::report::write_report(
        dir,
        &Report {
            title: format!("kcompact run {scenario}"),
            subtitle: format!("the allocate/free churn workload — seed {seed}"),
            sections,
        },
    )
}
