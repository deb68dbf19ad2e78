"""kcompact: a deterministic model of Linux memory anti-fragmentation and compaction.

The functions are the command line's own (the same settings, the same result.json and
``--json`` contents, the same sweep and census rows), called in-process:

- ``run(scenario, mem=None, seed=1, settings=None)`` -> result.json's content
- ``ab(scenario, toggle, seeds=5, mem=None, settings=None)`` -> ``ab --json``
- ``predict(snapshot_dir, action, settings=None, cpu=0)`` -> ``predict --json``
- ``analyze(snapshot_dir, settings=None)`` -> ``analyze --json``
- ``advise(snapshot_dir, target=None, order=None, count=None, settings=None)`` -> ``advise
  --json`` (``target="hugepages=N"``, or ``order=K``)
- ``replay(trace, snapshot=None, mode="exact", mem=None, settings=None, max_events=50_000_000,
  strict=False)`` -> ``replay --json``
- ``sweep(grid, out="results.parquet", jobs=None)``, ``census(paths, out="fleet.parquet")``:
  Parquet tables on this machine's cores; ``kcompact.dask`` runs them on a cluster
- ``Machine(mem="4G", settings=None, seed=1)``: a live model
- ``scenarios()``, ``settings_help()``

Bad input raises ``ValueError`` with the command line's message; any other failure
``RuntimeError``.
"""

from kcompact._kcompact import (
    Machine,
    __version__,
    ab,
    advise,
    analyze,
    census,
    predict,
    replay,
    run,
    scenarios,
    settings_help,
    sweep,
)

__all__ = [
    "Machine",
    "__version__",
    "ab",
    "advise",
    "analyze",
    "census",
    "predict",
    "replay",
    "run",
    "scenarios",
    "settings_help",
    "sweep",
]
