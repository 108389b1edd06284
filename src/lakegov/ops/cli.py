"""``lakegov status`` and ``lakegov redrive``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from botocore.exceptions import EndpointConnectionError

from lakegov.audit import AuditStore
from lakegov.errors import ConfigurationError
from lakegov.ops.deployment import Deployment, deployment_arguments, resolve_deployment
from lakegov.ops.redrive import DEAD_LETTER_OUTPUT, find_dead_letter_queues, peek, replay
from lakegov.ops.status import lookup, render, render_recent, subject_for


def _reachable(func: Any) -> Any:
    """One clear line instead of a botocore traceback when the endpoint is not there."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            code: int = func(args)
        except EndpointConnectionError as exc:
            raise ConfigurationError(
                f"cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}: is "
                "`lakegov local run` still running (or --stack/--outputs pointing elsewhere)?"
            ) from exc
        return code

    return wrapper


@_reachable
def _status(args: argparse.Namespace) -> int:
    deployment = resolve_deployment(args.outputs, args.stack)
    audit = AuditStore(deployment.output("AuditTableName"), deployment.client("dynamodb"))
    if args.kind == "recent":
        kind = args.ref or "file"
        items = audit.recent(kind, limit=args.limit)
        print(json.dumps(items, indent=2, default=str) if args.json else render_recent(kind, items))
        return 0
    subject = subject_for(
        args.kind,
        args.ref,
        raw_bucket=deployment.outputs.get("RawBucketName", ""),
        config_bucket=deployment.outputs.get("ConfigBucketName", ""),
    )
    items = lookup(audit, args.kind, subject)
    if args.json:
        print(
            json.dumps(
                {"kind": args.kind, "subject": subject, "items": items}, indent=2, default=str
            )
        )
    else:
        print(render(args.kind, subject, items))
    return 0 if items else 1


def _own_queues(deployment: Deployment) -> list[str]:
    """The deployment's dead-letter queues (its DeadLetterQueueArns output)."""
    listed = deployment.outputs.get(DEAD_LETTER_OUTPUT, "")
    if not listed:
        raise ConfigurationError(
            f"the deployment has no {DEAD_LETTER_OUTPUT} output (deployed before it existed?): "
            "redeploy, or pass --all-queues to look at every dead-letter queue of the account"
        )
    return [arn for arn in listed.split(",") if arn]


def _progress(done: int, total: int) -> None:
    print(f"\r   replayed {done}/{total}", end="", file=sys.stderr, flush=True)


@_reachable
def _redrive(args: argparse.Namespace) -> int:
    deployment = resolve_deployment(args.outputs, args.stack)
    sqs = deployment.client("sqs")
    queues = find_dead_letter_queues(
        sqs, prefix=args.prefix or "", only=None if args.all_queues else _own_queues(deployment)
    )
    if args.queue:
        queues = [q for q in queues if args.queue in (q.name, q.url, q.arn)]
        if not queues:
            print(f"lakegov: error: no dead-letter queue named {args.queue}", file=sys.stderr)
            return 1
    if args.action == "list":
        report: list[dict[str, Any]] = []
        for queue in queues:
            messages = peek(sqs, queue) if queue.depth else []
            report.append(
                {
                    "queue": queue.name,
                    "depth": queue.depth,
                    "replays_to": queue.sources,
                    "messages": [
                        {
                            "id": m.message_id,
                            "what": m.summary,
                            "why": m.reason,
                            "receives": m.receive_count,
                        }
                        for m in messages
                    ],
                }
            )
        if args.json:
            print(json.dumps(report, indent=2))
            return 0
        for entry in report:
            target = (
                ", ".join(u.rsplit("/", 1)[-1] for u in entry["replays_to"])
                or "function (async invoke)"
            )
            print(f"{entry['queue']}: {entry['depth']} message(s), replays to {target}")
            for m in entry["messages"]:
                print(f"   {m['id']}  {m['what']}\n      why: {m['why']}")
        return 0
    lambda_client = deployment.client("lambda")

    def invoke(function_arn: str, payload: str) -> None:
        lambda_client.invoke(
            FunctionName=function_arn, InvocationType="Event", Payload=payload.encode()
        )

    total = {"replayed": 0, "skipped": 0, "kept": 0}
    for queue in queues:
        if not queue.depth:
            continue
        counts = replay(
            sqs,
            queue,
            message_ids=args.ids or None,
            invoke=invoke,
            progress=None if args.json else _progress,
        )
        for key, value in counts.items():
            total[key] += value
        if not args.json:
            print(
                f"\r{queue.name}: replayed {counts['replayed']}, kept {counts['kept']}, "
                f"not selected {counts['skipped']}"
            )
    if args.json:
        print(json.dumps(total))
    return 0 if total["kept"] == 0 else 1


def register(sub: Any) -> None:
    status = sub.add_parser(
        "status",
        help="what happened to a file, a product run or a metadata upload",
        description="A timeline from the audit table: every version, every attempt, the outcome "
        "and its reason.",
        epilog="examples:\n"
        "  lakegov status file mwaa/blog/partition_dt=2026-11-20/customers.json\n"
        "  lakegov status run customers_cards\n"
        "  lakegov status metadata governance/lf_tags_metadata.json --json\n"
        "  lakegov status recent file --stack lakegov-dev",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("kind", choices=["file", "run", "metadata", "recent"])
    status.add_argument(
        "ref",
        nargs="?",
        default="",
        help="object key or s3:// URI (file, metadata), product name (run), kind (recent)",
    )
    status.add_argument("--limit", type=int, default=20, help="rows for `recent`")
    deployment_arguments(status)
    status.set_defaults(func=_status)

    redrive = sub.add_parser(
        "redrive",
        help="list dead-letter queues and replay their messages after a fix",
        description="`list` shows what sits in each of the deployment's dead-letter queues "
        "(--all-queues: the account's) and why; `replay` sends "
        "messages back to their source queue (or re-invokes the function). Replays "
        "are idempotent: work already done is recognised and skipped.",
        epilog="examples:\n  lakegov redrive list\n"
        "  lakegov redrive replay --queue lakegov-dev-ConvertDeadLetterQueue-1A2B\n"
        "  lakegov redrive replay --ids 059f36b4-87a3-44ab-83d2-661975830a7d",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    redrive.add_argument("action", choices=["list", "replay"])
    redrive.add_argument("--queue", help="only this DLQ (name, URL or ARN)")
    redrive.add_argument(
        "--prefix", help="only DLQs whose name starts with this (e.g. the stack name)"
    )
    redrive.add_argument(
        "--all-queues",
        action="store_true",
        help="every dead-letter queue of the account and region, not only this deployment's "
        "(its DeadLetterQueueArns output)",
    )
    redrive.add_argument("--ids", nargs="*", help="only these message ids (replay)")
    deployment_arguments(redrive)
    redrive.set_defaults(func=_redrive)
