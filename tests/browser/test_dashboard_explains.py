"""The dashboard explains itself (headless Chromium): infeasible trials in their own style,
references in their own colour with spread labels and their budget, hardware figures in
human units on hover, the device-memory line on memory bars, a banner when compared runs
differ in objectives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_dashboard_browser import HOVER_JS, _open

from nas.dashboard import build_dashboard
from nas.dashboard._figures import INFEASIBLE_COLOUR, REFERENCE_COLOUR
from nas.dashboard.synthetic import write_synthetic_run

pytestmark = pytest.mark.browser

TRACES_JS = """
return document.getElementById(arguments[0])._fullData.map(function(t){
  return {name: t.name, symbol: t.marker && t.marker.symbol, color: t.marker && t.marker.color,
          textposition: t.textposition, n: (t.x || []).length};
});
"""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = write_synthetic_run(tmp_path_factory.mktemp("explain") / "one", n_trials=300)
    return build_dashboard([run], run / "dashboard.html")


def test_infeasible_and_references_have_their_own_style(browser: Any, page: Path) -> None:
    _open(browser, page)
    traces = browser.execute_script(TRACES_JS, "fig-pareto2d")
    by_name = {t["name"]: t for t in traces}
    infeasible = by_name["dgx-h100: infeasible"]
    assert infeasible["n"] > 0 and infeasible["symbol"] == "x"
    assert infeasible["color"] == INFEASIBLE_COLOUR
    assert by_name["dgx-h100: dominated"]["color"] != INFEASIBLE_COLOUR
    (ref,) = [t for t in traces if t["name"].startswith("reference models")]
    assert "same workload and budget" in ref["name"]
    assert ref["color"] == REFERENCE_COLOUR and ref["symbol"] == "star"
    assert ref["color"] not in {t["color"] for t in traces if t is not ref}
    assert len(set(ref["textposition"])) > 1  # neighbouring labels placed apart
    note = browser.execute_script("return document.querySelector('#pareto2d p.note').textContent")
    assert "grey crosses" in note and "same workload and budget" in note


def test_hover_shows_hardware_in_human_units(browser: Any, page: Path) -> None:
    _open(browser, page)
    text = browser.execute_async_script(HOVER_JS)["text"]
    assert text and "memory/device" in text and "GB" in text
    assert "e+" not in text  # no raw 3.618e+09


def test_memory_bars_have_the_device_limit(browser: Any, page: Path) -> None:
    _open(browser, page)
    traces = browser.execute_script(TRACES_JS, "fig-memory-breakdown")
    limit = [t for t in traces if t["name"] == "device memory"]
    assert len(limit) == 1 and limit[0]["n"] > 0
    ys = browser.execute_script(
        "return Array.from(document.getElementById('fig-memory-breakdown')._fullData"
        ".find(function(t){ return t.name === 'device memory'; }).y);"
    )
    assert all(abs(y - 80.0) < 1e-6 for y in ys)  # 80 GB, in the panel's GB


def test_banner_when_compared_runs_differ_in_objectives(browser: Any, tmp_path: Path) -> None:
    a = write_synthetic_run(tmp_path / "a", n_trials=100, objectives=("loss", "step_time_s"))
    b = write_synthetic_run(tmp_path / "b", n_trials=100, objectives=("loss", "decode_tpot_s"))
    same = write_synthetic_run(tmp_path / "c", n_trials=100, objectives=("loss", "step_time_s"))
    _open(browser, build_dashboard([a, b], tmp_path / "ab.html"))
    banner = browser.execute_script(
        "var b = document.getElementById('objectives-warning'); return b && b.textContent;"
    )
    assert banner and "differ in objectives" in banner and "decode_tpot_s" in banner
    _open(browser, build_dashboard([a, same], tmp_path / "ac.html"))
    assert browser.execute_script("return document.getElementById('objectives-warning');") is None
