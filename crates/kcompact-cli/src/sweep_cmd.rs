//! `kcompact sweep GRID.toml --out FILE.parquet`: a grid of runs (scenarios × sizes ×
//! settings × seeds) on every core, one Parquet row per run.
//!
//! The grid is expanded into jobs in a fixed order (scenario, then size, then the
//! settings' cross product in key order, then seed); each job is a `kcompact run`
//! ([`scenario_cmd::run_result`]) whose result.json becomes a row: the run's key (`run`),
//! its scenario, size, seed and settings, then every metric and every vmstat counter, and
//! the wall time. Rows are written in job order whatever the number of threads, so the
//! same grid gives the same rows (wall times aside). Rows already in the output are kept
//! and their runs skipped (a run whose row holds an `error` runs again); the file is
//! rewritten every few seconds while the sweep runs, so an interrupted sweep resumes where
//! it stopped. The Python package's `kcompact.dask.sweep` plans, runs and writes through
//! the same functions ([`plan`], [`run_job`], [`merge_write`]).

use crate::cli::{MachineArgs, SweepArgs};
use crate::scenario_cmd;
use crate::table::{self, cell_of_json, Cell, Row};
use crate::ui::{outln, panic_text, progress_bar, usage, Usage};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// A grid value: one or a list.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A setting's value as the grid file gives it.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Scalar {
    /// The text `--set KEY=VALUE` takes (`true` is `on`).
    fn text(&self) -> String {
        match self {
            Scalar::Bool(b) => if *b { "on" } else { "off" }.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Str(s) => s.clone(),
        }
    }
}

/// The seeds: a count `N` (seeds 1..=N, as `kcompact ab`) or a list.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum Seeds {
    Count(u64),
    List(Vec<u64>),
}

fn one_seed() -> Seeds {
    Seeds::Count(1)
}

/// A sweep's grid (TOML file, or the same keys as a JSON object from Python): the runs are
/// the cross product of its values.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// Scenario names.
    #[serde(alias = "scenarios")]
    scenario: OneOrMany<String>,
    /// Memory sizes (`1G`); without: each scenario's own size.
    #[serde(default)]
    mem: Option<OneOrMany<Scalar>>,
    /// Seeds: a count or a list.
    #[serde(default = "one_seed", alias = "seed")]
    seeds: Seeds,
    /// `--set` keys and their values (tunables and the scenarios' parameters).
    #[serde(default)]
    settings: BTreeMap<String, OneOrMany<Scalar>>,
}

impl Grid {
    /// The grid of a TOML file's text (`name` in messages).
    pub fn from_toml(name: &str, text: &str) -> anyhow::Result<Grid> {
        toml::from_str(text).or_else(|e| usage(format!("{name}: {}", one_line(&e.to_string()))))
    }

    /// The grid of a JSON object's text (the Python package's dict).
    pub fn from_json(text: &str) -> anyhow::Result<Grid> {
        serde_json::from_str(text).or_else(|e| usage(format!("grid: {e}")))
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One run of a grid.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its place in the grid's order.
    pub index: usize,
    /// The run's key: scenario, size, settings and seed in words (the `run` column).
    pub key: String,
    pub scenario: String,
    /// `--mem` as the grid gives it (`None`: the scenario's own).
    pub mem: Option<String>,
    /// The size in words (the grid's, or the scenario's own).
    pub mem_text: String,
    pub seed: u64,
    /// `--set` pairs, in key order.
    pub settings: Vec<(String, String)>,
}

impl Job {
    fn machine(&self) -> MachineArgs {
        MachineArgs {
            mem: self.mem.clone(),
            set: self
                .settings
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        }
    }
}

/// The columns every row has besides its settings.
const RESERVED: [&str; 7] = [
    "run",
    "scenario",
    "mem",
    "seed",
    "mem_bytes",
    "error",
    "wall_s",
];

/// Every run of `grid` in its order, each checked as `kcompact run` would check it (bad
/// input names the run).
pub fn plan(grid: &Grid) -> anyhow::Result<Vec<Job>> {
    let scenarios = grid.scenario.to_vec();
    let mems: Vec<Option<String>> = match &grid.mem {
        None => vec![None],
        Some(m) => m.to_vec().iter().map(|s| Some(s.text())).collect(),
    };
    let seeds: Vec<u64> = match &grid.seeds {
        Seeds::Count(n) => (1..=*n).collect(),
        Seeds::List(v) => v.clone(),
    };
    if let Some(k) = grid
        .settings
        .keys()
        .find(|k| RESERVED.contains(&k.as_str()))
    {
        return usage(format!(
            "grid: settings.{k}: a column of every row, not a setting"
        ));
    }
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (k, vals) in &grid.settings {
        let vals = vals.to_vec();
        combos = combos
            .iter()
            .flat_map(|c| {
                vals.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((k.clone(), v.text()));
                    c
                })
            })
            .collect();
    }
    let mut jobs = Vec::new();
    for s in &scenarios {
        let Some(info) = kcompact::scenario::find(s) else {
            // The run's own message (it lists the scenarios).
            scenario_cmd::check_run(
                s,
                &MachineArgs {
                    mem: None,
                    set: vec![],
                },
            )?;
            return usage(format!("grid: no scenario {s}"));
        };
        for mem in &mems {
            for settings in &combos {
                let mem_text = mem.clone().unwrap_or_else(|| info.mem.to_string());
                let words: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let mut job = Job {
                    index: 0,
                    key: String::new(),
                    scenario: s.clone(),
                    mem: mem.clone(),
                    mem_text,
                    seed: 0,
                    settings: settings.clone(),
                };
                let head = format!(
                    "{s} mem={}{}{}",
                    job.mem_text,
                    if words.is_empty() { "" } else { " " },
                    words.join(" ")
                );
                if let Err(e) = scenario_cmd::check_run(s, &job.machine()) {
                    return match e.downcast_ref::<Usage>() {
                        Some(u) => usage(format!("grid run {head}: {u}")),
                        None => Err(e),
                    };
                }
                for &seed in &seeds {
                    job.index = jobs.len();
                    job.seed = seed;
                    job.key = format!("{head} seed={seed}");
                    jobs.push(job.clone());
                }
            }
        }
    }
    if jobs.is_empty() {
        return usage("grid: no runs (a scenario, a size, a seed or a setting has no values)");
    }
    let keys: BTreeSet<&str> = jobs.iter().map(|j| j.key.as_str()).collect();
    if keys.len() != jobs.len() {
        return usage("grid: the same run twice (a value repeated in a list)");
    }
    Ok(jobs)
}

/// Pushes a cell unless it is null (a row holds only the columns it has).
fn push(row: &mut Row, name: &str, cell: Cell) {
    if cell != Cell::Null {
        row.push((name.to_string(), cell));
    }
}

/// Runs one job: its row (see the module documentation). A run that fails or panics gives
/// a row with its `error` and no figures.
pub fn run_job(job: &Job) -> Row {
    let t0 = Instant::now();
    let result = std::panic::catch_unwind(|| {
        scenario_cmd::run_result(&job.scenario, &job.machine(), job.seed)
    });
    let wall = t0.elapsed().as_secs_f64();
    let mut row = Row::new();
    push(&mut row, "run", Cell::Str(job.key.clone()));
    push(&mut row, "scenario", Cell::Str(job.scenario.clone()));
    push(&mut row, "mem", Cell::Str(job.mem_text.clone()));
    push(&mut row, "seed", Cell::Int(job.seed as i64));
    for (k, v) in &job.settings {
        push(&mut row, k, Cell::Str(v.clone()));
    }
    match result {
        Ok(Ok(r)) => {
            push(
                &mut row,
                "mem_bytes",
                cell_of_json(&r["config"]["mem_bytes"]),
            );
            for group in ["metrics", "vmstat"] {
                if let Some(o) = r[group].as_object() {
                    for (k, v) in o {
                        // A name the row already has (a setting) keeps its group's prefix.
                        let name = if table::get(&row, k).is_some() {
                            format!("{group}.{k}")
                        } else {
                            k.clone()
                        };
                        push(&mut row, &name, cell_of_json(v));
                    }
                }
            }
        }
        Ok(Err(e)) => push(&mut row, "error", Cell::Str(format!("{e:#}"))),
        Err(p) => push(
            &mut row,
            "error",
            Cell::Str(format!("panic: {}", panic_text(&*p))),
        ),
    }
    push(&mut row, "wall_s", Cell::Float(wall));
    row
}

fn key_of(row: &Row) -> Option<&str> {
    match table::get(row, "run") {
        Some(Cell::Str(k)) => Some(k),
        _ => None,
    }
}

fn failed(row: &Row) -> bool {
    table::get(row, "error").is_some()
}

/// The rows of `out` if it exists (none if not).
pub fn existing_rows(out: &Path) -> anyhow::Result<Vec<Row>> {
    if !out.exists() {
        return Ok(Vec::new());
    }
    let rows = table::read_parquet(out)?;
    if rows.iter().any(|r| key_of(r).is_none()) {
        return usage(format!(
            "{}: not a sweep's table (a row without `run`)",
            out.display()
        ));
    }
    Ok(rows)
}

/// The jobs of `jobs` whose rows `existing` lacks (or holds with an error).
pub fn pending(jobs: &[Job], existing: &[Row]) -> Vec<Job> {
    let done: BTreeSet<&str> = existing
        .iter()
        .filter(|r| !failed(r))
        .filter_map(key_of)
        .collect();
    jobs.iter()
        .filter(|j| !done.contains(j.key.as_str()))
        .cloned()
        .collect()
}

/// The table: rows of `existing` that are no run of `jobs` first (as they were), then each
/// job's row in job order, a new one (`new`) before one already there.
pub fn merge(jobs: &[Job], existing: Vec<Row>, new: Vec<Row>) -> Vec<Row> {
    let grid: BTreeSet<&str> = jobs.iter().map(|j| j.key.as_str()).collect();
    let mut by_key: BTreeMap<String, Row> = BTreeMap::new();
    let mut out = Vec::new();
    for r in existing {
        match key_of(&r) {
            Some(k) if grid.contains(k) => {
                by_key.insert(k.to_string(), r);
            }
            _ => out.push(r),
        }
    }
    for r in new {
        if let Some(k) = key_of(&r) {
            by_key.insert(k.to_string(), r);
        }
    }
    for j in jobs {
        if let Some(r) = by_key.remove(&j.key) {
            out.push(r);
        }
    }
    out
}

/// Reads `out` again, merges `new` rows into it ([`merge`]) and writes it; the rows
/// written.
pub fn merge_write(jobs: &[Job], out: &Path, new: Vec<Row>) -> anyhow::Result<usize> {
    let rows = merge(jobs, existing_rows(out)?, new);
    table::write_parquet(out, &rows)?;
    Ok(rows.len())
}

/// How often a running sweep rewrites its output.
const CHECKPOINT: Duration = Duration::from_secs(10);

/// Runs `jobs` on `threads` threads (every core if `None`), merging their rows into `out`
/// every [`CHECKPOINT`] and at the end; `progress(done, total)` after each run. Returns the
/// rows written and the runs that failed.
pub fn run_local(
    jobs: &[Job],
    out: &Path,
    threads: Option<usize>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> anyhow::Result<(usize, usize)> {
    use rayon::prelude::*;
    let existing = existing_rows(out)?;
    let todo = pending(jobs, &existing);
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        if n == 0 {
            return usage("--jobs 0: at least 1");
        }
        b = b.num_threads(n);
    }
    let pool = b.build()?;
    let (tx, rx) = std::sync::mpsc::channel::<Row>();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let total = todo.len();
    let mut new = Vec::new();
    let mut result = Ok(());
    std::thread::scope(|sc| {
        let (todo, stop) = (&todo, &stop);
        sc.spawn(move || {
            pool.install(|| {
                todo.par_iter().for_each_with(tx, |tx, j| {
                    if !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let _ = tx.send(run_job(j));
                    }
                })
            })
        });
        let mut last = Instant::now();
        for row in rx {
            new.push(row);
            progress(new.len(), total);
            if last.elapsed() >= CHECKPOINT && new.len() < total {
                if let Err(e) = merge_write(jobs, out, new.clone()) {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    result = Err(e);
                    break;
                }
                last = Instant::now();
            }
        }
    });
    result?;
    let failed = new.iter().filter(|r| failed(r)).count();
    let rows = if new.is_empty() && !existing.is_empty() {
        existing.len()
    } else {
        merge_write(jobs, out, new)?
    };
    Ok((rows, failed))
}

/// `kcompact sweep GRID.toml --out FILE.parquet [--jobs N]`.
pub fn sweep(args: SweepArgs) -> anyhow::Result<()> {
    let name = args.grid.display().to_string();
    let text = match std::fs::read_to_string(&args.grid) {
        Ok(t) => t,
        Err(e) => return usage(format!("{name}: {e}")),
    };
    let jobs = plan(&Grid::from_toml(&name, &text)?)?;
    let todo = pending(&jobs, &existing_rows(&args.out)?).len();
    let threads = args.jobs.unwrap_or_else(rayon::current_num_threads);
    eprintln!(
        "sweep: {} runs, {} already in {}, {todo} to run on {threads} threads",
        jobs.len(),
        jobs.len() - todo,
        args.out.display()
    );
    let bar = progress_bar(todo as u64, "{bar:40} {pos}/{len} runs {elapsed} {msg}");
    let t0 = Instant::now();
    let (rows, failed) = run_local(&jobs, &args.out, args.jobs, &|done, _| {
        if let Some(b) = &bar {
            b.set_position(done as u64);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let secs = t0.elapsed().as_secs_f64();
    outln!(
        "wrote {} ({rows} rows): {todo} runs in {secs:.1} s ({:.2} runs/s on {threads} threads){}",
        args.out.display(),
        if secs > 0.0 { todo as f64 / secs } else { 0.0 },
        if failed > 0 {
            format!("; {failed} failed (their `error` column says why)")
        } else {
            String::new()
        }
    );
    Ok(())
}
