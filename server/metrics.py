"""``/metrics`` in the Prometheus text format (prometheus_client), for staff or a scraper.

Counted as requests pass (a pure ASGI middleware, a few microseconds each): requests and
their latency per route family and status class. Read at scrape time: the tile cache
(hits, misses, bytes), each database pool (size, checked out), live SSE clients, and
from the database the open sensor alarms and the observations ingested in the last
minute with the age of the newest (the MQTT/HTTP ingest rate and lag).

Each worker process has its own registry: with ``--workers N`` a scrape reads the
worker that answered, labelled ``worker`` with its process id.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from layers.access import is_staff
from server.deps import get_principal
from twin.errors import NotFound

router = APIRouter(tags=["operations"])

#: first path segment → family (anything else: "other")
_FAMILIES = {
    "collections": "features", "tiles": "tiles", "tileMatrixSets": "tiles",
    "sta": "sensorthings", "open311": "open311", "incidents": "incidents",
    "warnings": "warnings", "warnings.cap": "warnings", "warnings.json": "warnings",
    "live": "live", "analysis": "analysis", "raster": "raster", "scenarios": "scenarios",
    "search": "search", "area": "area", "alarms": "alarms", "admin": "admin",
    "auth": "auth", "static": "static", "healthz": "health", "readyz": "health",
    "metrics": "metrics", "": "viewer", "plan": "viewer", "ops": "viewer",
    "signin": "viewer", "track": "viewer", "report": "viewer", "viewer": "viewer",
    "openapi.json": "openapi", "docs": "openapi", "redoc": "openapi",
    "conformance": "features", "processes": "processes", "jobs": "processes",
}
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def family(path: str) -> str:
    parts = path.strip("/").split("/")
    head = parts[0]
    if head == "collections" and len(parts) > 2 and parts[2] == "tiles":
        return "tiles"
    return _FAMILIES.get(head, "other")


class Metrics:
    """The app's registry, with the request counters its middleware feeds."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.worker = str(os.getpid())
        self.requests = Counter("twin_http_requests", "HTTP requests answered",
                                ["family", "status", "worker"], registry=self.registry)
        self.latency = Histogram("twin_http_request_seconds",
                                 "Time to the end of the answer (not for /live streams)",
                                 ["family", "worker"], buckets=_BUCKETS,
                                 registry=self.registry)


class MetricsMiddleware:
    """Counts each HTTP request by family and status class and times it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fam = family(scope.get("path", ""))
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            m = self.metrics
            m.requests.labels(fam, f"{status['code'] // 100}xx", m.worker).inc()
            if fam != "live":
                m.latency.labels(fam, m.worker).observe(time.perf_counter() - started)


class _StateCollector:
    """Gauges read from the app's parts at scrape time."""

    def __init__(self, app_state: Any, worker: str) -> None:
        self.state = app_state
        self.worker = worker

    def collect(self) -> Iterator[GaugeMetricFamily]:
        st, w = self.state, self.worker
        svc = getattr(st, "tiles", None)
        cache = GaugeMetricFamily("twin_tile_cache", "Tile cache counters of this worker",
                                  labels=["what", "worker"])
        if svc is not None:
            for what in ("hits", "misses", "evictions"):
                cache.add_metric([what, w], float(getattr(svc.cache, what, 0)))
            cache.add_metric(["bytes", w], float(svc.cache.size))
        yield cache
        pool = GaugeMetricFamily("twin_db_pool", "Database connections per engine",
                                 labels=["engine", "state", "worker"])
        engines = {"primary": getattr(st, "engine", None)}
        if svc is not None and getattr(svc, "engine", None) is not None:
            engines["tiles"] = svc.engine
        for name, eng in engines.items():
            if eng is None:
                continue
            p = eng.pool
            for state, fn in (("size", "size"), ("checked_out", "checkedout"),
                              ("overflow", "overflow")):
                if hasattr(p, fn):
                    pool.add_metric([name, state, w], float(getattr(p, fn)()))
        yield pool
        replicas = getattr(st, "replicas", None)
        if replicas is not None:
            reads = GaugeMetricFamily("twin_db_reads", "Read connections handed out, by "
                                      "engine (replica-N or primary)", labels=["engine", "worker"])
            for i, n in enumerate(replicas.reads[:-1]):
                reads.add_metric([f"replica-{i}", w], float(n))
            reads.add_metric(["primary", w], float(replicas.reads[-1]))
            yield reads
            lag = GaugeMetricFamily("twin_replica_lag_bytes", "WAL bytes a replica is behind "
                                    "(absent: unreachable)", labels=["replica", "worker"])
            up = GaugeMetricFamily("twin_replica_healthy", "1 when a replica takes reads",
                                   labels=["replica", "worker"])
            for i, (b, ok) in enumerate(zip(replicas.lag_bytes, replicas.healthy, strict=True)):
                if b is not None:
                    lag.add_metric([f"replica-{i}", w], b)
                up.add_metric([f"replica-{i}", w], 1.0 if ok else 0.0)
            yield lag
            yield up
        hub = getattr(st, "live_hub", None)
        live = GaugeMetricFamily("twin_live_clients", "SSE clients of this worker",
                                 labels=["worker"])
        live.add_metric([w], float(len(hub.clients)) if hub is not None else 0.0)
        yield live


def _database_gauges(request: Request) -> list[str]:
    """Lines read from the database: open alarms by kind, the ingest of the last minute."""
    lines: list[str] = []
    try:
        with request.app.state.engine.connect() as conn:
            alarms = conn.execute(text(
                "SELECT kind, count(*) FILTER (WHERE acknowledged_at IS NULL), count(*) "
                "FROM alarm WHERE cleared_at IS NULL GROUP BY kind")).all()
            ingest = conn.execute(text(
                "SELECT count(*), extract(epoch FROM now() - max(phenomenon_time)) "
                "FROM observation WHERE phenomenon_time > now() - interval '1 minute'"
            )).one()
    except Exception:  # noqa: BLE001 - metrics must answer while the database is away
        return ["# database unavailable: alarm and ingest gauges left out"]
    lines.append("# HELP twin_alarms_open Sensor alarms not cleared, by kind")
    lines.append("# TYPE twin_alarms_open gauge")
    for kind, unacked, total in alarms:
        lines.append(f'twin_alarms_open{{kind="{kind}",acknowledged="false"}} {int(unacked)}')
        lines.append(f'twin_alarms_open{{kind="{kind}",acknowledged="true"}} '
                     f"{int(total) - int(unacked)}")
    lines.append("# HELP twin_observations_last_minute Observations with a phenomenon time "
                 "in the last minute (ingest rate)")
    lines.append("# TYPE twin_observations_last_minute gauge")
    lines.append(f"twin_observations_last_minute {int(ingest[0])}")
    lines.append("# HELP twin_observation_age_seconds Age of the newest observation of the "
                 "last minute (ingest lag; absent when none)")
    lines.append("# TYPE twin_observation_age_seconds gauge")
    if ingest[1] is not None:
        lines.append(f"twin_observation_age_seconds {float(ingest[1]):.3f}")
    return lines


def install(app: Any) -> Metrics:
    """Attach the registry and the middleware to ``app`` (before it starts)."""
    metrics = Metrics()
    metrics.registry.register(_StateCollector(app.state, metrics.worker))
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return metrics


def _allowed(request: Request) -> bool:
    token = request.app.state.settings.metrics_token
    if token and request.headers.get("authorization", "") == f"Bearer {token}":
        return True
    return is_staff(get_principal(request).role)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}},
                             "description": "Prometheus text format"},
                       404: {"description": "not staff (and no scraper token)"}})
def metrics(request: Request) -> Response:
    """Prometheus metrics for staff, or for a scraper sending ``TWIN_METRICS_TOKEN``."""
    if not _allowed(request):
        raise NotFound("not found")
    m: Metrics = request.app.state.metrics
    body = generate_latest(m.registry).decode() + "\n".join(_database_gauges(request)) + "\n"
    return Response(body, media_type=CONTENT_TYPE_LATEST)
