from fastapi.testclient import TestClient
from typer.testing import CliRunner

from server.app import create_app
from server.cli import app as cli


def test_users_add_and_token(settings):
    env = {"TWIN_DATABASE_URL": settings.url(), "TWIN_DATA_DIR": str(settings.data_dir)}
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
        r = client.post("/auth/token", data={"username": "lan", "password": "s3cret-pass"})
        assert r.status_code == 200, r.text
        tok = r.json()["access_token"]
        me = client.get("/auth/me", headers={"Authorization": f"Bearer {tok}"}).json()
        assert me == {"username": "lan", "role": "planner"}
        assert client.get("/auth/me").json()["role"] == "anonymous"
        bad = client.get("/auth/me", headers={"Authorization": "Bearer nonsense"})
        assert bad.status_code == 401


def test_expired_token_is_refused(settings):
    from server.auth import issue_token

    short = settings.model_copy(update={"token_minutes": -1})
    tok, _ = issue_token(short, "lan", "admin")
    with TestClient(create_app(settings)) as client:
        r = client.get("/auth/me", headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 401 and "expired" in r.text
