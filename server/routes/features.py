"""OGC API – Features (Part 1 core + GeoJSON, Part 3 filtering with CQL2 text and JSON).

Handlers are sync: FastAPI runs them in its thread pool with a pooled connection (the
items handlers take it from the engine themselves, skipping per-request dependencies).
Every layer the caller's role may not see is absent from ``/collections`` and answers
404 on every path. Bodies are encoded once, as bytes (features are rendered by
PostgreSQL; see :mod:`layers.features`).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from layers import features as feats
from layers import features_meta as meta
from layers.catalog import Catalog, Layer
from layers.errors import InvalidParameter
from layers.features_params import (
    CRS84,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    parse_format,
    parse_items_query,
)
from server.deps import CatalogDep, ConnDep, PrincipalDep, get_principal, read_engine
from twin.errors import NotFound

router = APIRouter(tags=["OGC API Features"])

JSON = "application/json"
CRS84_HEADER = {"Content-Crs": "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"}
CollectionId = Annotated[str, Path(description="Collection (layer) id, see /collections")]
Fmt = Annotated[str | None, Query(description="Response format: json")]

# -- how the responses are described in the OpenAPI document --------------------------

_ERROR = {"application/json": {"schema": {
    "type": "object", "required": ["code", "description"],
    "properties": {"code": {"type": "string", "description": "the error type"},
                   "description": {"type": "string", "description": "what was wrong"}},
}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A parameter is invalid or unknown", "content": _ERROR},
    404: {"description": "No such collection (or not visible to the caller)",
          "content": _ERROR},
}
_OBJECT = {"schema": {"type": "object"}}
_LINKS = {"type": "array", "items": {"type": "object", "required": ["href", "rel"], "properties": {
    "href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"},
    "title": {"type": "string"}}}}
_CONTENT_CRS = {"Content-Crs": {"description": "CRS of the geometries (always CRS84)",
                                "schema": {"type": "string"}}}


def _doc(description: str, media_type: str = JSON, *errors: int,
         also: dict[str, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route answering a JSON document (handlers return bytes)."""
    content = {media_type: _OBJECT, **(also or {})}
    return {200: {"description": description, "content": content},
            **{code: _ERRORS[code] for code in (400, *errors)}}


def _json(doc: Any, media_type: str = JSON) -> Response:
    return Response(orjson.dumps(doc), media_type=media_type)


def _base(request: Request) -> str:
    return str(request.base_url)


def _only_json(f: str | None) -> None:
    if f is not None and parse_format(f) != "json":
        raise InvalidParameter(f"f: only json is available here, got {f!r}")


def landing(request: Request) -> Response:
    """The OGC API landing page as JSON."""
    app = request.app
    return _json(meta.landing(_base(request), app.title, app.description))


@router.get("/", summary="Landing page", response_class=Response,
            responses=_doc("Links to the API definition, conformance and collections; "
                           "browsers asking for HTML get the map viewer",
                           also={"text/html": {"schema": {"type": "string"}}}))
def root(request: Request, f: Fmt = None) -> Response:
    """Landing page: JSON for API clients; browsers asking for HTML get the viewer."""
    accept = request.headers.get("accept", "")
    viewer = getattr(request.app.state, "viewer_page", None)
    if f != "json" and "text/html" in accept and viewer is not None:
        return viewer(request)  # type: ignore[no-any-return]
    _only_json(f)
    return landing(request)


@router.get("/conformance", summary="Conformance classes", response_class=Response,
            responses=_doc("The conformance classes (conformsTo URIs)"))
def conformance(f: Fmt = None) -> Response:
    """The OGC API conformance classes this server implements."""
    _only_json(f)
    return _json(meta.conformance())


@router.get("/collections", summary="Collections", response_class=Response,
            responses=_doc("The collections the caller may see"))
def collections(request: Request, conn: ConnDep, catalog: CatalogDep,
                principal: PrincipalDep, f: Fmt = None) -> Response:
    """The collections (layers) the caller may see."""
    _only_json(f)
    return _json(meta.collections(conn, catalog.visible(principal.role), _base(request)))


@router.get("/collections/{collection_id}", summary="One collection", response_class=Response,
            responses=_doc("The collection: extent, CRS, links", JSON, 404))
def collection(collection_id: CollectionId, request: Request, conn: ConnDep,
               catalog: CatalogDep, principal: PrincipalDep, f: Fmt = None) -> Response:
    """A collection's description: extent, links to items, queryables and tiles."""
    layer = catalog.get(collection_id, principal.role)
    _only_json(f)
    return _json(meta.collection(conn, layer, _base(request)))


@router.get("/collections/{collection_id}/queryables", summary="Queryables",
            response_class=Response,
            responses=_doc("JSON Schema of the queryable properties",
                           "application/schema+json", 404))
def queryables(collection_id: CollectionId, request: Request, catalog: CatalogDep,
               principal: PrincipalDep, f: Fmt = None) -> Response:
    """JSON Schema of the properties that filters and sortby may name (as
    ``application/json`` to clients that do not ask for ``application/schema+json``)."""
    layer = catalog.get(collection_id, principal.role)
    _only_json(f)
    accept = request.headers.get("accept", "")
    plain = "application/json" in accept and "schema+json" not in accept
    return _json(meta.queryables(layer, _base(request)),
                 JSON if plain else "application/schema+json")


@router.get("/collections/{collection_id}/schema", summary="Feature schema",
            response_class=Response,
            responses=_doc("JSON Schema of the features", "application/schema+json", 404))
def schema(collection_id: CollectionId, request: Request, catalog: CatalogDep,
           principal: PrincipalDep, f: Fmt = None) -> Response:
    """JSON Schema of the collection's items (GeoJSON Features with typed properties)."""
    layer = catalog.get(collection_id, principal.role)
    _only_json(f)
    return _json(meta.feature_schema(layer, _base(request)), "application/schema+json")


def _query_param(name: str, description: str, schema: dict[str, Any] | None = None,
                 **more: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False,
            "schema": schema or {"type": "string"}, "description": description, **more}


def _list_param(name: str, description: str, items: dict[str, Any]) -> dict[str, Any]:
    """A comma-separated list (OpenAPI ``style: form, explode: false``)."""
    return _query_param(name, description, {"type": "array", "items": items},
                        style="form", explode=False)


_CRS = {"type": "string", "format": "uri", "default": CRS84}

# Documented here, parsed by layers.features_params: FastAPI would otherwise validate
# them on every request only to hand back strings.
ITEMS_PARAMETERS = [
    _query_param("bbox", "minx,miny,maxx,maxy in CRS84 degrees (of 6 numbers, the heights "
                         "are ignored)",
                 {"type": "array", "items": {"type": "number"},
                  "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}]},
                 style="form", explode=False),
    _query_param("bbox-crs", "CRS of bbox: CRS84 only", _CRS),
    _query_param("datetime", "Instant or interval start/end ('..' = open), RFC 3339; for "
                             "collections with a time field"),
    _query_param("limit", f"Page size (default {DEFAULT_LIMIT})",
                 {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                  "default": DEFAULT_LIMIT}),
    _query_param("offset", "Features to skip (the next/prev links carry it)",
                 {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}),
    _list_param("properties", "Properties to return (comma list)", {"type": "string"}),
    _list_param("sortby", "Sort keys, comma list of [+|-]property", {"type": "string"}),
    _list_param("ids", "Feature ids (comma list)", {"type": "integer"}),
    _query_param("filter", "CQL2 filter on the queryables "
                           "(see /collections/{collectionId}/queryables)"),
    _query_param("filter-lang", "Language of filter (cql-text: the draft's name of "
                                "cql2-text, which GDAL up to 3.6 looks for)",
                 {"type": "string", "enum": ["cql2-text", "cql2-json", "cql-text"],
                  "default": "cql2-text"}),
    _query_param("filter-crs", "CRS of the filter's geometries: CRS84 only", _CRS),
    _query_param("crs", "CRS of the response: CRS84 only", _CRS),
    _query_param("f", "Response format (or Accept: text/csv)",
                 {"type": "string", "enum": ["json", "csv"], "default": "json"}),
]
_FEATURE_COLLECTION = {"schema": {
    "type": "object", "required": ["type", "features"],
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": {"type": "object"}},
        "links": _LINKS,
        "numberReturned": {"type": "integer", "minimum": 0},
        "timeStamp": {"type": "string", "format": "date-time"},
    },
}}
_FEATURE = {"schema": {
    "type": "object", "required": ["type", "geometry", "properties"],
    "properties": {
        "type": {"type": "string", "enum": ["Feature"]},
        "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "geometry": {"type": "object", "nullable": True},
        "properties": {"type": "object", "nullable": True},
        "links": _LINKS,
    },
}}


@router.get(
    "/collections/{collection_id}/items",
    summary="Features",
    response_class=Response,
    responses={
        200: {"description": "A page of features (GeoJSON FeatureCollection, or CSV with "
                             "a Link header to the next page)",
              "headers": _CONTENT_CRS,
              "content": {feats.GEOJSON: _FEATURE_COLLECTION,
                          "text/csv": {"schema": {"type": "string"}}}},
        **_ERRORS,
    },
    openapi_extra={"parameters": ITEMS_PARAMETERS},
)
def items(collection_id: CollectionId, request: Request) -> Response:
    """Features of a collection, filtered and paged (GeoJSON or CSV).

    Any declared property may also be given as ``property=value`` (equality).
    Unknown parameters are refused with 400.
    """
    # The hot path: no per-request dependencies (FastAPI runs each sync dependency in
    # its own thread-pool hop); the same catalogue, principal rule and connection pool.
    layer = _layer(request, collection_id)
    q = parse_items_query(layer, request.query_params.multi_items(),
                          request.headers.get("accept"))
    with read_engine(request).connect() as conn:
        if q.format == "csv":
            body, has_next = feats.items_csv(conn, layer, q)
        else:
            page = feats.items(conn, layer, q)
    if q.format == "csv":
        headers = {"Content-Disposition": f'inline; filename="{layer.id}.csv"'}
        if has_next:
            headers["Link"] = f'<{_page_url(request, q.offset + q.limit)}>; rel="next"'
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    links = _item_links(request, layer.id, q.offset, q.limit, page.has_next)
    return Response(feats.feature_collection(page, links), media_type=feats.GEOJSON,
                    headers=CRS84_HEADER)


@router.get("/collections/{collection_id}/items/{fid}", summary="One feature",
            response_class=Response,
            responses={200: {"description": "The feature (GeoJSON)", "headers": _CONTENT_CRS,
                             "content": {feats.GEOJSON: _FEATURE}},
                       400: _ERRORS[400],
                       404: {"description": "No such feature or collection",
                             "content": _ERROR}})
def item(collection_id: CollectionId, fid: str, request: Request, f: Fmt = None) -> Response:
    """One feature by id (404 when absent)."""
    layer = _layer(request, collection_id)
    _only_json(f)
    try:
        n = int(fid)
    except ValueError:
        n = None
    text = None
    if n is not None and -2**63 <= n < 2**63:
        with read_engine(request).connect() as conn:
            text = feats.feature(conn, layer, n)
    if text is None:
        raise NotFound(f"feature {fid!r} not found in collection {layer.id!r}")
    base = _base(request)
    links = [
        {"href": str(request.url), "rel": "self", "type": feats.GEOJSON},
        {"href": f"{base}collections/{layer.id}", "rel": "collection", "type": JSON},
    ]
    return Response(feats.feature_document(text, links), media_type=feats.GEOJSON,
                    headers=CRS84_HEADER)


def _layer(request: Request, collection_id: str) -> Layer:
    """The layer, or 404 when unknown or not visible to the caller."""
    catalog: Catalog = request.app.state.catalog
    return catalog.get(collection_id, get_principal(request).role)


def _page_url(request: Request, offset: int) -> str:
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
    if offset:
        pairs.append(("offset", str(offset)))
    url = request.url.remove_query_params(list(request.query_params.keys()))
    return f"{url}?{urlencode(pairs)}" if pairs else str(url)


def _item_links(request: Request, layer_id: str, offset: int, limit: int,
                has_next: bool) -> list[dict[str, Any]]:
    base = _base(request)
    links: list[dict[str, Any]] = [
        {"href": str(request.url), "rel": "self", "type": feats.GEOJSON, "title": "This page"},
        {"href": f"{base}collections/{layer_id}", "rel": "collection", "type": JSON,
         "title": "The collection"},
    ]
    csv_pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "f"]
    csv_url = request.url.remove_query_params(list(request.query_params.keys()))
    links.append({"href": f"{csv_url}?{urlencode([*csv_pairs, ('f', 'csv')])}",
                  "rel": "alternate", "type": "text/csv", "title": "This page as CSV"})
    if has_next:
        links.append({"href": _page_url(request, offset + limit), "rel": "next",
                      "type": feats.GEOJSON, "title": "Next page"})
    if offset > 0:
        links.append({"href": _page_url(request, max(0, offset - limit)), "rel": "prev",
                      "type": feats.GEOJSON, "title": "Previous page"})
    return links
