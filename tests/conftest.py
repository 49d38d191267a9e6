"""Shared fixtures: a real PostGIS database per test session, migrated to head.

The database lives on the managed cluster (or on TWIN_DATABASE_URL's server); it is
created at the start and dropped at the end.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from twin import localdb
from twin.db import make_engine
from twin.migrate import upgrade
from twin.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TWIN_SHARED_DIR", ROOT.parent / "shared"))
DANANG = SHARED / "data" / "danang"


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Under CI every test must run: GDAL, Chromium and Mosquitto are installed by the
    project, so a skip there means the install is broken."""
    if report.skipped and IN_CI:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped:
        terminalreporter.section("skipped tests fail CI (CI=true)", red=True)
        for nodeid in _skipped:
            terminalreporter.write_line(f"SKIPPED (not allowed in CI): {nodeid}")


def _base_settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at a fresh, migrated test database."""
    base = _base_settings()
    if base.managed:  # one xdist worker creates and starts the cluster, the others wait
        base.data_dir.mkdir(parents=True, exist_ok=True)
        with open(base.data_dir / "tests-cluster.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            localdb.init_cluster(base)
            localdb.start(base)
    name = f"twin_test_{uuid.uuid4().hex[:8]}"
    localdb.ensure_database(base, name)
    url = base.url(name)
    upgrade(url)
    data_dir = tmp_path_factory.mktemp("twin-data")
    s = Settings(database_url=url, data_dir=data_dir)
    yield s
    localdb.drop_database(base, name)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    eng = make_engine(settings, pool_size=4)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def danang() -> Path:
    if not DANANG.exists():
        pytest.fail(f"shared Đà Nẵng data not found at {DANANG}")
    return DANANG


def count(engine: Engine, table: str, where: str = "TRUE") -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one())
