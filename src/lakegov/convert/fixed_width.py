"""Fixed-width text: each line holds the fields a ``datasets/`` document places by
position, read by DuckDB (every vCPU) and typed like CSV text.

A field's text is trimmed of the blanks that pad it; an empty field (or one of the
dataset's null texts) is null. Empty lines are not rows. A line is a bad row, with its line
number, when it ends before its last field starts (trailing blanks are often trimmed by
editors, so a line cut inside its last field is read as padded) or when it has more than
blanks past the record width.
"""

from __future__ import annotations

import duckdb

from lakegov.convert.options import DatasetOptions, FixedWidthOptions
from lakegov.convert.sql import lines_of_file, literal
from lakegov.convert.tables import TextColumns, UnreadRow
from lakegov.errors import RejectedFile

MAX_LISTED_BAD_LINES = 100_000


def _fits(spec: FixedWidthOptions) -> str:
    last = spec.columns[-1]
    return f"(length(line) >= {last.start} AND length(rtrim(line)) <= {spec.record_width})"


def read_fixed_width(
    con: duckdb.DuckDBPyConnection, path: str, options: DatasetOptions
) -> TextColumns:
    spec = options.fixed_width
    if spec is None:
        raise RejectedFile(
            "unsupported_format",
            "a fixed-width file needs its columns in a datasets/ document (fixed_width.columns)",
        )
    lines = lines_of_file(path, skip=spec.skip_lines)
    nulls = ", ".join(literal(v.strip()) for v in options.null_values)
    fields = []
    for i, col in enumerate(spec.columns):
        value = f"trim(substr(line, {col.start}, {col.width}))"
        fields.append(f"CASE WHEN {value} IN ({nulls}) THEN NULL ELSE {value} END AS c{i}")
    fits = _fits(spec)
    reader = (
        f"(SELECT {', '.join(fields)} FROM {lines} "  # noqa: S608 - literals quoted
        f"WHERE line IS NOT NULL AND {fits})"
    )
    try:
        count = con.execute(
            f"SELECT count(*) FROM {lines} WHERE line IS NOT NULL AND NOT {fits}"  # noqa: S608
        ).fetchone()
    except duckdb.Error as exc:
        raise RejectedFile("malformed", f"the file cannot be read as lines: {exc}") from exc
    unread = []
    if count and count[0]:
        numbered = (
            f"SELECT n + {spec.skip_lines}, line FROM "  # noqa: S608
            f"(SELECT row_number() OVER () AS n, line FROM {lines}) "
            f"WHERE line IS NOT NULL AND NOT {fits} ORDER BY n LIMIT {MAX_LISTED_BAD_LINES}"
        )
        last = spec.columns[-1]
        for n, line in con.execute(numbered).fetchall():
            if len(line) < last.start:
                reason = (
                    f"the line is {len(line)} characters long: "
                    f"it ends before column {last.name} (from character {last.start})"
                )
            else:
                reason = (
                    f"the line is {len(line.rstrip())} characters long, more than the "
                    f"record width of {spec.record_width}"
                )
            unread.append(UnreadRow(int(n), "ragged_rows", reason, line))

    def lines_of(ordinals: list[int]) -> dict[int, int]:
        wanted = ", ".join(str(n) for n in ordinals) or "0"
        rows = con.execute(
            f"SELECT r, n + {spec.skip_lines} FROM (SELECT row_number() OVER () AS r, n FROM "  # noqa: S608
            f"(SELECT row_number() OVER () AS n, line FROM {lines}) "
            f"WHERE line IS NOT NULL AND {fits}) WHERE r IN ({wanted})"
        ).fetchall()
        return {int(r): int(n) for r, n in rows}

    return TextColumns(
        reader=reader,
        header=[c.name for c in spec.columns],
        lines_of=lines_of,
        unread=unread,
        format="fixed_width",
    )
