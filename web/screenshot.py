"""Screenshot a viewer page in headless Chromium once its tiles have loaded.

Used by the browser tests and to refresh ``docs/screenshot.png`` against a running
server::

    python -m web.screenshot "http://127.0.0.1:8000/#15.6/16.0685/108.223/25/55" \
        docs/screenshot.png

Playwright (a development dependency) drives the system Chromium with SwiftShader
WebGL; ``playwright install`` is never needed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
#: ``--use-gl=swiftshader`` breaks WebGL in current Chromium; ANGLE's SwiftShader works.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]
IDLE = "window.twinViewer && window.twinViewer.idle()"


def launch(playwright: Any) -> Any:
    """The system Chromium, headless, with software WebGL."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def wait_idle(page: Any, timeout_ms: int = 60_000) -> None:
    """Wait until every visible tile is loaded and drawn, and no transition runs."""
    page.wait_for_function(IDLE, timeout=timeout_ms, polling=200)
    page.wait_for_timeout(150)  # one more frame on the canvas
    page.wait_for_function(IDLE, timeout=timeout_ms, polling=100)


def shoot(url: str, out: Path, width: int = 1400, height: int = 860,
          storage: dict[str, str] | None = None, settle_ms: int = 0) -> Path:
    """Open ``url``, wait for the map, save a PNG to ``out``."""
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            if storage:
                origin = url.split("/", 3)[:3]
                page.goto("/".join(origin) + "/signin")
                for k, v in storage.items():
                    page.evaluate("([k, v]) => localStorage.setItem(k, v)", [k, v])
            page.goto(url)
            wait_idle(page)
            if settle_ms:
                page.wait_for_timeout(settle_ms)
                wait_idle(page)
            page.screenshot(path=str(out))
        finally:
            browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("out", type=Path)
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=860)
    ap.add_argument("--lang", choices=["vi", "en"], default=None)
    ap.add_argument("--settle", type=float, default=0, help="seconds to wait once loaded")
    a = ap.parse_args()
    storage = {"twin.lang": a.lang} if a.lang else None
    print(shoot(a.url, a.out, a.width, a.height, storage, int(a.settle * 1000)))


if __name__ == "__main__":
    main()
