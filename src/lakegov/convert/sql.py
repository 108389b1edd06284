"""DuckDB SQL text for the converter: quoting, and the lattice's rules as SQL checks.

A converted column is read as text and turned into its type by :func:`typed_text`, whose
check (:func:`shape`, then the cast) raises with :data:`WIDEN`, the column's position and
the value on anything that does not fit exactly; the engine reads that back with
:func:`widen_request`, widens the column on the lattice and converts the file again.
"""

from __future__ import annotations

import re

import duckdb
import pyarrow as pa

from lakegov.schema import BOOLEAN_TEXTS, MAX_EXACT_INT, duckdb_type

WIDEN = "lakegov-widen"


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lines_of_file(path: str, *, skip: int = 0, new_line: str | None = None) -> str:
    """A table expression of the file's physical lines, one text value ``line`` each (an
    empty line is a NULL row, so a row's number is its line's), read by DuckDB."""
    separator = literal("\x1f\x1e\x1f\x1e")  # in no line: each line is one value
    extra = f", skip={skip}" if skip else ""
    if new_line is not None:
        extra += f", new_line={literal(new_line)}"
    return (
        f"read_csv({literal(path)}, delim={separator}, quote='', escape='', header=false, "
        f"columns={{'line': 'VARCHAR'}}, auto_detect=false, strict_mode=false{extra})"
    )


INTEGER = "-?([1-9][0-9]*|0)"
DECIMAL = "-?[0-9]+([.][0-9]+)?"


def shape(t: pa.DataType, col: str) -> str:
    """A SQL condition on the text ``col`` that a value of ``t`` must meet beyond casting,
    by the lattice's rules: an integer written as such (``007``, ``+5``, ``1e3``, ``1.5``
    are not: DuckDB's cast would take them), no float starting with a zero digit, no
    integer a float64 would round, a timestamp with a zone only in a zoned column. The
    tests are the cheapest found (a regular expression costs three casts; a character
    of the text, ``col[1]``, costs more than a ``GLOB``, ``length`` more than ``strlen``,
    equal here: a text that is not ASCII fails the cast anyway)."""
    if pa.types.is_integer(t):
        return f"CAST(TRY_CAST({col} AS {duckdb_type(t)}) AS VARCHAR) = {col}"
    if pa.types.is_decimal(t):
        pattern = INTEGER if t.scale == 0 else DECIMAL
        return f"regexp_full_match({col}, {literal(pattern)})"
    if pa.types.is_floating(t):
        # almost every value is short and does not start with "0<digit>"
        return (
            f"NOT {col} GLOB '0[0-9]*' AND (strlen({col}) < 16 "
            f"OR NOT coalesce(regexp_full_match({col}, '[+-]?[0-9]+') AND "
            f"coalesce(abs(TRY_CAST({col} AS HUGEINT)) > {MAX_EXACT_INT}, true), false))"
        )
    if pa.types.is_boolean(t):
        return f"{col} IN ({', '.join(literal(v) for v in BOOLEAN_TEXTS)})"
    if pa.types.is_date(t):
        return f"strlen({col}) = 10"
    if pa.types.is_timestamp(t):
        # a zone is a "Z" at the end, or a sign after the date part
        zoned = f"(suffix({col}, 'Z') OR contains({col}, '+') OR contains(substr({col}, 11), '-'))"
        return zoned if t.tz else f"NOT {zoned}"
    return "true"


def fits(t: pa.DataType, col: str) -> str:
    """A SQL condition: the non-null text ``col`` is exactly a value of ``t``."""
    if pa.types.is_string(t):
        return "true"
    return f"({shape(t, col)} AND TRY_CAST({col} AS {duckdb_type(t)}) IS NOT NULL)"


def typed_text(t: pa.DataType, col: str, position: int) -> str:
    """The text column ``col`` as ``t``; any value that does not fit aborts the read with
    a message naming the column's position and the value (to widen it and run again)."""
    if pa.types.is_string(t):
        return col
    stop = f"error('{WIDEN} {position} ' || {col})"
    if pa.types.is_null(t):
        return f"CASE WHEN {col} IS NULL THEN NULL::VARCHAR ELSE {stop} END"
    return (
        f"CASE WHEN {col} IS NULL THEN NULL WHEN {shape(t, col)} THEN "
        f"coalesce(TRY_CAST({col} AS {duckdb_type(t)}), {stop}) ELSE {stop} END"
    )


def widen_request(exc: duckdb.Error) -> tuple[int, str] | None:
    match = re.search(rf"{WIDEN} (\d+) (.*)", str(exc), re.DOTALL)
    if match is None:
        return None
    return int(match.group(1)), match.group(2)
