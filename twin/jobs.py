"""Jobs of OGC API – Processes: what-if analyses run in the background.

The store is the ``job`` table (migration 0014), so jobs survive restarts and every
server instance sees the same list. The runner is a bounded thread pool inside the
server (``JOB_WORKERS``): a submitted job is ``accepted`` until a worker takes it,
``running`` while it computes, then ``successful`` (its answer stored) or ``failed``
(its error stored). Dismissing removes the row; the running job notices at its next
progress call (the callback raises :class:`Dismissed`), so its transaction rolls back
and nothing it computed is kept.

Each instance holds a PostgreSQL advisory lock on its own number while it has jobs;
a starting server marks ``accepted``/``running`` jobs of an instance whose lock is free
(its server died) as failed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy import exc as sa_exc

from twin import i18n
from twin.errors import InputError, NotFound, TwinError

log = logging.getLogger("twin.jobs")

JOB_WORKERS = 2
LOCK_NAMESPACE = 0x7A0B  # first key of the instance advisory locks (second: the instance)
STATUSES = ("accepted", "running", "successful", "failed", "dismissed")
ACTIVE = ("accepted", "running")
MAX_LIST = 1000
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/ogc-process-description",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss",
]
"""OGC API - Processes Part 1 classes served by server/routes/processes.py."""

Progress = Callable[[float, str], None]
Work = Callable[[Connection, Progress], dict[str, Any]]
"""A job's work: given a connection (no transaction begun) and the progress callback,
the answer (a dict of plain JSON values; ``id`` the stored scenario, if any)."""


class Stopping(TwinError):
    """A job submitted while the server stops (the server answers 503)."""


class Dismissed(Exception):  # noqa: N818 - a signal, not an error
    """Raised from the progress callback when the job was dismissed or the server stops."""


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def text_of(message: str | None, lang: str = i18n.DEFAULT) -> str | None:
    """A stored message in ``lang``: the runner's own (``job.*`` keys) are translated,
    a model's progress steps and errors are as the model wrote them."""
    if message is not None and message in i18n.MESSAGES:
        return i18n.t(message, lang)
    return message


def status_info(row: dict[str, Any], lang: str = i18n.DEFAULT) -> dict[str, Any]:
    """A job row as OGC API – Processes ``statusInfo`` (links are the route's part)."""
    return {
        "jobID": row["id"],
        "processID": row["process"],
        "type": "process",
        "status": row["status"],
        "message": text_of(row.get("message"), lang),
        "progress": int(row["progress"]),
        "created": _iso(row["created"]),
        "started": _iso(row.get("started")),
        "finished": _iso(row.get("finished")),
        "updated": _iso(row.get("updated")),
        "owner": row.get("owner"),
        "scenario_id": row.get("scenario_id"),
    }


_COLUMNS = ("id, process, status, progress, message, owner, scenario_id, instance, created, "
            "started, finished, updated")


def get(conn: Connection, job_id: str, *, owner: str | None = None,
        with_result: bool = False) -> dict[str, Any]:
    """A job row; ``owner`` set: only that user's job. NotFound otherwise."""
    cols = _COLUMNS + (", result, error" if with_result else "")
    sql = f"SELECT {cols} FROM job WHERE id = :id"  # noqa: S608 - fixed column lists
    if owner is not None:
        sql += " AND owner = :owner"
    row = conn.execute(text(sql), {"id": job_id, "owner": owner}).mappings().first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    return dict(row)


def list_(conn: Connection, *, owner: str | None = None, processes: list[str] | None = None,
          statuses: list[str] | None = None, limit: int = 100,
          offset: int = 0) -> list[dict[str, Any]]:
    """Jobs newest first; ``owner`` set: only that user's."""
    for s in statuses or ():
        if s not in STATUSES:
            raise InputError(f"status takes {', '.join(STATUSES)}, not {s!r}")
    where = ["TRUE"]
    args: dict[str, Any] = {"limit": limit, "offset": offset}
    if owner is not None:
        where.append("owner = :owner")
        args["owner"] = owner
    if processes:
        where.append("process = ANY(:processes)")
        args["processes"] = list(processes)
    if statuses:
        where.append("status = ANY(:statuses)")
        args["statuses"] = list(statuses)
    sql = (f"SELECT {_COLUMNS} FROM job WHERE {' AND '.join(where)} "  # noqa: S608
           "ORDER BY created DESC, id LIMIT :limit OFFSET :offset")
    return [dict(r) for r in conn.execute(text(sql), args).mappings()]


def dismiss(conn: Connection, job_id: str, *, owner: str | None = None) -> dict[str, Any]:
    """Remove a job's record (a running job stops at its next progress call); its row
    as it was, with status ``dismissed``."""
    row = get(conn, job_id, owner=owner)
    conn.execute(text("DELETE FROM job WHERE id = :id"), {"id": job_id})
    row["status"] = "dismissed"
    row["message"] = "job.dismissed"
    row["updated"] = dt.datetime.now(dt.UTC)
    return row


class JobRunner:
    """The worker pool of one server instance (``app.state.jobs``)."""

    def __init__(self, engine: Engine, workers: int = JOB_WORKERS,
                 status_for: Callable[[Exception], int] = lambda exc: 500) -> None:
        """``status_for``: the HTTP status a job's error answers its results with (the
        server's one mapping, ``server.errors.status_for``)."""
        self.engine = engine
        self.status_for = status_for
        self.workers = workers
        self.instance = secrets.randbelow(2**31 - 1) + 1
        self.started_at = dt.datetime.now(dt.UTC)
        self.on_progress: Progress | None = None
        """Test seam: called inside every progress callback before the dismiss check."""
        self._pool: ThreadPoolExecutor | None = None
        self._lock_conn: Connection | None = None
        self._guard = threading.Lock()
        self._futures: dict[str, Future[None]] = {}
        self._closing = threading.Event()
        self.swept = threading.Event()
        """Set once the startup :meth:`sweep` is over (in a thread: a database that is
        down never holds up the server's start); the job routes wait for it briefly."""
        threading.Thread(target=self._startup_sweep, name="twin-job-sweep",
                         daemon=True).start()

    def _startup_sweep(self) -> None:
        try:
            self.sweep()
        except sa_exc.SQLAlchemyError as exc:  # the database down or not migrated yet
            log.warning("could not check for jobs of stopped servers: %s",
                        str(exc).splitlines()[0][:200])
        finally:
            self.swept.set()

    # --- instance lifecycle -------------------------------------------------------

    def sweep(self) -> int:
        """Mark failed the accepted/running jobs whose server died: their instance holds
        no advisory lock any more (or they name none), older than this server's start."""
        failed = 0
        with self.engine.connect() as conn:
            instances = conn.execute(
                text("SELECT DISTINCT instance FROM job WHERE status IN ('accepted', "
                     "'running') AND updated < :start"), {"start": self.started_at},
            ).scalars().all()
            for inst in instances:
                if inst is not None and inst != self.instance:
                    free = conn.execute(text("SELECT pg_try_advisory_lock(:ns, :i)"),
                                        {"ns": LOCK_NAMESPACE, "i": inst}).scalar_one()
                    if not free:
                        continue  # its server is alive
                    conn.execute(text("SELECT pg_advisory_unlock(:ns, :i)"),
                                 {"ns": LOCK_NAMESPACE, "i": inst})
                elif inst == self.instance:
                    continue
                failed += conn.execute(
                    text("UPDATE job SET status = 'failed', finished = now(), updated = now(), "
                         "message = 'job.server_died', error = CAST(:err AS "
                         "jsonb) WHERE status IN ('accepted', 'running') AND updated < :start "
                         "AND instance IS NOT DISTINCT FROM :i"),
                    {"i": inst, "start": self.started_at, "err": json.dumps(
                        {"status": 503, "code": "ServerStopped",
                         "description": "job.server_died"})},
                ).rowcount
            conn.commit()
        if failed:
            log.warning("%d job(s) of stopped servers marked failed", failed)
        return failed

    def _ensure_started(self) -> ThreadPoolExecutor:
        with self._guard:
            if self._closing.is_set():
                raise Stopping("the server is stopping; submit the job again")
            if self._pool is None:
                conn = self.engine.connect()
                conn.execute(text("SELECT pg_advisory_lock(:ns, :i)"),
                             {"ns": LOCK_NAMESPACE, "i": self.instance})
                conn.commit()
                self._lock_conn = conn
                self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                                thread_name_prefix="twin-job")
            return self._pool

    def close(self) -> None:
        """Stop: running jobs are failed at their next progress call, queued ones at once."""
        self._closing.set()
        pool = self._pool
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            with self._guard:
                ids = list(self._futures)
            if ids:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(
                            text("UPDATE job SET status = 'failed', finished = now(), "
                                 "updated = now(), message = 'job.server_stopping' "
                                 "WHERE id = ANY(:ids) AND status IN ('accepted', 'running')"),
                            {"ids": ids})
                except sa_exc.SQLAlchemyError:
                    log.warning("could not mark %d queued job(s) failed", len(ids))
        if self._lock_conn is not None:
            try:
                self._lock_conn.close()
            except sa_exc.SQLAlchemyError:
                pass
            self._lock_conn = None

    def active(self) -> int:
        """Jobs queued or running in this instance."""
        with self._guard:
            return len(self._futures)

    # --- jobs --------------------------------------------------------------------

    def submit(self, process: str, inputs: dict[str, Any], owner: str | None,
               work: Work) -> dict[str, Any]:
        """Store an accepted job and queue it; its row."""
        pool = self._ensure_started()
        job_id = uuid.uuid4().hex
        with self.engine.begin() as conn:
            row = conn.execute(
                text(f"INSERT INTO job (id, process, owner, inputs, instance, message) "  # noqa: S608
                     f"VALUES (:id, :p, :o, CAST(:inputs AS jsonb), :i, 'job.queued') "
                     f"RETURNING {_COLUMNS}"),
                {"id": job_id, "p": process, "o": owner, "inputs": json.dumps(inputs),
                 "i": self.instance},
            ).mappings().one()
        with self._guard:
            fut = pool.submit(self._run, job_id, work)
            self._futures[job_id] = fut
        return dict(row)

    def _progress(self, job_id: str) -> Progress:
        last = [-1]

        def progress(fraction: float, message: str) -> None:
            if self.on_progress is not None:
                self.on_progress(fraction, message)
            pct = max(0, min(99, int(round(float(fraction) * 100))))
            pct = max(pct, last[0])
            last[0] = pct
            with self.engine.begin() as conn:
                found = conn.execute(
                    text("UPDATE job SET progress = :p, message = :m, updated = now() "
                         "WHERE id = :id AND status = 'running' RETURNING id"),
                    {"p": pct, "m": str(message)[:500], "id": job_id},
                ).first()
            if found is None:
                raise Dismissed(job_id)
            if self._closing.is_set():
                raise Dismissed(job_id)

        return progress

    def _run(self, job_id: str, work: Work) -> None:
        try:
            self._execute(job_id, work)
        except Exception:  # noqa: BLE001 - a worker must never die silently
            log.exception("job %s: the runner failed", job_id)
        finally:
            with self._guard:
                self._futures.pop(job_id, None)

    def _execute(self, job_id: str, work: Work) -> None:
        with self.engine.begin() as conn:
            taken = conn.execute(
                text("UPDATE job SET status = 'running', started = now(), updated = now(), "
                     "message = 'job.started' WHERE id = :id AND status = 'accepted' RETURNING id"),
                {"id": job_id},
            ).first()
        if taken is None:
            return  # dismissed while queued
        progress = self._progress(job_id)
        try:
            with self.engine.connect() as conn:
                progress(0.0, "job.started")
                answer = work(conn, progress)
        except Dismissed:
            log.info("job %s dismissed", job_id)
            self._finish_stopped(job_id)
            return
        except TwinError as exc:
            self._fail(job_id, self.status_for(exc), type(exc).__name__, str(exc)[:2000])
            return
        except sa_exc.DataError as exc:
            first = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
            self._fail(job_id, 400, "InvalidValue", f"a value is out of range or malformed: "
                       f"{first}")
            return
        except Exception:  # noqa: BLE001 - stored as the job's failure, logged
            log.exception("job %s failed", job_id)
            self._fail(job_id, 500, "InternalServerError", "job.internal")
            return
        body = json.dumps(answer)
        scenario = answer.get("id") if isinstance(answer.get("id"), int) else None
        with self.engine.begin() as conn:
            done = conn.execute(
                text("UPDATE job SET status = 'successful', progress = 100, message = 'job.done', "
                     "result = CAST(:r AS jsonb), scenario_id = :s, finished = now(), "
                     "updated = now() WHERE id = :id AND status = 'running' RETURNING id"),
                {"r": body, "s": scenario, "id": job_id},
            ).first()
        if done is None:
            log.info("job %s was dismissed as it finished", job_id)

    def _finish_stopped(self, job_id: str) -> None:
        if self._closing.is_set():
            self._fail(job_id, 503, "ServerStopped", "job.server_stopping")

    def _fail(self, job_id: str, status: int, code: str, description: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text("UPDATE job SET status = 'failed', message = :m, error = CAST(:e AS "
                     "jsonb), finished = now(), updated = now() WHERE id = :id "
                     "AND status = 'running'"),
                {"m": description[:500], "id": job_id, "e": json.dumps(
                    {"status": status, "code": code, "description": description})},
            )
