"""The dashboard explains itself (headless Chromium): infeasible trials in their own style,
references in their own colour with spread labels and their budget, hardware figures in
human units on hover, the device-memory line on memory bars, a banner when compared runs
differ in objectives."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
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


# Bounding boxes of the reference labels (annotations) on the 2-D front, in page pixels.
LABELS_JS = """
return Array.from(document.querySelectorAll('#fig-pareto2d g.annotation')).map(function(g){
  var r = (g.querySelector('.annotation-text-g text') || g).getBoundingClientRect();
  return {text: g.textContent, x0: r.left, x1: r.right, y0: r.top, y1: r.bottom};
});
"""

# Per parallel-coordinates axis: the tick labels' boxes; and the axis titles' boxes.
PARCOORDS_JS = """
var gd = document.getElementById('fig-parallel');
function box(e){ var r = e.getBoundingClientRect();
  return {text: e.textContent, x0: r.left, x1: r.right, y0: r.top, y1: r.bottom}; }
var axes = Array.from(gd.querySelectorAll('g.y-axis')).map(function(a){
  return Array.from(a.querySelectorAll('g.tick text')).map(box); });
var titles = Array.from(gd.querySelectorAll('text.axis-title')).map(box);
return {axes: axes, titles: titles};
"""


def _overlaps(boxes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"] and b["y0"] < a["y1"]:
                out.append((a["text"], b["text"]))
    return out


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
    labels = browser.execute_script(LABELS_JS)
    assert len(labels) == ref["n"]  # every star labelled (placement: test_reference_labels...)
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


@pytest.fixture(scope="module")
def crowded_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight reference models at nearly the same coordinates (the labels must still part)."""
    run = write_synthetic_run(tmp_path_factory.mktemp("crowded") / "one", n_trials=200)
    refs = pd.read_parquet(run / "references.parquet")
    base = refs.iloc[[0]]
    rows = []
    for k in range(8):
        row = base.copy()
        row["name"] = f"reference-model-{k}"
        for col in ("loss", "step_time_s"):
            row[col] = float(base[col].iloc[0]) * (1 + 0.002 * k)
        rows.append(row)
    pd.concat([refs, *rows], ignore_index=True).to_parquet(run / "references.parquet")
    return build_dashboard([run], run / "dashboard.html")


def test_reference_labels_do_not_overlap(browser: Any, crowded_page: Path, artifacts: Path) -> None:
    _open(browser, crowded_page)
    time.sleep(0.5)  # the label script relayouts once after the first draw
    labels = browser.execute_script(LABELS_JS)
    n_refs = len(pd.read_parquet(crowded_page.parent / "references.parquet"))
    assert len(labels) == n_refs
    assert not _overlaps(labels), _overlaps(labels)
    browser.find_element("css selector", "#pareto2d").screenshot(
        str(artifacts / "dashboard-crowded-references.png")
    )
    # after an axis switch and a log toggle the labels are placed again, still apart
    browser.execute_script(
        "var s = document.getElementById('y-axis'); s.value = 'memory_per_device_bytes';"
        "s.dispatchEvent(new Event('change')); document.getElementById('log-x').click();"
    )
    time.sleep(1.0)
    labels = browser.execute_script(LABELS_JS)
    assert len(labels) == n_refs and not _overlaps(labels), _overlaps(labels)


def test_heading_appears_once(browser: Any, page: Path) -> None:
    _open(browser, page)
    title = browser.execute_script("return document.querySelector('h1').textContent")
    text = browser.execute_script("return document.body.innerText")
    assert text.count(title) == 1
    run_name = title.removeprefix("NAS dashboard: ")
    header = browser.execute_script("return document.getElementById('summary').innerText")
    assert run_name not in header  # the heading names the run; the header does not repeat it
    labels = browser.execute_script(
        "return Array.from(document.querySelectorAll('#summary dt')).map(e => e.textContent)"
    )
    assert len(labels) == len(set(labels))
    assert sum("trials" in label for label in labels) == 1


def test_parallel_coordinate_ticks_do_not_collide(browser: Any, page: Path) -> None:
    _open(browser, page)
    found = browser.execute_script(PARCOORDS_JS)
    assert found["axes"] and found["titles"]
    for ticks in found["axes"]:
        assert len(ticks) <= 12  # plotly may add minor ticks; ours are at most 6 labelled
        shown = [t for t in ticks if t["text"]]
        assert not _overlaps(shown), _overlaps(shown)
        assert all(len(t["text"]) <= 12 for t in shown), [t["text"] for t in shown]
        assert all("e+" not in t["text"] for t in shown)
    assert not _overlaps(found["titles"]), _overlaps(found["titles"])
