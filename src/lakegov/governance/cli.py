"""``lakegov validate | plan | apply``: the governance engine from the command line.

``validate`` is offline. ``plan`` and ``apply`` build their clients with the normal AWS
credential chain (profile, environment, instance role); boto3 itself honours
``AWS_ENDPOINT_URL``, which is how they reach the embedded runtime. Exit codes: 0 done /
valid / in sync, 1 invalid document or a change failed, 2 could not talk to AWS.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lakegov.errors import InvalidDocument, LakegovError, ValidationIssue
from lakegov.governance.apply import apply
from lakegov.governance.plan import Plan, plan
from lakegov.governance.validate import Guardrails, ValidatedDocument, load_and_validate


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``validate``, ``plan`` and ``apply`` to the lakegov CLI."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--guardrails",
        metavar="FILE",
        help="JSON object of guardrail settings (governed_databases, allowed_permissions, "
        "allow_cross_account, home_account_id, refuse_stray_spaces, ...)",
    )

    p = subparsers.add_parser(
        "validate",
        parents=[common],
        help="check metadata documents offline (governance, datasets, products, subscriptions)",
        description="Validate documents exactly as the config bucket would. The kind comes from "
        "--kind, else from a datasets/, products/ or subscriptions/ folder in the path, else "
        "governance.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--kind", choices=list(KINDS), default=None, help="the documents' kind")
    p.set_defaults(func=cmd_validate)

    aws = argparse.ArgumentParser(add_help=False, parents=[common])
    aws.add_argument("--catalog-id", help="Data Catalog id (default: the caller's account)")
    aws.add_argument("--region", help="AWS region (default: the usual configuration)")

    p = subparsers.add_parser(
        "plan", parents=[aws], help="show the Lake Formation changes a document needs"
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help='print {"changes": [...]}')
    p.set_defaults(func=cmd_plan)

    p = subparsers.add_parser("apply", parents=[aws], help="plan, then apply a document")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_apply)


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _guardrails(args: argparse.Namespace) -> Guardrails:
    if not getattr(args, "guardrails", None):
        return Guardrails()
    data = json.loads(Path(args.guardrails).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("the guardrails file must hold a JSON object")
    return Guardrails.from_dict(data)


def _print_issues(source: str, issues: list[ValidationIssue]) -> None:
    for issue in issues:
        label = "warning: " if issue.severity == "warning" else ""
        shown = json.dumps(issue.value) if issue.value is not None else ""
        # most messages already quote the value ("... got "SELCT""): do not repeat it
        value = f" (got {shown})" if shown and shown not in issue.message else ""
        _err(f"{source}: {issue.path}: {label}{issue.message}{value}")


def _load(path: str, guardrails: Guardrails) -> ValidatedDocument:
    data = Path(path).read_bytes()
    return load_and_validate(data, source=path, guardrails=guardrails)


KINDS = ("governance", "datasets", "products", "subscriptions")


def _kind_of(path: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    folders = Path(path).parts[:-1]
    return next((k for k in reversed(folders) if k in KINDS), "governance")


def _validate_other(path: str, kind: str, guardrails: Guardrails) -> int:
    """A datasets/, products/ or subscriptions/ document, by the config path's own kind."""
    from lakegov.metadata.kinds import DeploymentRules
    from lakegov.metadata.registry import metadata_kinds

    try:
        document = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        _err(f"{path}: cannot read: {exc.strerror or exc}")
        return 1
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        _err(f"{path}: $: not valid JSON ({exc})")
        return 1
    rules = DeploymentRules(guardrails)
    issues = metadata_kinds()[f"{kind}/"].validate(document, f"{kind}/{Path(path).name}", rules)
    _print_issues(path, issues)
    errors = [i for i in issues if i.severity == "error"]
    if not errors:
        print(f"{path}: valid {kind} document ({len(issues)} warning(s))")
    return 1 if errors else 0


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        guardrails = _guardrails(args)
    except (OSError, ValueError, TypeError) as exc:
        _err(f"{args.guardrails}: cannot read guardrails: {exc}")
        return 2
    status = 0
    for path in args.files:
        kind = _kind_of(path, getattr(args, "kind", None))
        if kind != "governance":
            status = max(status, _validate_other(path, kind, guardrails))
            continue
        try:
            doc = _load(path, guardrails)
        except OSError as exc:
            _err(f"{path}: cannot read: {exc.strerror or exc}")
            status = 1
            continue
        except InvalidDocument as exc:
            _print_issues(path, exc.issues)
            status = 1
            continue
        _print_issues(path, doc.warnings)
        entries = "entry" if doc.entry_count == 1 else "entries"
        warnings = "warning" if len(doc.warnings) == 1 else "warnings"
        print(f"{path}: valid ({doc.entry_count} {entries}, {len(doc.warnings)} {warnings})")
    return status


def _clients(args: argparse.Namespace) -> tuple[Any, Any, str]:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "adaptive", "max_attempts": 10})
    session = boto3.session.Session(region_name=args.region or None)
    lf = session.client("lakeformation", config=config)
    glue = session.client("glue", config=config)
    catalog_id = args.catalog_id
    if not catalog_id:
        catalog_id = session.client("sts", config=config).get_caller_identity()["Account"]
    return lf, glue, str(catalog_id)


def _prepare(args: argparse.Namespace) -> tuple[Plan, Any] | int:
    try:
        guardrails = _guardrails(args)
        doc = _load(args.file, guardrails)
    except InvalidDocument as exc:
        _print_issues(args.file, exc.issues)
        if getattr(args, "json", False):  # a JSON consumer gets the errors on stdout too
            print(json.dumps({"errors": [i.to_dict() for i in exc.issues]}, indent=2, default=str))
        return 1
    except (OSError, ValueError, TypeError) as exc:
        _err(f"cannot read input: {exc}")
        return 2
    _print_issues(args.file, doc.warnings)
    try:
        lf, glue, catalog_id = _clients(args)
        the_plan = plan(doc, lf, glue, catalog_id=catalog_id)
    except (BotoCoreError, ClientError, LakegovError) as exc:
        _err(f"{args.file}: cannot read Lake Formation: {exc}")
        return 2
    for note in the_plan.notes:
        _err(f"{args.file}: note: {note}")
    return the_plan, lf


def cmd_plan(args: argparse.Namespace) -> int:
    prepared = _prepare(args)
    if isinstance(prepared, int):
        return prepared
    the_plan, _ = prepared
    if args.json:
        print(json.dumps(the_plan.to_dict(), indent=2, sort_keys=True))
    elif the_plan.empty:
        print("No changes: Lake Formation already matches the document.")
    else:
        for change in the_plan.changes:
            print(f"  {change.describe()}")
        counts = ", ".join(f"{n} {a}" for a, n in sorted(the_plan.counts().items()))
        print(f"{len(the_plan.changes)} change(s): {counts}")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    prepared = _prepare(args)
    if isinstance(prepared, int):
        return prepared
    the_plan, lf = prepared
    try:
        result = apply(the_plan, lf)
    except (BotoCoreError, LakegovError) as exc:
        _err(f"{args.file}: apply stopped: {exc}")
        return 2
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        for outcome in result.outcomes:
            line = f"  {outcome.status}: {outcome.change.describe()}"
            if outcome.error_code:
                line += f" [{outcome.error_code}: {outcome.error_message}]"
            print(line)
        print(
            f"{len(result.outcomes) - len(result.failed)} change(s) done, "
            f"{len(result.failed)} failed, {result.write_calls} write call(s)"
        )
    for outcome in result.failed:
        _err(f"{args.file}: failed: {outcome.change.describe()}: {outcome.error_code}")
    return 0 if result.ok else 1
