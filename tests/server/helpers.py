"""Small helpers shared by server tests."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from twin.users import add_user


def token_for(client: TestClient, engine: Engine, role: str) -> dict[str, str]:
    """Create a fresh user with ``role`` and return an Authorization header for it."""
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    with engine.begin() as conn:
        add_user(conn, name, "password-123", role)
    r = client.post("/auth/token", data={"username": name, "password": "password-123"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
