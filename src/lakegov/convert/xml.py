"""XML records as a table of text, streamed with lxml in bounded memory.

The records are the elements at ``xml.record_path`` (element names from the root), or by
default the root's children, when they all have one name. In a record:

- an attribute is a column (``id="7"`` -> ``id``); a child element holding only text is a
  column named by it (``<name>`` -> ``name``); a child element with attributes or children
  of its own is flattened under its name (``<customer><city>`` -> ``customer_city``,
  ``<price currency="EUR">12.5</price>`` -> ``price`` and ``price_currency``);
- an element that occurs more than once in one parent (in any record) is a list of
  structs, each flattened the same way (an element holding only text is ``{value}``); a
  wrapper holding only such a list gives the column its name (``<items><item>`` ->
  ``items``);
- names are the local names (namespaces dropped); ``xsi:nil="true"`` is null and the
  ``xsi:`` attributes are not columns.

Two passes over the file, each holding one record at a time (iterparse, every element
cleared once read): the first learns the structure (which elements repeat), the second
writes the flattened records, as text, to a Parquet spool in batches. The engine types the
columns as it types CSV text; the list columns' values are typed here, on the same lattice,
from every value.

Unsafe documents are refused before any record is read (``xml_unsafe``): a DOCTYPE that
declares entities (entity expansion, "billion laughs"; external entities, XXE). lxml
parses with entities unresolved, no network and no external DTD, within libxml2's default
limits on depth and text size (``huge_tree`` off).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from lakegov.convert.options import DatasetOptions
from lakegov.convert.sql import literal
from lakegov.convert.tables import TextColumns
from lakegov.errors import RejectedFile
from lakegov.layout import normalize_identifier
from lakegov.schema import widen_for_text

BATCH_RECORDS = 8192
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
LINE_COLUMN = "_line"


@functools.lru_cache(maxsize=4096)
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@dataclass
class _Node:
    """What the records hold at one element path (merged over every record)."""

    attrs: dict[str, None] = field(default_factory=dict)  # ordered set
    children: dict[str, _Node] = field(default_factory=dict)
    repeated: bool = False
    text: bool = False  # non-blank text beside attributes or children

    @property
    def complex(self) -> bool:
        return bool(self.attrs or self.children)

    def observe(self, elem: Any) -> None:
        for name in elem.attrib:
            if not name.startswith(XSI):
                self.attrs.setdefault(_local(name), None)
        seen: dict[str, int] = {}
        for child in elem:
            if not isinstance(child.tag, str):  # an entity left unresolved
                raise RejectedFile(
                    "xml_unsafe",
                    f"line {child.sourceline}: a reference to entity {child.text} that the "
                    "document does not declare (an external DTD's): refused",
                    [child.sourceline] if child.sourceline else [],
                )
            name = _local(child.tag)
            seen[name] = seen.get(name, 0) + 1
            node = self.children.get(name)
            if node is None:
                node = self.children[name] = _Node()
            if seen[name] > 1:
                node.repeated = True
            if len(child) or child.attrib:
                node.observe(child)
            elif not node.text and child.text and child.text.strip():
                node.text = True  # a leaf: its text is all there is to learn
        if elem.text and elem.text.strip():
            self.text = True

    def wrapper(self) -> bool:
        """Only one repeated child, nothing else: the list takes this element's name."""
        return (
            not self.attrs
            and not self.text
            and len(self.children) == 1
            and next(iter(self.children.values())).repeated
        )


@dataclass(frozen=True)
class _Column:
    path: tuple[str, ...]  # element names below the record (an attribute's last)
    node: _Node | None  # the repeated element of a list column; None for text
    name: str


def _columns(node: _Node, prefix: tuple[str, ...], leaf: str) -> Iterator[_Column]:
    """The flattened columns of ``node`` at ``prefix``, in document order; ``leaf`` names
    the element's own text at the top (``value``)."""
    if node.text or not node.complex:
        yield _Column((*prefix, ""), None, "_".join(prefix) or leaf)
    for attr in node.attrs:
        yield _Column((*prefix, "@" + attr), None, "_".join((*prefix, attr)))
    for name, child in node.children.items():
        if child.repeated:
            named = prefix if node.wrapper() and prefix else (*prefix, name)
            yield _Column((*prefix, name), child, "_".join(named))
        else:
            yield from _columns(child, (*prefix, name), leaf)


class _Shape:
    """The lattice types of a list column's values, from every value."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}  # name -> [type, wide] | _Shape

    def add(self, item: dict[str, Any]) -> None:
        for key, value in item.items():
            if isinstance(value, list):
                shape = self.fields.setdefault(key, _Shape())
                for sub in value:
                    shape.add(sub)
                continue
            state = self.fields.setdefault(key, [pa.null(), False])
            if value is not None and not pa.types.is_string(state[0]):
                state[0], state[1] = widen_for_text(state[0], state[1], value)

    def arrow(self) -> pa.DataType:
        fields = []
        for key, state in self.fields.items():
            if isinstance(state, _Shape):
                fields.append(pa.field(key, state.arrow()))
            else:
                t = state[0]
                fields.append(pa.field(key, pa.string() if pa.types.is_null(t) else t))
        return pa.list_(pa.struct(fields))


class _Flattener:
    def __init__(self, normalize: bool) -> None:
        self.normalize = normalize
        self._keys: dict[int, list[tuple[str, tuple[str, ...], bool]]] = {}

    def key(self, name: str) -> str:
        return (normalize_identifier(name, prefix="c") or name) if self.normalize else name

    def record(self, node: _Node, elem: Any, columns: list[_Column]) -> list[Any]:
        values: dict[tuple[str, ...], Any] = {}
        self._walk(node, elem, (), values)
        return [values.get(c.path) for c in columns]

    def _walk(
        self, node: _Node, elem: Any, prefix: tuple[str, ...], out: dict[tuple[str, ...], Any]
    ) -> None:
        if elem.get(f"{XSI}nil") in ("true", "1"):
            return
        text = elem.text
        if len(elem):
            text = text if text and text.strip() else None
        out[(*prefix, "")] = text or None
        for name, value in elem.attrib.items():
            if not name.startswith(XSI):
                out[(*prefix, "@" + _local(name))] = value
        groups: dict[str, list[Any]] = {}
        for child in elem:
            groups.setdefault(_local(child.tag), []).append(child)
        for name, occurrences in groups.items():
            child_node = node.children.get(name)
            if child_node is None:  # pragma: no cover - the first pass saw every element
                continue
            if child_node.repeated:
                out[(*prefix, name)] = [self.item(child_node, e) for e in occurrences]
                continue
            child = occurrences[0]
            if len(child) or child.attrib:
                self._walk(child_node, child, (*prefix, name), out)
            else:  # a leaf (the common case): its text
                out[(*prefix, name, "")] = child.text or None

    def item(self, node: _Node, elem: Any) -> dict[str, Any]:
        """One element of a list: its flattened values by column name."""
        values: dict[tuple[str, ...], Any] = {}
        self._walk(node, elem, (), values)
        keys = self._keys.get(id(node))
        if keys is None:  # the structure is fixed once the first pass is done
            keys = [(self.key(c.name), c.path, c.node is None) for c in _columns(node, (), "value")]
            self._keys[id(node)] = keys
        return {key: values.get(path) if text else values.get(path, []) for key, path, text in keys}


def _refuse_unsafe(elem: Any) -> None:
    """Called at the root's start: the DOCTYPE, if any, has been read."""
    docinfo = elem.getroottree().docinfo
    dtd = docinfo.internalDTD
    entities = [e.name for e in dtd.iterentities()] if dtd is not None else []
    if entities:
        raise RejectedFile(
            "xml_unsafe",
            f"the DOCTYPE declares entities ({', '.join(entities[:5])}): entity expansion "
            "and external entities are refused; export the XML without a DTD",
        )


class _Records:
    """The record elements of the file, one at a time (each cleared after use)."""

    def __init__(self, path: str, record_path: tuple[str, ...] | None) -> None:
        self.path = path
        self.record_path = record_path

    def _matches(self, stack: list[str]) -> bool:
        steps = self.record_path
        assert steps is not None
        if len(stack) != len(steps):
            return False
        return all(step in (tag, _local(tag)) for step, tag in zip(steps, stack, strict=True))

    def _parse(self, events: tuple[str, ...], tag: str | None = None) -> Any:
        from lxml import etree  # only XML files need it

        return etree.iterparse(
            self.path,
            events=events,
            tag=tag,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )

    def __iter__(self) -> Iterator[Any]:
        from lxml import etree

        try:
            record_tag = self._first_child()
            if self.record_path is not None:
                yield from self._along_path()
            elif record_tag is not None:
                yield from self._root_children(record_tag)
        except etree.XMLSyntaxError as exc:
            line = exc.lineno or 0
            raise RejectedFile(
                "malformed", f"line {line}: not well-formed XML: {exc.msg}", [line] if line else []
            ) from exc

    def _first_child(self) -> str | None:
        """Reads up to the root's first child: the DOCTYPE is checked before anything else;
        the child's tag (``None``: an empty root)."""
        root = None
        for event, elem in self._parse(("start", "end")):
            if root is None:
                root = elem
                _refuse_unsafe(elem)
                continue
            return str(elem.tag) if event == "start" else None
        return None

    def _refuse_mixed(self, record_tag: str, elem: Any) -> None:
        if elem.tag != record_tag:
            raise RejectedFile(
                "malformed",
                f"line {elem.sourceline}: the root holds <{_local(record_tag)}> and "
                f"<{_local(str(elem.tag))}> elements; name the record element in a datasets/ "
                "document (xml.record_path)",
                [elem.sourceline],
            )

    def _root_children(self, record_tag: str) -> Iterator[Any]:
        """The root's children, all named ``record_tag`` (lxml reports only elements of
        that name: the fast path). An element of another name in the root is found when
        it is dropped, or at the end."""
        root = None
        for _, elem in self._parse(("end",), record_tag):
            parent = elem.getparent()
            if parent is None or parent.getparent() is not None:
                continue  # the same name deeper down: part of a record
            root = parent
            yield elem
            elem.clear(keep_tail=False)
            while elem.getprevious() is not None:
                self._refuse_mixed(record_tag, parent[0])
                del parent[0]
        if root is not None:
            for elem in root:
                self._refuse_mixed(record_tag, elem)

    def _along_path(self) -> Iterator[Any]:
        """The elements at ``record_path``; every other element is dropped once read."""
        stack: list[str] = []
        inside = 0  # depth of the record being read (0: outside any record)
        for event, elem in self._parse(("start", "end")):
            if event == "start":
                stack.append(elem.tag)
                if not inside and self._matches(stack):
                    inside = len(stack)
                continue
            depth = len(stack)
            stack.pop()
            if inside == depth:
                inside = 0
                yield elem
            if not inside:
                elem.clear(keep_tail=False)
                parent = elem.getparent()
                if parent is not None:
                    while elem.getprevious() is not None:
                        del parent[0]


def read_xml(
    con: duckdb.DuckDBPyConnection, path: str, options: DatasetOptions, workdir: str
) -> TextColumns:
    records = _Records(path, options.xml.record_path)
    root = _Node()
    count = 0
    for elem in records:
        root.observe(elem)
        count += 1
    if not count:
        where = "/".join(options.xml.record_path) if options.xml.record_path else "the root"
        raise RejectedFile("empty", f"no record elements found ({where})")
    columns = list(_columns(root, (), "value"))
    flattener = _Flattener(options.normalize_column_names)
    shapes = {c.name: _Shape() for c in columns if c.node is not None}
    names = [f"c{i}" for i in range(len(columns))]
    schema = pa.schema([*(pa.field(n, pa.string()) for n in names), (LINE_COLUMN, pa.int64())])
    spool = os.path.join(workdir, "xml-records.parquet")
    batch: list[list[Any]] = []
    with pq.ParquetWriter(spool, schema) as writer:

        def flush() -> None:
            arrays = [pa.array([row[i] for row in batch], pa.string()) for i in range(len(names))]
            arrays.append(pa.array([row[-1] for row in batch], pa.int64()))
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            batch.clear()

        for elem in records:
            row = flattener.record(root, elem, columns)
            for i, c in enumerate(columns):
                if c.node is not None:
                    items = row[i] or []
                    for item in items:
                        shapes[c.name].add(item)
                    row[i] = json.dumps(items, ensure_ascii=False)
            row.append(elem.sourceline)
            batch.append(row)
            if len(batch) >= BATCH_RECORDS:
                flush()
        if batch:
            flush()

    def lines_of(ordinals: list[int]) -> dict[int, int]:
        wanted = ", ".join(str(n) for n in ordinals) or "0"
        rows = con.execute(
            f"SELECT n, {LINE_COLUMN} FROM (SELECT row_number() OVER () AS n, {LINE_COLUMN} "  # noqa: S608
            f"FROM read_parquet({literal(spool)})) WHERE n IN ({wanted})"
        ).fetchall()
        return {int(n): int(line) for n, line in rows}

    return TextColumns(
        reader=f"(SELECT {', '.join(names)} FROM read_parquet({literal(spool)}))",  # noqa: S608
        header=[c.name for c in columns],
        lines_of=lines_of,
        nested={c.name: shapes[c.name].arrow() for c in columns if c.node is not None},
        format="xml",
    )
