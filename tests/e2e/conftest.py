"""One embedded runtime over the real template.yaml, shared by the e2e modules that ask for it."""

import pytest
from tests.conftest import ROOT

from lakegov.local.runtime import LocalRuntime


@pytest.fixture(scope="module")
def service():
    with LocalRuntime(ROOT / "template.yaml", stack_name="e2e") as rt:
        yield rt
