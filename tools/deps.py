#!/usr/bin/env python3
"""deps.py — the real dependency arrows between rerankd's source files, from the symbols
their object files define and use (nm), not from #include lines (every file includes
rerank.h, so includes say little about who calls whom).

    tools/deps.py BUILD_DIR [--list] [--dot FILE]

A file depends on another when it uses a symbol the other defines. The script prints the
folder-level arrows, then fails (exit 1) when
  - two files of src/ or cuda/ depend on each other through any chain (a file-level circle:
    a strongly connected component of more than one file), or
  - an arrow points up the layering of src/ (architecture.md):
        rerankd → {grpc, http} → edge → sched → engine → {model, tokenizer} → util;
        cli → the library; cuda/ under engine.
--list prints every file-level arrow; --dot writes the file graph for graphviz.
"""
import argparse
import os
import subprocess
import sys
from collections import defaultdict

# Each folder's rank: an arrow may point only to a lower rank (or within its folder).
RANK = {"util": 0, "tokenizer": 1, "model": 2, "cuda": 3, "engine": 4, "sched": 5, "cli": 6,
        "edge": 6, "grpc": 7, "http": 7, "rerankd": 8}


def objects(build):
    """(source path relative to the repository, object path) for every object of src/ and cuda/."""
    out = []
    for root, _, files in os.walk(build):
        for f in files:
            if not f.endswith(".o") or "CMakeFiles" not in root:
                continue
            path = os.path.join(root, f)
            rel = path.split("CMakeFiles/", 1)[1].split("/", 1)[1][:-2]  # target.dir/<src path>
            rel = rel.replace("__/", "../")
            for top in ("src/", "cuda/"):
                if top in path.split("CMakeFiles/")[0] + "/" or rel.startswith("../"):
                    pass
            out.append((path, rel))
    return out


def source_of(build, obj_path, rel):
    """Repository-relative source of an object: <build>/<dir>/CMakeFiles/<t>.dir/<rel>.o."""
    d = os.path.relpath(obj_path.split("/CMakeFiles/")[0], build)
    src = os.path.normpath(os.path.join(d, rel)) if d != "." else os.path.normpath(rel)
    return src


def symbols(obj):
    out = subprocess.run(["nm", "-P", obj], capture_output=True, text=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            used.add(name)
        elif kind in "TDBRCVW":
            defined.add(name)
    return defined, used


def sccs(nodes, edges):
    """Tarjan's strongly connected components."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
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
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def folder(path):
    parts = path.split("/")
    if parts[0] == "cuda":
        return "cuda"
    return parts[1] if parts[0] == "src" and len(parts) > 2 else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--dot")
    a = ap.parse_args()
    defs, uses = {}, {}
    for obj, rel in objects(a.build):
        src = source_of(a.build, obj, rel)
        if folder(src) is None:
            continue
        defs[src], uses[src] = symbols(obj)
    if not defs:
        print("deps: no objects of src/ or cuda/ under %s (build first)" % a.build)
        return 2
    owner = {}
    for f, ds in defs.items():
        for s in ds:
            owner.setdefault(s, f)
    edges = defaultdict(set)
    for f, us in uses.items():
        for s in us:
            g = owner.get(s)
            if g and g != f:
                edges[f].add(g)
    bad = 0
    folders = defaultdict(set)
    for f in sorted(edges):
        for g in sorted(edges[f]):
            ff, fg = folder(f), folder(g)
            if ff != fg:
                folders[ff].add(fg)
                if RANK[fg] >= RANK[ff]:
                    print("deps: UPWARD %s → %s (%s must not call into %s)" % (f, g, ff, fg))
                    bad += 1
            if a.list:
                print("%s → %s" % (f, g))
    print("deps: %d files, %d file-level arrows; folder arrows:" % (len(defs), sum(len(v) for v in edges.values())))
    for ff in sorted(folders, key=lambda x: -RANK[x]):
        print("  %-9s → %s" % (ff, ", ".join(sorted(folders[ff], key=lambda x: -RANK[x]))))
    for comp in sccs(set(defs), edges):
        if len(comp) > 1:
            print("deps: CIRCLE between %s" % ", ".join(sorted(comp)))
            bad += 1
    if a.dot:
        with open(a.dot, "w") as out:
            out.write("digraph rerankd {\n  rankdir=LR;\n")
            for f in sorted(edges):
                for g in sorted(edges[f]):
                    out.write('  "%s" -> "%s";\n' % (f, g))
            out.write("}\n")
    print("deps: %s" % ("no file-level circles, no upward arrows" if not bad else "%d problems" % bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
