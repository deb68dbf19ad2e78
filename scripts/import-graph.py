#!/usr/bin/env python3
"""The import picture of a crate: which source file uses which, the import circles, the
arrows that run back up, and the largest files and functions.

    scripts/import-graph.py [crates/kcompact/src ...]

A file is a room; `use crate::a::b` or an inline `crate::a::b::C` (and `super::`) is an
arrow to the deepest file that path names (`a/b.rs`, `a/b/mod.rs`, else `a.rs` / `a/mod.rs`).
Test modules (from the first `#[cfg(test)]` on) are left out. Circles are the strongly
connected components of more than one file. Arrows back up: the arrows a greedy
feedback-arc ordering (Eades, Lin and Smyth 1993) must point upward to draw every circle as
floors; with no circle there are none. Function lengths run from the `fn` line to its
closing brace at the same indentation.
"""
import os
import re
import sys
from collections import defaultdict


def rust_files(root):
    for d, _, fs in os.walk(root):
        for f in sorted(fs):
            if f.endswith(".rs"):
                yield os.path.join(d, f)


def module_of(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel


def resolve(root, parts, known):
    """The deepest known file for module path `parts`."""
    for n in range(len(parts), 0, -1):
        m = tuple(parts[:n])
        if m in known:
            return m
    return None


def expand_use(text):
    """`a::{b, c::{d}}` -> ['a::b', 'a::c::d'] (good enough for imports)."""
    text = text.strip()
    m = re.match(r"^(.*?)\{(.*)\}$", text, re.S)
    if not m:
        return [text]
    prefix, inner = m.group(1), m.group(2)
    out, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    res = []
    for o in out:
        if o.strip():
            res.extend(expand_use(prefix + o.strip()))
    return res


def edges_of(root, path, known):
    src = open(path, encoding="utf-8").read()
    src = src.split("#[cfg(test)]")[0]
    src = re.sub(r"//[^\n]*", "", src)
    me = tuple(module_of(root, path))
    # A file named foo.rs or foo/mod.rs is module `me`; `super` is its parent.
    is_mod = os.path.basename(path) in ("mod.rs", "lib.rs", "main.rs")
    parent = me if is_mod else me[:-1]
    if is_mod:
        parent = me[:-1]
    targets = set()
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", src):
        paths.extend(expand_use(m.group(1)))
    paths.extend(re.findall(r"\b((?:crate|super)(?:::[A-Za-z_][A-Za-z0-9_]*)+)", src))
    for p in paths:
        p = re.sub(r"\s+", "", p)
        parts = p.split("::")
        if parts[0] == "crate":
            parts = parts[1:]
        elif parts[0] == "super":
            base = list(parent)
            parts = parts[1:]
            while parts and parts[0] == "super":
                base = base[:-1]
                parts = parts[1:]
            parts = base + parts
        elif parts[0] == "self":
            parts = list(me) + parts[1:]
        else:
            continue
        t = resolve(root, parts, known)
        if t is not None and t != me and t != ():
            targets.add(t)
    return me, targets


def sccs(nodes, adj):
    index, low, stack, on, out, i = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = i[0]
        i[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            strong(v)
    return out


def feedback_arcs(comp, adj):
    """Eades-Lin-Smyth greedy ordering of one component; arrows pointing backward."""
    nodes = set(comp)
    out = {v: {w for w in adj[v] if w in nodes} for v in nodes}
    inn = {v: {u for u in nodes if v in out[u]} for v in nodes}
    s1, s2 = [], []
    rest = set(nodes)
    while rest:
        changed = True
        while changed:
            changed = False
            for v in sorted(rest):
                if not (out[v] & rest):
                    s2.insert(0, v)
                    rest.discard(v)
                    changed = True
            for v in sorted(rest):
                if not (inn[v] & rest):
                    s1.append(v)
                    rest.discard(v)
                    changed = True
        if rest:
            v = max(sorted(rest), key=lambda x: len(out[x] & rest) - len(inn[x] & rest))
            s1.append(v)
            rest.discard(v)
    order = {v: k for k, v in enumerate(s1 + s2)}
    # Edges u->w where w comes before u in the order run "up" (the import points to a
    # file drawn above the importer).
    return [(u, w) for u in nodes for w in out[u] if order[w] < order[u]]


def functions(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    cut = next((k for k, l in enumerate(lines) if l.strip() == "#[cfg(test)]"), len(lines))
    res = []
    for k in range(cut):
        m = re.match(r"^(\s*)(?:pub(?:\([a-z]+\))?\s+)?(?:const\s+)?fn\s+([a-z_0-9]+)", lines[k])
        if not m:
            continue
        ind = m.group(1)
        for j in range(k, cut):
            if lines[j] == ind + "}" or (j > k and lines[j].startswith(ind + "}")):
                res.append((j - k + 1, m.group(2)))
                break
            if j == k and lines[j].rstrip().endswith(";"):
                break
    return res


def report(root):
    files = list(rust_files(root))
    known = {tuple(module_of(root, f)): f for f in files}
    adj = defaultdict(set)
    for f in files:
        me, ts = edges_of(root, f, known)
        adj[me] |= ts
    nodes = sorted(known)
    comps = [c for c in sccs(nodes, adj) if len(c) > 1]
    arrows = sum(len(adj[v]) for v in nodes)
    up = []
    for c in comps:
        up.extend(feedback_arcs(c, adj))
    name = lambda m: "/".join(m) or "lib"
    print(f"## {root}")
    print(f"files {len(files)}, arrows {arrows}, circles {len(comps)}"
          f" (sizes {sorted((len(c) for c in comps), reverse=True)}), arrows back up {len(up)}")
    for c in comps:
        print("  circle:", ", ".join(sorted(name(v) for v in c)))
    for u, w in sorted(up):
        print(f"  up: {name(u)} -> {name(w)}")
    sizes = sorted(((sum(1 for _ in open(f, encoding='utf-8')), f) for f in files), reverse=True)
    print("largest files:", ", ".join(f"{os.path.relpath(f, root)} {n}" for n, f in sizes[:6]))
    fns = sorted(((n, os.path.relpath(f, root), fn) for f in files for n, fn in functions(f)),
                 reverse=True)
    long = [x for x in fns if x[0] > 70]
    print(f"functions {len(fns)}, over 70 lines {len(long)}, over 100 lines "
          f"{sum(1 for x in fns if x[0] > 100)}")
    print("longest:", ", ".join(f"{p}:{fn} {n}" for n, p, fn in fns[:10]))


if __name__ == "__main__":
    roots = sys.argv[1:] or ["crates/kcompact/src", "crates/kcompact-cli/src"]
    for r in roots:
        report(r)
