"""Serve one dashboard file on 127.0.0.1 (never on other interfaces).

Only that file is served: ``/`` and ``/<its name>`` return it, every other path is a 404
(no directory listing, no ``study.db``, ``run.log`` or files next to it). A request whose
``Host`` header is not ``127.0.0.1`` or ``localhost`` (with or without the port) is refused
with 403, so a web page cannot reach the server through a rebound DNS name. Responses carry
a ``Content-Security-Policy`` that lets the page run its own inline script and nothing it
fetches from elsewhere.
"""

from __future__ import annotations

import http.server
from collections.abc import Callable
from pathlib import Path

from nas.dashboard._data import DashboardError

HOST = "127.0.0.1"
ALLOWED_HOSTS = ("127.0.0.1", "localhost")
# The page is self-contained: inline script (plotly.js and the page's code; plotly compiles
# some functions at run time, hence 'unsafe-eval'), inline styles, data: images (plotly's
# icons and PNG export), blob: workers/downloads; nothing is loaded from the network.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; "
    "worker-src blob:; connect-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


class _Handler(http.server.BaseHTTPRequestHandler):
    file: Path = Path("dashboard.html")
    server_version = "nas-dashboard"
    sys_version = ""

    def do_GET(self) -> None:
        self._respond(body=True)

    def do_HEAD(self) -> None:
        self._respond(body=False)

    def _respond(self, *, body: bool) -> None:
        if not self._host_allowed():
            self._plain(403, "forbidden: Host must be 127.0.0.1 or localhost\n", body=body)
            return
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if path not in ("/", f"/{self.file.name}"):
            self._plain(404, "not found\n", body=body)
            return
        try:
            data = self.file.read_bytes()  # read per request: a rewritten page is served fresh
        except OSError:
            self._plain(404, "not found\n", body=body)
            return
        self._send(200, data, "text/html; charset=utf-8", body=body)

    def _host_allowed(self) -> bool:
        host = (self.headers.get("Host") or "").strip().lower()
        port = str(self.server.server_address[1])  # type: ignore[index]  # (host, port)
        return any(host in (name, f"{name}:{port}") for name in ALLOWED_HOSTS)

    def _plain(self, code: int, text: str, *, body: bool) -> None:
        self._send(code, text.encode(), "text/plain; charset=utf-8", body=body)

    def _send(self, code: int, data: bytes, content_type: str, *, body: bool) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


def make_server(path: Path, *, port: int = 8000) -> http.server.ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1:``port`` (0 = any free port) serving only ``path``."""
    path = Path(path)
    if not path.is_file():
        raise DashboardError(f"{path}: no such dashboard file")
    if not 0 <= port <= 65535:
        raise DashboardError(f"--port {port}: must be between 0 and 65535")
    handler = type("Handler", (_Handler,), {"file": path.resolve()})
    return http.server.ThreadingHTTPServer((HOST, port), handler)


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
