"""moto's work the embedded runtime's endpoint does not need to repeat, removed.

moto 5.2 recomputes, on many requests, things whose answer it already has, and some of
that grows with the state it holds (a table's items, a queue's messages): the endpoint's
cost per file then grows with the run. Each patch below says what moto does and why the
patched code answers the same; :func:`install` applies them all (idempotent), each one can
be applied alone (the equivalence tests run moto with and without it).

The endpoint (:mod:`lakegov.local.endpoint`) installs them; ``GET /_lakegov/stats`` there
shows what each AWS operation costs (:mod:`lakegov.local.request_stats`).
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from lakegov.local.moto_patch import once


@once
def install() -> None:
    """Every patch of this module."""
    cache_jsonpath_parsers()
    dispatch_names_remembered()
    random_strings_drawn_at_once()
    query_only_candidates()
    update_expressions_parsed_once()
    update_expression_trees_copied_directly()
    update_expression_walks_by_type()
    condition_expressions_parsed_once()
    item_sizes_counted_directly()
    sqs_retention_read_directly()
    sqs_one_clock_reading_per_pass()


def _replace(owner: Any, name: str, new: Callable[..., Any]) -> None:
    """``owner.name`` replaced by ``new`` (a property's or class method's function by
    ``new``, made one alike), unless replaced already (idempotent)."""
    current = inspect.getattr_static(owner, name)  # a class's own: no descriptor's value
    kind: Any = type(current) if isinstance(current, (property, classmethod)) else None
    function = current.fget if kind is property else current.__func__ if kind else current
    if getattr(function, "_lakegov_speed", False):
        return
    new.__wrapped__ = function  # type: ignore[attr-defined]
    new._lakegov_speed = True  # type: ignore[attr-defined]
    setattr(owner, name, kind(new) if kind else new)


def cache_jsonpath_parsers() -> None:
    """EventBridge: moto builds a JSONPath parser (ply's tables included) for each input
    path of each target of each event, about half of a ``PutEvents``'s time. The parser of
    a path is a pure function of its text: remembered by text."""
    import jsonpath_ng.ext

    _replace(jsonpath_ng.ext, "parse", functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse))


def dispatch_names_remembered() -> None:
    """Every request: moto finds the method answering an action by listing the names of
    every function of the service's response class (``inspect.getmembers``, some hundred
    ``getattr`` calls), and converts names from CamelCase (the action's, each queue
    attribute's...) character by character.

    - A response class's functions are set when its module is imported (and when lakegov's
      moto additions are installed, before the endpoint serves): listed once per class,
      each caller given its own copy of the list.
    - The conversion is a pure function of its text: remembered by text (a value it
      cannot remember, not hashable, is converted as before). Modules of moto already
      imported get the remembered one too.
    """
    import sys

    from moto.core import responses, utils

    list_names = responses.method_names_from_class
    listed: dict[Any, list[str]] = {}

    def method_names_from_class(clazz: Any) -> list[str]:
        names = listed.get(clazz)
        if names is None:
            names = listed[clazz] = list_names(clazz)
        return list(names)

    _replace(responses, "method_names_from_class", method_names_from_class)

    convert = inspect.getattr_static(utils, "camelcase_to_underscores")
    remembered = functools.lru_cache(maxsize=8192)(convert)

    def camelcase_to_underscores(argument: str) -> str:
        try:
            return remembered(argument)
        except TypeError:  # not hashable
            return convert(argument)

    for name, module in list(sys.modules.items()):
        if (name == "moto" or name.startswith("moto.")) and (
            getattr(module, "camelcase_to_underscores", None) is convert
        ):
            _replace(module, "camelcase_to_underscores", camelcase_to_underscores)


def random_strings_drawn_at_once() -> None:
    """moto draws each character of a random string with a call of its own to
    ``Random.choice``: 52 for the request id of every answer, 185 for the receipt handle of
    every SQS message received. Here the characters are drawn with one ``choices`` call of
    the same generator (moto's ``MotoRandom``, which its seed still seeds): strings of the
    same length from the same alphabet, as random; a seeded run repeats itself as before,
    with other strings than moto's own."""
    import string

    from moto.moto_api._internal import mock_random
    from moto.moto_api._internal.moto_random import MotoRandom
    from moto.sqs import models

    def get_random_string(
        self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False
    ) -> str:
        pool = string.ascii_letters + (string.digits if include_digits else "")
        drawn = "".join(self.choices(pool, k=length))
        return drawn.lower() if lower_case else drawn

    _replace(MotoRandom, "get_random_string", get_random_string)

    handle = inspect.getattr_static(models, "generate_receipt_handle")
    length = len(handle())  # as long as moto's

    def generate_receipt_handle() -> str:
        return "".join(mock_random.choices(string.ascii_lowercase, k=length))

    _replace(models, "generate_receipt_handle", generate_receipt_handle)


def query_only_candidates() -> None:
    """DynamoDB ``Query``: moto's ``Table.query`` starts from ``all_items()``, a list of
    every item of the table sorted by primary key, built for every query, and keeps those of
    the key condition: each query costs a sort of the whole table.

    Here ``Table.query`` runs on a view of the table that holds only the items that can
    match, and moto's own code does the rest (conditions, order, pages, filter, counts,
    projection):

    - a query on the table: the items of its hash key, ``items[hash_key]``, which are
      exactly those whose hash key equals it (the table is keyed by ``DynamoType``, whose
      hash and equality both follow type and value); ``all_items`` sorts those few as it
      sorted the whole table, so the order is the same;
    - a query on an index: the items whose attributes equal every hash-key condition of the
      query (moto's loop keeps no other, and checks them again), in no particular order: moto sorts the candidates again by the
      index's keys followed by the table's primary key (``sorted_items``), a key unique to
      each item, so the order that sort gives does not depend on the order it is given.
    """
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(
        self: Any,
        hash_key: Any,
        range_comparison: Any,
        range_objs: Any,
        limit: Any,
        exclusive_start_key: Any,
        scan_index_forward: Any,
        projection_expressions: Any,
        index_name: Any = None,
        consistent_read: Any = False,
        filter_expression: Any = None,
        hash_key_conditions: Any = None,
        range_key_conditions: Any = None,
        **filter_kwargs: Any,
    ) -> Any:
        view: Any = self
        if index_name:
            view = _IndexCandidates(self, dict(hash_key_conditions or []))
        elif hash_key is not None:
            view = _HashKeyItems(self, hash_key)
        return original(
            view,
            hash_key,
            range_comparison,
            range_objs,
            limit,
            exclusive_start_key,
            scan_index_forward,
            projection_expressions,
            index_name,
            consistent_read,
            filter_expression,
            hash_key_conditions=hash_key_conditions,
            range_key_conditions=range_key_conditions,
            **filter_kwargs,
        )

    _replace(Table, "query", query)


class _TableView:
    """A table as ``Table.query`` sees it, with fewer items: everything else is the table's
    (its bound methods included, which read the table's own items)."""

    def __init__(self, table: Any, items: dict[Any, Any]) -> None:
        self._table = table
        self.items = items

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


class _HashKeyItems(_TableView):
    def __init__(self, table: Any, hash_key: Any) -> None:
        found = table.items.get(hash_key)  # get: the table's items are a defaultdict
        super().__init__(table, {} if found is None else {hash_key: found})

    def all_items(self) -> list[Any]:
        from moto.dynamodb.models.table import Table

        return Table.all_items(self)  # type: ignore[arg-type]  # moto's sort, on these items


class _IndexCandidates(_TableView):
    def __init__(self, table: Any, conditions: dict[str, Any]) -> None:
        super().__init__(table, {})
        self._conditions = conditions  # by attribute, the last one kept, as moto keeps it

    def all_items(self) -> list[Any]:
        conditions = self._conditions.items()
        found = []
        for entry in self._table.items.values():
            for item in entry.values() if isinstance(entry, dict) else (entry,):
                attrs = item.attrs
                if all(
                    (value := attrs.get(name)) is not None and value == expected
                    for name, expected in conditions
                ):
                    found.append(item)
        return found


def update_expressions_parsed_once() -> None:
    """DynamoDB ``UpdateItem``: moto parses the update expression twice per call (the
    request's check, then the backend), and validates it with ten tree walks, where each
    walker rebuilds its table of node types, bound methods included, at every node of the
    tree (``DepthFirstTraverser.nodes_to_be_processed`` and ``process`` call
    ``_processing_map()`` each time): most of an ``UpdateItem``'s time.

    - A walker's table (every ``_processing_map`` of moto 5.2 returns the same classes,
      mapped to the same methods of the walker, whatever its state) is built once per
      walker and kept on it: the same lookups in the same order.
    - Two of the walks are checks that change nothing: at every clause node (``SET a = :a,
      b = :b`` has one per action), one counts the ``SET``/``REMOVE``/``ADD`` clauses
      below it, the other compares the paths of the actions below it; each search goes
      down the whole subtree, so a long expression costs a square. The clauses and
      actions below a node are some of those below the root (the grammar puts no clause
      or action inside an action), so when the root passes its check every node does:
      the root is checked first, and only if it fails (or the check raises) does moto's
      walk run, raising the error it raises.
    - The tree of an expression is remembered by its text: parsing is a pure function of
      the text, and nothing changes the tree it returns (the requests read its clauses,
      each ``Validator`` walks and rewrites a deep copy of it); an expression that does
      not parse is parsed, and refused, every time.
    """
    ast_nodes: Any = importlib.import_module("moto.dynamodb.parsing.ast_nodes")
    validators: Any = importlib.import_module("moto.dynamodb.parsing.validators")
    expressions: Any = importlib.import_module("moto.dynamodb.parsing.expressions")
    parser = expressions.UpdateExpressionParser

    def walker_table(self: Any) -> dict[type, Callable[[Any], Any]]:
        table = self.__dict__.get("_lakegov_processing_map")
        if table is None:
            table = self.__dict__["_lakegov_processing_map"] = self._processing_map()
        return table

    def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
        types = self.__dict__.get("_lakegov_node_types")
        if types is None:
            types = self.__dict__["_lakegov_node_types"] = tuple(walker_table(self))
        return types

    def process(self: Any, node: Any) -> Any:
        for class_key, processor in walker_table(self).items():
            if isinstance(node, class_key):
                return processor(node)
        return None

    _replace(ast_nodes.DepthFirstTraverser, "nodes_to_be_processed", nodes_to_be_processed)
    _replace(ast_nodes.DepthFirstTraverser, "process", process)
    for check in (validators.ActionCountValidator, validators.OverlappingPathsValidator):
        _replace(check, "traverse", _root_first(check.traverse))

    parse = parser.__dict__["make"].__func__

    @functools.lru_cache(maxsize=4096)
    def parsed(cls: type, expression: str) -> Any:
        return parse(cls, expression)

    def make(cls: type, expression: str) -> Any:
        return parsed(cls, expression)

    _replace(parser, "make", make)


def update_expression_trees_copied_directly() -> None:
    """DynamoDB ``UpdateItem``: every ``Validator`` deep-copies the expression's tree before
    rewriting it, and ``copy.deepcopy`` copies each node the generic way (its
    ``__reduce_ex__``, then a rebuild from the parts: a quarter of an ``UpdateItem``'s time).
    A node is a plain object whose attributes are its type name, its children (nodes,
    strings, numbers, moto's ``DynamoType`` values, which copy themselves) and its parent:
    here a node copies itself as ``deepcopy`` would, a new object of its class with each
    attribute deep-copied through the same memo (the parent found there, already copied,
    when the copy starts at the root); strings and numbers, which ``deepcopy`` returns as
    they are, are not passed through it, and a list is copied as ``deepcopy`` copies one
    (remembered in the memo, each element deep-copied)."""
    ast_nodes: Any = importlib.import_module("moto.dynamodb.parsing.ast_nodes")
    node = ast_nodes.Node
    if getattr(node.__dict__.get("__deepcopy__"), "_lakegov_speed", False):
        return

    deepcopy = copy.deepcopy
    atomic = (str, int, float, bool, type(None))

    def node_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        attributes = clone.__dict__
        for name, value in self.__dict__.items():
            kind = type(value)
            if kind in atomic:  # deepcopy returns these themselves
                attributes[name] = value
            elif kind is list:  # children: deepcopy's own list copy, memo and all
                copied = memo.get(id(value))
                if copied is None:
                    copied = memo[id(value)] = [deepcopy(v, memo) for v in value]
                    memo.setdefault(id(memo), []).append(value)  # kept alive, as deepcopy does
                attributes[name] = copied
            else:
                attributes[name] = deepcopy(value, memo)
        return clone

    node_deepcopy._lakegov_speed = True  # type: ignore[attr-defined]
    node.__deepcopy__ = node_deepcopy


def update_expression_walks_by_type() -> None:
    """DynamoDB ``UpdateItem``: the ten walks of an update expression's tree ask, at every
    node, ``isinstance(node, Node)`` (``Node`` is an abstract class: each answer goes
    through ``ABCMeta.__instancecheck__``), then whether the walker processes the node (an
    ``isinstance`` against each of its node types), and call ``pre_processing_of_child``
    before each child, a hook only one walker has.

    Both answers are fixed by the node's class: the walk here asks them once per class
    (per node types of the walker for the second), and calls the hook only for a walker
    that has one of its own. The
    walk is moto's otherwise: children first, left to right, each processed node put in
    its parent's place, in the same order."""
    ast_nodes: Any = importlib.import_module("moto.dynamodb.parsing.ast_nodes")
    walker_base, node_base = ast_nodes.DepthFirstTraverser, ast_nodes.Node
    no_hook = walker_base.pre_processing_of_child
    is_node: dict[type, bool] = {}
    # (the walker's node types, the node's class) -> the type whose processor takes it
    handled: dict[tuple[tuple[type, ...], type], type | None] = {}

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        table = self.__dict__.get("_lakegov_processing_map") or self._processing_map()
        types = tuple(table)
        hook = (
            None if type(self).pre_processing_of_child is no_hook else self.pre_processing_of_child
        )

        def walk(node: Any, child_id: int) -> Any:
            kind = type(node)
            known = is_node.get(kind)
            if known is None:
                known = is_node[kind] = isinstance(node, node_base)
            if not known:
                return node
            parent = node.parent
            children = node.children
            if children is not None:
                for i, child in enumerate(children):
                    if hook is not None:
                        hook(node, i)
                    walk(child, i)
            key = handled.get((types, kind), handled)
            if key is handled:
                key = handled[(types, kind)] = next((k for k in table if isinstance(node, k)), None)
            if key is not None:
                node = table[key](node)
                node.parent = parent
                if parent:
                    parent.children[child_id] = node
            return node

        return walk(node, child_id)

    _replace(walker_base, "traverse_node_recursively", traverse_node_recursively)


def condition_expressions_parsed_once() -> None:
    """DynamoDB conditions (``ConditionExpression``, a ``Query``'s or ``Scan``'s
    ``FilterExpression``): moto parses each one twice per request (the request's check of
    the names and values it uses, then the backend), lexing it character class by
    character class. The parse is a function of the expression's text, of the attribute
    names and of the values it refers to (its placeholders, each a part of the text), and
    nothing changes the tree it returns (evaluating a condition reads the item, and
    the tree's values): the tree and the names and values found are remembered by the
    text, every name and the values whose placeholder occurs in the text. An expression
    that does not parse is parsed, and refused, every time."""
    import json

    comparisons: Any = importlib.import_module("moto.dynamodb.comparisons")
    parser = comparisons.ConditionExpressionParser
    parse = inspect.getattr_static(parser, "parse")
    remembered: dict[tuple[Any, ...], tuple[Any, list[str], list[str]]] = {}

    def parse_once(self: Any) -> Any:
        text = self.condition_expression
        names = self.expression_attribute_names or {}
        values = self.expression_attribute_values or {}
        try:
            key = (
                text,
                tuple(sorted(names.items())),
                tuple(
                    sorted(
                        (p, json.dumps(v, sort_keys=True))
                        for p, v in values.items()
                        if text and p in text
                    )
                ),
            )
            hash(key)
        except TypeError:  # not text, or names or values of no fixed form: parsed as before
            return parse(self)
        found = remembered.get(key)
        if found is None:
            tree = parse(self)
            if len(remembered) >= 4096:
                remembered.clear()
            remembered[key] = found = (
                tree,
                list(self.expr_attr_names_found),
                list(self.expr_attr_values_found),
            )
            return tree
        tree, names_found, values_found = found
        self.expr_attr_names_found.extend(names_found)
        self.expr_attr_values_found.extend(values_found)
        return tree

    _replace(parser, "parse", parse_once)


def item_sizes_counted_directly() -> None:
    """DynamoDB writes: moto keeps an item's attributes in a dictionary that, on every
    attribute set, adds up the size of every attribute of the item (its 400 KB limit), each
    value's size found by ``DynamoType.size``, which asks ``is_number()``, ``is_set()``...
    in turn and wraps every value of a map in a new ``DynamoType`` (its lists copied) to
    ask that one's size. ``UpdateItem`` sets each attribute of its expression this way: the
    audit's ten-attribute update sums the whole item ten times.

    The size here is moto's sum, computed directly: the same cases in the same order (a
    number's digits as written, a set's members as moto sizes them one by one, a list's
    elements, a map's keys and values, a boolean 1, anything else its UTF-8 bytes)."""
    dynamo_type: Any = importlib.import_module("moto.dynamodb.models.dynamo_type")
    kind = dynamo_type.DynamoType
    sets = ("SS", "NS", "BS")

    def encoded(value: Any) -> int:  # moto's bytesize
        return len(value if isinstance(value, bytes) else value.encode("utf-8"))

    def size(self: Any) -> int:
        of, value = self.type, self.value
        if of == "N":
            return len(str(value))
        if of in sets:
            if of == "NS":
                return sum(len(str(v)) for v in value)
            return sum(1 if isinstance(v, bool) else encoded(v) for v in value)
        if of == "L":
            return sum(size(v) if type(v) is kind else v.size() for v in value)
        if of == "M":
            return sum(
                encoded(k) + size(v if type(v) is kind else kind(v)) for k, v in value.items()
            )
        if isinstance(value, bool):
            return 1
        return encoded(value)

    _replace(kind, "size", size)


def _root_first(walk: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """A check's walk that checks the root alone when it passes (see above)."""

    def traverse(self: Any, node: Any) -> Any:
        if isinstance(node, self.nodes_to_be_processed()):
            try:
                if self.process(node) is node:
                    return node
            except Exception:  # noqa: S110  # moto's walk raises what it raises
                pass
        return walk(self, node)

    return traverse


def sqs_retention_read_directly() -> None:
    """SQS ``ReceiveMessage``: for each message it hands out, moto checks the message is
    within the queue's retention period by asking ``get_queue_attributes`` for
    ``MessageRetentionPeriod``, which builds the queue's whole attribute map three times,
    each time counting the queue's messages (visible, delayed, in flight: a pass over every
    message, with a clock reading per message). The period is the queue's
    ``message_retention_period``, the very value that map reports: read directly."""
    from moto.sqs import models

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        queue = self.get_queue(queue_name)
        retain_until = queue.message_retention_period + message.sent_timestamp / 1000
        return bool(retain_until > models.unix_time())

    _replace(
        models.SQSBackend,
        "is_message_valid_based_on_retention_period",
        is_message_valid_based_on_retention_period,
    )


def sqs_one_clock_reading_per_pass() -> None:
    """SQS: a queue's visible messages (``Queue.messages``, built by every
    ``ReceiveMessage``, and again by a long poll each time it wakes) and its approximate
    counts (in every ``GetQueueAttributes``, and in every ``SendMessage``, which reads the
    queue's whole attribute map for ``ContentBasedDeduplication``) are passes over all its
    messages, where moto reads the clock twice per message (``Message.visible``,
    ``Message.delayed``: a UTC datetime built and subtracted from the epoch's): with a
    backlog each call costs milliseconds. Here each pass reads the clock once and compares
    every message's ``visible_at`` and ``delayed_until`` to it as those properties do: the
    same messages, in the same order, the same counts, as of one instant of the call
    instead of a few microseconds apart.

    Also ``Message.had_receipt_handle`` (each ``DeleteMessage`` asks it of every message
    of the queue) builds a list of the message's handles to look one up: looked up in place.
    """
    from moto.sqs import models

    def messages(self: Any) -> list[Any]:
        now = models.unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def approximate_number_of_messages(self: Any) -> int:
        return len(self.messages)

    def approximate_number_of_messages_delayed(self: Any) -> int:
        now = models.unix_time_millis()
        return sum(1 for m in self._messages if now < m.delayed_until)

    def approximate_number_of_messages_not_visible(self: Any) -> int:
        now = models.unix_time_millis()
        return sum(1 for m in self._messages if not now > m.visible_at)

    def had_receipt_handle(self: Any, receipt_handle: str) -> bool:
        return receipt_handle == self.receipt_handle or receipt_handle in self._old_receipt_handles

    _replace(models.Queue, "messages", messages)
    _replace(models.Queue, "approximate_number_of_messages", approximate_number_of_messages)
    _replace(
        models.Queue,
        "approximate_number_of_messages_delayed",
        approximate_number_of_messages_delayed,
    )
    _replace(
        models.Queue,
        "approximate_number_of_messages_not_visible",
        approximate_number_of_messages_not_visible,
    )
    _replace(models.Message, "had_receipt_handle", had_receipt_handle)
