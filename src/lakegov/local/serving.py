"""A local server run on a thread of its own, and stopped in order.

The embedded runtime's listeners (the endpoint's werkzeug server in
:mod:`lakegov.local.athena.server`, the state machines' listener in
:mod:`lakegov.local.states`) are socketserver servers, each serving on a daemon thread:
this is the one place that starts one and stops it (shut down, socket closed, thread
joined).
"""

from __future__ import annotations

import threading
from socketserver import BaseServer
from typing import Generic, TypeVar

ServerT = TypeVar("ServerT", bound=BaseServer)


class ServerThread(Generic[ServerT]):
    """``server.serve_forever`` on a daemon thread named ``name``; :meth:`stop` waits at most
    ``join_timeout`` seconds for the thread once the server is shut down."""

    def __init__(self, server: ServerT, *, name: str, join_timeout: float) -> None:
        self.server = server
        self.join_timeout = join_timeout
        self._thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)

    def start(self) -> ServerThread[ServerT]:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=self.join_timeout)
