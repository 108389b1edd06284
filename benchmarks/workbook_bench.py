"""Reading a workbook: python-calamine (the converter's reader) against DuckDB's excel
extension (the pip package ``duckdb-ext-excel``, not a dependency: pass its folder).

    python benchmarks/workbook_bench.py [--rows 100000] [--excel-ext DIR]

Writes an .xlsx of ``--rows`` rows and 8 columns with XlsxWriter under
``benchmarks/data/``, then reads it whole in a fresh process per reader and prints wall
seconds and peak RSS (``os.wait4``). ``DIR`` is the ``duckdb_ext/extensions`` folder of
an installed ``duckdb-ext-excel`` (e.g. ``pip install --target /tmp/x duckdb-ext-excel``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


def write(path: Path, rows: int) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = wb.add_worksheet("Data")
    ws.write_row(0, 0, ["id", "name", "zip", "amount", "day", "flag", "city", "note"])
    for r in range(1, rows + 1):
        day = f"2026-11-{r % 28 + 1:02d}"
        values = [r, f"customer {r}", f"{r:05d}", r * 0.25, day, r % 2 == 0, "Lisbon", "x" * 10]
        ws.write_row(r, 0, values)
    wb.close()


def read(reader: str, path: str, ext_dir: str) -> None:
    if reader == "calamine":
        from python_calamine import CalamineWorkbook

        rows = len(CalamineWorkbook.from_path(path).get_sheet_by_index(0).to_python())
    else:
        import duckdb

        con = duckdb.connect(
            config={"extension_directory": ext_dir, "autoinstall_known_extensions": False}
        )
        con.execute("LOAD excel")
        sql = f"SELECT count(*) FROM read_xlsx('{path}', all_varchar=true)"
        rows = con.execute(sql).fetchone()[0] + 1  # the header
    print(f"  {reader}: {rows} rows", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--excel-ext", default="")
    parser.add_argument("--read", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read:
        read(*args.read)
        return
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"workbook_{args.rows}.xlsx"
    if not path.exists():
        write(path, args.rows)
    print("| reader | rows | .xlsx MB | wall (s) | peak RSS (MiB) |\n|---|---:|---:|---:|---:|")
    readers = ["calamine"] + (["duckdb-excel"] if args.excel_ext else [])
    for reader in readers:
        started = time.perf_counter()
        cmd = [sys.executable, __file__, "--read", reader, str(path), args.excel_ext]
        proc = subprocess.Popen(cmd)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{reader} failed")
        wall = time.perf_counter() - started
        size = path.stat().st_size / 1e6
        print(
            f"| {reader} | {args.rows} | {size:.1f} | {wall:.1f} | {usage.ru_maxrss / 1024:.0f} |"
        )


if __name__ == "__main__":
    main()
