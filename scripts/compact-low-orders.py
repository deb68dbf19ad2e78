#!/usr/bin/env python3
"""Free blocks of orders 0-3 in Normal after `compact_memory`: the model's prediction on each
shared real case's before/ snapshot against the kernel's buddyinfo_post_immediate, and the
per-CPU lists after. Usage: scripts/compact-low-orders.py [CASE...] (from the repository root,
after `cargo build --release`; KBIN=PATH runs another binary)."""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K = os.environ.get("KBIN", os.path.join(ROOT, "target/release/kcompact"))
D = os.path.join(ROOT, "../shared/data/realkernel")
# The CPU whose per-CPU list grew during the kernel's compact_memory (zoneinfo_post_immediate).
CPU = {"A2_g4_r1": 1, "A2_g8_r1": 0, "A_g4_r1": 1, "A_g4folio_r1": 0, "A_g4mix_r1": 0, "A_g8_r1": 1}


def normal_buddyinfo(path):
    for line in open(path):
        w = line.split()
        if len(w) > 4 and w[3] == "Normal":
            return [int(x) for x in w[4:15]]
    raise SystemExit(f"{path}: no Normal zone")


def normal_pcp(path):
    text = open(path).read()
    seg = text[text.index("zone   Normal"):]
    end = seg.find("Node 0, zone", 10)
    seg = seg[: end if end > 0 else None]
    return sum(int(x) for x in re.findall(r"count:\s+(\d+)", seg))


for case in sys.argv[1:] or sorted(CPU):
    out = subprocess.run(
        [K, "predict", f"{D}/{case}/before", "--action", "compact", "--json", "--cpu", str(CPU[case])],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        print(case, out.stderr.strip())
        continue
    after = [z for z in json.loads(out.stdout)["after"]["zones"] if z["name"] == "Normal"][0]
    model = after["free_by_order"]
    kernel = normal_buddyinfo(f"{D}/{case}/buddyinfo_post_immediate")
    cells = " ".join(
        f"o{o} {model[o]}/{kernel[o]} ({(model[o] - kernel[o]) / max(kernel[o], 1) * 100:+.0f}%)" for o in range(4)
    )
    pcp_k = normal_pcp(f"{D}/{case}/zoneinfo_post_immediate")
    print(f"{case:14s} {cells}  per-CPU lists {after['pcp_pages']}/{pcp_k}")
