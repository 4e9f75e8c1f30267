"""End to end in a real browser: JupyterLab + headless Chromium run the explorer notebook, click a
background marker in the heatmap, and check that the detail view shows that marker's Dice.

How the test finds things (see the hooks in ``flimexplore.widgets``):

- the heatmap is the Plotly plot inside the widget with class ``fx-heatmap``;
- the background markers are the ``scatter`` trace of that plot whose markers are coloured by an array of
  numbers (the Dice of each marker, sent from Python); the test clicks the marker farthest from its
  neighbours, at the pixel Plotly's own axes give for it;
- the detail view is the widget with class ``fx-detail``; after the click, the first number after the word
  "Dice" in its HTML text must be that marker's Dice, rounded as displayed.

Screenshots go to ``test-artifacts/explorer-*.png``; with ``FLIMEXPLORE_UPDATE_SCREENSHOTS=1`` the two
README images in ``docs/img/`` are refreshed from them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

KERNEL_READY_TIMEOUT_S = 60
RUN_ALL_TIMEOUT_S = 150
CLICK_RESPONSE_TIMEOUT_S = 30
STALL_S = 10

# Progress of "Run All Cells": the prompt of every non-empty code cell, and any error tracebacks.
NOTEBOOK_PROGRESS_JS = """
() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return null;
  const prompts = [...panel.querySelectorAll('.jp-CodeCell')]
    .filter(cell => (cell.querySelector('.jp-InputArea-editor')?.textContent || '').trim() !== '')
    .map(cell => (cell.querySelector('.jp-InputArea-prompt')?.textContent || '').trim());
  const errors = [...panel.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(node => node.textContent)
    .filter(text => /Traceback|Error:/.test(text));
  const status = panel.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status');
  return {prompts, errors, status};
}
"""

# Locate the heatmap plot and its background-marker trace; return the most isolated marker's page
# coordinates and colour value (its Dice), or null while the plot is not rendered yet.
FIND_MARKER_JS = """
() => {
  // The hook class sits on the FigureWidget's own element, which is Plotly's graph div.
  const hooked = [...document.querySelectorAll('.fx-heatmap.js-plotly-plot, .fx-heatmap .js-plotly-plot')];
  for (const gd of hooked) {
    const layout = gd._fullLayout, data = gd._fullData;
    if (!layout || !data) continue;
    const isNumbers = a => (Array.isArray(a) || ArrayBuffer.isView(a)) && a.length > 0 && ['number', 'bigint'].includes(typeof a[0]);
    const candidates = data.filter(t => t.type === 'scatter' && t.visible === true
      && String(t.mode).includes('markers') && t.marker && isNumbers(t.marker.color));
    if (!candidates.length) continue;
    const trace = candidates.find(t => /background/i.test(t.name || '')) || candidates[0];
    const xa = layout[trace.xaxis.replace('x', 'xaxis')], ya = layout[trace.yaxis.replace('y', 'yaxis')];
    const box = gd.getBoundingClientRect();
    const points = [];
    for (let i = 0; i < trace.x.length; i++) {
      const px = xa.c2p(Number(trace.x[i])), py = ya.c2p(Number(trace.y[i]));
      if (!(px >= 0 && px <= xa._length && py >= 0 && py <= ya._length)) continue;  // also drops NaN
      points.push({i, x: box.left + xa._offset + px, y: box.top + ya._offset + py});
    }
    if (!points.length) continue;
    let best = null, bestGap = -1;
    for (const p of points) {
      let gap = Infinity;
      for (const q of points) if (q !== p) gap = Math.min(gap, Math.hypot(p.x - q.x, p.y - q.y));
      if (gap > bestGap) { best = p; bestGap = gap; }
    }
    gd.setAttribute('data-fx-test', 'heatmap');
    const output = gd.closest('.fx-explorer') || gd.closest('.jp-OutputArea-output');
    if (output) output.setAttribute('data-fx-test', 'explorer');
    return {trace: trace.index, name: trace.name || '', n: points.length, point: best.i,
            x: best.x, y: best.y, gap: bestGap, dice: Number(trace.marker.color[best.i])};
  }
  return null;
}
"""

# Which Plotly plots exist in widgets with an fx-* class, and whether Plotly finished drawing them.
PLOTS_JS = """
() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => ({
  view: (gd.closest('[class*="fx-"]:not(.fx-explorer)') || gd).className.split(' ').filter(c => c.startsWith('fx-')).join(' '),
  drawn: !!gd._fullLayout,
  traces: (gd.data || []).map(t => t.name || t.type),
}))
"""

DICE = re.compile(r"\bDice\b\W*?(\d+(?:\.\d+)?)")


def shown_dice(text: str) -> str | None:
    """The first number written after the word "Dice" in ``text``, as displayed (None if there is none)."""
    match = DICE.search(text)
    return match.group(1) if match else None


def same_as_displayed(shown: str, value: float) -> bool:
    """Whether ``value`` rounds to ``shown`` at the precision ``shown`` is written with."""
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return abs(float(shown) - value) <= 0.5 * 10**-decimals + 1e-9


def test_shown_dice() -> None:
    assert shown_dice("<b>model 7</b>: validation Dice 0.734 · Jaccard 0.580 · test Dice 0.701") == "0.734"
    assert shown_dice("marker 4: Dice = 0.537") == "0.537"
    assert shown_dice("computing model 7...") is None
    assert same_as_displayed("0.734", 0.73412) and same_as_displayed("0.70", 0.6962)
    assert not same_as_displayed("0.70", 0.7162)


def _click_run_all(page, deadline: float) -> None:
    """Run > Run All Cells, once the menu item is enabled (it is not until the kernel is connected)."""
    run_menu = page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$"))
    item = page.locator(
        "li.lm-Menu-item", has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$"))
    )
    while True:
        run_menu.click()
        item.wait_for(state="visible")
        if "lm-mod-disabled" not in (item.get_attribute("class") or ""):
            item.click()
            return
        page.keyboard.press("Escape")
        if time.monotonic() > deadline:
            pytest.fail("Run > Run All Cells stayed disabled (no kernel?)")
        page.wait_for_timeout(500)


def _wait_for_kernel(base: str, deadline: float) -> None:
    """Wait until the notebook's kernel is idle with a settled websocket connection.

    JupyterLab may drop its first kernel websocket while the kernel starts (jupyter_server issue 1265:
    "'NoneType' object has no attribute 'kernel_ws_protocol'") and reconnect; execute requests sent
    in between are lost, so Run All waits for one idle, connected kernel, seen twice a second apart.
    """
    seen = None
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{base}/api/sessions", timeout=5) as response:
            sessions = json.loads(response.read())
        ready = [
            s["kernel"]["id"] for s in sessions
            if s.get("kernel") and s["kernel"].get("execution_state") == "idle" and s["kernel"].get("connections", 0) >= 1
        ]  # fmt: skip
        if len(ready) == 1 and ready[0] == seen:
            return
        seen = ready[0] if len(ready) == 1 else None
        time.sleep(1.0)
    pytest.fail(f"no idle, connected kernel within {KERNEL_READY_TIMEOUT_S}s: {sessions}")


def _run_all_cells(page, deadline: float) -> None:
    """Run every cell through the menu and wait until each non-empty code cell has an execution count.

    If the notebook stalls (no cell running, some never run) for ``STALL_S``, Run All is clicked again:
    a request lost on a reconnecting websocket must not hang the test for minutes.
    """
    _click_run_all(page, time.monotonic() + KERNEL_READY_TIMEOUT_S)
    last_progress, retries, state, previous = time.monotonic(), 0, None, None
    while time.monotonic() < deadline:
        state = page.evaluate(NOTEBOOK_PROGRESS_JS)
        if state and state["errors"]:
            pytest.fail("the explorer notebook raised in the browser:\n" + "\n".join(state["errors"])[-3000:])
        prompts = state["prompts"] if state else []
        if prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
            return
        if "[*]:" in prompts or prompts != previous:
            last_progress, previous = time.monotonic(), prompts
        elif time.monotonic() - last_progress > STALL_S and retries < 2:
            retries += 1
            _click_run_all(page, time.monotonic() + KERNEL_READY_TIMEOUT_S)
            last_progress = time.monotonic()
        time.sleep(0.5)
    pytest.fail(f"the explorer notebook did not finish within {RUN_ALL_TIMEOUT_S}s: {state}")


def _save(locator, path: Path, update_docs_as: str | None = None) -> None:
    locator.screenshot(path=str(path))
    if update_docs_as and os.environ.get("FLIMEXPLORE_UPDATE_SCREENSHOTS") == "1":
        docs = REPO / "docs" / "img"
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, docs / update_docs_as)


def test_click_marker_shows_its_dice(jupyter_server: str, explorer_url: str, page, artifacts: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError  # here: playwright may be absent

    page.set_default_timeout(30_000)
    page.goto(explorer_url)
    page.wait_for_selector(
        ".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']",
        timeout=KERNEL_READY_TIMEOUT_S * 1000,
    )
    _wait_for_kernel(jupyter_server, time.monotonic() + KERNEL_READY_TIMEOUT_S)

    _run_all_cells(page, time.monotonic() + RUN_ALL_TIMEOUT_S)

    try:
        page.wait_for_function(FIND_MARKER_JS, timeout=CLICK_RESPONSE_TIMEOUT_S * 1000)
    except PlaywrightTimeoutError:
        plots = page.evaluate(PLOTS_JS)
        errors = [m for m in page.console_messages if m.startswith("error")]
        pytest.fail(
            f"no rendered background markers in the .fx-heatmap plot within {CLICK_RESPONSE_TIMEOUT_S}s; "
            f"plots: {plots}; browser errors: {errors[:3]}"
        )
    heatmap = page.locator("[data-fx-test='heatmap']")
    explorer = page.locator("[data-fx-test='explorer']")
    explorer.scroll_into_view_if_needed()
    page.mouse.move(1, 1)
    page.wait_for_timeout(500)  # let Plotly finish its first transition before measuring
    target = page.evaluate(FIND_MARKER_JS)
    assert target is not None
    _save(explorer, artifacts / "explorer-overview.png", "explorer-overview.png")
    page.screenshot(path=str(artifacts / "explorer-page-overview.png"), full_page=True)

    # The detail view's text: its (first) HTML widget, not the numbers of its figure or inputs.
    detail = page.locator(".fx-detail.widget-html, .fx-detail .widget-html").first
    detail.wait_for(state="attached")
    before = detail.inner_text()

    page.mouse.move(target["x"], target["y"])
    hover = heatmap.locator(".hoverlayer .hovertext")
    hover.first.wait_for(state="visible", timeout=5_000)
    hover_text = hover.first.text_content()
    page.mouse.click(target["x"], target["y"])

    deadline = time.monotonic() + CLICK_RESPONSE_TIMEOUT_S
    text, shown = before, None
    while time.monotonic() < deadline:
        text = detail.inner_text()
        shown = shown_dice(text) if text != before else None
        if shown is not None:
            break
        page.wait_for_timeout(200)
    assert shown is not None, (
        f"the detail view showed no Dice within {CLICK_RESPONSE_TIMEOUT_S}s of clicking marker {target['point']} "
        f"(hover {hover_text!r}); before: {before!r}, now: {text!r}"
    )
    assert same_as_displayed(shown, target["dice"]), (
        f"the detail view shows Dice {shown} but the clicked marker {target['point']} of trace "
        f"{target['name']!r} has Dice {target['dice']!r} (hover {hover_text!r}); detail: {text!r}"
    )

    # Let slower parts of the detail (e.g. projections) finish before the picture; not part of the check.
    try:
        page.wait_for_function(
            "() => !/pending|computing/.test(document.querySelector('.fx-explorer')?.textContent || '')",
            timeout=30_000,
        )
    except PlaywrightTimeoutError:
        pass
    _save(explorer, artifacts / "explorer-selected.png", "explorer-selected.png")
    page.screenshot(path=str(artifacts / "explorer-page-selected.png"), full_page=True)
