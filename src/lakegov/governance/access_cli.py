"""``lakegov access``: who can read a table, or what a principal can read, from Lake Formation.

The answers come from :class:`lakegov.governance.access.AccessPolicy`, the evaluator the
local Athena enforces, so they agree with what queries do. Exit codes: 0 answered, 1 no
such table, 2 could not talk to AWS.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lakegov.errors import LakegovError
from lakegov.governance.access import AccessPolicy, TableNotFound
from lakegov.governance.table_grant import TableGrant
from lakegov.ops.deployment import deployment_arguments, deployment_or_environment


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``access`` to the lakegov CLI."""
    p = subparsers.add_parser(
        "access",
        help="who can read a table, or what a principal can read (Lake Formation)",
        description="Evaluate Lake Formation's grants (named, LF-Tag expressions, column lists, "
        "data cells filters) as the local Athena enforces them.",
        epilog="examples:\n  lakegov access lakegov_dev_formatted.mwaa_blog_cards\n"
        "  lakegov access --principal arn:aws:iam::123456789012:role/analyst --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("table", nargs="?", metavar="DATABASE.TABLE", help="the table to ask about")
    p.add_argument("--principal", metavar="ARN", help="list the tables this principal can read")
    p.add_argument("--permission", default="SELECT", help="the permission (default SELECT)")
    p.add_argument("--catalog-id", help="Data Catalog id (default: the caller's account)")
    p.add_argument("--region", help="AWS region (default: the usual configuration)")
    deployment_arguments(p, "print the answer as JSON")
    p.set_defaults(func=cmd_access)


def describe_grant(grant: TableGrant) -> str:
    """``all columns, all rows`` or what the grant narrows, for people."""
    columns = (
        "all columns" if grant.columns is None else "columns " + ", ".join(sorted(grant.columns))
    )
    rows = "all rows" if grant.row_filter is None else f"rows where {grant.row_filter}"
    cells = "".join(f"; {c} only where {p}" for c, p in grant.cell_filters)
    return f"{columns}, {rows}{cells}"


def table_answer(
    policy: AccessPolicy, database: str, table: str, permission: str
) -> dict[str, Any]:
    readers = policy.principals_for_table(database, table, permission)
    return {
        "table": f"{database}.{table}",
        "permission": permission,
        "principals": [{"principal": p, **g.to_dict()} for p, g in sorted(readers.items())],
        "not_evaluated": [
            {"principal": p, "reason": r} for p, r in policy.unevaluated_principals().items()
        ],
    }


def principal_answer(policy: AccessPolicy, principal: str, permission: str) -> dict[str, Any]:
    tables = policy.tables_for_principal(principal, permission)
    return {
        "principal": principal,
        "permission": permission,
        "data_lake_administrator": policy.is_unrestricted(principal),
        "tables": [{"table": f"{d}.{t}", **g.to_dict()} for (d, t), g in sorted(tables.items())],
    }


def cmd_access(args: argparse.Namespace) -> int:
    if bool(args.table) == bool(args.principal):
        print("lakegov access: give either DATABASE.TABLE or --principal ARN", file=sys.stderr)
        return 2
    permission = str(args.permission).upper()
    if args.table and "." not in args.table:
        print(f"lakegov access: expected DATABASE.TABLE, got {args.table!r}", file=sys.stderr)
        return 2
    try:
        deployment = deployment_or_environment(args.outputs, args.stack, args.region)
        catalog_id = args.catalog_id or str(
            deployment.client("sts").get_caller_identity()["Account"]
        )
        policy = AccessPolicy(
            deployment.client("lakeformation"), deployment.client("glue"), catalog_id=catalog_id
        )
        if args.table:
            database, table = args.table.split(".", 1)
            answer = table_answer(policy, database.lower(), table.lower(), permission)
        else:
            answer = principal_answer(policy, args.principal, permission)
    except TableNotFound as exc:
        print(f"lakegov access: {exc}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError, LakegovError) as exc:
        print(f"lakegov access: cannot read Lake Formation: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
        return 0
    if args.table:
        rows, key = answer["principals"], "principal"
        print(f"{answer['table']}: {len(rows)} principal(s) hold {permission}")
    else:
        rows, key = answer["tables"], "table"
        admin = " (a data lake administrator)" if answer["data_lake_administrator"] else ""
        print(f"{answer['principal']}{admin}: {permission} on {len(rows)} table(s)")
    for row in rows:
        print(f"  {row[key]}  {describe_grant(TableGrant.from_dict(row))}")
    for row in answer.get("not_evaluated", []):
        print(f"  {row['principal']}  not evaluated: {row['reason']}")
    if answer.get("data_lake_administrator"):
        print(
            "  (administrators hold no implicit SELECT on AWS; the local Athena lets them "
            "query every table)"
        )
    return 0
