"""Headless Chromium (Debian's ``chromium`` package) driven by Playwright, for the catalog tests.

Playwright never downloads a browser here: it launches the system's chromium by path. Every
page opened records JavaScript errors, console errors and responses >= 400, so a test can
assert the browser saw none.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page, Response, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Without these, Chromium tries to reach Google's services at start, which a closed network
# refuses or times out.
QUIET = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
)


@dataclass
class BrowserProblems:
    """What went wrong in the browser while a test drove it."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"JavaScript error: {error}"))
        page.on("console", self._console)
        page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console error: {message.text} ({message.location})")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status} for {response.url}")


def chromium_path() -> Path:
    """The system chromium; ``make tools`` installs it (apt package ``chromium``)."""
    found = CHROMIUM if CHROMIUM.exists() else None
    found = found or (Path(p) if (p := shutil.which("chromium")) else None)
    assert found is not None, (
        "chromium is not installed: run `make tools` (apt-get install chromium)"
    )
    return found


@contextmanager
def browser_page(
    width: int = 1400, height: int = 1000, *, java_script: bool = True
) -> Iterator[tuple[Page, BrowserProblems]]:
    """A fresh page of a fresh headless Chromium, with its problems recorded."""
    problems = BrowserProblems()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_path()), headless=True, args=list(QUIET)
        )
        try:
            context = browser.new_context(
                viewport={"width": width, "height": height}, java_script_enabled=java_script
            )
            page = context.new_page()
            problems.watch(page)
            yield page, problems
        finally:
            browser.close()
