"""What-ifs as OGC API – Processes over real HTTP: process list and descriptions against
the spec's required fields, sync execution (the /scenarios/* answer), async jobs from
submission through status polling to results (httpx against a live uvicorn server),
dismissing a running rain flood on the real DEM, jobs surviving a restart, stale jobs of
a dead server marked failed, bad input."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from server.app import create_app
from tests.server.helpers import token_for
from tests.server.test_raster_api import register_srtm
from twin import jobs
from twin.settings import Settings

PROCESSES_CORE = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core"
EXC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
ASYNC = {"Prefer": "respond-async"}


@pytest.fixture(scope="module")
def dem(engine: Engine, settings: Settings, danang: Path) -> str:
    return register_srtm(engine, settings, danang)


@pytest.fixture(scope="module")
def client(settings: Settings, dem: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def staff(client: TestClient, engine: Engine) -> dict[str, str]:
    return token_for(client, engine, "planner")


@pytest.fixture(scope="module")
def live(settings: Settings, dem: str) -> Iterator[tuple[str, FastAPI]]:
    """The app served by uvicorn on a free port (this process, so the test can look at
    its runner): base URL and app."""
    import uvicorn

    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on",
                                           access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "live server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def http(live: tuple[str, FastAPI], client: TestClient, engine: Engine) -> Iterator[httpx.Client]:
    base, _ = live
    headers = token_for(client, engine, "planner")
    with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
        yield c


def poll(http: httpx.Client, url: str, until: set[str], timeout: float = 120) -> dict[str, Any]:
    """GET a job's status until it is in ``until``; every answer checked on the way."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        r = http.get(url)
        assert r.status_code == 200, r.text
        info = r.json()
        assert info["status"] in jobs.STATUSES and 0 <= info["progress"] <= 100
        seen.append(info["progress"])
        assert seen == sorted(seen), f"progress went back: {seen}"
        if info["status"] in until:
            return info
        assert time.monotonic() < deadline, f"job stuck: {info}"
        time.sleep(0.05)


def test_conformance_and_landing_link_the_processes(client: TestClient) -> None:
    classes = client.get("/conformance").json()["conformsTo"]
    for c in ("core", "json", "job-list", "dismiss", "ogc-process-description"):
        assert f"http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/{c}" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
    rels = {link["rel"]: link["href"] for link in client.get("/?f=json").json()["links"]}
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/processes"].endswith("/processes")
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/job-list"].endswith("/jobs")


def test_process_list_and_descriptions_have_the_required_fields(client: TestClient) -> None:
    r = client.get("/processes")
    assert r.status_code == 200
    doc = r.json()
    assert any(link["rel"] == "self" for link in doc["links"])
    ids = [p["id"] for p in doc["processes"]]
    assert {"flood", "closure", "outage", "rain"} <= set(ids)
    for summary in doc["processes"]:
        # processSummary: id, version required; links to the description
        assert summary["version"] and summary["links"]
        assert {"sync-execute", "async-execute"} <= set(summary["jobControlOptions"])
        assert summary["outputTransmission"] == ["value"]
        d = client.get(f"/processes/{summary['id']}").json()
        assert d["id"] == summary["id"] and d["version"] == summary["version"]
        assert any(link["rel"] == "self" and link["href"].endswith(f"/processes/{d['id']}")
                   for link in d["links"])
        assert any(link["rel"].endswith("/execute") for link in d["links"])
        assert d["inputs"] and d["outputs"]["result"]["schema"]["type"] == "object"
        for name, spec in d["inputs"].items():
            assert {"title", "description", "schema", "minOccurs", "maxOccurs"} <= set(spec)
            jsonschema.Draft202012Validator.check_schema(spec["schema"])
            assert "$ref" not in str(spec["schema"]), name
    titles = {p["id"]: p["title"] for p in doc["processes"]}
    assert titles["flood"] == "Ngập theo mực nước" and titles["rain"] == "Ngập do mưa"
    en = client.get("/processes/closure?lang=en").json()
    assert en["title"] == "Road closure" and "drive times" in en["description"]
    assert client.get("/processes/closure").json()["title"] == "Cấm đường"
    flood = client.get("/processes/flood").json()["inputs"]
    assert flood["water_level_m"]["minOccurs"] == 0
    assert "water surface" in flood["water_level_m"]["description"]
    # the schema is the request model's: a value it refuses, the server refuses
    level = jsonschema.Draft202012Validator(flood["impassable_depth_m"]["schema"])
    assert level.is_valid(0.3) and not level.is_valid("deep")
    closure = client.get("/processes/closure").json()["inputs"]
    assert closure["samples"]["schema"]["maximum"] == 20
    assert closure["segment_ids"]["schema"]["anyOf"][0]["type"] == "array"


def test_sync_execute_answers_as_the_scenario_shortcut(client: TestClient, staff, dem) -> None:  # noqa: ANN001
    body = {"water_level_m": 3, "dem": dem, "save": False}
    r = client.post("/processes/flood/execution", json={"inputs": body}, headers=staff)
    assert r.status_code == 200, r.text
    via_process = r.json()
    shortcut = client.post("/scenarios/flood", json=body, headers=staff).json()
    for answer in (via_process, shortcut):  # all but when and how fast
        answer["summary"].pop("timing_ms", None)
        assert answer.pop("created_at")
    assert via_process == shortcut
    assert via_process["summary"]["flooded_area_km2"] > 1
    # document response: the output by its id
    doc = client.post("/processes/flood/execution", headers=staff, json={
        "inputs": body, "response": "document"}).json()
    assert doc["result"]["summary"]["flooded_area_km2"] == \
        via_process["summary"]["flooded_area_km2"]


def test_async_job_from_submission_to_results(http: httpx.Client, dem: str,
                                              engine: Engine) -> None:
    name = f"job-{uuid.uuid4().hex[:6]}"
    r = http.post("/processes/flood/execution", headers=ASYNC, json={
        "inputs": {"water_level_m": 4, "dem": dem, "name": name,
                   "include": ["features", "geometry"]}})
    assert r.status_code == 201, r.text
    assert r.headers["preference-applied"] == "respond-async"
    location = r.headers["location"]
    job_id = r.json()["jobID"]
    assert location.endswith(f"/jobs/{job_id}")
    assert r.json()["status"] in ("accepted", "running") and r.json()["processID"] == "flood"
    info = poll(http, location, {"successful", "failed"})
    assert info["status"] == "successful", info
    assert info["progress"] == 100 and info["created"] <= info["started"] <= info["finished"]
    assert info["finished"].endswith("Z") and info["updated"] >= info["finished"]
    results = next(link["href"] for link in info["links"] if link["rel"].endswith("/results"))
    answer = http.get(results).json()
    assert answer["name"] == name and answer["kind"] == "flood"
    assert answer["summary"]["flooded_area_km2"] > 1
    assert answer["features"]["type"] == "FeatureCollection"
    assert answer["geometry"]["type"] == "MultiPolygon"
    assert answer["links"]["scenario"] == f"/scenarios/{answer['id']}"
    assert info["scenario_id"] == answer["id"]
    stored = http.get(answer["links"]["scenario"])
    assert stored.status_code == 200 and stored.json()["name"] == name
    # the job list, filtered by process and status
    listed = http.get("/jobs", params={"processID": "flood", "status": "successful"}).json()
    assert job_id in [j["jobID"] for j in listed["jobs"]]
    assert job_id not in [j["jobID"] for j in http.get(
        "/jobs", params={"processID": "closure"}).json()["jobs"]]
    assert job_id not in [j["jobID"] for j in http.get(
        "/jobs", params={"status": "running"}).json()["jobs"]]
    page = http.get("/jobs", params={"limit": 1}).json()
    assert len(page["jobs"]) == 1 and page["jobs"][0]["jobID"] == job_id  # newest first
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    assert "offset=1" in nxt and job_id not in [j["jobID"] for j in http.get(nxt).json()["jobs"]]
    # forgetting a finished job removes its record, not its scenario
    gone = http.delete(f"/jobs/{job_id}")
    assert gone.status_code == 200 and gone.json()["status"] == "dismissed"
    assert http.get(location).status_code == 404
    assert http.get(answer["links"]["scenario"]).status_code == 200
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM job WHERE id = :i"),
                            {"i": job_id}).scalar_one() == 0


def test_dismiss_a_running_rain_flood_stops_it(http: httpx.Client, live, dem: str,  # noqa: ANN001
                                                engine: Engine) -> None:
    _, app = live
    runner: jobs.JobRunner = app.state.jobs
    reached, release = threading.Event(), threading.Event()
    calls: list[str] = []
    held: list[str] = []

    def hold(fraction: float, message: str) -> None:  # test seam: pause mid-run
        calls.append(message)
        if fraction >= 0.35 and not message.startswith("job.") and not reached.is_set():
            held.append(message)  # run_rain's routing step: DEM and land cover loaded
            reached.set()
            release.wait(60)

    runner.on_progress = hold
    name = f"dismissed-{uuid.uuid4().hex[:6]}"
    try:
        r = http.post("/processes/rain/execution", headers=ASYNC, json={
            "inputs": {"rain_mm": 300, "hours": 6, "dem": dem, "name": name}})
        assert r.status_code == 201, r.text
        location = r.headers["location"]
        assert reached.wait(120), f"the rain job never got to routing: {calls}"
        info = http.get(location).json()
        assert info["status"] == "running" and 0 < info["progress"] < 100
        assert info["message"] == calls[-2]  # the last step it stored
        d = http.delete(location)
        assert d.status_code == 200, d.text
        assert d.json()["status"] == "dismissed" and d.json()["jobID"] == r.json()["jobID"]
        release.set()
        deadline = time.monotonic() + 60
        while runner.active():
            assert time.monotonic() < deadline, "the dismissed job kept running"
            time.sleep(0.05)
    finally:
        release.set()
        runner.on_progress = None
    # it stopped at the next step: the one it was held at was its last, nothing stored
    assert len(calls) >= 3 and calls[-1] == held[0], calls
    assert http.get(location).status_code == 404
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM scenario WHERE name = :n"),
                            {"n": name}).scalar_one() == 0
    # the worker is free again: a next job runs to its end
    r = http.post("/processes/flood/execution", headers=ASYNC, json={
        "inputs": {"water_level_m": 2, "dem": dem, "save": False}})
    assert poll(http, r.headers["location"], {"successful", "failed"})["status"] == "successful"


def test_failed_job_keeps_its_error(http: httpx.Client) -> None:
    # valid by the schema, refused by the model (no such segment): a failed job, a 4xx
    r = http.post("/processes/closure/execution", headers=ASYNC, json={
        "inputs": {"segment_ids": [9_000_000_000], "samples": 0}})
    assert r.status_code == 201, r.text
    info = poll(http, r.headers["location"], {"successful", "failed"})
    assert info["status"] == "failed" and info["message"]
    res = http.get(f"/jobs/{info['jobID']}/results")
    assert 400 <= res.status_code < 500, res.text
    assert res.json()["description"] == info["message"] and res.json()["request_id"]


def test_bad_input_is_a_clear_4xx(client: TestClient, staff, engine: Engine, dem) -> None:  # noqa: ANN001
    r = client.get("/processes/nope")
    assert r.status_code == 404 and r.json()["type"] == EXC + "no-such-process"
    assert r.json()["code"] == "NotFound" and r.json()["request_id"]
    r = client.post("/processes/nope/execution", json={"inputs": {}}, headers=staff)
    assert r.status_code == 404 and r.json()["type"] == EXC + "no-such-process"
    r = client.post("/processes/flood/execution", headers=staff, json={
        "inputs": {"water_level_m": "high", "colour": "blue", "samples": 3}})
    assert r.status_code == 400, r.text
    names = {f["name"] for f in r.json()["fields"]}
    assert {"water_level_m", "colour", "samples"} <= names
    assert r.json()["fields"][0]["loc"].startswith("inputs.")
    r = client.post("/processes/closure/execution", headers=staff,
                    json={"inputs": {"samples": 99}})
    assert r.status_code == 400 and r.json()["fields"][0]["name"] == "samples"
    for bad in ({"inputs": [1, 2]}, {"inputs": {}, "mode": "x"},
                {"inputs": {}, "response": "zip"}):
        r = client.post("/processes/outage/execution", json=bad, headers=staff)
        assert r.status_code == 400, (bad, r.text)
    assert client.post("/processes/flood/execution", content=b"[1]", headers={
        **staff, "content-type": "application/json"}).status_code == 422
    # a domain refusal in a sync run: the shortcut's 400
    r = client.post("/processes/flood/execution", headers=staff, json={
        "inputs": {"water_level_m": 5000, "dem": dem, "save": False}})
    assert r.status_code == 400, r.text
    # jobs
    r = client.get("/jobs/" + "0" * 32, headers=staff)
    assert r.status_code == 404 and r.json()["type"] == EXC + "no-such-job"
    assert client.get("/jobs/nope/results", headers=staff).status_code == 404
    assert client.delete("/jobs/nope", headers=staff).status_code == 404
    waiting = uuid.uuid4().hex
    with engine.begin() as conn:  # a queued job of some other instance
        conn.execute(text("INSERT INTO job (id, process, owner, inputs) VALUES "
                          "(:i, 'flood', 'someone', '{}')"), {"i": waiting})
    try:
        r = client.get(f"/jobs/{waiting}/results", headers=staff)
        assert r.status_code == 404 and r.json()["type"] == EXC + "result-not-ready"
        assert client.get(f"/jobs/{waiting}", headers=staff).json()["status"] == "accepted"
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM job WHERE id = :i"), {"i": waiting})
    assert client.get("/jobs", params={"status": "done"}, headers=staff).status_code == 400
    assert client.get("/jobs", params={"limit": 0}, headers=staff).status_code == 422


def test_access(client: TestClient, staff, engine: Engine) -> None:  # noqa: ANN001
    assert client.get("/processes").status_code == 200  # descriptions are public
    r = client.post("/processes/flood/execution", json={"inputs": {}})
    assert r.status_code == 401
    citizen = token_for(client, engine, "citizen")
    assert client.post("/processes/flood/execution", json={"inputs": {}},
                       headers=citizen).status_code == 403
    assert client.get("/jobs").status_code == 401
    someone = uuid.uuid4().hex
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO job (id, process, owner, inputs, status) VALUES "
                          "(:i, 'flood', 'someone', '{}', 'failed')"), {"i": someone})
    try:
        # a job is its owner's and staff's: a citizen sees none of others'
        assert client.get("/jobs", headers=citizen).json()["jobs"] == []
        assert client.get(f"/jobs/{someone}", headers=citizen).status_code == 404
        assert client.delete(f"/jobs/{someone}", headers=citizen).status_code == 404
        assert client.get(f"/jobs/{someone}", headers=staff).status_code == 200
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM job WHERE id = :i"), {"i": someone})


def test_jobs_survive_a_restart_and_dead_servers_jobs_fail(settings: Settings, engine: Engine,
                                                          dem: str) -> None:
    with TestClient(create_app(settings)) as first:
        staff = token_for(first, engine, "planner")
        r = first.post("/processes/flood/execution", headers={**staff, **ASYNC}, json={
            "inputs": {"water_level_m": 2.5, "dem": dem, "save": False}})
        assert r.status_code == 201, r.text
        job_id = r.json()["jobID"]
        deadline = time.monotonic() + 120
        while first.get(f"/jobs/{job_id}", headers=staff).json()["status"] != "successful":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        answer = first.get(f"/jobs/{job_id}/results", headers=staff).json()
    dead, alive = uuid.uuid4().hex, uuid.uuid4().hex
    holder = engine.connect()  # a live instance: holds its advisory lock
    try:
        holder.execute(text("SELECT pg_advisory_lock(:ns, 424242)"), {"ns": jobs.LOCK_NAMESPACE})
        holder.commit()
        with engine.begin() as conn:
            for jid, inst in ((dead, 434343), (alive, 424242)):
                conn.execute(text(
                    "INSERT INTO job (id, process, owner, inputs, status, instance, started, "
                    "updated) VALUES (:i, 'flood', 'x', '{}', 'running', :n, now() - "
                    "interval '1 minute', now() - interval '1 minute')"), {"i": jid, "n": inst})
        with TestClient(create_app(settings)) as second:
            listed = second.get("/jobs?lang=en", headers=staff).json()["jobs"]
            by_id = {j["jobID"]: j for j in listed}
            assert by_id[job_id]["status"] == "successful"
            again = second.get(f"/jobs/{job_id}/results", headers=staff).json()
            assert again["summary"]["flooded_area_km2"] == answer["summary"]["flooded_area_km2"]
            assert by_id[dead]["status"] == "failed" and "stopped" in by_id[dead]["message"]
            assert by_id[dead]["finished"] is not None
            assert second.get(f"/jobs/{dead}/results", headers=staff).status_code == 503
            assert by_id[alive]["status"] == "running"  # another server's, still alive
    finally:
        holder.close()
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM job WHERE id = ANY(:i)"), {"i": [dead, alive]})


def _sign_in(base: str, engine: Engine) -> dict[str, str]:
    from twin.users import add_user

    name = f"planner-{uuid.uuid4().hex[:6]}"
    with engine.begin() as conn:
        add_user(conn, name, "password-123", "planner")
    tok = httpx.post(base + "/auth/token", data={"username": name, "password": "password-123"})
    assert tok.status_code == 200, tok.text
    return {"Authorization": f"Bearer {tok.json()['access_token']}"}


def test_twin_serve_instances_share_jobs_and_a_killed_servers_job_fails(
    settings: Settings, engine: Engine, dem: str,
) -> None:
    """Real `twin serve` processes: two workers answer for one job; a server killed while
    its job runs leaves the job failed once another server starts."""
    import os
    import subprocess
    import sys

    from tests.server.livesrv import free_port, serve

    with serve(settings, workers=2) as base:
        staff = _sign_in(base, engine)
        with httpx.Client(base_url=base, headers=staff, timeout=60) as http:
            r = http.post("/processes/outage/execution", headers=ASYNC,
                          json={"inputs": {"edge_id": 9_000_000_000, "save": False}})
            assert r.status_code == 201, r.text
            info = poll(http, r.headers["location"], {"successful", "failed"})
            assert info["status"] == "failed" and "9000000000" in info["message"]
            r = http.post("/processes/flood/execution", headers=ASYNC, json={
                "inputs": {"water_level_m": 2, "dem": dem, "save": False}})
            info = poll(http, r.headers["location"], {"successful", "failed"})
            assert info["status"] == "successful", info
            for _ in range(6):  # whichever worker answers, the same job
                assert http.get(f"/jobs/{info['jobID']}/results").json()["summary"][
                    "flooded_area_km2"] > 1

    port = free_port()
    env = {**os.environ, "TWIN_DATABASE_URL": settings.url(),
           "TWIN_DATA_DIR": str(settings.data_dir)}
    twin = Path(sys.executable).parent / "twin"
    proc = subprocess.Popen([str(twin), "serve", "--port", str(port), "--workers", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "no server"
            time.sleep(0.2)
        staff = _sign_in(base, engine)
        r = httpx.post(base + "/processes/rain/execution", headers={**staff, **ASYNC},
                       json={"inputs": {"hyetograph": [20.0] * 72, "dem": dem,
                                        "save": False}}, timeout=60)
        assert r.status_code == 201, r.text
        job_id = r.json()["jobID"]
        proc.kill()  # the server dies with its job unfinished
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM job WHERE id = :i"),
                            {"i": job_id}).scalar_one() in ("accepted", "running")
    with serve(settings, workers=1) as base:
        staff = _sign_in(base, engine)
        info = httpx.get(f"{base}/jobs/{job_id}", headers=staff).json()
        assert info["status"] == "failed" and info["message"] == "máy chủ chạy tác vụ đã dừng"
        en = httpx.get(f"{base}/jobs/{job_id}", headers={**staff, "Accept-Language": "en"})
        assert en.json()["message"] == "the server running it stopped"


def test_two_workers_a_third_job_waits_accepted(http: httpx.Client, live, dem: str) -> None:  # noqa: ANN001
    _, app = live
    runner: jobs.JobRunner = app.state.jobs
    assert runner.workers == jobs.JOB_WORKERS == 2
    release = threading.Event()
    holding: list[str] = []

    def hold(fraction: float, message: str) -> None:
        if message == "job.started":
            holding.append(threading.current_thread().name)
            release.wait(60)

    runner.on_progress = hold
    try:
        urls = []
        for level in (2, 3, 4):
            r = http.post("/processes/flood/execution", headers=ASYNC, json={
                "inputs": {"water_level_m": level, "dem": dem, "save": False}})
            assert r.status_code == 201, r.text
            urls.append(r.headers["location"])
        deadline = time.monotonic() + 30
        while len(holding) < 2:
            assert time.monotonic() < deadline, holding
            time.sleep(0.02)
        time.sleep(0.3)  # had there been a third worker, it would have taken the third job
        assert len(holding) == 2 and len(set(holding)) == 2
        states = [http.get(u, params={"lang": "en"}).json() for u in urls]
        assert [s["status"] for s in states] == ["running", "running", "accepted"]
        assert states[2]["message"] == "queued" and states[2]["started"] is None
        assert http.get(urls[2]).json()["message"] == "đang chờ đến lượt"  # vi by default
        # dismissing a queued job: it never runs
        assert http.delete(urls[2]).json()["status"] == "dismissed"
        release.set()
        for u in urls[:2]:
            assert poll(http, u, {"successful", "failed"})["status"] == "successful"
        deadline = time.monotonic() + 30
        while runner.active():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert len(holding) == 2 and http.get(urls[2]).status_code == 404
    finally:
        release.set()
        runner.on_progress = None


def test_a_stopping_server_refuses_new_jobs(settings: Settings, engine: Engine) -> None:
    with TestClient(create_app(settings)) as c:
        staff = token_for(c, engine, "planner")
        c.app.state.jobs.close()  # type: ignore[attr-defined]
        r = c.post("/processes/outage/execution", headers={**staff, **ASYNC},
                   json={"inputs": {"edge_id": 1}})
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert "stopping" in r.json()["description"]


def test_river_registers_from_its_route_once_written(client: TestClient, staff,  # noqa: ANN001
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """River floods are being written elsewhere: a route module with ``RiverIn`` and
    ``river`` becomes the process ``river``, its inputs and include handled as rain's."""
    import sys
    import types

    from pydantic import BaseModel, Field

    from server.routes import processes

    class RiverIn(BaseModel):
        discharge_m3s: float = Field(gt=0, le=50_000, description="peak discharge")
        save: bool = True

    seen: list[tuple[float, str | None, str | None]] = []

    def river(body: RiverIn, conn, settings, who, response, include=None):  # noqa: ANN001, ANN202
        seen.append((body.discharge_m3s, who.username and "who", include))
        return {"id": None, "kind": "river", "summary": {"discharge_m3s": body.discharge_m3s}}

    fake = types.ModuleType("server.routes.river")
    fake.RiverIn = RiverIn  # type: ignore[attr-defined]
    fake.river = river  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "server.routes.river", fake)
    monkeypatch.setitem(processes.PROCESSES, "river", processes.PROCESSES["flood"])
    processes._register_river()
    assert processes.PROCESSES["river"].id == "river"
    d = client.get("/processes/river").json()
    assert d["title"] == "Ngập do lũ sông"
    assert set(d["inputs"]) == {"discharge_m3s", "save", "include"}
    assert d["inputs"]["discharge_m3s"]["minOccurs"] == 1
    r = client.post("/processes/river/execution", headers=staff, json={
        "inputs": {"discharge_m3s": 3200, "include": ["features"]}})
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["discharge_m3s"] == 3200 and seen[-1] == (3200, "who", "features")
    r = client.post("/processes/river/execution", headers=staff,
                    json={"inputs": {"discharge_m3s": -1, "gauge": 2}})
    assert r.status_code == 400 and {f["name"] for f in r.json()["fields"]} == {
        "discharge_m3s", "gauge"}
    r = client.post("/processes/river/execution", headers={**staff, **ASYNC},
                    json={"inputs": {"discharge_m3s": 800}})
    assert r.status_code == 201
    deadline = time.monotonic() + 30
    while (info := client.get(r.headers["location"], headers=staff).json())["status"] in (
            "accepted", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert info["status"] == "successful"
    assert client.get(r.headers["location"] + "/results", headers=staff).json()[
        "summary"]["discharge_m3s"] == 800
