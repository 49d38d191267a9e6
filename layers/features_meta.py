"""OGC API documents about the data: landing page, conformance, collections, queryables.

Plain Python: links are built from the ``base`` URL the server passes in (ending in /).
Spatial and temporal extents are computed in PostGIS and cached per layer until one of
its tables changes (``table_version``).
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sqlalchemy import Connection, text

from layers.catalog import Layer, layer_versions
from layers.features import GEOJSON
from layers.features_params import CRS84

OAS30 = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/accent-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
]
JSON_SCHEMA_TYPES: dict[str, dict[str, str]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}
_GEOJSON_SCHEMA = "https://geojson.org/schema/{}.json"


def landing(base: str, title: str, description: str) -> dict[str, Any]:
    """The landing page (``/``)."""
    return {
        "title": title,
        "description": description,
        "links": [
            _link(base, "", "self", "application/json", "This document"),
            _link(base, "openapi.json", "service-desc", OAS30, "The API definition"),
            _link(base, "docs", "service-doc", "text/html", "The API documentation"),
            _link(base, "conformance", "conformance", "application/json",
                  "OGC API conformance classes implemented by this server"),
            _link(base, "collections", "data", "application/json", "The collections"),
            _link(base, "tiles", "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                  "application/json", "Vector tilesets"),
            _link(base, "processes", "http://www.opengis.net/def/rel/ogc/1.0/processes",
                  "application/json", "What-if analyses (OGC API - Processes)"),
            _link(base, "jobs", "http://www.opengis.net/def/rel/ogc/1.0/job-list",
                  "application/json", "Jobs of the what-if analyses"),
        ],
    }


def conformance() -> dict[str, Any]:
    from twin.jobs import CONFORMANCE as PROCESSES  # OGC API - Processes

    return {"conformsTo": [*CONFORMANCE, *PROCESSES]}


def collection(conn: Connection, layer: Layer, base: str) -> dict[str, Any]:
    """The description of one collection, with its extent and links."""
    items = f"collections/{layer.id}/items"
    spatial, temporal = extent(conn, layer)
    ext: dict[str, Any] = {"spatial": {"bbox": [spatial] if spatial else [[-180, -90, 180, 90]],
                                       "crs": CRS84}}
    if layer.time_field:
        ext["temporal"] = {"interval": [temporal or [None, None]],
                           "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return {
        "id": layer.id,
        "title": layer.title.en,
        "title_vi": layer.title.vi,
        "description": layer.description,
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "extent": ext,
        "geometryType": layer.geometry_type,
        "links": [
            _link(base, f"collections/{layer.id}", "self", "application/json", layer.title.en),
            _link(base, items, "items", GEOJSON, "Items as GeoJSON"),
            _link(base, f"{items}?f=csv", "items", "text/csv", "Items as CSV"),
            # rel types compare case-insensitively (RFC 8288); GDAL 3.6 matches only
            # this spelling of IANA's "describedby"
            _link(base, f"collections/{layer.id}/schema", "describedBy",
                  "application/schema+json", "JSON Schema of the items (GeoJSON features)"),
            _link(base, f"collections/{layer.id}/queryables",
                  "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                  "application/schema+json", "Queryable properties"),
            # the draft's short rel, which GDAL up to 3.6 follows to push filters to us
            _link(base, f"collections/{layer.id}/queryables", "queryables",
                  "application/json", "Queryable properties"),
            _link(base, f"collections/{layer.id}/tiles",
                  "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                  "application/json", "Vector tilesets"),
        ],
    }


def collections(conn: Connection, layers: list[Layer], base: str) -> dict[str, Any]:
    return {
        "links": [
            _link(base, "collections", "self", "application/json", "The collections"),
        ],
        "collections": [collection(conn, lyr, base) for lyr in layers],
    }


def queryables(layer: Layer, base: str) -> dict[str, Any]:
    """JSON Schema of what filters and sortby may name."""
    props: dict[str, Any] = {
        "id": {"title": "Feature id", "type": "integer"},
        "geometry": {"title": "Geometry", "x-ogc-role": "primary-geometry",
                     "$ref": _GEOJSON_SCHEMA.format(layer.geometry_type)
                     if layer.geometry_type != "Geometry" else _GEOJSON_SCHEMA.format("Geometry")},
    }
    for p in layer.properties:
        entry: dict[str, Any] = {**JSON_SCHEMA_TYPES[p.type]}
        if p.title:
            entry["title"] = p.title.en
            entry["x-title-vi"] = p.title.vi
        if p.col in (layer.time_field, layer.time_end_field):
            entry["x-ogc-role"] = "primary-instant" if not layer.time_end_field else (
                "primary-interval-start" if p.col == layer.time_field else "primary-interval-end")
        props[p.name] = entry
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": f"{base}collections/{layer.id}/queryables",
        "type": "object",
        "title": layer.title.en,
        "properties": props,
        "additionalProperties": False,
        # the draft's list form (an extra keyword JSON Schema ignores): GDAL up to 3.6
        # reads it to learn which properties it may send in a filter
        "queryables": [{"id": k, "type": v.get("type", "geometry")}
                       for k, v in props.items() if k != "geometry"],
    }


def feature_schema(layer: Layer, base: str) -> dict[str, Any]:
    """JSON Schema of one item: a GeoJSON Feature with the layer's typed properties.

    Clients (GDAL's OAPIF driver) read field types from it instead of guessing them
    from the first page (where a float column holding 75.0 reads as integer).
    """
    props: dict[str, Any] = {}
    for p in layer.properties:
        entry: dict[str, Any] = {**JSON_SCHEMA_TYPES[p.type]}
        if p.title:
            entry["title"] = p.title.en
        props[p.name] = entry
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": f"{base}collections/{layer.id}/schema",
        "title": layer.title.en,
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "integer"},
            "geometry": {"$ref": _GEOJSON_SCHEMA.format(layer.geometry_type)},
            "properties": {"type": "object", "properties": props},
        },
    }


def _link(base: str, path: str, rel: str, type_: str, title: str) -> dict[str, str]:
    return {"href": base + path, "rel": rel, "type": type_, "title": title}


# -- extents --------------------------------------------------------------------------

_extents: dict[str, tuple[tuple[Any, ...], Any, Any]] = {}
_lock = threading.Lock()
LARGE_TABLE = 100_000


def extent(conn: Connection, layer: Layer) -> tuple[list[float] | None, list[str | None] | None]:
    """(bbox [minx, miny, maxx, maxy] in CRS84, temporal [start, end]) of ``layer``.

    Cached until a table of the layer changes. A large table without a ``where``
    uses ``ST_EstimatedExtent`` (planner statistics) instead of reading every row.
    """
    versions = layer_versions(conn)
    key = (layer.table, layer.where, layer.geometry_column, layer.time_field,
           layer.time_end_field, *(versions.get(t, 0) for t in layer.tables))
    with _lock:
        hit = _extents.get(layer.id)
    if hit is not None and hit[0] == key:
        return hit[1], hit[2]
    spatial = _spatial_extent(conn, layer)
    temporal = _temporal_extent(conn, layer) if layer.time_field else None
    with _lock:
        _extents[layer.id] = (key, spatial, temporal)
    return spatial, temporal


def _spatial_extent(conn: Connection, layer: Layer) -> list[float] | None:
    g, t = layer.geometry_column, layer.table
    row = None
    if not layer.where:
        rows = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"),
                            {"t": t}).scalar()
        if rows is not None and rows > LARGE_TABLE:
            row = conn.execute(text(
                "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) "
                "FROM (SELECT ST_EstimatedExtent(:t, :g) AS b) e"), {"t": t, "g": g}).first()
    if row is None or row[0] is None:
        where = f"WHERE {layer.where}" if layer.where else ""
        row = conn.execute(text(
            f"SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) "
            f"FROM (SELECT ST_Extent({g}) AS b FROM {t} {where}) e")).first()
    if row is None or row[0] is None:
        return None
    return [round(float(v), 7) for v in row]


def _temporal_extent(conn: Connection, layer: Layer) -> list[str | None]:
    s = layer.time_field
    e = layer.time_end_field
    end = f"CASE WHEN bool_or({e} IS NULL) THEN NULL ELSE max({e}) END" if e else f"max({s})"
    where = f"WHERE {layer.where}" if layer.where else ""
    row = conn.execute(text(f"SELECT min({s}), {end} FROM {layer.table} {where}")).first()
    return [_rfc3339(row[0]) if row else None, _rfc3339(row[1]) if row else None]


def _rfc3339(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, dt.date):
        return f"{v.isoformat()}T00:00:00Z"
    return str(v)
