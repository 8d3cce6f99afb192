#!/usr/bin/env python3
"""How strata scales: synthetic histories at growing sizes, cost per version.

Usage: python3 bench/scale.py [N ...]   (default: 1000 10000 100000)

Two shapes, each at every N:
  - one-doc: one ~2 KB JSON document with N versions (each version edits one or two fields);
  - many-docs: N documents (small JSON, keys doc-000000 ...) with 3 versions each.
Each is fed to `strata import -` (the stream form, batches of 1024) in a fresh store, then:
import seconds per version, store bytes per version (whole directory), and the median wall
time of `strata log DOC`, `strata ls` and `strata get DOC@V` for random versions (process
start included, 5 runs each). Prints a Markdown table and writes bench/scale.svg, a plot of
each measure relative to its value at the smallest N (flat = 1.0).
"""
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from strata_bin import STRATA  # noqa: E402  (builds strata)


def one_doc_stream(n, rng):
    doc = {"name": "settings", "version": 0, "flags": {f"f{i}": i % 2 == 0 for i in range(40)},
           "limits": {f"l{i}": i * 10 for i in range(40)}, "owners": [f"user{i}" for i in range(20)]}
    out = bytearray()
    for v in range(n):
        doc["version"] = v
        doc["limits"][f"l{rng.randrange(40)}"] = rng.randrange(10_000)
        if rng.random() < 0.3:
            k = f"f{rng.randrange(40)}"
            doc["flags"][k] = not doc["flags"][k]
        body = json.dumps(doc, indent=1).encode()
        out += b"put %d settings.json\n" % len(body) + body + b"\n"
    return bytes(out), [("settings.json", n)]


def many_docs_stream(n, rng):
    out = bytearray()
    docs = []
    for d in range(n):
        key = "doc-%06d" % d
        doc = {"id": d, "title": f"document {d}", "tags": [f"t{d % 17}", f"t{d % 5}"], "rev": 0}
        for r in range(3):
            doc["rev"] = r
            doc["tags"].append(f"r{rng.randrange(100)}")
            body = json.dumps(doc).encode()
            out += b"put %d %s\n" % (len(body), key.encode()) + body + b"\n"
        docs.append((key, 3))
    return bytes(out), docs


def median_time(cmd, runs=5):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(b, f)) for b, _, fs in os.walk(path) for f in fs)


def measure(shape, n, work):
    rng = random.Random(n)
    stream, docs = (one_doc_stream if shape == "one-doc" else many_docs_stream)(n, rng)
    versions = sum(v for _, v in docs)
    store = os.path.join(work, f"{shape}-{n}")
    shutil.rmtree(store, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([STRATA, "--store", store, "import", "-"], input=stream, check=True,
                   stdout=subprocess.DEVNULL)
    import_s = time.perf_counter() - t0
    size = dir_bytes(store)
    doc, nv = docs[rng.randrange(len(docs))]
    log_s = median_time([STRATA, "--store", store, "log", doc])
    ls_s = median_time([STRATA, "--store", store, "ls"])
    gets = []
    for _ in range(5):
        doc, nv = docs[rng.randrange(len(docs))]
        gets.append(median_time([STRATA, "--store", store, "get", f"{doc}@{rng.randrange(nv) + 1}"], runs=1))
    shutil.rmtree(store, ignore_errors=True)
    return {"shape": shape, "n": n, "versions": versions,
            "import_us_per_version": import_s / versions * 1e6,
            "bytes_per_version": size / versions,
            "log_ms": log_s * 1e3, "ls_ms": ls_s * 1e3, "get_ms": statistics.median(gets) * 1e3}


def svg(rows, path):
    measures = ["import_us_per_version", "bytes_per_version", "log_ms", "ls_ms", "get_ms"]
    colours = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"]
    w, h, pad = 720, 300, 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w * 2}" height="{h}" font-family="sans-serif" font-size="11">']
    for panel, shape in enumerate(["one-doc", "many-docs"]):
        rs = [r for r in rows if r["shape"] == shape]
        if not rs:
            continue
        x0 = panel * w
        ns = [r["n"] for r in rs]
        ymax = max(3.0, max(r[m] / rs[0][m] for r in rs for m in measures if rs[0][m] > 0))
        def px(i):
            return x0 + pad + i * (w - 2 * pad) / max(1, len(rs) - 1)
        def py(v):
            return h - pad - v / ymax * (h - 2 * pad)
        parts.append(f'<text x="{x0 + pad}" y="20">{shape}: each measure / its value at N={ns[0]:,} (flat = 1)</text>')
        parts.append(f'<line x1="{x0 + pad}" y1="{py(1)}" x2="{x0 + w - pad}" y2="{py(1)}" stroke="#999" stroke-dasharray="4"/>')
        parts.append(f'<line x1="{x0 + pad}" y1="{py(1.5)}" x2="{x0 + w - pad}" y2="{py(1.5)}" stroke="#c00" stroke-dasharray="2"/>')
        for i, n in enumerate(ns):
            parts.append(f'<text x="{px(i) - 15}" y="{h - pad + 15}">{n:,}</text>')
        for m, c in zip(measures, colours):
            if rs[0][m] <= 0:
                continue
            pts = " ".join(f"{px(i)},{py(r[m] / rs[0][m])}" for i, r in enumerate(rs))
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>')
        for k, (m, c) in enumerate(zip(measures, colours)):
            parts.append(f'<text x="{x0 + pad + k * 130}" y="{h - 10}" fill="{c}">{m}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts))


def main():
    ns = [int(a) for a in sys.argv[1:]] or [1000, 10000, 100000]
    work = tempfile.mkdtemp(prefix="strata-scale-")
    rows = []
    try:
        for shape in ("one-doc", "many-docs"):
            for n in ns:
                rows.append(measure(shape, n, work))
                print(rows[-1], file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| shape | N | versions | import µs/version | store bytes/version | log DOC ms | ls ms | get ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['n']:,} | {r['versions']:,} | {r['import_us_per_version']:.1f} | "
              f"{r['bytes_per_version']:.0f} | {r['log_ms']:.1f} | {r['ls_ms']:.1f} | {r['get_ms']:.1f} |")
    svg(rows, os.path.join(ROOT, "bench", "scale.svg"))
    print("plot: bench/scale.svg", file=sys.stderr)


if __name__ == "__main__":
    main()
