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
import decimal
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

TIMESTAMP = pa.timestamp("us")
TIMESTAMP_UTC = pa.timestamp("us", tz="UTC")
DECIMAL_INT = pa.decimal128(38, 0)  # integers beyond int64
MAX_EXACT_INT = 2**53  # every integer of at most this magnitude is exact as a float64

# The order in which a text column is tried: the first type every value parses as wins.
CSV_CANDIDATES: tuple[pa.DataType, ...] = (
    pa.int64(),
    DECIMAL_INT,
    pa.float64(),
    pa.bool_(),
    pa.date32(),
    TIMESTAMP,
    TIMESTAMP_UTC,
)

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


def _wide_paths(arr: pa.Array | pa.ChunkedArray, path: ColumnPath, out: set[ColumnPath]) -> None:
    t = arr.type
    if pa.types.is_integer(t):
        if len(arr) and arr.null_count < len(arr):
            lo, hi = pc.min_max(arr).values()
            if lo.as_py() < -MAX_EXACT_INT or hi.as_py() > MAX_EXACT_INT:
                out.add(path)
        return
    if isinstance(arr, pa.ChunkedArray):
        for chunk in arr.chunks:
            _wide_paths(chunk, path, out)
        return
    if pa.types.is_struct(t):
        assert isinstance(arr, pa.StructArray)
        for i, child in enumerate(arr.flatten()):
            _wide_paths(child, (*path, t.field(i).name), out)
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        _wide_paths(arr.flatten(), (*path, LIST_ITEM), out)


def wide_int_paths(table: pa.Table) -> frozenset[ColumnPath]:
    """Paths of the integer columns (struct fields and list items included) holding a value
    beyond +-2**53, which a float64 could not keep exactly."""
    out: set[ColumnPath] = set()
    for name, column in zip(table.column_names, table.columns, strict=True):
        _wide_paths(column, (name,), out)
    return frozenset(out)


def _exact_type(t: pa.DataType, path: ColumnPath, wide: frozenset[ColumnPath]) -> pa.DataType:
    if pa.types.is_floating(t):
        return pa.string() if path in wide else t
    if pa.types.is_struct(t):
        return pa.struct(
            [
                pa.field(
                    t.field(i).name, _exact_type(t.field(i).type, (*path, t.field(i).name), wide)
                )
                for i in range(t.num_fields)
            ]
        )
    if pa.types.is_list(t):
        return pa.list_(_exact_type(t.value_type, (*path, LIST_ITEM), wide))
    return t


def exact_schema(schema: pa.Schema, wide: frozenset[ColumnPath]) -> pa.Schema:
    """``schema`` with every float column at a path of ``wide`` made string: integers beyond
    2**53 and floats in one column have no exact common number type."""
    if not wide:
        return schema
    return pa.schema(
        [
            pa.field(f.name, _exact_type(f.type, (f.name,), wide), nullable=f.nullable)
            for f in schema
        ]
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _to_json_text(arr: pa.Array) -> pa.Array:
    # Nested values that must become text: rare, so Python's speed is acceptable here.
    values = arr.to_pylist()
    return pa.array(
        [
            None
            if v is None
            else json.dumps(v, default=_json_default, ensure_ascii=False, separators=(",", ":"))
            for v in values
        ],
        pa.string(),
    )


def widen_array(arr: pa.Array | pa.ChunkedArray, target: pa.DataType) -> pa.Array | pa.ChunkedArray:
    """Convert ``arr`` to ``target``, which must be a join of its type (no value is lost)."""
    if isinstance(arr, pa.ChunkedArray):
        return pa.chunked_array([widen_array(c, target) for c in arr.chunks], type=target)
    if arr.type == target:
        return arr
    if pa.types.is_null(target):
        return pa.nulls(len(arr))
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), target)
    if pa.types.is_struct(arr.type) and pa.types.is_struct(target):
        assert isinstance(arr, pa.StructArray)
        children = {arr.type.field(i).name: child for i, child in enumerate(arr.flatten())}
        arrays = []
        for i in range(target.num_fields):
            f = target.field(i)
            child = children.get(f.name)
            arrays.append(
                pa.nulls(len(arr), f.type) if child is None else widen_array(child, f.type)
            )
        mask = arr.is_null() if arr.null_count else None
        return pa.StructArray.from_arrays(arrays, fields=list(target), mask=mask)
    if pa.types.is_list(arr.type) and pa.types.is_list(target):
        assert isinstance(arr, pa.ListArray)
        values = widen_array(arr.values, target.value_type)
        mask = arr.is_null() if arr.null_count else None
        return pa.ListArray.from_arrays(arr.offsets, values, type=target, mask=mask)
    if pa.types.is_string(target) and is_nested(arr.type):
        return _to_json_text(arr)
    return pc.cast(arr, target)


def storable_type(t: pa.DataType) -> pa.DataType:
    """``t`` with every empty struct (JSON ``{}`` with no key ever seen) made null: Parquet
    cannot store a struct without fields. Such values are written as nulls."""
    if pa.types.is_struct(t):
        if t.num_fields == 0:
            return pa.null()
        return pa.struct(
            [pa.field(t.field(i).name, storable_type(t.field(i).type)) for i in range(t.num_fields)]
        )
    if pa.types.is_list(t):
        return pa.list_(storable_type(t.value_type))
    return t


def widen_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns in its order; absent columns are all null."""
    columns = []
    for f in schema:
        idx = table.schema.get_field_index(f.name)
        if idx < 0:
            columns.append(pa.nulls(table.num_rows, f.type))
        else:
            columns.append(widen_array(table.column(idx), f.type))
    return pa.Table.from_arrays(columns, schema=schema)


# --------------------------------------------------------------------------- text inference


def _sample(arr: pa.Array, size: int = 64) -> pa.Array:
    non_null = arr if arr.null_count == 0 else pc.drop_null(arr.slice(0, 4096))
    return non_null.slice(0, size)


def _no_leading_zero(arr: pa.Array) -> bool:
    # "007" or "-01" parse as numbers but are identifiers (zip codes, account numbers):
    # typing them as numbers would lose the zeros, so such a column stays text.
    maybe = pc.or_(
        pc.starts_with(arr, "0"), pc.or_(pc.starts_with(arr, "-0"), pc.starts_with(arr, "+0"))
    )
    if not pc.any(maybe).as_py():
        return True
    return not pc.any(pc.match_substring_regex(arr, r"^[+-]?0[0-9]")).as_py()


def _has_hex(arr: pa.Array) -> bool:
    # Arrow parses "0x1F" (no sign) as the integer 31: such values are codes, not numbers.
    return bool(pc.any(pc.starts_with(arr, "0x", ignore_case=True)).as_py())


def _long_int_literals(arr: pa.Array, digits: int) -> list[int]:
    """The integer literals of at least ``digits`` digits in ``arr`` (cheap when none)."""
    long = pc.filter(arr, pc.greater_equal(pc.utf8_length(arr), digits))
    if len(long) == 0:
        return []
    ints = pc.filter(long, pc.match_substring_regex(long, rf"^[+-]?[0-9]{{{digits},}}$"))
    return [int(v) for v in ints.to_pylist() if v is not None]


def _needs_decimal(arr: pa.Array) -> bool:
    """Every value is a plain integer of at most 38 digits (no exponent, point or hex) and
    one at least is beyond int64: only then is decimal(38,0) the column's type."""
    if not pc.all(pc.match_substring_regex(arr, r"^[+-]?[0-9]{1,38}$")).as_py():
        return False
    return any(not -(2**63) <= v < 2**63 for v in _long_int_literals(arr, 19))


def has_wide_int_text(arr: pa.Array, as_float: pa.Array | None = None) -> bool:
    """Some value is an integer literal beyond +-2**53 (a float64 would round it).

    ``as_float`` (``arr`` cast to float64) makes it cheap: only values that came out at
    2**53 or more in magnitude can be such literals, and float data rarely has any."""
    if as_float is not None:
        big = pc.greater_equal(pc.abs(as_float), float(MAX_EXACT_INT))
        if not pc.any(big).as_py():
            return False
        arr = pc.filter(arr, big)
    return any(abs(v) > MAX_EXACT_INT for v in _long_int_literals(arr, 16))


def try_cast(arr: pa.Array, target: pa.DataType) -> pa.Array | None:
    """``arr`` cast to ``target``, or ``None`` if some value does not parse."""
    try:
        return pc.cast(arr, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def infer_text(arr: pa.Array, floor: pa.DataType | None = None) -> tuple[pa.DataType, pa.Array]:
    """The narrowest lattice type at or above ``floor`` that every value of the string array
    ``arr`` parses as, and the array converted to it. A whole failed cast is costly, so each
    candidate is first tried on a small sample."""
    floor = pa.null() if floor is None else floor
    if arr.null_count == len(arr):
        return floor, pa.nulls(len(arr), floor)
    if pa.types.is_string(floor):
        return floor, arr
    sample = _sample(arr)
    for candidate in CSV_CANDIDATES:
        if not pa.types.is_null(floor) and join_types(floor, candidate) != candidate:
            continue
        if try_cast(sample, candidate) is None:
            continue
        # checked when a column is first typed: afterwards the column's type is settled
        first = pa.types.is_null(floor)
        numeric = candidate in (pa.int64(), DECIMAL_INT, pa.float64())
        if first and numeric and not _no_leading_zero(arr):
            continue
        if candidate in (pa.int64(), DECIMAL_INT) and _has_hex(arr):
            continue
        if (
            candidate == DECIMAL_INT
            and pa.types.is_null(floor)  # after int64 or decimal, any integer literal fits
            and not _needs_decimal(pc.drop_null(arr))
        ):
            continue
        converted = try_cast(arr, candidate)
        if converted is None:
            continue
        if candidate == pa.float64() and has_wide_int_text(arr, converted):
            continue  # integers a float64 would round: text keeps them
        return candidate, converted
    if (
        not pa.types.is_null(floor)
        and not pa.types.is_string(floor)
        and floor not in CSV_CANDIDATES
    ):
        converted = try_cast(arr, floor)  # a declared/previous type outside the lattice
        if converted is not None:
            return floor, converted
    return pa.string(), arr


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
