"""Conversion benchmark: lakegov's converter against DuckDB, Polars and pyarrow.

    python benchmarks/convert_bench.py [--sizes 250,1000] [--inputs csv,jsonl,csv.gz]
                                       [--methods lakegov,duckdb,polars,pyarrow] [--keep]

Generates CSV and JSON Lines inputs of the given sizes (MB) under ``benchmarks/data/``
(reused if present; a gzip CSV too), then converts each to Parquet four ways, each in a
fresh process, the methods interleaved (their order rotates from one input to the next):

- ``lakegov``: :func:`lakegov.convert.engine.convert_file` (the convert function's engine);
- ``duckdb``: ``COPY (SELECT * FROM read_csv/read_json(...)) TO ... (FORMAT parquet)``;
- ``polars``: ``scan_csv`` / ``scan_ndjson`` then ``sink_parquet``;
- ``pyarrow``: ``pyarrow.csv.read_csv`` / ``pyarrow.json.read_json`` on the whole file,
  then ``pyarrow.parquet.write_table``.

Wall seconds, CPU seconds (user + system) and peak RSS are the child's (``os.wait4``);
throughput is input MB per wall second. The markdown table goes to stdout and to
``benchmarks/out/convert.md``. Generated data is deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
OUT = ROOT / "out"
MB = 1_000_000
METHODS = ("lakegov", "duckdb", "polars", "pyarrow")


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
    """A ``fmt`` (csv or jsonl) file of about ``size_mb`` MB at ``path``."""
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


def input_file(kind: str, size_mb: int) -> Path:
    """The generated input for ``kind`` (csv, jsonl, csv.gz) and size."""
    if kind == "csv.gz":
        plain = input_file("csv", size_mb)
        path = DATA / f"bench_{size_mb}mb.csv.gz"
        if not path.exists():
            with plain.open("rb") as src, gzip.open(path, "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst, 4 * 1024 * 1024)
        return path
    path = DATA / f"bench_{size_mb}mb.{kind}"
    generate(path, kind, size_mb)
    return path


# --------------------------------------------------------------------------- one run (child)


def measure(method: str, src: str, dst: str) -> None:
    json_input = ".jsonl" in src
    if method == "lakegov":
        sys.path.insert(0, str(ROOT.parent / "src"))
        from lakegov.convert.engine import convert_file

        convert_file(src, dst)
    elif method == "duckdb":
        import duckdb

        reader = "read_json" if json_input else "read_csv"
        duckdb.execute(f"COPY (SELECT * FROM {reader}('{src}')) TO '{dst}' (FORMAT parquet)")
    elif method == "polars":
        import polars as pl

        frame = pl.scan_ndjson(src) if json_input else pl.scan_csv(src)
        frame.sink_parquet(dst)
    elif method == "pyarrow":
        import pyarrow.parquet as pq

        if json_input:
            import pyarrow.json as pajson

            table = pajson.read_json(src)
        else:
            import pyarrow.csv as pacsv

            table = pacsv.read_csv(src)
        pq.write_table(table, dst)
    else:
        raise SystemExit(f"unknown method {method}")


# --------------------------------------------------------------------------- driver


def run_child(method: str, src: Path, dst: Path) -> tuple[float, int, float] | None:
    """Wall seconds, peak RSS (bytes) and CPU seconds of one conversion in a fresh process
    (``None`` if it failed)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--measure", method, str(src), str(dst)])
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        print(f"  {method} on {src.name} failed", file=sys.stderr)
        return None
    return elapsed, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="250,1000", help="input sizes in MB")
    parser.add_argument("--inputs", default="csv,jsonl,csv.gz", help="csv, jsonl, csv.gz")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--gzip-sizes", default="250", help="sizes of the gzip CSV input")
    parser.add_argument("--keep", action="store_true", help="keep generated inputs")
    parser.add_argument(
        "--measure", nargs=3, metavar=("METHOD", "SRC", "DST"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure)
        return

    OUT.mkdir(parents=True, exist_ok=True)
    methods = args.methods.split(",")
    rows = []
    turn = 0
    for kind in args.inputs.split(","):
        sizes = args.gzip_sizes if kind == "csv.gz" else args.sizes
        for size in [int(s) for s in sizes.split(",")]:
            print(f"generating {kind} {size} MB ...", file=sys.stderr, flush=True)
            src = input_file(kind, size)
            mb = src.stat().st_size / MB
            order = methods[turn % len(methods) :] + methods[: turn % len(methods)]
            turn += 1
            for method in order:
                dst = OUT / f"{src.name}.{method}.parquet"
                measured = run_child(method, src, dst)
                if measured is None:
                    continue
                elapsed, peak, cpu = measured
                rows.append((kind, mb, method, elapsed, cpu, peak / 2**20, dst.stat().st_size))
                print(
                    f"  {method}: {elapsed:.1f} s, {cpu:.1f} CPU-s, {peak / 2**20:.0f} MiB",
                    file=sys.stderr,
                    flush=True,
                )
                dst.unlink()
    if not args.keep:
        shutil.rmtree(DATA, ignore_errors=True)

    import duckdb
    import polars
    import pyarrow

    lines = [
        f"Machine: {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; DuckDB "
        f"{duckdb.__version__}; Polars {polars.__version__}; pyarrow {pyarrow.__version__}",
        "",
        "| input | MB | method | MB/s | wall (s) | CPU (s) | peak RSS (MiB) | Parquet (MB) "
        "| vs DuckDB: wall | CPU | Parquet |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = {(r[0], round(r[1])): r for r in rows if r[2] == "duckdb"}
    for kind, mb, method, wall, cpu, peak, out_bytes in rows:
        ref = base.get((kind, round(mb)))
        ratios = (
            f"{wall / ref[3]:.2f} | {cpu / ref[4]:.2f} | {out_bytes / ref[6]:.3f}"
            if ref
            else "- | - | -"
        )
        lines.append(
            f"| {kind} | {mb:.0f} | {method} | {mb / wall:.0f} | {wall:.1f} | {cpu:.1f} "
            f"| {peak:.0f} | {out_bytes / MB:.1f} | {ratios} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    (OUT / "convert.md").write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
