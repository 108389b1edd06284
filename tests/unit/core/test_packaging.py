"""Each function imports with only what Lambda will give it: its layers and src/requirements.txt.

The embedded runtime runs every handler in one virtualenv, so a handler that needs pyarrow
but was deployed without the AWS SDK for pandas layer would only fail in AWS. This test
imports every handler in a fresh interpreter in which the packages its function does not
get are blocked.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from tests.conftest import ROOT

from lakegov.local.template import load_template, merge_globals

# What only exists on the machine, never in a function package.
NEVER_IN_LAMBDA = [
    "moto",
    "yaml",
    "duckdb",
    "dbt",
    "flask",
    "werkzeug",
    "pandas",
    "awswrangler",
    "zstandard",
]
# What the AWS SDK for pandas layer brings.
PANDAS_LAYER = ["pyarrow", "numpy"]

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
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = merge_globals(template, resource["Type"], resource["Properties"])
        layers = str(props.get("Layers", ""))
        yield logical_id, props["Handler"].rpartition(".")[0], "PandasLayerArn" in layers


@pytest.mark.parametrize(
    ("logical_id", "module", "has_pandas_layer"),
    list(_functions()),
    ids=lambda v: v if isinstance(v, str) and v.endswith("Function") else "",
)
def test_the_handler_imports_with_its_declared_packages(logical_id, module, has_pandas_layer):
    blocked = NEVER_IN_LAMBDA + ([] if has_pandas_layer else PANDAS_LAYER)
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


def test_the_function_requirements_stay_small():
    pinned = {
        line.split("==")[0]
        for line in (ROOT / "src/requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert pinned == {"jsonschema", "fastavro"}  # zstd comes from pyarrow's codec
