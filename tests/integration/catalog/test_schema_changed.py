"""SchemaChanged comes from the catalog only: once per change, Glue types, both modes (moto).

The convert step no longer announces schema changes; the catalog announces each change
applied to (or refused by) a Glue table, as soon as the table holds the decision.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from botocore.exceptions import ClientError
from tests.integration.catalog.support import STAGING, file_converted, messages

from lakegov.catalog.service import process_batch
from lakegov.events import validate_detail

DATA = pa.table({"id": pa.array([1, 2], pa.int64()), "name": ["ann", "bob"]})
WIDER = DATA.append_column("score", pa.array([1, 2], pa.int64()))  # additive
BROKEN = DATA.drop_columns(["name"]).set_column(0, "id", pa.array(["1", "2"]))  # breaking


class FlakyPartitions:
    """The Glue client, whose first BatchCreatePartition is throttled."""

    def __init__(self, glue: Any) -> None:
        self._glue = glue
        self.failures = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._glue, name)

    def batch_create_partition(self, **kwargs: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}},
                "BatchCreatePartition",
            )
        return self._glue.batch_create_partition(**kwargs)


def _columns(env: Any, table: str = "orders") -> dict[str, str]:
    sd = env.glue.get_table(DatabaseName=STAGING, Name=table)["Table"]["StorageDescriptor"]
    return {c["Name"]: c["Type"] for c in sd["Columns"]}


def test_a_change_applied_before_a_failed_partition_call_is_announced_once(env):
    # Given a registered table
    first = file_converted("orders", DATA, s3=env.s3, version="v0")
    assert process_batch(messages(first), env.services()).failed == []
    # And a batch with an additive file and a breaking one, whose partition call is throttled
    wider = file_converted("orders", WIDER, [{"partition_dt": "2026-11-21"}], s3=env.s3)
    broken = file_converted(
        "orders", BROKEN, [{"partition_dt": "2026-11-22"}], s3=env.s3, version="v2"
    )
    batch = messages(wider, broken)
    flaky = FlakyPartitions(env.glue)
    # When the batch fails once, then is redelivered
    failed = process_batch(batch, env.services(glue=flaky)).failed
    assert sorted(failed) == ["m0", "m1"]
    retry = process_batch(batch, env.services(glue=flaky))
    # Then the retry registers the additive file (the refused one is a duplicate now)
    assert retry.failed == [] and retry.duplicates == 1
    assert _columns(env)["score"] == "bigint"
    # And each change was announced exactly once, with Glue type names
    changes = env.published("SchemaChanged")
    for change in changes:
        validate_detail("SchemaChanged", change)
    assert sorted((c["change"], c["action"]) for c in changes) == [
        ("additive", "applied"),
        ("breaking", "rejected"),
    ]
    applied = next(c for c in changes if c["action"] == "applied")
    assert applied["added"] == [{"name": "score", "type": "bigint"}]
    assert applied["source"] == "catalog"
    rejected = next(c for c in changes if c["action"] == "rejected")  # against the new table
    assert rejected["removed"] == [
        {"name": "name", "type": "string"},
        {"name": "score", "type": "bigint"},
    ]
    assert rejected["changed"] == [{"name": "id", "from": "bigint", "to": "string"}]
    assert env.audit.get("catalog", f"s3://lakegov-raw/{broken['key']}", "v2")["status"] == (
        "REJECTED"
    )
    refreshed = env.published("DatasetRefreshed")
    assert [r["partitions"] for r in refreshed] == [
        [{"partition_dt": "2026-11-20"}],
        [{"partition_dt": "2026-11-21"}],
    ]


@pytest.mark.parametrize("mode", ["direct", "crawler"])
def test_one_additive_change_in_a_burst_is_announced_once(env, mode):
    # Given a registered table
    first = file_converted("orders", DATA, s3=env.s3, version="v0")
    assert process_batch(messages(first), env.services()).failed == []
    # When five files, all with the new column, arrive over two batches
    burst = [
        file_converted(
            "orders",
            WIDER,
            [{"partition_dt": f"2026-11-2{i}"}],
            s3=env.s3,
            version=f"v{i + 1}",
            catalog_mode=mode,
        )
        for i in range(5)
    ]
    assert process_batch(messages(*burst[:3]), env.services()).failed == []
    assert process_batch(messages(*burst[3:]), env.services()).failed == []
    # Then one SchemaChanged says so, with the Glue type (not the Arrow one)
    (change,) = env.published("SchemaChanged")
    assert (change["change"], change["action"], change["policy"]) == (
        "additive",
        "applied",
        "additive",
    )
    assert change["added"] == [{"name": "score", "type": "bigint"}]
    assert _columns(env)["score"] == "bigint"


def test_crawler_mode_refuses_a_breaking_change_and_requests_no_crawl_for_it(env):
    # Given a registered table
    first = file_converted("orders", DATA, s3=env.s3, version="v0")
    assert process_batch(messages(first), env.services()).failed == []
    before = _columns(env)
    # When a crawler-mode file drops a column and retypes another
    broken = file_converted("orders", BROKEN, s3=env.s3, version="v1", catalog_mode="crawler")
    assert process_batch(messages(broken), env.services()).failed == []
    # Then SchemaChanged says breaking/rejected with Glue types, the table is unchanged
    (change,) = env.published("SchemaChanged")
    validate_detail("SchemaChanged", change)
    assert (change["change"], change["action"]) == ("breaking", "rejected")
    assert change["removed"] == [{"name": "name", "type": "string"}]
    assert change["changed"] == [{"name": "id", "from": "bigint", "to": "string"}]
    assert _columns(env) == before
    # And no crawl is requested for the refused file
    assert env.queued() == []
