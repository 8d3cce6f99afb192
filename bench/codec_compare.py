#!/usr/bin/env python3
"""Delta codec sizes on real histories: zstd with the base as reference prefix (strata's codec)
against a copy/insert delta (xdelta3's VCDIFF) with and without zstd on top.

Usage: python3 bench/codec_compare.py HISTORY_DIR [HISTORY_DIR ...]

For every consecutive pair of versions (base = the older, target = the newer) it encodes the
target against the base with each method and sums the sizes per history:
  - zstd-prefix L: `zstd -L --patch-from=BASE --no-check` (strata's codec, `diff/src/delta.rs`,
    writes the same frame minus the 4-byte magic and frame header: a few bytes less per delta);
  - vcdiff: `xdelta3 -e -9 -S none` (copy/insert instructions, no secondary compression);
  - vcdiff+zstd: that delta compressed with `zstd -19` (the best a copy/insert delta plus zstd
    can do);
  - vcdiff+lzma: `xdelta3 -e -9` with its built-in secondary compressor (lzma/djw).
Needs zstd and xdelta3 on PATH (Debian: `apt-get install zstd xdelta3`).
"""

import os
import subprocess
import sys
import tempfile


def size_of(cmd, stdin=None):
    return len(subprocess.run(cmd, input=stdin, check=True, capture_output=True).stdout)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    rows = []
    for history in sys.argv[1:]:
        files = sorted(os.path.join(history, f) for f in os.listdir(history) if not f.startswith("."))
        sums = {"zstd-prefix 3": 0, "zstd-prefix 19": 0, "vcdiff": 0, "vcdiff+zstd": 0, "vcdiff+lzma": 0}
        for base, target in zip(files, files[1:]):
            sums["zstd-prefix 3"] += size_of(["zstd", "-q", "-3", "--no-check", "--patch-from=" + base, target, "-c"])
            sums["zstd-prefix 19"] += size_of(["zstd", "-q", "-19", "--no-check", "--patch-from=" + base, target, "-c"])
            vc = subprocess.run(["xdelta3", "-e", "-9", "-S", "none", "-c", "-s", base, target],
                                check=True, capture_output=True).stdout
            sums["vcdiff"] += len(vc)
            sums["vcdiff+zstd"] += size_of(["zstd", "-q", "-19", "--no-check", "-c"], stdin=vc)
            sums["vcdiff+lzma"] += size_of(["xdelta3", "-e", "-9", "-c", "-s", base, target])
        rows.append((os.path.basename(os.path.normpath(history)), len(files) - 1, sums))
    keys = list(rows[0][2])
    print("| history | pairs | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for name, pairs, sums in rows:
        print(f"| {name} | {pairs} | " + " | ".join(f"{sums[k]:,}" for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
