#!/usr/bin/env python3
"""`strata serve` under load, beside nginx serving the same bytes, in one run.

Usage: python3 bench/serve.py [--seconds S]

Needs wrk and nginx (Debian: apt-get install wrk nginx). Builds strata in release mode and
measures, on loopback:
  - reads of the latest version of a 4 KB document, 64 connections (wrk -t2 -c64), against
    nginx serving the same 4 KB as a static file (the ceiling for "serve bytes over HTTP"
    here): requests/s, p50 and p99 latency;
  - durable puts of 4 KB from 64 connections, each to one of 10,000 documents at random,
    against one connection putting in a loop: puts/s, p50 and p99, and for each the
    server's count of durable writes and flushes (printed when it stops);
  - reads as above while 16 connections put, against the same reads with no puts;
  - the change feed: the delay from sending a put to its Server-Sent Event arriving at a
    subscriber, p50 and p99 over 300 puts one after another.
Prints a Markdown table for BENCHMARKS.md.
"""

import argparse
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from strata_bin import STRATA  # noqa: E402  (builds strata)


def restart(server, store, port, flushes, label):
    """Stops `server` with SIGTERM (recording its stop line under `label`) and starts another."""
    server.terminate()
    rest = server.stdout.read()
    server.wait()
    if label:
        stop = [l for l in rest.splitlines() if "stopped" in l]
        flushes.append((label, stop[0].replace("strata: ", "") if stop else "no stop line"))
    return start_strata(store, port)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url, conns, threads, seconds, script=None):
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"wrk saw {errors.group(1)} error responses from {url}:\n{out}")
    return rps, pct(50), pct(99)


def start_strata(store, port):
    proc = subprocess.Popen([STRATA, "--store", store, "serve", "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "serving" in line, line
    return proc


def start_nginx(work, port):
    root = os.path.join(work, "www")
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}/tmp;
  proxy_temp_path {work}/tmp;
  fastcgi_temp_path {work}/tmp;
  uwsgi_temp_path {work}/tmp;
  scgi_temp_path {work}/tmp;
  server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
""")
    os.makedirs(os.path.join(work, "tmp"), exist_ok=True)
    proc = subprocess.Popen(["nginx", "-c", conf, "-g", "daemon off;"], stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    sys.exit("nginx did not start")


def feed_delay(port, puts=300):
    """Delay from sending a put to its SSE event arriving, in ms: p50, p99. The stream is
    read from a plain socket (http.client's buffered reader held events back)."""
    sent = {}
    arrived = {}
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET /v1/feed/stream?since=%d HTTP/1.1\r\nHost: bench\r\n\r\n" % last_seq(port))

    def reader():
        while len(arrived) < puts:
            data = sock.recv(1 << 16)
            if not data:
                return
            now = time.perf_counter()
            for m in re.finditer(rb'"doc":"feed/(\d+)"', data):
                arrived.setdefault(int(m.group(1)), now)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    time.sleep(0.2)
    put_conn = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(puts):
        sent[i] = time.perf_counter()
        put_conn.request("PUT", f"/v1/docs/feed/{i}", body=b"x" * 100)
        put_conn.getresponse().read()
    t.join(30)
    sock.close()
    delays = sorted((arrived[i] - sent[i]) * 1000 for i in range(puts) if i in arrived)
    assert len(delays) == puts, f"only {len(delays)} of {puts} events arrived"
    return delays[len(delays) // 2], delays[int(len(delays) * 0.99)]


def last_seq(port):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/v1/stats")
    body = conn.getresponse().read().decode()
    return int(re.search(r'"versions":(\d+)', body).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install wrk nginx")
    work = tempfile.mkdtemp(prefix="strata-serve-bench-")
    os.chmod(work, 0o755)  # nginx's workers run as another user
    try:
        content = (b"".join(b"line %04d of a four kilobyte document, padded to width.\n" % i for i in range(71)))[:4096]
        os.makedirs(os.path.join(work, "www"))
        with open(os.path.join(work, "www", "doc.txt"), "wb") as f:
            f.write(content)
        store = os.path.join(work, "store")
        src = os.path.join(work, "doc.txt")
        with open(src, "wb") as f:
            f.write(content)
        subprocess.run([STRATA, "--store", store, "put", "doc.txt", src], check=True, stdout=subprocess.DEVNULL)
        sp, np_ = free_port(), free_port()
        server = start_strata(store, sp)
        nginx = start_nginx(work, np_)
        rows = []
        flushes = []
        try:
            s_read = wrk(f"http://127.0.0.1:{sp}/v1/docs/doc.txt", 64, 2, args.seconds)
            n_read = wrk(f"http://127.0.0.1:{np_}/doc.txt", 64, 2, args.seconds)
            rows.append(("reads of a 4 KB document, 64 connections", s_read, "nginx, same file", n_read))
            script = os.path.join(work, "put.lua")
            with open(script, "w") as f:
                body = content.decode().replace("\n", "\\n")
                f.write('math.randomseed(os.time())\n'
                        f'local body = "{body}"\n'
                        'request = function()\n'
                        '  return wrk.format("PUT", "/v1/docs/load/" .. math.random(0, 9999), nil, body)\n'
                        'end\n')
            # Each put phase on a server of its own, whose stop line counts its writes and
            # flushes (group commit at work).
            server = restart(server, store, sp, flushes, None)
            many = wrk(f"http://127.0.0.1:{sp}", 64, 2, args.seconds, script)
            server = restart(server, store, sp, flushes, "64 connections")
            one = wrk(f"http://127.0.0.1:{sp}", 1, 1, args.seconds, script)
            server = restart(server, store, sp, flushes, "one connection")
            rows.append(("durable puts of 4 KB, 64 connections", many, "one connection in a loop", one))
            # Reads while 16 connections put: what writes cost readers.
            putter = subprocess.Popen(["wrk", "-t1", "-c16", f"-d{args.seconds + 2}s", "-s", script,
                                       f"http://127.0.0.1:{sp}"], stdout=subprocess.DEVNULL)
            time.sleep(1)
            loaded = wrk(f"http://127.0.0.1:{sp}/v1/docs/doc.txt", 64, 1, args.seconds)
            putter.wait()
            rows.append(("reads of a 4 KB document, 64 connections, while 16 put", loaded,
                         "the same reads with no puts", s_read))
            delay = feed_delay(sp)
        finally:
            server.terminate()
            server.wait()
            nginx.terminate()
            nginx.wait()
        print("| measure | strata req/s | p50 ms | p99 ms | peer | peer req/s | p50 ms | p99 ms | ratio |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, s, peer, p in rows:
            print(f"| {name} | {s[0]:,.0f} | {s[1]:.2f} | {s[2]:.2f} | {peer} | {p[0]:,.0f} | {p[1]:.2f} | {p[2]:.2f} | {s[0] / p[0]:.2f} |")
        print(f"\nfeed: put sent -> SSE event arrived, 300 puts: p50 {delay[0]:.2f} ms, p99 {delay[1]:.2f} ms")
        for label, line in flushes:
            print(f"group commit, puts from {label}: {line}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
