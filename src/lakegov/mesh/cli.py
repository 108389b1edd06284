"""``lakegov mesh ...``: the central bus's tools.

- ``lakegov mesh rules FILE...``: the central-bus rules a subscription document gives
  (offline: validation, rule names, event patterns and their sizes).
- ``lakegov mesh publish-schemas --registry NAME``: the event contracts into the
  EventBridge schema registry the template creates (``<stack>-events``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lakegov.errors import LakegovError
from lakegov.mesh.patterns import compact, has_wildcard
from lakegov.mesh.subscriptions import (
    MeshConfig,
    Subscription,
    desired_rules,
    validate_subscription,
)


def _rules(args: argparse.Namespace) -> int:
    status = 0
    out: list[dict[str, Any]] = []
    for path in args.files:
        key = f"subscriptions/{Path(path).name}"
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"{path}: cannot read JSON: {exc}", file=sys.stderr)
            status = 1
            continue
        issues = validate_subscription(document, path)
        errors = [i for i in issues if i.severity == "error"]
        for issue in issues:
            print(f"{path}: {issue.severity}: {issue}", file=sys.stderr)
        if errors:
            status = 1
            continue
        config = MeshConfig(central_bus_arn=args.central_bus_arn or "")
        specs = desired_rules(
            Subscription.from_document(document), key, config, max_pattern_chars=args.max_chars
        )
        out.append(
            {
                "file": path,
                "key": key,
                "rules": [
                    {
                        "name": s.name,
                        "state": s.state,
                        "pattern": s.pattern,
                        "pattern_chars": len(compact(s.pattern)),
                        "wildcard": has_wildcard(s.pattern),
                        "target": s.target["Arn"],
                    }
                    for s in specs
                ],
            }
        )
    print(json.dumps(out, indent=2))
    return status


def _publish_schemas(args: argparse.Namespace) -> int:
    from lakegov.aws import Clients
    from lakegov.mesh.schema_registry import publish_schemas

    try:
        client = Clients()("schemas")
        summary = publish_schemas(client, args.registry)
    except LakegovError as exc:
        print(f"lakegov mesh publish-schemas: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``lakegov mesh`` and its subcommands."""
    mesh = subparsers.add_parser("mesh", help="central bus: subscription rules, event schemas")
    commands = mesh.add_subparsers(dest="mesh_command", required=True)

    rules = commands.add_parser(
        "rules", help="show the central-bus rules subscription documents give (offline)"
    )
    rules.add_argument("files", nargs="+", metavar="FILE")
    rules.add_argument("--central-bus-arn", default="", help="only used in the output")
    rules.add_argument(
        "--max-chars", type=int, default=2048, help="event pattern size quota (default 2048)"
    )
    rules.set_defaults(func=_rules)

    publish = commands.add_parser(
        "publish-schemas", help="publish schemas/events/ to an EventBridge schema registry"
    )
    publish.add_argument("--registry", required=True, help="registry name (<stack>-events)")
    publish.set_defaults(func=_publish_schemas)
