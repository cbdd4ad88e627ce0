"""Headless Chromium for tests: Debian's /usr/bin/chromium driven by playwright (never a downloaded
browser), with the flags this sandbox needs and every request and console message recorded."""
from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Debian's chromium is not installed: `apt-get install chromium` (scripts/setup.sh test does)")
    return path


@dataclass
class PageLog:
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


@contextlib.contextmanager
def open_page(url: str, *, offline: bool = True, width: int = 1300, height: int = 1000,
              allow_hosts: tuple[str, ...] | None = None):
    """Yield (page, log) for ``url`` in a fresh headless Chromium context. ``allow_hosts`` (with
    ``offline=False``): only requests to these host names go out, every other one is aborted and
    recorded in ``log.blocked``."""
    from playwright.sync_api import sync_playwright

    log = PageLog()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=offline, viewport={"width": width, "height": height})
            if allow_hosts is not None:
                from urllib.parse import urlsplit

                def gate(route):
                    if urlsplit(route.request.url).hostname in allow_hosts:
                        route.continue_()
                    else:
                        log.blocked.append(route.request.url)
                        route.abort()
                context.route("**/*", gate)
            page = context.new_page()
            page.on("request", lambda r: log.requests.append(r.url))
            page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: log.page_errors.append(str(e)))
            page.goto(url, wait_until="load")
            yield page, log
        finally:
            browser.close()
