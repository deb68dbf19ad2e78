"""Sweeps and censuses on a Dask ``distributed.Client``: any deployment (LocalCluster,
SSH, Kubernetes, Slurm through dask-jobqueue), each worker with ``kcompact`` installed.

The runs are planned, run and written by the same functions as ``kcompact sweep`` and
``kcompact census`` (the Rust side of this package), so the table is the one the command
line writes for the same grid: the same rows in the same order, wall times aside.
"""

import json
import os
import time

from kcompact import _kcompact

# How often a sweep rewrites its output while runs come back (an interrupted sweep
# resumes from it).
CHECKPOINT_S = 10.0


def _run(job):
    # On a worker: one run, its row as JSON text.
    return _kcompact._sweep_run(job)


def _census_row(path):
    # On a worker: one snapshot, its row as JSON text.
    return _kcompact._census_row(path)


def sweep(grid, client, out="results.parquet"):
    """Runs ``grid`` on ``client``'s workers and writes the Parquet file ``out``.

    ``grid`` is a dict: ``{"scenario": [...], "mem": [...], "seeds": N or [...],
    "settings": {KEY: [values]}}``, the cross product of its values (as a sweep's
    GRID.toml). Rows already in ``out`` are kept and their runs skipped. Returns the
    number of rows written.
    """
    from distributed import as_completed

    grid_json = json.dumps(grid)
    out = os.fspath(out)
    jobs = _kcompact._sweep_plan(grid_json, out)
    if not jobs:
        return _kcompact._sweep_write(grid_json, out, [])
    futures = client.map(_run, jobs, pure=False)
    rows = []
    last = time.monotonic()
    for fut in as_completed(futures):
        rows.append(fut.result())
        if time.monotonic() - last >= CHECKPOINT_S and len(rows) < len(jobs):
            _kcompact._sweep_write(grid_json, out, rows)
            last = time.monotonic()
    return _kcompact._sweep_write(grid_json, out, rows)


def census(paths, client, out="fleet.parquet"):
    """One row per snapshot directory of ``paths``, computed on ``client``'s workers
    (each must see the directories: a shared file system), written to the Parquet file
    ``out`` in the order of ``paths``. A snapshot that fails to load gets a row with its
    ``error``. Returns the number of rows written."""
    paths = [os.fspath(p) for p in paths]
    futures = client.map(_census_row, paths, pure=False)
    rows = client.gather(futures)
    return _kcompact._census_write(os.fspath(out), rows)
