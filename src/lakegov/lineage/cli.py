"""``lakegov lineage TABLE``: where a table comes from and what depends on it.

From the OpenLineage events the service recorded in the lake (``lineage_events``) and the
subscription documents: landed files, staging folders and tables, products' dbt models, and
the consumer domains subscribed to a table. Exit codes: 0 drawn, 1 no lineage for the table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lakegov.lineage.graph import build_graph, read_lineage_rows, read_subscriptions
from lakegov.lineage.render import to_html, to_text
from lakegov.ops.deployment import deployment_arguments, deployment_or_environment


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``lineage`` to the lakegov CLI."""
    p = subparsers.add_parser(
        "lineage",
        help="upstream and downstream of a table (files, tables, products, domains)",
        description="Draw a table's lineage from the OpenLineage events the service recorded "
        "in the lake and from the domains' subscriptions.",
        epilog="examples:\n  lakegov lineage mwaa_blog_cards\n"
        "  lakegov lineage lakegov_dev_formatted.mwaa_blog_cards --up 1 --html cards.html",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("table", metavar="TABLE", help="table or database.table")
    p.add_argument("--up", type=int, default=10, metavar="N", help="dataset hops upstream (10)")
    p.add_argument("--down", type=int, default=10, metavar="N", help="dataset hops downstream (10)")
    p.add_argument("--html", type=Path, metavar="FILE", help="also write the graph as an HTML page")
    p.add_argument("--region", help="AWS region (default: the usual configuration)")
    deployment_arguments(p, "print the graph as JSON")
    p.set_defaults(func=cmd_lineage)


def cmd_lineage(args: argparse.Namespace) -> int:
    deployment = deployment_or_environment(args.outputs, args.stack, args.region)
    s3 = deployment.client("s3")
    graph = build_graph(
        read_lineage_rows(s3, deployment.output("FormattedBucketName")),
        read_subscriptions(s3, deployment.output("ConfigBucketName")),
        raw_bucket=deployment.output("RawBucketName"),
    )
    around = graph.around(args.table, max(args.up, 0), max(args.down, 0))
    if args.json:
        print(json.dumps(around.to_dict(), indent=2))
    else:
        print(to_text(around))
    if args.html:
        args.html.write_text(to_html(around, f"lineage of {args.table}"), encoding="utf-8")
        print(f"wrote {args.html}")
    return 0
