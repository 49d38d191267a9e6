"""The FastAPI application: ``create_app(settings)`` composes the model and the layers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES

from layers.catalog import load_catalog
from server import openapi
from server.compression import Compression
from server.errors import RequestContext, install_error_handlers
from server.guards import InputGuard
from server.routes import health
from twin.db import ReplicaSet, make_engine
from twin.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. Settings are read here (never at import time) so tests pass theirs."""
    settings = settings or Settings()
    if (problem := settings.key_problem()) is not None:  # `twin serve` says so before
        raise RuntimeError(problem)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = make_engine(settings)
        app.state.closers = []  # background parts (listeners) register their stop here
        if settings.replica_urls:
            app.state.replicas = ReplicaSet(settings, app.state.engine)
            app.state.closers.append(app.state.replicas.close)
        from server.errors import status_for
        from twin.jobs import JobRunner  # OGC API - Processes jobs (server/routes/processes)

        app.state.jobs = JobRunner(app.state.engine, status_for=status_for)
        app.state.closers.append(app.state.jobs.close)
        try:
            yield
        finally:
            for close in reversed(app.state.closers):
                close()
            app.state.engine.dispose()

    app = FastAPI(
        title="Da Nang Twin",
        version="0.1.0",
        description="Digital twin and GIS service for Đà Nẵng: OGC API Features and "
        "Tiles, analysis, incidents, sensors and a web viewer.",
        lifespan=lifespan,
        # FastAPI's own routes would serve OpenAPI 3.1; server.openapi serves 3.0.3.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.catalog = load_catalog(settings.layers_file)
    from server.routes.viewer import viewer_page

    app.state.viewer_page = viewer_page  # browsers asking the landing page for HTML get the map
    install_error_handlers(app)
    if settings.writes_per_minute > 0:
        from server.ratelimit import WriteLimit

        app.add_middleware(WriteLimit, per_minute=settings.writes_per_minute)
    # outermost last: a request id first, then bounded bodies and no NUL characters
    app.add_middleware(InputGuard)
    app.add_middleware(RequestContext)
    # brotli or gzip for JSON, GeoJSON, CSV, HTML and scripts the client accepts it for;
    # tiles come gzipped already, images and event streams are left alone
    app.add_middleware(Compression, minimum_size=1024, compresslevel=5,
                       exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES,
                                              "application/vnd.mapbox-vector-tile"))
    from server import metrics

    metrics.install(app)  # outermost: counts every answer, errors included
    openapi.install(app)
    app.include_router(health.router)
    for extra in _routers():
        app.include_router(extra)
    return app


def _routers() -> list[APIRouter]:
    """One router per API family; the viewer last (its ``/`` yields to the landing page)."""
    from server import metrics
    from server.routes import (
        admin,
        alarms,
        analysis,
        area,
        auth,
        features,
        incidents,
        live,
        open311,
        pmtiles,
        processes,
        rain,
        raster,
        river,
        scenarios,
        search,
        sta,
        tiles,
        viewer,
        warnings,
    )

    families = (auth, features, tiles, pmtiles, search, area, incidents, open311, warnings, live,
                analysis, raster, rain, river, scenarios, processes, sta, alarms, admin, metrics,
                viewer)
    return [m.router for m in families]
