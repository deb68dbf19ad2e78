#!/usr/bin/env python3
"""Fits the compaction part of kcompact's cost model to the real kernel's timings.

Reads every real-kernel case in ../shared/data/realkernel (or the directory given): the
wall time of `echo 1 > /proc/sys/vm/compact_memory` and the counters it moved
(compact_migrate_scanned, compact_free_scanned, pgmigrate_success) — expA.log and
vmstat_delta for the A cases, expC.log's per-pass rows for the C cases — and fits
    time = a * migrate_scanned + b * free_scanned + c * migrated
by least squares on the relative error. Prints a, b, c in ns per page and each case's
error. The defaults of CostModel (crates/kcompact/src/clock/mod.rs) come from this fit.
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "data", "realkernel")
rows = []
for case in sorted(os.listdir(root)):
    d = os.path.join(root, case)
    log_a, log_c = os.path.join(d, "expA.log"), os.path.join(d, "expC.log")
    if os.path.exists(log_a):
        ms = int(re.search(r"compact_memory_ms=(\d+)", open(log_a).read()).group(1))
        v = dict(l.split() for l in open(os.path.join(d, "vmstat_delta")) if l.strip())
        rows.append((case, ms, int(v["compact_migrate_scanned"]),
                     int(v["compact_free_scanned"]), int(v["pgmigrate_success"])))
    elif os.path.exists(log_c):
        lines = open(log_c).read().splitlines()
        start = next(i for i, l in enumerate(lines) if l.startswith("# pass ms"))
        for l in lines[start + 1:]:
            m = re.match(r"(\d+) (\d+) \d+ \| (\d+) (\d+) \d+ (\d+)", l)
            if not m:
                break
            p, ms, ms_, fs, mig = m.groups()
            rows.append((f"{case} pass {p}", int(ms), int(ms_), int(fs), int(mig)))
if not rows:
    sys.exit(f"no cases under {root}")


def solve(a, b):
    n = len(b)
    m = [r[:] + [b[i]] for i, r in enumerate(a)]
    for i in range(n):
        p = max(range(i, n), key=lambda r: abs(m[r][i]))
        m[i], m[p] = m[p], m[i]
        for r in range(n):
            if r != i:
                f = m[r][i] / m[i][i]
                m[r] = [x - f * y for x, y in zip(m[r], m[i])]
    return [m[i][n] / m[i][i] for i in range(n)]


x = [[r[2] / (r[1] * 1e6), r[3] / (r[1] * 1e6), r[4] / (r[1] * 1e6)] for r in rows]
normal = [[sum(v[i] * v[j] for v in x) for j in range(3)] for i in range(3)]
coef = solve(normal, [sum(v[i] for v in x) for i in range(3)])
print("ns per page: migrate_scan %.2f  free_scan %.2f  migrate_page %.1f" % tuple(coef))
print("%-16s %8s %8s %7s" % ("case", "kernel", "model", "error"))
for r in rows:
    t = (coef[0] * r[2] + coef[1] * r[3] + coef[2] * r[4]) / 1e6
    print("%-16s %6d ms %6.0f ms %+6.1f%%" % (r[0], r[1], t, 100 * (t - r[1]) / r[1]))
