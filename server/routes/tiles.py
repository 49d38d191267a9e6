"""Vector tiles: OGC API – Tiles (WebMercatorQuad), composite basemap tiles, TileJSON.

A tile request is answered, in order: role and layers checked; the tables' versions
read from memory (kept current by ``LISTEN``); ``If-None-Match`` answered 304; the
in-process cache; and only then one SQL statement in the threadpool. Tiles are
stored gzipped and served with ``Content-Encoding: gzip`` when the client accepts it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import morecantile
from fastapi import APIRouter, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from layers.catalog import Layer
from layers.errors import LayerNotFound, TileOutOfRange
from layers.mvt import MEDIA_TYPE, check_tile, gunzip_bytes, in_zoom
from layers.tilecache import TileKey
from layers.versions import Versions
from server.deps import get_principal
from server.tileservice import TileService, service

TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CRS_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
REL_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
LIVE_MAX_AGE = 5
VARY = "Authorization, Accept-Encoding"
ATTRIBUTION = "Da Nang Twin; © OpenStreetMap contributors (ODbL) where OSM data is used"
_JSON_TYPES = {"string": "string", "integer": "integer", "number": "number",
               "boolean": "boolean", "date": "string", "datetime": "string"}
_TJ_TYPES = {"integer": "Number", "number": "Number", "boolean": "Boolean"}
_DIMENSION = {"point": 0, "multipoint": 0, "linestring": 1, "multilinestring": 1,
              "polygon": 2, "multipolygon": 2}


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    service(app)  # start listening before the first request
    try:
        yield
    finally:
        svc = getattr(app.state, "tiles", None)
        if svc is not None:
            await run_in_threadpool(svc.close)
            app.state.tiles = None


router = APIRouter(tags=["tiles"], lifespan=_lifespan)

_NOT_FOUND = {"description": "Unknown collection (or not visible to the caller), or tile "
                             "matrix set other than WebMercatorQuad"}

# -- helpers ---------------------------------------------------------------------------


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _check_tms(tms_id: str) -> None:
    if tms_id != TMS_ID:
        raise LayerNotFound(f"tile matrix set {tms_id!r} not found (only {TMS_ID})")


def _layers(request: Request, ids: Sequence[str]) -> list[Layer]:
    """The named layers the caller may see; LayerNotFound (404) for any other."""
    role = get_principal(request).role
    catalog = request.app.state.catalog
    if not ids:
        raise LayerNotFound("no layers named")
    return [catalog.get(i, role) for i in dict.fromkeys(ids)]


_digests: dict[int, tuple[Layer, str]] = {}


def _digest(layer: Layer) -> str:
    """A short hash of the layer's definition: a catalogue change changes ETags."""
    known = _digests.get(id(layer))
    if known is None or known[0] is not layer:
        known = (layer, hashlib.sha1(layer.model_dump_json().encode()).hexdigest()[:12])
        _digests[id(layer)] = known
    return known[1]


def _etag(layers: Sequence[Layer], z: int, x: int, y: int, versions: Versions) -> str:
    parts = [f"{lyr.id}:{_digest(lyr)}" for lyr in layers]
    parts += [f"{t}={v}" for t, v in versions]
    raw = f"mvt1|{','.join(parts)}|{z}/{x}/{y}"
    return 'W/"' + hashlib.blake2b(raw.encode(), digest_size=12).hexdigest() + '"'


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    opaque = etag.removeprefix("W/")
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == opaque:
            return True
    return False


def _cache_control(layers: Sequence[Layer]) -> str:
    age = min(min(lyr.cache_seconds, LIVE_MAX_AGE) if lyr.live else lyr.cache_seconds
              for lyr in layers)
    scope = "public" if all(lyr.access == "public" for lyr in layers) else "private"
    return f"{scope}, max-age={max(age, 0)}"


def _accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        name, _, q = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            return q.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


async def _tile(request: Request, ids: Sequence[str], z: int, x: int, y: int,
                composite: bool) -> Response:
    check_tile(z, x, y)
    layers = _layers(request, ids)
    active = [lyr for lyr in layers if in_zoom(lyr, z)]
    if not active and not composite:
        lyr = layers[0]
        raise TileOutOfRange(f"zoom {z} outside {lyr.id}'s range {lyr.minzoom}..{lyr.maxzoom}")
    svc = service(request.app)
    tables = sorted({t for lyr in active for t in lyr.tables})
    if svc.tracker.live:
        versions = svc.versions(tables)
    else:
        versions = await run_in_threadpool(svc.versions, tables)
    headers = {
        "ETag": _etag(layers, z, x, y, versions),
        "Cache-Control": _cache_control(active or layers),
        "Vary": VARY,
    }
    if _etag_matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    body = b""
    if active:
        key = TileKey(tuple(lyr.id for lyr in active), z, x, y, versions)
        cached = svc.cache.get(key)
        body = cached if cached is not None else await _render(svc, key, active)
    if not body:
        if not composite and not await run_in_threadpool(_in_limits, svc, layers[0], z, x, y):
            # OGC API - Tiles core: a tile outside the tileset's tileMatrixSetLimits is 404
            raise TileOutOfRange(f"tile {z}/{x}/{y} is outside {layers[0].id}'s "
                                 "tileMatrixSetLimits (see its tileset)")
        return Response(status_code=204, headers=headers)
    if _accepts_gzip(request):
        headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=MEDIA_TYPE, headers=headers)
    return Response(gunzip_bytes(body), media_type=MEDIA_TYPE, headers=headers)


def _limits(w: float, s: float, e: float, n: float, z: int) -> tuple[int, int, int, int]:
    """(minTileCol, minTileRow, maxTileCol, maxTileRow) covering the box at zoom ``z``."""
    tms = morecantile.tms.get(TMS_ID)
    ul, lr = tms.tile(w, n, z), tms.tile(e, s, z)
    return ul.x, ul.y, lr.x, lr.y


def _in_limits(svc: TileService, layer: Layer, z: int, x: int, y: int) -> bool:
    """The tile lies inside the limits the layer's tileset declares (its data's extent)."""
    min_x, min_y, max_x, max_y = _limits(*svc.bounds(layer), z)
    return min_x <= x <= max_x and min_y <= y <= max_y


async def _render(svc: TileService, key: TileKey, layers: Sequence[Layer]) -> bytes:
    """Render a missed tile in the threadpool and cache it. With the cache on, requests
    for a tile already being rendered wait for that render instead of repeating it."""
    if not svc.cache.enabled:
        return await run_in_threadpool(svc.render, layers, key.z, key.x, key.y, key.versions)
    pending = svc.inflight.get(key)
    if pending is not None:
        return await asyncio.shield(pending)
    fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    svc.inflight[key] = fut
    try:
        body = await run_in_threadpool(svc.render, layers, key.z, key.x, key.y, key.versions)
        svc.cache.put(key, body)
        fut.set_result(body)
        return body
    except BaseException as exc:
        fut.set_exception(exc)
        fut.exception()  # retrieved here: waiters re-raise it, nobody else must
        raise
    finally:
        del svc.inflight[key]


def _fields(layer: Layer) -> dict[str, str]:
    return {p.name: _TJ_TYPES.get(p.type, "String") for p in layer.properties}


async def _tilejson(request: Request, layers: Sequence[Layer], template: str,
                    name: str, description: str) -> dict[str, Any]:
    svc = service(request.app)
    boxes = [await run_in_threadpool(svc.bounds, lyr) for lyr in layers]
    w, s = min(b[0] for b in boxes), min(b[1] for b in boxes)
    e, n = max(b[2] for b in boxes), max(b[3] for b in boxes)
    minzoom = min(lyr.minzoom for lyr in layers)
    maxzoom = max(lyr.maxzoom for lyr in layers)
    return {
        "tilejson": "3.0.0",
        "name": name,
        "description": description,
        "version": "1.0.0",
        "attribution": ATTRIBUTION,
        "scheme": "xyz",
        "tiles": [template],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": [w, s, e, n],
        "center": [(w + e) / 2, (s + n) / 2, min(max(minzoom, 12), maxzoom)],
        "vector_layers": [
            {"id": lyr.id, "description": lyr.description or lyr.title.en,
             "minzoom": lyr.minzoom, "maxzoom": lyr.maxzoom, "fields": _fields(lyr)}
            for lyr in layers
        ],
    }


def _tileset_links(base: str, layer_id: str) -> list[dict[str, Any]]:
    ts = f"{base}/collections/{layer_id}/tiles/{TMS_ID}"
    return [
        {"rel": "self", "href": ts, "type": "application/json", "title": "tileset"},
        {"rel": REL_SCHEME, "href": f"{base}/tileMatrixSets/{TMS_ID}",
         "type": "application/json", "title": "WebMercatorQuad tiling scheme"},
        {"rel": "item", "href": ts + "/{tileMatrix}/{tileCol}/{tileRow}", "templated": True,
         "type": MEDIA_TYPE, "title": "Mapbox vector tiles"},
        # the same tiles with an extension, for clients that read the format from the URL
        # (GDAL's MVT:/vsicurl/…)
        {"rel": "alternate", "href": ts + "/{tileMatrix}/{tileCol}/{tileRow}.mvt",
         "templated": True, "type": MEDIA_TYPE, "title": "Mapbox vector tiles (.mvt)"},
        {"rel": "describedby", "href": ts + "/tilejson.json", "type": "application/json",
         "title": "TileJSON"},
    ]


# -- tile matrix sets --------------------------------------------------------------------


@router.get("/tileMatrixSets", summary="Tiling schemes")
def tile_matrix_sets(request: Request) -> dict[str, Any]:
    """The tiling schemes tiles are offered in (WebMercatorQuad)."""
    tms = morecantile.tms.get(TMS_ID)
    href = f"{_base(request)}/tileMatrixSets/{TMS_ID}"
    return {"tileMatrixSets": [{
        "id": TMS_ID, "title": tms.title, "uri": TMS_URI, "crs": CRS_3857,
        "links": [{"rel": REL_SCHEME, "href": href, "type": "application/json",
                   "title": tms.title}],
    }]}


@router.get("/tileMatrixSets/{tms_id}", summary="A tiling scheme",
            responses={404: {"description": "Unknown tile matrix set (only WebMercatorQuad)"}})
def tile_matrix_set(tms_id: str) -> dict[str, Any]:
    """The OGC TileMatrixSet 2.0 definition."""
    _check_tms(tms_id)
    return morecantile.tms.get(TMS_ID).model_dump(mode="json", exclude_none=True)  # type: ignore[no-any-return]


# -- one collection ----------------------------------------------------------------------


@router.get("/collections/{collection_id}/tiles", summary="A collection's vector tilesets",
            responses={404: _NOT_FOUND})
def collection_tilesets(request: Request, collection_id: str) -> dict[str, Any]:
    """The collection's tilesets (vector, WebMercatorQuad)."""
    layer = _layers(request, [collection_id])[0]
    base = _base(request)
    return {
        "links": [{"rel": "self", "href": f"{base}/collections/{layer.id}/tiles",
                   "type": "application/json"}],
        "tilesets": [{
            "title": layer.title.en, "dataType": "vector", "crs": CRS_3857,
            "tileMatrixSetURI": TMS_URI, "links": _tileset_links(base, layer.id)[:2],
        }],
    }


@router.get("/collections/{collection_id}/tiles/{tms_id}",
            summary="A collection's vector tileset (WebMercatorQuad)",
            responses={404: _NOT_FOUND})
async def collection_tileset(request: Request, collection_id: str, tms_id: str) -> dict[str, Any]:
    """OGC tileset metadata: zoom limits, bounds, the layer's properties, the template."""
    _check_tms(tms_id)
    layer = _layers(request, [collection_id])[0]
    w, s, e, n = await run_in_threadpool(service(request.app).bounds, layer)
    limits = []
    for z in range(layer.minzoom, layer.maxzoom + 1):
        min_x, min_y, max_x, max_y = _limits(w, s, e, n, z)
        limits.append({"tileMatrix": str(z), "minTileRow": min_y, "maxTileRow": max_y,
                       "minTileCol": min_x, "maxTileCol": max_x})
    props = {p.name: {"type": _JSON_TYPES[p.type], "title": p.title.en if p.title else p.name}
             for p in layer.properties}
    return {
        "title": layer.title.en,
        "description": layer.description,
        "dataType": "vector",
        "crs": CRS_3857,
        "tileMatrixSetURI": TMS_URI,
        "tileMatrixSetLimits": limits,
        "boundingBox": {"lowerLeft": [w, s], "upperRight": [e, n], "crs": CRS84},
        "layers": [{
            "id": layer.id, "title": layer.title.en, "dataType": "vector",
            "geometryDimension": _DIMENSION.get(layer.geometry_type.lower()),
            "minTileMatrix": str(layer.minzoom), "maxTileMatrix": str(layer.maxzoom),
            "propertiesSchema": {"type": "object", "properties": props},
        }],
        "links": _tileset_links(_base(request), layer.id),
    }


@router.get("/collections/{collection_id}/tiles/{tms_id}/tilejson.json",
            summary="TileJSON of a collection's tiles", responses={404: _NOT_FOUND})
async def collection_tilejson(request: Request, collection_id: str, tms_id: str) -> dict[str, Any]:
    """TileJSON 3.0.0 for the collection's tiles."""
    _check_tms(tms_id)
    layer = _layers(request, [collection_id])[0]
    template = f"{_base(request)}/collections/{layer.id}/tiles/{TMS_ID}/{{z}}/{{x}}/{{y}}"
    return await _tilejson(request, [layer], template, layer.id,
                           layer.description or layer.title.en)


_TILE_HEADERS = {
    "ETag": {"description": "changes when the tile's data or layer definition does",
             "schema": {"type": "string"}},
    "Cache-Control": {"description": "public for public layers; short for live ones",
                      "schema": {"type": "string"}},
}
_TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
          "headers": {**_TILE_HEADERS, "Content-Encoding": {
              "description": "gzip when the request accepts it",
              "schema": {"type": "string", "enum": ["gzip"]}}},
          "description": "the Mapbox vector tile (gzip when accepted)"},
    204: {"description": "no feature in this tile", "headers": _TILE_HEADERS},
    304: {"description": "not modified (If-None-Match)", "headers": _TILE_HEADERS},
    404: {"description": "unknown layer, tile outside the matrix or the layer's zooms"},
}


@router.get("/collections/{collection_id}/tiles/{tms_id}/{z}/{x}/{y}",
            summary="A vector tile of a collection (z/x/y = tileMatrix/tileCol/tileRow)",
            response_class=Response, responses=_TILE_RESPONSES)
async def collection_tile(request: Request, collection_id: str, tms_id: str,
                          z: int, x: int, y: int) -> Response:
    """One Mapbox vector tile of the collection (one MVT layer named after it)."""
    _check_tms(tms_id)
    return await _tile(request, [collection_id], z, x, y, composite=False)


# -- composite (basemap) tiles -----------------------------------------------------------


def _split(spec: str) -> list[str]:
    return [s.strip() for s in spec.split(",") if s.strip()]


@router.get("/tiles", summary="Vector tilesets (per collection, and the basemap)")
def tilesets(request: Request) -> dict[str, Any]:
    """The vector tilesets the caller may see: one per collection, and the basemap
    (several layers in one tile)."""
    role = get_principal(request).role
    layers = request.app.state.catalog.visible(role)
    base = _base(request)
    scheme = {"rel": REL_SCHEME, "href": f"{base}/tileMatrixSets/{TMS_ID}",
              "type": "application/json", "title": "WebMercatorQuad tiling scheme"}
    sets: list[dict[str, Any]] = []
    basemap = ",".join(lyr.id for lyr in layers if lyr.basemap)
    if basemap:
        sets.append({
            "title": "Basemap", "dataType": "vector", "crs": CRS_3857,
            "tileMatrixSetURI": TMS_URI,
            "links": [
                {"rel": "self", "href": f"{base}/tiles/{basemap}", "type": "application/json",
                 "title": "tileset"},
                {"rel": "item", "templated": True, "type": MEDIA_TYPE,
                 "href": f"{base}/tiles/{basemap}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}.mvt"},
                {"rel": "describedby", "href": f"{base}/tiles/{basemap}/tilejson.json",
                 "type": "application/json", "title": "TileJSON"},
                scheme,
            ],
        })
    for lyr in layers:
        sets.append({"title": lyr.title.en, "dataType": "vector", "crs": CRS_3857,
                     "tileMatrixSetURI": TMS_URI, "links": _tileset_links(base, lyr.id)[:2]})
    return {"links": [{"rel": "self", "href": f"{base}/tiles", "type": "application/json"}],
            "tilesets": sets}


@router.get("/tiles/{layer_ids}", summary="A composite vector tileset (the basemap)",
            responses={404: _NOT_FOUND})
async def composite_tileset(request: Request, layer_ids: str) -> dict[str, Any]:
    """OGC tileset metadata of composite tiles: one MVT layer per id."""
    layers = _layers(request, _split(layer_ids))
    spec = ",".join(lyr.id for lyr in layers)
    base = _base(request)
    boxes = [await run_in_threadpool(service(request.app).bounds, lyr) for lyr in layers]
    w, s = min(b[0] for b in boxes), min(b[1] for b in boxes)
    e, n = max(b[2] for b in boxes), max(b[3] for b in boxes)
    return {
        "title": "Composite tiles: " + ", ".join(lyr.title.en for lyr in layers),
        "dataType": "vector", "crs": CRS_3857, "tileMatrixSetURI": TMS_URI,
        "boundingBox": {"lowerLeft": [w, s], "upperRight": [e, n], "crs": CRS84},
        "layers": [{
            "id": lyr.id, "title": lyr.title.en, "dataType": "vector",
            "geometryDimension": _DIMENSION.get(lyr.geometry_type.lower()),
            "minTileMatrix": str(lyr.minzoom), "maxTileMatrix": str(lyr.maxzoom),
        } for lyr in layers],
        "links": [
            {"rel": "self", "href": f"{base}/tiles/{spec}", "type": "application/json",
             "title": "tileset"},
            {"rel": REL_SCHEME, "href": f"{base}/tileMatrixSets/{TMS_ID}",
             "type": "application/json", "title": "WebMercatorQuad tiling scheme"},
            {"rel": "item", "templated": True, "type": MEDIA_TYPE, "title": "Mapbox vector tiles",
             "href": f"{base}/tiles/{spec}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}.mvt"},
            {"rel": "describedby", "href": f"{base}/tiles/{spec}/tilejson.json",
             "type": "application/json", "title": "TileJSON"},
        ],
    }


@router.get("/tiles/{layer_ids}/tilejson.json",
            summary="TileJSON of composite tiles (comma-separated layer ids)",
            responses={404: _NOT_FOUND})
async def composite_tilejson(request: Request, layer_ids: str) -> dict[str, Any]:
    """TileJSON 3.0.0 for a composite tile of several layers (comma-separated ids)."""
    layers = _layers(request, _split(layer_ids))
    spec = ",".join(lyr.id for lyr in layers)
    template = f"{_base(request)}/tiles/{spec}/{{z}}/{{x}}/{{y}}.mvt"
    return await _tilejson(request, layers, template, spec,
                           "Composite tiles: " + ", ".join(lyr.title.en for lyr in layers))


@router.get("/tiles/{layer_ids}/{z}/{x}/{y}.mvt",
            summary="A composite vector tile: one MVT layer per id (comma-separated)",
            response_class=Response, responses=_TILE_RESPONSES)
async def composite_tile(request: Request, layer_ids: str, z: int, x: int, y: int) -> Response:
    """One tile holding one MVT layer per id (layers outside their zooms are left out);
    404 if any layer is unknown or hidden from the caller."""
    return await _tile(request, _split(layer_ids), z, x, y, composite=True)


# -- the hot path ----------------------------------------------------------------------
# Tiles are requested by the thousand and a cached one costs less than FastAPI's
# parameter handling, so plain Starlette routes answer well-formed tile URLs first
# (z/x/y made of digits). The FastAPI routes above document the same paths in the
# OpenAPI description and answer what the fast routes do not match (a non-integer
# z/x/y gets FastAPI's 422, a negative one a 404), with the same code.


async def _fast_collection_tile(request: Request) -> Response:
    p = request.path_params
    _check_tms(p["tms_id"])
    return await _tile(request, [p["collection_id"]], p["z"], p["x"], p["y"], composite=False)


async def _fast_composite_tile(request: Request) -> Response:
    p = request.path_params
    return await _tile(request, _split(p["layer_ids"]), p["z"], p["x"], p["y"], composite=True)


router.routes[:0] = [
    Route("/collections/{collection_id}/tiles/{tms_id}/{z:int}/{x:int}/{y:int}",
          _fast_collection_tile, methods=["GET"], include_in_schema=False),
    Route("/collections/{collection_id}/tiles/{tms_id}/{z:int}/{x:int}/{y:int}.mvt",
          _fast_collection_tile, methods=["GET"], include_in_schema=False),
    Route("/tiles/{layer_ids}/{z:int}/{x:int}/{y:int}.mvt", _fast_composite_tile,
          methods=["GET"], include_in_schema=False),
]
