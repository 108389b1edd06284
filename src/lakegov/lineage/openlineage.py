"""OpenLineage run events for what lakegov does, as plain JSON objects.

Three kinds of job, each ending in one run event (``COMPLETE`` or ``FAIL``):

* ``convert.<table>``: a landed object (``s3://<raw bucket>/<key>``) -> the staging
  Parquet folder (``s3://<formatted bucket>/formatted_stg/<table>``);
* ``register.<table>``: that folder -> the Glue table (``table/<database>/<table>`` in the
  account's Glue namespace), with the rows registered;
* ``product.<product>.<model>``: one dbt model of a product run, its inputs (sources and
  upstream models, through ephemeral ones, from dbt's manifest) -> its table, with the rows
  it wrote and its data tests' results (``dataQualityAssertions``).

Dataset names follow OpenLineage's naming conventions (S3: namespace ``s3://<bucket>``, name
the key; Glue: namespace ``arn:aws:glue:<region>:<account>``, name
``table/<database>/<table>``). Run ids are UUIDs derived from what makes the run unique,
so a redelivered event produces the same event again.

Why plain dicts rather than the ``openlineage-python`` client: its 1.x wheel pulls in
requests, httpx2, attrs, PyYAML and python-dateutil into every function that emits (none of
which lakegov needs otherwise) and does not ship the specification's JSON Schemas; the events
here are checked against those schemas (vendored in ``lakegov/schemas/openlineage``) before
they leave, as every lakegov event is against its own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from lakegov import __version__
from lakegov.errors import LakegovError
from lakegov.jsonschemas import SCHEMA_DIR
from lakegov.layout import STAGING_PREFIX

PRODUCER = f"urn:lakegov:{__version__}"
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
RUN_EVENT_SCHEMA = f"{SPEC}#/$defs/RunEvent"
JOB_NAMESPACE = "lakegov"
COMPLETE = "COMPLETE"
FAIL = "FAIL"

# facet key -> (vendored file, its version), see lakegov/schemas/openlineage/
FACETS: dict[str, tuple[str, str]] = {
    "schema": ("SchemaDatasetFacet", "1-2-0"),
    "outputStatistics": ("OutputStatisticsOutputDatasetFacet", "1-0-2"),
    "dataQualityAssertions": ("DataQualityAssertionsDatasetFacet", "1-1-0"),
    "errorMessage": ("ErrorMessageRunFacet", "1-0-1"),
    "jobType": ("JobTypeJobFacet", "2-0-4"),
}
_RUN_NAMESPACE = uuid.UUID("8a3b5d5e-3f4c-5b6a-9a1e-6c2d4f0e7b11")


class LineageContractError(LakegovError):
    """An OpenLineage event we built does not match the specification: a bug."""


def facet(key: str, **fields: Any) -> dict[str, Any]:
    name, version = FACETS[key]
    url = f"https://openlineage.io/spec/facets/{version}/{name}.json#/$defs/{name}"
    return {"_producer": PRODUCER, "_schemaURL": url, **fields}


def run_uuid(job: str, *unique: str) -> str:
    """A stable run id: the same job and inputs give the same UUID."""
    return str(uuid.uuid5(_RUN_NAMESPACE, "\x1f".join((job, *unique))))


@dataclass(frozen=True)
class Namespaces:
    """Where lakegov's datasets live: the account's Glue catalog and the S3 buckets."""

    region: str
    account_id: str

    @property
    def glue(self) -> str:
        return f"arn:aws:glue:{self.region}:{self.account_id}"

    def table(self, database: str, table: str, **facets: Any) -> dict[str, Any]:
        return dataset(self.glue, f"table/{database}/{table}", **facets)


def s3_dataset(bucket: str, key: str, **facets: Any) -> dict[str, Any]:
    return dataset(f"s3://{bucket}", key.strip("/"), **facets)


def dataset(namespace: str, name: str, **facets: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"namespace": namespace, "name": name}
    output_facets = {k: v for k, v in facets.items() if k == "outputStatistics" and v}
    dataset_facets = {k: v for k, v in facets.items() if k != "outputStatistics" and v}
    if dataset_facets:
        out["facets"] = dataset_facets
    if output_facets:
        out["outputFacets"] = output_facets
    return out


def schema_facet(columns: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    fields = [
        {k: v for k, v in (("name", str(c["name"])), ("type", c.get("type"))) if v}
        for c in columns
        if c.get("name")
    ]
    return facet("schema", fields=fields) if fields else None


def rows_facet(rows: Any) -> dict[str, Any] | None:
    if rows is None or isinstance(rows, bool):
        return None
    return facet("outputStatistics", rowCount=int(rows))


def run_event(
    *,
    event_type: str,
    event_time: str,
    job: str,
    run_id: str,
    inputs: Sequence[Mapping[str, Any]],
    outputs: Sequence[Mapping[str, Any]],
    job_type: str,
    error: str | None = None,
) -> dict[str, Any]:
    run: dict[str, Any] = {"runId": run_id}
    if error:
        run["facets"] = {
            "errorMessage": facet("errorMessage", message=error, programmingLanguage="python")
        }
    return {
        "eventType": event_type,
        "eventTime": event_time,
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT_SCHEMA,
        "run": run,
        "job": {
            "namespace": JOB_NAMESPACE,
            "name": job,
            "facets": {
                "jobType": facet(
                    "jobType", processingType="BATCH", integration="LAKEGOV", jobType=job_type
                )
            },
        },
        "inputs": [dict(i) for i in inputs],
        "outputs": [dict(o) for o in outputs],
    }


# ------------------------------------------------------------------------------ from events
def conversion_events(detail: Mapping[str, Any], formatted_bucket: str) -> list[dict[str, Any]]:
    """A catalog ``DatasetRefreshed`` detail: each landed object it names (``source_files``)
    -> the staging table's Parquet folder, one conversion run per object.

    Built from the refresh rather than from ``FileConverted``, so the lineage function is
    not on the path between conversion and registration; the run is keyed by the object and
    the refresh, so a redelivered refresh gives the same runs.
    """
    table = str(detail["table"])
    job = f"convert.{table}"
    events = []
    for source in detail.get("source_files") or []:
        bucket, _, key = str(source).removeprefix("s3://").partition("/")
        if not bucket or not key:
            continue
        events.append(
            run_event(
                event_type=COMPLETE,
                event_time=str(detail["refreshed_at"]),
                job=job,
                run_id=run_uuid(job, bucket, key, str(detail["refreshed_at"])),
                inputs=[s3_dataset(bucket, key)],
                outputs=[s3_dataset(formatted_bucket, f"{STAGING_PREFIX}/{table}")],
                job_type="CONVERT",
            )
        )
    return events


def registration_event(
    detail: Mapping[str, Any], ns: Namespaces, formatted_bucket: str
) -> dict[str, Any]:
    """A catalog ``DatasetRefreshed`` detail: the staging folder -> the Glue table."""
    table, database = str(detail["table"]), str(detail["database"])
    job = f"register.{table}"
    return run_event(
        event_type=COMPLETE,
        event_time=str(detail["refreshed_at"]),
        job=job,
        run_id=run_uuid(job, database, str(detail["refreshed_at"])),
        inputs=[s3_dataset(formatted_bucket, f"{STAGING_PREFIX}/{table}")],
        outputs=[ns.table(database, table, outputStatistics=rows_facet(detail.get("row_count")))],
        job_type="REGISTER",
    )


def _nodes(manifest: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {**(manifest.get("sources") or {}), **(manifest.get("nodes") or {})}


def _relation(node: Mapping[str, Any], default_schema: str) -> tuple[str, str]:
    """(database, table) of a dbt model or source as the lake names it."""
    schema = str(node.get("schema") or default_schema)
    name = str(node.get("alias") or node.get("identifier") or node.get("name"))
    return schema, name


def _materialised_inputs(unique_id: str, nodes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The sources and non-ephemeral models ``unique_id`` reads, through ephemeral models."""
    out: list[str] = []
    seen: set[str] = set()
    stack = list((nodes.get(unique_id, {}).get("depends_on") or {}).get("nodes") or [])
    while stack:
        current = stack.pop(0)
        if current in seen:
            continue
        seen.add(current)
        node = nodes.get(current) or {}
        ephemeral = (node.get("config") or {}).get("materialized") == "ephemeral"
        if node.get("resource_type") == "model" and ephemeral:
            stack.extend((node.get("depends_on") or {}).get("nodes") or [])
        elif node.get("resource_type") in ("model", "source", "seed", "snapshot"):
            out.append(current)
    return out


def product_run_events(
    *,
    product: str,
    run_id: str,
    finished_at: str,
    models: Sequence[Mapping[str, Any]],
    tests: Sequence[Any],
    manifest: Mapping[str, Any],
    ns: Namespaces,
    database_of: Mapping[str, str],
) -> list[dict[str, Any]]:
    """One event per model of a product run (``models``: the run audit rows, with
    ``unique_id``; ``tests``: :class:`~lakegov.runners.dbt_results.DbtTestResult` items).

    ``database_of`` maps a dbt source named after a lake layer (``formatted_stg``) to that
    layer's Glue database in this deployment.
    """
    nodes = _nodes(manifest)
    by_model: dict[str, list[Any]] = {}
    for test in tests:
        if test.model_nm:
            by_model.setdefault(str(test.model_nm), []).append(test)
    events = []
    for model in models:
        unique_id = str(model.get("unique_id") or "")
        node = nodes.get(unique_id) or {}
        name = str(model["model_nm"])
        status = str(model.get("execution_status"))
        if status == "SKIPPED":
            continue  # dbt did not run it: no run to tell about
        inputs = []
        for parent in _materialised_inputs(unique_id, nodes):
            pnode = nodes[parent]
            # a source named after a lake layer reads that layer's Glue database
            layer = database_of.get(str(pnode.get("source_name") or ""))
            schema, relation = _relation(pnode, layer or "")
            inputs.append(ns.table(layer or schema, relation))
        database, table = _relation(node or {"name": name}, "")
        assertions = [
            {
                k: v
                for k, v in (
                    ("assertion", t.test_type),
                    ("success", t.passed),
                    ("column", t.column_nm),
                    ("name", t.test_name),
                    ("actual", None if t.failures is None else str(t.failures)),
                )
                if v is not None
            }
            for t in by_model.get(name, [])
        ]
        columns = [
            {"name": c.get("name"), "type": c.get("data_type")}
            for c in (node.get("columns") or {}).values()
        ]
        output = ns.table(
            database,
            table,
            schema=schema_facet(columns),
            outputStatistics=rows_facet(model.get("rows_affected")),
            dataQualityAssertions=facet("dataQualityAssertions", assertions=assertions)
            if assertions
            else None,
        )
        job = f"product.{product}.{name}"
        failed = status != "SUCCESS"
        events.append(
            run_event(
                event_type=FAIL if failed else COMPLETE,
                event_time=str(model.get("execution_end_date") or finished_at),
                job=job,
                run_id=run_uuid(job, run_id),
                inputs=inputs,
                outputs=[output],
                job_type="DBT_MODEL",
                error=str(model.get("execution_failure_reason") or "failed") if failed else None,
            )
        )
    return events


# ------------------------------------------------------------------------------ validation
@cache
def _registry() -> Registry:
    resources = []
    for path in sorted((SCHEMA_DIR / "openlineage").glob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


@cache
def _validator(uri: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": uri}, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def event_issues(event: Mapping[str, Any]) -> list[str]:
    """What in ``event`` breaks the OpenLineage specification (empty: nothing)."""
    issues = [
        f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}"
        for e in _validator(RUN_EVENT_SCHEMA).iter_errors(dict(event))
    ]
    facet_maps: list[Mapping[str, Any]] = [
        event.get("run", {}).get("facets") or {},
        event.get("job", {}).get("facets") or {},
    ]
    for ds in [*event.get("inputs", []), *event.get("outputs", [])]:
        facet_maps += [ds.get("facets") or {}, ds.get("outputFacets") or {}]
    for facets in facet_maps:
        for key, value in facets.items():
            if key not in FACETS:
                continue
            name, version = FACETS[key]
            uri = f"https://openlineage.io/spec/facets/{version}/{name}.json"
            issues += [
                f"{key}/{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in _validator(uri).iter_errors({key: value})
            ]
    return issues


def validate_event(event: Mapping[str, Any]) -> None:
    issues = event_issues(event)
    if issues:
        raise LineageContractError("OpenLineage event breaks the spec: " + "; ".join(issues))


def datasets_of(items: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [{"namespace": str(i["namespace"]), "name": str(i["name"])} for i in items]
