"""The local Athena's executions: states under StopQueryExecution."""

from __future__ import annotations

import threading
import time

from lakegov.local.athena.engine import QueryResult
from lakegov.local.athena.service import LocalAthena

PRINCIPAL = "arn:aws:iam::123456789012:role/analyst"


class _SlowEngine:
    """Runs until released, ignoring interrupts (as a DuckDB call between checks does)."""

    def __init__(self):
        self.started = threading.Event()
        self.release = threading.Event()

    def execute(self, sql, **kwargs):
        self.started.set()
        self.release.wait(5)
        return QueryResult("DML", [("x", "INTEGER")], [(1,)])

    def interrupt(self, query_id):
        pass

    def close(self):
        pass


class _Clients:
    def __init__(self):
        self.objects = []

    def __call__(self, service):
        return self

    def get_work_group(self, WorkGroup):
        return {"WorkGroup": {"State": "ENABLED", "Configuration": {}}}

    def put_events(self, Entries):
        return {}

    def put_object(self, **kwargs):
        self.objects.append(kwargs["Key"])


def test_a_query_stopped_while_running_stays_cancelled_and_writes_no_results():
    engine, clients = _SlowEngine(), _Clients()
    athena = LocalAthena(
        engine=engine,
        clients=clients,
        account="123456789012",
        region="us-east-1",
        default_output="s3://results/",
    )
    try:
        query_id = athena.start_query_execution({"QueryString": "SELECT 1"}, PRINCIPAL)[
            "QueryExecutionId"
        ]
        assert engine.started.wait(5)
        athena.stop_query_execution({"QueryExecutionId": query_id})
        engine.release.set()
        time.sleep(0.3)
        status = athena.get_query_execution({"QueryExecutionId": query_id})["QueryExecution"]
        assert status["Status"]["State"] == "CANCELLED"
        assert "AthenaError" not in status["Status"]
        assert clients.objects == []  # no results file for a cancelled query
    finally:
        engine.release.set()
        athena.close()
