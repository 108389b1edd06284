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


class _Engine(_SlowEngine):
    def __init__(self, result):
        super().__init__()
        self.result = result
        self.release.set()

    def execute(self, sql, **kwargs):
        return self.result


def _finished(result, sql):
    athena = LocalAthena(
        engine=_Engine(result),
        clients=_Clients(),
        account="123456789012",
        region="us-east-1",
        default_output="s3://results/",
    )
    query_id = athena.start_query_execution({"QueryString": sql}, PRINCIPAL)["QueryExecutionId"]
    for _ in range(50):
        if (
            athena.get_query_execution({"QueryExecutionId": query_id})["QueryExecution"]["Status"][
                "State"
            ]
            != "RUNNING"
        ):
            break
        time.sleep(0.05)
    return athena, query_id


def test_query_result_type_separates_data_rows_from_the_manifest():
    """GetQueryResults: DATA_ROWS (the default) gives the query's rows, DATA_MANIFEST the
    files a CTAS or UNLOAD wrote, and fails for any other query."""
    import pytest

    from lakegov.local.athena.service import InvalidRequest

    url = "s3://out/x/q_1"
    athena, unload_id = _finished(
        QueryResult("DML", [], [], 0, unload_files=[url]), "UNLOAD (SELECT 1) TO 's3://out/x/'"
    )
    try:
        rows = athena.get_query_results({"QueryExecutionId": unload_id})["ResultSet"]["Rows"]
        assert rows == []
        manifest = athena.get_query_results(
            {"QueryExecutionId": unload_id, "QueryResultType": "DATA_MANIFEST"}
        )["ResultSet"]["Rows"]
        assert manifest == [{"Data": [{"VarCharValue": url}]}]
    finally:
        athena.close()
    athena, select_id = _finished(QueryResult("DML", [("x", "INTEGER")], [(1,)]), "SELECT 1")
    try:
        rows = athena.get_query_results({"QueryExecutionId": select_id})["ResultSet"]["Rows"]
        assert rows == [{"Data": [{"VarCharValue": "x"}]}, {"Data": [{"VarCharValue": "1"}]}]
        with pytest.raises(InvalidRequest):
            athena.get_query_results(
                {"QueryExecutionId": select_id, "QueryResultType": "DATA_MANIFEST"}
            )
    finally:
        athena.close()
