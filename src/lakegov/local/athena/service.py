"""Athena's query API on the embedded runtime: executions, their states, results, events.

A started query is QUEUED, then RUNNING on a worker thread, then SUCCEEDED, FAILED or
CANCELLED; each transition puts an "Athena Query State Change" event on the default bus,
as Athena does. A succeeded query's results are written to its output location
(``<id>.csv`` and ``<id>.csv.metadata`` for a query, ``<id>.txt`` for SHOW/DESCRIBE/DDL,
``<id>-manifest.csv`` for UNLOAD) and served by ``GetQueryResults``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lakegov.local.athena.engine import (
    AthenaFailure,
    LocalAthenaEngine,
    QueryResult,
    athena_text,
    athena_type,
    format_csv,
    format_text,
)
from lakegov.observability import logger

MAX_RESULTS = 1000
ENGINE_VERSION = {
    "SelectedEngineVersion": "AUTO",
    "EffectiveEngineVersion": "Athena engine version 3",
}
_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
# Athena's AthenaError.ErrorType for the errors the local engine raises
_ERROR_TYPES = {
    "SYNTAX_ERROR": 1004,
    "FUNCTION_NOT_FOUND": 1004,
    "NOT_SUPPORTED": 1008,
    "TABLE_NOT_FOUND": 1006,
    "SCHEMA_NOT_FOUND": 1006,
    "COLUMN_NOT_FOUND": 1006,
    "PERMISSION_DENIED": 1100,
    "HIVE_BAD_DATA": 1201,
    "INVALID_CAST_ARGUMENT": 1003,
    "HIVE_PATH_ALREADY_EXISTS": 1201,
    "HIVE_CANNOT_OPEN_SPLIT": 1201,
    "ALREADY_EXISTS": 1006,
    "USER_CANCELLED": 1005,
}


class InvalidRequest(Exception):
    """Athena's ``InvalidRequestException`` (a 400 answer, not a failed query)."""

    code = "InvalidRequestException"


@dataclass
class Execution:
    id: str
    query: str
    workgroup: str
    database: str | None
    catalog: str
    output_location: str
    principal: str
    token: str | None = None
    submitted: float = field(default_factory=time.time)
    state: str = "QUEUED"
    reason: str = ""
    error: dict[str, Any] | None = None
    started: float | None = None
    completed: float | None = None
    statement_type: str = "DML"
    result: QueryResult | None = None
    events: int = 0

    def describe(self) -> dict[str, Any]:
        status: dict[str, Any] = {"State": self.state, "SubmissionDateTime": self.submitted}
        if self.completed is not None:
            status["CompletionDateTime"] = self.completed
        if self.reason:
            status["StateChangeReason"] = self.reason
        if self.error:
            status["AthenaError"] = self.error
        out: dict[str, Any] = {
            "QueryExecutionId": self.id,
            "Query": self.query,
            "StatementType": self.statement_type,
            "ResultConfiguration": {"OutputLocation": self.result_location},
            "ResultReuseConfiguration": {"ResultReuseByAgeConfiguration": {"Enabled": False}},
            "QueryExecutionContext": {"Catalog": self.catalog}
            | ({"Database": self.database} if self.database else {}),
            "Status": status,
            "Statistics": self.statistics(),
            "WorkGroup": self.workgroup,
            "EngineVersion": ENGINE_VERSION,
            "SubstatementType": _substatement(self.query),
        }
        if self.result and self.result.unload_files:
            out["ResultConfiguration"]["OutputLocation"] = (
                f"{self.output_location.rstrip('/')}/{self.id}-manifest.csv"
            )
        return out

    @property
    def result_location(self) -> str:
        suffix = ".csv" if self.statement_type == "DML" else ".txt"
        return f"{self.output_location.rstrip('/')}/{self.id}{suffix}"

    def statistics(self) -> dict[str, Any]:
        end = self.completed or time.time()
        start = self.started or end
        engine_ms = int((end - start) * 1000) if self.started else 0
        queue_ms = int(((self.started or end) - self.submitted) * 1000)
        return {
            "EngineExecutionTimeInMillis": engine_ms,
            "DataScannedInBytes": self.result.data_scanned_bytes if self.result else 0,
            "TotalExecutionTimeInMillis": engine_ms + queue_ms,
            "QueryQueueTimeInMillis": queue_ms,
            "ServicePreProcessingTimeInMillis": 0,
            "QueryPlanningTimeInMillis": 0,
            "ServiceProcessingTimeInMillis": 0,
            "ResultReuseInformation": {"ReusedPreviousResult": False},
        } | (
            {"DataManifestLocation": f"{self.output_location.rstrip('/')}/{self.id}-manifest.csv"}
            if self.result and self.result.unload_files
            else {}
        )


def _substatement(query: str) -> str:
    words = query.strip().split()
    return words[0].upper() if words else "UNKNOWN"


class LocalAthena:
    """The executions of one embedded runtime. ``clients(service)`` gives administrator
    clients on the local endpoint; ``engine`` runs the SQL."""

    def __init__(
        self,
        *,
        engine: LocalAthenaEngine,
        clients: Any,
        account: str,
        region: str,
        default_output: str = "",
    ) -> None:
        self.engine = engine
        self.default_output = default_output
        self.clients = clients
        self.account = account
        self.region = region
        self._executions: dict[str, Execution] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="local-athena")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.engine.close()

    # -- API actions -------------------------------------------------------------------
    def start_query_execution(self, body: dict[str, Any], principal: str) -> dict[str, Any]:
        query = str(body.get("QueryString") or "")
        if not query.strip():
            raise InvalidRequest("QueryString must not be empty")
        workgroup = str(body.get("WorkGroup") or "primary")
        config = self._workgroup(workgroup)
        context = body.get("QueryExecutionContext") or {}
        output = ((body.get("ResultConfiguration") or {}).get("OutputLocation")) or ""
        wg_output = config.get("ResultConfiguration", {}).get("OutputLocation", "")
        if config.get("EnforceWorkGroupConfiguration") and wg_output:
            output = wg_output
        output = output or wg_output or (self.default_output if workgroup == "primary" else "")
        if not output:
            raise InvalidRequest(
                "No output location provided. An output location is required either through "
                "the Workgroup result configuration setting or as an API input."
            )
        token = body.get("ClientRequestToken")
        if token:
            with self._lock:
                for execution in self._executions.values():
                    if execution.token == token:
                        return {"QueryExecutionId": execution.id}
        execution = Execution(
            id=str(uuid.uuid4()),
            query=query,
            workgroup=workgroup,
            database=context.get("Database"),
            catalog=str(context.get("Catalog") or "AwsDataCatalog"),
            output_location=output,
            principal=principal,
            token=token,
        )
        with self._lock:
            self._executions[execution.id] = execution
            self._order.append(execution.id)
        self._emit(execution, None)
        self._pool.submit(self._run, execution)
        return {"QueryExecutionId": execution.id}

    def get_query_execution(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"QueryExecution": self._get(body).describe()}

    def batch_get_query_execution(self, body: dict[str, Any]) -> dict[str, Any]:
        found, missing = [], []
        for query_id in body.get("QueryExecutionIds") or []:
            execution = self._executions.get(query_id)
            if execution is None:
                missing.append(
                    {
                        "QueryExecutionId": query_id,
                        "ErrorCode": "INVALID_INPUT",
                        "ErrorMessage": "QUERY_NOT_FOUND",
                    }
                )
            else:
                found.append(execution.describe())
        return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}

    def list_query_executions(self, body: dict[str, Any]) -> dict[str, Any]:
        workgroup = str(body.get("WorkGroup") or "primary")
        ids = [i for i in reversed(self._order) if self._executions[i].workgroup == workgroup]
        start = int(body.get("NextToken") or 0)
        size = min(int(body.get("MaxResults") or 50), 50)
        out: dict[str, Any] = {"QueryExecutionIds": ids[start : start + size]}
        if start + size < len(ids):
            out["NextToken"] = str(start + size)
        return out

    def stop_query_execution(self, body: dict[str, Any]) -> dict[str, Any]:
        execution = self._get(body)
        if execution.state not in _TERMINAL:
            self.engine.interrupt(execution.id)
            self._finish(execution, "CANCELLED", reason="Query cancelled by user")
        return {}

    def get_query_results(self, body: dict[str, Any]) -> dict[str, Any]:
        execution = self._get(body)
        if execution.state != "SUCCEEDED":
            if execution.state == "FAILED":
                raise InvalidRequest(f"Query did not finish successfully. {execution.reason}")
            raise InvalidRequest(f"Query has not yet finished. Current state: {execution.state}")
        size = int(body.get("MaxResults") or MAX_RESULTS)
        if size < 1 or size > MAX_RESULTS:
            raise InvalidRequest(
                f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy "
                f"constraint: Member must have value less than or equal to {MAX_RESULTS}"
            )
        result = execution.result or QueryResult("DDL")
        kind = str(body.get("QueryResultType") or "DATA_ROWS")
        if kind not in ("DATA_ROWS", "DATA_MANIFEST"):
            raise InvalidRequest(
                f"1 validation error detected: Value '{kind}' at 'queryResultType' failed to "
                "satisfy constraint: Member must satisfy enum value set: [DATA_MANIFEST, DATA_ROWS]"
            )
        rows: list[list[str | None]] = []
        if kind == "DATA_MANIFEST":
            # only CTAS, UNLOAD (and INSERT) write a manifest; the rows are its file URLs
            if not result.unload_files:
                raise InvalidRequest(
                    "DATA_MANIFEST is supported only for CREATE TABLE AS SELECT, UNLOAD and "
                    "INSERT queries"
                )
            rows = [[url] for url in result.unload_files]
        elif not result.unload_files:  # UNLOAD / CTAS: their rows are in the files written
            if execution.statement_type == "DML" and result.has_header and result.columns:
                rows.append([name for name, _ in result.columns])
            rows += [[None if v is None else athena_text(v) for v in row] for row in result.rows]
        start = int(body.get("NextToken") or 0)
        page = rows[start : start + size]
        out: dict[str, Any] = {
            "UpdateCount": 0,
            "ResultSet": {
                "Rows": [
                    {"Data": [{} if v is None else {"VarCharValue": v} for v in row]}
                    for row in page
                ],
                "ResultSetMetadata": {"ColumnInfo": column_info(result)},
            },
        }
        if start + size < len(rows):
            out["NextToken"] = str(start + size)
        return out

    def get_query_runtime_statistics(self, body: dict[str, Any]) -> dict[str, Any]:
        execution = self._get(body)
        stats = execution.statistics()
        result = execution.result
        rows = {
            "InputRows": 0,
            "InputBytes": stats["DataScannedInBytes"],
            "OutputBytes": 0,
            "OutputRows": len(result.rows) if result else 0,
        }
        return {
            "QueryRuntimeStatistics": {
                "Timeline": {
                    "QueryQueueTimeInMillis": stats["QueryQueueTimeInMillis"],
                    "EngineExecutionTimeInMillis": stats["EngineExecutionTimeInMillis"],
                    "TotalExecutionTimeInMillis": stats["TotalExecutionTimeInMillis"],
                    "ServicePreProcessingTimeInMillis": 0,
                    "QueryPlanningTimeInMillis": 0,
                    "ServiceProcessingTimeInMillis": 0,
                },
                "Rows": rows,
            }
        }

    # -- running -----------------------------------------------------------------------
    def _get(self, body: dict[str, Any]) -> Execution:
        query_id = str(body.get("QueryExecutionId") or "")
        execution = self._executions.get(query_id)
        if execution is None:
            raise InvalidRequest(f"QueryExecution {query_id} was not found")
        return execution

    def _workgroup(self, name: str) -> dict[str, Any]:
        athena = self.clients("athena")
        try:
            group = athena.get_work_group(WorkGroup=name)["WorkGroup"]
        except athena.exceptions.InvalidRequestException as exc:
            raise InvalidRequest(f"WorkGroup {name} is not found.") from exc
        if group.get("State") == "DISABLED":
            raise InvalidRequest(f"WorkGroup {name} is disabled.")
        return dict(group.get("Configuration") or {})

    def _run(self, execution: Execution) -> None:
        with self._lock:  # a StopQueryExecution in between would otherwise be overwritten
            if execution.state != "QUEUED":
                return
            execution.started = time.time()
            previous, execution.state = execution.state, "RUNNING"
        self._emit(execution, previous)
        try:
            result = self.engine.execute(
                execution.query,
                database=execution.database,
                principal=execution.principal,
                query_id=execution.id,
                output_location=execution.output_location,
            )
            if execution.state in _TERMINAL:  # cancelled while it ran: no results, as on AWS
                return
            execution.statement_type = result.statement_type
            execution.result = result
            self._write_results(execution, result)
        except AthenaFailure as failure:
            self._fail(execution, failure.error_type, str(failure), failure.category)
            return
        except Exception as exc:  # anything unforeseen is Athena's INTERNAL_ERROR, said plainly
            logger.exception("local Athena query failed", extra={"query_id": execution.id})
            self._fail(execution, "GENERIC_INTERNAL_ERROR", f"GENERIC_INTERNAL_ERROR: {exc}", 1)
            return
        self._finish(execution, "SUCCEEDED")

    def _fail(self, execution: Execution, error_type: str, message: str, category: int) -> None:
        if execution.state in _TERMINAL:  # already cancelled: the interrupt's error is moot
            return
        execution.error = {
            "ErrorCategory": category,
            "ErrorType": _ERROR_TYPES.get(error_type, 1000 if category == 1 else 1100),
            "Retryable": category == 1,
            "ErrorMessage": message,
        }
        if error_type == "USER_CANCELLED":
            self._finish(execution, "CANCELLED", reason=message)
        else:
            self._finish(execution, "FAILED", reason=message)

    def _finish(self, execution: Execution, state: str, *, reason: str = "") -> None:
        with self._lock:
            if execution.state in _TERMINAL:
                return
            execution.reason = reason
            execution.completed = time.time()
        self._transition(execution, state)

    def _transition(self, execution: Execution, state: str) -> None:
        previous = execution.state
        execution.state = state
        self._emit(execution, previous)

    def _write_results(self, execution: Execution, result: QueryResult) -> None:
        s3 = self.clients("s3")
        bucket, _, prefix = execution.output_location[5:].partition("/")
        base = f"{prefix.rstrip('/')}/{execution.id}" if prefix.strip("/") else execution.id
        if result.unload_files:
            body = "".join(f"{url}\n" for url in result.unload_files).encode()
            s3.put_object(Bucket=bucket, Key=f"{base}-manifest.csv", Body=body)
        elif result.statement_type == "DML":
            s3.put_object(Bucket=bucket, Key=f"{base}.csv", Body=format_csv(result))
            metadata = json.dumps({"ColumnInfo": column_info(result)}).encode()
            s3.put_object(Bucket=bucket, Key=f"{base}.csv.metadata", Body=metadata)
        else:
            s3.put_object(Bucket=bucket, Key=f"{base}.txt", Body=format_text(result))

    def _emit(self, execution: Execution, previous: str | None) -> None:
        execution.events += 1
        detail: dict[str, Any] = {
            "currentState": execution.state,
            "queryExecutionId": execution.id,
            "sequenceNumber": str(execution.events),
            "statementType": execution.statement_type,
            "versionId": "0",
            "workgroupName": execution.workgroup,
        }
        if previous:
            detail["previousState"] = previous
        if execution.error:
            detail["athenaError"] = {
                "errorCategory": float(execution.error["ErrorCategory"]),
                "errorType": float(execution.error["ErrorType"]),
                "errorMessage": execution.error["ErrorMessage"],
                "retryable": execution.error["Retryable"],
            }
        try:
            self.clients("events").put_events(
                Entries=[
                    {
                        "Source": "aws.athena",
                        "DetailType": "Athena Query State Change",
                        "Detail": json.dumps(detail),
                        "EventBusName": "default",
                        "Resources": [],
                    }
                ]
            )
        except Exception:  # the query's outcome stands; only its event is lost (logged)
            logger.exception("could not put the Athena state change event")


def column_info(result: QueryResult) -> list[dict[str, Any]]:
    info = []
    for name, engine_type in result.columns:
        type_name, precision, scale = athena_type(engine_type)
        info.append(
            {
                "CatalogName": "hive",
                "SchemaName": "",
                "TableName": "",
                "Name": name,
                "Label": name,
                "Type": type_name,
                "Precision": precision,
                "Scale": scale,
                "Nullable": "UNKNOWN",
                "CaseSensitive": type_name == "varchar",
            }
        )
    return info
