"""Fixtures for the governance engine's unit tests (no AWS, no moto)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.unit.governance.fakes import ACCOUNT, FakeLakeFormation

DATA = Path(__file__).parent / "data"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/analyst"


def original(name: str, account: str | None = ACCOUNT) -> Any:
    """One of the post's files; its redacted account 'XXX' replaced unless account is None."""
    text = (DATA / name).read_text()
    if account is not None:
        text = text.replace("arn:aws:iam::XXX:", f"arn:aws:iam::{account}:")
    return json.loads(text)


def entry(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "role_arn": ROLE,
        "access_type": "GRANT",
        "named_data_catalog": [{"Database": "sales", "Table": "orders"}],
        "table_permissions": ["SELECT"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture
def lf() -> FakeLakeFormation:
    return FakeLakeFormation()


@pytest.fixture
def no_sleep() -> list[float]:
    return []
