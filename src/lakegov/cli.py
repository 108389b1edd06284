"""The ``lakegov`` command line.

Every command prints one-line errors (no traceback) and exits non-zero on failure.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from lakegov import __version__
from lakegov.errors import LakegovError

EPILOG = """examples:
  lakegov demo                                   the walk-through on the embedded runtime
  lakegov local run --outputs outputs.json       the embedded stack, until Ctrl-C
  lakegov convert landed.csv out.parquet         convert a local file as the Lambda would
  lakegov validate governance/*.json products/*.json  check metadata documents offline
  lakegov plan --json governance/team.json       preview Lake Formation changes
  lakegov query "SELECT * FROM db.table LIMIT 10"  Athena SQL, as you or --as a role
  lakegov access lakegov_dev_formatted.mwaa_blog_cards   who can read a table
  lakegov reprocess s3://RAW/mwaa/blog/ --since 2026-11-01  convert stored files again
  lakegov reapply governance/                    apply stored documents again
"""


def _local_run(args: argparse.Namespace) -> int:
    from lakegov.local.runtime import LocalRuntime

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    from lakegov.observability import logger

    logger.setLevel(args.log_level)  # handlers' JSON logs: warnings and errors by default
    runtime = LocalRuntime(
        args.template, port=args.port, region=args.region, schedules=args.schedules
    )
    runtime.start()
    try:
        if args.outputs:
            runtime.write_outputs(args.outputs)
        print(f"lakegov embedded runtime on {runtime.endpoint_url} (region {runtime.region})")
        for key, value in runtime.outputs.items():
            print(f"  {key:<22} {value}")
        if args.outputs:
            print(f"outputs written to {args.outputs}")
        print(
            "upload with any AWS client using --endpoint-url above and any credentials;"
            " Ctrl-C stops"
        )
        sys.stdout.flush()
        runtime.listeners.append(_print_activity)
        while not stop.wait(0.5):
            pass
    finally:
        print("stopping...", flush=True)
        runtime.stop()
        if args.outputs:  # its endpoint is gone: a stale file would only mislead
            args.outputs.unlink(missing_ok=True)
    return 0


_PRINTED = threading.Lock()  # one whole line at a time: functions run on several threads


def _print_activity(kind: str, item: Any) -> None:
    if kind == "invocation":
        outcome = "ok" if item.ok else f"FAILED {item.error}"
        failed = f" ({item.failed_items} failed items)" if item.failed_items else ""
        took = f"{item.duration_ms:.0f} ms"
        line = f"[invoke] {item.function:<28} {item.source:<34} {outcome}{failed} {took}"
    elif kind == "event":
        detail = item.get("detail", {})
        document = detail.get("document")
        subject = (
            detail.get("key")
            or detail.get("table")
            or detail.get("product")
            or detail.get("dataset")
            or (document.get("key") if isinstance(document, dict) else None)
            or ""
        )
        line = f"[event ] {item.get('detail-type'):<28} on {item.get('_bus')}  {subject}"
    else:
        return
    with _PRINTED:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _demo(args: argparse.Namespace) -> int:
    from lakegov.local.demo import run_demo

    return run_demo(template=args.template, verbose=args.verbose)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakegov",
        description="Event-driven governance for AWS data lakes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lakegov {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="scripted walk-through on the embedded runtime",
        description="Start the embedded runtime, upload sample files and metadata, "
        "and show what happens at each step. Exit 0 on success.",
    )
    demo.add_argument(
        "--template", type=Path, default=None, help="template.yaml (default: found upwards)"
    )
    demo.add_argument("--verbose", action="store_true", help="also print every handler invocation")
    demo.set_defaults(func=_demo)

    local = sub.add_parser(
        "local", help="the embedded runtime (moto server + the handlers, concurrently)"
    )
    local_sub = local.add_subparsers(dest="local_command", metavar="COMMAND", required=True)
    run = local_sub.add_parser(
        "run",
        help="run the embedded stack until interrupted",
        description="Start moto's server on 127.0.0.1, create what template.yaml declares, "
        "wire each function's declared events to its handler, and dispatch until "
        "SIGINT/SIGTERM.",
        epilog="example:\n  lakegov local run --port 4566 --outputs outputs.json\n"
        "  aws --endpoint-url http://127.0.0.1:4566 s3 cp customers.json \\\n"
        "    s3://$(jq -r .RawBucketName outputs.json)/mwaa/blog/partition_dt=2026-11-20/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--port", type=int, default=0, help="port for the AWS endpoint (default: a free one)"
    )
    run.add_argument(
        "--outputs",
        type=Path,
        default=None,
        help="write the template's Outputs (local names) plus EndpointUrl, Region and "
        "AccountId as JSON (removed again on exit)",
    )
    run.add_argument(
        "--template", type=Path, default=None, help="template.yaml (default: found upwards)"
    )
    run.add_argument("--region", default="us-east-1")
    run.add_argument("--schedules", action="store_true", help="also fire rate() schedules")
    run.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="level of the handlers' JSON logs (default WARNING: the [invoke] and [event] "
        "lines already narrate)",
    )
    run.set_defaults(func=_local_run)

    for register in _registrations():
        register(sub)
    return parser


def _registrations() -> list[Any]:
    """Subcommands contributed by each area of the package."""
    from lakegov.convert import cli as convert_cli
    from lakegov.governance import access_cli
    from lakegov.governance import cli as governance_cli
    from lakegov.lineage import cli as lineage_cli
    from lakegov.mesh import cli as mesh_cli
    from lakegov.ops import cli as ops_cli
    from lakegov.products import cli as products_cli
    from lakegov.query import cli as query_cli
    from lakegov.reprocess import cli as reprocess_cli

    return [
        convert_cli.register,
        governance_cli.register,
        access_cli.register,
        products_cli.register,
        mesh_cli.register,
        ops_cli.register,
        query_cli.register,
        lineage_cli.register,
        reprocess_cli.register,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from lakegov.observability import uncounted  # Powertools: not for --help or --version

    try:
        with uncounted():  # no metrics outside Lambda, and none printed into the output
            code: int = args.func(args)
    except LakegovError as exc:
        print(f"lakegov: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except (OSError, json.JSONDecodeError) as exc:
        print(f"lakegov: error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
