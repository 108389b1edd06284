"""A CSV file's dialect: how its records, fields and header are written.

The engine takes every ``read_csv`` parameter that describes the file's text (delimiter,
quote, escape, newline, lines to skip, header, column names) from :class:`CsvDialect` and
nowhere else, so that a better :func:`sniff_csv_dialect` changes detection everywhere.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from dataclasses import dataclass

import duckdb

from lakegov.convert.options import DatasetOptions
from lakegov.convert.sql import literal
from lakegov.errors import RejectedFile


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str  # ",", ";", "\t", "|", or multi-char like ", "
    quote: str | None  # '"', "'" or None (no quoting)
    escape: str | None  # None: quotes are escaped by doubling; "\\" for backslash escapes
    newline: str  # "\n", "\r\n" or "\r"
    skip_lines: int  # physical lines before the header (preamble, comments)
    header_lines: int  # 0: no header row (generated names), 1: normal, >1: multi-row header
    columns: tuple[
        str, ...
    ]  # raw column names (from the header, or generated when header_lines == 0)
    comment: str | None = None  # a comment-line prefix, e.g. "#"


_NEWLINES = {"\\n": "\n", "\\r\\n": "\r\n", "\\r": "\r"}


def _newline(sample: bytes) -> str:
    first = sample.find(b"\n")
    return "\\r\\n" if first > 0 and sample[first - 1 : first] == b"\r" else "\\n"


def _unset(value: str | None) -> str | None:
    return None if value in (None, "", "(empty)") else value


def sniff_csv_dialect(head: bytes, options: DatasetOptions) -> CsvDialect:
    """The dialect of a CSV file from its first UTF-8 bytes (a few MiB at most).

    Declared options (delimiter, quote character, header) win; the rest is DuckDB's
    ``sniff_csv`` on the head cut at its last complete line.
    """
    cut = head.rfind(b"\n")
    sample = head[: cut + 1] if cut >= 0 else head
    if sample.startswith(b"\xef\xbb\xbf"):
        sample = sample[3:]
    sample = sample.decode("utf-8", errors="replace").encode("utf-8")  # bad bytes: the reader's
    delimiter = options.delimiter or _consistent_delimiter(sample, options.quotechar)
    params = [
        "strict_mode=false",
        f"header={'true' if options.header else 'false'}",
        "sample_size=-1",
        "skip=0",  # the header is the first line (DuckDB may skip ragged leading rows)
        f"delim={literal(delimiter)}",
    ]
    if options.quotechar:
        params.append(f"quote={literal(options.quotechar)}")
    fd, path = tempfile.mkstemp(prefix="lakegov-head-", suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(sample)
        with duckdb.connect() as con:
            fields = "Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows"
            source = f"sniff_csv({literal(path)}, {', '.join(params)})"
            query = f"SELECT {fields} FROM {source}"  # noqa: S608 - literals quoted
            row = con.execute(query).fetchone()
    except duckdb.Error:
        # rows too irregular for the sniffer: the declared or consistent delimiter and
        # standard quoting; the reader reports the irregular rows with their lines
        row = (delimiter, options.quotechar, None, _newline(sample), None, 0)
    finally:
        os.unlink(path)
    assert row is not None
    delimiter, quote, escape, newline, comment, skip = row
    quote = _unset(quote)
    escape = _unset(escape)
    if escape == quote:
        escape = None
    lines = sample.decode("utf-8", errors="replace").splitlines(keepends=True)[int(skip) :]
    first = _first_record("".join(lines), delimiter, quote, escape)
    header_lines = 1 if options.header else 0
    columns = tuple(first) if header_lines else tuple(f"col_{i + 1}" for i in range(len(first)))
    return CsvDialect(
        delimiter=delimiter,
        quote=quote,
        escape=escape,
        newline=_NEWLINES.get(newline, "\n"),
        skip_lines=int(skip),
        header_lines=header_lines,
        columns=columns,
        comment=_unset(comment),
    )


def _first_record(text: str, delimiter: str, quote: str | None, escape: str | None) -> list[str]:
    if len(delimiter) != 1:  # the csv module splits on one character only
        return (text.splitlines() or [""])[0].split(delimiter)
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quotechar=quote or '"',
        quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE,
        escapechar=escape,
    )
    try:
        return next(reader, [])
    except csv.Error as exc:
        raise RejectedFile("malformed", f"the CSV header cannot be parsed: {exc}", [1]) from exc


DELIMITERS = (",", ";", "\t", "|")


def _consistent_delimiter(sample: bytes, quote: str) -> str:
    """The delimiter among , ; TAB | that splits the first lines most consistently (a
    ragged row does not make a file one column wide)."""
    lines = [ln for ln in sample.decode("utf-8").splitlines()[:50] if ln.strip()]
    best, best_score = ",", (-1, 0)
    for delim in DELIMITERS:
        try:
            counts = [len(r) for r in csv.reader(lines, delimiter=delim, quotechar=quote)]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        score = (sum(1 for c in counts if c == counts[0]), counts[0])
        if score > best_score:
            best, best_score = delim, score
    return best
