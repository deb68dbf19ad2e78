//! `kcompact run SCENARIO`, `kcompact scenarios` and `kcompact ab`: the scenarios of
//! [`kcompact::scenario`] (the seeds' experiments and the churn) on the model, their
//! metrics and the result files.

use crate::cli::{AbArgs, MachineArgs, RunArgs};
use crate::out::{result_json, write_result};
use crate::outdir::OutDir;
use crate::report::{
    free_by_order_chart, kernel_views, run_sections, vmstat_table, write_report, AbRow, Report,
    Section, Series,
};
use crate::settings::{Settings, SCENARIO_BYTES_PER_PAGE};
use crate::ui::{out, outln, progress_bar, usage, Usage};
use kcompact::rng::SimRng;
use kcompact::scenario::{self, Metric, Outcome, Params, ScenarioError, ScenarioInfo, Tick};
use kcompact::views::buddyinfo;
use kcompact::Machine;
use serde_json::json;
use std::fmt::Write as _;

/// `kcompact scenarios`.
pub fn scenarios() -> anyhow::Result<()> {
    for s in scenario::SCENARIOS {
        outln!("{:<16} {} — {}", s.name, s.source, s.summary);
    }
    Ok(())
}

fn scenario_error(e: ScenarioError) -> anyhow::Error {
    Usage(e.to_string()).into()
}

/// The scenario called `name`.
fn find(name: &str) -> anyhow::Result<&'static ScenarioInfo> {
    scenario::find(name).ok_or_else(|| scenario_error(ScenarioError::Unknown(name.into())))
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

/// The machine and the parameters of scenario `info` from `--mem` and `--set` (the
/// scenario's own machine settings first, its memory without `--mem`).
fn settings_for(info: &ScenarioInfo, args: &MachineArgs) -> anyhow::Result<(Settings, Params)> {
    let keys: Vec<&str> = info.params.iter().map(|(k, _, _)| *k).collect();
    let settings = Settings::parse_for(args, &keys, info.machine, info.mem)?;
    let params = Params::new(info.name, &settings.scenario_params).map_err(scenario_error)?;
    Ok((settings, params))
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

/// Checks a run's scenario, `--mem` and `--set` without running it (the machine is booted
/// and dropped): the error `run` would give for them, or nothing.
pub fn check_run(name: &str, machine: &MachineArgs) -> anyhow::Result<()> {
    let (settings, _) = settings_for(find(name)?, machine)?;
    settings.check_memory(1, SCENARIO_BYTES_PER_PAGE)?;
    settings.boot().map(drop)
}

/// A run's result.json (`run --out`'s, the churn's included) without the files: what the
/// Python package's `kcompact.run` returns and a sweep's row is made of. Tracked contents
/// found wrong fail the run, as `run` does.
pub fn run_result(
    name: &str,
    machine: &MachineArgs,
    seed: u64,
) -> anyhow::Result<serde_json::Value> {
    let (settings, params) = settings_for(find(name)?, machine)?;
    settings.check_memory(1, SCENARIO_BYTES_PER_PAGE)?;
    let (m, out) = run_one(&settings, &params, seed, &mut |_, _| {})?;
    if let Some(Metric::Int(n @ 1..)) = out.get("integrity_errors") {
        anyhow::bail!("{n} folios lost or corrupted their data");
    }
    Ok(match &out.churn {
        Some(r) => result_json(
            &m,
            "churn",
            seed,
            crate::churn_out::config_json(&m, &settings, r),
            &out,
        ),
        None => result_json(
            &m,
            params.info().name,
            seed,
            config_json(&m, &settings, &params),
            &out,
        ),
    })
}

/// `kcompact run [SCENARIO]` (default `highalloc`): the summary on stdout, the result files
/// with `--out`; the churn in its own format ([`crate::churn_out`]). Tracked contents
/// found wrong at the end fail the run after it is printed.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let name = args.scenario.as_deref().unwrap_or("highalloc");
    let (settings, params) = settings_for(find(name)?, &args.machine)?;
    settings.check_memory(1, SCENARIO_BYTES_PER_PAGE)?;
    let mut out_dir = args
        .out
        .as_deref()
        .map(|d| OutDir::prepare(d, args.force))
        .transpose()?;
    let bar = progress_bar(1, "{bar:40} {percent}% {elapsed} {msg}");
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
    // The files first: a summary on stdout means they are there.
    let wrote = match out_dir.as_mut() {
        Some(dir) => {
            match &out.churn {
                Some(r) => crate::churn_out::write_out(dir, &m, &settings, args.seed, &out, r)?,
                None => write_out(dir, &m, &settings, &params, args.seed, &out)?,
            }
            Some(dir.path().to_path_buf())
        }
        None => None,
    };
    if let Some(mut dir) = out_dir {
        if args.snapshot {
            let label = format!("run {name} seed {}", args.seed);
            let img = crate::snapshot_out::image(&m, &label, false)?;
            crate::snapshot_out::stage(&mut dir, "snapshot", img);
        }
        dir.commit(&format!("run {name}"), "result.json")?;
    }
    match &out.churn {
        Some(r) => out!("{}", crate::churn_out::summary(&m, &settings, args.seed, r)),
        None => out!("{}", summary(&m, &settings, &params, args.seed, &out)),
    }
    if let Some(dir) = wrote {
        outln!("\nwrote {}", dir.display());
    }
    if let Some(Metric::Int(n @ 1..)) = out.get("integrity_errors") {
        anyhow::bail!("{n} folios lost or corrupted their data");
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
        s.machine.mem_bytes >> 20,
        m.nr_nodes(),
        m.managed_pages(),
        if s.machine.vm.compaction { "on" } else { "off" },
        s.machine.vm.swap_pages,
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

/// result.json's `config` of a scenario run: the machine and the scenario's parameters.
fn config_json(m: &Machine, s: &Settings, p: &Params) -> serde_json::Value {
    let mut config = json!({
        "mem_bytes": s.machine.mem_bytes, "nodes": s.machine.nodes, "movable_bytes": s.machine.movable_bytes,
        "min_free_kbytes": m.min_free_kbytes, "watermark_scale_factor": s.machine.vm.watermark_scale_factor,
        "watermark_boost_factor": s.machine.vm.watermark_boost_factor, "thp": s.machine.vm.thp_enabled,
        "thp_defrag": s.machine.vm.thp_defrag.name(), "compaction": s.machine.vm.compaction,
        "swap_pages": s.machine.vm.swap_pages, "zram": s.machine.vm.zram, "swappiness": s.machine.vm.swappiness,
        "cma_pages": s.machine.vm.cma_pages,
        "defrag_mode": s.machine.vm.defrag_mode, "compaction_proactiveness": s.machine.vm.compaction_proactiveness,
        "non_lru_movable": s.machine.vm.non_lru_movable,
        "compact_unevictable_allowed": s.machine.vm.compact_unevictable_allowed,
    });
    // The 2010 switches, where set (`kernel=2.6.35` sets both).
    if s.machine.vm.reclaim_lumpy {
        config["reclaim_mode"] = json!("lumpy");
    }
    if s.machine.vm.alloc_retry_2_6_35 {
        config["alloc_retry"] = json!("2.6.35");
    }
    for (k, v) in p.pairs() {
        config[k] = json!(v);
    }
    config
}

/// The result files of SPEC.md's contract.
fn write_out(
    dir: &mut OutDir,
    m: &Machine,
    s: &Settings,
    p: &Params,
    seed: u64,
    out: &Outcome,
) -> anyhow::Result<()> {
    let result = write_result(dir, m, p.info().name, seed, config_json(m, s, p), out)?;
    crate::out::write(dir, "timeline.csv", timeline_csv(out));
    write_report(dir, &scenario_report(m, p, seed, &result, out))
}

/// timeline.csv: a row per tick, free blocks per order last.
fn timeline_csv(out: &Outcome) -> String {
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
    csv
}

/// The report of a scenario run.
fn scenario_report(
    m: &Machine,
    p: &Params,
    seed: u64,
    result: &serde_json::Value,
    out: &Outcome,
) -> Report {
    let secs = |t: &Tick| t.time_ns as f64 / 1e9;
    let line = |name: &str, f: &dyn Fn(&Tick) -> u64| Series {
        name: name.to_string(),
        points: out
            .timeline
            .iter()
            .map(|t| (secs(t), f(t) as f64))
            .collect(),
    };
    let mut sections = run_sections(m, seed, result);
    sections.extend([
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
    ]);
    sections.extend(kernel_views(m));
    sections.push(vmstat_table(
        "/proc/vmstat (non-zero counters since boot)",
        m,
    ));
    Report {
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

/// One metric of an A/B: mean and sample sd under A and under B, and B's change in
/// percent of A.
struct Compared {
    name: String,
    a: (f64, f64),
    b: (f64, f64),
    change_pct: f64,
}

/// What an A/B found: the scenario, the two sides' labels, the metrics compared and
/// `ab --json`'s content.
struct AbOutcome {
    info: &'static ScenarioInfo,
    la: String,
    lb: String,
    rows: Vec<Compared>,
    json: serde_json::Value,
    /// With `--snapshot`: each side's model at the end of its first seed.
    images: Vec<crate::snapshot_out::Image>,
}

/// `ab --json`'s content: what the Python package's `kcompact.ab` returns.
pub fn ab_result(args: &AbArgs) -> anyhow::Result<serde_json::Value> {
    Ok(ab_compare(args)?.0.json)
}

/// Checks the arguments and prepares `--out`, runs both sides of an A/B over the seeds
/// and compares every metric.
fn ab_compare(args: &AbArgs) -> anyhow::Result<(AbOutcome, Option<OutDir>)> {
    let info = find(&args.scenario)?;
    let Some((key, (a, b))) = args
        .toggle
        .split_once('=')
        .and_then(|(k, vals)| Some((k, vals.split_once(',')?)))
    else {
        return usage(format!("--toggle {}: expected KEY=A,B", args.toggle));
    };
    if args.seeds == 0 || args.seeds > 1000 {
        return usage(format!("--seeds {}: 1..=1000", args.seeds));
    }
    let out_dir = args
        .out
        .as_deref()
        .map(|d| OutDir::prepare(d, args.force))
        .transpose()?;
    let mut sides = Vec::new();
    for v in [a, b] {
        let mut m = args.machine.clone();
        m.set.push(format!("{key}={v}"));
        sides.push(settings_for(info, &m)?);
    }
    // The runs go in parallel: as many models at once as threads.
    for (s, _) in &sides {
        s.check_memory(ab_threads(args.seeds * 2) as u64, SCENARIO_BYTES_PER_PAGE)?;
    }
    let (outs, images) = run_seeds(&sides, args.seeds, args.snapshot)?;
    let rows = compare(&outs);
    let (la, lb) = (format!("{key}={a}"), format!("{key}={b}"));
    let json = json!({
        "scenario": info.name, "toggle": {"key": key, "a": a, "b": b}, "seeds": args.seeds,
        "metrics": rows.iter().map(|r| json!({"name": r.name, "a": {"mean": r.a.0, "sd": r.a.1}, "b": {"mean": r.b.0, "sd": r.b.1}, "change_pct": r.change_pct})).collect::<Vec<_>>(),
    });
    let x = AbOutcome {
        info,
        la,
        lb,
        rows,
        json,
        images,
    };
    Ok((x, out_dir))
}

/// `kcompact ab SCENARIO --toggle KEY=A,B --seeds N`: every numeric metric under A and
/// under B over N seeds, runs spread over the CPUs (each run single-threaded and
/// deterministic).
pub fn ab(args: AbArgs) -> anyhow::Result<()> {
    let (
        AbOutcome {
            info,
            la,
            lb,
            rows,
            json: j,
            images,
        },
        out_dir,
    ) = ab_compare(&args)?;
    if let Some(mut dir) = out_dir {
        for (img, sub) in images.into_iter().zip(["snapshot-a", "snapshot-b"]) {
            crate::snapshot_out::stage(&mut dir, sub, img);
        }
        crate::out::write(
            &mut dir,
            "ab.json",
            serde_json::to_string_pretty(&j)? + "\n",
        );
        write_report(&mut dir, &ab_report(info, &la, &lb, args.seeds, &rows))?;
        dir.commit(&format!("ab {}", info.name), "ab.json")?;
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(());
    }
    outln!(
        "kcompact ab {} — {la} vs {lb}, seeds 1..={} (mean ± sd)\n",
        info.name,
        args.seeds
    );
    outln!("{:<26} {la:>22} {lb:>22} {:>10}", "metric", "change");
    for r in rows {
        outln!(
            "{:<26} {:>22} {:>22} {:>9.1}%",
            r.name,
            format!("{:.2} ± {:.2}", r.a.0, r.a.1),
            format!("{:.2} ± {:.2}", r.b.0, r.b.1),
            r.change_pct
        );
    }
    Ok(())
}

/// The threads an A/B of `jobs` runs uses: one per CPU, at most one per run.
fn ab_threads(jobs: u64) -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(jobs.max(1) as usize)
}

/// Runs both sides' scenario over seeds `1..=seeds` on every CPU; the outcomes by side
/// (0 = A) and seed, in that order.
fn run_seeds(
    sides: &[(Settings, Params)],
    seeds: u64,
    snapshot: bool,
) -> anyhow::Result<(RunOutcomes, Vec<crate::snapshot_out::Image>)> {
    let jobs: Vec<(usize, u64)> = (0..sides.len())
        .flat_map(|side| (1..=seeds).map(move |seed| (side, seed)))
        .collect();
    let threads = ab_threads(jobs.len() as u64);
    let next = std::sync::atomic::AtomicUsize::new(0);
    type Done = anyhow::Result<(usize, u64, Outcome, Option<crate::snapshot_out::Image>)>;
    let results: Vec<Done> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                sc.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&(side, seed)) = jobs.get(i) else {
                            break;
                        };
                        let (s, p) = &sides[side];
                        mine.push(run_one(s, p, seed, &mut |_, _| {}).and_then(|(m, o)| {
                            // The first seed's model, as a snapshot, before it is dropped.
                            let img = (snapshot && seed == 1)
                                .then(|| {
                                    let side = ["a", "b"][side];
                                    crate::snapshot_out::image(
                                        &m,
                                        &format!("ab {} side {side} seed {seed}", p.info().name),
                                        false,
                                    )
                                })
                                .transpose()?;
                            Ok((side, seed, o, img))
                        }));
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
    let mut outs = Vec::new();
    let mut images = Vec::new();
    for r in results {
        let (side, seed, o, img) = r?;
        outs.push((side, seed, o));
        if let Some(img) = img {
            images.push((side, img));
        }
    }
    outs.sort_by_key(|(side, seed, _)| (*side, *seed));
    images.sort_by_key(|(side, _)| *side);
    Ok((outs, images.into_iter().map(|(_, i)| i).collect()))
}

/// Each run of an A/B: side, seed and outcome, in side and seed order.
type RunOutcomes = Vec<(usize, u64, Outcome)>;

/// Every metric that is no list (those of the first run), compared between side 0 and 1.
fn compare(outs: &[(usize, u64, Outcome)]) -> Vec<Compared> {
    let value = |o: &Outcome, n: &str| -> f64 {
        match o.get(n) {
            Some(Metric::Int(v)) => *v as f64,
            Some(Metric::Float(v)) => *v,
            _ => 0.0,
        }
    };
    outs[0]
        .2
        .metrics
        .iter()
        .filter(|(_, m)| !matches!(m, Metric::List(_)))
        .map(|(n, _)| {
            let side = |s: usize| -> Vec<f64> {
                outs.iter()
                    .filter(|(x, _, _)| *x == s)
                    .map(|(_, _, o)| value(o, n))
                    .collect()
            };
            let (a, b) = (mean_sd(&side(0)), mean_sd(&side(1)));
            let change_pct = if a.0 != 0.0 {
                100.0 * (b.0 - a.0) / a.0.abs()
            } else {
                0.0
            };
            Compared {
                name: n.to_string(),
                a,
                b,
                change_pct,
            }
        })
        .collect()
}

/// The report of an A/B: bars per metric and the table of numbers.
fn ab_report(info: &ScenarioInfo, la: &str, lb: &str, seeds: u64, rows: &[Compared]) -> Report {
    Report {
        title: format!("kcompact ab {} — {la} vs {lb}", info.name),
        subtitle: format!("{}; seeds 1..={seeds}; mean ± sample sd", info.source),
        sections: vec![
            Section::Bars {
                title: "Every metric under A and under B".into(),
                a_label: la.to_string(),
                b_label: lb.to_string(),
                rows: rows
                    .iter()
                    .map(|r| AbRow {
                        metric: r.name.clone(),
                        a: r.a.0,
                        a_sd: r.a.1,
                        b: r.b.0,
                        b_sd: r.b.1,
                    })
                    .collect(),
            },
            Section::Table {
                title: "The numbers".into(),
                headers: vec![
                    "metric".into(),
                    la.to_string(),
                    lb.to_string(),
                    "change".into(),
                ],
                rows: rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            format!("{:.2} ± {:.2}", r.a.0, r.a.1),
                            format!("{:.2} ± {:.2}", r.b.0, r.b.1),
                            format!("{:+.1}%", r.change_pct),
                        ]
                    })
                    .collect(),
            },
        ],
    }
}
