"""The dashboard in headless Chromium: offline load, plots drawn, hover, controls, screenshot."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nas.dashboard import build_dashboard, load_run
from nas.dashboard.synthetic import write_synthetic_run

pytestmark = pytest.mark.browser

# chrome: is the browser's own pages (its new-tab page loads at start-up), never the network
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome-error:", "chrome:")

# Figures whose plot area has rendered: an SVG main layer, and a canvas where WebGL is used.
DRAWN_JS = """
return Array.from(document.querySelectorAll('.js-plotly-plot')).map(function(gd){
  var gl = (gd._fullData || []).some(function(t){
    return /gl|parcoords|3d/.test(t.type); });
  var svg = gd.querySelector('svg.main-svg') !== null;
  var canvas = gd.querySelectorAll('canvas').length > 0;
  return {id: gd.id, drawn: svg && (!gl || canvas), traces: (gd._fullData || []).length};
});
"""

# Move the mouse onto the first front point (a real mousemove on the plot's drag layer, as
# Plotly.Fx.hover with point numbers does not reach WebGL traces) and read the label drawn.
HOVER_JS = """
var done = arguments[arguments.length - 1];
var gd = document.getElementById('fig-pareto2d');
var curve = gd.data.findIndex(function(t){ return / front$/.test(t.name); });
var xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
var x = gd._fullData[curve].x[0], y = gd._fullData[curve].y[0];  // decoded typed arrays
var drag = gd.querySelector('.nsewdrag');
var box = drag.getBoundingClientRect();
var hovered = null;
gd.on('plotly_hover', function(ev){ hovered = ev.points[0]; });
var opts = {clientX: box.left + xa.c2p(x), clientY: box.top + ya.c2p(y), bubbles: true};
drag.dispatchEvent(new MouseEvent('mousemove', opts));
setTimeout(function(){
  var label = document.querySelector('#fig-pareto2d .hoverlayer .hovertext');
  done({curve: curve, text: label ? label.textContent : null,
        trial: hovered && hovered.customdata ? hovered.customdata[0] : null});
}, 400);
"""


def _open(browser: Any, page: Path) -> None:
    browser.get_log("browser")  # drop messages from earlier pages
    browser.get_log("performance")
    browser.get(page.resolve().as_uri())
    deadline = time.monotonic() + 30
    expected = int(
        browser.execute_script(
            "return document.querySelector('meta[name=nas-dashboard-figures]').content"
        )
    )
    while time.monotonic() < deadline:
        drawn = browser.execute_script(DRAWN_JS)
        if len(drawn) == expected and all(d["drawn"] for d in drawn):
            return
        time.sleep(0.2)
    pytest.fail(f"plots not drawn within 30 s: {browser.execute_script(DRAWN_JS)}")


def _requested_urls(browser: Any) -> list[str]:
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _screenshot(browser: Any, path: Path) -> None:
    height = browser.execute_script("return document.body.scrollHeight")
    width = browser.get_window_size()["width"]
    browser.set_window_size(width, min(int(height) + 40, 8000))
    time.sleep(0.5)  # let responsive plots settle at the new size
    browser.save_screenshot(str(path))
    browser.set_window_size(width, 1000)


@pytest.fixture(scope="module")
def multi_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two systems, three objectives: every panel of the dashboard."""
    run = write_synthetic_run(
        tmp_path_factory.mktemp("browser") / "multi",
        n_trials=400,
        systems=("dgx-h100", "atlas-800t-a2"),
        objectives=("loss", "step_time_s", "decode_tpot_s"),
    )
    return run, build_dashboard([run], run / "dashboard.html")


def test_loads_offline_without_errors(browser: Any, multi_page: tuple[Path, Path]) -> None:
    _, page = multi_page
    _open(browser, page)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    urls = _requested_urls(browser)
    assert urls and all(u.startswith(LOCAL_SCHEMES) for u in urls), urls
    external = browser.execute_script(
        "return Array.from(document.querySelectorAll('[src],[href]'))"
        ".map(function(e){ return e.getAttribute('src') || e.getAttribute('href'); })"
        ".filter(function(u){ return /^(https?:)?\\/\\//i.test(u); });"
    )
    assert external == []
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(function(r){ return r.name; })"
    )
    assert all(r.startswith(LOCAL_SCHEMES) for r in resources), resources


def test_expected_plots_drawn(browser: Any, multi_page: tuple[Path, Path], artifacts: Path) -> None:
    _, page = multi_page
    _open(browser, page)
    drawn = browser.execute_script(DRAWN_JS)
    ids = [d["id"] for d in drawn]
    assert ids == [
        "fig-pareto2d",
        "fig-systems",
        "fig-pareto3d",
        "fig-parallel",
        "fig-hypervolume",
        "fig-time-breakdown",
        "fig-memory-breakdown",
    ]
    assert all(d["drawn"] and d["traces"] > 0 for d in drawn)
    _screenshot(browser, artifacts / "dashboard.png")
    assert (artifacts / "dashboard.png").stat().st_size > 50_000


def test_hover_shows_architecture(browser: Any, multi_page: tuple[Path, Path]) -> None:
    run, page = multi_page
    _open(browser, page)
    hover = browser.execute_async_script(HOVER_JS)
    assert hover["curve"] >= 0
    text = hover["text"]
    assert text, "no hover label drawn"
    for word in ("layers", "d_model", "heads", "kv heads", "d_ff", "plan:", "tp", "loss"):
        assert word in text, (word, text)
    # the label belongs to the hovered trial: its trial number's row has these values
    trial = int(hover["trial"])
    assert f"trial {trial}" in text
    row = load_run(run).trials.set_index("trial").loc[trial]
    if row["param_num_experts"] > 0:
        assert f"experts {int(row['param_num_experts'])}" in text
    assert f"d_model {int(row['param_d_model'])}" in text
    assert f"layers {int(row['param_num_layers'])}" in text


def test_axis_switch_and_table_sort(browser: Any, multi_page: tuple[Path, Path]) -> None:
    _, page = multi_page
    _open(browser, page)
    title = browser.execute_script(
        "var s = document.getElementById('x-axis'); s.value = 'decode_tpot_s';"
        "s.dispatchEvent(new Event('change'));"
        "return document.getElementById('fig-pareto2d').layout.xaxis.title.text;"
    )
    assert title.startswith("decode_tpot_s")
    xs = browser.execute_script("return document.getElementById('fig-pareto2d').data[1].x;")
    assert len(xs) > 0
    column = browser.execute_script(
        "var th = Array.from(document.querySelectorAll('#front-table th'))"
        "  .find(function(h){ return h.textContent.indexOf('d_model') === 0; });"
        "th.click(); th.click();"  # second click: descending
        "var i = Array.from(th.parentNode.children).indexOf(th);"
        "return Array.from(document.querySelectorAll('#front-table tbody tr'))"
        "  .map(function(r){ return parseFloat(r.cells[i].textContent); });"
    )
    assert len(column) > 3 and column == sorted(column, reverse=True)


def test_webgl_scatter_draws_and_hovers(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, artifacts: Path
) -> None:
    """Large runs switch to Scattergl; force it on a small run to check it in the browser."""
    import nas.dashboard._html as page_module

    monkeypatch.setattr(page_module, "GL_THRESHOLD", 10)
    run = write_synthetic_run(tmp_path / "gl", n_trials=300)
    page = build_dashboard([run], tmp_path / "gl.html")
    _open(browser, page)
    types = browser.execute_script(
        "return document.getElementById('fig-pareto2d')._fullData.map(function(t){ return t.type; })"
    )
    assert "scattergl" in types
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    hover = browser.execute_async_script(HOVER_JS)
    assert hover["text"] and "d_model" in hover["text"]
    _screenshot(browser, artifacts / "dashboard-webgl.png")
    assert pd.notna(hover["text"])


def test_breakdown_share_toggle(browser: Any, multi_page: tuple[Path, Path]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    _, page = multi_page
    _open(browser, page)
    buttons = browser.find_elements("css selector", "#fig-time-breakdown .updatemenu-button")
    assert [b.text for b in buttons] == ["absolute", "share %"]
    browser.execute_script("arguments[0].scrollIntoView()", buttons[1])
    ActionChains(browser).move_to_element(buttons[1]).click().perform()
    time.sleep(0.5)
    title, total = browser.execute_script(
        "var gd = document.getElementById('fig-time-breakdown');"
        "var sum = gd._fullData.reduce(function(a, t){ return a + t.y[0]; }, 0);"
        "return [gd.layout.yaxis.title.text, sum];"
    )
    assert title == "share of step time (%)"
    assert abs(total - 100.0) < 1e-6
