#!/usr/bin/env python3
"""Delta size of a two-line edit of a large document: strata against `zstd --patch-from`.

Usage: python3 bench/large_delta.py [SIZE_MB ...]   (default: 8 16 60)

For each size it writes a document of unique lines, a copy with one line inserted in the
middle and one changed near the top, stores both with `strata put` (default policy), and
prints the stored size of the older version (a delta against the newer under reverse:4)
beside the size `zstd --patch-from` makes for the same pair.
"""
import os
import random
import subprocess
import sys
import tempfile

from strata_bin import STRATA  # noqa: E402  (builds strata)


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [8, 16, 60]
    rng = random.Random(1)
    print("| document | strata delta (bytes) | zstd --patch-from (bytes) | ratio |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for mb in sizes:
            lines, size, n = [], 0, 0
            while size < mb << 20:
                line = "%08d %016x %s\n" % (n, rng.getrandbits(64), "lorem ipsum dolor"[: rng.randint(3, 17)])
                lines.append(line)
                size += len(line)
                n += 1
            a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
            with open(a, "w") as f:
                f.write("".join(lines))
            lines.insert(len(lines) // 2, "an inserted line\n")
            lines[10] = "a changed line\n"
            with open(b, "w") as f:
                f.write("".join(lines))
            store = os.path.join(tmp, "store%d" % mb)
            for path in (a, b):
                subprocess.run([STRATA, "--store", store, "put", "--max-size", "1G", "doc", path],
                               check=True, stdout=subprocess.DEVNULL)
            log = subprocess.run([STRATA, "--store", store, "log", "doc", "--json"], check=True,
                                 capture_output=True, text=True).stdout.splitlines()
            import json
            stored = json.loads(log[0])["stored"]  # e.g. "delta/1 946 B"
            delta = int(stored.split()[1])
            patch = os.path.join(tmp, "p.zst")
            subprocess.run(["zstd", "-q", "-f", "--long=31", "--patch-from=" + a, b, "-o", patch], check=True)
            z = os.path.getsize(patch)
            print("| %d MiB | %s | %s | %.2f |" % (mb, f"{delta:,}", f"{z:,}", delta / z))


if __name__ == "__main__":
    main()
