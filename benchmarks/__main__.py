"""`make bench`: every benchmark, each in its own process, results under benchmarks/out/.

python -m benchmarks                 # all: governance, load, conversion (the longest), csv_corpus
python -m benchmarks governance load # some
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = {
    "governance": [sys.executable, "benchmarks/governance_bench.py", "--repeat", "3"],
    "load": [
        sys.executable,
        "-m",
        "benchmarks.load_bench",
        "--files",
        "1000",
        "--documents",
        "100",
    ],
    "conversion": [sys.executable, "benchmarks/convert_bench.py", "--sizes", "250,1000"],
    "csv_corpus": [sys.executable, "-m", "benchmarks.csv_corpus", "--rows", "300"],
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"== {name}: {' '.join(BENCHMARKS[name][1:])}", flush=True)
        started = time.monotonic()
        env = {"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "POWERTOOLS_METRICS_DISABLED": "true"}
        code = subprocess.call(BENCHMARKS[name], cwd=ROOT, env={**os.environ, **env})
        print(f"== {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    print("results: benchmarks/out/ (and the tables in benchmarks/README.md)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
