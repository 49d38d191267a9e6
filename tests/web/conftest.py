"""Browser-test fixtures: a live server over a small city, and headless Chromium.

The server runs ``create_app`` under uvicorn in a thread on a free port, over its own
database (the hand-made Hải Châu of ``tests/web/city.py``) so pixels and counts do not
depend on what other tests write. Every page visit records console errors, page errors
and every request URL; :meth:`Visit.check` asserts none left the machine.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.web.city import insert_city
from twin import localdb
from twin.db import make_engine
from twin.migrate import upgrade
from twin.settings import Settings
from web.screenshot import CHROMIUM, launch, wait_idle

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "tests" / "artifacts" / "screenshots"
VENDOR = ROOT / "web" / "static" / "vendor"
PLANNER = ("lan", "planner-pass-1")
CITIZEN = ("dan", "citizen-pass-1")


@pytest.fixture(scope="session")
def web_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A fresh migrated database holding the test city and two users."""
    from twin.users import add_user

    base = Settings()
    if base.managed:
        localdb.init_cluster(base)
        localdb.start(base)
    name = f"twin_web_{uuid.uuid4().hex[:8]}"
    localdb.ensure_database(base, name)
    try:
        upgrade(base.url(name))
        s = Settings(database_url=base.url(name), data_dir=tmp_path_factory.mktemp("twin-web"))
        engine = make_engine(s, pool_size=1)
        with engine.begin() as conn:
            insert_city(conn)
            add_user(conn, *PLANNER, "planner")
            add_user(conn, *CITIZEN, "citizen")
        engine.dispose()
        yield s
    finally:
        localdb.drop_database(base, name)


@pytest.fixture(scope="session")
def web_engine(web_settings: Settings) -> Iterator[Any]:
    eng = make_engine(web_settings, pool_size=2)
    yield eng
    eng.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(web_settings: Settings) -> Iterator[str]:
    """Base URL of the app served by uvicorn in a background thread."""
    import uvicorn

    from server.app import create_app

    if not (VENDOR / "deckgl-bundle.js").exists():
        pytest.fail("viewer assets missing: run `make web-assets`")
    port = _free_port()
    config = uvicorn.Config(create_app(web_settings), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the live server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


#: the feature of a layer can be picked at a point of the map (its tiles are drawn)
PICKABLE = """([x, y, id]) => Twin.viewer.deck.pickMultipleObjects({x, y, radius: 6, depth: 12})
  .some((h) => { const f = Twin.viewer.featureOf(h); return f && f.layer.id === id; })"""


@dataclass
class Visit:
    """A browser page on the live server, with what it logged and requested."""

    page: Any
    base: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    #: answers with a 4xx/5xx status (to name the resource a console error is about)
    failed: list[str] = field(default_factory=list)

    def goto(self, path: str, idle: bool = True) -> None:
        self.page.goto(self.base + path)
        if idle:
            self.idle()

    def idle(self) -> None:
        wait_idle(self.page)

    def click_map(self, lon: float, lat: float, layer: str, then: str) -> None:
        """Click the map where ``layer`` is drawn at (lon, lat), and wait for ``then``.

        The click waits until the feature can be picked there (its tiles drawn), and is
        sent again, at most twice more, if the page shows no sign of it (``then``, a
        selector) within 5 s: under a loaded machine a synthetic click can be lost
        between the browser's input queue and the page.
        """
        x, y = self.project(lon, lat)
        self.page.wait_for_function(PICKABLE, arg=[x, y, layer], timeout=30_000)
        for attempt in range(3):
            self.page.mouse.click(x, y)
            try:
                self.page.wait_for_selector(then, timeout=5_000 if attempt < 2 else 30_000)
                return
            except Exception:  # noqa: BLE001 - the last attempt raises
                if attempt == 2:
                    raise

    def view(self) -> dict[str, float]:
        return self.page.evaluate("twinViewer.getViewState()")  # type: ignore[no-any-return]

    def project(self, lon: float, lat: float) -> tuple[float, float]:
        x, y = self.page.evaluate("(p) => twinViewer.project(p)", [lon, lat])[:2]
        return float(x), float(y)

    def shot(self, name: str) -> bytes:
        SHOTS.mkdir(parents=True, exist_ok=True)
        return self.page.screenshot(path=str(SHOTS / f"{name}.png"))  # type: ignore[no-any-return]

    def sign_in(self, user: tuple[str, str], next_path: str) -> None:
        self.page.goto(f"{self.base}/signin?next={next_path}")
        self.page.fill("#username", user[0])
        self.page.fill("#password", user[1])
        self.page.click("form#signin-form button[type=submit]")
        self.page.wait_for_url(f"**{next_path.split('#')[0]}**")

    def check(self) -> None:
        """No console or page errors; no request to any other host."""
        assert not self.errors, ("errors in the browser:\n" + "\n".join(self.errors)
                                 + "\nfailed requests:\n" + "\n".join(self.failed))
        away = [u for u in self.requests
                if not (u.startswith(self.base + "/") or u.startswith(("blob:", "data:")))]
        assert not away, f"requests left the machine: {away}"


@pytest.fixture(scope="session")
def browser_context(browser: Any) -> Iterator[Any]:
    """One context for all tests: its HTTP cache keeps deck.gl's 4 MB bundle warm."""
    ctx = browser.new_context(viewport={"width": 1024, "height": 700}, accept_downloads=True)
    yield ctx
    ctx.close()


@pytest.fixture()
def visit(browser_context: Any, live_server: str) -> Iterator[Visit]:
    page = browser_context.new_page()
    page.goto(live_server + "/static/favicon.svg")
    page.evaluate("localStorage.clear()")  # signed out, Vietnamese: a new visitor
    v = Visit(page, live_server)
    page.on("console", lambda m: v.errors.append(
        f"console.{m.type}: {m.text} ({(m.location or {}).get('url', '')})")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: v.errors.append(f"page error: {e}"))
    page.on("request", lambda r: v.requests.append(r.url))
    page.on("response",
            lambda r: v.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        yield v
    finally:
        page.close()


def _watch(page: Any, base: str) -> Visit:
    v = Visit(page, base)
    page.on("console", lambda m: v.errors.append(
        f"console.{m.type}: {m.text} ({(m.location or {}).get('url', '')})")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: v.errors.append(f"page error: {e}"))
    page.on("request", lambda r: v.requests.append(r.url))
    page.on("response",
            lambda r: v.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return v


@pytest.fixture()
def device(browser: Any, live_server: str) -> Iterator[Any]:
    """``device(width, height, phone=True)`` → a Visit in a fresh context of that size
    (a phone: touch, mobile viewport; geolocation granted at the test city's centre)."""
    contexts: list[Any] = []

    def make(width: int, height: int, phone: bool = True) -> Visit:
        ctx = browser.new_context(
            viewport={"width": width, "height": height}, is_mobile=phone, has_touch=phone,
            device_scale_factor=1, permissions=["geolocation"],
            geolocation={"longitude": 108.2125, "latitude": 16.0625})
        contexts.append(ctx)
        return _watch(ctx.new_page(), live_server)

    yield make
    for ctx in contexts:
        ctx.close()


def count(engine: Any, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())
