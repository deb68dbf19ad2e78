//! `kcompact census SNAPSHOT... --out FILE.parquet`: a fleet's snapshots, one Parquet row
//! each, loaded and analysed on every core.
//!
//! A row holds the snapshot's path, the machine (kernel, uptime, memory, zones, CPUs), its
//! free and per-CPU pages, `analyze`'s huge pages now, after compaction and after dropping
//! caches, the machine's unusable free space index at order 9 (and each zone's), the
//! pageblocks that stay no huge page by what blocks them (`blocked_*`, 0 where none), and
//! the wall time. A snapshot that fails to load or analyse gets a row with its `error`.
//! The Python package's `kcompact.dask.census` makes and writes rows through the same
//! functions ([`census_row`], [`write_rows`]).

use crate::cli::CensusArgs;
use crate::snapshot_cmd::analysis;
use crate::snapshot_dir::load_dir;
use crate::table::{self, Cell, Row};
use crate::ui::{outln, panic_text, progress_bar, usage};
use kcompact::units::{Order, NR_PAGE_ORDERS};
use kcompact::views::extfrag::{unusable_free_index, ContigPageInfo};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Prefix of the blocker columns.
const BLOCKED: &str = "blocked_";

/// `key=value` of meta.txt.
fn meta_field<'a>(meta: &'a str, key: &str) -> Option<&'a str> {
    meta.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
}

/// The column of a blocker: its reason's words before any parenthesis, snake_case
/// (`unmovable slab` → `blocked_unmovable_slab`).
fn blocker_column(reason: &str) -> String {
    let words = reason.split('(').next().unwrap_or(reason);
    let snake: Vec<&str> = words
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    format!("{BLOCKED}{}", snake.join("_"))
}

/// The unusable free space index at order 9 of free blocks `nr_free`, as the kernel prints
/// it (`unusable_free_index()` in thousandths, here a fraction).
fn unusable_o9(nr_free: &[u64; NR_PAGE_ORDERS]) -> f64 {
    unusable_free_index(Order(9), &ContigPageInfo::new(nr_free, Order(9))) as f64 / 1000.0
}

/// The facts of the snapshot in `dir` (see the module documentation).
fn facts(dir: &Path, row: &mut Row) -> anyhow::Result<()> {
    let loaded = load_dir(dir)?;
    let meta = std::fs::read_to_string(dir.join("meta.txt")).unwrap_or_default();
    let text = |k: &str| {
        meta_field(&meta, k)
            .map(|v| Cell::Str(v.to_string()))
            .unwrap_or(Cell::Null)
    };
    let float = |k: &str| {
        meta_field(&meta, k)
            .and_then(|v| v.parse().ok())
            .map(Cell::Float)
            .unwrap_or(Cell::Null)
    };
    let mut put = |name: &str, c: Cell| {
        if c != Cell::Null {
            row.push((name.to_string(), c));
        }
    };
    put("label", text("label"));
    put("date_utc", text("date_utc"));
    put("kernel", text("uname_r"));
    put("uptime_s", float("uptime"));
    let mem_total = std::fs::read_to_string(dir.join("meminfo"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        });
    put(
        "mem_total_bytes",
        mem_total.map(|k| Cell::Int(k * 1024)).unwrap_or(Cell::Null),
    );
    let m = &loaded.machine;
    let zones: Vec<_> = m.zones.iter().filter(|z| z.is_populated()).collect();
    put("pfns", Cell::Int(loaded.flags.len() as i64));
    put("nodes", Cell::Int(m.nr_nodes() as i64));
    put(
        "zones",
        Cell::Str(zones.iter().map(|z| z.name()).collect::<Vec<_>>().join(",")),
    );
    put("cpus", Cell::Int(m.nr_cpus() as i64));
    put("managed_pages", Cell::Int(m.managed_pages() as i64));
    put("free_pages", Cell::Int(m.nr_free_pages() as i64));
    put(
        "pcp_pages",
        Cell::Int(zones.iter().map(|z| z.pcp_pages()).sum::<u64>() as i64),
    );
    let a = analysis(&loaded)?;
    put("hugepages_now", Cell::Int(a.now as i64));
    put(
        "hugepages_after_compaction",
        Cell::Int(a.after_compaction as i64),
    );
    put(
        "hugepages_after_drop_caches",
        Cell::Int(a.after_drop_caches as i64),
    );
    put(
        "unusable_index_o9",
        Cell::Float(unusable_o9(&m.free_by_order())),
    );
    for z in &zones {
        let node = if z.node.0 == 0 {
            String::new()
        } else {
            format!("_node{}", z.node.0)
        };
        put(
            &format!("unusable_index_o9_{}{node}", z.name().to_ascii_lowercase()),
            Cell::Float(unusable_o9(&z.free_by_order())),
        );
    }
    let mut blocked: Vec<(String, u64)> = a
        .ranked
        .iter()
        .map(|(r, n)| (blocker_column(r), *n))
        .collect();
    blocked.sort();
    for (c, n) in blocked {
        put(&c, Cell::Int(n as i64));
    }
    Ok(())
}

/// The row of the snapshot in `dir`; a snapshot that fails to load (or panics the
/// loader) gets its `error` instead of the facts.
pub fn census_row(dir: &Path) -> Row {
    let t0 = Instant::now();
    let mut row: Row = vec![("snapshot".to_string(), Cell::Str(dir.display().to_string()))];
    let mut got = Row::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| facts(dir, &mut got)));
    match r {
        Ok(Ok(())) => row.extend(got),
        Ok(Err(e)) => row.push(("error".to_string(), Cell::Str(format!("{e:#}")))),
        Err(p) => row.push((
            "error".to_string(),
            Cell::Str(format!("panic: {}", panic_text(&*p))),
        )),
    }
    row.push((
        "wall_s".to_string(),
        Cell::Float(t0.elapsed().as_secs_f64()),
    ));
    row
}

/// Writes the census rows (in the order given) to `out`: every snapshot that loaded gets
/// every blocker column of the table, 0 where nothing of that kind blocks it.
pub fn write_rows(out: &Path, rows: &mut [Row]) -> anyhow::Result<()> {
    let mut kinds: Vec<String> = rows
        .iter()
        .flatten()
        .filter(|(n, _)| n.starts_with(BLOCKED))
        .map(|(n, _)| n.clone())
        .collect();
    kinds.sort();
    kinds.dedup();
    for row in rows.iter_mut().filter(|r| table::get(r, "error").is_none()) {
        let at = row
            .iter()
            .position(|(n, _)| n.starts_with(BLOCKED) || n == "wall_s")
            .unwrap_or(row.len());
        let cells: Vec<(String, Cell)> = kinds
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    table::get(row, k).cloned().unwrap_or(Cell::Int(0)),
                )
            })
            .collect();
        row.retain(|(n, _)| !n.starts_with(BLOCKED));
        row.splice(at..at, cells);
    }
    table::write_parquet(out, rows)
}

/// The census of `dirs` on `threads` threads (every core if `None`), written to `out`;
/// `progress()` after each snapshot. Returns the rows, in the order of `dirs`.
pub fn census_local(
    dirs: &[PathBuf],
    out: &Path,
    threads: Option<usize>,
    progress: &(dyn Fn() + Sync),
) -> anyhow::Result<Vec<Row>> {
    use rayon::prelude::*;
    let mut b = rayon::ThreadPoolBuilder::new();
    match threads {
        Some(0) => return usage("--jobs 0: at least 1"),
        Some(n) => b = b.num_threads(n),
        None => {}
    }
    let pool = b.build()?;
    let mut rows: Vec<Row> = pool.install(|| {
        dirs.par_iter()
            .map(|d| {
                let r = census_row(d);
                progress();
                r
            })
            .collect()
    });
    write_rows(out, &mut rows)?;
    Ok(rows)
}

/// `kcompact census SNAPSHOT... --out FILE.parquet [--jobs N]`.
pub fn census(args: CensusArgs) -> anyhow::Result<()> {
    let bar = progress_bar(
        args.snapshots.len() as u64,
        "{bar:40} {pos}/{len} snapshots {elapsed}",
    );
    let t0 = Instant::now();
    let rows = census_local(&args.snapshots, &args.out, args.jobs, &|| {
        if let Some(b) = &bar {
            b.inc(1);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let failed: Vec<String> = rows
        .iter()
        .filter_map(
            |r| match (table::get(r, "snapshot"), table::get(r, "error")) {
                (Some(Cell::Str(s)), Some(Cell::Str(e))) => Some(format!("  {s}: {e}")),
                _ => None,
            },
        )
        .collect();
    let n = rows.len();
    let secs = t0.elapsed().as_secs_f64();
    outln!(
        "wrote {} ({n} rows): {n} snapshots in {secs:.1} s ({:.2} s each on {} threads); {} failed to load",
        args.out.display(),
        secs / n as f64,
        args.jobs.unwrap_or_else(rayon::current_num_threads),
        failed.len()
    );
    for f in failed {
        outln!("{f}");
    }
    Ok(())
}
