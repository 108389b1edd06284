"""Fixtures for the products' tests on moto (helpers in support.py)."""

from __future__ import annotations

from tests.integration.products.support import aws, clock, ctx, runner

__all__ = ["aws", "clock", "ctx", "runner"]
