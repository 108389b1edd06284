"""``lakegov products ...``: the products' commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lakegov.ops.deployment import resolve_deployment
from lakegov.products.publish import DEFAULT_KEY, publish_project

EPILOG = """examples:
  lakegov products publish-dbt --bucket my-stack-configbucket-abc123
  lakegov products publish-dbt --outputs .lakegov/outputs.json      (the embedded runtime)
  AWS_PROFILE=prod lakegov products publish-dbt --bucket prod-config --project-dir dbt/
"""


def _bucket_and_endpoint(args: argparse.Namespace) -> tuple[str, str | None, str | None]:
    if args.outputs:
        deployment = resolve_deployment(Path(args.outputs), None)
        return (
            args.bucket or deployment.output("ConfigBucketName"),
            args.endpoint_url or deployment.endpoint_url,
            args.region or deployment.region,
        )
    return args.bucket, args.endpoint_url, args.region


def _publish_dbt(args: argparse.Namespace) -> int:
    from lakegov.aws import Clients

    bucket, endpoint, region = _bucket_and_endpoint(args)
    if not bucket:
        print("lakegov: error: give --bucket or --outputs", file=sys.stderr)
        return 2
    s3 = Clients.for_endpoint(endpoint, region=region)("s3")
    published = publish_project(s3, bucket, Path(args.project_dir), key=args.key)
    print(
        f"published {published.files} files ({published.size} bytes, sha256 "
        f"{published.sha256[:12]}) to {published.uri}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    products = subparsers.add_parser(
        "products",
        help="data products: publish the dbt project",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = products.add_subparsers(dest="products_command", metavar="COMMAND", required=True)
    publish = sub.add_parser(
        "publish-dbt",
        help="zip the dbt project and upload it to the config bucket (dbt/project.zip)",
        description="Upload the dbt project where the CodeBuild runner (and the local "
        "runner) fetch it. The zip is deterministic: the same files give the same bytes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    publish.add_argument("--bucket", help="the config bucket (ConfigBucketName output)")
    publish.add_argument(
        "--outputs", type=Path, help="outputs JSON of `lakegov local run --outputs` (local)"
    )
    publish.add_argument("--project-dir", default="dbt", help="the dbt project (default: dbt)")
    publish.add_argument("--key", default=DEFAULT_KEY, help=f"object key (default: {DEFAULT_KEY})")
    publish.add_argument("--endpoint-url", help="S3 endpoint (default: AWS_ENDPOINT_URL/profile)")
    publish.add_argument("--region", help="AWS region (default: from the profile)")
    publish.set_defaults(func=_publish_dbt)
