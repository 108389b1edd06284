"""A corpus of CSV exports polluted the way real ones are, and a score for loading them.

Four clean tables (generated, fixed seed; shaped like the original solution's customers and
cards, a sales export with dates, decimals and quoted text, and a sensor log with
``dd.mm.yyyy`` dates) are written in many dialects and with the pollutions real exports
carry: a stray quote in one row, one delimiter too many or too few, a preamble above the
header, no header, CR-only line endings, ``", "`` ``;`` TAB ``|`` delimiters, apostrophe
quotes, backslash escapes, a two-row header, a second table below the first, comment lines,
and combinations of these.

Each file is loaded by lakegov (``lakegov.convert.convert_file`` with zero configuration,
reading back the Parquet file and the exceptions output) and by DuckDB's auto-detection
(``read_csv(path)`` with its defaults), and scored against the clean table:

- **header**: precision/recall of the loaded column names against the clean names (both
  normalised to ``[a-z0-9_]``); for a file written without a header there are no names to
  find, and the header decision is right (1) when the first data row was kept as data;
- **records**: precision/recall of the loaded rows (as a multiset of normalised tuples);
- **cells**: precision/recall of the loaded cells (a multiset of (column position, value));
- **score**: the mean of the three F1 values; a rejected file scores 0.

Values are compared normalised, so typing is not penalised: numbers canonical
(``1.50`` = ``1.5``), dates and timestamps ISO (a ``28.01.2018`` text equals the date
2018-01-28), ``00:00`` = ``00:00:00``, the empty field = null.

"Rows lost silently" counts the data records of the file that were neither loaded, nor set
aside with a line number, nor covered by the file's rejection: ``max(0, records_in_file -
loaded - set_aside)`` for a file that loaded. "Bad lines" checks that each polluted row
was set aside at its physical line (counting quoted newlines).

    python -m benchmarks.csv_corpus [--rows 300] [--keep DIR] [--only NAME]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"

# --------------------------------------------------------------------------- clean tables


@dataclass(frozen=True)
class CleanTable:
    name: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    text_column: int  # a free-text column, where pollutions are put
    group_header: tuple[str, ...]  # the first row of its two-row header form
    sub_header: tuple[str, ...]  # the second row ("group" + "_" + "sub" = the clean name)


FIRST = ["Anna", "Björn", "Chloé", "Dmitri", "Eve", "Farah", "Gus", "Hiro", "Ines", "Jan"]
LAST = ["O'Brien", "Smith, Jr.", "Müller", "Nakamura", "Dubois", "García", "Lee", "Okafor"]
CITIES = ["Lisbon", "New York, NY", "Zürich", "São Paulo", "Osaka", "Lagos", "Oslo"]
PRODUCTS = [
    'Monitor 27" 4K',
    "Desk, standing",
    "Cable (USB-C)",
    "Chair",
    "Lamp; LED",
    "Notebook",
    'Mouse "silent"',
]
NOTES = ["", "", "gift wrap", "call before delivery\nleave at door", "fragile, handle with care"]
STATUS = ["ok", "ok", "ok", "drift", "ok, calibrated", "offline"]


def _two_row(
    names: list[tuple[str, str]],
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    header = tuple(f"{g}_{s}" for g, s in names)
    return header, tuple(g for g, _ in names), tuple(s for _, s in names)


def clean_tables(rows: int, seed: int = 18) -> list[CleanTable]:
    rnd = random.Random(seed)
    tables = []

    names = [
        ("customer", "id"),
        ("first", "name"),
        ("last", "name"),
        ("contact", "email"),
        ("contact", "city"),
        ("signup", "date"),
        ("credit", "limit"),
    ]
    header, group, sub = _two_row(names)
    body = []
    for i in range(rows):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        day = dt.date(2023, 1, 1) + dt.timedelta(days=rnd.randrange(700))
        body.append(
            (
                str(1000 + i),
                first,
                last,
                f"{first.lower()}.{i}@example.com",
                rnd.choice(CITIES),
                day.isoformat(),
                f"{rnd.randrange(5, 500) * 100}.00",
            )
        )
    tables.append(CleanTable("customers", header, tuple(body), 2, group, sub))

    names = [
        ("card", "id"),
        ("customer", "id"),
        ("card", "number"),
        ("card", "type"),
        ("expiry", "month"),
        ("card", "status"),
    ]
    header, group, sub = _two_row(names)
    body = []
    for i in range(rows):
        number = "".join(rnd.choice("0123456789") for _ in range(16))
        body.append(
            (
                str(5000 + i),
                str(1000 + rnd.randrange(rows)),
                number,
                rnd.choice(["visa", "mastercard", "amex"]),
                f"20{rnd.randrange(26, 31)}-{rnd.randrange(1, 13):02d}",
                rnd.choice(["active", "active", "blocked, fraud review", "expired"]),
            )
        )
    tables.append(CleanTable("cards", header, tuple(body), 5, group, sub))

    names = [
        ("order", "id"),
        ("order", "time"),
        ("product", "name"),
        ("order", "quantity"),
        ("unit", "price"),
        ("order", "total"),
        ("order", "notes"),
    ]
    header, group, sub = _two_row(names)
    body = []
    for i in range(rows):
        qty = rnd.randrange(1, 20)
        price = Decimal(rnd.randrange(100, 100000)) / 100
        when = dt.datetime(2024, 1, 1) + dt.timedelta(minutes=rnd.randrange(500000))
        body.append(
            (
                f"SO-{70000 + i}",
                when.isoformat(sep=" "),
                rnd.choice(PRODUCTS),
                str(qty),
                f"{price:.2f}",
                f"{price * qty:.2f}",
                rnd.choice(NOTES),
            )
        )
    tables.append(CleanTable("sales", header, tuple(body), 2, group, sub))

    names = [
        ("reading", "date"),
        ("reading", "time"),
        ("sensor", "id"),
        ("temp", "c"),
        ("humidity", "pct"),
        ("sensor", "status"),
    ]
    header, group, sub = _two_row(names)
    body = []
    start = dt.datetime(2018, 1, 28)
    for i in range(rows):
        when = start + dt.timedelta(minutes=15 * i)
        body.append(
            (
                when.strftime("%d.%m.%Y"),
                when.strftime("%H:%M"),
                f"MG-{8769 + i % 7}",
                f"{rnd.uniform(-12, 35):.1f}",
                str(rnd.randrange(20, 99)),
                rnd.choice(STATUS),
            )
        )
    tables.append(CleanTable("sensors", header, tuple(body), 5, group, sub))
    return tables


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class Style:
    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None  # None: a quote inside a quoted field is doubled
    newline: str = "\n"
    header: bool = True
    two_row_header: bool = False
    preamble: tuple[str, ...] = ()
    comments: bool = False  # '#' lines at the top and one in the middle
    second_table: bool = False
    stray_quote: bool = False
    extra_delimiter: bool = False
    missing_delimiter: bool = False


def _field(value: str, style: Style) -> str:
    q = style.quote
    needs = (
        (style.delimiter.strip() in value and style.delimiter.strip() != "")
        or style.delimiter in value
        or q in value
        or "\n" in value
        or "\r" in value
        or value[:1] in ('"', "'")
    )
    if not needs:
        return value
    inner = value.replace(q, f"\\{q}" if style.escape == "\\" else q + q)
    return f"{q}{inner}{q}"


@dataclass
class Variant:
    """One polluted file and what a faithful loader would get from it."""

    name: str
    table: CleanTable
    style: Style
    data: bytes = b""
    records_in_file: int = 0  # data records in the file (including a second table's)
    bad_lines: tuple[int, ...] = ()  # physical lines of the polluted rows
    expected_rows: tuple[tuple[str, ...], ...] = ()


_BREAK = re.compile(r"\r\n|\r|\n")


def render(name: str, table: CleanTable, style: Style) -> Variant:
    nl = style.newline
    d = style.delimiter
    out: list[str] = []  # physical text, record by record (each ends with nl)
    for line in style.preamble:
        out.append(line + nl)
    if style.comments:
        out.append(f"# export of {table.name} from the ERP" + nl)
        out.append("# columns: see the data dictionary" + nl)
    if style.header:
        if style.two_row_header:
            out.append(d.join(_field(v, style) for v in table.group_header) + nl)
            out.append(d.join(_field(v, style) for v in table.sub_header) + nl)
        else:
            out.append(d.join(_field(v, style) for v in table.header) + nl)
    polluted: dict[int, str] = {}
    n = len(table.rows)
    col = table.text_column
    if style.stray_quote:
        polluted[n * 2 // 5] = "stray"
    if style.extra_delimiter:
        polluted[n * 3 // 5] = "extra"
    if style.missing_delimiter:
        polluted[n * 4 // 5] = "missing"
    bad_lines = []
    middle_comment = n // 2 if style.comments else -1
    for i, row in enumerate(table.rows):
        if i == middle_comment:
            out.append("# -- page 2 --" + nl)
        fields = [_field(v, style) for v in row]
        kind = polluted.get(i)
        if kind == "stray":
            # an unclosed quote opening a field: 'Acme -> "Acme (as a hand edit leaves it)
            fields[col] = style.quote + row[col].replace(style.quote, "")
            fields[col] = fields[col].replace(d, " ").replace("\n", " ")
        elif kind == "extra":
            # the text column loses its quotes and gains one delimiter
            text = re.sub(r"[\n\r]", " ", row[col]).replace(style.quote, "")
            fields[col] = text.replace(d, " ").replace(d.strip() or d, " ") + d + "see note"
        elif kind == "missing":
            # two fields run together: one delimiter missing
            fields[col - 1 : col + 1] = [fields[col - 1] + " " + fields[col]]
        if kind:
            bad_lines.append(len(_BREAK.findall("".join(out))) + 1)
        out.append(d.join(fields) + nl)
    extra_records = 0
    if style.second_table:
        out.append(nl)
        out.append(d.join(["Summary", ""]) + nl)
        out.append(d.join(["region", "rows"]) + nl)
        for region in ("north", "south", "east"):
            out.append(d.join([region, str(n // 3)]) + nl)
            extra_records += 1
    text = "".join(out)
    return Variant(
        name=f"{table.name}/{name}",
        table=table,
        style=style,
        data=text.encode("utf-8"),
        records_in_file=n + extra_records,
        bad_lines=tuple(bad_lines),
        expected_rows=table.rows,
    )


PREAMBLE = ("Report generated 2024-03-01 09:12 by ERP", "")

VARIANTS: dict[str, Style] = {
    "clean": Style(),
    "crlf": Style(newline="\r\n"),
    "cr_only": Style(newline="\r"),
    "semicolon": Style(delimiter=";"),
    "tab": Style(delimiter="\t"),
    "pipe": Style(delimiter="|"),
    "comma_space": Style(delimiter=", "),
    "apostrophe_quotes": Style(quote="'"),
    "backslash_escapes": Style(escape="\\"),
    "no_header": Style(header=False),
    "preamble": Style(preamble=PREAMBLE),
    "comment_lines": Style(comments=True),
    "two_row_header": Style(two_row_header=True),
    "second_table": Style(second_table=True),
    "stray_quote": Style(stray_quote=True),
    "extra_delimiter": Style(extra_delimiter=True),
    "missing_delimiter": Style(missing_delimiter=True),
    "preamble+semicolon+crlf": Style(delimiter=";", newline="\r\n", preamble=PREAMBLE),
    "no_header+tab": Style(delimiter="\t", header=False),
    "cr_only+stray_quote": Style(newline="\r", stray_quote=True),
    "apostrophe+comma_space": Style(quote="'", delimiter=", "),
    "backslash+preamble+extra_delimiter": Style(
        escape="\\", preamble=PREAMBLE, extra_delimiter=True
    ),
    "comments+two_row_header+pipe": Style(comments=True, two_row_header=True, delimiter="|"),
    "semicolon+all_bad_rows": Style(
        delimiter=";", stray_quote=True, extra_delimiter=True, missing_delimiter=True
    ),
}


def corpus(rows: int) -> list[Variant]:
    return [render(v, t, s) for t in clean_tables(rows) for v, s in VARIANTS.items()]


# --------------------------------------------------------------------------- loading


@dataclass
class Loaded:
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    set_aside_lines: list[int] = field(default_factory=list)
    rejected: str | None = None


def load_lakegov(path: Path, workdir: Path) -> Loaded:
    import pyarrow.parquet as pq

    from lakegov.convert.engine import convert_file
    from lakegov.errors import RejectedFile

    out = workdir / (path.stem + ".parquet")
    exc = workdir / (path.stem + ".exceptions.jsonl")
    try:
        convert_file(str(path), str(out), exceptions_path=str(exc))
    except RejectedFile as err:
        return Loaded(rejected=f"{err.reason_code}: {err.reason}"[:160])
    table = pq.read_table(out)
    lines = []
    if exc.exists():
        lines = [json.loads(x)["line"] for x in exc.read_text("utf-8").splitlines() if x]
    return Loaded(table.column_names, [tuple(r.values()) for r in table.to_pylist()], lines)


def load_duckdb(path: Path, workdir: Path) -> Loaded:
    import duckdb

    con = duckdb.connect(config={"threads": 1})
    try:
        cur = con.execute("SELECT * FROM read_csv(?)", [str(path)])
        columns = [d[0] for d in cur.description or []]
        return Loaded(columns, [tuple(r) for r in cur.fetchall()])
    except duckdb.Error as err:
        return Loaded(rejected=str(err).splitlines()[0][:160])
    finally:
        con.close()


ENGINES: dict[str, Callable[[Path, Path], Loaded]] = {
    "lakegov": load_lakegov,
    "duckdb": load_duckdb,
}

# --------------------------------------------------------------------------- scoring

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_DOTTED_DATE = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})$")
_HHMM = re.compile(r"^\d{2}:\d{2}$")


def norm_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    text = str(value).strip()
    if _NUMBER.match(text):
        try:
            return format(Decimal(text).normalize(), "f")
        except InvalidOperation:
            return text
    m = _DOTTED_DATE.match(text)
    if m:
        return f"{m[3]}-{m[2]}-{m[1]}"
    if _HHMM.match(text):
        return text + ":00"
    return text.replace("T", " ") if re.match(r"^\d{4}-\d{2}-\d{2}T", text) else text


def norm_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _pr(matched: int, loaded: int, expected: int) -> tuple[float, float]:
    precision = matched / loaded if loaded else (1.0 if not expected else 0.0)
    recall = matched / expected if expected else 1.0
    return precision, recall


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def _overlap(a: Iterable[Any], b: Iterable[Any]) -> int:
    return sum((Counter(a) & Counter(b)).values())


@dataclass
class Score:
    variant: str
    engine: str
    header: tuple[float, float]
    records: tuple[float, float]
    cells: tuple[float, float]
    loaded: int
    set_aside: int
    rejected: str | None
    lost_silently: int
    bad_lines_found: int
    bad_lines_expected: int

    @property
    def score(self) -> float:
        if self.rejected:
            return 0.0
        parts = (self.header, self.records, self.cells)
        return statistics.fmean(_f1(*pr) for pr in parts)


def score(variant: Variant, engine: str, loaded: Loaded) -> Score:
    expected = [tuple(norm_value(v) for v in row) for row in variant.expected_rows]
    if loaded.rejected:
        return Score(
            variant.name,
            engine,
            (0.0, 0.0),
            (0.0, 0.0),
            (0.0, 0.0),
            0,
            0,
            loaded.rejected,
            0,
            0,
            len(variant.bad_lines),
        )
    got = [tuple(norm_value(v) for v in row) for row in loaded.rows]
    records = _pr(_overlap(got, expected), len(got), len(expected))
    exp_cells = [(i, v) for row in expected for i, v in enumerate(row)]
    got_cells = [(i, v) for row in got for i, v in enumerate(row)]
    cells = _pr(_overlap(got_cells, exp_cells), len(got_cells), len(exp_cells))
    if variant.style.header:
        names = [norm_name(c) for c in loaded.columns]
        want = [norm_name(c) for c in variant.table.header]
        header = _pr(_overlap(names, want), len(names), len(want))
    else:
        kept = 1.0 if expected[0] in set(got) else 0.0
        header = (kept, kept)
    lost = max(0, variant.records_in_file - len(got) - len(loaded.set_aside_lines))
    found = len(set(variant.bad_lines) & set(loaded.set_aside_lines))
    return Score(
        variant.name,
        engine,
        header,
        records,
        cells,
        len(got),
        len(loaded.set_aside_lines),
        None,
        lost,
        found,
        len(variant.bad_lines),
    )


# --------------------------------------------------------------------------- the run


def run(rows: int, keep: Path | None, only: str | None) -> list[Score]:
    scores: list[Score] = []
    with tempfile.TemporaryDirectory(prefix="lakegov-csv-corpus-") as tmp:
        base = keep or Path(tmp)
        for variant in corpus(rows):
            if only and only not in variant.name:
                continue
            name = variant.name.replace("/", "__").replace("+", "_") + ".csv"
            for engine, load in ENGINES.items():
                # each engine reads its own copy: one cannot change what the other sees
                path = base / engine / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(variant.data)
                work = Path(tmp) / f"{engine}-work"
                work.mkdir(exist_ok=True)
                scores.append(score(variant, engine, load(path, work)))
                if path.read_bytes() != variant.data:
                    raise RuntimeError(f"{engine} changed its input file {path}")
    return scores


def _fmt_pr(pr: tuple[float, float]) -> str:
    return f"{pr[0]:.2f}/{pr[1]:.2f}"


def per_file_table(scores: list[Score]) -> str:
    lines = [
        "| file | engine | header P/R | records P/R | cells P/R | score | loaded | set aside "
        "| bad lines found | lost silently | rejected |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in scores:
        lines.append(
            f"| {s.variant} | {s.engine} | {_fmt_pr(s.header)} | {_fmt_pr(s.records)} | "
            f"{_fmt_pr(s.cells)} | {s.score:.3f} | {s.loaded} | {s.set_aside} | "
            f"{s.bad_lines_found}/{s.bad_lines_expected} | {s.lost_silently} | "
            f"{(s.rejected or '').replace('|', '/')} |"
        )
    return "\n".join(lines)


def summary_table(scores: list[Score]) -> str:
    """One row per pollution: both engines' mean score over the tables, rejections, losses."""
    engines = list(ENGINES)
    by: dict[tuple[str, str], list[Score]] = {}
    for s in scores:
        by.setdefault((s.variant.split("/", 1)[1], s.engine), []).append(s)
    head = (
        "| pollution | "
        + " | ".join(
            f"{e} score | {e} rejected | {e} set aside (bad lines found) | {e} lost silently"
            for e in engines
        )
        + " |"
    )
    lines = [head, "|---|" + "---:|---:|---:|---:|" * len(engines)]
    for variant in dict.fromkeys(s.variant.split("/", 1)[1] for s in scores):
        cells = []
        for e in engines:
            group = by[(variant, e)]
            found = sum(s.bad_lines_found for s in group)
            wanted = sum(s.bad_lines_expected for s in group)
            cells += [
                f"{statistics.fmean(s.score for s in group):.3f}",
                f"{sum(1 for s in group if s.rejected)}/{len(group)}",
                f"{sum(s.set_aside for s in group)} ({found}/{wanted})",
                str(sum(s.lost_silently for s in group)),
            ]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    totals = []
    for e in engines:
        group = [s for s in scores if s.engine == e]
        totals += [
            f"**{statistics.fmean(s.score for s in group):.4f}**",
            f"{sum(1 for s in group if s.rejected)}/{len(group)}",
            f"{sum(s.set_aside for s in group)} "
            f"({sum(s.bad_lines_found for s in group)}/{sum(s.bad_lines_expected for s in group)})",
            f"**{sum(s.lost_silently for s in group)}**",
        ]
    lines.append("| **all files (mean / total)** | " + " | ".join(totals) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300, help="rows per clean table")
    parser.add_argument("--keep", type=Path, help="write the corpus files to this folder")
    parser.add_argument("--only", help="only the files whose name contains this")
    args = parser.parse_args(argv)
    import duckdb

    started = time.monotonic()
    scores = run(args.rows, args.keep, args.only)
    elapsed = time.monotonic() - started
    files = len(scores) // len(ENGINES)
    summary = summary_table(scores)
    print(
        f"{files} files x {len(ENGINES)} engines ({args.rows} rows per table), "
        f"duckdb {duckdb.__version__}, {elapsed:.0f} s\n"
    )
    print(summary)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "csv_corpus.md").write_text(
        f"{summary}\n\n## Per file\n\n{per_file_table(scores)}\n", "utf-8"
    )
    print(f"\nper file: {OUT / 'csv_corpus.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = ["CleanTable", "Style", "Variant", "corpus", "norm_value", "render"]
