#!/usr/bin/env python3
"""The web view and the listing API at scale: 10,000 documents and one document of 100,000
versions (bench/scale.py's generators), served by `strata serve`.

Usage: python3 bench/web_scale.py [--versions N] [--docs N]

Imports both shapes into one fresh store (release build), starts the server and prints the
median time of 5 requests of each page: the document list (first page and a later page),
the 100,000-version document's timeline (newest page and an old page), a version, a diff
across the whole history, the live feed page, and the API's document list and a log page.
Every answer must be 200.
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402

from strata_bin import STRATA  # noqa: E402  (builds strata)


def fetch_ms(url):
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url) as r:
            assert r.status == 200, url
            size = len(r.read())
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=100_000)
    ap.add_argument("--docs", type=int, default=10_000)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="strata-web-scale-")
    try:
        store = os.path.join(work, "store")
        rng = random.Random(1)
        for stream in (scale.one_doc_stream(args.versions, rng)[0], scale.many_docs_stream(args.docs, rng)[0]):
            subprocess.run([STRATA, "--store", store, "import", "-"], input=stream, check=True,
                           stdout=subprocess.DEVNULL)
        server = subprocess.Popen([STRATA, "--store", store, "serve", "--listen", "127.0.0.1:0"],
                                  stdout=subprocess.PIPE, text=True)
        base = server.stdout.readline().split("http://")[1].split()[0]
        v = args.versions
        pages = [
            ("document list, first page", "/"),
            ("document list, a later page", "/?after=doc-005000"),
            (f"timeline of {v:,} versions, newest page", "/ui/doc?key=settings.json"),
            ("timeline, an old page", f"/ui/doc?key=settings.json&before={v // 10}"),
            ("one version", f"/ui/version?key=settings.json&v={v // 2}"),
            ("diff across the whole history", f"/ui/diff?key=settings.json&a=1&b={v}"),
            ("live feed page", "/ui/feed"),
            ("API: documents, 1,000 per page", "/v1/docs?limit=1000"),
            ("API: log, 1,000 versions from the middle", f"/v1/docs/settings.json/log?after={v // 2}&limit=1000"),
        ]
        try:
            print(f"| page ({args.docs + 1:,} documents, {v + 3 * args.docs:,} versions) | median ms | bytes |")
            print("|---|---|---|")
            for name, path in pages:
                ms, size = fetch_ms(f"http://{base}{path}")
                print(f"| {name} | {ms:.1f} | {size:,} |")
        finally:
            server.terminate()
            server.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
