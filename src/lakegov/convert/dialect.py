"""A CSV file's dialect: how its records, fields and header are written, found from its head.

The engine takes every ``read_csv`` parameter that describes the file's text (delimiter,
quote, escape, newline, lines to skip, header, column names) from :class:`CsvDialect` and
nowhere else, so that detection lives in one place: :func:`sniff_csv_dialect`.

Detection works on the first physical lines of the file (at most ``SAMPLE_LINES``):

- **newline**: the most frequent of ``\\r\\n``, a lone ``\\r`` (old spreadsheet exports)
  and a lone ``\\n``;
- **delimiter, quote, escape**: every combination of ``", "`` ``,`` ``;`` TAB ``|`` with
  ``"`` ``'`` or no quoting, and doubled or backslash-escaped quotes, is parsed; the one
  whose well-formed records agree on the most rows (then the most columns) wins, ties
  going to the usual dialect (``,`` ``"`` doubled). A record whose quotes do not close
  is counted as bad and parsing resumes on the next line, so one stray quote cannot
  swallow the sample;
- **preamble and comments**: the table starts at the first well-formed record with the
  table's field count; the lines above it are skipped (and returned in ``skipped`` for
  the audit), but only above a header: above headerless rows such a line is more likely
  a bad first row, left for the reader to set aside. Lines starting with ``#`` that are not records of the table
  make ``#`` the comment prefix (DuckDB's ``comment`` option), so later ones are skipped too;
- **header**: row 1 is a header when, in the columns whose values all have a type (number,
  date, time, boolean), it does not have that type, e.g. ``amount`` above numbers. Without
  typed columns it is a header only when its values are unique, non-empty, name-like and
  fewer than half of them occur in their column below. When unsure the row is kept as
  data, with generated names ``col_1`` …; ``header`` in the dataset document decides instead;
- **multi-row headers**: a second row of names that fails the same type test is a
  header row too; the rows are joined per column with ``_`` (an empty cell in the upper row takes the
  value to its left, as merged cells export). ``header_rows`` in the dataset document
  sets the count.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from lakegov.convert.options import DatasetOptions
from lakegov.errors import RejectedFile

SAMPLE_LINES = 2000
SAMPLE_CHARS = 1024 * 1024
HEADER_SAMPLE = 200  # data records compared with the header candidate
DELIMITERS = (",", ", ", ";", "\t", "|")
QUOTES: tuple[str | None, ...] = ('"', "'", None)
ESCAPES: tuple[str | None, ...] = (None, "\\")
COMMENT = "#"
MAX_QUOTED_LINES = 1000  # a quoted field spanning more lines is taken for a stray quote


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str  # ",", ";", "\t", "|", or multi-char like ", "
    quote: str | None  # '"', "'" or None (no quoting)
    escape: str | None  # None: quotes are escaped by doubling; "\\" for backslash escapes
    newline: str  # "\n", "\r\n" or "\r"
    skip_lines: int  # physical lines before the header (preamble, comments)
    header_lines: int  # 0: no header row (generated names), 1: normal, >1: multi-row header
    columns: tuple[str, ...]  # raw names (from the header, or generated when header_lines == 0)
    comment: str | None = None  # a comment-line prefix, e.g. "#"
    skipped: tuple[str, ...] = field(default=(), compare=False)  # the skipped lines' text

    @property
    def skip_lines_without_comments(self) -> int:
        """``skip_lines`` less the comment lines among them: what a reader that drops
        comment lines itself (DuckDB's ``comment``) must still be told to skip."""
        if not self.comment or not self.skipped:
            return self.skip_lines
        return sum(1 for line in self.skipped if not line.startswith(self.comment))

    def describe(self) -> str:
        """One line for logs and the audit, e.g. ``';' quote '"' CRLF, header 1 row``."""
        names = {"\n": "LF", "\r\n": "CRLF", "\r": "CR"}
        delim = "TAB" if self.delimiter == "\t" else repr(self.delimiter)
        parts = [
            f"delimiter {delim}",
            f"quote {self.quote!r}" if self.quote else "no quoting",
            *(["backslash escapes"] if self.escape == "\\" else []),
            names.get(self.newline, repr(self.newline)),
            f"header {self.header_lines} row{'s' if self.header_lines != 1 else ''}"
            if self.header_lines
            else "no header (generated names)",
        ]
        if self.skip_lines:
            parts.append(f"{self.skip_lines} line{'s' if self.skip_lines > 1 else ''} skipped")
        if self.comment:
            parts.append(f"comment lines {self.comment!r}")
        return ", ".join(parts)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Record:
    line: int  # 0-based index of its first physical line
    lines: int  # physical lines it spans
    fields: tuple[str, ...]
    ok: bool  # quotes well formed
    quoted: bool = False  # a field was opened by the quote character
    escaped: bool = False  # an escape character was used inside quotes


def split_lines(text: str, newline: str) -> list[str]:
    """Physical lines without their terminator (LF files also drop a CR before the LF)."""
    if newline == "\r":
        lines = text.split("\r")
    else:
        lines = text.split("\n")
        if newline == "\r\n":
            lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parse_record(
    lines: list[str], start: int, delimiter: str, quote: str | None, escape: str | None
) -> Record:
    """The record starting on physical line ``start``. A quoted field may run over
    several lines; a quote that does not close (or closes followed by anything but a
    delimiter) makes the record not ``ok``, spanning only its first line."""
    fields: list[str] = []
    current: list[str] = []
    line_no = start
    text = lines[start]
    i = 0
    at_field_start = True
    dlen = len(delimiter)
    quoted = escaped = False
    while True:
        if at_field_start and quote is not None and text.startswith(quote, i):
            # quoted field
            quoted = True
            i += 1
            while True:
                if i >= len(text):
                    line_no += 1
                    if line_no >= len(lines) or line_no - start > MAX_QUOTED_LINES:
                        return Record(start, 1, (*fields, "".join(current)), False)
                    current.append("\n")
                    text = lines[line_no]
                    i = 0
                    continue
                ch = text[i]
                if escape is not None and ch == escape and i + 1 < len(text):
                    escaped = True
                    current.append(text[i + 1])
                    i += 2
                    continue
                if ch == quote:
                    if escape is None and text.startswith(quote, i + 1):
                        current.append(quote)
                        i += 2
                        continue
                    i += 1
                    break
                current.append(ch)
                i += 1
            # after the closing quote: a delimiter or the end of the line
            if i >= len(text):
                fields.append("".join(current))
                return Record(start, line_no - start + 1, tuple(fields), True, quoted, escaped)
            if not text.startswith(delimiter, i):
                return Record(start, 1, (*fields, "".join(current)), False)
            fields.append("".join(current))
            current = []
            i += dlen
            at_field_start = True
            continue
        at_field_start = False
        nxt = text.find(delimiter, i)
        if nxt < 0:
            fields.append(text[i:])
            return Record(start, line_no - start + 1, tuple(fields), True, quoted, escaped)
        fields.append(text[i:nxt])
        i = nxt + dlen
        at_field_start = True
        if i >= len(text):
            fields.append("")
            return Record(start, line_no - start + 1, tuple(fields), True, quoted, escaped)


def iter_records(
    lines: list[str],
    delimiter: str,
    quote: str | None,
    escape: str | None,
    start: int = 0,
) -> Iterator[Record]:
    """Records from line ``start`` on; blank lines are not records; a bad record is
    yielded and parsing resumes on the line after its first."""
    i = start
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        rec = parse_record(lines, i, delimiter, quote, escape)
        yield rec
        i += rec.lines


# --------------------------------------------------------------------------- types

_INT = re.compile(r"^[+-]?\d+$")
_DECIMAL = re.compile(r"^[+-]?(\d+[.,]\d*|[.,]\d+|\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(
    r"^(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}/\d{1,2}/\d{1,2})$"
)
_TIMESTAMP = re.compile(
    r"^(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4})[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)
_TIME = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")
_BOOL = {"true", "false", "yes", "no"}


def value_type(text: str) -> str | None:
    """The type family of one field's text: ``None`` for empty, ``"text"`` when untyped."""
    value = text.strip()
    if not value:
        return None
    if _INT.match(value) or _DECIMAL.match(value):
        return "number"
    if _DATE.match(value):
        return "date"
    if _TIMESTAMP.match(value):
        return "timestamp"
    if _TIME.match(value):
        return "time"
    if value.lower() in _BOOL:
        return "bool"
    return "text"


def _column_types(rows: Sequence[tuple[str, ...]], width: int) -> list[str | None]:
    """Per column: the one type all non-empty values share (``None``: text, mixed or empty)."""
    result: list[str | None] = []
    for c in range(width):
        kinds = {value_type(r[c]) for r in rows if c < len(r)} - {None}
        result.append(kinds.pop() if len(kinds) == 1 and "text" not in kinds else None)
    return result


def _name_like(value: str) -> bool:
    v = value.strip()
    return 0 < len(v) <= 64 and any(ch.isalpha() for ch in v)


def _header_votes(row: tuple[str, ...], types: list[str | None]) -> tuple[int, int]:
    """(columns where ``row`` breaks the column's type, columns where it fits)."""
    breaks = fits = 0
    for value, kind in zip(row, types, strict=False):
        if kind is None or not value.strip():
            continue
        if value_type(value) == kind:
            fits += 1
        else:
            breaks += 1
    return breaks, fits


def is_header(row: tuple[str, ...], data: Sequence[tuple[str, ...]]) -> bool | None:
    """True/False when the evidence says so; ``None`` when it cannot tell."""
    types = _column_types(data, len(row))
    breaks, fits = _header_votes(row, types)
    if breaks or fits:
        return breaks > fits
    # no typed column: only a row of unique names that never occur below is a header
    names = [v.strip() for v in row]
    if not all(_name_like(v) for v in names) or len({v.lower() for v in names}) != len(names):
        return None
    below = [{r[c].strip() for r in data if c < len(r)} for c in range(len(row))]
    seen_below = sum(1 for c, v in enumerate(names) if v in below[c])
    if seen_below * 2 >= len(names):  # half the "names" are values of their column
        return None
    return True


def _join_header(rows: list[tuple[str, ...]]) -> tuple[str, ...]:
    if len(rows) == 1:
        return tuple(v.strip() for v in rows[0])
    width = max(len(r) for r in rows)
    filled = []
    for r, row in enumerate(rows):
        cells = [row[c].strip() if c < len(row) else "" for c in range(width)]
        if r < len(rows) - 1:  # an upper row's empty cell continues the group on its left
            for c in range(1, width):
                if not cells[c]:
                    cells[c] = cells[c - 1]
        filled.append(cells)
    return tuple("_".join(p for p in parts if p) for parts in zip(*filled, strict=True))


# --------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class _Candidate:
    delimiter: str
    quote: str | None
    escape: str | None
    width: int  # the table's field count
    start: int  # index (in records) of the table's first record
    records: tuple[Record, ...]

    @property
    def score(self) -> tuple[int, int]:
        agree = sum(1 for r in self.records[self.start :] if r.ok and len(r.fields) == self.width)
        if self.quote is None:
            # no quoting reads a stray quote as text; it must win clearly, not by a row or two
            agree -= max(2, agree // 20)
        return agree, self.width


def _detect_newline(text: str) -> str:
    crlf = text.count("\r\n")
    cr = text.count("\r") - crlf
    lf = text.count("\n") - crlf
    if crlf and crlf >= lf and crlf >= cr:
        return "\r\n"
    if cr > lf:
        return "\r"
    return "\n"


def _table_start(records: list[Record], width: int) -> int:
    """The first well-formed record with the table's field count (what is above it is a
    preamble: titles, export notes, blank lines)."""
    for i, rec in enumerate(records):
        if rec.ok and len(rec.fields) == width:
            return i
    return 0


def _candidate(
    lines: list[str], delimiter: str, quote: str | None, escape: str | None, comment: str | None
) -> _Candidate | None:
    records = [
        r
        for r in iter_records(lines, delimiter, quote, escape)
        if comment is None or not lines[r.line].startswith(comment)
    ]
    widths = Counter(len(r.fields) for r in records if r.ok and len(r.fields) > 1)
    if not widths:
        return None
    # a quote other than '"' or a backslash escape counts only where the file uses it
    if quote not in (None, '"') and not any(r.ok and r.quoted for r in records):
        return None
    if escape is not None and not any(r.ok and r.escaped for r in records):
        return None
    width = widths.most_common(1)[0][0]
    return _Candidate(delimiter, quote, escape, width, _table_start(records, width), tuple(records))


def _best(lines: list[str], options: DatasetOptions, comment: str | None) -> _Candidate | None:
    delimiters: tuple[str, ...] = (options.delimiter,) if options.delimiter else DELIMITERS
    quotes = (options.quotechar,) if options.quotechar else QUOTES
    # A delimiter, a quote other than '"' or an escape the sample does not hold cannot win
    # (no record splits on it; no record is quoted or escaped with it): not parsed at all.
    held = set("".join(lines))
    delimiters = tuple(d for d in delimiters if d[0] in held or d == options.delimiter)
    best: _Candidate | None = None
    for quote in quotes:
        if quote not in (None, '"') and quote not in held:
            continue
        for escape in ESCAPES:
            if escape is not None and (quote is None or escape not in held):
                continue
            for delimiter in delimiters:
                cand = _candidate(lines, delimiter, quote, escape, comment)
                if cand is None:
                    continue
                better = best is None or cand.score > best.score
                # ", " over "," when both read the same table: every delimiter has its space
                if best is not None and cand.score == best.score and cand.delimiter == ", ":
                    better = best.delimiter == "," and best.quote == cand.quote
                if better:
                    best = cand
    return best


def sniff_csv_dialect(head: bytes, options: DatasetOptions) -> CsvDialect:
    """The dialect of a CSV file from its first UTF-8 bytes (a few MiB at most).

    Settings of the dataset (delimiter, quote character, header, header rows, lines to
    skip) win over detection. Raises :class:`RejectedFile` when no table can be found.
    """
    text = head[:SAMPLE_CHARS].decode("utf-8", errors="replace").lstrip("\ufeff")
    newline = _detect_newline(text)
    lines = split_lines(text, newline)
    if len(head) > SAMPLE_CHARS or not text.endswith(("\n", "\r")):
        lines = lines[:-1] or lines  # the last line may be cut
    lines = lines[:SAMPLE_LINES]
    if not any(ln.strip() for ln in lines):
        raise RejectedFile("empty", "the file has no data rows")

    forced_skip = options.skip_lines
    body = lines[forced_skip or 0 :]
    comment = None
    if any(ln.startswith(COMMENT) for ln in body):
        # '#' lines that are not records of the table are comments
        plain = _best(body, options, None)
        fits = (
            {r.line for r in plain.records if r.ok and len(r.fields) == plain.width}
            if plain
            else set()
        )
        if any(ln.startswith(COMMENT) and i not in fits for i, ln in enumerate(body)):
            comment = COMMENT
    cand = _best(body, options, comment)
    if cand is None:
        # one column: no delimiter splits the lines
        return _single_column(lines, newline, options, comment)
    records = list(cand.records)
    if forced_skip is not None:
        start_index = 0
        skip = forced_skip
    else:
        start_index = cand.start
        skip = records[start_index].line if records else 0
    table = [r for r in records[start_index:] if r.ok]
    header_lines = _header_lines(table, cand.width, options)
    if not header_lines and forced_skip is None and start_index:
        # a preamble sits above a header; above headerless rows, what looks like one is
        # more likely a bad first row: keep it, for the reader to set aside with its line
        skip = 0
    if header_lines:
        columns = _join_header([r.fields for r in table[:header_lines]])
    else:
        columns = tuple(f"col_{i + 1}" for i in range(cand.width))
    return CsvDialect(
        delimiter=cand.delimiter,
        quote=cand.quote,
        escape=cand.escape,
        newline=newline,
        skip_lines=skip,
        header_lines=header_lines,
        columns=columns,
        comment=comment,
        skipped=tuple(ln[:200] for ln in lines[:skip]),
    )


def _header_lines(table: list[Record], width: int, options: DatasetOptions) -> int:
    if options.header_rows is not None:
        return options.header_rows
    if options.header is False or not table:
        return 0
    rows = [r.fields for r in table[: 2 + HEADER_SAMPLE] if len(r.fields) == width]
    first = table[0].fields
    # the column types come from the rows below the two header candidates
    data = rows[2:] if len(rows) > 3 else rows[1:]
    verdict = is_header(first, data) if data else True
    if options.header is None and not verdict:
        return 0
    if len(rows) > 3 and table[1].fields == rows[1]:
        types = _column_types(data, width)
        breaks, fits = _header_votes(rows[1], types)
        # a second row of names that breaks the column types the way row 1 does
        if breaks > fits and all(_name_like(v) for v in rows[1]):
            return 2
    return 1


def _single_column(
    lines: list[str], newline: str, options: DatasetOptions, comment: str | None
) -> CsvDialect:
    rows = [ln for ln in lines if ln.strip() and not (comment and ln.startswith(comment))]
    header = options.header
    if header is None:
        data = [(r,) for r in rows[1 : 1 + HEADER_SAMPLE]]
        header = bool(data) and bool(is_header((rows[0],), data))
    first = rows[0].strip() if rows else ""
    return CsvDialect(
        delimiter=options.delimiter or ",",
        quote=options.quotechar or '"',
        escape=None,
        newline=newline,
        skip_lines=options.skip_lines or 0,
        header_lines=1 if header else 0,
        columns=(first,) if header else ("col_1",),
        comment=comment,
    )


__all__ = ["CsvDialect", "Record", "iter_records", "parse_record", "sniff_csv_dialect"]
