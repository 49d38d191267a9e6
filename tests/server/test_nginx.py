"""Debian's nginx in front of a real `twin serve`, configured by `twin deploy nginx`:
public tiles cached and revalidated with our ETags, credentials passed through uncached,
/live streamed."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.nginx import write
from tests.layers.test_mvt import build_area, drop_area, tile_at
from tests.server.helpers import token_for
from tests.server.livesrv import free_port, serve

HERE = (108.74, 15.52)
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture(scope="module")
def front(settings, engine, tmp_path_factory) -> Iterator[tuple[str, str]]:  # noqa: ANN001
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed (twin/system.py installs Debian's nginx)")
    build_area(engine, *HERE)
    prefix = tmp_path_factory.mktemp("nginx")
    with serve(settings) as base:
        port = free_port()
        conf = write([base.removeprefix("http://")], listen=f"127.0.0.1:{port}", prefix=prefix)
        check = subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", str(conf)],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        proc = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf),
                                 "-g", "daemon off;"], stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("nginx did not start: " + (proc.stderr.read().decode()
                                                       if proc.stderr else ""))
            time.sleep(0.1)
        try:
            yield url, base
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    drop_area(engine)


def test_public_tiles_are_cached_and_revalidated(front) -> None:  # noqa: ANN001
    url, _ = front
    t = tile_at(*HERE, 15)
    path = f"/collections/buildings/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
    first = httpx.get(url + path)
    second = httpx.get(url + path)
    assert first.status_code == second.status_code == 200
    assert first.headers["x-cache-status"] in ("MISS", "EXPIRED")
    assert second.headers["x-cache-status"] == "HIT"
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
    # a client revalidating against the cache gets a 304 from nginx
    again = httpx.get(url + path, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


def test_credentials_pass_through_uncached(front, engine) -> None:  # noqa: ANN001
    url, base = front
    with httpx.Client(base_url=base) as direct:
        auth = token_for(direct, engine, "responder")  # type: ignore[arg-type]
    t = tile_at(*HERE, 15)
    path = f"/collections/water_network/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
    assert httpx.get(url + path).status_code == 404  # a staff layer, anonymous
    for _ in range(2):
        r = httpx.get(url + path, headers=auth)
        assert r.status_code in (200, 204)
        assert r.headers["x-cache-status"] == "BYPASS"
    assert httpx.get(url + path).status_code == 404  # nothing leaked into the cache


def test_live_streams_through_nginx(front) -> None:  # noqa: ANN001
    url, _ = front
    with httpx.stream("GET", url + "/live", timeout=httpx.Timeout(20.0)) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert "x-cache-status" not in r.headers
        first = next(r.iter_bytes())
        assert first  # the stream's opening bytes arrive at once, not when it ends
