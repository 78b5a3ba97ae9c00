"""Browser fixtures: a real Streamlit server on a free port, and Debian's chromium via Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.factories import TEST_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# flags the closed network needs: no background fetches, no first-run, no sandbox as root
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def streamlit_server(db_url: str, data_dir: Path, tmp_path: Path):
    """Serve streamlit_app.py against the test's store; yields the base URL."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "MEDFILIP_DATA_DIR": str(data_dir)}
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
         "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{base}/_stcore/health", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not start: {(tmp_path / 'streamlit.log').read_text()[-2000:]}")
    yield base
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture
def page():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("MEDFILIP_REQUIRE_BROWSER"):
            pytest.fail(f"chromium not found at {CHROMIUM}")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


def wait_idle(page, timeout_ms: int = 30_000) -> None:
    """Wait until no script run is in flight (a click during a rerun can be dropped)."""
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=timeout_ms)


_COPIES = """sel => Array.from(document.querySelectorAll(sel))
    .map(e => ({enabled: !e.disabled, visible: e.offsetParent !== null}))"""


def settled(page, key: str, inner: str = "button", timeout_s: float = 30):
    """The widget keyed ``key`` once the page is quiet: one visible, enabled copy. A rerun
    that shifts elements (a message above them) briefly shows a stale copy next to the new one."""
    selector = f".st-key-{key} {inner}"
    deadline = time.monotonic() + timeout_s
    copies: list = []
    while time.monotonic() < deadline:
        wait_idle(page)
        copies = page.evaluate(_COPIES, selector)
        if copies == [{"enabled": True, "visible": True}]:
            page.wait_for_timeout(200)
            if len(page.evaluate(_COPIES, selector)) == 1:
                return page.locator(selector)
        page.wait_for_timeout(200)
    raise AssertionError(f"widget {key!r} never settled: {copies}")


def sign_in(page, base: str, name: str) -> None:
    page.goto(base, wait_until="domcontentloaded")
    settled(page, "login_name", "input").fill(name)
    settled(page, "login_password", "input").fill(TEST_PASSWORD)
    settled(page, "login").click()
    page.get_by_text(f"Signed in as {name}").wait_for(timeout=30_000)
    wait_idle(page)
    deadline = time.monotonic() + 20  # the session cookie is written by the next render
    while not any(c["name"] == "medfilip_session" and c["value"]
                  for c in page.context.cookies()):
        assert time.monotonic() < deadline, "the session cookie was never set"
        page.wait_for_timeout(200)
