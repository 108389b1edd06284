"""Conversion benchmark: lakegov's streaming engine against whole-file baselines.

    python benchmarks/convert_bench.py [--sizes 1000,250] [--formats csv,jsonl] [--keep]

Generates CSV and JSON Lines inputs of the given sizes (MB) under ``benchmarks/data/``
(reused if present), then converts each to Parquet three ways, each in a fresh process:

- ``pyarrow``: ``pyarrow.csv.read_csv`` / ``pyarrow.json.read_json`` on the whole file,
  then ``pyarrow.parquet.write_table`` (the fast whole-file baseline);
- ``pandas``: ``pandas.read_csv`` / ``pandas.read_json(lines=True)`` then
  ``DataFrame.to_parquet`` (what awswrangler's readers do on a local file; awswrangler
  itself only reads from S3);
- ``lakegov``: :func:`lakegov.convert.engine.convert_file`.

Peak memory is the child's ``ru_maxrss`` (``os.wait4``); throughput is input MB / wall
second. The markdown table goes to stdout and ``benchmarks/out/convert.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
OUT = ROOT / "out"
MB = 1_000_000


# --------------------------------------------------------------------------- data


def _rows(start: int, n: int, rng: object) -> dict[str, list[object]]:
    import numpy as np

    assert isinstance(rng, np.random.Generator)
    ids = np.arange(start, start + n)
    cities = np.array(["Paris", "Berlin", "Rome", "Madrid", "Lisbon", "Zürich", "New York, NY"])
    return {
        "id": ids.tolist(),
        "name": [f"customer {i}" for i in rng.integers(0, 1_000_000, n)],
        "amount": np.round(rng.random(n) * 1000, 2).tolist(),
        "ts": [
            f"2026-11-{d:02d} {h:02d}:{m:02d}:00"
            for d, h, m in zip(
                rng.integers(1, 29, n), rng.integers(0, 24, n), rng.integers(0, 60, n), strict=True
            )
        ],
        "active": (rng.random(n) > 0.5).tolist(),
        "city": cities[rng.integers(0, len(cities), n)].tolist(),
        "note": [f'said "hello" {i % 977}, then left' if i % 3 else "" for i in ids],
    }


def generate(path: Path, fmt: str, size_mb: int) -> None:
    import numpy as np

    if path.exists() and path.stat().st_size >= size_mb * MB * 0.98:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    tmp = path.with_suffix(".part")
    written = 0
    start = 0
    chunk = 200_000
    with tmp.open("w", encoding="utf-8", newline="") as f:
        if fmt == "csv":
            f.write("id,name,amount,ts,active,city,note\n")
        while written < size_mb * MB:
            cols = _rows(start, chunk, rng)
            start += chunk
            if fmt == "csv":
                lines = []
                for i, name, amount, ts, active, city, note in zip(*cols.values(), strict=True):
                    city_field = f'"{city}"' if "," in city else city
                    note_field = '"' + note.replace('"', '""') + '"' if note else ""
                    flag = "true" if active else "false"
                    fields = [str(i), name, str(amount), ts, flag, city_field, note_field]
                    lines.append(",".join(fields) + "\n")
                text = "".join(lines)
            else:
                keys = list(cols)
                text = "".join(
                    json.dumps(dict(zip(keys, values, strict=True)), ensure_ascii=False) + "\n"
                    for values in zip(*cols.values(), strict=True)
                )
            f.write(text)
            written += len(text.encode("utf-8"))
    tmp.replace(path)


# --------------------------------------------------------------------------- one run (child)


def measure(method: str, fmt: str, src: str, dst: str) -> None:
    if method == "pyarrow":
        import pyarrow.parquet as pq

        if fmt == "csv":
            import pyarrow.csv as pacsv

            table = pacsv.read_csv(src)
        else:
            import pyarrow.json as pajson

            table = pajson.read_json(src)
        pq.write_table(table, dst)
    elif method == "pandas":
        import pandas as pd

        df = pd.read_csv(src) if fmt == "csv" else pd.read_json(src, lines=True)
        df.to_parquet(dst, engine="pyarrow", index=False)
    elif method == "lakegov":
        sys.path.insert(0, str(ROOT.parent / "src"))
        from lakegov.convert.engine import convert_file

        convert_file(src, dst)
    else:
        raise SystemExit(f"unknown method {method}")


# --------------------------------------------------------------------------- driver


def run_child(method: str, fmt: str, src: Path, dst: Path) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (bytes) and CPU seconds of one conversion in a fresh process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--measure", method, fmt, str(src), str(dst)]
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{method} on {src.name} failed")
    return elapsed, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,250", help="input sizes in MB (default 1000,250)")
    parser.add_argument("--formats", default="csv,jsonl")
    parser.add_argument("--methods", default="pyarrow,pandas,lakegov")
    parser.add_argument("--keep", action="store_true", help="keep generated inputs")
    parser.add_argument(
        "--pandas-json-max-mb",
        type=int,
        default=300,
        help="skip pandas on JSON Lines above this size (it needs ~13x the file in memory)",
    )
    parser.add_argument(
        "--measure", nargs=4, metavar=("METHOD", "FORMAT", "SRC", "DST"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure)
        return

    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for fmt in args.formats.split(","):
        for size in [int(s) for s in args.sizes.split(",")]:
            src = DATA / f"bench_{size}mb.{fmt}"
            print(f"generating {src.name} ...", file=sys.stderr, flush=True)
            generate(src, "csv" if fmt == "csv" else "jsonl", size)
            mb = src.stat().st_size / MB
            for method in args.methods.split(","):
                if method == "pandas" and fmt != "csv" and size > args.pandas_json_max_mb:
                    print(
                        f"  {method}: skipped above {args.pandas_json_max_mb} MB", file=sys.stderr
                    )
                    continue
                dst = OUT / f"{src.stem}.{fmt}.{method}.parquet"
                elapsed, peak, cpu = run_child(method, "csv" if fmt == "csv" else "json", src, dst)
                out_size = dst.stat().st_size
                rows.append(
                    (fmt, mb, method, mb / elapsed, elapsed, cpu, peak / 2**20, out_size / MB)
                )
                print(
                    f"  {method}: {mb / elapsed:.0f} MB/s, {peak / 2**20:.0f} MiB",
                    file=sys.stderr,
                    flush=True,
                )
                dst.unlink()
            if not args.keep:
                src.unlink()

    lines = [
        f"Machine: {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; "
        f"pyarrow {__import__('pyarrow').__version__}; pandas {__import__('pandas').__version__}",
        "",
        "| input | size (MB) | method | throughput (MB/s) | wall (s) | CPU (s) | peak RSS (MiB) "
        "| Parquet (MB) | vs pyarrow size |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    base = {(r[0], round(r[1])): r[7] for r in rows if r[2] == "pyarrow"}
    for fmt, mb, method, tput, wall, cpu, peak, out_mb in rows:
        ref = base.get((fmt, round(mb)))
        ratio = f"{out_mb / ref:.3f}" if ref else "-"
        lines.append(
            f"| {fmt} | {mb:.0f} | {method} | {tput:.0f} | {wall:.1f} | {cpu:.1f} | {peak:.0f} "
            f"| {out_mb:.1f} | {ratio} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    (OUT / "convert.md").write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
