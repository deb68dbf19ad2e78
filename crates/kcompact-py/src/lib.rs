//! `kcompact._kcompact`: the Python package's native half, a thin layer over the command
//! line's own functions (`kcompact_cli`: the same settings parsing, result.json, `--json`
//! contents, sweep and census rows, Parquet writer) and the core's `Machine`.
//!
//! Every call runs without the GIL, and turns what goes wrong into a Python exception:
//! bad input (the CLI's [`Usage`] errors, with their messages) is `ValueError`, any other
//! error `RuntimeError`, and a panic of the model is caught here and raised as
//! `RuntimeError` (a [`Machine`] that panicked refuses further calls), so nothing unwinds
//! into the interpreter.

use kcompact::gfp::Gfp;
use kcompact::owners::table::FolioId;
use kcompact::units::Order;
use kcompact_cli::cli::{
    AbArgs, AdviseArgs, AnalyzeArgs, MachineArgs, PredictArgs, ReplayArgs, SourceArgs,
};
use kcompact_cli::settings::Settings;
use kcompact_cli::sweep_cmd::{self, Grid, Job};
use kcompact_cli::table::{row_from_json, row_to_json, Row};
use kcompact_cli::ui::{panic_text, Help, Usage};
use kcompact_cli::{census_cmd, out, report, scenario_cmd, snapshot_cmd};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict};
use std::path::PathBuf;

/// The Python exception for an error of the command line's functions.
fn py_err(e: anyhow::Error) -> PyErr {
    if e.is::<Usage>() || e.is::<Help>() {
        PyValueError::new_err(e.to_string())
    } else {
        PyRuntimeError::new_err(format!("{e:#}"))
    }
}

/// Runs `f` without the GIL; its error or panic becomes the Python exception.
fn call<T: Send>(py: Python<'_>, f: impl FnOnce() -> anyhow::Result<T> + Send) -> PyResult<T> {
    match py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(py_err(e)),
        Err(p) => Err(PyRuntimeError::new_err(format!(
            "kcompact: internal error: {}",
            panic_text(&*p)
        ))),
    }
}

/// A JSON value as Python objects (through the standard library's `json`, so numbers,
/// lists and dicts come out as `json.loads` makes them).
fn to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (v.to_string(),))
}

/// A Python object as JSON text (`json.dumps`).
fn to_json(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<String> {
    py.import("json")?.call_method1("dumps", (v,))?.extract()
}

/// `settings={KEY: VALUE}` as `--set KEY=VALUE` pairs (in the dict's order; `True` is
/// `on`, `False` `off`, anything else its `str()`).
fn set_pairs(settings: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<String>> {
    let mut set = Vec::new();
    for (k, v) in settings.into_iter().flat_map(|d| d.iter()) {
        let k: String = k.str()?.extract()?;
        let v: String = if v.is_instance_of::<PyBool>() {
            if v.extract::<bool>()? { "on" } else { "off" }.to_string()
        } else {
            v.str()?.extract()?
        };
        set.push(format!("{k}={v}"));
    }
    Ok(set)
}

/// `--mem` and `--set` of a run.
fn machine_args(
    mem: Option<String>,
    settings: Option<&Bound<'_, PyDict>>,
) -> PyResult<MachineArgs> {
    Ok(MachineArgs {
        mem,
        set: set_pairs(settings)?,
    })
}

/// Runs a scenario, as `kcompact run SCENARIO --mem MEM --seed SEED --set KEY=VALUE...`;
/// returns result.json's content. `mem=None` is the scenario's own size (1G; 4G for
/// `churn`).
#[pyfunction]
#[pyo3(signature = (scenario="highalloc", mem=None, seed=1, settings=None))]
fn run<'py>(
    py: Python<'py>,
    scenario: &str,
    mem: Option<String>,
    seed: u64,
    settings: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let machine = machine_args(mem, settings)?;
    let scenario = scenario.to_string();
    let v = call(py, move || {
        scenario_cmd::run_result(&scenario, &machine, seed)
    })?;
    to_py(py, &v)
}

/// Compares two settings, as `kcompact ab SCENARIO --toggle KEY=A,B --seeds N --json`;
/// returns its content.
#[pyfunction]
#[pyo3(signature = (scenario, toggle, seeds=5, mem=None, settings=None))]
fn ab<'py>(
    py: Python<'py>,
    scenario: String,
    toggle: String,
    seeds: u64,
    mem: Option<String>,
    settings: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let args = AbArgs {
        scenario,
        toggle,
        seeds,
        machine: machine_args(mem, settings)?,
        json: true,
        out: None,
        force: false,
        snapshot: false,
    };
    let v = call(py, move || scenario_cmd::ab_result(&args))?;
    to_py(py, &v)
}

/// Predicts an action on a snapshot, as `kcompact predict DIR --action ACTION --json`
/// (`compact`, `drop-caches`, `hugepages=N`); `settings` are run-time tunables applied to
/// the loaded machine.
#[pyfunction]
#[pyo3(signature = (snapshot_dir, action, settings=None, cpu=0))]
fn predict<'py>(
    py: Python<'py>,
    snapshot_dir: PathBuf,
    action: String,
    settings: Option<&Bound<'py, PyDict>>,
    cpu: u32,
) -> PyResult<Bound<'py, PyAny>> {
    let args = PredictArgs {
        source: SourceArgs {
            snapshot: Some(snapshot_dir),
            live: false,
        },
        action,
        cpu,
        json: true,
        set: set_pairs(settings)?,
    };
    let v = call(py, move || snapshot_cmd::predict_result(&args))?;
    to_py(py, &v)
}

/// Analyses a snapshot, as `kcompact analyze DIR --json`.
#[pyfunction]
#[pyo3(signature = (snapshot_dir, settings=None))]
fn analyze<'py>(
    py: Python<'py>,
    snapshot_dir: PathBuf,
    settings: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let args = AnalyzeArgs {
        source: SourceArgs {
            snapshot: Some(snapshot_dir),
            live: false,
        },
        json: true,
        map: false,
        set: set_pairs(settings)?,
    };
    let v = call(py, move || snapshot_cmd::analyze_result(&args))?;
    to_py(py, &v)
}

/// Ranks the operator's options on a snapshot, as `kcompact advise DIR [--target
/// hugepages=N | --order K [--count N]] --json`.
#[pyfunction]
#[pyo3(signature = (snapshot_dir, target=None, order=None, count=None, settings=None))]
fn advise<'py>(
    py: Python<'py>,
    snapshot_dir: PathBuf,
    target: Option<String>,
    order: Option<u8>,
    count: Option<u64>,
    settings: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let args = AdviseArgs {
        source: SourceArgs {
            snapshot: Some(snapshot_dir),
            live: false,
        },
        target,
        order,
        count,
        json: true,
        set: set_pairs(settings)?,
    };
    let v = call(py, move || kcompact_cli::advise_cmd::advise_result(&args))?;
    to_py(py, &v)
}

/// Replays a kmem trace, as `kcompact replay TRACE [--snapshot DIR] --mode MODE
/// [--max-events N] [--strict] --json` (`max_events`' default is the command line's).
#[pyfunction]
#[pyo3(signature = (trace, snapshot=None, mode="exact", mem=None, settings=None, max_events=50_000_000, strict=false))]
#[allow(clippy::too_many_arguments)]
fn replay<'py>(
    py: Python<'py>,
    trace: PathBuf,
    snapshot: Option<PathBuf>,
    mode: &str,
    mem: Option<String>,
    settings: Option<&Bound<'py, PyDict>>,
    max_events: u64,
    strict: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let args = ReplayArgs {
        trace,
        snapshot,
        mode: mode.to_string(),
        json: true,
        out: None,
        force: false,
        end_snapshot: false,
        max_events,
        strict,
        machine: machine_args(mem, settings)?,
    };
    let v = call(py, move || kcompact_cli::replay_cmd::replay_result(&args))?;
    to_py(py, &v)
}

/// The scenarios, as `kcompact scenarios` lists them: name, source, summary, the switch
/// their source compared, their own size and parameters.
#[pyfunction]
fn scenarios<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
    let v: Vec<serde_json::Value> = kcompact::scenario::SCENARIOS
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name, "source": s.source, "summary": s.summary, "ab_key": s.ab_key,
                "mem": s.mem,
                "params": s.params.iter().map(|(k, d, m)| serde_json::json!({"name": k, "default": d, "meaning": m})).collect::<Vec<_>>(),
            })
        })
        .collect();
    to_py(py, &serde_json::Value::Array(v))
}

/// The keys `settings` takes, as `kcompact run --set help=1` prints them.
#[pyfunction]
fn settings_help() -> String {
    kcompact_cli::settings::help_text(&[])
}

/// Runs a grid on this machine's cores into the Parquet file `out`, as `kcompact sweep`
/// (rows already in `out` are kept and their runs skipped); returns the rows written.
/// `grid` is a dict: `{"scenario": [...], "mem": [...], "seeds": N or [...],
/// "settings": {KEY: [values]}}`.
#[pyfunction]
#[pyo3(signature = (grid, out=PathBuf::from("results.parquet"), jobs=None))]
fn sweep(
    py: Python<'_>,
    grid: &Bound<'_, PyAny>,
    out: PathBuf,
    jobs: Option<usize>,
) -> PyResult<usize> {
    let grid = to_json(py, grid)?;
    call(py, move || {
        let jobs_ = sweep_cmd::plan(&Grid::from_json(&grid)?)?;
        Ok(sweep_cmd::run_local(&jobs_, &out, jobs, &|_, _| {})?.0)
    })
}

/// The runs of `grid` (JSON) that `out` does not hold yet, each as JSON.
#[pyfunction]
fn _sweep_plan(py: Python<'_>, grid: String, out: PathBuf) -> PyResult<Vec<String>> {
    call(py, move || {
        let jobs = sweep_cmd::plan(&Grid::from_json(&grid)?)?;
        let todo = sweep_cmd::pending(&jobs, &sweep_cmd::existing_rows(&out)?);
        Ok(todo
            .iter()
            .map(|j| serde_json::to_string(j).expect("a job as JSON"))
            .collect())
    })
}

/// Runs one job of [`_sweep_plan`]; its row as JSON.
#[pyfunction]
fn _sweep_run(py: Python<'_>, job: String) -> PyResult<String> {
    call(py, move || {
        let job: Job = serde_json::from_str(&job)
            .or_else(|e| kcompact_cli::ui::usage(format!("not a sweep job: {e}")))?;
        Ok(row_to_json(&sweep_cmd::run_job(&job)))
    })
}

/// Merges rows (JSON) of `grid`'s runs into `out` and writes it; the rows written.
#[pyfunction]
fn _sweep_write(py: Python<'_>, grid: String, out: PathBuf, rows: Vec<String>) -> PyResult<usize> {
    call(py, move || {
        let jobs = sweep_cmd::plan(&Grid::from_json(&grid)?)?;
        let rows = rows
            .iter()
            .map(|r| row_from_json(r))
            .collect::<anyhow::Result<Vec<Row>>>()?;
        sweep_cmd::merge_write(&jobs, &out, rows)
    })
}

/// Writes the census of snapshot directories `paths` to the Parquet file `out` on this
/// machine's cores, as `kcompact census`; returns the rows written.
#[pyfunction]
#[pyo3(signature = (paths, out=PathBuf::from("fleet.parquet"), jobs=None))]
fn census(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    out: PathBuf,
    jobs: Option<usize>,
) -> PyResult<usize> {
    call(py, move || {
        Ok(census_cmd::census_local(&paths, &out, jobs, &|| {})?.len())
    })
}

/// The census row of one snapshot directory, as JSON.
#[pyfunction]
fn _census_row(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    call(py, move || Ok(row_to_json(&census_cmd::census_row(&path))))
}

/// Writes census rows (JSON, in order) to `out`.
#[pyfunction]
fn _census_write(py: Python<'_>, out: PathBuf, rows: Vec<String>) -> PyResult<usize> {
    call(py, move || {
        let mut rows = rows
            .iter()
            .map(|r| row_from_json(r))
            .collect::<anyhow::Result<Vec<Row>>>()?;
        census_cmd::write_rows(&out, &mut rows)?;
        Ok(rows.len())
    })
}

/// What a [`Machine`] handle names.
#[derive(Clone, Copy, Debug)]
enum Block {
    /// Kernel memory (an unmovable folio).
    Kernel(FolioId),
    /// Movable memory: anonymous pages `[vpn, vpn + nr)` of the machine's process.
    Anon { vpn: u64, nr: u64 },
}

/// The model behind a [`Machine`].
struct State {
    m: kcompact::Machine,
    /// The process that holds movable allocations (started at the first one).
    pid: Option<u32>,
    /// Its next free virtual page.
    next_vpn: u64,
    /// Allocations by handle (`None` once freed).
    blocks: Vec<Option<Block>>,
}

/// A live model machine for notebooks: allocate and free pages, compact, drop caches and
/// read the kernel's views. Its operations are deterministic (they draw no random
/// numbers; `seed` is kept for workloads written around it).
///
/// `alloc_pages` with a movable mask (`__GFP_MOVABLE`: `GFP_HIGHUSER_MOVABLE`, …) gives
/// anonymous memory of a process the machine keeps, which compaction can migrate; any
/// other mask gives unmovable kernel memory, as `alloc_pages()` for a driver would. The
/// handle stays valid when compaction moves the pages.
#[pyclass(module = "kcompact")]
struct Machine {
    state: State,
    /// Set when an operation panicked: the state may be half-changed.
    broken: Option<String>,
    #[pyo3(get)]
    mem: String,
    #[pyo3(get)]
    seed: u64,
}

impl Machine {
    /// Runs `f` on the model without the GIL; errors and panics become exceptions (and a
    /// panic leaves the machine refusing further calls).
    fn with<T: Send>(
        &mut self,
        py: Python<'_>,
        f: impl FnOnce(&mut State) -> anyhow::Result<T> + Send,
    ) -> PyResult<T> {
        if let Some(why) = &self.broken {
            return Err(PyRuntimeError::new_err(format!(
                "this Machine is unusable after an internal error: {why}"
            )));
        }
        let state = &mut self.state;
        match py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(state)))) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(py_err(e)),
            Err(p) => {
                let why = panic_text(&*p);
                self.broken = Some(why.clone());
                Err(PyRuntimeError::new_err(format!(
                    "kcompact: internal error: {why}"
                )))
            }
        }
    }
}

fn bad<T>(msg: String) -> anyhow::Result<T> {
    kcompact_cli::ui::usage(msg)
}

#[pymethods]
impl Machine {
    /// Boots a machine of `mem` with `settings` (`--set` keys), as `kcompact show` does.
    #[new]
    #[pyo3(signature = (mem="4G", settings=None, seed=1))]
    fn new(
        py: Python<'_>,
        mem: &str,
        settings: Option<&Bound<'_, PyDict>>,
        seed: u64,
    ) -> PyResult<Machine> {
        let args = MachineArgs {
            mem: Some(mem.to_string()),
            set: set_pairs(settings)?,
        };
        let m = call(py, move || Settings::parse(&args)?.boot())?;
        Ok(Machine {
            state: State {
                m,
                pid: None,
                next_vpn: 0,
                blocks: Vec::new(),
            },
            broken: None,
            mem: mem.to_string(),
            seed,
        })
    }

    /// Allocates `2^order` pages with the GFP mask `gfp` (symbolic, as trace output
    /// prints it: `GFP_KERNEL`, `GFP_HIGHUSER_MOVABLE|__GFP_NORETRY`); returns a handle, or
    /// `None` when the allocation fails (after reclaim and compaction, as the mask allows).
    #[pyo3(signature = (order, gfp="GFP_KERNEL"))]
    fn alloc_pages(&mut self, py: Python<'_>, order: u8, gfp: &str) -> PyResult<Option<usize>> {
        let text = gfp.to_string();
        self.with(py, move |st| {
            if order > 10 {
                return bad(format!("order {order}: at most 10 (MAX_PAGE_ORDER)"));
            }
            let (mut gfp, unknown) = Gfp::parse_symbolic(&text);
            if !unknown.is_empty() {
                return bad(format!(
                    "gfp {text:?}: unknown flags {}",
                    unknown.join(", ")
                ));
            }
            if order > 0 {
                gfp = gfp | Gfp::COMP;
            }
            let block = if gfp.contains(Gfp::MOVABLE) {
                let pid = match st.pid {
                    Some(p) => p,
                    None => *st.pid.insert(st.m.new_process()),
                };
                let nr = 1u64 << order;
                let vpn = st.next_vpn.next_multiple_of(nr);
                match st.m.fault_anon_gfp(pid, vpn, Order(order), gfp) {
                    Ok(_) => {
                        st.next_vpn = vpn + nr;
                        Some(Block::Anon { vpn, nr })
                    }
                    Err(_) => None,
                }
            } else {
                st.m.alloc_kernel_gfp(gfp, Order(order), 0)
                    .map(Block::Kernel)
            };
            Ok(block.map(|b| {
                st.blocks.push(Some(b));
                st.blocks.len() - 1
            }))
        })
    }

    /// Frees what `alloc_pages` returned `handle` for.
    fn free_pages(&mut self, py: Python<'_>, handle: usize) -> PyResult<()> {
        self.with(py, move |st| {
            let Some(b) = st.blocks.get_mut(handle).and_then(Option::take) else {
                return bad(format!(
                    "handle {handle}: no such allocation (freed already?)"
                ));
            };
            match b {
                Block::Kernel(id) => st.m.free_kernel(id),
                Block::Anon { vpn, nr } => {
                    let pid = st.pid.expect("movable memory has its process");
                    st.m.munmap(pid, vpn, nr);
                }
            }
            Ok(())
        })
    }

    /// `echo 1 > /proc/sys/vm/compact_memory`: every zone compacted; how each zone's
    /// compaction ended, as `mm_compaction_end` reports it.
    fn compact_memory<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = self.with(py, |st| {
            let ends = st.m.compact_memory();
            Ok(out::compact_ends_json(&st.m, &ends))
        })?;
        to_py(py, &v)
    }

    /// `echo LEVEL > /proc/sys/vm/drop_caches` (1: page cache, 2: slab, 3: both); the
    /// pages freed.
    #[pyo3(signature = (level=3))]
    fn drop_caches(&mut self, py: Python<'_>, level: u32) -> PyResult<u64> {
        self.with(py, move |st| {
            if !(1..=3).contains(&level) {
                return bad(format!("drop_caches level {level}: 1, 2 or 3"));
            }
            Ok(st.m.drop_caches(level))
        })
    }

    /// Lets kswapd and kcompactd finish what they were woken for (simulated time moves);
    /// returns what the model's `settle` returns (the simulated nanoseconds it ran).
    fn settle(&mut self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |st| Ok(st.m.settle()))
    }

    /// Writes a run-time tunable (`sysctl vm.KEY=VALUE`; `settings_help()` lists them).
    fn sysctl(&mut self, py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let d = PyDict::new(py);
        d.set_item(key, value)?;
        let set = set_pairs(Some(&d))?;
        self.with(py, move |st| {
            Settings::parse(&MachineArgs { mem: None, set })?
                .apply_runtime(&mut st.m, true)
                .map(|_| ())
        })
    }

    /// `/proc/buddyinfo`.
    fn buddyinfo(&mut self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |st| Ok(kcompact::views::procfs::buddyinfo(&st.m)))
    }

    /// `/proc/pagetypeinfo`.
    fn pagetypeinfo(&mut self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |st| Ok(kcompact::views::procfs::pagetypeinfo(&st.m)))
    }

    /// `/proc/zoneinfo`.
    fn zoneinfo(&mut self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |st| Ok(kcompact::views::procfs::zoneinfo(&st.m)))
    }

    /// Every vmstat counter by name (result.json's `vmstat`).
    fn vmstat<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = self.with(py, |st| {
            Ok(serde_json::Value::Object(out::vmstat_json(&st.m)))
        })?;
        to_py(py, &v)
    }

    /// Every populated zone's free blocks per order, per-CPU pages and managed pages
    /// (result.json's `zones`).
    fn zones<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = self.with(py, |st| Ok(out::zones_json(&st.m)))?;
        to_py(py, &v)
    }

    /// The physical memory map of the HTML report (report.json's map data): a cell per
    /// pageblock (or group of them, at most `cells`), its migratetype and pages by kind.
    #[pyo3(signature = (cells=65536))]
    fn memory_map<'py>(&mut self, py: Python<'py>, cells: usize) -> PyResult<Bound<'py, PyAny>> {
        let v = self.with(py, move |st| {
            if cells == 0 {
                return bad("memory_map cells: at least 1".to_string());
            }
            Ok(report::map_json(&kcompact::views::mapdata::memory_map(
                &st.m, cells,
            )))
        })?;
        to_py(py, &v)
    }

    /// Checks every invariant of the model's state; raises `RuntimeError` naming the
    /// first broken one.
    fn verify(&mut self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |st| {
            kcompact::verify::verify(&st.m)
                .map(drop)
                .map_err(|e| anyhow::anyhow!("the model's state is inconsistent:\n{e}"))
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Machine(mem={:?}, seed={}, free_pages={})",
            self.mem,
            self.seed,
            self.state.m.nr_free_pages()
        )
    }
}

#[pymodule]
fn _kcompact(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(ab, m)?)?;
    m.add_function(wrap_pyfunction!(predict, m)?)?;
    m.add_function(wrap_pyfunction!(analyze, m)?)?;
    m.add_function(wrap_pyfunction!(advise, m)?)?;
    m.add_function(wrap_pyfunction!(replay, m)?)?;
    m.add_function(wrap_pyfunction!(scenarios, m)?)?;
    m.add_function(wrap_pyfunction!(settings_help, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add_function(wrap_pyfunction!(census, m)?)?;
    m.add_function(wrap_pyfunction!(_sweep_plan, m)?)?;
    m.add_function(wrap_pyfunction!(_sweep_run, m)?)?;
    m.add_function(wrap_pyfunction!(_sweep_write, m)?)?;
    m.add_function(wrap_pyfunction!(_census_row, m)?)?;
    m.add_function(wrap_pyfunction!(_census_write, m)?)?;
    m.add_class::<Machine>()?;
    Ok(())
}
