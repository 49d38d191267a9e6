"""Write paths are rate-limited: failed sign-ins per user name and address, and every
other write per client (token, gateway key or address)."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from server.app import create_app
from tests.server.helpers import token_for
from twin.users import add_user

POINT = {"type": "Point", "coordinates": [108.2208, 16.0680]}


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
        assert r.status_code == 429 and r.headers["retry-after"] == "60"
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
        assert r.status_code == 429 and r.headers["retry-after"] == "60"
        assert "writes a minute" in r.json()["description"]
        assert client.get("/incidents", headers=staff).status_code == 200  # reads pass
        assert report(other) == 201  # another client has its own budget


def test_no_limit_when_switched_off(settings, engine):
    app = create_app(settings.model_copy(update={"writes_per_minute": 0}))
    with TestClient(app) as client:
        staff = token_for(client, engine, "responder")
        codes = {client.post("/incidents", headers=staff, json={
            "category": "fallen_tree", "geometry": POINT}).status_code for _ in range(6)}
        assert codes == {201}
