"""Bounded fuzzing: schemathesis generates requests (valid and invalid) for every operation
of /openapi.json, anonymously and with a staff token, against the real app served by
uvicorn on its own throw-away database; no answer may be a 5xx.

Kept to a few minutes on a 2-core machine: ``MAX_EXAMPLES`` per operation and mode,
derandomised (the same cases every run, so a failure reproduces)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.conftest import _base_settings
from twin import localdb
from twin.db import make_engine
from twin.migrate import upgrade
from twin.settings import Settings
from twin.users import add_user

MAX_EXAMPLES = 20
SKIP_PATHS = ("/live",)  # an endless event stream
TIMEOUT_S = 30


@pytest.fixture(scope="module")
def fuzz_server(settings: Settings,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, staff token) of the app on a fresh database only this module writes to
    (the fuzzer creates incidents, things and users the other tests must not see)."""
    import uvicorn

    from server.app import create_app

    base = _base_settings()
    name = f"twin_fuzz_{uuid.uuid4().hex[:8]}"
    localdb.ensure_database(base, name)
    try:
        upgrade(base.url(name))
        s = settings.model_copy(update={"database_url": base.url(name),
                                        "data_dir": tmp_path_factory.mktemp("fuzz")})
        engine = make_engine(s, pool_size=1)
        with engine.begin() as conn:
            add_user(conn, "fuzz-admin", "password-123", "admin")
        engine.dispose()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(s), log_level="critical",
                                               lifespan="on", access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        r = httpx.post(url + "/auth/token",
                       data={"username": "fuzz-admin", "password": "password-123"})
        assert r.status_code == 200, r.text
        try:
            yield url, r.json()["access_token"]
        finally:
            server.should_exit = True
            thread.join(timeout=15)
            sock.close()
    finally:
        localdb.drop_database(base, name)


def _cases(op: Any) -> st.SearchStrategy[Any]:
    modes = [op.as_strategy(generation_mode=GenerationMode.POSITIVE)]
    try:
        modes.append(op.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    except Exception:  # noqa: BLE001 - some operations have nothing to make invalid
        pass
    return st.one_of(modes)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("who", ["anonymous", "staff"])
def test_no_operation_answers_5xx(fuzz_server: tuple[str, str], who: str) -> None:
    url, token = fuzz_server
    schema = schemathesis.openapi.from_dict(httpx.get(url + "/openapi.json").json())
    headers = {"Authorization": f"Bearer {token}"} if who == "staff" else {}
    session = requests.Session()
    failures: dict[str, str] = {}
    ops = calls = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path.startswith(SKIP_PATHS):
            continue
        ops += 1

        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=_cases(op))
        def run(case: Any) -> None:
            nonlocal calls
            calls += 1
            r = case.call(base_url=url, session=session, headers=headers, timeout=TIMEOUT_S)
            if r.status_code >= 500:
                key = f"{case.method} {case.operation.path} → {r.status_code}"
                failures.setdefault(key, f"{case.as_curl_command()}\n{r.text[:300]}")

        try:
            run()
        except Unsatisfiable:
            pass
    assert ops > 50, f"only {ops} operations in /openapi.json"
    assert calls > 5 * ops, f"only {calls} requests for {ops} operations"
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
