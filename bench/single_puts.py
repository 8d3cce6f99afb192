#!/usr/bin/env python3
"""Disk bytes over record bytes in the steady state of an application (issue 8, goal 2).

Usage: python3 bench/single_puts.py [--puts N] HISTORY_DIR [HISTORY_DIR ...]

For each history (one document's versions, or one folder per document as in
shared/corpus-many), in commit order (vs_git.py's order): imports all versions but the last N
(default 1,000) with `strata import`, then writes the last N one at a time with `strata put`
(one process each, every put durable when acknowledged, as an application's writes are),
and reports `strata stats`' disk and record bytes after the import and after the puts, and
the wall time per put (a whole `strata put` process each, its syncs included). When
a history has fewer than N + 1 versions, the import takes its first version of each
document and the puts replay the rest. Builds strata in release mode first, unless
`STRATA_BIN` names the binary to measure (to compare two builds in one session).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from strata_bin import STRATA  # noqa: E402  (builds strata)
from vs_git import versions_of  # noqa: E402



def stats(store):
    out = subprocess.run([STRATA, "--store", store, "stats"], check=True, capture_output=True,
                         text=True).stdout
    rec = int(re.search(r"record bytes\s+(\d+)", out).group(1))
    disk = int(re.search(r"disk bytes\s+(\d+)", out).group(1))
    return rec, disk


def bench(history, puts, work):
    name = os.path.basename(os.path.normpath(history))
    versions = versions_of(history)
    many = any(os.path.isdir(os.path.join(history, e)) for e in os.listdir(history))
    if len(versions) > puts:
        first, rest = versions[:-puts], versions[-puts:]
    else:
        seen, first, rest = set(), [], []
        for v in versions:
            (rest if v[0] in seen else first).append(v)
            seen.add(v[0])
    # The import's input: the first versions, in the same folder layout.
    src = os.path.join(work, "import-" + name)
    for doc, num, path, _ in first:
        folder = os.path.join(src, doc) if many else src
        os.makedirs(folder, exist_ok=True)
        os.symlink(os.path.abspath(path), os.path.join(folder, "%06d" % num))
    store = os.path.join(work, "store-" + name)
    doc_of = {}
    subprocess.run([STRATA, "--store", store, "import", src], check=True,
                   stdout=subprocess.DEVNULL)
    listed = subprocess.run([STRATA, "--store", store, "ls"], check=True, capture_output=True,
                            text=True).stdout.split()
    for entry in listed:
        key = entry.rsplit("@", 1)[0]
        doc_of[os.path.basename(key)] = key
    after_import = stats(store)
    started = time.perf_counter()
    for doc, _, path, _ in rest:
        key = doc_of.get(doc, doc if many else doc_of.get(name, name))
        if not many:
            key = next(iter(doc_of.values()))
        subprocess.run([STRATA, "--store", store, "put", key, path], check=True,
                       stdout=subprocess.DEVNULL)
    per_put_ms = (time.perf_counter() - started) * 1000 / max(len(rest), 1)
    after_puts = stats(store)
    return name, len(first), len(rest), after_import, after_puts, per_put_ms


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--puts", type=int, default=1000)
    ap.add_argument("histories", nargs="+")
    args = ap.parse_args()
    print("| history | imported | single puts | records / disk after import | ratio "
          "| records / disk after the puts | ratio | ms per put |")
    print("|---|---|---|---|---|---|---|---|")
    work = tempfile.mkdtemp(prefix="strata-single-")
    try:
        for h in args.histories:
            name, n_import, n_puts, (r1, d1), (r2, d2), ms = bench(h, args.puts, work)
            print(f"| {name} | {n_import} | {n_puts} | {r1:,} / {d1:,} | {d1 / r1:.2f} "
                  f"| {r2:,} / {d2:,} | {d2 / r2:.2f} | {ms:.2f} |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
