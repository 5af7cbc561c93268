"""Run every benchmark (`make bench`) and print one summary.

Each script prints its JSON and writes var/bench/<name>.json; figures are ratios taken
within one run on the same machine (see docs/benchmarks.md). Run it on an otherwise idle
machine: the server is pinned to core 0 and wrk to core 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "bench_platform.py",
    "bench_signing.py",
    "bench_federation.py",
    "bench_customs.py",
    "bench_logistics.py",
    "bench_door.py",
    "bench_saga.py",
    "bench_orders.py",
]


def main() -> int:
    failed = []
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        result = subprocess.run([sys.executable, str(HERE / script)], cwd=HERE)
        if result.returncode != 0:
            failed.append(script)
    out = HERE.parent / "var" / "bench"
    summary = {
        p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if p.stem != "summary"
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"== summary written to {out / 'summary.json'}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
