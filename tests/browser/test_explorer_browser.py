"""End to end in a real browser: JupyterLab + headless Chromium run the explorer notebook, click a
background marker in the heatmap, and check that the detail view shows that marker's Dice.

How the test finds things (see the hooks in ``flimexplore.widgets``):

- the heatmap is the Plotly plot inside the widget with class ``fx-heatmap``;
- the background markers are the ``scatter`` trace of that plot whose markers are coloured by an array of
  numbers (the Dice of each marker, sent from Python); the test clicks the marker farthest from its
  neighbours, at the pixel Plotly's own axes give for it;
- the detail view is the widget with class ``fx-detail``; after the click, the first number after the word
  "Dice" in its HTML text must be that marker's Dice, rounded as displayed.

Then, in the same page (issue 11 C1-C4, issue 8 section 7):

- layout: at 1366x768 with JupyterLab's file browser open, and at 1920x1080, nothing in the explorer
  reaches past its output area, no text or input is cut off, colour-bar titles stay inside their plot,
  and Plotly's toolbar never overlaps a title; before the click, the detail row is a one-line hint;
- stale views: typing another "bg markers" count shows the "settings changed — press Run" banner;
- live results: after Run, the distribution shows some but not all models while the progress label
  still counts ("n / N models");
- resume: Stop, then Run again: the status says the models finished before Stop were kept and only the
  rest were trained;
- advice: the advice toggle rings the best positions; clicking ring 1 trains that position and shows its
  rank among the sampled markers;
- freehand strokes (issue 9): in "draw bg" mode a mouse drag on the image becomes a background scribble,
  drawn pixel by pixel on the heatmap and scored whole (its Dice and rank in the status).

Screenshots go to ``test-artifacts/explorer-*.png``; with ``FLIMEXPLORE_UPDATE_SCREENSHOTS=1`` the
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
VIEWPORT_FULL = {"width": 1700, "height": 1700}

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

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

# Layout problems inside the explorer: elements reaching past its output area, clipped text or inputs,
# colour-bar titles outside their plot, Plotly toolbars overlapping a title, horizontal scrollbars.
LAYOUT_JS = """
() => {
  const ex = document.querySelector('.fx-explorer');
  if (!ex) return null;
  const area = ex.closest('.jp-OutputArea-output') || ex.parentElement;
  const box = area.getBoundingClientRect();
  const name = el => (el.getAttribute('class') || el.tagName).toString().slice(0, 60)
    + (el.textContent ? ' "' + el.textContent.trim().slice(0, 30) + '"' : '');
  const shown = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0
    && getComputedStyle(el).visibility !== 'hidden' && el.closest('[style*="display: none"]') === null; };
  const past = [], clipped = [], colorbars = [], toolbars = [], scrolls = [];
  for (const el of ex.querySelectorAll('*')) {
    if (!shown(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.right > box.right + 1) past.push(name(el) + ' right ' + Math.round(r.right) + ' > ' + Math.round(box.right));
  }
  for (const el of ex.querySelectorAll('.widget-label, label, .widget-html-content, button, .widget-dropdown select')) {
    if (shown(el) && el.scrollWidth > el.clientWidth + 1) clipped.push(name(el) + ' ' + el.scrollWidth + '>' + el.clientWidth);
  }
  for (const gd of ex.querySelectorAll('.js-plotly-plot')) {
    const svg = gd.querySelector('.main-svg');
    if (!svg || !shown(gd)) continue;
    const sb = svg.getBoundingClientRect();
    for (const t of gd.querySelectorAll('.cbtitle text, .colorbar text')) {
      const r = t.getBoundingClientRect();
      if (r.width && (r.left < sb.left - 1 || r.right > sb.right + 1 || r.top < sb.top - 1 || r.bottom > sb.bottom + 1))
        colorbars.push(name(t));
    }
    const bar = gd.querySelector('.modebar');
    const title = gd.querySelector('.gtitle');
    if (bar && title && title.textContent) {
      const a = bar.getBoundingClientRect(), b = title.getBoundingClientRect();
      if (a.width && b.width && a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
        toolbars.push(title.textContent.slice(0, 50));
    }
  }
  for (let el = ex; el && el !== document.body; el = el.parentElement) {
    const s = getComputedStyle(el).overflowX;
    if (el.scrollWidth > el.clientWidth + 1 && s !== 'visible') scrolls.push(name(el));
  }
  return {width: Math.round(box.width), past: past.slice(0, 8), clipped: clipped.slice(0, 8),
          colorbars, toolbars, scrolls: scrolls.slice(0, 5)};
}
"""

# Counts the explorer shows: models in the distribution plot, the progress label, status, buttons.
LIVE_JS = """
() => {
  const gd = document.querySelector('.fx-distribution .js-plotly-plot');
  const trace = gd && gd.data ? gd.data.find(t => t.name === 'markers') : null;
  const text = sel => (document.querySelector(sel)?.textContent || '').trim();
  const button = label => [...document.querySelectorAll('.fx-controls button')].find(b => b.textContent.trim() === label);
  return {points: trace && trace.x ? trace.x.length : 0, progress: text('.fx-progress'),
          status: text('.fx-controls .widget-html:nth-last-of-type(1)'), all: text('.fx-controls'),
          running: !!button('Stop') && !button('Stop').disabled, banner: text('.fx-banner')};
}
"""

# Page position of the advised position number k (0 = best) on the heatmap.
ADVICE_RING_JS = """
(k) => {
  const gd = document.querySelector('[data-fx-test="heatmap"]');
  if (!gd || !gd._fullData) return null;
  const trace = gd._fullData.find(t => t.name === 'advised positions' && t.x && t.x.length > k);
  if (!trace) return null;
  const layout = gd._fullLayout;
  const xa = layout[trace.xaxis.replace('x', 'xaxis')], ya = layout[trace.yaxis.replace('y', 'yaxis')];
  const box = gd.getBoundingClientRect();
  return {x: box.left + xa._offset + xa.c2p(Number(trace.x[k])), y: box.top + ya._offset + ya.c2p(Number(trace.y[k])),
          row: Number(trace.y[k]), col: Number(trace.x[k])};
}
"""

# Page position of image pixel (row, col) on the heatmap, and what the heatmap shows of your strokes.
PIXEL_JS = """
([row, col]) => {
  const gd = document.querySelector('[data-fx-test="heatmap"]');
  if (!gd || !gd._fullLayout) return null;
  const layout = gd._fullLayout, xa = layout.xaxis, ya = layout.yaxis;
  const box = gd.getBoundingClientRect();
  const strokes = gd._fullData.find(t => t.name === 'your bg strokes');
  return {x: box.left + xa._offset + xa.c2p(col), y: box.top + ya._offset + ya.c2p(row), dragmode: layout.dragmode,
          shapes: (layout.shapes || []).length, stroke_pixels: strokes && strokes.x ? strokes.x.length : 0};
}
"""

STATUS = re.compile(r"(\d+) models \((\d+) trained now, (\d+) kept\)")

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
    # C4: until a marker is selected, the detail row is a one-line hint (no empty figure).
    assert "Click a background marker" in before and "\n" not in before.strip(), before
    assert page.locator(".fx-detail .js-plotly-plot").first.is_hidden()

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

    _check_layout_and_flow(page, artifacts)


def _layout_problems(page) -> dict:
    state = page.evaluate(LAYOUT_JS)
    assert state is not None, "no .fx-explorer on the page"
    return {k: v for k, v in state.items() if v and k != "width"}


def _open_file_browser(page) -> None:
    """JupyterLab's left file browser, open (as a newcomer has it)."""
    panel = page.locator("#filebrowser")
    if not panel.is_visible():
        page.locator(".jp-SideBar .lm-TabBar-tab[data-id='filebrowser']").first.click()
    panel.wait_for(state="visible", timeout=10_000)


def _input(page, label: str):
    """The input of the control panel's setting labelled ``label``."""
    row = page.locator(".fx-controls .widget-inline-hbox", has=page.locator("label", has_text=re.compile(f"^{re.escape(label)}$")))
    return row.locator("input").first


def _button(page, label: str):
    return page.locator(".fx-controls button", has_text=re.compile(f"^\\s*{label}\\s*$")).first


def _wait_until(page, predicate, timeout_s: float, what: str) -> dict:
    deadline = time.monotonic() + timeout_s
    state = None
    while time.monotonic() < deadline:
        state = page.evaluate(LIVE_JS)
        if predicate(state):
            return state
        page.wait_for_timeout(100)
    pytest.fail(f"{what} within {timeout_s}s; explorer shows {state}")


def _check_layout_and_flow(page, artifacts: Path) -> None:
    """Issue 11 C1-C4 and the advice click, in the page where the notebook ran (see the module doc)."""
    # C4 layout, at the two sizes a newcomer uses; file browser open at the small one.
    page.set_viewport_size({"width": 1366, "height": 768})
    _open_file_browser(page)
    page.wait_for_timeout(800)
    explorer = page.locator("[data-fx-test='explorer']")
    explorer.scroll_into_view_if_needed()
    problems = _layout_problems(page)
    page.screenshot(path=str(artifacts / "explorer-page-1366.png"))
    assert not problems, f"layout problems at 1366x768 with the file browser open: {problems}"
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.wait_for_timeout(800)
    problems = _layout_problems(page)
    assert not problems, f"layout problems at 1920x1080: {problems}"

    # C1: a changed setting marks the views out of date.
    total = 2 * 20  # the notebook's 2 object markers x the bg markers typed here
    field = _input(page, "bg markers")
    field.fill("20")
    field.press("Enter")
    state = _wait_until(page, lambda s: "settings changed — press Run" in s["banner"], 15, "no out-of-date banner")
    _save(explorer, artifacts / "explorer-stale.png")

    # C2: after Run, finished chunks appear before the study ends.
    _button(page, "Run").click()
    state = _wait_until(  # a chunk of the new study has landed (not the previous study's points)
        page, lambda s: s["running"] and 0 < s["points"] < total and f"/ {total} models" in s["progress"]
        and not s["progress"].startswith("0 /"), 90, "no partial results while the study ran",
    )
    assert state["banner"] == "", f"the banner stayed during the new run: {state}"
    assert re.search(rf"\b\d+ / {total} models", state["progress"]), state

    # C3: Stop keeps the finished models; Run again trains only the rest.
    _button(page, "Stop").click()
    state = _wait_until(page, lambda s: not s["running"] and "stopped" in s["all"], 90, "Stop did not end the study")
    stopped = STATUS.search(state["all"])
    assert stopped, f"no model count in the status after Stop: {state['all']!r}"
    kept_before = int(stopped.group(1))
    assert 0 < kept_before < total and state["points"] == kept_before, state
    _button(page, "Run").click()
    state = _wait_until(page, lambda s: not s["running"] and "complete" in s["all"], 120, "the resumed study did not finish")
    done = STATUS.search(state["all"])
    assert done, f"no model count in the status after the resumed run: {state['all']!r}"
    assert (int(done.group(1)), int(done.group(2)), int(done.group(3))) == (total, total - kept_before, kept_before), (
        f"finished models were retrained: {state['all']!r} (stopped with {kept_before})")
    assert state["points"] == total

    # Issue 8 section 7: the advice layer; a click on ring 1 trains it and ranks it among the sampled markers.
    page.locator(".fx-heatmap button", has_text=re.compile(r"^\s*advice\s*$")).first.click()
    page.wait_for_function(ADVICE_RING_JS, arg=0, timeout=60_000)
    page.mouse.move(1, 1)
    page.wait_for_timeout(300)
    ring = page.evaluate(ADVICE_RING_JS, 0)
    page.mouse.move(ring["x"], ring["y"])
    page.wait_for_timeout(200)
    page.mouse.click(ring["x"], ring["y"])
    # rings overlap where advised positions are neighbours: Plotly gives the click to the nearest ring
    state = _wait_until(page, lambda s: re.search(r"advice #\d+ at \(\d+, \d+\): validation Dice [0-9.]+, rank \d+ of \d+",
                                                  s["all"]) is not None, 60, "clicking an advice ring gave no rank")
    assert re.search(r"advice #\d+ at \((\d+), (\d+)\): validation Dice \d\.\d{3}, rank \d+ of \d+", state["all"]), state["all"]
    page.set_viewport_size(VIEWPORT_FULL)
    page.wait_for_timeout(500)
    _save(explorer, artifacts / "explorer-advice.png", "explorer-advice.png")

    # Issue 9: a freehand background stroke, dragged with the mouse in "draw bg" mode.
    page.locator(".fx-heatmap button", has_text=re.compile(r"^\s*advice\s*$")).first.click()  # advice off
    page.locator(".fx-heatmap button", has_text=re.compile(r"^\s*draw bg\s*$")).first.click()
    page.wait_for_function(f"() => ({PIXEL_JS})([0, 0])?.dragmode === 'drawopenpath'", timeout=30_000)
    path = [page.evaluate(PIXEL_JS, [6, c]) for c in range(6, 31, 4)]  # a corner of water, left to right
    page.mouse.move(path[0]["x"], path[0]["y"])
    page.mouse.down()
    for p in path[1:]:
        page.mouse.move(p["x"], p["y"], steps=4)
    page.mouse.up()
    state = _wait_until(page, lambda s: re.search(r"your markers \(\d+ object and \d+ background pixels, scored whole\): "
                                                  r"Dice \d\.\d{3}, rank \d+ of \d+", s["all"]) is not None,
                        60, "a drawn stroke was not scored")
    shown = page.evaluate(PIXEL_JS, [0, 0])
    assert shown["shapes"] == 0, f"the drawn path stayed on the figure: {shown}"
    assert shown["stroke_pixels"] >= 20, f"the stroke's pixels are not drawn on the heatmap: {shown}"
    _save(explorer, artifacts / "explorer-stroke.png")
