"""kcompact.sweep and kcompact.census: the command line's tables, from Python, and read
back with pyarrow, pandas and DuckDB."""

import pytest

import kcompact
from conftest import SHARED, realkernel

pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")

GRID = {
    "scenario": ["file-holes", "highalloc"],
    "mem": "128M",
    "seeds": 2,
    "settings": {"compaction": ["on", "off"]},
}

GRID_TOML = """
scenario = ["file-holes", "highalloc"]
mem = "128M"
seeds = 2
[settings]
compaction = ["on", "off"]
"""


def content(path):
    """The table without its wall times, sorted by run."""
    return pq.read_table(path).drop_columns(["wall_s"]).sort_by("run")


def test_sweep_writes_the_cli_table(cli, tmp_path):
    assert kcompact.sweep(GRID, out=tmp_path / "py.parquet") == 8
    (tmp_path / "grid.toml").write_text(GRID_TOML)
    cli("sweep", tmp_path / "grid.toml", "--out", tmp_path / "cli.parquet")
    a, b = content(tmp_path / "py.parquet"), content(tmp_path / "cli.parquet")
    assert a.schema == b.schema
    assert a.equals(b)
    t = pq.read_table(tmp_path / "py.parquet")
    assert t.num_rows == 8
    for col in ["run", "scenario", "mem", "seed", "compaction", 
                "success_pct", "compact_stall", "pgmigrate_success", "wall_s"]:
        assert col in t.column_names, col


def test_sweep_resumes_from_its_table(tmp_path):
    out = tmp_path / "r.parquet"
    small = dict(GRID, seeds=1)
    assert kcompact.sweep(small, out=out, jobs=1) == 4
    first = pq.read_table(out).to_pylist()
    assert kcompact.sweep(GRID, out=out) == 8
    second = pq.read_table(out).to_pylist()
    # The first sweep's rows are kept as they were, wall times included.
    for row in first:
        assert row in second, row["run"]
    assert kcompact.sweep(GRID, out=out) == 8
    assert pq.read_table(out).to_pylist() == second


def test_sweep_bad_grids_are_value_errors(tmp_path):
    out = tmp_path / "r.parquet"
    for grid, match in [
        ({"scenario": "nope"}, "unknown scenario"),
        ({"scenario": "highalloc", "bogus": 1}, "unknown field `bogus`"),
        ({"scenario": "highalloc", "settings": {"compaction": ["on", "maybe"]}},
         "grid run highalloc mem=1G compaction=maybe"),
        ([1, 2], "grid"),
    ]:
        with pytest.raises(ValueError, match=match):
            kcompact.sweep(grid, out=out)
        assert not out.exists()
    with pytest.raises(TypeError):
        kcompact.sweep({"scenario": object()}, out=out)


def test_duckdb_reads_the_sweep(tmp_path):
    duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed")
    out = tmp_path / "results.parquet"
    kcompact.sweep(GRID, out=out)
    got = duckdb.sql(
        f"select scenario, compaction, avg(success_pct) as s from '{out}' "
        "group by all order by all"
    ).fetchall()
    df = pq.read_table(out).to_pandas()
    want = df.groupby(["scenario", "compaction"])["success_pct"].mean()
    assert [(a, b) for a, b, _ in got] == list(want.index)
    assert [s for _, _, s in got] == pytest.approx(list(want.values))
    on = dict(((a, b), s) for a, b, s in got)
    assert on[("file-holes", "on")] > on[("file-holes", "off")]


def test_census_writes_a_row_per_snapshot(cli, tmp_path):
    snaps = [realkernel("A2_g4_r1"), realkernel("C_pin"), tmp_path / "missing"]
    assert kcompact.census(snaps, out=tmp_path / "py.parquet") == 3
    cli("census", *snaps, "--out", tmp_path / "cli.parquet")
    a = pq.read_table(tmp_path / "py.parquet").drop_columns(["wall_s"])
    b = pq.read_table(tmp_path / "cli.parquet").drop_columns(["wall_s"])
    assert a.equals(b)
    rows = a.to_pylist()
    assert rows[2]["error"] and "missing" in rows[2]["error"]
    assert rows[2]["hugepages_now"] is None
    analyzed = kcompact.analyze(snaps[0])
    assert rows[0]["hugepages_now"] == analyzed["hugepages_now"]
    assert rows[0]["hugepages_after_compaction"] == analyzed["hugepages_after_compaction"]
    assert rows[0]["error"] is None
    assert 0 <= rows[0]["unusable_index_o9"] <= 1
