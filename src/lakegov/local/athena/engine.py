"""Athena SQL executed on DuckDB over the embedded runtime's Glue catalog and S3.

What runs (everything else fails with ``NOT_SUPPORTED``, never a pretend success):

* queries: ``SELECT`` / ``WITH`` / ``VALUES`` in Athena's (Trino's) dialect, translated to
  DuckDB by sqlglot; each table the query names becomes a view over its objects
  (see :mod:`.catalog`) holding only the columns and rows its caller may read;
* ``SHOW DATABASES | SCHEMAS``, ``SHOW TABLES [IN db]``, ``SHOW COLUMNS``,
  ``SHOW PARTITIONS``, ``DESCRIBE``: answered from the Glue catalog;
* ``CREATE EXTERNAL TABLE`` (Parquet, CSV and JSON SerDes) and ``DROP TABLE``: Glue
  calls, as Athena's DDL is;
* ``UNLOAD (SELECT ...) TO 's3://...' WITH (format = ...)``: the query's rows written to
  an empty S3 folder as Parquet, JSON or text files.

Lake Formation: a query runs as a principal. Unless that principal is unrestricted (a data
lake administrator, or the local deployer identity), every table it reads is checked
through an access policy (``table_access``): ``SELECT *`` gives only the granted columns,
a named ungranted column is refused, a row filter narrows the table's view.

Size: over 600 lines because it is one dispatcher over the statement kinds above, each a
short method sharing the connection, the caller's access policy and the result shape;
the seams already taken out are the catalog views (:mod:`.catalog`), the service API
(:mod:`.service`) and its server (:mod:`.server`). The next split, when it grows, is the
DDL and UNLOAD statements into a module of their own.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from lakegov.convert.sql import identifier, literal
from lakegov.errors import LakegovError
from lakegov.governance.access import AccessDenied, TableNotFound, principal_account
from lakegov.governance.table_grant import TableGrant
from lakegov.local.athena.catalog import (
    PARQUET,
    PATH_COLUMN,
    CatalogError,
    Column,
    DataFile,
    TableDef,
    data_files,
    load_table,
    resolve_link,
    split_s3,
    view_sql,
)
from lakegov.s3 import upload_file

READ = "athena"  # sqlglot's dialect of Athena (Trino for queries, Hive for DDL)
_LEADING_COMMENTS = re.compile(
    r"^(?:\s*(?:--[^\n]*(?:\n|$)|/\*.*?\*/))*", re.DOTALL
)  # sqlglot's dialect of Athena (Trino for queries, Hive for DDL)


class AthenaFailure(Exception):
    """A query failed: ``error_type`` is Athena's error name (``TABLE_NOT_FOUND``...).

    ``category`` follows Athena's ErrorCategory: 1 system, 2 user (the query or data),
    3 other.
    """

    def __init__(self, error_type: str, message: str, *, category: int = 2) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.category = category


class AccessPolicyLike(Protocol):
    """What the engine asks of Lake Formation (:class:`lakegov.governance.access.AccessPolicy`)."""

    def table_access(
        self, principal_arn: str, database: str, table: str, permission: str = "SELECT"
    ) -> TableGrant: ...


@dataclass
class QueryResult:
    """What a statement produced: typed columns and rows (Python values), or nothing."""

    statement_type: str  # DML | DDL | UTILITY
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, DuckDB type)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    data_scanned_bytes: int = 0
    unload_files: list[str] = field(default_factory=list)
    has_header: bool = True


@dataclass
class _Scope:
    """The tables one statement reads: their definitions, grants and views."""

    views: dict[str, str] = field(default_factory=dict)  # view name -> SQL
    types: dict[str, dict[str, str]] = field(default_factory=dict)  # view -> column -> type
    scanned: int = 0


def _typed(tree: Any, types: dict[str, dict[str, str]]) -> Any:
    """``tree`` with its expressions' types, from the bound tables' catalog types, so that
    what depends on them is translated as Trino means it: an integer divided by an integer
    is an integer (``7 / 2`` is 3; DuckDB's ``/`` alone would answer 3.5)."""
    try:
        schema = MappingSchema(dict[str, object](types), dialect="hive")
        qualified = qualify(
            tree.copy(),
            schema=schema,
            dialect=READ,
            expand_stars=False,
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )
        typed = annotate_types(qualified, schema=schema)
    except (sqlglot.errors.SqlglotError, ValueError):  # what sqlglot cannot resolve
        typed = annotate_types(tree)
    return _dates_stay_dates(typed)


_DATE_UNITS = {"DAY", "WEEK", "MONTH", "QUARTER", "YEAR"}


def _dates_stay_dates(tree: Any) -> Any:
    """Trino's ``date_add(unit, n, date)`` is a date for calendar units; DuckDB's
    ``date + INTERVAL`` is a timestamp: cast it back."""
    for node in list(tree.find_all(exp.DateAdd, exp.DateSub)):
        unit = str(node.args.get("unit") or "DAY").upper()
        if node.this.type is not None and node.this.is_type("date") and unit in _DATE_UNITS:
            cast = exp.Cast(this=node.copy(), to=exp.DataType.build("date"))
            cast.type = exp.DataType.build("date")
            node.replace(cast)
    return tree


class LocalAthenaEngine:
    """Runs statements. ``glue`` and ``s3`` are administrator clients on the local endpoint;
    ``access`` answers Lake Formation questions (None: only unrestricted callers may query)."""

    def __init__(
        self,
        *,
        glue: Any,
        s3: Any,
        endpoint_url: str,
        region: str,
        credentials: tuple[str, str],
        access: Callable[[], AccessPolicyLike | None] = lambda: None,
        unrestricted: Callable[[str], bool] = lambda _principal: False,
        account: str = "",
        catalog_of: Callable[[str], tuple[Any, Any]] | None = None,
        share_accepted: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.glue = glue
        self.s3 = s3
        self.endpoint_url = endpoint_url
        self.region = region
        self.credentials = credentials
        self._access = access
        self._unrestricted = unrestricted
        # principals of other accounts read their own account's catalog (resource links
        # to this one): ``catalog_of(account)`` gives (glue, lakeformation) clients there
        self.account = account
        self._catalog_of = catalog_of
        # ``share_accepted(consumer, producer)``: whether the consumer account accepted the
        # producer's RAM share (until then AWS shows it none of the shared tables)
        self._share_accepted = share_accepted
        self._db: Any = None
        self._lock = threading.Lock()
        self._running: dict[str, Any] = {}

    # -- DuckDB, created on the first query (runtimes that never query never pay) --------
    def _connection(self) -> Any:
        with self._lock:
            if self._db is None:
                from lakegov.duckdb_setup import connect_s3

                self._db = connect_s3(
                    endpoint_url=self.endpoint_url,
                    region=self.region,
                    access_key_id=self.credentials[0],
                    secret_access_key=self.credentials[1],
                )
            return self._db.cursor()

    def interrupt(self, query_id: str) -> None:
        cursor = self._running.get(query_id)
        if cursor is not None:
            cursor.interrupt()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- statements --------------------------------------------------------------------
    def execute(
        self,
        sql: str,
        *,
        database: str | None,
        principal: str,
        query_id: str,
        output_location: str = "",
    ) -> QueryResult:
        text = _LEADING_COMMENTS.sub("", sql).strip().rstrip(";").strip()
        head = re.sub(r"\s+", " ", text[:64]).upper()
        if head.startswith("UNLOAD"):
            return self._unload(text, database, principal, query_id)
        if head.startswith(("SHOW ", "DESCRIBE ", "DESC ")):
            return self._metadata(text, database, principal)
        if head.startswith("CREATE EXTERNAL TABLE"):
            self._require_admin(principal, "CREATE EXTERNAL TABLE")
            return self._create_external_table(text, database)
        if head.startswith("CREATE TABLE"):
            self._require_admin(principal, "CREATE TABLE AS")
            return self._ctas(text, database, principal, query_id, output_location)
        if head.startswith("DROP TABLE"):
            self._require_admin(principal, "DROP TABLE")
            return self._drop_table(text, database)
        if head.startswith(("SELECT", "WITH", "VALUES", "(")):
            return self._query(text, database, principal, query_id)
        verb = " ".join(head.split(" ")[:3])
        raise AthenaFailure(
            "NOT_SUPPORTED",
            f"NOT_SUPPORTED: the local Athena does not run {verb!r} statements (it runs "
            "SELECT, SHOW, DESCRIBE, CREATE EXTERNAL TABLE, CREATE TABLE AS, DROP TABLE and UNLOAD)",
        )

    def _require_admin(self, principal: str, what: str) -> None:
        if not self._unrestricted(principal):
            raise AthenaFailure(
                "PERMISSION_DENIED",
                f"AccessDeniedException: {principal} may not run {what} on the local Athena "
                "(DDL is reserved to data lake administrators here)",
            )

    # -- SELECT ------------------------------------------------------------------------
    def _parse_query(self, text: str) -> Any:  # an exp.Query
        try:
            tree = sqlglot.parse_one(text, read=READ)
        except sqlglot.errors.ParseError as exc:
            raise AthenaFailure("SYNTAX_ERROR", f"SYNTAX_ERROR: {exc}") from exc
        if not isinstance(tree, exp.Query):
            raise AthenaFailure("NOT_SUPPORTED", "NOT_SUPPORTED: not a query")
        return tree

    def _query(self, text: str, database: str | None, principal: str, query_id: str) -> QueryResult:
        tree = self._parse_query(text)
        _name_columns(tree)
        cursor = self._connection()
        try:
            scope = self._bind(tree, database, principal, cursor)
            sql = _typed(tree, scope.types).sql(dialect="duckdb")
            rows, columns = self._run(cursor, scope, sql, query_id)
        finally:
            cursor.close()
        return QueryResult("DML", columns, rows, scope.scanned)

    def _run(
        self, cursor: Any, scope: _Scope, sql: str, query_id: str
    ) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
        import duckdb

        self._running[query_id] = cursor
        try:
            for name, view in scope.views.items():
                cursor.execute(f"CREATE TEMP VIEW {identifier(name)} AS {view}")
            relation = cursor.execute(sql)
            # Trino (so Athena) names result columns in lower case
            columns = [(str(d[0]).lower(), str(d[1])) for d in relation.description or []]
            rows = relation.fetchall()
        except duckdb.InterruptException as exc:
            raise AthenaFailure("USER_CANCELLED", "Query cancelled by user") from exc
        except duckdb.Error as exc:
            raise _engine_failure(exc) from exc
        finally:
            self._running.pop(query_id, None)
        return rows, columns

    def _bind(self, tree: Any, database: str | None, principal: str, cursor: Any) -> _Scope:
        """Replace every catalog table in ``tree`` by a view of what ``principal`` may read."""
        scope = _Scope()
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        referenced = {c.name.lower() for c in tree.find_all(exp.Column)}
        aliases = {a.alias.lower() for a in tree.find_all(exp.Alias)}
        with_path = PATH_COLUMN in referenced
        # A function in FROM would be DuckDB's (read_parquet, read_text, glob...), run with
        # the engine's credentials: it would read S3 objects and local files around Lake
        # Formation. Athena has none (UNNEST is not a table function here).
        for node in tree.find_all(exp.Table):
            if isinstance(node.this, exp.Func):
                name = (node.this.name or node.this.sql_name()).lower()
                raise AthenaFailure(
                    "FUNCTION_NOT_FOUND",
                    f"FUNCTION_NOT_FOUND: table function {name!r} is not registered",
                )
        tables = [
            t
            for t in tree.find_all(exp.Table)
            if t.name and not (not t.db and t.name.lower() in ctes)
        ]
        denied: dict[str, set[str]] = {}
        policy: AccessPolicyLike | None = None
        hidden_in: dict[str, tuple[str, set[str]]] = {}  # table alias -> (name, hidden)
        granted_anywhere: set[str] = set()
        for n, node in enumerate(tables):
            db = (node.db or database or "default").lower()
            if node.catalog and node.catalog.lower() not in ("awsdatacatalog",):
                raise AthenaFailure(
                    "NOT_SUPPORTED",
                    f"NOT_SUPPORTED: catalog {node.catalog!r} (only AwsDataCatalog)",
                )
            glue = self.glue
            linked: TableGrant | None = None
            try:
                if self._other_account(principal):
                    glue, table, linked = self._linked_table(principal, db, node.name.lower())
                else:
                    table = load_table(self.glue, db, node.name.lower())
            except CatalogError as exc:
                raise AthenaFailure(exc.error_type, f"{exc.error_type}: {exc}") from exc
            columns = table.all_columns
            row_filter = None
            cell_filters: dict[str, str] = {}
            if linked is not None or not self._unrestricted(principal):
                if linked is None and policy is None:
                    policy = self._access()  # one evaluator (one read of LF) per query
                grant = linked or self._grant(principal, table, "SELECT", policy)
                if grant.columns is not None:
                    allowed = {c.lower() for c in grant.columns}
                    hidden = {c.name for c in columns if c.name not in allowed}
                    columns = [c for c in columns if c.name in allowed]
                    if hidden:
                        denied[f"{db}.{table.name}"] = hidden
                        hidden_in[(node.alias or node.name).lower()] = (
                            f"{db}.{table.name}",
                            hidden,
                        )
                row_filter = _translate_filter(grant.row_filter) if grant.row_filter else None
                cell_filters = {c.lower(): _translate_filter(p) for c, p in grant.cell_filters}
            granted_anywhere |= {c.name for c in columns}
            try:
                files = data_files(glue, self.s3, table)
            except CatalogError as exc:
                raise AthenaFailure(exc.error_type, f"{exc.error_type}: {exc}") from exc
            scope.scanned += sum(f.size for f in files)
            present = self._parquet_columns(cursor, table, files)
            view_name = f"__lakegov_{n}_{table.name}"
            scope.types[view_name] = {c.name: c.type for c in columns}
            scope.views[view_name] = view_sql(
                table,
                files,
                columns=columns,
                present=present,
                row_filter=row_filter,
                cell_filters=cell_filters,
                with_path=with_path,
            )
            alias = node.alias or node.name
            node.replace(
                exp.Table(
                    this=exp.to_identifier(view_name, quoted=True),
                    alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)),
                )
            )
        missing = _denied_columns(tree, hidden_in, aliases, granted_anywhere)
        for name in denied:
            if missing.get(name):
                denial = AccessDenied(principal, "SELECT", name, sorted(missing[name]))
                raise AthenaFailure("PERMISSION_DENIED", f"AccessDeniedException: {denial}")
        return scope

    def _other_account(self, principal: str) -> bool:
        account = principal_account(principal)
        return bool(self._catalog_of and self.account and account and account != self.account)

    def _linked_table(
        self, principal: str, database: str, name: str
    ) -> tuple[Any, TableDef, TableGrant]:
        """A table as a principal of another account reads it: through its own account's
        catalog, where a resource link stands for a table of this (or a third) catalog.
        Returns the Glue client of the table's catalog, the table and what it may read."""
        from lakegov.governance.access import AccessPolicy, shared_table_access

        assert self._catalog_of is not None
        account = principal_account(principal)
        own_glue, own_lf = self._catalog_of(account)
        catalog, target_db, target_name = resolve_link(own_glue, database, name)
        try:
            if catalog is None or catalog == account:  # a table of its own account
                table = load_table(own_glue, target_db, target_name)
                grant = AccessPolicy(own_lf, own_glue, catalog_id=account).table_access(
                    principal, target_db, target_name
                )
                return own_glue, table, grant
            glue, lf = (self.glue, self._catalog_of(self.account)[1])
            if catalog != self.account:
                glue, lf = self._catalog_of(catalog)
            table = load_table(glue, target_db, target_name)
            grant = shared_table_access(
                AccessPolicy(own_lf, glue, catalog_id=account),
                AccessPolicy(lf, glue, catalog_id=catalog),
                principal,
                target_db,
                target_name,
            )
            if self._share_accepted is not None and not self._share_accepted(account, catalog):
                raise AccessDenied(
                    principal,
                    "SELECT",
                    f"{target_db}.{target_name}",
                    reason=f"account {account} has not accepted the RAM share of account "
                    f"{catalog}: the shared table is not visible to it",
                )
        except AccessDenied as exc:
            raise AthenaFailure("PERMISSION_DENIED", f"AccessDeniedException: {exc}") from exc
        except TableNotFound as exc:
            raise AthenaFailure("TABLE_NOT_FOUND", f"TABLE_NOT_FOUND: {exc}") from exc
        return glue, table, grant

    def _grant(
        self,
        principal: str,
        table: TableDef,
        permission: str,
        policy: AccessPolicyLike | None = None,
    ) -> TableGrant:
        policy = policy or self._access()
        if policy is None:
            raise AthenaFailure(
                "PERMISSION_DENIED",
                f"AccessDeniedException: {principal} is not a data lake administrator and this "
                "runtime has no Lake Formation evaluator to check its grants",
            )
        try:
            return policy.table_access(principal, table.database, table.name, permission)
        except AccessDenied as exc:
            raise AthenaFailure("PERMISSION_DENIED", f"AccessDeniedException: {exc}") from exc
        except TableNotFound as exc:
            raise AthenaFailure("TABLE_NOT_FOUND", f"TABLE_NOT_FOUND: {exc}") from exc

    def _parquet_columns(self, cursor: Any, table: TableDef, files: list[DataFile]) -> set[str]:
        if table.format != PARQUET or not files:
            return set()
        urls = "[" + ", ".join(literal(f.url) for f in files) + "]"
        import duckdb

        try:
            described = cursor.execute(
                f"DESCRIBE SELECT * FROM read_parquet({urls}, union_by_name = true)"  # noqa: S608
            ).fetchall()
        except duckdb.Error as exc:
            raise _engine_failure(exc) from exc
        return {str(row[0]).lower() for row in described}

    # -- SHOW / DESCRIBE ---------------------------------------------------------------
    def _metadata(self, text: str, database: str | None, principal: str) -> QueryResult:
        words = text.split()
        upper = [w.upper() for w in words]
        like = _like_pattern(text)
        if upper[:2] in (["SHOW", "DATABASES"], ["SHOW", "SCHEMAS"]):
            names = [
                d["Name"]
                for page in self.glue.get_paginator("get_databases").paginate()
                for d in page["DatabaseList"]
            ]
            found: list[tuple[Any, ...]] = [(n,) for n in sorted(names) if _matches(n, like)]
            return QueryResult("UTILITY", [("database_name", "VARCHAR")], found, has_header=False)
        if upper[:2] == ["SHOW", "TABLES"]:
            match = re.match(r"(?is)show\s+tables(?:\s+(?:in|from)\s+([`\"\w.]+))?", text)
            db = _ident(match.group(1)) if match and match.group(1) else (database or "default")
            try:
                names = [
                    t["Name"]
                    for page in self.glue.get_paginator("get_tables").paginate(DatabaseName=db)
                    for t in page["TableList"]
                ]
            except self.glue.exceptions.EntityNotFoundException as exc:
                raise AthenaFailure(
                    "SCHEMA_NOT_FOUND", f"SCHEMA_NOT_FOUND: Schema '{db}' does not exist"
                ) from exc
            tables: list[tuple[Any, ...]] = [
                (n,)
                for n in sorted(names)
                if _matches(n, like) and self._may_describe(principal, db, n)
            ]
            return QueryResult("UTILITY", [("tab_name", "VARCHAR")], tables, has_header=False)
        if upper[:2] == ["SHOW", "COLUMNS"]:
            match = re.match(
                r"(?is)show\s+columns\s+(?:in|from)\s+([`\"\w.]+)(?:\s+(?:in|from)\s+([`\"\w]+))?",
                text,
            )
            if not match:
                raise AthenaFailure("SYNTAX_ERROR", "SYNTAX_ERROR: SHOW COLUMNS IN table [IN db]")
            table = self._described(match.group(1), match.group(2) or database, principal)
            return QueryResult(
                "UTILITY", [("field", "VARCHAR")], [(c.name,) for c in table[1]], has_header=False
            )
        if upper[:2] == ["SHOW", "PARTITIONS"]:
            if len(words) < 3:
                raise AthenaFailure("SYNTAX_ERROR", "SYNTAX_ERROR: SHOW PARTITIONS table")
            definition, _ = self._described(words[2], database, principal)
            if not definition.partition_keys:
                raise AthenaFailure(
                    "NOT_PARTITIONED",
                    f"FAILED: SemanticException Table {definition.name} is not a partitioned table",
                )
            seen = sorted(
                {
                    "/".join(f"{k}={v}" for k, v in f.partition)
                    for f in data_files(self.glue, self.s3, definition)
                }
                | self._registered_partitions(definition)
            )
            return QueryResult(
                "UTILITY", [("partition", "VARCHAR")], [(p,) for p in seen], has_header=False
            )
        if upper[0] in ("DESCRIBE", "DESC"):
            rest = [w for w in words[1:] if w.upper() not in ("EXTENDED", "FORMATTED")]
            if not rest:
                raise AthenaFailure("SYNTAX_ERROR", "SYNTAX_ERROR: DESCRIBE table")
            definition, visible = self._described(rest[0], database, principal)
            keys = {k.name for k in definition.partition_keys}
            rows: list[tuple[Any, ...]] = [
                (c.name, c.type, "") for c in visible if c.name not in keys
            ]
            parts = [c for c in visible if c.name in keys]
            if parts:
                rows += [
                    ("", "", ""),
                    ("# Partition Information", "", ""),
                    ("# col_name", "data_type", "comment"),
                    ("", "", ""),
                ]
                rows += [(c.name, c.type, "") for c in parts]
            return QueryResult(
                "UTILITY",
                [("col_name", "VARCHAR"), ("data_type", "VARCHAR"), ("comment", "VARCHAR")],
                rows,
                has_header=False,
            )
        raise AthenaFailure(
            "NOT_SUPPORTED", f"NOT_SUPPORTED: {' '.join(upper[:2])} is not supported locally"
        )

    def _may_describe(self, principal: str, database: str, table: str) -> bool:
        """Whether the table is listed to ``principal``: Lake Formation's catalog shows a
        principal only the tables it holds some permission on."""
        if self._unrestricted(principal):
            return True
        policy = self._access()
        if policy is None:
            return False
        try:
            policy.table_access(principal, database, table, "DESCRIBE")
        except (AccessDenied, TableNotFound):
            return False
        return True

    def _registered_partitions(self, table: TableDef) -> set[str]:
        if table.projected:
            return set()
        keys = [k.name for k in table.partition_keys]
        return {
            "/".join(f"{k}={v}" for k, v in zip(keys, p["Values"], strict=False))
            for page in self.glue.get_paginator("get_partitions").paginate(
                DatabaseName=table.database, TableName=table.name
            )
            for p in page.get("Partitions") or []
        }

    def _described(
        self, name: str, database: str | None, principal: str
    ) -> tuple[TableDef, list[Column]]:
        db, table_name = _qualified(name, database)
        try:
            table = load_table(self.glue, db, table_name)
        except CatalogError as exc:
            raise AthenaFailure(exc.error_type, f"{exc.error_type}: {exc}") from exc
        columns = table.all_columns
        if not self._unrestricted(principal):
            grant = self._grant(principal, table, "DESCRIBE")
            if grant.columns is not None:
                allowed = {c.lower() for c in grant.columns}
                columns = [c for c in columns if c.name in allowed]
        return table, columns

    # -- DDL ---------------------------------------------------------------------------
    def _create_external_table(self, text: str, database: str | None) -> QueryResult:
        try:
            tree = sqlglot.parse_one(text, read="hive")
        except sqlglot.errors.ParseError as exc:
            raise AthenaFailure("SYNTAX_ERROR", f"SYNTAX_ERROR: {exc}") from exc
        if not isinstance(tree, exp.Create) or not isinstance(tree.this, exp.Schema):
            raise AthenaFailure(
                "SYNTAX_ERROR", "SYNTAX_ERROR: CREATE EXTERNAL TABLE name (columns) ..."
            )
        target = tree.this.this
        db = (target.db or database or "default").lower()
        name = target.name.lower()
        columns = [
            {"Name": c.name.lower(), "Type": _hive_type(c)}
            for c in tree.this.expressions
            if isinstance(c, exp.ColumnDef)
        ]
        partition_keys: list[dict[str, str]] = []
        location = ""
        serde = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
        serde_params: dict[str, str] = {}
        table_params: dict[str, str] = {"EXTERNAL": "TRUE"}
        stored_as = ""
        for prop in (tree.args.get("properties") or exp.Properties()).expressions:
            if isinstance(prop, exp.PartitionedByProperty):
                partition_keys = [
                    {"Name": c.name.lower(), "Type": _hive_type(c)}
                    for c in prop.this.expressions
                    if isinstance(c, exp.ColumnDef)
                ]
            elif isinstance(prop, exp.LocationProperty):
                location = prop.this.name
            elif isinstance(prop, exp.RowFormatSerdeProperty):
                serde = prop.this.name
                props = prop.args.get("serde_properties")
                for item in props.expressions if props else []:
                    serde_params[item.this.name] = item.args["value"].name
            elif isinstance(prop, exp.RowFormatDelimitedProperty):
                fields = prop.args.get("fields")
                if fields is not None:
                    serde_params["field.delim"] = fields.name
            elif isinstance(prop, exp.FileFormatProperty) and isinstance(
                prop.this, exp.InputOutputFormat
            ):
                # STORED AS INPUTFORMAT '...' OUTPUTFORMAT '...': only the text formats are
                # read here; anything else (ORC, Avro...) must fail, not be read as CSV
                given = prop.this.args.get("input_format")
                name = given.name if given is not None else ""
                if name.rsplit(".", 1)[-1] != "TextInputFormat":
                    raise AthenaFailure(
                        "NOT_SUPPORTED", f"NOT_SUPPORTED: STORED AS INPUTFORMAT {name!r}"
                    )
                stored_as = "TEXTFILE"
            elif isinstance(prop, exp.FileFormatProperty):
                stored_as = prop.this.name.upper()
            elif isinstance(prop, exp.Property) and prop.args.get("value") is not None:
                table_params[prop.this.name] = prop.args["value"].name
        if not location:
            raise AthenaFailure("SYNTAX_ERROR", "SYNTAX_ERROR: an external table needs a LOCATION")
        if stored_as == "PARQUET":
            serde = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
            input_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
            output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
        elif stored_as in ("", "TEXTFILE"):
            input_format = "org.apache.hadoop.mapred.TextInputFormat"
            output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
        else:
            raise AthenaFailure("NOT_SUPPORTED", f"NOT_SUPPORTED: STORED AS {stored_as}")
        storage = {
            "Columns": columns,
            "Location": location,
            "InputFormat": input_format,
            "OutputFormat": output_format,
            "SerdeInfo": {"SerializationLibrary": serde, "Parameters": serde_params},
        }
        from lakegov.local.athena.catalog import table_format

        try:
            table_format(storage)
        except CatalogError as exc:
            raise AthenaFailure(exc.error_type, f"{exc.error_type}: {exc}") from exc
        try:
            self.glue.create_table(
                DatabaseName=db,
                TableInput={
                    "Name": name,
                    "TableType": "EXTERNAL_TABLE",
                    "StorageDescriptor": storage,
                    "PartitionKeys": partition_keys,
                    "Parameters": table_params,
                },
            )
        except self.glue.exceptions.AlreadyExistsException as exc:
            if tree.args.get("exists"):
                return QueryResult("DDL")
            raise AthenaFailure(
                "ALREADY_EXISTS", f"AlreadyExistsException: Table {db}.{name} already exists"
            ) from exc
        except self.glue.exceptions.EntityNotFoundException as exc:
            raise AthenaFailure(
                "SCHEMA_NOT_FOUND", f"SCHEMA_NOT_FOUND: Schema '{db}' does not exist"
            ) from exc
        return QueryResult("DDL")

    def _drop_table(self, text: str, database: str | None) -> QueryResult:
        match = re.match(r"(?is)drop\s+table\s+(if\s+exists\s+)?([`\"\w.]+)\s*$", text)
        if not match:
            raise AthenaFailure("SYNTAX_ERROR", "SYNTAX_ERROR: DROP TABLE [IF EXISTS] name")
        db, name = _qualified(match.group(2), database)
        try:
            self.glue.delete_table(DatabaseName=db, Name=name)
        except self.glue.exceptions.EntityNotFoundException as exc:
            if not match.group(1):
                raise AthenaFailure(
                    "TABLE_NOT_FOUND", f"TABLE_NOT_FOUND: Table {db}.{name} does not exist"
                ) from exc
        return QueryResult("DDL")

    # -- UNLOAD ------------------------------------------------------------------------
    def _unload(
        self, text: str, database: str | None, principal: str, query_id: str
    ) -> QueryResult:
        inner, rest = _balanced(text[len("UNLOAD") :].lstrip())
        match = re.match(r"(?is)\s*to\s+'((?:[^']|'')*)'\s*(?:with\s*\((.*)\))?\s*$", rest)
        if not match:
            raise AthenaFailure(
                "SYNTAX_ERROR", "SYNTAX_ERROR: UNLOAD (query) TO 's3://...' WITH (format = ...)"
            )
        target = match.group(1).replace("''", "'")
        options = {
            k.lower(): v.replace("''", "'")
            for k, v in re.findall(r"(\w+)\s*=\s*'((?:[^']|'')*)'", match.group(2) or "")
        }
        fmt = options.get("format", "TEXTFILE").upper()
        if fmt not in ("PARQUET", "JSON", "TEXTFILE"):
            raise AthenaFailure("NOT_SUPPORTED", f"NOT_SUPPORTED: UNLOAD format {fmt}")
        if options.get("partitioned_by"):
            raise AthenaFailure("NOT_SUPPORTED", "NOT_SUPPORTED: UNLOAD with partitioned_by")
        tree = self._parse_query(inner)
        url, scanned, _ = self._write(tree, target, fmt, options, database, principal, query_id)
        return QueryResult("DML", [], [], scanned, unload_files=[url])

    def _write(
        self,
        tree: Any,
        target: str,
        fmt: str,
        options: dict[str, str],
        database: str | None,
        principal: str,
        query_id: str,
    ) -> tuple[str, int, Any]:
        """The query's rows as one file under the empty folder ``target``: (its URL, bytes
        scanned, the Arrow schema of a Parquet file or None)."""
        bucket, prefix = split_s3(target)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        if self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"):
            raise AthenaFailure(
                "HIVE_PATH_ALREADY_EXISTS",
                f"HIVE_PATH_ALREADY_EXISTS: Target directory for table already exists: {target}",
            )
        schema = None
        cursor = self._connection()
        try:
            scope = self._bind(tree, database, principal, cursor)
            with tempfile.TemporaryDirectory(prefix="lakegov-unload-") as work:
                local = os.path.join(work, "part")
                copy = _copy_options(fmt, options)
                self._run(
                    cursor,
                    scope,
                    f"COPY ({tree.sql(dialect='duckdb')}) TO {literal(local)} ({copy})",
                    query_id,
                )
                key = f"{prefix}{query_id}_{uuid.uuid4()}"
                if fmt == "PARQUET":
                    import pyarrow.parquet as pq

                    schema = pq.read_schema(local)
                upload_file(self.s3, local, bucket, key)
        finally:
            cursor.close()
        return f"s3://{bucket}/{key}", scope.scanned, schema

    # -- CREATE TABLE AS SELECT --------------------------------------------------------
    def _ctas(
        self,
        text: str,
        database: str | None,
        principal: str,
        query_id: str,
        output_location: str,
    ) -> QueryResult:
        """``CREATE TABLE name [WITH (external_location, format = 'PARQUET', ...)] AS query``:
        the rows written as Parquet, the table registered in Glue over them."""
        from lakegov.catalog import glue as catalog
        from lakegov.schema import columns_from_arrow

        match = re.match(r"(?is)^create\s+table\s+(if\s+not\s+exists\s+)?([`\"\w.]+)\s*(.*)$", text)
        if not match:
            raise AthenaFailure(
                "SYNTAX_ERROR", "SYNTAX_ERROR: CREATE TABLE name WITH (...) AS query"
            )
        db, name = _qualified(match.group(2), database)
        rest = match.group(3)
        properties = ""
        if re.match(r"(?is)^with\s*\(", rest):
            properties, rest = _balanced(rest[4:].lstrip())
        body = re.match(r"(?is)^\s*as\s+(.*)$", rest)
        if not body:
            raise AthenaFailure(
                "NOT_SUPPORTED",
                "NOT_SUPPORTED: the local Athena runs CREATE EXTERNAL TABLE and "
                "CREATE TABLE ... AS query only",
            )
        query = body.group(1).strip()
        if re.search(r"(?is)\bwith\s+no\s+data\s*$", query):
            raise AthenaFailure("NOT_SUPPORTED", "NOT_SUPPORTED: CREATE TABLE AS ... WITH NO DATA")
        options = {
            k.lower(): v.replace("''", "'")
            for k, v in re.findall(r"(\w+)\s*=\s*'((?:[^']|'')*)'", properties)
        }
        unsupported = sorted(
            k.lower()
            for k in re.findall(r"(\w+)\s*=", properties)
            if k.lower()
            not in ("external_location", "format", "write_compression", "parquet_compression")
        )
        fmt = options.get("format", "PARQUET").upper()
        if unsupported or fmt != "PARQUET":
            what = ", ".join(unsupported) or f"format {fmt}"
            raise AthenaFailure(
                "NOT_SUPPORTED", f"NOT_SUPPORTED: CREATE TABLE AS with {what} (Parquet only)"
            )
        if catalog.get_table(self.glue, db, name) is not None:
            if match.group(1):
                return QueryResult("DDL")
            raise AthenaFailure(
                "ALREADY_EXISTS", f"AlreadyExistsException: Table {db}.{name} already exists"
            )
        location = options.get("external_location") or (
            f"{output_location.rstrip('/')}/tables/{query_id}/"
        )
        location = location if location.endswith("/") else location + "/"
        compression = options.get("write_compression") or options.get("parquet_compression") or ""
        tree = self._parse_query(query)
        _name_columns(tree)
        url, scanned, schema = self._write(
            tree, location, "PARQUET", {"compression": compression}, database, principal, query_id
        )
        table_input = catalog.new_table_input(
            name, columns_from_arrow(schema), [], location, {"lakegov.ctas_query": query_id}
        )
        try:
            catalog.create_table(self.glue, db, table_input)
        except LakegovError as exc:
            raise AthenaFailure("SCHEMA_NOT_FOUND", f"SCHEMA_NOT_FOUND: {exc}") from exc
        return QueryResult("DDL", [], [], scanned, unload_files=[url])


def _denied_columns(
    tree: Any,
    hidden_in: dict[str, tuple[str, set[str]]],
    aliases: set[str],
    granted_anywhere: set[str],
) -> dict[str, set[str]]:
    """The hidden columns the query reads, by table: a column qualified by a table's alias
    is that table's (another table granting a column of the same name does not make it
    readable); an unqualified one is hidden when no table of the query grants it, unless it
    names an output alias outside the projections (``ORDER BY total``) - a column in the
    expression of an alias (``email AS email``) is read from its table."""
    if not hidden_in:
        return {}
    in_projection = {id(c) for a in tree.find_all(exp.Alias) for c in a.this.find_all(exp.Column)}
    out: dict[str, set[str]] = {}
    for column in tree.find_all(exp.Column):
        name, qualifier = column.name.lower(), column.table.lower()
        if qualifier:
            found = hidden_in.get(qualifier)
            if found is not None and name in found[1]:
                out.setdefault(found[0], set()).add(name)
            continue
        if name in granted_anywhere or (name in aliases and id(column) not in in_projection):
            continue
        for table, hidden in hidden_in.values():
            if name in hidden:
                out.setdefault(table, set()).add(name)
    return out


def _name_columns(tree: Any) -> None:
    """Unnamed result columns are ``_col0``, ``_col1``... as in Athena (not DuckDB's
    ``count_star()``)."""
    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this
    if not isinstance(select, exp.Select):
        return
    for i, item in enumerate(list(select.expressions)):
        if not isinstance(item, (exp.Column, exp.Alias, exp.Star)):
            item.replace(exp.alias_(item.copy(), f"_col{i}"))


def _copy_options(fmt: str, options: dict[str, str]) -> str:
    compression = options.get("compression", "").lower()
    if fmt == "PARQUET":
        codec = {"": "snappy", "none": "uncompressed"}.get(compression, compression)
        return f"FORMAT parquet, COMPRESSION {literal(codec)}"
    if fmt == "JSON":
        return "FORMAT json" + (f", COMPRESSION {literal(compression)}" if compression else "")
    delimiter = options.get("field_delimiter", "\x01")
    return f"FORMAT csv, HEADER false, DELIMITER {literal(delimiter)}, QUOTE ''" + (
        f", COMPRESSION {literal(compression)}" if compression else ""
    )


def _balanced(text: str) -> tuple[str, str]:
    """``(inner, rest)`` of text starting with a parenthesised group (quotes respected)."""
    if not text.startswith("("):
        raise AthenaFailure("SYNTAX_ERROR", "SYNTAX_ERROR: UNLOAD needs (query)")
    depth, quote_char = 0, ""
    for i, ch in enumerate(text):
        if quote_char:
            if ch == quote_char:
                quote_char = ""
            continue
        if ch in ("'", '"'):
            quote_char = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return text[1:i], text[i + 1 :]
    raise AthenaFailure("SYNTAX_ERROR", "SYNTAX_ERROR: unbalanced parentheses")


def _ident(text: str) -> str:
    return text.strip().strip('`"').lower()


def _qualified(name: str, database: str | None) -> tuple[str, str]:
    parts = [_ident(p) for p in re.split(r"\.(?=(?:[^`\"]*[`\"][^`\"]*[`\"])*[^`\"]*$)", name)]
    if len(parts) == 1:
        return (database or "default").lower(), parts[0]
    return parts[-2], parts[-1]


def _hive_type(column: exp.ColumnDef) -> str:
    kind = column.args.get("kind")
    return kind.sql(dialect="hive").lower().replace(" ", "") if kind else "string"


def _like_pattern(text: str) -> re.Pattern[str] | None:
    match = re.search(r"(?is)\blike\s+'((?:[^']|'')*)'\s*$", text)
    if not match:
        match = re.search(r"(?is)\s'((?:[^']|'')*)'\s*$", text)
    if not match:
        return None
    pattern = match.group(1).replace("''", "'")
    # Athena's SHOW ... LIKE: * any characters, | alternatives (Hive's pattern language)
    alternatives = [
        re.escape(p).replace(r"\*", ".*").replace("%", ".*") for p in pattern.split("|")
    ]
    return re.compile("^(?:" + "|".join(alternatives) + ")$", re.IGNORECASE)


def _matches(name: str, pattern: re.Pattern[str] | None) -> bool:
    return pattern is None or bool(pattern.match(name))


def _translate_filter(predicate: str) -> str:
    """A data cells filter's row expression (PartiQL-like, as LF stores it) as DuckDB SQL."""
    if predicate.strip().upper() in ("TRUE", ""):
        return "true"
    try:
        return sqlglot.parse_one(predicate, read="trino").sql(dialect="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise AthenaFailure(
            "PERMISSION_DENIED",
            f"AccessDeniedException: the row filter {predicate!r} cannot be evaluated locally",
        ) from exc


_DUCKDB_ERRORS = (
    ("Catalog Error: Scalar Function", "FUNCTION_NOT_FOUND"),
    ("Catalog Error: Aggregate Function", "FUNCTION_NOT_FOUND"),
    ("Catalog Error: Table Function", "FUNCTION_NOT_FOUND"),
    ("Catalog Error", "COLUMN_NOT_FOUND"),
    ("Binder Error", "COLUMN_NOT_FOUND"),
    ("Parser Error", "SYNTAX_ERROR"),
    ("Conversion Error", "INVALID_CAST_ARGUMENT"),
    ("Invalid Input Error", "HIVE_BAD_DATA"),
    ("Not implemented Error", "NOT_SUPPORTED"),
    ("IO Error", "HIVE_CANNOT_OPEN_SPLIT"),
    ("HTTP Error", "HIVE_CANNOT_OPEN_SPLIT"),
    ("Out of Memory Error", "EXCEEDED_LOCAL_MEMORY_LIMIT"),
)


def _engine_failure(exc: Exception) -> AthenaFailure:
    message = str(exc).replace("__lakegov_", "").strip()
    for prefix, error_type in _DUCKDB_ERRORS:
        if message.startswith(prefix):
            return AthenaFailure(error_type, f"{error_type}: {message}")
    return AthenaFailure("GENERIC_INTERNAL_ERROR", f"GENERIC_INTERNAL_ERROR: {message}", category=1)


def format_csv(result: QueryResult) -> bytes:
    """The result as Athena writes ``<id>.csv``: a header, every value double-quoted."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow([name for name, _ in result.columns])
    for row in result.rows:
        out.write(",".join("" if v is None else _quoted(athena_text(v)) for v in row) + "\n")
    return out.getvalue().encode("utf-8")


def format_text(result: QueryResult) -> bytes:
    """Utility statements' output (``<id>.txt``): one line per row, fields tab-separated."""
    return "".join(
        "\t".join("" if v is None else athena_text(v) for v in row) + "\n" for row in result.rows
    ).encode("utf-8")


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def athena_text(value: Any) -> str:
    """A value as Athena's results show it (``GetQueryResults``' VarCharValue)."""
    import datetime
    import decimal

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value) if value == value else "NaN"
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return " ".join(f"{b:02x}" for b in value)
    if isinstance(value, list):
        return "[" + ", ".join("null" if v is None else athena_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{k}={'null' if v is None else athena_text(v)}" for k, v in value.items())
            + "}"
        )
    return str(value)


def athena_type(duckdb_type: str) -> tuple[str, int, int]:
    """(Athena type name, precision, scale) of a DuckDB result column type."""
    text = duckdb_type.upper()
    if text.endswith("[]") or text.startswith("LIST"):
        return "array", 0, 0
    if text.startswith("STRUCT"):
        return "row", 0, 0
    if text.startswith("MAP"):
        return "map", 0, 0
    match = re.match(r"DECIMAL\((\d+),\s*(\d+)\)", text)
    if match:
        return "decimal", int(match.group(1)), int(match.group(2))
    simple = {
        "BOOLEAN": ("boolean", 0, 0),
        "TINYINT": ("tinyint", 3, 0),
        "SMALLINT": ("smallint", 5, 0),
        "INTEGER": ("integer", 10, 0),
        "BIGINT": ("bigint", 19, 0),
        "HUGEINT": ("decimal", 38, 0),
        "UBIGINT": ("decimal", 20, 0),
        "UINTEGER": ("bigint", 19, 0),
        "USMALLINT": ("integer", 10, 0),
        "UTINYINT": ("smallint", 5, 0),
        "FLOAT": ("float", 17, 0),
        "DOUBLE": ("double", 17, 0),
        "VARCHAR": ("varchar", 2147483647, 0),
        "DATE": ("date", 0, 0),
        "TIMESTAMP": ("timestamp", 3, 0),
        "TIMESTAMP WITH TIME ZONE": ("timestamp with time zone", 3, 0),
        "TIME": ("time", 3, 0),
        "BLOB": ("varbinary", 1073741824, 0),
        "JSON": ("json", 0, 0),
        "UUID": ("uuid", 0, 0),
        "INTERVAL": ("interval day to second", 0, 0),
        '"NULL"': ("unknown", 0, 0),
    }
    return simple.get(text, ("varchar", 2147483647, 0))
