"""The managed PostgreSQL + PostGIS cluster (the embedded default).

With no ``TWIN_DATABASE_URL`` the project keeps its own cluster in
``TWIN_DATA_DIR/pg``, listening on 127.0.0.1:``TWIN_DB_PORT``. As root the server
runs as the ``postgres`` user, because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import functools
import getpass
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from twin.errors import DatabaseUnavailable
from twin.settings import Settings

EXTENSIONS = ("postgis", "postgis_raster", "pgrouting")

# Tuned for a small machine serving tiles: JIT slows short queries down.
SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",
    "shared_buffers": "512MB",
    "work_mem": "16MB",
    "jit": "off",
    "random_page_cost": "1.1",
    "synchronous_commit": "on",
}


def is_root() -> bool:
    return os.geteuid() == 0


def superuser() -> str:
    """The cluster's superuser name: ``postgres`` as root, else the current user."""
    return "postgres" if is_root() else getpass.getuser()


def bin_dir() -> Path:
    """The newest installed PostgreSQL server binaries (``initdb`` and ``pg_ctl``)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise DatabaseUnavailable(
        "PostgreSQL server binaries not found (initdb); run `make install-system` first"
    )


def _run(args: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = list(args)
    if is_root():
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def cluster_dir(settings: Settings) -> Path:
    """Where the cluster lives: ``TWIN_DATA_DIR/pg``, unless we run as root and the
    ``postgres`` user cannot reach that folder (a clone under /root, say); then a
    folder under /var/lib/postgresql named after the data folder is used instead."""
    return _cluster_dir(settings.pg_dir, settings.data_dir.resolve())


@functools.lru_cache(maxsize=8)
def _cluster_dir(wanted: Path, data_dir: Path) -> Path:
    if not is_root():
        return wanted
    probe = wanted.parent
    while not probe.exists():
        probe = probe.parent
    ok = subprocess.run(
        ["runuser", "-u", "postgres", "--", "test", "-x", str(probe)], capture_output=True
    ).returncode == 0
    if ok:
        return wanted
    import hashlib

    tag = hashlib.sha1(str(data_dir).encode()).hexdigest()[:10]
    return Path("/var/lib/postgresql") / f"twin-{tag}" / "pg"


def _prepare_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if is_root():
        shutil.chown(path, "postgres", "postgres")
        path.chmod(0o700)


def initialised(settings: Settings) -> bool:
    return (cluster_dir(settings) / "PG_VERSION").exists()


def init_cluster(settings: Settings) -> bool:
    """Create the cluster if missing; return True when one was created."""
    if initialised(settings):
        return False
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _prepare_dir(cluster_dir(settings))
    res = _run(
        [
            str(bin_dir() / "initdb"),
            "-D",
            str(cluster_dir(settings)),
            "-U",
            superuser(),
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        check=False,
    )
    if res.returncode != 0:
        raise DatabaseUnavailable(f"initdb failed: {res.stderr.strip() or res.stdout.strip()}")
    return True


def running(settings: Settings) -> bool:
    if not initialised(settings):
        return False
    res = _run([str(bin_dir() / "pg_ctl"), "-D", str(cluster_dir(settings)), "status"], check=False)
    return res.returncode == 0


def start(settings: Settings) -> bool:
    """Start the cluster if it is not running; return True when it was started."""
    if running(settings):
        return False
    opts = " ".join(f"-c {k}={v}" for k, v in SERVER_OPTIONS.items())
    opts += f" -p {settings.db_port} -k {cluster_dir(settings)}"
    log = cluster_dir(settings) / "server.log"
    res = _run(
        [
            str(bin_dir() / "pg_ctl"),
            "-D",
            str(cluster_dir(settings)),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            opts,
            "start",
        ],
        check=False,
    )
    if res.returncode != 0:
        tail = ""
        if log.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-5:])
        raise DatabaseUnavailable(f"pg_ctl start failed: {res.stderr.strip()}\n{tail}")
    return True


def stop(settings: Settings) -> bool:
    if not running(settings):
        return False
    _run([str(bin_dir() / "pg_ctl"), "-D", str(cluster_dir(settings)), "-m", "fast", "-w", "stop"])
    return True


def admin_connect(settings: Settings, dbname: str = "postgres", retries: int = 20):  # noqa: ANN201
    """A psycopg autocommit connection to ``dbname`` on the configured server."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(settings.url(dbname))
    last: Exception | None = None
    for _ in range(retries):
        try:
            return psycopg.connect(
                host=u.host,
                port=u.port,
                user=u.username,
                password=u.password,
                dbname=u.database,
                autocommit=True,
                connect_timeout=5,
            )
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.5)
    raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {last}")


def ensure_database(settings: Settings, dbname: str | None = None) -> bool:
    """Create the database (and its extensions) if missing; True when created."""
    name = dbname or _dbname(settings)
    created = False
    with admin_connect(settings) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            from psycopg import sql

            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            created = True
    with admin_connect(settings, name) as conn:
        for ext in EXTENSIONS:
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {ext} CASCADE")
        from psycopg import sql

        conn.execute(
            sql.SQL("ALTER DATABASE {} SET postgis.gdal_enabled_drivers = 'ENABLE_ALL'").format(
                sql.Identifier(name)
            )
        )
    return created


def drop_database(settings: Settings, dbname: str) -> None:
    from psycopg import sql

    with admin_connect(settings) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )


def _dbname(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.url()).database or "twin"


def up(settings: Settings) -> dict[str, bool]:
    """Bring the database up: cluster (when managed), database and extensions."""
    steps = {"initialised": False, "started": False, "created": False}
    if settings.managed:
        steps["initialised"] = init_cluster(settings)
        steps["started"] = start(settings)
    steps["created"] = ensure_database(settings)
    return steps


# -- streaming replicas of the managed cluster -----------------------------------------


def replica_dir(settings: Settings, port: int) -> Path:
    """A replica's data folder, beside the managed cluster's."""
    return cluster_dir(settings).parent / f"pg-replica-{port}"


def replica_running(settings: Settings, port: int) -> bool:
    d = replica_dir(settings, port)
    if not (d / "PG_VERSION").exists():
        return False
    return _run([str(bin_dir() / "pg_ctl"), "-D", str(d), "status"], check=False).returncode == 0


def replica_up(settings: Settings, port: int) -> dict[str, bool]:
    """A hot-standby streaming replica of the managed cluster on 127.0.0.1:``port``
    (``pg_basebackup -R`` once, then ``pg_ctl start``). Idempotent."""
    if not settings.managed:
        raise DatabaseUnavailable("replicas are made of the managed cluster; with "
                                  "TWIN_DATABASE_URL, make them on that server")
    if port == settings.db_port:
        raise DatabaseUnavailable(f"port {port} is the primary's")
    if not running(settings):
        raise DatabaseUnavailable("the managed cluster is not running (twin db up)")
    d = replica_dir(settings, port)
    steps = {"copied": False, "started": False}
    if not (d / "PG_VERSION").exists():
        if d.exists():
            shutil.rmtree(d)
        _prepare_dir(d)  # empty, owned by the server's user: pg_basebackup fills it
        res = _run([str(bin_dir() / "pg_basebackup"), "-h", "127.0.0.1",
                    "-p", str(settings.db_port), "-U", superuser(), "-D", str(d),
                    "-R", "-X", "stream", "-c", "fast"], check=False)
        if res.returncode != 0:
            raise DatabaseUnavailable(f"pg_basebackup failed: {res.stderr.strip()}")
        steps["copied"] = True
    if not replica_running(settings, port):
        opts = " ".join(f"-c {k}={v}" for k, v in SERVER_OPTIONS.items())
        opts += f" -c hot_standby=on -p {port} -k {d}"
        log = d / "server.log"
        res = _run([str(bin_dir() / "pg_ctl"), "-D", str(d), "-l", str(log), "-w", "-t", "60",
                    "-o", opts, "start"], check=False)
        if res.returncode != 0:
            tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
            raise DatabaseUnavailable(f"replica start failed: {res.stderr.strip()} "
                                      + " ".join(tail))
        steps["started"] = True
    return steps


def replica_down(settings: Settings, port: int, remove: bool = False) -> bool:
    """Stop the replica (and delete its folder with ``remove``); True when it ran."""
    was = replica_running(settings, port)
    d = replica_dir(settings, port)
    if was:
        _run([str(bin_dir() / "pg_ctl"), "-D", str(d), "-m", "fast", "-w", "stop"])
    if remove and d.exists():
        shutil.rmtree(d)
    return was


def replica_url(settings: Settings, port: int, dbname: str | None = None) -> str:
    """The SQLAlchemy URL of the database ``dbname`` (default: ours) on the replica."""
    from sqlalchemy.engine import make_url

    u = make_url(settings.url(dbname)).set(host="127.0.0.1", port=port)
    return u.render_as_string(hide_password=False)
