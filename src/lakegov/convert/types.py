"""Types: the widening lattice, declared types, schema fingerprints and schema diffs.

Inference works on a lattice; the join of two types is the narrowest type that holds both
without losing a value::

    null < bool                          < string
    null < int64 < float64               < string
    null < int64 < decimal(38,0)         < string
    null < date32 < timestamp[us]        < string
    null < timestamp[us, UTC]            < string
    struct<a..> v struct<b..> = struct<a..b..> (fields joined by name)
    list<x> v list<y> = list<x v y>
    anything else (int v bool, struct v int, ...) = string (nested values as JSON text)

Integers are never stored lossily. A float64 holds every integer up to 2**53
(:data:`MAX_EXACT_INT`) exactly and no longer all of them beyond, so:

- integers that fit int64 are int64 (9007199254740993 stays 9007199254740993);
- integers beyond int64 are ``decimal(38,0)`` when every one has at most 38 digits, else
  the column is text (digits kept as written);
- ``int64 v float64 = float64`` only while the integers stay within +-2**53. A column that
  holds a larger integer (a "wide" one, :func:`wide_int_paths`) and also floats is text
  (:func:`exact_schema`), and ``decimal v float64`` is text for the same reason.
- Floats are float64 whatever their number of digits: that is what a float literal means.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

TIMESTAMP = pa.timestamp("us")
TIMESTAMP_UTC = pa.timestamp("us", tz="UTC")
DECIMAL_INT = pa.decimal128(38, 0)  # integers beyond int64
MAX_EXACT_INT = 2**53  # every integer of at most this magnitude is exact as a float64

_DECLARED_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "varchar": pa.string(),
    "char": pa.string(),
    "bigint": pa.int64(),
    "int64": pa.int64(),
    "long": pa.int64(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "int32": pa.int32(),
    "smallint": pa.int16(),
    "int16": pa.int16(),
    "tinyint": pa.int8(),
    "int8": pa.int8(),
    "double": pa.float64(),
    "float64": pa.float64(),
    "float": pa.float32(),
    "real": pa.float32(),
    "float32": pa.float32(),
    "boolean": pa.bool_(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": TIMESTAMP,
    "timestamp_tz": TIMESTAMP_UTC,
    "binary": pa.binary(),
}
_DECIMAL = re.compile(r"^decimal\((\d{1,2}),\s*(\d{1,2})\)$")
DECLARED_TYPE_NAMES = (*sorted(_DECLARED_TYPES), "decimal(p,s)")


def declared_type(name: str) -> pa.DataType:
    """The Arrow type for a declared type name (Athena/Glue or Arrow spelling).

    Raises ``ValueError`` for names it does not know.
    """
    key = name.strip().lower()
    if key in _DECLARED_TYPES:
        return _DECLARED_TYPES[key]
    match = _DECIMAL.match(key)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2))
        if 1 <= precision <= 38 and scale <= precision:
            return pa.decimal128(precision, scale)
    raise ValueError(f"unknown type {name!r}; use one of {', '.join(DECLARED_TYPE_NAMES)}")


def duckdb_type(t: pa.DataType) -> str:
    """The DuckDB SQL type storing ``t`` (a column never seen with a value is text)."""
    if pa.types.is_struct(t):
        if t.num_fields == 0:
            return "VARCHAR"  # Parquet cannot store a struct without fields: JSON text
        inner = ", ".join(
            f'"{t.field(i).name.replace(chr(34), chr(34) * 2)}" {duckdb_type(t.field(i).type)}'
            for i in range(t.num_fields)
        )
        return f"STRUCT({inner})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"{duckdb_type(t.value_type)}[]"
    if pa.types.is_map(t):
        return f"MAP({duckdb_type(t.key_type)}, {duckdb_type(t.item_type)})"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    simple = {
        pa.null(): "VARCHAR",
        pa.string(): "VARCHAR",
        pa.large_string(): "VARCHAR",
        pa.bool_(): "BOOLEAN",
        pa.int8(): "TINYINT",
        pa.int16(): "SMALLINT",
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.float32(): "FLOAT",
        pa.float64(): "DOUBLE",
        pa.date32(): "DATE",
        pa.binary(): "BLOB",
    }
    if t in simple:
        return simple[t]
    raise ValueError(f"type {t} has no DuckDB storage")


def type_name(t: pa.DataType) -> str:
    """A stable, human-readable name for ``t`` (struct fields in the order given)."""
    if pa.types.is_struct(t):
        inner = ", ".join(
            f"{t.field(i).name}: {type_name(t.field(i).type)}" for i in range(t.num_fields)
        )
        return f"struct<{inner}>"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{type_name(t.value_type)}>"
    if pa.types.is_map(t):
        return f"map<{type_name(t.key_type)}, {type_name(t.item_type)}>"
    return str(t)


# --------------------------------------------------------------------------- the lattice


def is_nested(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_struct(t)
        or pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_map(t)
    )


def join_types(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The narrowest type holding every value of ``a`` and of ``b`` (see the module doc)."""
    if a == b:
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    if pa.types.is_struct(a) and pa.types.is_struct(b):
        fields: dict[str, pa.DataType] = {}
        for i in range(a.num_fields):
            fields[a.field(i).name] = a.field(i).type
        for i in range(b.num_fields):
            f = b.field(i)
            fields[f.name] = join_types(fields[f.name], f.type) if f.name in fields else f.type
        return pa.struct([pa.field(n, t) for n, t in fields.items()])
    if pa.types.is_list(a) and pa.types.is_list(b):
        return pa.list_(join_types(a.value_type, b.value_type))
    if pa.types.is_integer(a) and pa.types.is_integer(b):
        return pa.int64()
    exact_numeric = _join_exact_numeric(a, b)
    if exact_numeric is not None:
        return exact_numeric
    numeric = pa.types.is_integer(a) or pa.types.is_floating(a)
    if numeric and (pa.types.is_integer(b) or pa.types.is_floating(b)):
        return pa.float64()
    temporal = {pa.date32(), TIMESTAMP}
    if a in temporal and b in temporal:
        return TIMESTAMP
    if pa.types.is_timestamp(a) and pa.types.is_timestamp(b) and a.tz == b.tz:
        return pa.timestamp("us", tz=a.tz)
    return pa.string()


def _join_exact_numeric(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    """integer/decimal v decimal: the decimal holding both exactly (string beyond 38 digits);
    decimal v float: string. ``None`` when neither side is a decimal."""
    if not (pa.types.is_decimal(a) or pa.types.is_decimal(b)):
        return None
    if pa.types.is_floating(a) or pa.types.is_floating(b):
        return pa.string()
    digits_scale = []
    for t in (a, b):
        if pa.types.is_decimal(t):
            digits_scale.append((t.precision - t.scale, t.scale))
        elif pa.types.is_integer(t):
            digits_scale.append((19, 0))  # int64 has at most 19 digits
        else:
            return pa.string()
    scale = max(s for _, s in digits_scale)
    precision = max(d for d, _ in digits_scale) + scale
    return pa.decimal128(precision, scale) if precision <= 38 else pa.string()


def join_schemas(a: pa.Schema, b: pa.Schema) -> pa.Schema:
    """Column-wise join; columns keep the order of ``a`` and then the new ones of ``b``."""
    fields: dict[str, pa.DataType] = {f.name: f.type for f in a}
    for f in b:
        fields[f.name] = join_types(fields[f.name], f.type) if f.name in fields else f.type
    return pa.schema([pa.field(n, t) for n, t in fields.items()])


ColumnPath = tuple[str, ...]  # a column and its struct fields by name; "[]" for a list's items
LIST_ITEM = "[]"

# --------------------------------------------------------------------------- text values

_INT = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_LEADING_ZERO = re.compile(r"[+-]?0[0-9].*", re.DOTALL)
_FLOAT = re.compile(r"[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
)
_TZ = re.compile(r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)")


def text_type(value: str) -> pa.DataType:
    """The narrowest lattice type of one CSV field's text (leading zeros and hex are text:
    ``007`` is an identifier, not the number 7)."""
    if _INT.fullmatch(value):
        n = int(value)
        if -(2**63) <= n < 2**63:
            return pa.int64()
        return DECIMAL_INT if len(value.lstrip("+-")) <= 38 else pa.string()
    if _LEADING_ZERO.fullmatch(value):
        return pa.string()
    if _FLOAT.fullmatch(value):
        return pa.float64()
    if value.lower() in ("true", "false"):
        return pa.bool_()
    if _DATE.fullmatch(value):
        return pa.date32() if _valid(dt.date.fromisoformat, value) else pa.string()
    if _TIMESTAMP.fullmatch(value):
        return TIMESTAMP if _valid(dt.datetime.fromisoformat, value) else pa.string()
    match = _TIMESTAMP.match(value)
    if match and _TZ.fullmatch(value[match.end() :]):
        return TIMESTAMP_UTC if _valid(dt.datetime.fromisoformat, value) else pa.string()
    return pa.string()


def _valid(parse: Any, value: str) -> bool:
    try:
        parse(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def is_wide_int(value: str) -> bool:
    """An integer literal a float64 would round (beyond +-2**53)."""
    return bool(_INT.fullmatch(value)) and abs(int(value)) > MAX_EXACT_INT


def widen_for_text(
    current: pa.DataType, wide: bool, value: str, *, retype: bool = False
) -> tuple[pa.DataType, bool]:
    """The column type once ``value`` is among its texts, and whether the column holds a
    wide integer: the join on the lattice, except that wide integers and floats together
    are text (no exact common number type). ``retype``: ``value`` is known not to fit
    ``current``, so a join that does not move is text."""
    wide = wide or is_wide_int(value)
    joined = join_types(current, text_type(value))
    if pa.types.is_floating(joined) and wide:
        joined = pa.string()
    if retype and joined == current:
        joined = pa.string()
    return joined, wide


def json_value_type(value: Any) -> tuple[pa.DataType, bool]:
    """The lattice type of one parsed JSON value (floats parsed as :class:`FloatText`),
    and whether it is or holds a wide integer at this level."""
    if value is None:
        return pa.null(), False
    if isinstance(value, bool):
        return pa.bool_(), False
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return pa.int64(), abs(value) > MAX_EXACT_INT
        return (DECIMAL_INT if len(str(abs(value))) <= 38 else pa.string()), True
    if isinstance(value, FloatText):
        return pa.float64(), False
    if isinstance(value, str):
        return pa.string(), False
    return pa.string(), False  # dicts and lists are typed by the caller, path by path


class FloatText(str):
    """A JSON float literal kept as written."""


# --------------------------------------------------------------------------- fingerprints, diffs


def _canonical(t: pa.DataType) -> Any:
    if pa.types.is_struct(t):
        return {
            "struct": sorted(
                [[t.field(i).name, _canonical(t.field(i).type)] for i in range(t.num_fields)]
            )
        }
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return {"list": _canonical(t.value_type)}
    if pa.types.is_map(t):
        return {"map": [_canonical(t.key_type), _canonical(t.item_type)]}
    return str(t)


def schema_fingerprint(schema: pa.Schema) -> str:
    """sha256 of the schema's columns (name and type, struct fields included), sorted by name.

    Column order and nullability do not count: Parquet columns are read by name, and the
    same dataset must get the same fingerprint whatever order a file lists its columns in.
    """
    canonical = sorted([f.name, _canonical(f.type)] for f in schema)
    text = json.dumps(canonical, separators=(",", ":"), sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ColumnChange:
    """One column whose type differs between two schemas."""

    name: str
    previous: str
    current: str
    widening: bool  # the current type holds every value of the previous one


@dataclass(frozen=True)
class SchemaDiff:
    """What changed from a dataset's previous schema to a file's schema.

    ``kind`` is ``none``, ``additive`` (only new columns, or a column whose previous type
    was null, i.e. never seen with a value) or ``breaking`` (a column removed or retyped:
    tables and readers built on the previous schema may fail or misread).
    """

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[ColumnChange] = field(default_factory=list)
    kind: str = "none"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": [c.__dict__.copy() for c in self.changed],
        }

    def describe(self) -> str:
        parts = []
        if self.added:
            parts.append("added " + ", ".join(self.added))
        if self.removed:
            parts.append("removed " + ", ".join(self.removed))
        parts += [f"{c.name} {c.previous} -> {c.current}" for c in self.changed]
        return "; ".join(parts) or "no change"


def _nested_additive(prev: pa.DataType, cur: pa.DataType) -> bool:
    """True when ``cur`` only adds struct fields (at any depth) or fills null types."""
    if prev == cur or pa.types.is_null(prev):
        return True
    if pa.types.is_struct(prev) and pa.types.is_struct(cur):
        cur_fields = {cur.field(i).name: cur.field(i).type for i in range(cur.num_fields)}
        return all(
            prev.field(i).name in cur_fields
            and _nested_additive(prev.field(i).type, cur_fields[prev.field(i).name])
            for i in range(prev.num_fields)
        )
    if pa.types.is_list(prev) and pa.types.is_list(cur):
        return _nested_additive(prev.value_type, cur.value_type)
    return False


def compare_schemas(previous: pa.Schema | None, current: pa.Schema) -> SchemaDiff:
    """Compare a dataset's previous schema with a new one (columns matched by name)."""
    if previous is None:
        return SchemaDiff()
    prev = {f.name: f.type for f in previous}
    cur = {f.name: f.type for f in current}
    added = [n for n in cur if n not in prev]
    removed = [n for n in prev if n not in cur]
    changed = []
    breaking = bool(removed)
    for name, ptype in prev.items():
        ctype = cur.get(name)
        if ctype is None or ctype == ptype:
            continue
        changed.append(
            ColumnChange(
                name, type_name(ptype), type_name(ctype), join_types(ptype, ctype) == ctype
            )
        )
        if not _nested_additive(ptype, ctype):
            breaking = True
    kind = "breaking" if breaking else ("additive" if added or changed else "none")
    return SchemaDiff(added=added, removed=removed, changed=changed, kind=kind)


def schema_to_columns(schema: pa.Schema) -> list[dict[str, Any]]:
    """``[{name, type, nullable}]`` for documents and events (types as :func:`type_name`)."""
    return [{"name": f.name, "type": type_name(f.type), "nullable": f.nullable} for f in schema]
