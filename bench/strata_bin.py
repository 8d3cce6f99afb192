"""The strata binary the benchmarks run: `STRATA_BIN` when set, else the one `cargo build
--release -p strata-cli` builds (on import), wherever cargo puts it (the workspace builds for
a named target, `.cargo/config.toml`, so not under `target/release`)."""

import json
import os
import subprocess

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


STRATA = os.environ.get("STRATA_BIN") or _built()
