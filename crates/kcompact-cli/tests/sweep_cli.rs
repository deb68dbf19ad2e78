//! End-to-end tests of `kcompact sweep` and `kcompact census`: the Parquet rows (one per
//! run or snapshot, the columns the command documents), the same rows whatever the number
//! of threads, resuming, a snapshot that fails to load, and bad input (exit 2, one line
//! naming the file).

mod common;

use common::{kcompact, stderr, stdout};
use kcompact_cli::table::{get, read_parquet, Cell, Row};
use std::path::{Path, PathBuf};

/// A fresh directory under the target directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sweep_cli-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small grid: 2 scenarios × 2 compaction settings × 2 seeds on a 64 MiB model.
const GRID: &str = r#"
scenario = ["file-holes", "highalloc"]
mem = "64M"
seeds = 2
[settings]
compaction = ["on", "off"]
"#;

fn sweep(dir: &Path, grid: &str, out: &str, extra: &[&str]) -> std::process::Output {
    let g = dir.join("grid.toml");
    std::fs::write(&g, grid).unwrap();
    let out = dir.join(out);
    let mut args = vec!["sweep", g.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    kcompact(&args)
}

fn sweep_ok(dir: &Path, grid: &str, out: &str, extra: &[&str]) -> Vec<Row> {
    let o = sweep(dir, grid, out, extra);
    assert_eq!(o.status.code(), Some(0), "sweep: {}", stderr(&o));
    read_parquet(&dir.join(out)).expect("the sweep's table")
}

fn text<'a>(row: &'a Row, name: &str) -> &'a str {
    match get(row, name) {
        Some(Cell::Str(s)) => s,
        c => panic!("{name}: {c:?}"),
    }
}

/// A row without its wall time.
fn content(row: &Row) -> Row {
    row.iter().filter(|(n, _)| n != "wall_s").cloned().collect()
}

#[test]
fn sweep_writes_a_row_per_run_with_settings_metrics_and_counters() {
    let d = scratch("rows");
    let rows = sweep_ok(&d, GRID, "r.parquet", &[]);
    let keys: Vec<&str> = rows.iter().map(|r| text(r, "run")).collect();
    assert_eq!(
        keys,
        [
            "file-holes mem=64M compaction=on seed=1",
            "file-holes mem=64M compaction=on seed=2",
            "file-holes mem=64M compaction=off seed=1",
            "file-holes mem=64M compaction=off seed=2",
            "highalloc mem=64M compaction=on seed=1",
            "highalloc mem=64M compaction=on seed=2",
            "highalloc mem=64M compaction=off seed=1",
            "highalloc mem=64M compaction=off seed=2",
        ]
    );
    for r in &rows {
        assert!(get(r, "error").is_none(), "{r:?}");
        assert_eq!(get(r, "mem_bytes"), Some(&Cell::Int(64 << 20)));
        for col in [
            "success_pct",
            "compact_stall",
            "pgmigrate_success",
            "pgscan_kswapd",
        ] {
            assert!(get(r, col).is_some(), "no {col} in {r:?}");
        }
        assert!(matches!(get(r, "wall_s"), Some(Cell::Float(t)) if *t > 0.0));
    }
    // A row is the run's result.json: the same metrics and counters as `run --out`.
    let out = d.join("run");
    let o = kcompact(&[
        "run",
        "highalloc",
        "--mem",
        "64M",
        "--seed",
        "2",
        "--set",
        "compaction=off",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    let row = &rows[7];
    assert_eq!(get(row, "compaction"), Some(&Cell::Str("off".into())));
    assert_eq!(get(row, "seed"), Some(&Cell::Int(2)));
    let mut compared = 0;
    for group in ["metrics", "vmstat"] {
        for (k, v) in j[group].as_object().unwrap() {
            assert_eq!(
                get(row, k).cloned(),
                Some(kcompact_cli::table::cell_of_json(v)),
                "{group}.{k}"
            );
            compared += 1;
        }
    }
    assert!(compared > 50, "{compared} columns compared");
}

#[test]
fn sweep_rows_are_the_same_on_one_thread_and_on_many() {
    let d = scratch("threads");
    let one = sweep_ok(&d, GRID, "one.parquet", &["--jobs", "1"]);
    let many = sweep_ok(&d, GRID, "many.parquet", &["--jobs", "3"]);
    assert_eq!(one.len(), 8);
    let (a, b): (Vec<Row>, Vec<Row>) = (
        one.iter().map(content).collect(),
        many.iter().map(content).collect(),
    );
    assert_eq!(a, b);
}

#[test]
fn sweep_resumes_keeping_the_rows_it_has() {
    let d = scratch("resume");
    let small = GRID.replace("seeds = 2", "seeds = 1");
    let first = sweep_ok(&d, &small, "r.parquet", &[]);
    assert_eq!(first.len(), 4);
    let o = sweep(&d, GRID, "r.parquet", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("8 runs, 4 already in"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains(": 4 runs in"), "{}", stdout(&o));
    let second = read_parquet(&d.join("r.parquet")).unwrap();
    assert_eq!(second.len(), 8);
    // The kept rows are the first sweep's, wall time included (they were not run again).
    for r in &first {
        assert!(second.contains(r), "{} lost or changed", text(r, "run"));
    }
    // Nothing left: nothing runs and the table stays.
    let o = sweep(&d, GRID, "r.parquet", &[]);
    assert!(stdout(&o).contains(": 0 runs in"), "{}", stdout(&o));
    assert_eq!(read_parquet(&d.join("r.parquet")).unwrap(), second);
}

#[test]
fn sweep_rejects_bad_grids_naming_the_file_or_the_run() {
    let d = scratch("bad");
    for (grid, want) in [
        (
            "scenario = \"highalloc\"\nbogus = 1\n",
            "grid.toml: TOML parse error at line 2, column 1",
        ),
        ("scenario = \"nope\"\n", "unknown scenario 'nope'"),
        (
            "scenario = \"highalloc\"\n[settings]\ncompaction = [\"on\", \"maybe\"]\n",
            "grid run highalloc mem=1G compaction=maybe: --set compaction=maybe",
        ),
        (
            "scenario = \"highalloc\"\nmem = \"1Q\"\n",
            "grid run highalloc mem=1Q: ",
        ),
        (
            "scenario = \"highalloc\"\nseeds = [1, 1]\n",
            "the same run twice",
        ),
        (
            "scenario = \"highalloc\"\n[settings]\nseed = 3\n",
            "settings.seed: a column of every row",
        ),
        ("scenario = [", "grid.toml: "),
    ] {
        let o = sweep(&d, grid, "r.parquet", &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{grid}: {err}");
        assert!(err.contains(want), "{grid}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{grid}: {err}");
        assert!(!d.join("r.parquet").exists(), "{grid}");
    }
    // An output that is not a sweep's table is refused, not overwritten.
    std::fs::write(d.join("x.parquet"), "not parquet").unwrap();
    let o = sweep(&d, GRID, "x.parquet", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("x.parquet: not a Parquet file"));
    assert_eq!(std::fs::read(d.join("x.parquet")).unwrap(), b"not parquet");
    let o = sweep(&d, GRID, "r.parquet", &["--jobs", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

fn realkernel(name: &str) -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/realkernel")
        .join(name)
        .join("before");
    d.is_dir().then_some(d)
}

#[test]
fn census_gives_a_row_per_snapshot_and_an_error_row_for_a_bad_one() {
    let (Some(a), Some(b)) = (realkernel("A2_g4_r1"), realkernel("C_pin")) else {
        eprintln!("skipped: ../shared/data/realkernel is not here");
        return;
    };
    let d = scratch("census");
    let bad = d.join("not-a-snapshot");
    std::fs::create_dir_all(&bad).unwrap();
    let out = d.join("fleet.parquet");
    let args = [
        "census",
        a.to_str().unwrap(),
        bad.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let o = kcompact(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("3 rows"), "{}", stdout(&o));
    assert!(stdout(&o).contains("1 failed to load"), "{}", stdout(&o));
    let rows = read_parquet(&out).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(text(&rows[1], "snapshot"), bad.to_str().unwrap());
    assert!(
        text(&rows[1], "error").contains("meta.txt"),
        "{:?}",
        rows[1]
    );
    assert!(get(&rows[1], "hugepages_now").is_none());
    // The good rows carry `analyze`'s figures for the same snapshot.
    for (row, dir) in [(&rows[0], &a), (&rows[2], &b)] {
        assert!(get(row, "error").is_none(), "{row:?}");
        let o = kcompact(&["analyze", dir.to_str().unwrap(), "--json"]);
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        for col in [
            "hugepages_now",
            "hugepages_after_compaction",
            "hugepages_after_drop_caches",
        ] {
            assert_eq!(
                get(row, col),
                Some(&Cell::Int(j[col].as_i64().unwrap())),
                "{col} of {}",
                dir.display()
            );
        }
        for col in [
            "kernel",
            "uptime_s",
            "mem_total_bytes",
            "zones",
            "cpus",
            "pcp_pages",
            "unusable_index_o9",
        ] {
            assert!(get(row, col).is_some(), "no {col} in {row:?}");
        }
        assert!(
            matches!(get(row, "unusable_index_o9"), Some(Cell::Float(u)) if (0.0..=1.0).contains(u))
        );
    }
    // Every loaded snapshot has every blocker column (0 where none of that kind).
    let blockers = |r: &Row| -> Vec<String> {
        r.iter()
            .filter(|(n, _)| n.starts_with("blocked_"))
            .map(|(n, _)| n.clone())
            .collect()
    };
    assert!(!blockers(&rows[0]).is_empty());
    assert_eq!(blockers(&rows[0]), blockers(&rows[2]));
}
