"""The schema model: engine types, their Glue/Athena names, the lattice, diffs, policy.

One module owns every rule about column types, for the converter, the catalog and the
Athena path (over 600 lines for that reason: split by consumer, the rules were copied and
the copies disagreed):

- **Engine types** are Arrow types (what DuckDB writes to Parquet and reads back):
  :func:`duckdb_type` names them in DuckDB SQL, :func:`type_name` gives the stable text
  stored with a dataset's schema, and :func:`parse_type_name` reads that text back (every
  type :func:`type_name` writes, nested ones included, round-trips).
- **Declared types** (``datasets/`` documents) are Athena/Glue or Arrow spellings:
  :func:`declared_type`.
- **Glue types** are Hive type strings: :func:`glue_type` maps an engine type to one and
  :func:`parse_type` reads one into a tree.
- **The lattice** types landed text: the join of two types is the narrowest type that
  holds both without losing a value::

    null < bool                          < string
    null < int64 < float64               < string
    null < int64 < decimal(38,0)         < string
    null < date32 < timestamp[us]        < string
    null < timestamp[us, UTC]            < string
    struct<a..> v struct<b..> = struct<a..b..> (fields joined by name)
    list<x> v list<y> = list<x v y>
    anything else (int v bool, struct v int, ...) = string (nested values as JSON text)

  Integers are never stored lossily. A float64 holds every integer up to 2**53
  (:data:`MAX_EXACT_INT`) exactly and no longer all of them beyond, so integers that fit
  int64 are int64, integers beyond int64 are ``decimal(38,0)`` (text beyond 38 digits),
  and a column holding both floats and an integer beyond +-2**53 is text. Leading zeros
  (``007``) make a value text: it is an identifier, not a number.
- **The diff and the change policy**: :func:`diff_columns` compares a table's (or a
  dataset's previous) columns with a file's, on Glue types, and :func:`change_allowed`
  applies a dataset's ``schema_changes`` policy. The converter compares engine schemas
  through :func:`compare_schemas`, the same rules:

  * ``additive`` - new columns, new struct fields, a wider number of the same kind
    (``int`` -> ``bigint``, ``float`` -> ``double``), or a column that only ever held
    nulls getting a type. Readers of the old table keep working once it is widened.
  * ``breaking`` - a column gone, or retyped in a way old readers cannot follow
    (``string`` -> ``bigint``, ``bigint`` -> ``double``, a struct losing a field).

  A file whose type is *narrower* than the table's (``int`` data under a ``bigint``
  column) is no change at all: Athena reads it as the wider type.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

TIMESTAMP = pa.timestamp("us")
TIMESTAMP_UTC = pa.timestamp("us", tz="UTC")
DECIMAL_INT = pa.decimal128(38, 0)  # integers beyond int64
MAX_EXACT_INT = 2**53  # every integer of at most this magnitude is exact as a float64
BOOLEAN_TEXTS = ("true", "false", "TRUE", "FALSE", "True", "False")  # what text is a bool

# --------------------------------------------------------------------------- engine types

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


_PRIMITIVE_NAMES: dict[str, pa.DataType] = {
    str(t): t
    for t in (
        pa.null(),
        pa.bool_(),
        pa.int8(),
        pa.int16(),
        pa.int32(),
        pa.int64(),
        pa.uint8(),
        pa.uint16(),
        pa.uint32(),
        pa.uint64(),
        pa.float16(),
        pa.float32(),
        pa.float64(),
        pa.string(),
        pa.large_string(),
        pa.binary(),
        pa.large_binary(),
        pa.date32(),
        pa.date64(),
    )
}
_TIMESTAMP_NAME = re.compile(r"timestamp\[(s|ms|us|ns)(?:, tz=([^\]]+))?\]")
_DECIMAL_NAME = re.compile(r"decimal(128|256)\((\d+), (\d+)\)")


def parse_type_name(text: str) -> pa.DataType:
    """The engine type a :func:`type_name` text stands for (also a declared type name).

    Raises ``ValueError`` for text it cannot read.
    """
    t, end = _parse_type_name(text.strip(), 0)
    if end != len(text.strip()):
        raise ValueError(f"trailing text in type {text!r}")
    return t


def _parse_type_name(text: str, pos: int) -> tuple[pa.DataType, int]:
    if text.startswith("struct<", pos):
        pos += len("struct<")
        fields = []
        while not text.startswith(">", pos):
            colon = text.index(": ", pos)
            name = text[pos:colon]
            child, pos = _parse_type_name(text, colon + 2)
            fields.append(pa.field(name, child))
            if text.startswith(", ", pos):
                pos += 2
        return pa.struct(fields), pos + 1
    if text.startswith("list<", pos):
        item, pos = _parse_type_name(text, pos + len("list<"))
        return pa.list_(item), _expect(text, pos, ">")
    if text.startswith("map<", pos):
        key, pos = _parse_type_name(text, pos + len("map<"))
        item, pos = _parse_type_name(text, _expect(text, pos, ", "))
        return pa.map_(key, item), _expect(text, pos, ">")
    end = pos
    depth = 0
    while end < len(text) and (depth or text[end] not in ",>"):
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(text[end], 0)
        end += 1
    word = text[pos:end]
    if word in _PRIMITIVE_NAMES:
        return _PRIMITIVE_NAMES[word], end
    match = _TIMESTAMP_NAME.fullmatch(word)
    if match:
        return pa.timestamp(match.group(1), tz=match.group(2)), end
    match = _DECIMAL_NAME.fullmatch(word)
    if match:
        make = pa.decimal128 if match.group(1) == "128" else pa.decimal256
        return make(int(match.group(2)), int(match.group(3))), end
    return declared_type(word), end


def _expect(text: str, pos: int, token: str) -> int:
    if not text.startswith(token, pos):
        raise ValueError(f"expected {token!r} at {pos} in {text!r}")
    return pos + len(token)


# --------------------------------------------------------------------------- Glue types

UNTYPED = "string"  # what a column that only ever held nulls is catalogued as


@dataclass(frozen=True)
class Column:
    """One column as the catalog sees it. ``untyped``: only nulls seen so far."""

    name: str
    type: str
    untyped: bool = False

    def to_glue(self) -> dict[str, str]:
        return {"Name": self.name, "Type": self.type}

    def to_event(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type}


# -- Arrow -> Glue ---------------------------------------------------------------------
_SIMPLE: tuple[tuple[Any, str], ...] = (
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_int8, "tinyint"),
    (pa.types.is_int16, "smallint"),
    (pa.types.is_int32, "int"),
    (pa.types.is_int64, "bigint"),
    # Hive has no unsigned integers: the next signed width holds every value, except
    # uint64, which Athena reads as bigint (values above 2^63-1 would not fit anything).
    (pa.types.is_uint8, "smallint"),
    (pa.types.is_uint16, "int"),
    (pa.types.is_uint32, "bigint"),
    (pa.types.is_uint64, "bigint"),
    (pa.types.is_float16, "float"),
    (pa.types.is_float32, "float"),
    (pa.types.is_float64, "double"),
    (pa.types.is_string, "string"),
    (pa.types.is_large_string, "string"),
    (pa.types.is_binary, "binary"),
    (pa.types.is_large_binary, "binary"),
    (pa.types.is_fixed_size_binary, "binary"),
    (pa.types.is_date, "date"),
    (pa.types.is_timestamp, "timestamp"),
    # Parquet TIME has no Hive type; its physical integer is what a reader can get.
    (pa.types.is_time32, "int"),
    (pa.types.is_time64, "bigint"),
    (pa.types.is_null, UNTYPED),
)


def glue_type(t: pa.DataType) -> str:
    """The Hive type string Glue and Athena use for Arrow type ``t`` (nested included)."""
    if isinstance(t, pa.DictionaryType):
        return glue_type(t.value_type)
    if pa.types.is_decimal(t):
        precision = min(int(t.precision), 38)  # Hive's maximum
        return f"decimal({precision},{min(int(t.scale), precision)})"
    if pa.types.is_struct(t):
        inner = ",".join(
            f"{t.field(i).name}:{glue_type(t.field(i).type)}" for i in range(t.num_fields)
        )
        return f"struct<{inner}>"
    if pa.types.is_map(t):
        return f"map<{glue_type(t.key_type)},{glue_type(t.item_type)}>"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return f"array<{glue_type(t.value_type)}>"
    for predicate, name in _SIMPLE:
        if predicate(t):
            return name
    raise ValueError(f"no Glue type for Arrow type {t}")


def columns_from_arrow(schema: pa.Schema) -> list[Column]:
    """The catalog columns of a Parquet file's schema, in file order."""
    return [Column(f.name, glue_type(f.type), pa.types.is_null(f.type)) for f in schema]


# -- Glue type strings as trees --------------------------------------------------------
@dataclass(frozen=True)
class TypeNode:
    """``kind`` is ``struct``, ``array``, ``map`` or a primitive name (``decimal(10,2)``)."""

    kind: str
    children: tuple[tuple[str, TypeNode], ...] = ()

    def __str__(self) -> str:
        if self.kind == "struct":
            return "struct<" + ",".join(f"{n}:{c}" for n, c in self.children) + ">"
        if self.kind == "array":
            return f"array<{self.children[0][1]}>"
        if self.kind == "map":
            return f"map<{self.children[0][1]},{self.children[1][1]}>"
        return self.kind


def parse_type(text: str) -> TypeNode:
    """Parse a Hive type string (as Glue stores it) into a :class:`TypeNode`."""
    try:
        node, rest = _parse(text.replace(" ", "").lower(), 0)
    except IndexError as exc:
        raise ValueError(f"truncated type {text!r}") from exc
    if rest != len(text.replace(" ", "")):
        raise ValueError(f"trailing text in type {text!r}")
    return node


def _parse(text: str, pos: int) -> tuple[TypeNode, int]:
    for kind in ("struct<", "array<", "map<"):
        if text.startswith(kind, pos):
            pos += len(kind)
            children: list[tuple[str, TypeNode]] = []
            while True:
                if kind == "struct<":
                    colon = text.index(":", pos)
                    name = text[pos:colon]
                    child, pos = _parse(text, colon + 1)
                else:
                    name = "element" if kind == "array<" else ("key" if not children else "value")
                    child, pos = _parse(text, pos)
                children.append((name, child))
                if text[pos] == ",":
                    pos += 1
                    continue
                if text[pos] != ">":
                    raise ValueError(f"expected '>' at {pos} in {text!r}")
                return TypeNode(kind[:-1], tuple(children)), pos + 1
    end = pos
    depth = 0
    while end < len(text) and (depth or text[end] not in ",>"):
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        end += 1
    if end == pos:
        raise ValueError(f"empty type at {pos} in {text!r}")
    return TypeNode(text[pos:end]), end


# Numeric widening Athena follows when reading Parquet: the file's narrower value is read
# into the table's wider column.
_WIDTH = {"tinyint": 1, "smallint": 2, "int": 3, "integer": 3, "bigint": 4}
_FLOAT_WIDTH = {"float": 1, "double": 2}


def _primitive_relation(old: str, new: str) -> str:
    """``same``, ``narrower`` (file type fits the table's), ``wider`` or ``incompatible``."""
    if old == new:
        return "same"
    for widths in (_WIDTH, _FLOAT_WIDTH):
        if old in widths and new in widths:
            return "narrower" if widths[new] < widths[old] else "wider"
    return "incompatible"


def merge_types(old: TypeNode, new: TypeNode) -> tuple[TypeNode, str]:
    """The table type able to read both, and ``same`` / ``additive`` / ``breaking``.

    On ``breaking`` the returned type is ``new`` (what a table following the file becomes).
    """
    if old.kind != new.kind:
        if old.kind in ("struct", "array", "map") or new.kind in ("struct", "array", "map"):
            return new, "breaking"
        relation = _primitive_relation(old.kind, new.kind)
        if relation in ("same", "narrower"):
            return old, "same"
        return (new, "additive") if relation == "wider" else (new, "breaking")
    if old.kind in ("array", "map"):
        merged = []
        verdict = "same"
        for (name, o), (_, n) in zip(old.children, new.children, strict=True):
            child, v = merge_types(o, n)
            merged.append((name, child))
            verdict = _worse(verdict, v)
        return (new if verdict == "breaking" else TypeNode(old.kind, tuple(merged))), verdict
    if old.kind == "struct":
        new_fields = dict(new.children)
        merged = []
        verdict = "same"
        for name, o in old.children:
            if name not in new_fields:
                return new, "breaking"  # a struct field disappeared
            child, v = merge_types(o, new_fields[name])
            merged.append((name, child))
            verdict = _worse(verdict, v)
        old_names = {n for n, _ in old.children}
        extra = [(n, c) for n, c in new.children if n not in old_names]
        if extra:
            verdict = _worse(verdict, "additive")
        if verdict == "breaking":
            return new, verdict
        return TypeNode("struct", (*merged, *extra)), verdict
    return old, "same"


def _worse(a: str, b: str) -> str:
    order = ("same", "additive", "breaking")
    return a if order.index(a) >= order.index(b) else b


@dataclass(frozen=True)
class TypeChange:
    name: str
    previous: str
    current: str

    def to_event(self) -> dict[str, str]:
        return {"name": self.name, "from": self.previous, "to": self.current}


@dataclass(frozen=True)
class SchemaDiff:
    """How a file's columns differ from its table's, and the table columns after it.

    ``merged`` keeps every table column (a removed column stays: older partitions still
    hold it) with additive changes applied; ``retyped`` is ``merged`` with breaking type
    changes applied too (what the table becomes when the policy allows any change).
    """

    added: list[Column] = field(default_factory=list)
    removed: list[Column] = field(default_factory=list)
    widened: list[TypeChange] = field(default_factory=list)
    broken: list[TypeChange] = field(default_factory=list)
    merged: list[Column] = field(default_factory=list)
    retyped: list[Column] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.removed or self.broken:
            return "breaking"
        if self.added or self.widened:
            return "additive"
        return "none"

    def to_event(self) -> dict[str, Any]:
        return {
            "added": [c.to_event() for c in self.added],
            "removed": [c.to_event() for c in self.removed],
            "changed": [c.to_event() for c in (*self.widened, *self.broken)],
        }

    def describe(self) -> str:
        parts = []
        if self.added:
            parts.append("added " + ", ".join(f"{c.name} {c.type}" for c in self.added))
        if self.removed:
            parts.append("removed " + ", ".join(c.name for c in self.removed))
        parts += [f"{c.name} {c.previous} -> {c.current}" for c in (*self.widened, *self.broken)]
        return "; ".join(parts) or "no change"


def diff_columns(table: Sequence[Column], file: Sequence[Column]) -> SchemaDiff:
    """Compare a table's columns with a file's (matched by name, case-insensitively)."""
    in_file = {c.name.lower(): c for c in file}
    in_table = {c.name.lower() for c in table}
    added = [c for c in file if c.name.lower() not in in_table]
    removed: list[Column] = []
    widened: list[TypeChange] = []
    broken: list[TypeChange] = []
    merged: list[Column] = []
    retyped: list[Column] = []
    for col in table:
        new = in_file.get(col.name.lower())
        if new is None:
            removed.append(col)
            merged.append(col)
            retyped.append(col)
            continue
        if new.untyped:  # nulls fit any column
            merged.append(col)
            retyped.append(col)
            continue
        if col.untyped:  # the column gets its first real type
            if new.type != col.type:
                widened.append(TypeChange(col.name, col.type, new.type))
            merged.append(Column(col.name, new.type))
            retyped.append(Column(col.name, new.type))
            continue
        try:
            merged_type, verdict = merge_types(parse_type(col.type), parse_type(new.type))
            result = str(merged_type)
        except ValueError:  # a type this parser does not know: only equality is safe
            same = col.type.replace(" ", "").lower() == new.type.replace(" ", "").lower()
            result, verdict = (col.type, "same") if same else (new.type, "breaking")
        if verdict == "additive":
            widened.append(TypeChange(col.name, col.type, result))
            merged.append(Column(col.name, result))
            retyped.append(Column(col.name, result))
        elif verdict == "breaking":
            broken.append(TypeChange(col.name, col.type, new.type))
            merged.append(col)
            retyped.append(Column(col.name, new.type))
        else:
            merged.append(col)
            retyped.append(col)
    merged.extend(added)
    retyped.extend(added)
    return SchemaDiff(added, removed, widened, broken, merged, retyped)


def columns_from_glue(
    columns: Iterable[Mapping[str, Any]], untyped: Iterable[str] = ()
) -> list[Column]:
    marks = {n.lower() for n in untyped}
    return [
        Column(str(c["Name"]), str(c["Type"]), str(c["Name"]).lower() in marks) for c in columns
    ]


# --------------------------------------------------------------------------- the lattice


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


ColumnPath = tuple[str, ...]  # a column and its struct fields by name; "[]" for a list's items
LIST_ITEM = "[]"

# --------------------------------------------------------------------------- text values

_INT = re.compile(r"-?(0|[1-9][0-9]*)")
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
    if value in BOOLEAN_TEXTS:
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


_INT_LINES = re.compile(f"(?:{_INT.pattern}\n)*")
_NUMBER_LINES = re.compile(f"(?:{_FLOAT.pattern}\n)*")
_DATE_LINES = re.compile(f"(?:{_DATE.pattern}\n)*")
_TIMESTAMP_LINES = re.compile(f"(?:{_TIMESTAMP.pattern}\n)*")
_BOOLEANS = frozenset(BOOLEAN_TEXTS)


def texts_type(texts: Sequence[str]) -> pa.DataType:
    """The type of a column holding ``texts`` (its non-null values): what
    :func:`widen_for_text` folded over them from ``null`` gives, found at once for a column
    whose texts all have one shape (small integers, numbers, booleans, dates, zoneless
    timestamps: the joined texts matched by one expression, dates parsed), and one text at
    a time otherwise."""
    if not texts:
        return pa.null()
    joined = "\n".join(texts) + "\n"
    if joined.count("\n") == len(texts):  # no text holds a line break of its own
        if max(map(len, texts)) < 16:  # no integer a float64 would round, none beyond int64
            if _INT_LINES.fullmatch(joined):
                return pa.int64()
            if _NUMBER_LINES.fullmatch(joined):
                return pa.float64()
        if _BOOLEANS.issuperset(texts):
            return pa.bool_()
        if _DATE_LINES.fullmatch(joined) and all(_valid(dt.date.fromisoformat, t) for t in texts):
            return pa.date32()
        if _TIMESTAMP_LINES.fullmatch(joined) and all(
            _valid(dt.datetime.fromisoformat, t) for t in texts
        ):
            return TIMESTAMP
    current, wide = pa.null(), False
    for text in texts:
        current, wide = widen_for_text(current, wide, text)
        if pa.types.is_string(current):
            break
    return current


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
        # ISO dates and timestamps in JSON strings are typed, as DuckDB's JSON reader does
        t = text_type(value) if value[:1].isdigit() else pa.string()
        return (t if pa.types.is_date(t) or pa.types.is_timestamp(t) else pa.string()), False
    return pa.string(), False  # dicts and lists are typed by the caller, path by path


class FloatText(str):
    """A JSON float literal kept as written."""


# --------------------------------------------------------------------------- fingerprints, diffs, policy


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


def compare_schemas(previous: pa.Schema | None, current: pa.Schema) -> SchemaDiff:
    """:func:`diff_columns` between a dataset's previous engine schema and a file's."""
    if previous is None:
        return SchemaDiff()
    return diff_columns(columns_from_arrow(previous), columns_from_arrow(current))


def change_allowed(kind: str, policy: str) -> bool:
    """Whether a dataset with ``schema_changes`` = ``policy`` (``additive``, ``any`` or
    ``none``) accepts a change of ``kind`` (``none``, ``additive`` or ``breaking``)."""
    return kind == "none" or policy == "any" or (policy == "additive" and kind == "additive")


def schema_columns(schema: pa.Schema) -> list[dict[str, str]]:
    """``[{name, type}]``: a schema as stored with its dataset and sent in events (types as
    :func:`type_name`, read back by :func:`schema_from_columns`)."""
    return [{"name": f.name, "type": type_name(f.type)} for f in schema]


def schema_from_columns(columns: Iterable[Mapping[str, Any]]) -> pa.Schema:
    """The engine schema :func:`schema_columns` stored. Raises ``ValueError`` for a type it
    cannot read."""
    try:
        return pa.schema(
            [pa.field(str(c["name"]), parse_type_name(str(c["type"]))) for c in columns]
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a stored schema: {exc}") from exc
