"""Live delivery through real uvicorn workers (two processes), with replay."""

import json
import queue
import threading
import time

import httpx
import pytest

from tests.server.livesrv import serve
from twin.users import add_user

POINT = {"type": "Point", "coordinates": [108.2199, 16.0601]}


class SSEReader(threading.Thread):
    """Reads one SSE stream into a queue of (id, event, data) in a thread."""

    def __init__(self, url, headers=None):
        super().__init__(daemon=True)
        self.url, self.headers = url, headers or {}
        self.events: queue.Queue = queue.Queue()
        self.stop = False

    def run(self):
        with httpx.stream("GET", self.url, headers=self.headers, timeout=None) as r:
            eid, kind, data = None, None, None
            for line in r.iter_lines():
                if self.stop:
                    return
                if line.startswith("id: "):
                    eid = int(line[4:])
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line == "" and kind:
                    self.events.put((eid, kind, data))
                    eid, kind, data = None, None, None

    def next(self, kind="incident", timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                e = self.events.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if e[1] == kind:
                return e
        raise AssertionError(f"no {kind} event within {timeout}s")


@pytest.fixture(scope="module")
def server(settings, engine):
    with engine.begin() as conn:
        add_user(conn, "live-responder", "password-123", "responder")
    with serve(settings, workers=2) as base:
        tok = httpx.post(
            base + "/auth/token", data={"username": "live-responder", "password": "password-123"}
        )
        yield base, {"Authorization": f"Bearer {tok.json()['access_token']}"}


def _create(base, staff, **extra):
    r = httpx.post(
        base + "/incidents",
        json={
            "category": "fire",
            "title": "Cháy nhà",
            "geometry": POINT,
            "reporter_phone": "0905 777 888",
            **extra,
        },
        headers=staff,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_change_reaches_clients_on_both_workers(server):
    base, staff = server
    readers, workers = [], set()
    for i in range(60):  # the kernel hands connections to whichever worker accepts first
        if i and i % 10 == 0:
            time.sleep(0.5)
        rd = SSEReader(base + "/live", staff)
        rd.start()
        hello = rd.next("hello")
        workers.add(hello[2]["worker"])
        readers.append(rd)
        if len(workers) == 2 and len(readers) >= 4:
            break
    assert len(workers) == 2, "clients did not spread over both workers"
    iid = _create(base, staff)
    for rd in readers:
        eid, _, data = rd.next()
        assert data["feature"]["id"] == iid and data["kind"] == "created"
        assert data["feature"]["properties"]["reporter_phone"] == "0905 777 888"
        rd.stop = True


def test_public_sees_only_verified_public_incidents_without_personal_data(server):
    base, staff = server
    public = SSEReader(base + "/live")
    public.start()
    public.next("hello")
    iid = _create(base, staff)  # reported, not public: nothing for the public
    httpx.patch(f"{base}/incidents/{iid}", json={"public": True}, headers=staff)
    httpx.post(f"{base}/incidents/{iid}/transition", json={"status": "verified"}, headers=staff)
    eid, _, data = public.next()
    assert data["feature"]["id"] == iid and data["feature"]["properties"]["status"] == "verified"
    assert "0905 777 888" not in json.dumps(data)
    assert "reporter_phone" not in data["feature"]["properties"]
    httpx.post(
        f"{base}/incidents/{iid}/transition",
        json={"status": "closed", "reason": "false_alarm"},
        headers=staff,
    )
    _, _, data = public.next()
    assert data == {"kind": "removed", "id": iid}
    public.stop = True


def test_reconnect_with_last_event_id_misses_nothing(server):
    base, staff = server
    rd = SSEReader(base + "/live", staff)
    rd.start()
    rd.next("hello")
    first = _create(base, staff)
    last_id = rd.next()[0]
    rd.stop = True
    missed = [_create(base, staff) for _ in range(3)]
    again = SSEReader(base + "/live", {**staff, "Last-Event-ID": str(last_id)})
    again.start()
    again.next("hello")
    got = [again.next()[2]["feature"]["id"] for _ in range(3)]
    assert got == missed and first not in got
    again.stop = True
