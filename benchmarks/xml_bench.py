"""Memory of an XML conversion against a CSV one of the same size.

    python benchmarks/xml_bench.py [--mb 1000] [--keep]

Generates an XML file of about ``--mb`` MB (namespaced orders with attributes, a nested
customer and two or three repeated items each) and a CSV file of the same size (the same
orders flattened), under ``benchmarks/data/``, then converts each with
:func:`lakegov.convert.engine.convert_file` in a fresh process and reports its wall
seconds, CPU seconds and peak RSS (``os.wait4``). Generated data is deleted at the end
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
MB = 1_000_000


def _order(i: int, rng: random.Random) -> tuple[str, str]:
    """One order as an XML element and as CSV lines (one per item)."""
    items = [
        (f"SKU-{rng.randrange(10_000):05d}", rng.randrange(1, 9))
        for _ in range(rng.randrange(2, 4))
    ]
    amount = f"{rng.random() * 1000:.2f}"
    zip_code = f"{rng.randrange(100_000):05d}"
    day = rng.randrange(1, 29)
    xml = (
        f'  <o:order id="{i}" status="{rng.choice(("open", "shipped", "closed"))}">'
        f"<o:placed>2026-11-{day:02d} {rng.randrange(24):02d}:00:00</o:placed>"
        f"<c:customer><c:name>customer {rng.randrange(1_000_000)}</c:name>"
        f"<c:zip>{zip_code}</c:zip></c:customer>"
        f'<o:amount currency="EUR">{amount}</o:amount><o:items>'
        + "".join(f'<o:item sku="{s}"><o:qty>{q}</o:qty></o:item>' for s, q in items)
        + "</o:items></o:order>\n"
    )
    csv = "".join(
        f"{i},open,2026-11-{day:02d} 00:00:00,customer {i},{zip_code},{amount},EUR,{s},{q}\n"
        for s, q in items
    )
    return xml, csv


def generate(mb: int) -> tuple[Path, Path]:
    DATA.mkdir(parents=True, exist_ok=True)
    xml_path, csv_path = DATA / f"orders_{mb}.xml", DATA / f"orders_{mb}.csv"
    if xml_path.exists() and csv_path.exists():
        return xml_path, csv_path
    rng = random.Random(7)
    with xml_path.open("w") as xml, csv_path.open("w") as csv:
        xml.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        xml.write('<o:orders xmlns:o="urn:example:orders" xmlns:c="urn:example:customer">\n')
        csv.write("id,status,placed,customer_name,customer_zip,amount,currency,sku,qty\n")
        i, xml_bytes, csv_bytes = 0, 0, 0
        while xml_bytes < mb * MB or csv_bytes < mb * MB:
            i += 1
            x, c = _order(i, rng)
            if xml_bytes < mb * MB:
                xml_bytes += xml.write(x)
            if csv_bytes < mb * MB:
                csv_bytes += csv.write(c)
        xml.write("</o:orders>\n")
    return xml_path, csv_path


def measure(src: str, dst: str) -> None:
    from lakegov.convert.engine import convert_file

    result = convert_file(src, dst)
    print(f"  {Path(src).name}: {result.summary()}", file=sys.stderr)


def run_child(src: Path) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MiB) of one conversion in a fresh process."""
    dst = src.with_suffix(".parquet")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--measure", str(src), str(dst)])
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"converting {src} failed")
    dst.unlink()
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=1000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--measure", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure)
        return
    xml, csv = generate(args.mb)
    print("| input | MB | wall (s) | CPU (s) | peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for src in (xml, csv):
        wall, cpu, peak = run_child(src)
        print(
            f"| {src.suffix[1:]} | {src.stat().st_size / MB:.0f} | {wall:.1f} | {cpu:.1f} | {peak:.0f} |"
        )
    if not args.keep:
        shutil.rmtree(DATA, ignore_errors=True)


if __name__ == "__main__":
    main()
