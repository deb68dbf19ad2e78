//! `kcompact run SCENARIO`, `kcompact scenarios` and `kcompact ab`: the seeds'
//! experiments on the model, their metrics and the result files.

use crate::cli::{AbArgs, RunArgs};
use crate::settings::Settings;
use crate::ui::usage;
use anyhow::Context;
use kcompact::rng::SimRng;
use kcompact::scenario::{self, Metric, Outcome, Params, ScenarioError};
use kcompact::views::buddyinfo;
use kcompact::Machine;
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

/// The model's memory when `--mem` is not given: small enough that the default
/// `kcompact run` finishes in about a second.
const SCENARIO_MEM: &str = "1G";

/// `kcompact scenarios`.
pub fn scenarios() -> anyhow::Result<()> {
    println!("churn            the original allocate/free churn workload (kcompact's own)");
    for s in scenario::SCENARIOS {
        println!("{:<16} {} — {}", s.name, s.source, s.summary);
    }
    Ok(())
}

fn scenario_error(e: ScenarioError) -> anyhow::Error {
    crate::ui::Usage(e.to_string()).into()
}

fn metric_json(m: &Metric) -> serde_json::Value {
    match m {
        Metric::Int(v) => json!(v),
        Metric::Float(v) => json!(v),
        Metric::List(v) => json!(v),
    }
}

fn metric_text(m: &Metric) -> String {
    match m {
        Metric::Int(v) => v.to_string(),
        Metric::Float(v) => format!("{v:.2}"),
        Metric::List(v) => v
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Boots the machine of `settings` and runs `params`' scenario with `seed`.
fn run_one(
    settings: &Settings,
    params: &Params,
    seed: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> anyhow::Result<(Machine, Outcome)> {
    let mut m = settings.boot()?;
    let mut rng = SimRng::new(seed);
    let out = scenario::run(&mut m, params, &mut rng, progress).map_err(scenario_error)?;
    kcompact::verify::verify(&m)
        .map_err(|e| anyhow::anyhow!("the model's state is inconsistent after the run:\n{e}"))?;
    Ok((m, out))
}

/// `kcompact run SCENARIO` for the scenarios of [`kcompact::scenario`].
pub fn run(args: &RunArgs, name: &str) -> anyhow::Result<()> {
    let info =
        scenario::find(name).ok_or_else(|| scenario_error(ScenarioError::Unknown(name.into())))?;
    let keys: Vec<&str> = info.params.iter().map(|(k, _, _)| *k).collect();
    let settings = Settings::parse_for(&args.machine, &keys, info.machine, SCENARIO_MEM)?;
    let params = Params::new(name, &settings.scenario_params).map_err(scenario_error)?;
    let bar = crate::ui::progress_bar(1, "{bar:40} {percent}% {elapsed} {msg}");
    if let Some(b) = &bar {
        b.set_message(name.to_string());
    }
    let (m, out) = run_one(&settings, &params, args.seed, &mut |done, total| {
        if let Some(b) = &bar {
            b.set_length(total.max(1));
            b.set_position(done);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    print!("{}", summary(&m, &settings, &params, args.seed, &out));
    if let Some(dir) = &args.out {
        write_out(dir, &m, &settings, &params, args.seed, &out)?;
        println!("\nwrote {}", dir.display());
    }
    Ok(())
}

fn summary(m: &Machine, s: &Settings, p: &Params, seed: u64, out: &Outcome) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "kcompact {} — scenario {} ({}), seed {seed}",
        env!("CARGO_PKG_VERSION"),
        p.info().name,
        p.info().source
    );
    let _ = writeln!(
        o,
        "machine: {} MiB, {} node(s), {} managed pages, compaction {}, swap {} pages; simulated time {:.3} s",
        s.mem_bytes >> 20,
        m.nr_nodes(),
        m.managed_pages(),
        if s.vm.compaction { "on" } else { "off" },
        s.vm.swap_pages,
        m.clock.now_ns as f64 / 1e9
    );
    let params: Vec<String> = p.pairs().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(o, "parameters: {}\n", params.join(" "));
    for (k, v) in &out.metrics {
        let _ = writeln!(o, "{k} {}", metric_text(v));
    }
    let _ = writeln!(o);
    for (k, v) in m.vmstat.pairs() {
        if k.starts_with("compact_")
            || k.starts_with("pgmigrate_")
            || k.starts_with("pgsteal_")
            || k.starts_with("pgscan_")
            || k == "allocstall"
            || k.starts_with("htlb_")
            || k.starts_with("thp_")
            || k == "oom_kill"
        {
            let _ = writeln!(o, "{k} {v}");
        }
    }
    let _ = write!(o, "\n/proc/buddyinfo:\n{}", buddyinfo(m));
    o
}

/// The result files of SPEC.md's contract.
fn write_out(
    dir: &Path,
    m: &Machine,
    s: &Settings,
    p: &Params,
    seed: u64,
    out: &Outcome,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let zones = crate::out::zones_json(m);
    let vmstat = crate::out::vmstat_json(m);
    let metrics: serde_json::Map<String, serde_json::Value> = out
        .metrics
        .iter()
        .map(|(k, v)| (k.to_string(), metric_json(v)))
        .collect();
    let mut config = json!({
        "mem_bytes": s.mem_bytes, "nodes": s.nodes, "movable_bytes": s.movable_bytes,
        "min_free_kbytes": m.min_free_kbytes, "watermark_scale_factor": s.vm.watermark_scale_factor,
        "watermark_boost_factor": s.vm.watermark_boost_factor, "thp": s.vm.thp_enabled,
        "thp_defrag": s.vm.thp_defrag.name(), "compaction": s.vm.compaction,
        "swap_pages": s.vm.swap_pages, "zram": s.vm.zram, "swappiness": s.vm.swappiness,
        "cma_pages": s.vm.cma_pages,
        "defrag_mode": s.vm.defrag_mode, "compaction_proactiveness": s.vm.compaction_proactiveness,
        "non_lru_movable": s.vm.non_lru_movable,
        "compact_unevictable_allowed": s.vm.compact_unevictable_allowed,
    });
    for (k, v) in p.pairs() {
        config[k] = json!(v);
    }
    let result = json!({
        "kcompact_version": env!("CARGO_PKG_VERSION"),
        "scenario": p.info().name,
        "seed": seed,
        "config": config,
        "metrics": metrics,
        "vmstat": vmstat,
        "zones": zones,
    });
    crate::out::write(
        dir,
        "result.json",
        serde_json::to_string_pretty(&result)? + "\n",
    )?;
    crate::out::write_kernel_files(dir, m)?;
    let mut csv =
        String::from("time_ns,phase,free_pages,free_order9_blocks,hugepages,pages_reclaimed");
    for o in 0..kcompact::units::NR_PAGE_ORDERS {
        let _ = write!(csv, ",free_o{o}");
    }
    csv.push('\n');
    for t in &out.timeline {
        let _ = write!(
            csv,
            "{},{},{},{},{},{}",
            t.time_ns, t.phase, t.free_pages, t.free_order9_blocks, t.hugepages, t.pages_reclaimed
        );
        for n in t.free_by_order {
            let _ = write!(csv, ",{n}");
        }
        csv.push('\n');
    }
    crate::out::write(dir, "timeline.csv", csv)?;
    crate::report::write_report(dir, &scenario_report(m, p, seed, &result, out))?;
    Ok(())
}

/// The report of a scenario run.
fn scenario_report(
    m: &Machine,
    p: &Params,
    seed: u64,
    result: &serde_json::Value,
    out: &Outcome,
) -> crate::report::Report {
    use crate::report::{
        free_by_order_chart, kernel_views, kv_table, map_section, Section, Series,
    };
    let flat = crate::report::flat_json;
    let secs = |t: &kcompact::scenario::Tick| t.time_ns as f64 / 1e9;
    let line = |name: &str, f: &dyn Fn(&kcompact::scenario::Tick) -> u64| Series {
        name: name.to_string(),
        points: out
            .timeline
            .iter()
            .map(|t| (secs(t), f(t) as f64))
            .collect(),
    };
    let mut config = vec![("seed".to_string(), seed.to_string())];
    config.extend(flat(&result["config"]));
    let mut sections = vec![
        kv_table("Metrics", flat(&result["metrics"])),
        kv_table("Configuration and seed", config),
        map_section("Physical memory at the end of the run", m),
        free_by_order_chart(
            "Free pages by order over time",
            "simulated time (s)",
            &out.timeline
                .iter()
                .map(|t| (secs(t), t.free_by_order))
                .collect::<Vec<_>>(),
        ),
        Section::Chart {
            title: "Huge pages obtained and free order-9 blocks".into(),
            x_label: "simulated time (s)".into(),
            y_label: "count".into(),
            series: vec![
                line("huge pages held", &|t| t.hugepages),
                line("free order >= 9 blocks", &|t| t.free_order9_blocks),
            ],
        },
        Section::Chart {
            title: "Free pages and pages reclaimed".into(),
            x_label: "simulated time (s)".into(),
            y_label: "pages".into(),
            series: vec![
                line("free pages", &|t| t.free_pages),
                line("pages reclaimed", &|t| t.pages_reclaimed),
            ],
        },
    ];
    sections.extend(kernel_views(m));
    sections.push(crate::report::vmstat_table(
        "/proc/vmstat (non-zero counters since boot)",
        m,
    ));
    crate::report::Report {
        title: format!("kcompact run {}", p.info().name),
        subtitle: format!("{} — seed {seed}", p.info().source),
        sections,
    }
}

/// Mean and sample standard deviation.
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// `kcompact ab SCENARIO --toggle KEY=A,B --seeds N`: every numeric metric under A and
/// under B over N seeds, runs spread over the CPUs (each run single-threaded and
/// deterministic).
pub fn ab(args: AbArgs) -> anyhow::Result<()> {
    let info = scenario::find(&args.scenario)
        .ok_or_else(|| scenario_error(ScenarioError::Unknown(args.scenario.clone())))?;
    let Some((key, vals)) = args.toggle.split_once('=') else {
        return usage(format!("--toggle {}: expected KEY=A,B", args.toggle));
    };
    let Some((a, b)) = vals.split_once(',') else {
        return usage(format!("--toggle {}: expected KEY=A,B", args.toggle));
    };
    if args.seeds == 0 || args.seeds > 1000 {
        return usage(format!("--seeds {}: 1..=1000", args.seeds));
    }
    let keys: Vec<&str> = info.params.iter().map(|(k, _, _)| *k).collect();
    let mut settings = Vec::new();
    for v in [a, b] {
        let mut m = args.machine.clone();
        m.set.push(format!("{key}={v}"));
        let s = Settings::parse_for(&m, &keys, info.machine, SCENARIO_MEM)?;
        let p = Params::new(info.name, &s.scenario_params).map_err(scenario_error)?;
        settings.push((s, p));
    }
    let jobs: Vec<(usize, u64)> = (0..2)
        .flat_map(|side| (1..=args.seeds).map(move |seed| (side, seed)))
        .collect();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(jobs.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<anyhow::Result<(usize, u64, Outcome)>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                sc.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&(side, seed)) = jobs.get(i) else {
                            break;
                        };
                        let (s, p) = &settings[side];
                        mine.push(
                            run_one(s, p, seed, &mut |_, _| {}).map(|(_, o)| (side, seed, o)),
                        );
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("ab worker"))
            .collect()
    });
    let mut outs: Vec<(usize, u64, Outcome)> =
        results.into_iter().collect::<anyhow::Result<_>>()?;
    outs.sort_by_key(|(side, seed, _)| (*side, *seed));
    let names: Vec<&'static str> = outs[0]
        .2
        .metrics
        .iter()
        .filter(|(_, m)| !matches!(m, Metric::List(_)))
        .map(|(n, _)| *n)
        .collect();
    let value = |o: &Outcome, n: &str| -> f64 {
        match o.get(n) {
            Some(Metric::Int(v)) => *v as f64,
            Some(Metric::Float(v)) => *v,
            _ => 0.0,
        }
    };
    let mut rows = Vec::new();
    for n in &names {
        let side = |s: usize| -> Vec<f64> {
            outs.iter()
                .filter(|(x, _, _)| *x == s)
                .map(|(_, _, o)| value(o, n))
                .collect()
        };
        let (ma, sa) = mean_sd(&side(0));
        let (mb, sb) = mean_sd(&side(1));
        let change = if ma != 0.0 {
            100.0 * (mb - ma) / ma.abs()
        } else {
            0.0
        };
        rows.push((n.to_string(), ma, sa, mb, sb, change));
    }
    let j = json!({
        "scenario": info.name, "toggle": {"key": key, "a": a, "b": b}, "seeds": args.seeds,
        "metrics": rows.iter().map(|(n, ma, sa, mb, sb, c)| json!({"name": n, "a": {"mean": ma, "sd": sa}, "b": {"mean": mb, "sd": sb}, "change_pct": c})).collect::<Vec<_>>(),
    });
    if let Some(dir) = &args.out {
        use crate::report::{AbRow, Report, Section};
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        crate::out::write(dir, "ab.json", serde_json::to_string_pretty(&j)? + "\n")?;
        let (la, lb) = (format!("{key}={a}"), format!("{key}={b}"));
        let report = Report {
            title: format!("kcompact ab {} — {la} vs {lb}", info.name),
            subtitle: format!(
                "{}; seeds 1..={}; mean ± sample sd",
                info.source, args.seeds
            ),
            sections: vec![
                Section::Bars {
                    title: "Every metric under A and under B".into(),
                    a_label: la.clone(),
                    b_label: lb.clone(),
                    rows: rows
                        .iter()
                        .map(|(n, ma, sa, mb, sb, _)| AbRow {
                            metric: n.clone(),
                            a: *ma,
                            a_sd: *sa,
                            b: *mb,
                            b_sd: *sb,
                        })
                        .collect(),
                },
                Section::Table {
                    title: "The numbers".into(),
                    headers: vec!["metric".into(), la, lb, "change".into()],
                    rows: rows
                        .iter()
                        .map(|(n, ma, sa, mb, sb, c)| {
                            vec![
                                n.clone(),
                                format!("{ma:.2} ± {sa:.2}"),
                                format!("{mb:.2} ± {sb:.2}"),
                                format!("{c:+.1}%"),
                            ]
                        })
                        .collect(),
                },
            ],
        };
        crate::report::write_report(dir, &report)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(());
    }
    println!(
        "kcompact ab {} — {key}={a} vs {key}={b}, seeds 1..={} (mean ± sd)\n",
        info.name, args.seeds
    );
    println!(
        "{:<26} {:>22} {:>22} {:>10}",
        "metric",
        format!("{key}={a}"),
        format!("{key}={b}"),
        "change"
    );
    for (n, ma, sa, mb, sb, c) in rows {
        println!(
            "{n:<26} {:>22} {:>22} {:>9.1}%",
            format!("{ma:.2} ± {sa:.2}"),
            format!("{mb:.2} ± {sb:.2}"),
            c
        );
    }
    Ok(())
}
