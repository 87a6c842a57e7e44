"""Driving the web console in a real browser: Debian's chromium (never a downloaded one) through
Playwright, with every console message and page error of a page collected so that a test can
assert there were none. Used by the console's tests and by scripts/console_screenshots.py.

Playwright's sync API runs an event loop in the calling thread, where `asyncio.run` (the
harness's database helpers) then refuses to run: `in_thread` runs such a helper in a thread of
its own."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def chromium_missing_reason() -> str | None:
    """Why the browser tests cannot run here (None: they can). Under CI they must run."""
    if CHROMIUM.exists():
        return None
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing under CI: apt-get install -y chromium")
    return f"{CHROMIUM} is missing (apt-get install chromium)"


def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` in another thread (no event loop running there), its result."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Tab:
    """A page of its own browser context (its own sessionStorage), and what it reported."""

    page: Page
    context: BrowserContext
    root: str
    problems: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def open(self, route: str = "") -> Page:
        self.page.goto(f"{self.root}/console" + (f"#/{route}" if route else ""))
        return self.page

    def sign_in(self, key: str) -> Page:
        page = self.open()
        page.get_by_test_id("login-key").fill(key)
        page.get_by_test_id("login-submit").click()
        page.get_by_test_id("whoami").wait_for()
        return page

    def close(self) -> None:
        self.context.close()


def new_tab(browser: Browser, root: str, viewport: dict[str, int] | None = None) -> Tab:
    context = browser.new_context(viewport=viewport or DESKTOP, base_url=root)
    page = context.new_page()
    tab = Tab(page, context, root)

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            tab.problems.append(f"console {message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: tab.problems.append(f"page error: {exc}"))
    page.on("request", lambda r: tab.urls.append(r.url))
    page.on("framenavigated", lambda f: tab.urls.append(f.url))
    return tab
