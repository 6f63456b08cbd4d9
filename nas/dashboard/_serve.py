"""Serve one dashboard file on 127.0.0.1 (never on other interfaces)."""

from __future__ import annotations

import functools
import http.server
from collections.abc import Callable
from pathlib import Path

from nas.dashboard._data import DashboardError

HOST = "127.0.0.1"


class _Handler(http.server.SimpleHTTPRequestHandler):
    page = "dashboard.html"

    def do_GET(self) -> None:
        if self.path in ("/", ""):
            self.path = "/" + self.page
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


def make_server(path: Path, *, port: int = 8000) -> http.server.ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1:``port`` (0 = any free port) whose ``/`` is ``path``."""
    path = Path(path)
    if not path.is_file():
        raise DashboardError(f"{path}: no such dashboard file")
    if not 0 <= port <= 65535:
        raise DashboardError(f"--port {port}: must be between 0 and 65535")
    handler = type("Handler", (_Handler,), {"page": path.name})
    factory = functools.partial(handler, directory=str(path.parent.resolve()))
    return http.server.ThreadingHTTPServer((HOST, port), factory)


def serve(path: Path, *, port: int = 8000, announce: Callable[[str], None] = print) -> None:
    """Serve ``path`` until Ctrl-C, announcing its URL first."""
    server = make_server(path, port=port)
    bound = server.server_address[1]
    announce(f"serving {path} at http://{HOST}:{bound}/  (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        announce("stopped")
    finally:
        server.server_close()
