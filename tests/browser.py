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
    ``offline=False``): only these host names resolve, any other fails in Chromium's own resolver; every
    request to another host is recorded in ``log.blocked``.

    Why not ``context.route``: routing hands every request to this Python process, whose sync API serves
    the handler only while the test is inside a playwright call. Twice in CI, under load, JupyterLab's page
    saw a fetch fail ("File Load Error: Failed to fetch", then a "Server Connection Error" dialog that
    covered the menu for good) while the server logged nothing wrong (microsoft/playwright#22338 reports
    the same flakiness from a pass-through route). The resolver rule costs no round trip."""
    from playwright.sync_api import sync_playwright
    from urllib.parse import urlsplit

    log = PageLog()
    args = list(CHROMIUM_ARGS)
    if allow_hosts is not None:
        excluded = ", ".join(f"EXCLUDE {h}" for h in allow_hosts)
        args += ["--no-proxy-server", f"--host-resolver-rules=MAP * ~NOTFOUND, {excluded}"]

    def record(request) -> None:
        log.requests.append(request.url)
        host = urlsplit(request.url).hostname
        if allow_hosts is not None and host and host not in allow_hosts:
            log.blocked.append(request.url)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=args)
        try:
            context = browser.new_context(offline=offline, viewport={"width": width, "height": height})
            page = context.new_page()
            page.on("request", record)
            page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: log.page_errors.append(str(e)))
            page.goto(url, wait_until="load")
            yield page, log
        finally:
            browser.close()
