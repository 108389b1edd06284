"""The lineage graph of the lake, from the recorded OpenLineage events and the subscriptions.

Nodes are datasets (landed objects, staging folders, Glue tables), jobs (a conversion, a
catalog registration, a product's dbt model) and consumer domains; every recorded event adds
``input -> job -> output`` edges, and every subscription whose dataset patterns match a table
adds ``table -> domain``. :meth:`LineageGraph.around` keeps what lies up to N dataset hops
upstream and downstream of a table.
"""

from __future__ import annotations

import io
import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from lakegov.errors import LakegovError, RetryableError
from lakegov.layout import LINEAGE_EVENTS_TABLE, STAGING_PREFIX, parse_key
from lakegov.mesh.patterns import dataset_matches

RAW, STAGING, TABLE, JOB, DOMAIN, FILE = "raw", "staging", "table", "job", "domain", "file"


class TableNotInLineage(LakegovError):
    """No recorded lineage mentions the table asked about."""


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    label: str
    detail: str = ""


@dataclass
class LineageGraph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)
    focus: list[str] = field(default_factory=list)  # the table(s) asked about
    # each node's parents and children, kept with ``edges`` by :meth:`link`
    _up: dict[str, set[str]] = field(default_factory=dict, repr=False)
    _down: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for a, b in self.edges:
            self._up.setdefault(b, set()).add(a)
            self._down.setdefault(a, set()).add(b)

    def add(self, node: Node) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def link(self, a: str, b: str) -> None:
        """The edge ``a -> b``."""
        self.edges.add((a, b))
        self._up.setdefault(b, set()).add(a)
        self._down.setdefault(a, set()).add(b)

    def parents(self, node_id: str) -> list[str]:
        return sorted(self._up.get(node_id, ()))

    def children(self, node_id: str) -> list[str]:
        return sorted(self._down.get(node_id, ()))

    def find_tables(self, name: str) -> list[str]:
        """Table nodes named ``name`` (``table`` or ``database.table``)."""
        wanted = name.lower()
        return sorted(
            n.id
            for n in self.nodes.values()
            if n.kind == TABLE and (n.label == wanted or n.label.split(".", 1)[-1] == wanted)
        )

    def around(self, name: str, up: int, down: int) -> LineageGraph:
        """The part of the graph up to ``up``/``down`` dataset hops from table ``name``."""
        roots = self.find_tables(name)
        if not roots:
            raise TableNotInLineage(
                f"no recorded lineage mentions a table {name!r} (is it converted, registered "
                "or built by a product since lineage was recorded?)"
            )
        keep = set(roots)
        for step, limit in ((self.parents, up), (self.children, down)):
            queue = deque((r, 0) for r in roots)
            while queue:
                current, depth = queue.popleft()
                for nxt in step(current):
                    # a job sits between two datasets: only reaching a dataset costs a hop
                    cost = 0 if self.nodes[nxt].kind == JOB else 1
                    if depth + cost > limit or nxt in keep:
                        continue
                    keep.add(nxt)
                    queue.append((nxt, depth + cost))
        # a job at the edge of the window, with its input or its output cut off, says nothing
        keep -= {
            n
            for n in keep
            if self.nodes[n].kind == JOB
            and not (keep & set(self.parents(n)) and keep & set(self.children(n)))
        }
        return LineageGraph(
            {k: v for k, v in self.nodes.items() if k in keep},
            {(a, b) for a, b in self.edges if a in keep and b in keep},
            roots,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [vars(n) for n in sorted(self.nodes.values(), key=lambda n: n.id)],
            "edges": [{"from": a, "to": b} for a, b in sorted(self.edges)],
            "focus": list(self.focus),
        }


def _dataset_node(ds: Mapping[str, str], raw_bucket: str) -> Node:
    namespace, name = ds["namespace"], ds["name"]
    node_id = f"{namespace}/{name}"
    if namespace.startswith("arn:aws:glue:") and name.startswith("table/"):
        _, database, table = name.split("/", 2)
        return Node(node_id, TABLE, f"{database}.{table}", node_id)
    if namespace == f"s3://{raw_bucket}":
        return Node(node_id, RAW, name.rsplit("/", 1)[-1], node_id)
    if name.startswith(f"{STAGING_PREFIX}/"):
        return Node(node_id, STAGING, name, node_id)
    return Node(node_id, FILE, name, node_id)


def _job_label(job: str) -> str:
    kind, _, rest = job.partition(".")
    if kind == "product":
        product, _, model = rest.partition(".")
        return f"product {product}: {model}"
    return f"{kind} {rest}"


def build_graph(
    events: Iterable[Mapping[str, Any]],
    subscriptions: Iterable[Mapping[str, Any]],
    *,
    raw_bucket: str,
) -> LineageGraph:
    """``events``: lineage rows (``job_name``, ``inputs``/``outputs`` as JSON text or lists);
    ``subscriptions``: the subscription documents (``domain``, ``datasets``)."""
    graph = LineageGraph()
    datasets_of_table: dict[str, set[str]] = {}
    raw_datasets: dict[str, str] = {}  # staging folder node -> raw dataset id
    for event in events:
        job = str(event["job_name"])
        job_id = graph.add(Node(f"job:{job}", JOB, _job_label(job), job))
        for side in ("inputs", "outputs"):
            items = event[side]
            for ds in json.loads(items) if isinstance(items, str) else items:
                ds_id = graph.add(_dataset_node(ds, raw_bucket))
                graph.link(*((ds_id, job_id) if side == "inputs" else (job_id, ds_id)))
    for node in list(graph.nodes.values()):
        if node.kind == RAW:
            try:
                dataset_id = parse_key(node.detail.split("/", 3)[-1]).dataset_id
            except LakegovError:
                continue
            for job in graph.children(node.id):
                for staged in graph.children(job):
                    raw_datasets[staged] = dataset_id
    for node in graph.nodes.values():
        if node.kind != TABLE:
            continue
        # the dataset a DatasetRefreshed of this table names (what subscriptions match):
        # a landed file's dataset id for a staging table, ``database.table`` otherwise
        landed = {
            raw_datasets[staged]
            for job in graph.parents(node.id)
            for staged in graph.parents(job)
            if staged in raw_datasets
        }
        datasets_of_table[node.id] = landed or {node.label}
    for document in subscriptions:
        if not document.get("enabled", True):
            continue
        domain = str(document.get("domain") or "")
        patterns = [str(p) for p in document.get("datasets") or []]
        for table_id, names in datasets_of_table.items():
            if any(dataset_matches(p, n) for p in patterns for n in names):
                domain_id = graph.add(
                    Node(
                        f"domain:{domain}",
                        DOMAIN,
                        f"domain {domain}",
                        str(document.get("account_id", "")),
                    )
                )
                graph.link(table_id, domain_id)
    return graph


# ----------------------------------------------------------------------------- reading AWS
def read_lineage_rows(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """Every recorded lineage event (``lineage_events/`` in the formatted bucket)."""
    rows: list[dict[str, Any]] = []
    paginator = s3.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=f"{LINEAGE_EVENTS_TABLE}/"):
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith(".parquet"):
                    continue
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                table = pq.read_table(io.BytesIO(body), columns=["job_name", "inputs", "outputs"])
                rows.extend(table.to_pylist())
    except Exception as exc:
        raise RetryableError(f"reading the lineage events in s3://{bucket}: {exc}") from exc
    return rows


def read_subscriptions(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """The subscription documents in the config bucket (``subscriptions/*.json``)."""
    out: list[dict[str, Any]] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix="subscriptions/"):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith(".json"):
                continue
            try:
                document = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            except json.JSONDecodeError:
                continue  # a rejected document subscribes nobody
            if isinstance(document, dict):
                out.append(document)
    return out
