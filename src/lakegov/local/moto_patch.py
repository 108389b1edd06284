"""What every change the embedded runtime makes to moto shares: it is applied once per
process, and without moto (the ``local`` extra) it fails with a clear error.

The changes themselves live beside it, one module per concern (:mod:`.moto_events`,
:mod:`.moto_lakeformation`, :mod:`.moto_ram`, :mod:`.moto_speed`, :mod:`.moto_sqs`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from lakegov.errors import ConfigurationError


def once(install: Callable[[], None]) -> Callable[[], None]:
    """``install`` run the first time only (later calls return at once); an
    ``ImportError`` inside it, moto missing, is a :class:`ConfigurationError`."""
    done = False
    lock = threading.Lock()

    @functools.wraps(install)
    def install_once() -> None:
        nonlocal done
        with lock:
            if done:
                return
            try:
                install()
            except ImportError as exc:
                raise ConfigurationError("moto is needed for the embedded runtime") from exc
            done = True

    return install_once
