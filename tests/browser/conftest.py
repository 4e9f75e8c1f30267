"""Fixtures for the real-browser test: a throw-away JupyterLab server and a headless Chromium page.

The server runs on 127.0.0.1 without a token, with fresh Jupyter/IPython/lab-settings directories
under pytest's tmp dir, serving a temporary copy of ``notebooks/``. The browser is Debian's
``/usr/bin/chromium`` driven by Python Playwright (Playwright's own browser download does not work on
our machines). Without Chromium or Playwright the tests are skipped, unless
``FLIMEXPLORE_REQUIRE_BROWSER=1`` is set (CI sets it), in which case they fail.
``FLIMEXPLORE_BROWSER_NOTEBOOKS=DIR`` serves another folder instead of ``notebooks/`` (for debugging
the harness against a modified copy of the explorer notebook).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# Flags known to work for headless Chromium on these machines (closed network, running as root).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXPLORER_NOTEBOOK = "04_explorer.ipynb"
VIEWPORT = {"width": 1700, "height": 1700}  # tall enough for the whole explorer in one screenshot
SERVER_START_TIMEOUT_S = 60

# JupyterLab user settings: no news/update toasts, no "Select Kernel" dialog, every cell kept in the DOM.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
}


def _unavailable(reason: str) -> None:
    """Skip, or fail when the environment says the browser test must run."""
    if os.environ.get("FLIMEXPLORE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (FLIMEXPLORE_REQUIRE_BROWSER=1; run `bash .ci/install-browser.sh`)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str, method: str = "GET", timeout: float = 5.0):
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium, or skip/fail with the reason."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Python playwright is not installed (pip install playwright)")
    return CHROMIUM


@pytest.fixture
def notebook_dir(tmp_path: Path) -> Path:
    """A temporary copy of ``notebooks/`` so that the server never writes into the repository."""
    source = Path(os.environ.get("FLIMEXPLORE_BROWSER_NOTEBOOKS", REPO / "notebooks"))
    if not (source / EXPLORER_NOTEBOOK).exists():
        _unavailable(f"{source / EXPLORER_NOTEBOOK} does not exist")
    target = tmp_path / "notebooks"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return target


@pytest.fixture
def jupyter_server(chromium_path: Path, notebook_dir: Path, tmp_path: Path) -> Iterator[str]:
    """Start ``jupyter lab`` on a free loopback port; yield its base URL; stop it and its kernels."""
    import psutil

    home = tmp_path / "jupyter"
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "lab-workspaces"),
        JUPYTER_PLATFORM_DIRS="1",
        TQDM_DISABLE="1",
        MPLBACKEND="Agg",
        PYTHONUNBUFFERED="1",
    )
    for name, settings in LAB_SETTINGS.items():
        path = home / "lab-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "jupyter-server.log"
    command = [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",
        "--LabApp.extension_manager=readonly",
        f"--ServerApp.root_dir={notebook_dir}",
    ]  # fmt: skip
    if os.geteuid() == 0:  # CI containers and our dev machines run as root
        command.append("--allow-root")
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=notebook_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-4000:]

    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited with {server.returncode}:\n{log_tail()}")
            try:
                _get_json(f"{base}/api/status", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"jupyter lab did not answer /api/status in {SERVER_START_TIMEOUT_S}s:\n{log_tail()}"
                    )
                time.sleep(0.25)
        yield base
    finally:
        _stop_server(server, base, psutil)
        shutil.copy(log_path, _artifacts() / "jupyter-server.log")


@pytest.fixture
def explorer_url(jupyter_server: str) -> str:
    """JupyterLab's URL that opens the explorer notebook."""
    return f"{jupyter_server}/lab/tree/{EXPLORER_NOTEBOOK}"


def _stop_server(server: subprocess.Popen, base: str, psutil) -> None:
    """Shut kernels down through the API, stop the server, then kill anything it left behind."""
    try:
        descendants = psutil.Process(server.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    if server.poll() is None:
        try:
            for kernel in _get_json(f"{base}/api/kernels") or []:
                _get_json(f"{base}/api/kernels/{kernel['id']}", method="DELETE", timeout=10)
        except (OSError, ValueError):
            pass
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
    for process in descendants:  # kernels run in their own sessions, so killpg does not reach them
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(descendants, timeout=10)


def _artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def artifacts() -> Path:
    """``test-artifacts/`` at the repository root (gitignored)."""
    return _artifacts()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item so that fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(request: pytest.FixtureRequest, chromium_path: Path, tmp_path: Path, artifacts: Path):
    """A Playwright page in headless Debian Chromium with a fresh profile.

    On failure the page is saved to ``test-artifacts/<test name>-failure.png`` and the browser console to
    ``<test name>-console.txt``.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "chromium-profile"),
            executable_path=str(chromium_path),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=VIEWPORT,
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.console_messages = []  # type: ignore[attr-defined]
            page.on("console", lambda msg: page.console_messages.append(f"{msg.type}: {msg.text}"))
            yield page
            report = getattr(request.node, "report_call", None)
            if report is None or report.failed:
                stem = artifacts / f"{request.node.name}-failure"
                page.screenshot(path=str(stem) + ".png", full_page=True)
                (artifacts / f"{request.node.name}-console.txt").write_text("\n".join(page.console_messages))
        finally:
            context.close()
