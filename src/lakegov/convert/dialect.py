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

from lakegov.convert.options import DatasetOptions
from lakegov.errors import RejectedFile


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str  # ",", ";", "\t", "|", or multi-char like ", "
    quote: str | None  # '"', "'" or None (no quoting)
    escape: str | None  # None: quotes are escaped by doubling; "\\" for backslash escapes
    newline: str  # "\n", "\r\n" or "\r"
    skip_lines: int  # physical lines before the header (preamble, comments)
    header_lines: int  # 0: no header row (generated names), 1: normal, >1: multi-row header
    columns: tuple[str, ...]  # raw column names (from the header, or generated when header_lines == 0)
    comment: str | None = None  # a comment-line prefix, e.g. "#"


_NEWLINES = {"\\n": "\n", "\\r\\n": "\r\n", "\\r": "\r"}


def _unset(value: str | None) -> str | None:
    return None if value in (None, "", "(empty)") else value


def sniff_csv_dialect(head: bytes, options: DatasetOptions) -> CsvDialect:
    """The dialect of a CSV file from its first UTF-8 bytes (a few MiB at most).

    Declared options (delimiter, quote character, header) win; the rest is DuckDB's
    ``sniff_csv`` on the head cut at its last complete line.
    """
    import duckdb  # imported here: the module's interface needs no engine

    cut = head.rfind(b"\n")
    sample = head[: cut + 1] if cut >= 0 else head
    if sample.startswith(b"\xef\xbb\xbf"):
        sample = sample[3:]
    params = ["strict_mode=false", f"header={'true' if options.header else 'false'}", "sample_size=-1"]
    if options.delimiter:
        params.append(f"delim={_sql_text(options.delimiter)}")
    if options.quotechar:
        params.append(f"quote={_sql_text(options.quotechar)}")
    fd, path = tempfile.mkstemp(prefix="lakegov-head-", suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(sample)
        with duckdb.connect() as con:
            row = con.execute(
                f"SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, HasHeader "
                f"FROM sniff_csv({_sql_text(path)}, {', '.join(params)})"
            ).fetchone()
    except duckdb.Error as exc:
        raise RejectedFile("malformed", f"the CSV dialect cannot be detected: {exc}") from exc
    finally:
        os.unlink(path)
    assert row is not None
    delimiter, quote, escape, newline, comment, skip, _has_header = row
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


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
