"""``nas dashboard --serve`` shares exactly the dashboard file (issue 17): every other path is
a 404, a foreign ``Host`` header is refused, and responses carry a Content-Security-Policy."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from nas.dashboard._serve import CSP, make_server


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    page = tmp_path / "dashboard.html"
    page.write_text("<html>front</html>")
    for name in ("study.db", "run.log", "secret.key"):
        (tmp_path / name).write_text(f"private {name}")
    (tmp_path / "sub").mkdir()
    server = make_server(page, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], page
    finally:
        server.shutdown()
        server.server_close()


def _get(port: int, path: str, host: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host if host is not None else f"127.0.0.1:{port}")
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/", "/dashboard.html", "/dashboard.html?x=1"])
def test_the_dashboard_is_served_with_a_csp(served: tuple[int, Path], path: str) -> None:
    port, page = served
    status, body, headers = _get(port, path)
    assert status == 200 and body == page.read_bytes()
    assert headers["content-security-policy"] == CSP
    assert "default-src 'none'" in CSP and "connect-src 'none'" in CSP


@pytest.mark.parametrize(
    "path",
    ["/study.db", "/run.log", "/secret.key", "/sub/", "/sub", "/../dashboard.html", "//etc/passwd"],
)
def test_nothing_else_is_served(served: tuple[int, Path], path: str) -> None:
    status, body, headers = _get(served[0], path)
    assert status == 404 and b"private" not in body
    assert "content-security-policy" in headers


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.nip.io", ""])
def test_a_foreign_host_header_is_refused(served: tuple[int, Path], host: str) -> None:
    port = served[0]
    status, body, _ = _get(port, "/", host=host.format(port=port))
    assert status == 403 and b"front" not in body


@pytest.mark.parametrize("host", ["localhost", "localhost:{port}", "127.0.0.1", "LOCALHOST"])
def test_loopback_names_are_accepted(served: tuple[int, Path], host: str) -> None:
    port = served[0]
    assert _get(port, "/", host=host.format(port=port))[0] == 200
