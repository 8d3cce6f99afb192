#!/usr/bin/env python3
"""strata's line diff against git's, on consecutive revisions of real histories, in one run.

Usage: python3 bench/diff_vs_git.py [--every K] HISTORY_DIR [HISTORY_DIR ...]

For every K-th pair of consecutive versions (default every pair) it runs, as separate processes:
  strata diff-files A B --format lines     vs   git diff --no-index --histogram A B
and, on a store holding the history,
  strata diff DOC@i DOC@i+1 --format lines
It reports the total time ratio (process start-up included) and the total diff size (lines
added + removed) against git --histogram and against GNU `diff --minimal`.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from strata_bin import STRATA  # noqa: E402  (builds strata)


def changed_lines(out):
    n = 0
    for line in out.splitlines():
        if line.startswith(b"+++ ") or line.startswith(b"--- "):
            continue
        if line.startswith(b"+") or line.startswith(b"-"):
            n += 1
    return n


def timed(cmd, cwd=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True)
    return time.perf_counter() - t0, p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("histories", nargs="+")
    args = ap.parse_args()
    print("| history | pairs | strata diff-files s | git diff --no-index s | time ratio | strata diff (store) s | ratio vs git "
          "| strata lines | git --histogram lines | diff --minimal lines | size vs minimal | worst pair vs minimal |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="strata-diffbench-") as work:
        for h in args.histories:
            name = os.path.basename(os.path.normpath(h))
            files = sorted(os.path.join(h, f) for f in os.listdir(h) if not f.startswith("."))
            store = os.path.join(work, name)
            subprocess.run([STRATA, "--store", store, "import", "--raise-times", h], check=True, capture_output=True)
            t_s = t_g = t_store = 0.0
            n_s = n_g = n_m = 0
            worst = 0.0
            pairs = 0
            for i in range(0, len(files) - 1, args.every):
                a, b = files[i], files[i + 1]
                dt, out = timed([STRATA, "diff-files", a, b, "--format", "lines", "-U", "0"])
                t_s += dt
                s = changed_lines(out)
                dt, out = timed(["git", "diff", "--no-index", "--histogram", "-U0", a, b])
                t_g += dt
                n_g += changed_lines(out)
                dt, _ = timed([STRATA, "--store", store, "diff", f"{name}@{i + 1}", f"{name}@{i + 2}", "--format", "lines"])
                t_store += dt
                m = changed_lines(subprocess.run(["diff", "--minimal", "-U0", a, b], capture_output=True).stdout)
                n_s += s
                n_m += m
                if m:
                    worst = max(worst, s / m)
                pairs += 1
            print(f"| {name} | {pairs} | {t_s:.2f} | {t_g:.2f} | {t_s / t_g:.2f} | {t_store:.2f} | {t_store / t_g:.2f} "
                  f"| {n_s} | {n_g} | {n_m} | {n_s / max(n_m, 1):.4f} | {worst:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
