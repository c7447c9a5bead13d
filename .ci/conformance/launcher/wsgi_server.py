"""A small threaded WSGI server from the standard library, shared by both launchers.

Production deployments ran Keystone and Ceilometer under mod_wsgi or uWSGI; for a test stack on
loopback the standard library's server is enough. ``serialise=True`` lets one request at a time into
the application (Keystone on SQLite), while connections are still accepted concurrently, so an idle
client cannot stall the others.
"""

from __future__ import annotations

import socketserver
import sys
import threading
from typing import TYPE_CHECKING, Any
from wsgiref import simple_server

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class _Handler(simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"[{self.log_date_time_string()}] {format % args}\n")


def _serialised(app: Callable[..., Iterable[bytes]]) -> Callable[..., list[bytes]]:
    lock = threading.Lock()

    def wrapper(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            result = app(environ, start_response)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    return wrapper


def serve(app: Callable[..., Any], host: str, port: int, *, serialise: bool = False) -> None:
    """Serve ``app`` on ``host:port`` until the process is terminated."""
    if serialise:
        app = _serialised(app)
    server = simple_server.make_server(
        host, port, app, server_class=_ThreadingWSGIServer, handler_class=_Handler
    )
    sys.stderr.write(f"serving on http://{host}:{port}\n")
    sys.stderr.flush()
    server.serve_forever()
