"""Each function imports with only what Lambda will give it, and fits what Lambda unzips.

The embedded runtime runs every handler in one virtualenv, so a handler that needs pyarrow
but was deployed without a layer providing it would only fail in AWS. The first test
imports every handler in a fresh interpreter in which the packages its function does not
get are blocked. The second adds up each function's package and layers against Lambda's
250 MB unzipped limit.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from tests.conftest import ROOT

from lakegov.local.template import load_template, merge_globals

# What only exists on the machine, never in a function package.
NEVER_IN_LAMBDA = [
    "moto",
    "yaml",
    "dbt",
    "flask",
    "werkzeug",
    "pandas",
    "awswrangler",
    "zstandard",
]
# What the AWS SDK for pandas layer brings (pandas itself is never used in a function).
PANDAS_LAYER = ["pyarrow", "numpy"]
# What the convert function's own layer brings (requirements/convert-layer/requirements.txt).
ENGINE_LAYER = ["duckdb", "pyarrow", "lxml", "python_calamine"]

BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not in this function's package or layers")
        return None
sys.meta_path.insert(0, Block())
sys.path.insert(0, {src!r})
import importlib
importlib.import_module({module!r})
"""


def _functions():
    template = load_template(ROOT / "template.yaml")
    global_layers = str(template["Globals"]["Function"].get("Layers", ""))
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = merge_globals(template, resource["Type"], resource["Properties"])
        # SAM prepends the Globals' layers to a function's own list
        layers = global_layers + str(resource["Properties"].get("Layers", ""))
        yield logical_id, props["Handler"].rpartition(".")[0], layers


@pytest.mark.parametrize(
    ("logical_id", "module", "layers"),
    list(_functions()),
    ids=lambda v: v if isinstance(v, str) and v.endswith("Function") else "",
)
def test_the_handler_imports_with_its_declared_packages(logical_id, module, layers):
    provided = set()
    if "PandasLayerArn" in layers:
        provided |= set(PANDAS_LAYER)
    if "ConvertEngineLayer" in layers:
        provided |= set(ENGINE_LAYER)
    blocked = NEVER_IN_LAMBDA + [p for p in {*PANDAS_LAYER, *ENGINE_LAYER} if p not in provided]
    code = BLOCKER.format(blocked=blocked, src=str(ROOT / "src"), module=module)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert result.returncode == 0, (
        f"{logical_id} ({module}): {result.stderr.strip().splitlines()[-1:]}"
    )


# --------------------------------------------------------------------------- sizes

LAMBDA_UNZIPPED_LIMIT = 250 * 2**20  # function package and all its layers, unzipped
# In the Lambda runtime already: never counted.
RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
# The Powertools layer: the library with the extras the layer bundles.
POWERTOOLS_LAYER = ["aws-lambda-powertools", "aws-xray-sdk", "pydantic"]
# The AWS SDK for pandas layer is built by AWS and cannot be measured here; what is left
# for the rest of such a function is checked against the size src/requirements.txt states.
PANDAS_LAYER_BYTES = 200 * 2**20


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _installed_bytes(requirements: list[str]) -> int:
    """Bytes the distributions ``requirements`` and their dependencies occupy installed
    (this machine's wheels: the arm64 ones are smaller, e.g. duckdb 52.6 MB for 58.1)."""
    seen: set[str] = set()
    stack = [_name(Requirement(r).name) for r in requirements]
    total = 0
    while stack:
        name = stack.pop()
        if name in seen or name in RUNTIME:
            continue
        seen.add(name)
        dist = importlib.metadata.distribution(name)
        total += sum(f.size or 0 for f in dist.files or [] if "__pycache__" not in str(f))
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                stack.append(_name(req.name))
    return total


def _requirements(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def _source_bytes() -> int:
    return sum(
        p.stat().st_size
        for p in (ROOT / "src").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


@pytest.mark.parametrize(
    ("logical_id", "module", "layers"),
    list(_functions()),
    ids=lambda v: v if isinstance(v, str) and v.endswith("Function") else "",
)
def test_the_function_fits_lambdas_unzipped_limit(logical_id, module, layers):
    # Given the function's package (src/ and src/requirements.txt) and its layers
    package = _source_bytes() + _installed_bytes(_requirements(ROOT / "src/requirements.txt"))
    total = package + _installed_bytes(POWERTOOLS_LAYER)
    if "ConvertEngineLayer" in layers:
        total += _installed_bytes(
            _requirements(ROOT / "requirements/convert-layer/requirements.txt")
        )
    if "PandasLayerArn" in layers:
        total += PANDAS_LAYER_BYTES
    # Then together they stay under what Lambda unzips
    assert total < LAMBDA_UNZIPPED_LIMIT, (
        f"{logical_id}: {total / 2**20:.0f} MiB of {LAMBDA_UNZIPPED_LIMIT / 2**20:.0f}"
    )


def test_the_convert_function_does_not_carry_the_pandas_layer():
    # DuckDB and the AWS SDK for pandas layer together pass the limit: the engine layer
    # brings pyarrow without numpy and pandas
    (layers,) = [lay for lid, _, lay in _functions() if lid == "ConvertFunction"]
    assert "ConvertEngineLayer" in layers and "PandasLayerArn" not in layers
    with_pandas = _installed_bytes(["duckdb"]) + PANDAS_LAYER_BYTES
    assert with_pandas + _installed_bytes(POWERTOOLS_LAYER) > LAMBDA_UNZIPPED_LIMIT


def test_the_function_requirements_stay_small():
    pinned = {
        line.split("==")[0]
        for line in (ROOT / "src/requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert pinned == {"jsonschema", "fastavro"}  # zstd comes from pyarrow's codec
