"""Headless Chromium from Debian's package, driven by Playwright (no browser is ever downloaded).

`scripts/bootstrap` installs the `chromium` package. Without it the browser tests skip, with the
reason, except under CI=true, where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_chromium() -> str:
    """The browser's path; skips (outside CI) or fails (in CI) when it is not installed."""
    path = chromium_path()
    if path is None:
        message = "Debian's chromium is not installed (scripts/bootstrap installs it as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": the browser tests must run in CI")
        pytest.skip(message)
    return path


@contextmanager
def chromium() -> Iterator[object]:
    """A launched Playwright `Browser` (typed loosely: Playwright is a dev dependency)."""
    path = require_chromium()
    # Never let Playwright look for, or fetch, a browser build of its own.
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def shot(page: Any, name: str) -> None:
    """Save a full-page screenshot as docs/screenshots/NAME.png (committed, shown in the docs)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page: Any, url: str, name: str, password: str) -> None:
    """Open the console, get sent to the login page, log in, land on the code envs list."""
    page.goto(url + "/")
    assert "/login" in page.url
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
