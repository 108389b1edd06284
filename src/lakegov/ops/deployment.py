"""Finding a deployment's names: a local outputs file, a CloudFormation stack, or flags."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from lakegov.aws import Clients
from lakegov.errors import ConfigurationError

DEFAULT_OUTPUTS = Path(".lakegov/outputs.json")


@dataclass(frozen=True)
class Deployment:
    outputs: dict[str, str]
    endpoint_url: str | None
    region: str | None

    @cached_property
    def clients(self) -> Clients:
        return Clients.for_endpoint(self.endpoint_url, region=self.region)

    def client(self, service: str) -> Any:
        return self.clients(service)

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise ConfigurationError(f"the deployment has no output {name}") from None


def resolve_deployment(outputs_file: Path | None, stack: str | None) -> Deployment:
    """``--outputs`` file (default ``.lakegov/outputs.json`` when present), else ``--stack``."""
    if outputs_file is None and stack is None and DEFAULT_OUTPUTS.is_file():
        outputs_file = DEFAULT_OUTPUTS
    if outputs_file is not None:
        try:
            data = json.loads(outputs_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigurationError(f"cannot read outputs file {outputs_file}: {exc}") from exc
        return Deployment(
            {k: str(v) for k, v in data.items()}, data.get("EndpointUrl"), data.get("Region")
        )
    if stack is None:
        raise ConfigurationError(
            "which deployment? pass --outputs FILE (from `lakegov local run --outputs`) "
            "or --stack NAME (a deployed CloudFormation stack)"
        )
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    deployment = Deployment({}, endpoint, None)
    cfn = deployment.client("cloudformation")
    try:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except Exception as exc:
        raise ConfigurationError(f"cannot describe stack {stack}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    return Deployment(outputs, endpoint, None)


def deployment_or_environment(
    outputs_file: Path | None, stack: str | None, region: str | None
) -> Deployment:
    """:func:`resolve_deployment` when ``--outputs``/``--stack`` is given or
    ``.lakegov/outputs.json`` is present; otherwise AWS as the environment configures it."""
    if outputs_file is None and stack is None and not DEFAULT_OUTPUTS.is_file():
        return Deployment({}, None, region)
    deployment = resolve_deployment(outputs_file, stack)
    if region and not deployment.region:
        return Deployment(deployment.outputs, deployment.endpoint_url, region)
    return deployment


def deployment_arguments(
    parser: argparse.ArgumentParser, json_help: str = "machine-readable output"
) -> None:
    """The options every deployment command takes: where the deployment is, and --json."""
    parser.add_argument(
        "--outputs",
        type=Path,
        default=None,
        help="outputs JSON of `lakegov local run --outputs` "
        "(default: .lakegov/outputs.json when present)",
    )
    parser.add_argument("--stack", default=None, help="a deployed stack's name (reads its Outputs)")
    parser.add_argument("--json", action="store_true", help=json_help)
