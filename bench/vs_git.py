#!/usr/bin/env python3
"""strata vs git on real document histories, in one run, as ratios (strata / git).

Usage: python3 bench/vs_git.py [--policy P] HISTORY_DIR [HISTORY_DIR ...]

Each HISTORY_DIR holds one document's versions as files, oldest first in name order (the
layout of shared/corpus/*), or one such folder per document (shared/corpus-many/*; git then
gets one commit per version, in the order of `<HISTORY_DIR>.commits.tsv` when it exists,
each commit changing the file named after its document). For each it measures, in the same
process tree:
  - stored bytes: the whole strata store directory after import and close (median of five
    imports; the range is printed below the table), against git's whole .git/objects after
    `git fast-import` + `git gc --aggressive`, and against git's packed blob bytes alone;
  - import time against `git fast-import` (best of 5 each), and import + `strata repack` against
    fast-import + `git gc --aggressive`;
  - reading every version, and 200 random versions (seed 42), through `strata get --batch`
    against `git cat-file --batch` on the aggressively packed repository (best of 15 runs
    each, strata's and git's alternating);
  - the latest version through the CLI (`strata get DOC`) against `git show HEAD:file`.
Builds strata in release mode first. Needs git and python3 only.
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

# `STRATA_BIN` names another build to measure (then nothing is built).
from strata_bin import STRATA  # noqa: E402  (builds strata)
# Every timing is the best of this many runs, for strata and git alike (the machine is shared
# and noisy: one slow run of 20 one-version reads moved a ratio from 1.7 to 2.2).
ATTEMPTS = 5
# Reads take milliseconds: each is timed this many times, strata's and git's runs alternating,
# so that a burst of load on the shared machine slows both sides alike (five runs of each side
# one after the other moved the 200-random ratio of one build between 0.90 and 1.01).
READ_ATTEMPTS = 15


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def timed_pair(a, b, repeat):
    """Best wall-clock time of each of two runs, `a` and `b` (each a dict of `timed`'s
    arguments), alternating them `repeat` times."""
    times = [(timed(**a), timed(**b)) for _ in range(repeat)]
    return min(t for t, _ in times), min(t for _, t in times)


def timed(cmd, stdin_bytes=None, cwd=None):
    """Wall-clock seconds of one run of `cmd`."""
    t0 = time.perf_counter()
    subprocess.run(cmd, input=stdin_bytes, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def dir_bytes(path):
    total = 0
    for base, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(base, f))
    return total


def fast_import_stream(versions, marks_base=1):
    """One blob and one commit per (doc, number, file, path in git), in the given order."""
    out = bytearray()
    for i, (_, _, f, path) in enumerate(versions):
        data = open(f, "rb").read()
        out += b"blob\nmark :%d\ndata %d\n" % (marks_base + 2 * i, len(data)) + data + b"\n"
        msg = b"v%d" % (i + 1)
        out += b"commit refs/heads/main\nmark :%d\ncommitter b <b@x> %d +0000\ndata %d\n%s\n" % (
            marks_base + 2 * i + 1, 1_600_000_000 + i, len(msg), msg)
        out += b"M 100644 :%d %s\n\n" % (marks_base + 2 * i, path.encode())
    return bytes(out)


def versions_of(history):
    """[(doc, version number, file, path in git)] in commit order."""
    name = os.path.basename(os.path.normpath(history))
    entries = sorted(f for f in os.listdir(history) if not f.startswith("."))
    folders = [e for e in entries if os.path.isdir(os.path.join(history, e))]
    if not folders:
        return [(name, i + 1, os.path.join(history, f), "file") for i, f in enumerate(entries)]
    per_doc = {}
    for d in folders:
        files = sorted(f for f in os.listdir(os.path.join(history, d)) if not f.startswith("."))
        per_doc[d] = [(d, i + 1, os.path.join(history, d, f), d) for i, f in enumerate(files)]
    tsv = os.path.normpath(history) + ".commits.tsv"
    if os.path.exists(tsv):
        order = []
        for line in open(tsv):
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 4 and cols[0] in per_doc:
                order.append((cols[3], cols[0], cols[1]))
        order.sort()
        seen = {d: 0 for d in per_doc}
        out = []
        for _, d, _ in order:
            if seen[d] < len(per_doc[d]):
                out.append(per_doc[d][seen[d]])
                seen[d] += 1
        for d in per_doc:
            out.extend(per_doc[d][seen[d]:])
        return out
    return [v for d in folders for v in per_doc[d]]


def bench(history, policy, work):
    name = os.path.basename(os.path.normpath(history))
    versions = versions_of(history)
    files = [v[2] for v in versions]
    n = len(versions)
    raw = sum(os.path.getsize(f) for f in files)
    res = {"history": name, "versions": n, "raw": raw}

    # strata: import, then close (the process exits), then measure the whole directory.
    store = os.path.join(work, "store-" + name)
    policy_args = ["--policy", policy] if policy else []
    # sled's disk use varies between identical runs (its background threads decide when
    # buffers reach the log), so the size is the median of the five imports.
    times = []
    sizes = []
    for attempt in range(ATTEMPTS):
        shutil.rmtree(store, ignore_errors=True)
        times.append(timed([STRATA, "--store", store, "import", "--raise-times", *policy_args, history]))
        sizes.append(dir_bytes(store))
    res["strata_import"] = min(times)
    res["strata_bytes"] = sorted(sizes)[len(sizes) // 2]
    res["strata_bytes_range"] = (min(sizes), max(sizes))
    # A copy is repacked, so the reads below measure the store as imported.
    repacked = store + "-repacked"
    shutil.copytree(store, repacked)
    res["strata_repack"] = timed([STRATA, "--store", repacked, "repack"])
    res["strata_repacked_bytes"] = dir_bytes(repacked)

    # git: fast-import, then gc --aggressive.
    repo = os.path.join(work, "git-" + name)
    stream = fast_import_stream(versions)
    marks = os.path.join(work, "marks-" + name)
    times = []
    for attempt in range(ATTEMPTS):
        shutil.rmtree(repo, ignore_errors=True)
        run(["git", "init", "-q", "--bare", repo])
        times.append(timed(["git", "fast-import", "--quiet", "--export-marks=" + marks], stdin_bytes=stream, cwd=repo))
    res["git_import"] = min(times)
    t0 = time.perf_counter()
    run(["git", "gc", "-q", "--aggressive", "--prune=now"], cwd=repo)
    res["git_gc"] = time.perf_counter() - t0
    res["git_bytes"] = dir_bytes(os.path.join(repo, "objects"))
    blob_disk = 0
    out = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch-check=%(objecttype) %(objectsize:disk)"],
                         cwd=repo, check=True, capture_output=True).stdout.decode()
    for line in out.splitlines():
        kind, size = line.split()
        if kind == "blob":
            blob_disk += int(size)
    res["git_blob_bytes"] = blob_disk
    shas = {}
    for line in open(marks):
        mark, sha = line.split()
        shas[int(mark[1:])] = sha
    blob_shas = [shas[1 + 2 * i] for i in range(n)]

    # Reads: all versions, then 200 random (seed 42), same versions on both sides.
    all_idx = list(range(n))
    rnd = random.Random(42)
    some_idx = [rnd.randrange(n) for _ in range(200)]
    for label, idx in (("all", all_idx), ("rand200", some_idx)):
        s_in = "".join(f"{versions[i][0]}@{versions[i][1]}\n" for i in idx).encode()
        g_in = "".join(f"{blob_shas[i]}\n" for i in idx).encode()
        res[f"strata_{label}"], res[f"git_{label}"] = timed_pair(
            dict(cmd=[STRATA, "--store", store, "get", "--batch"], stdin_bytes=s_in),
            dict(cmd=["git", "cat-file", "--batch"], stdin_bytes=g_in, cwd=repo),
            READ_ATTEMPTS)
        # Check the bytes are identical, so speed is never bought with wrong answers.
        s_out = subprocess.run([STRATA, "--store", store, "get", "--batch"], input=s_in, check=True, capture_output=True).stdout
        expect = b"".join(b"%d\n" % len(open(files[i], "rb").read()) + open(files[i], "rb").read() + b"\n" for i in idx)
        got = b"".join(part for part in _strip_ids(s_out))
        assert got == expect, f"{name}: strata get --batch returned wrong bytes"

    # Latest through the CLI, process start included: 20 runs each, total time, best of
    # ATTEMPTS such loops, strata's and git's alternating.
    def loop(cmd, cwd=None):
        t0 = time.perf_counter()
        for _ in range(20):
            subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0
    last_doc, _, _, last_path = versions[-1]
    latest = [(loop([STRATA, "--store", store, "get", last_doc]),
               loop(["git", "show", "main:" + last_path], cwd=repo)) for _ in range(ATTEMPTS)]
    res["strata_latest"] = min(s for s, _ in latest)
    res["git_latest"] = min(g for _, g in latest)
    return res


def _strip_ids(out):
    """Turns `<id> <size>\\n<content>\\n` records into `<size>\\n<content>\\n`."""
    pos = 0
    while pos < len(out):
        nl = out.index(b"\n", pos)
        _, size = out[pos:nl].split(b" ")
        size = int(size)
        yield size.__str__().encode() + b"\n" + out[nl + 1:nl + 1 + size] + b"\n"
        pos = nl + 1 + size + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default=None, help="strata policy (default: the store default)")
    ap.add_argument("histories", nargs="+")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="strata-bench-")
    try:
        rows = [bench(h, args.policy, work) for h in args.histories]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"policy: {args.policy or 'default'}")
    print("| history | versions | raw bytes | strata store | git objects (aggressive) | ratio | after repack | ratio | git blobs "
          "| import s (strata/git) | ratio | import+repack / import+gc | read all ratio | 200 random ratio | latest via CLI ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['history']} | {r['versions']} | {r['raw']:,} | {r['strata_bytes']:,} | {r['git_bytes']:,} "
              f"| {r['strata_bytes'] / r['git_bytes']:.2f} | {r['strata_repacked_bytes']:,} | {r['strata_repacked_bytes'] / r['git_bytes']:.2f} "
              f"| {r['git_blob_bytes']:,} "
              f"| {r['strata_import']:.2f}/{r['git_import']:.2f} | {r['strata_import'] / r['git_import']:.2f} "
              f"| {(r['strata_import'] + r['strata_repack']) / (r['git_import'] + r['git_gc']):.2f} "
              f"| {r['strata_all'] / r['git_all']:.2f} | {r['strata_rand200'] / r['git_rand200']:.2f} "
              f"| {r['strata_latest'] / r['git_latest']:.2f} |")
    for r in rows:
        lo, hi = r["strata_bytes_range"]
        print(f"{r['history']}: strata store after import ranged {lo:,}-{hi:,} bytes over five imports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
