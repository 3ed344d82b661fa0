"""Lesson 01 in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven by Playwright.

Runs the lesson's first cells up to the sign widget, moves the slider with the keyboard, and
checks that the figure re-rendered (its image changed) and that no "Error displaying widget"
appears. A screenshot of the widget after the move goes to $BROWSER_SCREENSHOT when set, else
to pytest's temporary folder. Needs Debian's `chromium` (apt-get install -y chromium) or
$CHROMIUM pointing at a Chromium binary; skips, saying so, when there is none.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "lessons" / "01_binarized_networks.ipynb"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDGET_CELL = "sign_dashboard("  # the first dashboard of lesson 01


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings_dir: Path) -> None:
    """The Binder overrides (binder/overrides.json) as this server's user settings."""
    overrides = json.loads((ROOT / "binder" / "overrides.json").read_text())
    for key, values in overrides.items():
        package, plugin = key.split(":")
        path = settings_dir / package / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _stripped_copy(src: Path, dst: Path) -> None:
    """The lesson without outputs or saved widget state: what the browser shows comes from this run."""
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, dst)


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer at {url} within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on a free port with a token, private config/runtime/settings dirs."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium, or set $CHROMIUM")
    work = tmp_path / "lessons"
    work.mkdir()
    _stripped_copy(LESSON, work / LESSON.name)
    settings = tmp_path / "lab-settings"
    _write_settings(settings)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, LESSONS_FAST="1", JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    env.pop("MPLBACKEND", None)  # the kernel must use the inline backend
    log = tmp_path / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.open_browser=False",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=work)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_server(f"{base}/api/status?token={token}", proc, log)
        yield {"base": base, "token": token, "notebook": LESSON.name, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _settled_src(page, image, quiet: float = 3.0, timeout: float = 90.0) -> str:
    """The image's src once the kernel is idle and the src has not changed for `quiet` seconds."""
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    while time.monotonic() < deadline:
        src = image.get_attribute("src")
        if src != last:
            last, since = src, time.monotonic()
        elif time.monotonic() - since >= quiet and idle.count():
            return src
        time.sleep(0.25)
    raise AssertionError(f"the figure kept changing (or the kernel stayed busy) for {timeout} s")


def test_lesson01_sign_widget_in_chromium(jupyterlab, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shot = Path(os.environ.get("BROWSER_SCREENSHOT") or tmp_path / "lesson01_sign_widget.png")
    url = f"{jupyterlab['base']}/lab/tree/{jupyterlab['notebook']}?token={jupyterlab['token']}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(90_000)
            page.goto(url)
            # the notebook is open and its kernel idle
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
                1, timeout=120_000)

            # run from the first code cell down to the widget cell, as a student would: Shift+Enter
            cells = page.locator(".jp-Notebook .jp-Cell")
            widget_cell = cells.filter(has_text=WIDGET_CELL).first
            widget_cell.wait_for()  # rendered (the notebook attaches cells progressively)
            widget_index = [i for i in range(cells.count())
                            if WIDGET_CELL in cells.nth(i).inner_text()][0]
            first_code = page.locator(".jp-Notebook .jp-CodeCell").first
            first_code.locator(".jp-InputArea-editor").click()
            page.keyboard.press("Escape")  # command mode
            start = [i for i in range(cells.count())
                     if "jp-CodeCell" in (cells.nth(i).get_attribute("class") or "")][0]
            for _ in range(widget_index - start + 1):
                page.keyboard.press("Shift+Enter")

            slider = widget_cell.locator(".widget-slider .noUi-handle")
            slider.wait_for(timeout=180_000)
            image = widget_cell.locator(".widget-output img").first
            image.wait_for(timeout=120_000)
            readout = widget_cell.locator(".widget-readout").first
            before_value, before_src = readout.inner_text(), image.get_attribute("src")

            # move the slider with the keyboard: focus its handle, 20 steps of 0.05 to the right;
            # each step re-runs the callback, so wait until the last figure has arrived
            slider.focus()
            for _ in range(20):
                page.keyboard.press("ArrowRight")
            page.wait_for_function(
                "([sel, old]) => [...document.querySelectorAll(sel)].some(e => e.src && e.src !== old)",
                arg=[".jp-Notebook .widget-output img", before_src], timeout=60_000)
            after_src = _settled_src(page, image)
            after_value = readout.inner_text()
            widget_cell.scroll_into_view_if_needed()
            shot.parent.mkdir(parents=True, exist_ok=True)
            widget_cell.screenshot(path=str(shot))
            print(f"screenshot of the widget after the slider moved: {shot}")

            assert (before_value.strip(), after_value.strip()) == ("0.50", "1.50")
            assert after_src and after_src != before_src, "the figure did not re-render"
            assert after_src.startswith("data:image/png")
            assert "Error displaying widget" not in page.content()
        finally:
            browser.close()
