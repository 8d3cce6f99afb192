#!/usr/bin/env python3
"""The change feed as an event store reads it (issue 9), beside git in the same run.

Usage: python3 bench/feed.py [--versions N] [--docs D] [--puts P]

1. Reading a feed of N versions (default 1,000,000) across D documents (default 1,000; small
   JSON-ish records that change one field each time): `strata feed > /dev/null` (metadata,
   one JSON line per version) against `git log --raw --format=%H%x09%at%x09%an` on a
   repository holding the same writes as N commits (one file per document, `git
   fast-import`ed, then `git gc`). Both read the whole history in write order.
2. Follow delay: a `strata feed --follow` process runs while another process makes P
   (default 200) single `strata put`s, one every 20 ms; for each, the time from the put's
   acknowledgement (its process exit) to its line in the follower's output. git has no
   follow, so these are absolute milliseconds (median, p99). The follower polls every 100 ms.
Builds strata in release mode first. Needs git and python3.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from strata_bin import STRATA  # noqa: E402  (builds strata)


def record(doc, i):
    return b'{"doc": %d, "n": %d, "state": "s%d"}\n' % (doc, i, i % 7)


def timed(cmd, cwd=None, repeat=3):
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--versions", type=int, default=1_000_000)
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--puts", type=int, default=200)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="strata-feed-")
    try:
        n, docs = args.versions, args.docs
        # The same writes for both: version i goes to document i % docs.
        stream = bytearray()
        git_stream = bytearray()
        for i in range(n):
            d = i % docs
            body = record(d, i)
            stream += b"put %d doc%d\n" % (len(body), d) + body + b"\n"
            git_stream += b"blob\nmark :%d\ndata %d\n" % (2 * i + 1, len(body)) + body + b"\n"
            msg = b"v%d" % i
            git_stream += b"commit refs/heads/main\nmark :%d\ncommitter w <w@x> %d +0000\ndata %d\n%s\n" % (
                2 * i + 2, 1_600_000_000 + i, len(msg), msg)
            git_stream += b"M 100644 :%d doc%d\n\n" % (2 * i + 1, d)
        store = os.path.join(work, "store")
        t0 = time.perf_counter()
        subprocess.run([STRATA, "--store", store, "import", "-", "--batch", "4096"], input=bytes(stream),
                       check=True, stdout=subprocess.DEVNULL)
        strata_import = time.perf_counter() - t0
        repo = os.path.join(work, "git")
        subprocess.run(["git", "init", "-q", "--bare", repo], check=True)
        t0 = time.perf_counter()
        subprocess.run(["git", "fast-import", "--quiet"], input=bytes(git_stream), cwd=repo, check=True)
        git_import = time.perf_counter() - t0
        subprocess.run(["git", "gc", "-q"], cwd=repo, check=True)
        lines = subprocess.run([STRATA, "--store", store, "feed"], check=True, capture_output=True).stdout.count(b"\n")
        assert lines == n, f"feed printed {lines} lines for {n} versions"
        s = timed([STRATA, "--store", store, "feed"])
        g = timed(["git", "log", "--raw", "--reverse", "--format=%H%x09%at%x09%an", "main"], cwd=repo)
        print(f"versions {n:,} in {docs:,} documents")
        print(f"import: strata {strata_import:.1f} s, git fast-import {git_import:.1f} s")
        print(f"read the whole feed: strata feed {s:.2f} s, git log --raw {g:.2f} s, ratio {s / g:.2f}")
        print(f"  strata: {n / s:,.0f} versions/s")

        # Follow delay.
        fstore = os.path.join(work, "follow")
        body = record(0, 0)
        subprocess.run([STRATA, "--store", fstore, "put", "d", "-"], input=body, check=True, stdout=subprocess.DEVNULL)
        follower = subprocess.Popen([STRATA, "--store", fstore, "feed", "--follow", "--since", "1"],
                                    stdout=subprocess.PIPE)
        arrivals = {}

        def read():
            for line in follower.stdout:
                seq = int(line.split(b'"seq":', 1)[1].split(b",", 1)[0])
                arrivals[seq] = time.perf_counter()
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(0.5)
        acks = {}
        for i in range(args.puts):
            subprocess.run([STRATA, "--store", fstore, "put", "d", "-"], input=record(0, i + 1), check=True,
                           stdout=subprocess.DEVNULL)
            acks[i + 2] = time.perf_counter()
            time.sleep(0.02)
        deadline = time.time() + 30
        while len(arrivals) < args.puts and time.time() < deadline:
            time.sleep(0.05)
        follower.kill()
        missing = [s for s in acks if s not in arrivals]
        assert not missing, f"the follower never printed {missing[:5]}"
        delays = sorted(max(0.0, arrivals[s] - acks[s]) * 1000 for s in acks)
        p = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]
        print(f"follow delay over {args.puts} puts: median {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {delays[-1]:.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
