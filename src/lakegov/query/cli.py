"""``lakegov query``: Athena SQL as a person reads it, on AWS or the embedded runtime."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lakegov.errors import ConfigurationError, LakegovError
from lakegov.ops.deployment import Deployment, deployment_or_environment
from lakegov.query.athena import render_table, run_query


def _deployment(args: argparse.Namespace) -> Deployment:
    return deployment_or_environment(args.outputs, args.stack, args.region)


def athena_client(deployment: Deployment, principal: str | None) -> Any:
    """Athena as the caller, or as ``principal`` (a role assumed through STS) when given."""
    if not principal:
        return deployment.client("athena")
    try:
        clients = deployment.clients.assuming(principal, "lakegov-query")
    except Exception as exc:
        raise ConfigurationError(f"cannot assume {principal}: {exc}") from exc
    return clients("athena")


def _query(args: argparse.Namespace) -> int:
    deployment = _deployment(args)
    athena = athena_client(deployment, args.principal)
    try:
        outcome = run_query(
            athena,
            args.sql,
            database=args.database,
            workgroup=args.workgroup,
            output_location=args.output_location,
            timeout_s=args.timeout,
        )
    except LakegovError:
        raise
    except Exception as exc:  # an API refusal (no output location, unknown workgroup...)
        raise LakegovError(str(exc).splitlines()[0]) from exc
    if args.json:
        print(json.dumps(outcome.to_dict(), indent=2))
        return 0 if outcome.succeeded else 1
    if not outcome.succeeded:
        raise LakegovError(
            f"query {outcome.state}: {' '.join(outcome.reason.split())}"
            f" (id {outcome.query_execution_id})"
        )
    print(render_table(outcome))
    return 0


def register(sub: Any) -> None:
    query = sub.add_parser(
        "query",
        help="run Athena SQL and print the result (embedded runtime or AWS)",
        description="Run one Athena SQL statement, as you or as a role (--as, assumed "
        "through STS), and print its rows as a table. On the embedded runtime the SQL runs on "
        "its local Athena, with Lake Formation's grants enforced.",
        epilog="examples:\n"
        '  lakegov query "SELECT * FROM mwaa_blog_cards LIMIT 5" --database lakegov_dev_formatted\n'
        '  lakegov query "SHOW TABLES IN lakegov_dev_formatted_stg" --json\n'
        '  lakegov query "SELECT count(*) FROM lakegov_dev_formatted_stg.mwaa_blog_customers" \\\n'
        "    --as arn:aws:iam::123456789012:role/analyst",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    query.add_argument("sql", help="the SQL statement (Athena's dialect)")
    query.add_argument(
        "--as", dest="principal", default=None, metavar="ROLE_ARN", help="run as this role"
    )
    query.add_argument("--database", default=None, help="default database of the statement")
    query.add_argument("--workgroup", default=None, help="Athena workgroup (default: primary)")
    query.add_argument("--output-location", default=None, help="s3:// folder for the results files")
    query.add_argument(
        "--outputs",
        type=Path,
        default=None,
        help="outputs JSON of `lakegov local run --outputs` (default: .lakegov/outputs.json "
        "when present; otherwise AWS as your environment configures it)",
    )
    query.add_argument("--stack", default=None, help="a deployed stack's name")
    query.add_argument("--region", default=None)
    query.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (600)")
    query.add_argument("--json", action="store_true", help="machine-readable output")
    query.set_defaults(func=_query)
