"""Sign-in, tokens and the key that signs them: forged, incomplete or stale tokens are
refused, a weak key stops the server before it starts, passwords are argon2id."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from server.app import create_app
from server.auth import issue_token
from server.cli import app as cli
from tests.server.livesrv import free_port
from twin.settings import Settings
from twin.users import add_user

OLD_REPO_KEY = "dev-insecure-change-me-0123456789abcdef"


def _cli_env(settings: Settings) -> dict[str, str]:
    return {"TWIN_DATABASE_URL": settings.url(), "TWIN_DATA_DIR": str(settings.data_dir)}


def _me(client: TestClient, token: str) -> tuple[int, dict]:
    r = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    return r.status_code, r.json()


def _sign_in(client: TestClient, name: str, password: str) -> str:
    r = client.post("/auth/token", data={"username": name, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_users_add_and_token(settings):
    env = _cli_env(settings)
    runner = CliRunner()
    res = runner.invoke(cli, ["users", "add", "lan", "--role", "planner",
                              "--password", "s3cret-pass"], env=env)
    assert res.exit_code == 0, res.output
    again = runner.invoke(cli, ["users", "add", "lan", "--role", "planner",
                                "--password", "s3cret-pass"], env=env)
    assert again.exit_code != 0 and "already exists" in again.output
    bad_role = runner.invoke(cli, ["users", "add", "x", "--role", "king",
                                   "--password", "s3cret-pass"], env=env)
    assert bad_role.exit_code != 0 and "unknown role" in bad_role.output

    with TestClient(create_app(settings)) as client:
        r = client.post("/auth/token", data={"username": "lan", "password": "wrong-pass"})
        assert r.status_code == 401
        tok = _sign_in(client, "lan", "s3cret-pass")
        assert _me(client, tok) == (200, {"username": "lan", "role": "planner"})
        assert client.get("/auth/me").json()["role"] == "anonymous"
        bad = client.get("/auth/me", headers={"Authorization": "Bearer nonsense"})
        assert bad.status_code == 401
        long = client.post("/auth/token", data={"username": "x" * 101, "password": "p"})
        assert long.status_code == 400 and set(long.json()) >= {"code", "description"}


def test_expired_token_is_refused(settings, engine):
    name = f"exp-{uuid.uuid4().hex[:6]}"
    with engine.begin() as conn:
        add_user(conn, name, "password-123", "admin")
    short = settings.model_copy(update={"token_minutes": -1})
    tok, _ = issue_token(short, name, "admin")
    with TestClient(create_app(settings)) as client:
        r = client.get("/auth/me", headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 401 and "expired" in r.text


def test_forged_and_incomplete_tokens_are_refused(settings, engine):
    name = f"adm-{uuid.uuid4().hex[:6]}"
    with engine.begin() as conn:
        add_user(conn, name, "password-123", "admin")
    now = dt.datetime.now(dt.UTC)
    later = now + dt.timedelta(minutes=30)
    key = settings.signing_key()
    assert key != OLD_REPO_KEY and len(key.encode()) >= 32

    def signed(claims: dict, with_key: str = key) -> str:
        return jwt.encode(claims, with_key, algorithm="HS256")

    good = signed({"sub": name, "role": "admin", "iat": now, "exp": later})
    forged = {
        "old repository key": signed({"sub": name, "role": "admin", "iat": now, "exp": later},
                                     OLD_REPO_KEY),
        "ghost user": signed({"sub": "ghost", "role": "admin", "iat": now, "exp": later}),
        "no exp": signed({"sub": name, "role": "admin", "iat": now}),
        "no iat": signed({"sub": name, "role": "admin", "exp": later}),
        "no sub": signed({"role": "admin", "iat": now, "exp": later}),
        "no role": signed({"sub": name, "iat": now, "exp": later}),
        "unknown role": signed({"sub": name, "role": "superuser", "iat": now, "exp": later}),
        "other role": signed({"sub": name, "role": "planner", "iat": now, "exp": later}),
        "alg none": jwt.encode({"sub": name, "role": "admin", "iat": now, "exp": later},
                               None, algorithm="none"),
    }
    with TestClient(create_app(settings)) as client:
        assert _me(client, good) == (200, {"username": name, "role": "admin"})
        for why, tok in forged.items():
            code, _ = _me(client, tok)
            assert code == 401, why
            # a staff-only route refuses it too (not just /auth/me)
            r = client.get("/incidents", headers={"Authorization": f"Bearer {tok}"})
            assert r.status_code == 401, why
        live = client.get("/live", params={"access_token": forged["ghost user"]})
        assert live.status_code == 401


def test_removed_or_demoted_users_lose_their_tokens(settings, engine):
    env = _cli_env(settings)
    gone, demoted, kept = (f"{w}-{uuid.uuid4().hex[:6]}" for w in ("gone", "demoted", "kept"))
    with engine.begin() as conn:
        for name in (gone, demoted, kept):
            add_user(conn, name, "password-123", "responder")
    assert settings.user_cache_seconds <= 30
    with TestClient(create_app(settings)) as client:
        tokens = {n: _sign_in(client, n, "password-123") for n in (gone, demoted, kept)}
        assert all(_me(client, t)[0] == 200 for t in tokens.values())  # cached now
        runner = CliRunner()
        res = runner.invoke(cli, ["users", "remove", gone], env=env)
        assert res.exit_code == 0, res.output
        res = runner.invoke(cli, ["users", "role", demoted, "--role", "citizen"], env=env)
        assert res.exit_code == 0, res.output
        assert runner.invoke(cli, ["users", "remove", "nobody-here"], env=env).exit_code != 0
        listed = runner.invoke(cli, ["users", "list"], env=env).output
        rows = {tuple(cell.strip() for cell in line.strip("│ ").split("│"))
                for line in listed.splitlines()}
        assert (demoted, "citizen") in rows and (kept, "responder") in rows
        assert gone not in listed

        deadline = time.monotonic() + settings.user_cache_seconds + 20
        while time.monotonic() < deadline:
            if _me(client, tokens[gone])[0] == 401 and _me(client, tokens[demoted])[0] == 401:
                break
            time.sleep(0.2)
        code, body = _me(client, tokens[gone])
        assert code == 401 and "no longer exists" in body["description"]
        code, body = _me(client, tokens[demoted])
        assert code == 401 and "role" in body["description"]
        assert _me(client, tokens[kept]) == (200, {"username": kept, "role": "responder"})
        # the demoted user signs in again and gets their new role
        assert _me(client, _sign_in(client, demoted, "password-123"))[1]["role"] == "citizen"


def test_legacy_scrypt_hash_verifies_and_is_upgraded(settings, engine):
    name = f"old-{uuid.uuid4().hex[:6]}"
    salt = os.urandom(16)
    digest = hashlib.scrypt(b"old-password", salt=salt, n=2**14, r=8, p=1, dklen=32)
    legacy = f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"

    def stored() -> str:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT password_hash FROM app_user WHERE username = :u"),
                                    {"u": name}).scalar_one())

    with engine.begin() as conn:
        conn.execute(text("INSERT INTO app_user (username, password_hash, role) "
                          "VALUES (:u, :h, 'planner')"), {"u": name, "h": legacy})
    with TestClient(create_app(settings)) as client:
        r = client.post("/auth/token", data={"username": name, "password": "wrong-password"})
        assert r.status_code == 401 and stored() == legacy  # no upgrade on a failure
        _sign_in(client, name, "old-password")
        upgraded = stored()
        assert upgraded.startswith("$argon2id$v=19$m=") and ",t=" in upgraded
        _sign_in(client, name, "old-password")  # the new hash verifies
        assert stored() == upgraded  # and is not rehashed again
        r = client.post("/auth/token", data={"username": name, "password": "wrong-password"})
        assert r.status_code == 401


def test_new_passwords_are_argon2id(engine):
    name = f"new-{uuid.uuid4().hex[:6]}"
    with engine.begin() as conn:
        add_user(conn, name, "password-123", "citizen")
        h = conn.execute(text("SELECT password_hash FROM app_user WHERE username = :u"),
                         {"u": name}).scalar_one()
    assert h.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


# -- the signing key ------------------------------------------------------------------


def _key_settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(data_dir=tmp_path, **kw)  # type: ignore[arg-type]


def test_production_is_the_default_and_refuses_weak_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("TWIN_ENVIRONMENT", raising=False)
    monkeypatch.delenv("TWIN_SECRET_KEY", raising=False)
    assert not Settings().development
    strong = "k" + base64.urlsafe_b64encode(os.urandom(36)).decode()
    for env in ("production", "Production", "PRODUCTION", "staging", " prod "):
        for weak in ("x", OLD_REPO_KEY, "a" * 40, "short-but-random-7Qp"):
            problem = _key_settings(tmp_path, environment=env, secret_key=weak).key_problem()
            assert problem and "TWIN_SECRET_KEY" in problem, (env, weak)
        assert _key_settings(tmp_path, environment=env, secret_key=strong).key_problem() is None
    for env in ("development", "Development", " DEVELOPMENT "):
        assert _key_settings(tmp_path, environment=env, secret_key="x").key_problem() is None


def test_unset_key_is_generated_once_into_the_data_dir(tmp_path):
    s = _key_settings(tmp_path, environment="production", secret_key=None)
    assert s.key_problem() is None
    path = tmp_path / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = s.signing_key()
    assert len(key.encode()) >= 32 and key == path.read_text().strip()
    again = _key_settings(tmp_path, environment="production", secret_key=None)
    assert again.signing_key() == key  # another process, the same key
    other = _key_settings(tmp_path / "elsewhere", environment="production", secret_key=None)
    assert other.signing_key() != key
    path.chmod(0o644)
    assert "readable by others" in (again.key_problem() or "")


@pytest.mark.parametrize("environment", ["Production", ""])
def test_serve_with_a_weak_key_exits_before_starting_workers(tmp_path, environment):
    env = {**os.environ, "TWIN_SECRET_KEY": "x", "TWIN_DATA_DIR": str(tmp_path),
           "TWIN_ENVIRONMENT": environment}
    if not environment:
        del env["TWIN_ENVIRONMENT"]
    twin = Path(sys.executable).parent / "twin"
    started = time.monotonic()
    proc = subprocess.run([str(twin), "serve", "--port", str(free_port()), "--workers", "2"],
                          env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert time.monotonic() - started < 30
    said = " ".join(proc.stderr.split())
    assert "refusing to serve: TWIN_SECRET_KEY is 1 byte long" in said, said
    assert "32 bytes of secret" in said and said.count("error:") == 1
    assert "Started parent process" not in proc.stderr + proc.stdout  # no worker ever ran
