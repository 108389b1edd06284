"""The CodeBuild buildspec of the dbt job, run here as far as it goes without Athena.

Its commands live in template.yaml as text: a typo in them (a misspelt variable, a wrong
flag, a profile that does not render for the Athena target) would first show on AWS. This
test runs the install phase verbatim (pip installs dbt-core and dbt-athena from the
registry into ``.venv-dbt-athena``, kept between runs), pre_build with an ``aws`` stand-in
that serves the project zip ``lakegov products publish-dbt`` would upload, and the build
phase with the variables a run sets. dbt must get as far as loading the project and the
Athena profile, and stop only where it needs Athena itself; post_build then uploads
whatever artifacts exist.
"""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import ROOT

from lakegov.local.template import load_template
from lakegov.products.publish import build_archive

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dbt-athena")]

VENV = ROOT / ".venv-dbt-athena"
AWS_STANDIN = """#!/usr/bin/env bash
# `aws s3 cp SRC DST`: s3:// sources come from $FAKE_S3, s3:// targets go to it.
set -euo pipefail
echo "aws $*" >> "$FAKE_S3/calls.log"
[ "$1 $2" = "s3 cp" ] || { echo "unexpected aws call: $*" >&2; exit 2; }
src="$3"; dst="$4"
local_path() { echo "$FAKE_S3/${1#s3://}"; }
if [[ "$src" == s3://* ]]; then cp "$(local_path "$src")" "$dst"
else mkdir -p "$(dirname "$(local_path "$dst")")"; cp "$src" "$(local_path "$dst")"; fi
"""


def _project() -> dict[str, Any]:
    return dict(load_template(ROOT / "template.yaml")["Resources"]["DbtBuildProject"])


def _run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=900
    )


def test_the_buildspec_runs_until_it_needs_athena(tmp_path: Path) -> None:
    props = _project()["Properties"]
    spec = yaml.safe_load(props["Source"]["BuildSpec"])
    assert spec["env"]["shell"] == "bash"
    fake_s3 = tmp_path / "s3"
    (fake_s3 / "cfg" / "dbt").mkdir(parents=True)
    (fake_s3 / "cfg" / "dbt" / "project.zip").write_bytes(build_archive(ROOT / "dbt")[0])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(AWS_STANDIN)
    (bin_dir / "aws").chmod(0o755)
    if not (VENV / "bin" / "python").exists():
        venv.create(VENV, with_pip=True)
    # what the project sets, with this test's names for what the stack would resolve
    env = {
        "PATH": f"{VENV / 'bin'}:{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "FAKE_S3": str(fake_s3),
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        # nothing answers here: dbt stops where it first needs Athena
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    for variable in props["Environment"]["EnvironmentVariables"]:
        value = variable["Value"]
        env[variable["Name"]] = value if isinstance(value, str) else f"test-{variable['Name']}"
    env["LAKEGOV_DBT_PROJECT_URI"] = "s3://cfg/dbt/project.zip"
    env["LAKEGOV_FORMATTED_BUCKET"] = "formatted"
    env["LAKEGOV_ATHENA_S3_STAGING_DIR"] = "s3://formatted/_tmp/athena/"
    # what a run sets (lakegov.runners.codebuild): a selection and the artifacts prefix
    env["LAKEGOV_DBT_SELECT"] = "path:models/formatted/*"
    env["LAKEGOV_ARTIFACTS_URI"] = "s3://cfg/runs/customers_cards/r1/"
    assert env["LAKEGOV_DBT_TARGET"] == "athena"

    phases = spec["phases"]
    for command in phases["install"]["commands"]:
        done = _run(command, env)
        assert done.returncode == 0, done.stderr[-3000:]
    for command in phases["pre_build"]["commands"]:
        done = _run(command, env)
        assert done.returncode == 0, done.stderr[-3000:]
    (build,) = phases["build"]["commands"]
    done = _run(build, env)
    output = done.stdout + done.stderr
    assert done.returncode != 0, "dbt cannot have built anything without Athena"
    # the project and the Athena profile loaded, the models were found...
    assert "Registered adapter: athena" in output, output[-3000:]
    assert "target='athena'" in output and "Found 6 models" in output, output[-3000:]
    # ...and what stopped the run is Athena itself: nothing answers at the endpoint
    assert 'Could not connect to the endpoint URL: "http://127.0.0.1:9/"' in output, output[-3000:]
    for command in phases["post_build"]["commands"]:
        done = _run(command, env)
        assert done.returncode == 0, done.stderr[-3000:]
    uploaded = fake_s3 / "cfg" / "runs" / "customers_cards" / "r1"
    assert (uploaded / "manifest.json").exists(), sorted(p.name for p in fake_s3.rglob("*"))
