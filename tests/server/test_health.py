from fastapi.testclient import TestClient

from server.app import create_app


def test_healthz_and_readyz(settings):
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        r = client.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["migrations"] == "head"


def test_readyz_reports_unreachable_database(settings):
    broken = settings.model_copy(update={"database_url": "postgresql://nobody@127.0.0.1:1/x"})
    with TestClient(create_app(broken)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["database"] == "unreachable"
