"""Product documents (``products/*.json`` in the config bucket): validate, apply, remove.

Validation is the JSON Schema (``schemas/product.schema.json``) plus the checks a schema
cannot express. Apply stores the definition and its dependency index in the audit table
(:class:`lakegov.products.store.ProductStore`), where the fan-in finds products by the
datasets they depend on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakegov.errors import PermanentError, ValidationIssue
from lakegov.jsonschemas import schema_issues
from lakegov.metadata.kinds import ApplyContext, DeploymentRules, MetadataKind
from lakegov.products.model import Product
from lakegov.products.store import ProductStore

SCHEMA = "product.schema"
PREFIX = "products/"


def _cycle_issues(product: Product, glue_prefix: str) -> list[ValidationIssue]:
    """A product whose own output matches one of its dependencies would trigger itself."""
    deps = set(product.dependency_keys(glue_prefix))
    issues = []
    for i, output in enumerate(product.outputs(glue_prefix)):
        clash = deps & set(output.keys())
        if clash:
            issues.append(
                ValidationIssue(
                    f"$.refreshes[{i}]",
                    f"the product refreshes {output.database}.{output.table}, which matches its "
                    f"own dependency {sorted(clash)[0]!r}: it would trigger itself. Name the "
                    "dependency with its layer (e.g. 'formatted_stg.<table>').",
                )
            )
    return issues


def validate_product(
    document: Any, source: str = "", glue_prefix: str = ""
) -> list[ValidationIssue]:
    """Every problem of one product document (severity "error" refuses it)."""
    issues = schema_issues(SCHEMA, document)
    if issues:
        return issues
    doc: Mapping[str, Any] = document
    dbt = doc.get("dbt") or {}
    if dbt.get("selector") and any(dbt.get(k) for k in ("models", "tags", "select")):
        issues.append(
            ValidationIssue(
                "$.dbt.selector",
                "a YAML selector replaces models/tags/select: give one or the other",
            )
        )
    runner = doc.get("runner") or {}
    if runner.get("type") == "local" and dbt.get("selector"):
        issues.append(
            ValidationIssue("$.dbt.selector", "the local runner takes models/tags/select only")
        )
    for i, ref in enumerate(doc.get("refreshes", [])):
        if isinstance(ref, Mapping) and "table" not in ref:
            issues.append(
                ValidationIssue(
                    f"$.refreshes[{i}]",
                    "an output needs a table (its DatasetRefreshed names database and table)",
                )
            )
    if issues:
        return issues
    product = Product.from_document(doc)
    issues += _cycle_issues(product, glue_prefix)
    seen: dict[str, int] = {}
    for i, ref in enumerate(product.depends_on):
        key = ref.key(glue_prefix)
        if key in seen:
            issues.append(
                ValidationIssue(
                    f"$.depends_on[{i}]",
                    f"the same dataset as $.depends_on[{seen[key]}]",
                    severity="warning",
                )
            )
        seen.setdefault(key, i)
    if not product.select and not product.selector:
        issues.append(
            ValidationIssue(
                "$.dbt",
                "no models, tags, select or selector: every run builds the whole project",
                severity="warning",
            )
        )
    if product.schedule_s is not None and product.schedule_s < 300:
        issues.append(
            ValidationIssue(
                "$.schedule",
                "the fallback schedule is checked every 5 minutes; shorter rates act as 5",
                severity="warning",
            )
        )
    return issues


def apply_product(document: Any, ctx: ApplyContext) -> dict[str, Any]:
    """Store the product and index it by its dependencies (idempotent)."""
    settings = ctx.settings
    glue_prefix = settings.glue_database_prefix
    product = Product.from_document(document)
    store = ProductStore(settings.audit_table, ctx.clients.dynamodb)
    source = f"s3://{ctx.document.bucket}/{ctx.document.key}"
    existing = store.get_definition(product.name)
    if existing and existing.get("status") == "ACTIVE" and existing.get("source") != source:
        raise PermanentError(
            f"product {product.name!r} is already defined by {existing.get('source')}; "
            "product names are unique"
        )
    changed = store.put_definition(
        product.name,
        product.document,
        product.dependency_keys(glue_prefix),
        source=source,
        version=ctx.document.version,
    )
    return {
        "changes": 1 + len(changed["added"]) + len(changed["removed"]),
        "write_calls": changed["writes"],
        "product": product.name,
        "depends_on": product.dependency_keys(glue_prefix),
        "policy": product.policy,
        "runner": product.runner or "default",
        "refreshes": [f"{o.database}.{o.table}" for o in product.outputs(glue_prefix)],
        "index": changed,
    }


def remove_product(ctx: ApplyContext) -> dict[str, Any]:
    """The document was deleted: retire the product it defined (its run history stays)."""
    store = ProductStore(ctx.settings.audit_table, ctx.clients.dynamodb)
    source = f"s3://{ctx.document.bucket}/{ctx.document.key}"
    for definition in store.list_definitions():
        if definition.get("source") == source and definition.get("status") == "ACTIVE":
            name = str(definition["subject"])
            keys = store.remove_definition(name)
            return {"changes": 1 + len(keys), "product": name, "unindexed": keys}
    return {"changes": 0}


def _check(
    document: Any, source: str, rules: DeploymentRules | None = None
) -> list[ValidationIssue]:
    return validate_product(document, source, rules.glue_database_prefix if rules else "")


def product_kind() -> MetadataKind:
    """The ``products/`` document kind, for :func:`lakegov.metadata.registry.metadata_kinds`."""
    return MetadataKind(
        name="product",
        prefix=PREFIX,
        validate=_check,
        apply=apply_product,
        remove=remove_product,
    )
