"""A change to moto is applied once per process; without moto it fails clearly."""

import pytest

from lakegov.errors import ConfigurationError
from lakegov.local.moto_patch import once


def test_an_install_runs_once_however_often_it_is_called():
    calls = []
    install = once(lambda: calls.append("applied"))
    install()
    install()
    assert calls == ["applied"]


def test_a_missing_moto_is_a_configuration_error_and_nothing_counts_as_installed():
    calls = []

    def install():
        calls.append("tried")
        raise ImportError("No module named 'moto'")

    patched = once(install)
    with pytest.raises(ConfigurationError, match="moto is needed"):
        patched()
    with pytest.raises(ConfigurationError):
        patched()  # not marked done: tried again
    assert calls == ["tried", "tried"]
