"""The strata binary the benchmarks run: `STRATA_BIN` when set, else a copy of the one
`cargo build --release -p strata-cli` builds (on import), wherever cargo puts it (the
workspace builds for a named target, `.cargo/config.toml`, so not under `target/release`).

A copy, as `cargo install` or a package manager would run: the file the linker has just
written starts every process more slowly while it stays in the page cache as written (on
this machine `strata --version` 0.63-0.68 ms and 149 page faults, a copy 0.53-0.55 ms and
128-138; 0.3 ms of wall time per process, a tenth of 200 random reads of a small document).
"""

import atexit
import json
import os
import shutil
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _built():
    out = subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "strata-cli", "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "strata" \
                and msg.get("executable"):
            return msg["executable"]
    raise SystemExit("cargo build -p strata-cli built no strata binary")


def _installed(built):
    folder = tempfile.mkdtemp(prefix="strata-bench-bin-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    copy = os.path.join(folder, "strata")
    shutil.copy2(built, copy)
    return copy


STRATA = os.environ.get("STRATA_BIN") or _installed(_built())
