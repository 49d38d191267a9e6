"""The viewer: HTML pages built with pydeck, their static files, the caller's catalogue.

Pages: ``/`` (and ``/map``) the public map, ``/report`` the same with the report sheet
open, ``/track/{token}`` a citizen's report, ``/plan`` the planner view, ``/ops`` the
emergency console, ``/signin``. The pages themselves carry only public layers; the
browser asks ``/viewer/layers`` with its bearer token for what the signed-in role may
see. ``/static`` serves ``web/static`` (deck.gl from pydeck's wheel, the MVT worker and
maplibre's css from npm, our glue): nothing is loaded from another host.
"""

from __future__ import annotations

import json
import mimetypes
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from starlette.routing import NoMatchFound
from starlette.staticfiles import StaticFiles

import web
from layers.access import is_staff
from layers.catalog import Catalog, Layer
from server.compression import accepted_encodings
from server.deps import CatalogDep, PrincipalDep
from web import assets
from web.pages import Page, render_map_page, render_signin_page

router = APIRouter(tags=["viewer"])

_static = StaticFiles(packages=[("web", "static")])
_VENDOR = (Path(web.__file__).resolve().parent / "static" / "vendor").resolve()
_NO_STORE = {"Cache-Control": "no-cache"}
#: a follow-up token as Open311 hands it out (``secrets.token_urlsafe``)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,128}")


def layer_json(layer: Layer) -> dict[str, Any]:
    """What the viewer needs of a catalogue layer (no table names or SQL)."""
    return {
        "id": layer.id,
        "title": layer.title.model_dump(),
        "description": layer.description,
        "geometry_type": layer.geometry_type,
        "access": layer.access,
        "basemap": layer.basemap,
        "minzoom": layer.minzoom,
        "maxzoom": layer.maxzoom,
        "time_field": layer.time_field,
        "time_end_field": layer.time_end_field,
        "live": layer.live,
        "properties": [
            {"name": p.name, "type": p.type, "title": p.title.model_dump() if p.title else None}
            for p in layer.properties
        ],
        "style": layer.style,
    }


def visible_layers(catalog: Catalog, role: str | None) -> list[dict[str, Any]]:
    return [layer_json(lyr) for lyr in catalog.visible(role)]


@lru_cache(maxsize=16)
def _page_cached(page: Page, layers_key: str, api_key: str) -> str:
    return render_map_page(page, json.loads(layers_key), api=json.loads(api_key))


#: citizen APIs the pages use when this server has them: name in the page → (route name,
#: its path parameters, the path it must answer at). A page leaves out what this server
#: does not offer instead of asking for it.
_CITIZEN_API: dict[str, tuple[str, dict[str, str], str]] = {
    "warnings": ("warnings_json", {}, "/warnings.json"),
    "nearby": ("nearby", {"fmt": "json"}, "/open311/v2/requests/nearby.json"),
    "support": ("support", {"request_id": "1", "fmt": "json"},
                "/open311/v2/requests/1/support.json"),
    "media": ("get_media", {"name": "x"}, "/open311/v2/media/x"),
}


def _api(request: Request) -> dict[str, bool]:
    def has(route: str, params: dict[str, str], path: str) -> bool:
        try:
            return str(request.app.url_path_for(route, **params)) == path
        except NoMatchFound:
            return False

    return {name: has(*spec) for name, spec in _CITIZEN_API.items()}


def _page(request: Request, page: Page) -> HTMLResponse:
    catalog: Catalog = request.app.state.catalog
    layers = visible_layers(catalog, None)
    html = _page_cached(page, json.dumps(layers, sort_keys=True, ensure_ascii=False),
                        json.dumps(_api(request), sort_keys=True))
    return HTMLResponse(html, headers=_NO_STORE)


def viewer_page(request: Request) -> Response:
    """The public map; the features landing page answers browsers with it."""
    return _page(request, "map")


@router.get("/", include_in_schema=False)
def home(request: Request) -> Response:
    # Only reached when no earlier router (the OGC landing page) claims "/".
    return viewer_page(request)


@router.get("/map", include_in_schema=False)
def map_page(request: Request) -> Response:
    return _page(request, "map")


@router.get("/plan", include_in_schema=False)
def plan_page(request: Request) -> Response:
    return _page(request, "plan")


@router.get("/ops", include_in_schema=False)
def ops_page(request: Request) -> Response:
    return _page(request, "ops")


@router.get("/report", include_in_schema=False)
def report_page(request: Request) -> Response:
    """The public map with the report-a-problem sheet open (report.js opens it here)."""
    return _page(request, "map")


@router.get("/track/{token}", include_in_schema=False)
def track_page(token: str, request: Request) -> Response:
    """A citizen's report followed by its token (the page asks /open311/v2/tokens/…)."""
    if not _TOKEN.fullmatch(token):
        return HTMLResponse("<!DOCTYPE html><title>404</title><p>Không tìm thấy · Not found</p>",
                            status_code=404, headers=_NO_STORE)
    return _page(request, "track")


@router.get("/signin", include_in_schema=False)
def signin_page() -> Response:
    return HTMLResponse(render_signin_page(), headers=_NO_STORE)


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """Browsers ask for /favicon.ico whatever the page links; send them to the SVG icon."""
    return Response(status_code=308, headers={"Location": "/static/favicon.svg",
                                              "Cache-Control": "public, max-age=86400"})


@router.get("/viewer/layers")
def viewer_layers(catalog: CatalogDep, principal: PrincipalDep) -> dict[str, Any]:
    """The layers the caller's role may see, with titles, properties and style hints."""
    return {
        "role": principal.role or "anonymous",
        "staff": is_staff(principal.role),
        "layers": visible_layers(catalog, principal.role),
    }


@router.api_route("/static/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def static(path: str, request: Request) -> Response:
    """Files of ``web/static`` (a route, not a mount: routers cannot carry mounts).
    Vendor files under their hashed names (web.assets' manifest) are immutable."""
    cache = "public, max-age=86400"
    if path.startswith("vendor/"):
        plain = assets.unhash(path.removeprefix("vendor/"))
        if plain is not None:
            path, cache = "vendor/" + plain, "public, max-age=31536000, immutable"
        accepted = accepted_encodings(request.headers.get("accept-encoding", ""))
        for encoding, suffix in (("br", ".br"), ("gzip", ".gz")):
            if encoding not in accepted:
                continue
            packed = (_VENDOR / (path.removeprefix("vendor/") + suffix)).resolve()
            if packed.parent == _VENDOR and packed.is_file():  # web.assets precompressed it
                media = mimetypes.guess_type(path)[0] or "application/octet-stream"
                return FileResponse(packed, media_type=media, headers={
                    "Content-Encoding": encoding, "Vary": "Accept-Encoding",
                    "Cache-Control": cache})
    response = await _static.get_response(path, request.scope)
    if path.startswith("vendor/"):
        response.headers["Cache-Control"] = cache
        response.headers["Vary"] = "Accept-Encoding"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response
