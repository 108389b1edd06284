"""CSV and other delimited text: the dialect sniffed, types inferred or declared, checked by
DuckDB with its rejects, shifted rows found by a quote search and set aside at their line
(the rules are in :mod:`lakegov.convert.engine`'s docstring)."""

from __future__ import annotations

import array
import csv
import os
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import duckdb
import pyarrow as pa

from lakegov.convert.dialect import CsvDialect, sniff_csv_dialect
from lakegov.convert.options import DatasetOptions
from lakegov.convert.run import (
    LINE_BREAK,
    MAX_RETYPES,
    MAX_STRAY_QUOTES,
    REJECT_LINES,
    SAMPLE_ROWS,
    BadLine,
    ColumnNames,
    Run,
    complete_lines,
    declared_copy,
    first_line,
    lines_at,
    read_head,
)
from lakegov.convert.sql import (
    identifier,
    lines_of_file,
    literal,
    typed_text,
    widen_request,
)
from lakegov.errors import RejectedFile
from lakegov.schema import (
    duckdb_type,
    join_types,
    texts_type,
    widen_for_text,
)

# --------------------------------------------------------------------------- CSV


def _csv_reader(
    spool: str, dialect: CsvDialect, options: DatasetOptions, ncols: int, checked: bool = False
) -> str:
    """DuckDB's read of the CSV as ``ncols`` text columns ``c0``... A ``checked`` read also
    refuses, with :data:`SHIFTED`, the rows a plain one would load shifted or reject
    without a quote's help: see :func:`_checked_texts`."""
    params = [
        "auto_detect=false",
        f"delim={literal(dialect.delimiter)}",
        f"quote={literal(dialect.quote or '')}",
        f"escape={literal(dialect.escape or dialect.quote or '')}",
        # DuckDB drops comment lines itself and does not count them in ``skip``
        f"skip={dialect.skip_lines_without_comments + max(dialect.header_lines - 1, 0)}",
        f"header={'true' if dialect.header_lines else 'false'}",
        "columns={"
        + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(ncols + (1 if checked else 0)))
        + "}",
        "store_rejects=true",
        "strict_mode=true",
    ]
    if checked:
        # no unquoted field is a line end and no quoted one is a null: every field read
        # is a text, every field padded a NULL (the null values are mapped in SQL)
        params += ["nullstr=" + literal("\n"), "allow_quoted_nulls=false", "null_padding=true"]
    else:
        params.append("nullstr=[" + ", ".join(literal(v) for v in options.null_values) + "]")
    if dialect.comment:
        params.append(f"comment={literal(dialect.comment)}")
    if dialect.newline == "\r":
        # "\n" and "\r\n" are both read when new_line is unset; setting either (DuckDB
        # 1.4.4, strict mode) reads no rows at all
        params.append("new_line='\\r'")
    reader = f"read_csv({literal(spool)}, {', '.join(params)})"
    return _checked_texts(reader, options, ncols) if checked else reader


SHIFTED = "lakegov-shifted"


def _checked_texts(reader: str, options: DatasetOptions, ncols: int) -> str:
    """The ``ncols`` text columns of a ``reader`` of ``ncols + 1`` columns that pads short
    rows with NULLs and reads every field present as text: a row is kept when its last
    column is there and the one after it is not. Any other row (too few fields, or one
    field too many whose last is empty, which DuckDB's plain read drops silently) stops
    the read with :data:`SHIFTED` before its values are typed."""
    nulls = ", ".join(literal(v) for v in options.null_values)
    texts = ", ".join(
        f"CASE WHEN c{i} IN ({nulls}) THEN NULL ELSE c{i} END AS c{i}" if nulls else f"c{i}"
        for i in range(ncols)
    )
    whole = f"c{ncols - 1} IS NOT NULL AND c{ncols} IS NULL"
    return (
        f"(SELECT {texts} FROM {reader} "  # noqa: S608 - literals quoted
        f"WHERE CASE WHEN {whole} THEN true ELSE error('{SHIFTED}') END)"
    )


_REJECT_CODES = {
    "MISSING COLUMNS": "ragged_rows",
    "TOO MANY COLUMNS": "ragged_rows",
    "INVALID UNICODE": "encoding",
    "INVALID ENCODING": "encoding",
    "UNQUOTED VALUE": "malformed",
    "LINE SIZE OVER MAXIMUM": "malformed",
    "INVALID STATE": "malformed",
    "CAST": "schema_mismatch",
}


def _csv_rejects(run: Run, spool: str, ncols: int) -> list[BadLine]:
    try:
        rows = run.con.execute(
            "SELECT line_byte_position, error_type::VARCHAR, csv_line, error_message "
            "FROM reject_errors ORDER BY line_byte_position"
        ).fetchall()
    except duckdb.CatalogException:
        return []
    run.clear_rejects()
    if not rows:
        return []
    # a reject after empty lines starts at the first of them; its record after them
    starts = []
    for pos, kind, text, message in rows:
        record = text.lstrip("\r\n")
        starts.append((max(int(pos) - 1, 0) + len(text) - len(record), kind, record, message))
    lines = lines_at(spool, [r[0] for r in starts])
    bad = []
    seen: set[int] = set()
    for pos, kind, text, message in starts:
        line = lines[pos]
        if line in seen:
            continue
        seen.add(line)
        code = _REJECT_CODES.get(kind, "malformed")
        if code == "ragged_rows":
            reason = f"expected {ncols} fields"
        elif code == "encoding":
            reason = "the line is not valid UTF-8 (declare the file's encoding)"
        else:
            reason = message
        bad.append(BadLine(line, code, reason, text))
    return bad


def _sample_types(run: Run, reader: str, ncols: int) -> list[pa.DataType]:
    rows = run.con.execute(f"SELECT * FROM {reader} LIMIT {SAMPLE_ROWS}").fetchall()  # noqa: S608
    run.clear_rejects()
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) or [()] * ncols
    return [texts_type([v for v in values if v is not None]) for values in columns]


def check_declared(header: list[str], declared: pa.Schema) -> None:
    """A file's columns against its declared schema: none undeclared, none required missing."""
    undeclared = [h for h in header if h not in declared.names]
    if undeclared:
        raise RejectedFile(
            "schema_mismatch", f"column {undeclared[0]} is not in the declared schema"
        )
    missing = [f.name for f in declared if f.name not in header and not f.nullable]
    if missing:
        raise RejectedFile(
            "schema_mismatch", f"declared column {missing[0]} is missing and not nullable"
        )


def convert_csv(
    run: Run,
    spool: str,
    out: str,
    names: ColumnNames,
    declared: pa.Schema | None,
    floors: dict[str, pa.DataType],
    row_group_rows: int,
) -> tuple[int, int, CsvDialect]:
    """(rows in, rows out, the dialect it was read with)."""
    options = run.options
    dialect = sniff_csv_dialect(read_head(spool), options)
    header = names.header(dialect.columns)
    if not header:
        raise RejectedFile("empty", "the file has no header")
    ncols = len(header)
    if declared is not None:
        check_declared(header, declared)

    def read(spool: str, checked: bool = False) -> tuple[int, list[BadLine], list[BadLine]]:
        """(rows written, rows not fitting the declared schema, the reader's rejects)."""
        reader = _csv_reader(spool, dialect, options, ncols, checked)
        try:
            if declared is not None:
                text = {name: f"c{i}" for i, name in enumerate(header)}

                def lines_of(ordinals: list[int]) -> dict[int, int]:
                    rejected = {b.line for b in _csv_rejects(run, spool, ncols)}
                    return _csv_record_lines(spool, dialect, ordinals, rejected)

                rows_out, failing = declared_copy(
                    run, reader, declared, text, out, row_group_rows, lines_of, lambda r: r
                )
            else:
                rows_out = csv_inferred(run, reader, out, header, floors, row_group_rows)
                failing = []
        except duckdb.Error as exc:
            # DuckDB's parallel reader pads no row of a file with quoted line ends
            if checked and (SHIFTED in str(exc) or "null_padding" in str(exc)):
                raise _ShiftedRows from exc
            if not isinstance(exc, duckdb.InvalidInputException):
                raise
            raise RejectedFile("malformed", f"the CSV cannot be parsed: {first_line(exc)}") from exc
        return rows_out, failing, _csv_rejects(run, spool, ncols)

    # Rows DuckDB would load shifted: with no quote where an unquoted field has one (a
    # search over the file's bytes tells), the checked read finds the others itself.
    # Otherwise, or when it found one, the lines are looked for first and the file read
    # from a copy with them emptied (every line keeps its number). A file of one column
    # is never read checked: DuckDB reads its empty lines as null values, and a second,
    # padded column would make them blank lines, skipped.
    malformed: list[BadLine] = []
    try:
        if ncols == 1 or _may_hold_misplaced_quotes(spool, dialect, run.threads):
            raise _ShiftedRows
        rows_out, failing, rejects = read(spool, checked=True)
        if any(_swallows_lines(b) for b in rejects):
            raise _ShiftedRows  # a quote that never closes hid lines from the check
    except _ShiftedRows:
        run.clear_rejects()
        malformed = _suspect_lines(run, spool, dialect)
        if malformed:
            spool = _without_lines(spool, {b.line for b in malformed}, run.workdir)
        rows_out, failing, rejects = read(spool)
    # A quote that never closes makes DuckDB read the rest of the file (or up to the next
    # quote) as one rejected value: the rows after it would be lost in that reject. Its
    # line is emptied too and the file read again.
    for _ in range(MAX_STRAY_QUOTES):
        swallowing = [b for b in rejects if _swallows_lines(b)]
        if not swallowing:
            break
        spool = _without_lines(spool, {b.line for b in swallowing}, run.workdir)
        malformed += [
            BadLine(
                b.line,
                "malformed",
                "a quote opened on this line never closes",
                str(b.raw).splitlines()[0],
            )
            for b in swallowing
        ]
        rows_out, failing, rejects = read(spool)
    else:
        raise RejectedFile(
            "malformed",
            f"quotes that never close on more than {MAX_STRAY_QUOTES} lines",
            [b.line for b in malformed[:REJECT_LINES]],
        )
    bad = sorted(malformed + rejects + failing, key=lambda b: b.line)
    run.set_aside(bad, rows_out + len(bad))
    return rows_out + len(bad), rows_out, dialect


def _swallows_lines(bad: BadLine) -> bool:
    """A reject for an unterminated quote whose text runs over the following lines."""
    text = str(bad.raw).rstrip("\r\n")
    return "unterminated quote" in bad.reason and ("\n" in text or "\r" in text)


def _without_lines(path: str, lines: set[int], workdir: str) -> str:
    """A copy of ``path`` in ``workdir`` with the physical ``lines`` emptied, their line
    ends kept (every other line keeps its number; DuckDB skips empty lines). The copy is
    new each time: ``path`` may be the caller's own file, read in place."""
    fd, emptied = tempfile.mkstemp(prefix="input-", suffix=".csv", dir=workdir)
    with os.fdopen(fd, "wb") as dst:
        for first, part in complete_lines(path):
            pieces = LINE_BREAK.split(part)
            ends = LINE_BREAK.findall(part)
            for i, text in enumerate(pieces):
                dst.write(b"" if first + i in lines else text)
                if i < len(ends):
                    dst.write(ends[i])
    return emptied


def _re2_class(chars: set[str]) -> str:
    """A negated RE2 character class of ``chars``."""
    escaped = {"\t": "\\t", "\r": "\\r", "\n": "\\n"}
    return (
        "[^" + "".join(escaped.get(c, c if c.isalnum() else "\\" + c) for c in sorted(chars)) + "]"
    )


def _re2_text(text: str) -> str:
    return "".join("\\t" if c == "\t" else c if c.isalnum() else "\\" + c for c in text)


def _suspect_patterns(dialect: CsvDialect, breaks: str = "") -> tuple[str | None, str]:
    """RE2 patterns over one physical line: (a quote where no field can have one, exactly
    one field too many with the last one empty). ``breaks``: characters no match may
    contain besides the dialect's (the line ends, when the text is more than one line)."""
    d = _re2_text(dialect.delimiter)
    d0 = dialect.delimiter[0]
    width = len(dialect.columns)
    cut = set(breaks)
    if dialect.quote is None:
        return None, f"^(?:{_re2_class({d0} | cut)}*{d}){{{width}}}$"
    q = _re2_text(dialect.quote)
    if dialect.escape:
        e = _re2_text(dialect.escape)
        quoted = f"{q}(?:{_re2_class({dialect.quote, dialect.escape} | cut)}|{e}.)*{q}"
    else:
        quoted = f"(?:{q}{_re2_class({dialect.quote} | cut)}*{q})+"
    field = f"(?:{quoted}|{_re2_class({dialect.quote, d0} | cut)}*)"
    trailing = f"^(?:{field}{d}){{{width}}}$"
    around = {dialect.quote, dialect.delimiter[0], dialect.delimiter[-1]} | cut
    before = around | ({dialect.escape} if dialect.escape else set())
    quotes = f"{_re2_class(before)}{q}{_re2_class(around)}"
    return quotes, trailing


GATE_CHUNK = 8 * 1024 * 1024  # bytes of whole lines handed to one thread at a time
GATE_PIECE = 64 * 1024  # bytes per value the patterns run over (cut after a line end)


def _text_pieces(data: bytes | bytearray) -> pa.Array:
    """``data`` (whole lines) as a binary array of ~GATE_PIECE-byte values, each cut right
    after a line end, without copying it."""
    offsets = array.array("i", [0])
    size = len(data)
    while offsets[-1] < size:
        start = offsets[-1] + GATE_PIECE
        if start >= size:
            offsets.append(size)
            break
        ends = [data.find(b, start, start + GATE_PIECE) for b in (b"\n", b"\r")]
        if max(ends) < 0:  # a line longer than the window
            ends = [data.find(b, start) for b in (b"\n", b"\r")]
        found = [e for e in ends if e >= 0]
        offsets.append(min(found) + 1 if found else size)
    return pa.Array.from_buffers(
        pa.binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


class _ShiftedRows(Exception):
    """A CSV may hold rows DuckDB would load shifted: look for their lines first."""


def _may_hold_misplaced_quotes(path: str, dialect: CsvDialect, threads: int) -> bool:
    """Whether any physical line of ``path`` may have a quote where no field can (the
    first of :func:`_suspect_patterns`; ``False`` only when none has). The pattern runs
    over runs of whole lines as bytes (RE2's Latin-1 mode, on every vCPU); it matches no
    line end, so each line's match is one here. The header, a preamble or a comment may
    match too: :func:`_suspect_lines` then sorts them out. ``True`` when the dialect is
    not plain ASCII or ends lines with CR alone (where a LF is text)."""
    if dialect.quote is None:
        return False
    chars = dialect.delimiter + dialect.quote + (dialect.escape or "")
    if dialect.newline == "\r" or not chars.isascii():
        return True
    import pyarrow.compute as pc  # only CSV reads need it (~0.04 s to import)

    pattern, _ = _suspect_patterns(dialect, "\r\n")
    quote = dialect.quote.encode()

    def matches(data: bytearray) -> bool:
        if data.find(quote) < 0:
            return False
        found = pc.match_substring_regex(_text_pieces(data), pattern=pattern)
        return bool(pc.any(found).as_py())

    file_size = os.path.getsize(path)
    # a buffer no larger than the file: a zeroed GATE_CHUNK per small file costs more CPU
    # than the search itself
    chunk = min(GATE_CHUNK, max(file_size, 1))

    def runs() -> Iterator[bytearray]:
        """Successive runs of whole lines, each read into its own buffer (no copy)."""
        with open(path, "rb", buffering=0) as f:
            carry = b""
            while True:
                data = bytearray(chunk + len(carry))
                data[: len(carry)] = carry
                size = len(carry) + (f.readinto(memoryview(data)[len(carry) :]) or 0)
                if size == len(carry):
                    if carry:
                        yield bytearray(carry)
                    return
                cut = max(data.rfind(b"\n", 0, size), data.rfind(b"\r", 0, size)) + 1
                carry = bytes(data[cut:size])
                if cut:
                    del data[cut:]
                    yield data

    if file_size <= GATE_CHUNK:  # a run or two: not worth a thread
        return any(matches(data) for data in runs())
    with ThreadPoolExecutor(max(threads, 1)) as pool:
        pending: deque[Future[bool]] = deque()
        for data in runs():
            pending.append(pool.submit(matches, data))
            if len(pending) > threads and pending.popleft().result():
                return True
        return any(f.result() for f in pending)


def _suspect_lines(run: Run, path: str, dialect: CsvDialect) -> list[BadLine]:
    """Rows DuckDB would load with shifted values, found before it reads the file:

    - a quote inside an unquoted field (``07:31 "Lamp; LED"``: a delimiter is missing
      before it) or text right after a closing quote (``"Smith, Jr." Lisbon``): DuckDB reads
      the first kind as text and splits at the delimiter inside the quotes;
    - a row with one field too many whose last field is empty (``a,b,extra,c,``): DuckDB
      takes the trailing delimiter for a line end and loads the row shifted.

    DuckDB itself reads the file line by line (one text column; empty lines are rows, so
    the row number is the physical line) and matches the lines with RE2, on every vCPU.
    A file it cannot read that way is left to the conversion's own read to report.
    """
    quotes, trailing = _suspect_patterns(dialect)
    # the trailing pattern ends with the delimiter: the cheap suffix test goes first
    matches = [
        f"(suffix(line, {literal(dialect.delimiter)}) "
        f"AND regexp_matches(line, {literal(trailing)}))"
    ]
    if quotes is not None:
        # most lines of most files hold no quote at all: a byte search decides for them
        matches.insert(
            0,
            f"(contains(line, {literal(dialect.quote or '')}) "
            f"AND regexp_matches(line, {literal(quotes)}))",
        )
    lines = lines_of_file(path, new_line="\\r" if dialect.newline == "\r" else None)
    any_match = f"SELECT count(*) FROM {lines} WHERE {' OR '.join(matches)}"  # noqa: S608
    query = (
        f"SELECT n, line, {matches[0]} FROM "  # noqa: S608 - literals quoted
        f"(SELECT row_number() OVER () AS n, line FROM {lines}) "
        f"WHERE n > {dialect.skip_lines + dialect.header_lines} AND line IS NOT NULL "
        f"AND ({' OR '.join(matches)}) ORDER BY n LIMIT 100001"
    )
    try:
        # Numbering the lines costs three times the scan (the window keeps every line):
        # a parallel scan first tells whether any line is suspect at all (the header
        # and preamble may match too; then the numbered query sorts them out).
        first = run.con.execute(any_match).fetchone()
        if not first or not first[0]:
            return []
        rows = run.con.execute(query).fetchall()
    except duckdb.Error:
        return []
    width = len(dialect.columns)
    found = []
    for n, line, misplaced_quote in rows:
        if dialect.comment and line.startswith(dialect.comment):
            continue
        if misplaced_quote and quotes is not None:
            reason = "a quote inside an unquoted field: a delimiter or a quote is missing"
            found.append(BadLine(int(n), "malformed", reason, line))
        else:
            found.append(BadLine(int(n), "ragged_rows", f"expected {width} fields", line))
    return found


def csv_inferred(
    run: Run,
    reader: str,
    out: str,
    header: list[str],
    floors: dict[str, pa.DataType],
    row_group_rows: int,
) -> int:
    """Write the file with inferred types (widened and written again if a later value needs
    it); the number of rows written."""
    ncols = len(header)
    types = _sample_types(run, reader, ncols)
    for i, name in enumerate(header):
        if name in floors:
            types[i] = join_types(floors[name], types[i])
    wide = [False] * ncols
    for _ in range(MAX_RETYPES):
        select = ", ".join(
            f"{typed_text(t, f'c{i}', i)} AS {identifier(name)}"
            for i, (t, name) in enumerate(zip(types, header, strict=True))
        )
        absent = [
            f"NULL::{duckdb_type(t)} AS {identifier(n)}"
            for n, t in floors.items()
            if n not in header
        ]
        query = f"SELECT {', '.join([select, *absent])} FROM {reader}"  # noqa: S608
        try:
            return run.copy(query, out, row_group_rows)
        except duckdb.Error as exc:
            request = widen_request(exc)
            if request is None:
                raise
            position, value = request
            types[position], wide[position] = widen_for_text(
                types[position], wide[position], value, retype=True
            )
            run.clear_rejects()
    raise RejectedFile("malformed", "the column types do not settle")  # pragma: no cover


def _csv_record_lines(
    spool: str, dialect: CsvDialect, ordinals: list[int], rejected: set[int]
) -> dict[int, int]:
    """Physical line of the data records numbered ``ordinals`` (1-based, as DuckDB reads
    them: blank lines and the rows it rejected, starting on the lines ``rejected``, are not
    records). One pass with Python's csv module: only files with bad rows pay for it."""
    wanted = set(ordinals)
    out: dict[int, int] = {}
    skip = dialect.skip_lines + dialect.header_lines
    with open(spool, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(
            f,
            delimiter=dialect.delimiter[0],
            quotechar=dialect.quote or '"',
            quoting=csv.QUOTE_MINIMAL if dialect.quote else csv.QUOTE_NONE,
            escapechar=dialect.escape,
            skipinitialspace=dialect.delimiter[1:].isspace(),  # ", ": a quote after the space
            strict=False,
        )
        n = 0
        start = 1
        for record in reader:
            line, start = start, reader.line_num + 1
            if line <= skip or not record or line in rejected:
                continue
            if dialect.comment and record[0].startswith(dialect.comment):
                continue
            n += 1
            if n in wanted:
                out[n] = line
                if len(out) == len(wanted):
                    break
    return out
