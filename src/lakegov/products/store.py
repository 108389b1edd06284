"""Product definitions, the dependency index and the fan-in state, in the audit table.

Items (``pk`` / ``sk``), next to the audit's own ``file#``, ``run#`` and ``metadata#`` items:

* ``product#<name>`` / ``definition``   the applied document (``kind = "product"``, so
                                        ``by_kind`` lists every product)
* ``product-dep#<key>`` / ``dependents`` the dependency index: which products a dataset
                                        key (see :mod:`lakegov.products.model`) triggers,
                                        as the string set ``products`` (a refresh's keys
                                        are read in one BatchGetItem; an item of the
                                        former layout, ``/ <name>``, is removed with its
                                        product's dependency)
* ``product#<name>`` / ``fanin``         the fan-in state (no ``kind``: not in ``by_kind``)
* ``product-run#<runner>#<external id>`` / ``ref``   which run a runner's job belongs to

The fan-in state holds one top-level attribute per dependency, ``ref#<key>`` = the latest
refresh time seen (ISO 8601, normalised so that text order is time order), and the run
state machine: ``phase`` (``idle`` -> ``starting`` -> ``running`` -> ``idle``),
``generation`` (bumped by every start), ``current_run``, ``attempt``, ``lease_until`` and
the refresh snapshots of the current, the last successful and the last failed run. Every
transition is one conditional UpdateItem, so concurrent handlers cannot both win one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from lakegov.audit import KIND_INDEX
from lakegov.aws import error_code, is_transient
from lakegov.dynamodb import batch_get, from_item, to_attribute
from lakegov.errors import RetryableError
from lakegov.events import utc_now

IDLE, STARTING, RUNNING = "idle", "starting", "running"
DEPENDENCY_PREFIX = "product-dep#"
DEPENDENTS_SK = "dependents"
DEPENDENTS_ATTRIBUTE = "products"  # a string set: the names of the dependent products
REF_PREFIX = "ref#"
DEFINITION_SK = "definition"
FANIN_SK = "fanin"


def _conditional_failed(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


def _wrap(exc: ClientError, what: str) -> Exception:
    if is_transient(exc):
        return RetryableError(f"{what}: {error_code(exc)}")
    return exc


class ProductStore:
    """The products' items in the audit table (a low-level DynamoDB client is passed in)."""

    def __init__(self, table_name: str, dynamodb_client: Any) -> None:
        self.table = table_name
        self._ddb = dynamodb_client

    @staticmethod
    def _key(pk: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    # -- definitions -------------------------------------------------------------------
    def get_definition(self, name: str) -> dict[str, Any] | None:
        item = self._ddb.get_item(
            TableName=self.table,
            Key=self._key(f"product#{name}", DEFINITION_SK),
            ConsistentRead=True,
        ).get("Item")
        return from_item(item) if item else None

    def get_document(self, name: str) -> dict[str, Any] | None:
        definition = self.get_definition(name)
        if not definition or definition.get("status") != "ACTIVE":
            return None
        document: dict[str, Any] = json.loads(definition["document"])
        return document

    def put_definition(
        self,
        name: str,
        document: Mapping[str, Any],
        dependency_keys: Iterable[str],
        *,
        source: str,
        version: str,
    ) -> dict[str, Any]:
        """Store (or replace) a product and re-point its dependency index entries.

        Returns ``{"added": [...], "removed": [...]}`` dependency keys and the number of
        ``writes`` it made.
        """
        previous = self.get_definition(name)
        old_keys = set(previous.get("dependency_keys", [])) if previous else set()
        new_keys = set(dependency_keys)
        stamp = utc_now()
        item = {
            **self._key(f"product#{name}", DEFINITION_SK),
            "kind": {"S": "product"},
            "subject": {"S": name},
            "version": {"S": version or "-"},
            "status": {"S": "ACTIVE"},
            "document": {"S": json.dumps(document, sort_keys=True, separators=(",", ":"))},
            "dependency_keys": to_attribute(sorted(new_keys)),
            "source": {"S": source},
            "created_at": {"S": str(previous.get("created_at", stamp)) if previous else stamp},
            "updated_at": {"S": stamp},
        }
        # every key, not only the new ones: adding a name is idempotent, and a product
        # applied before the index had its dependents items gets them when applied again
        for key in sorted(new_keys):
            self._dependents(key, "ADD", name)
        self._ddb.put_item(TableName=self.table, Item=item)
        for key in sorted(old_keys - new_keys):
            self._drop_dependent(key, name)
        removed = sorted(old_keys - new_keys)
        return {
            "added": sorted(new_keys - old_keys),
            "removed": removed,
            "writes": len(new_keys) + 1 + 2 * len(removed),
        }

    def _dependents(self, key: str, action: str, name: str) -> None:
        """ADD ``name`` to (or DELETE it from) the products depending on ``key`` (one
        atomic set update: products applied at once never overwrite each other)."""
        self._ddb.update_item(
            TableName=self.table,
            Key=self._key(f"{DEPENDENCY_PREFIX}{key}", DEPENDENTS_SK),
            UpdateExpression=f"{action} #p :p",
            ExpressionAttributeNames={"#p": DEPENDENTS_ATTRIBUTE},
            ExpressionAttributeValues={":p": {"SS": [name]}},
        )

    def _drop_dependent(self, key: str, name: str) -> None:
        self._dependents(key, "DELETE", name)
        # the entry of the former layout (one item per key and product), where one remains
        self._ddb.delete_item(
            TableName=self.table, Key=self._key(f"{DEPENDENCY_PREFIX}{key}", name)
        )

    def remove_definition(self, name: str) -> list[str]:
        """Retire a product: its index entries go, its definition stays as REMOVED history."""
        previous = self.get_definition(name)
        if not previous:
            return []
        keys = list(previous.get("dependency_keys", []))
        for key in keys:
            self._drop_dependent(key, name)
        self._ddb.update_item(
            TableName=self.table,
            Key=self._key(f"product#{name}", DEFINITION_SK),
            UpdateExpression="SET #s = :s, #u = :u",
            ExpressionAttributeNames={"#s": "status", "#u": "updated_at"},
            ExpressionAttributeValues={":s": {"S": "REMOVED"}, ":u": {"S": utc_now()}},
        )
        return keys

    def list_definitions(self) -> list[dict[str, Any]]:
        """Every product definition (active and removed), via the ``by_kind`` index."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": KIND_INDEX,
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": "kind"},
            "ExpressionAttributeValues": {":k": {"S": "product"}},
        }
        while True:
            page = self._ddb.query(**kwargs)
            items.extend(from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def products_for(self, keys: Iterable[str]) -> list[str]:
        """Names of the products depending on any of these dataset keys: one consistent
        BatchGetItem of the keys' dependents items, whatever the number of keys."""
        wanted = [
            self._key(f"{DEPENDENCY_PREFIX}{key}", DEPENDENTS_SK) for key in sorted(set(keys))
        ]
        names: set[str] = set()
        for item in batch_get(self._ddb, self.table, wanted):
            names.update(item.get(DEPENDENTS_ATTRIBUTE, {}).get("SS", []))
        return sorted(names)

    # -- fan-in state ------------------------------------------------------------------
    def get_state(self, name: str) -> dict[str, Any]:
        item = self._ddb.get_item(
            TableName=self.table, Key=self._key(f"product#{name}", FANIN_SK), ConsistentRead=True
        ).get("Item")
        return from_item(item) if item else {}

    def record_refresh(self, name: str, key: str, refreshed_at: str) -> tuple[bool, dict[str, Any]]:
        """Keep the latest refresh time of one dependency; return (newer, state after).

        One conditional write per (product, dependency): two refreshes of different
        dependencies never overwrite each other, and an older or duplicate event changes
        nothing.
        """
        try:
            response = self._ddb.update_item(
                TableName=self.table,
                Key=self._key(f"product#{name}", FANIN_SK),
                UpdateExpression="SET #r = :t, #p = if_not_exists(#p, :name)",
                ConditionExpression="attribute_not_exists(#r) OR #r < :t",
                ExpressionAttributeNames={"#r": f"{REF_PREFIX}{key}", "#p": "product"},
                ExpressionAttributeValues={":t": {"S": refreshed_at}, ":name": {"S": name}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False, self.get_state(name)
            raise _wrap(exc, f"recording a refresh of {name}") from exc
        return True, from_item(response["Attributes"])

    def _transition(
        self,
        name: str,
        *,
        sets: Mapping[str, Any],
        condition: str,
        names: Mapping[str, str],
        values: Mapping[str, Any],
        remove: Iterable[str] = (),
    ) -> dict[str, Any] | None:
        """One conditional update of the state; the state after it, or None if it lost."""
        attr_names = dict(names)
        attr_values = dict(values)
        clauses = []
        for i, (attr, value) in enumerate(sets.items()):
            attr_names[f"#s{i}"] = attr
            attr_values[f":s{i}"] = to_attribute(value)
            clauses.append(f"#s{i} = :s{i}")
        expression = "SET " + ", ".join(clauses)
        removed = list(remove)
        if removed:
            for i, attr in enumerate(removed):
                attr_names[f"#x{i}"] = attr
            expression += " REMOVE " + ", ".join(f"#x{i}" for i in range(len(removed)))
        try:
            response = self._ddb.update_item(
                TableName=self.table,
                Key=self._key(f"product#{name}", FANIN_SK),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=attr_names,
                ExpressionAttributeValues=attr_values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise _wrap(exc, f"updating the fan-in state of {name}") from exc
        return from_item(response["Attributes"])

    def claim_start(
        self,
        name: str,
        *,
        generation: int,
        now: int,
        lease_s: int,
        run: Mapping[str, Any],
    ) -> dict[str, Any] | None:
        """Flip ``idle`` of ``generation`` to ``starting`` of ``generation + 1``; exactly one
        caller per generation wins.

        ``run`` holds ``current_run``, ``attempt``, ``runner``, ``start_token``,
        ``run_snapshot``, ``trigger``, ``selection``... (stored on the state *before* the
        runner is asked to start, so that a takeover resumes this very run). A ``starting``
        whose lease expired is not claimed again: :meth:`resume_start` takes it over.
        """
        generation_ok = (
            "(attribute_not_exists(#gen) OR #gen = :gen)" if generation == 0 else "#gen = :gen"
        )
        condition = f"{generation_ok} AND (attribute_not_exists(#ph) OR #ph = :idle)"
        return self._transition(
            name,
            sets={
                **run,
                "product": name,
                "phase": STARTING,
                "generation": generation + 1,
                "lease_until": now + lease_s,
                "updated_at": utc_now(),
            },
            condition=condition,
            names={"#gen": "generation", "#ph": "phase"},
            values={":gen": {"N": str(generation)}, ":idle": {"S": IDLE}},
        )

    def resume_start(
        self, name: str, run_id: str, *, now: int, lease_s: int
    ) -> dict[str, Any] | None:
        """Take over a ``starting`` of ``run_id`` whose lease expired (its starter died or a
        write after the runner's start failed): renew the lease, keep the run (same run id,
        same idempotency token). Exactly one caller per expired lease wins."""
        return self._transition(
            name,
            sets={"lease_until": now + lease_s, "resumed_at": utc_now(), "updated_at": utc_now()},
            condition="#cur = :run AND #ph = :starting AND #lease < :now",
            names={"#cur": "current_run", "#ph": "phase", "#lease": "lease_until"},
            values={
                ":run": {"S": run_id},
                ":starting": {"S": STARTING},
                ":now": {"N": str(now)},
            },
        )

    def mark_running(
        self, name: str, run_id: str, *, runner: str, external_id: str
    ) -> dict[str, Any] | None:
        return self._transition(
            name,
            sets={
                "phase": RUNNING,
                "runner": runner,
                "external_id": external_id,
                "updated_at": utc_now(),
            },
            remove=("lease_until", "retry"),
            condition="#cur = :run AND #ph = :starting",
            names={"#cur": "current_run", "#ph": "phase"},
            values={":run": {"S": run_id}, ":starting": {"S": STARTING}},
        )

    def end_run(
        self, name: str, run_id: str, *, sets: Mapping[str, Any], remove: Iterable[str] = ()
    ) -> dict[str, Any] | None:
        """Leave ``starting``/``running`` of ``run_id`` (to idle, or to a retry's start)."""
        return self._transition(
            name,
            sets={**sets, "updated_at": utc_now()},
            remove=remove,
            condition="#cur = :run AND #ph IN (:starting, :running)",
            names={"#cur": "current_run", "#ph": "phase"},
            values={
                ":run": {"S": run_id},
                ":starting": {"S": STARTING},
                ":running": {"S": RUNNING},
            },
        )

    # -- runs --------------------------------------------------------------------------
    def put_run_ref(
        self, runner: str, external_id: str, *, product: str, run_id: str, extra: Mapping[str, Any]
    ) -> None:
        item = {
            **self._key(f"product-run#{runner}#{external_id}", "ref"),
            "product": {"S": product},
            "run_id": {"S": run_id},
            "runner": {"S": runner},
            "external_id": {"S": external_id},
            "created_at": {"S": utc_now()},
        }
        if extra:
            item["extra"] = to_attribute(dict(extra))
        try:
            self._ddb.put_item(TableName=self.table, Item=item)
        except ClientError as exc:
            raise _wrap(exc, f"recording the {runner} job of {product}") from exc

    def get_run_ref(self, runner: str, external_id: str) -> dict[str, Any] | None:
        item = self._ddb.get_item(
            TableName=self.table,
            Key=self._key(f"product-run#{runner}#{external_id}", "ref"),
            ConsistentRead=True,
        ).get("Item")
        return from_item(item) if item else None


def refreshed_times(state: Mapping[str, Any]) -> dict[str, str]:
    """Dependency key -> latest refresh time, from a state item."""
    return {k[len(REF_PREFIX) :]: str(v) for k, v in state.items() if k.startswith(REF_PREFIX)}
