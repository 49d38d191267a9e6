"""The database goes away and comes back: every route family answers 503 with
Retry-After meanwhile (never a 500) and recovers by itself within 2 s (pool pre-ping).

The test runs its own throw-away PostgreSQL cluster (twin.localdb) on a free port, so
stopping it disturbs nobody."""

from __future__ import annotations

import itertools
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from tests.server.helpers import token_for
from twin import localdb
from twin.db import make_engine
from twin.migrate import upgrade
from twin.settings import Settings

POINT = {"type": "Point", "coordinates": [108.2208, 16.0678]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def own_db(settings: Settings) -> Iterator[Settings]:
    # under /tmp, readable by the postgres user when running as root
    folder = Path(tempfile.mkdtemp(prefix="twin-outage-", dir="/tmp"))
    folder.chmod(0o755)
    s = settings.model_copy(update={"database_url": None, "data_dir": folder,
                                    "db_port": _free_port(), "db_name": "twin"})
    localdb.init_cluster(s)
    localdb.start(s)
    try:
        localdb.ensure_database(s)
        upgrade(s.url())
        yield s
    finally:
        localdb.stop(s)
        shutil.rmtree(localdb.cluster_dir(s), ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_outage_answers_503_and_recovers(own_db: Settings) -> None:
    app = create_app(own_db.model_copy(update={"data_dir": own_db.data_dir / "app"}))
    with TestClient(app, raise_server_exceptions=False) as client:
        engine = make_engine(own_db, pool_size=1)
        staff = token_for(client, engine, "responder")
        engine.dispose()
        tile = itertools.count()  # a fresh tile each time: never one from the cache

        def new_incident() -> httpx.Response:
            return client.post("/incidents", headers=staff, json={
                "category": "flood", "title": "Ngập", "geometry": POINT})

        families: dict[str, Callable[[], httpx.Response]] = {
            "items": lambda: client.get("/collections/buildings/items?limit=2"),
            "tiles": lambda: client.get(
                f"/collections/buildings/tiles/WebMercatorQuad/15/{26156 + next(tile)}/15204"),
            "sensorthings": lambda: client.get("/sta/v1.1/Things"),
            "incidents write": new_incident,
            "incidents read": lambda: client.get("/incidents", headers=staff),
            "search": lambda: client.get("/search", params={"q": "hai chau"}),
            "readyz": lambda: client.get("/readyz"),
        }
        for name, call in families.items():
            r = call()
            assert r.status_code in (200, 201, 204), (name, r.status_code, r.text[:300])

        localdb.stop(own_db)
        for name, call in families.items():
            r = call()
            assert r.status_code == 503, (name, r.status_code, r.text[:300])
            assert r.headers["retry-after"].isdigit(), name
            assert r.headers["x-request-id"], name
            if name != "readyz":
                body = r.json()
                assert body["code"] == "DatabaseUnavailable", (name, body)
                assert body["request_id"] == r.headers["x-request-id"]

        localdb.start(own_db)
        back = time.monotonic()
        pending = dict(families)
        while pending and time.monotonic() - back < 2.0:
            for name, call in list(pending.items()):
                if call().status_code in (200, 201, 204):
                    del pending[name]
        assert not pending, f"still failing 2 s after the database came back: {list(pending)}"
