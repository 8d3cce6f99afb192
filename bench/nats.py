#!/usr/bin/env python3
"""The NATS engine beside the sled engine, in one run (issue 13's figures).

Usage: python3 bench/nats.py [--seconds S] [--rejoin-versions N]

Needs nats-server, wrk (Debian: apt-get install nats-server wrk) and a release build
(cargo build --release). Starts, on loopback, one nats-server and a 3-node cluster, and
measures for three stores, a sled directory, a NATS store on the one server (replicas=1) and
one on the cluster (replicas=3), each served by one `strata serve`:
  - durable puts of 4 KB to random documents: one connection in a loop, and 32 connections;
  - reads of the latest version of a 4 KB document, 32 connections;
  - the change feed: delay from a put to its Server-Sent Event at a subscriber, p50/p99;
then the bytes each shared history takes (`strata import`): sled's store directory, and the
NATS stream's bytes on the one server; and the time for a cluster node to rejoin and catch up
after N versions (default 100,000, 4 KB documents in batches of 1,000) were written without
it. Prints Markdown tables for BENCHMARKS.md.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve as sv  # noqa: E402  (wrk, feed_delay, free_port, start_strata)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRATA = sv.STRATA
CORPUS = os.path.join(ROOT, "..", "shared", "corpus")


class Nats:
    """One nats-server with JetStream and a monitoring port."""

    def __init__(self, work, name, cluster=None):
        self.work, self.name = work, name
        self.port, self.http = sv.free_port(), sv.free_port()
        self.cluster = cluster  # (own route port, all route ports)
        self.proc = None
        self.start()

    def start(self):
        args = ["nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.http),
                "-js", "-sd", os.path.join(self.work, self.name), "-n", self.name]
        if self.cluster:
            own, routes = self.cluster
            args += ["--cluster_name", "bench", "--cluster", f"nats://127.0.0.1:{own}",
                     "--routes", ",".join(f"nats://127.0.0.1:{r}" for r in routes)]
        log = open(os.path.join(self.work, self.name + ".log"), "w")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        sys.exit(f"nats-server {self.name} did not start")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()

    def stream(self, name):
        """The stream's state on this server: (messages, bytes, last sequence)."""
        url = f"http://127.0.0.1:{self.http}/jsz?streams=true"
        data = json.load(urllib.request.urlopen(url, timeout=5))
        for acc in data.get("account_details") or []:
            for st in acc.get("stream_detail") or []:
                if st["name"] == name:
                    s = st["state"]
                    return s["messages"], s["bytes"], s["last_seq"]
        return 0, 0, 0


def strata(store, *args, stdin=None):
    return subprocess.run([STRATA, "--store", store, *args], input=stdin, check=True,
                          capture_output=True).stdout.decode()


def serve_figures(store, seconds, content):
    port = sv.free_port()
    server = sv.start_strata(store, port)
    try:
        strata_put = f"http://127.0.0.1:{port}/v1/docs/doc.txt"
        req = urllib.request.Request(strata_put, data=content, method="PUT")
        urllib.request.urlopen(req).read()
        script = os.path.join(tempfile.gettempdir(), f"nats-put-{os.getpid()}.lua")
        body = content.decode().replace("\n", "\\n")
        with open(script, "w") as f:
            f.write('math.randomseed(os.time())\n'
                    f'local body = "{body}"\n'
                    'request = function()\n'
                    '  return wrk.format("PUT", "/v1/docs/load/" .. math.random(0, 9999), nil, body)\n'
                    'end\n')
        one = sv.wrk(f"http://127.0.0.1:{port}", 1, 1, seconds, script)
        many = sv.wrk(f"http://127.0.0.1:{port}", 32, 2, seconds, script)
        reads = sv.wrk(strata_put, 32, 2, seconds)
        delay = sv.feed_delay(port, puts=200)
        return one, many, reads, delay
    finally:
        server.terminate()
        server.wait()


def history_bytes(nats, work):
    rows = []
    for name in sorted(os.listdir(CORPUS)):
        src = os.path.join(CORPUS, name)
        if not os.path.isdir(src):
            continue
        sled_dir = os.path.join(work, "sled-" + name)
        strata(sled_dir, "import", "--raise-times", src)
        sled_bytes = sum(os.path.getsize(os.path.join(d, f))
                         for d, _, fs in os.walk(sled_dir) for f in fs)
        store = f"nats://127.0.0.1:{nats.port}/h{len(rows)}"
        strata(store, "import", "--raise-times", src)
        msgs, nbytes, _ = nats.stream(f"STRATA_h{len(rows)}")
        t0 = time.perf_counter()
        strata(store, "log", name)
        open_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        strata(sled_dir, "log", name)
        sled_ms = (time.perf_counter() - t0) * 1000
        rows.append((name, sled_bytes, nbytes, msgs, open_ms, sled_ms))
    return rows


def rejoin(work, versions):
    routes = [sv.free_port() for _ in range(3)]
    nodes = [Nats(work, f"r{i}", (routes[i], routes)) for i in range(3)]
    try:
        url = "nats://" + ",".join(f"127.0.0.1:{n.port}" for n in nodes) + "/rejoin?replicas=3"
        for _ in range(120):
            if subprocess.run([STRATA, "--store", url, "put", "seed"], input=b"seed\n",
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        nodes[2].kill()
        # The versions, written while node r2 is down: `strata batch` lines, 1,000 a batch.
        t0 = time.perf_counter()
        written = 0
        while written < versions:
            n = min(1000, versions - written)
            lines = "".join(json.dumps({"doc": f"r/{(written + i) % 500}",
                                        "content": f"version {written + i}\n" + "x" * 4000})
                            + "\n" for i in range(n))
            strata(url, "batch", "-", stdin=lines.encode())
            written += n
        write_s = time.perf_counter() - t0
        _, nbytes, last = nodes[0].stream("STRATA_rejoin")
        t0 = time.perf_counter()
        nodes[2].start()
        while True:
            try:
                if nodes[2].stream("STRATA_rejoin")[2] >= last:
                    break
            except OSError:
                pass
            if time.perf_counter() - t0 > 600:
                sys.exit("node r2 did not catch up in 10 minutes")
            time.sleep(0.05)
        return versions, write_s, nbytes, last, time.perf_counter() - t0
    finally:
        for n in nodes:
            n.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rejoin-versions", type=int, default=100_000)
    args = ap.parse_args()
    for tool in ("nats-server", "wrk"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: apt-get install {tool}")
    if not os.path.exists(STRATA):
        sys.exit("build first: cargo build --release")
    work = tempfile.mkdtemp(prefix="strata-nats-bench-")
    single = Nats(work, "single")
    routes = [sv.free_port() for _ in range(3)]
    cluster = [Nats(work, f"c{i}", (routes[i], routes)) for i in range(3)]
    content = ("".join(f"line {i}: some text of a document under load\n" for i in range(90)))[:4096]
    content = content.encode()
    try:
        stores = [
            ("sled (directory)", os.path.join(work, "sled-serve")),
            ("NATS, 1 server", f"nats://127.0.0.1:{single.port}/serve"),
            ("NATS, 3-node cluster, replicas=3",
             "nats://" + ",".join(f"127.0.0.1:{n.port}" for n in cluster) + "/serve?replicas=3"),
        ]
        # The cluster elects its leaders after it starts.
        for _ in range(120):
            if subprocess.run([STRATA, "--store", stores[2][1], "put", "warm"], input=b"w\n",
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        print("| store | puts/s, 1 connection | puts/s, 32 connections (p99 ms) | 32 vs 1 "
              "| reads/s, 32 connections (p99 ms) | feed delay p50 / p99 ms |")
        print("|---|---|---|---|---|---|")
        for label, store in stores:
            one, many, reads, delay = serve_figures(store, args.seconds, content)
            print(f"| {label} | {one[0]:,.0f} | {many[0]:,.0f} ({many[2]:.1f}) | "
                  f"{many[0] / one[0]:.2f}x | {reads[0]:,.0f} ({reads[2]:.1f}) | "
                  f"{delay[0]:.2f} / {delay[1]:.2f} |", flush=True)
        print()
        print("| history | sled store bytes | NATS stream bytes (messages) | NATS / sled "
              "| `log` through the CLI: NATS ms / sled ms |")
        print("|---|---|---|---|---|")
        for name, sled_b, nats_b, msgs, nats_ms, sled_ms in history_bytes(single, work):
            print(f"| {name} | {sled_b:,} | {nats_b:,} ({msgs:,}) | {nats_b / sled_b:.2f} | "
                  f"{nats_ms:.0f} / {sled_ms:.0f} |", flush=True)
        print()
        for n in cluster:
            n.stop()
        cluster = []
        v, write_s, nbytes, last, catch_s = rejoin(work, args.rejoin_versions)
        print(f"rejoin: {v:,} versions ({nbytes:,} stream bytes, {last:,} messages) written in "
              f"{write_s:.1f} s while a node was down; the node caught up in {catch_s:.2f} s "
              "after its restart")
    finally:
        single.stop()
        for n in cluster:
            n.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
