"""The dashboard served by ``--serve`` (with its Content-Security-Policy) still draws every
plot in headless Chromium, and the policy blocks nothing the page needs (issue 17)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from nas.dashboard import build_dashboard
from nas.dashboard._serve import make_server
from nas.dashboard.synthetic import write_synthetic_run
from tests.browser.test_dashboard_browser import DRAWN_JS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    run = write_synthetic_run(
        tmp_path_factory.mktemp("served") / "run",
        n_trials=200,
        systems=("dgx-h100", "atlas-800t-a2"),
        objectives=("loss", "step_time_s", "decode_tpot_s"),
    )
    page = build_dashboard([run], run / "dashboard.html")
    server = make_server(page, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_served_page_draws_every_plot_under_its_csp(browser: Any, url: str) -> None:
    browser.get_log("browser")  # drop messages from earlier pages
    browser.get(url)
    expected = int(
        browser.execute_script(
            "return document.querySelector('meta[name=nas-dashboard-figures]').content"
        )
    )
    deadline = time.monotonic() + 30
    drawn: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        drawn = browser.execute_script(DRAWN_JS)
        if len(drawn) == expected and all(d["drawn"] for d in drawn):
            break
        time.sleep(0.2)
    assert len(drawn) == expected and all(d["drawn"] for d in drawn), drawn
    messages = [e["message"] for e in browser.get_log("browser")]
    blocked = [m for m in messages if "Content Security Policy" in m or "Refused to" in m]
    assert blocked == []
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
