"""Arrow types as Glue (Hive) types, and how a file's columns differ from a table's.

Glue stores column types as Hive type strings (``bigint``, ``array<struct<a:int>>``).
:func:`glue_type` maps a Parquet file's Arrow schema to them; :func:`parse_type` reads
them back into a small tree so that two schemas can be compared structurally.

The comparison (:func:`diff_columns`) decides what a new file means for its table:

* ``additive`` - new columns, new struct fields, a wider numeric type (``int`` ->
  ``bigint``, ``float`` -> ``double``), or a column that only ever held nulls getting a
  type. Readers of the old table keep working once the table is widened.
* ``breaking`` - a column gone from the file, or retyped in a way old readers cannot
  follow (``string`` -> ``bigint``, a struct losing a field).

A file whose type is *narrower* than the table's (``int`` data under a ``bigint``
column) is no change at all: Athena reads it as the wider type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

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
