"""Write paths are rate-limited: failed sign-ins per user name and address, and every
other write per caller (a token's user, a verified gateway, else the address), counted
in the database so that every worker shares the count."""

from __future__ import annotations

import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import text

from server.app import create_app
from tests.server.helpers import token_for
from tests.server.livesrv import serve
from twin.sensors import gateways
from twin.users import add_user

POINT = {"type": "Point", "coordinates": [108.2208, 16.0680]}


def _retry_after(r: httpx.Response) -> int:
    value = int(r.headers["retry-after"])
    assert 1 <= value <= 60, value
    return value


def test_password_guessing_is_stopped(settings, engine):
    app = create_app(settings.model_copy(update={"login_failures_per_minute": 3}))
    name = f"victim-{uuid.uuid4().hex[:6]}"
    with engine.begin() as conn:
        add_user(conn, name, "the-right-password", "responder")
    with TestClient(app) as client:
        def sign_in(user: str, password: str) -> int:
            return client.post("/auth/token",
                               data={"username": user, "password": password}).status_code

        assert [sign_in(name, f"guess-{i}") for i in range(3)] == [401, 401, 401]
        r = client.post("/auth/token", data={"username": name, "password": "the-right-password"})
        assert r.status_code == 429
        _retry_after(r)
        assert "failed sign-ins" in r.json()["description"]
        # another user from the same address is not locked out by them
        other = f"other-{uuid.uuid4().hex[:6]}"
        with engine.begin() as conn:
            add_user(conn, other, "password-123", "planner")
        assert sign_in(other, "password-123") == 200


def test_writes_per_client_are_limited(settings, engine):
    app = create_app(settings.model_copy(update={"writes_per_minute": 4}))
    with TestClient(app) as client:
        staff = token_for(client, engine, "responder")
        other = token_for(client, engine, "responder")

        def report(headers: dict[str, str]) -> int:
            return client.post("/incidents", headers=headers, json={
                "category": "fallen_tree", "geometry": POINT}).status_code

        assert [report(staff) for _ in range(4)] == [201] * 4
        r = client.post("/incidents", headers=staff, json={"category": "fire", "geometry": POINT})
        assert r.status_code == 429
        _retry_after(r)
        assert "writes a minute" in r.json()["description"]
        assert r.json()["request_id"] == r.headers["x-request-id"]  # the one error contract
        assert client.get("/incidents", headers=staff).status_code == 200  # reads pass
        assert report(other) == 201  # another client has its own budget


def test_unverified_headers_do_not_open_a_new_budget(settings, engine):
    """A fresh random X-Api-Key or a made-up bearer token per request counts against
    the caller's address; a gateway whose key verified has its own budget."""
    app = create_app(settings.model_copy(update={"writes_per_minute": 3}))
    with engine.begin() as conn:
        _, key = gateways.add(conn, f"gw-{uuid.uuid4().hex[:6]}")
    with TestClient(app) as client:
        def post(headers: dict[str, str]) -> int:
            return client.post("/incidents", headers=headers, json={
                "category": "fallen_tree", "geometry": POINT}).status_code

        codes = [post({"X-Api-Key": "twk_" + secrets.token_urlsafe(32)}) for _ in range(3)]
        assert codes == [401] * 3  # refused, and counted against the address
        assert post({"X-Api-Key": "twk_" + secrets.token_urlsafe(32)}) == 429
        assert post({"Authorization": "Bearer " + secrets.token_urlsafe(40)}) == 429
        assert post({}) == 429
        # a real gateway key is who it says: its writes have their own budget
        r = client.post("/sta/v1.1/Things", headers={"X-Api-Key": key},
                        json={"name": "probe", "description": "rate-limit test"})
        assert r.status_code == 201, r.text


def test_no_limit_when_switched_off(settings, engine):
    app = create_app(settings.model_copy(update={"writes_per_minute": 0}))
    with TestClient(app) as client:
        staff = token_for(client, engine, "responder")
        codes = {client.post("/incidents", headers=staff, json={
            "category": "fallen_tree", "geometry": POINT}).status_code for _ in range(6)}
        assert codes == {201}


def test_limits_hold_across_two_workers(settings, engine):
    """One count for all workers: N writes pass, the next is refused whichever worker
    takes it, and so are failed sign-ins."""
    name = f"two-{uuid.uuid4().hex[:6]}"
    with engine.begin() as conn:
        add_user(conn, name, "password-123", "responder")
    with serve(settings, workers=2, TWIN_WRITES_PER_MINUTE="6",
               TWIN_LOGIN_FAILURES_PER_MINUTE="2") as base:
        r = httpx.post(base + "/auth/token", data={"username": name, "password": "password-123"})
        assert r.status_code == 200, r.text
        staff = {"Authorization": "Bearer " + r.json()["access_token"]}

        def worker_pid(_: int) -> int:
            with httpx.stream("GET", base + "/live", timeout=10) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:") and '"worker"' in line:
                        return int(line.split('"worker":')[1].strip(" }"))
            raise AssertionError("no hello event")

        pids: set[int] = set()
        with ThreadPoolExecutor(8) as pool:
            for _ in range(10):  # both workers answer (bounded: 80 connections)
                pids |= set(pool.map(worker_pid, range(8)))
                if len(pids) == 2:
                    break
        assert len(pids) == 2, pids

        def write(_: int) -> int:  # a fresh connection each: any worker may take it
            return httpx.post(base + "/incidents", headers=staff, timeout=30, json={
                "category": "fallen_tree", "geometry": POINT}).status_code

        with ThreadPoolExecutor(4) as pool:
            codes = sorted(pool.map(write, range(9)))
        assert codes == [201] * 6 + [429] * 3, codes
        with engine.connect() as conn:
            counted = conn.execute(text("SELECT hits + prev FROM rate_limit WHERE bucket = :b"),
                                   {"b": f"writes/6:u:{name}"}).scalar_one()
        assert counted == 6  # in this window and the last: refused writes are not counted

        def forged(_: int) -> int:  # a new made-up gateway key each time: the address counts
            return httpx.post(base + "/incidents", timeout=30,
                              headers={"X-Api-Key": "twk_" + secrets.token_urlsafe(32)},
                              json={"category": "fallen_tree", "geometry": POINT}).status_code

        with ThreadPoolExecutor(4) as pool:
            codes = sorted(pool.map(forged, range(9)))
        assert codes == [401] * 6 + [429] * 3, codes

        def guess(i: int) -> int:
            return httpx.post(base + "/auth/token", timeout=30, data={
                "username": name, "password": f"guess-{i}"}).status_code

        assert [guess(i) for i in range(2)] == [401, 401]
        assert {guess(i) for i in range(2, 6)} == {429}
