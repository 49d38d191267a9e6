"""Query by area: counts per layer inside a drawn polygon, and an export of what is inside.

``POST /area/summary`` takes a GeoJSON Polygon or MultiPolygon (WGS 84 lon/lat, or a
Feature holding one) and answers, for every layer the caller may see, how many of its
features intersect it. ``POST /area/export?layer=…&format=geojson|gpkg|csv`` answers
those features as a file. A malformed or invalid polygon is a 400; a layer the caller
may not see is a 404, as everywhere else.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool

from layers.catalog import Catalog, Layer
from server.deps import CatalogDep, ConnDep, PrincipalDep
from twin.errors import InputError
from twin.geojson import read_geometry

router = APIRouter(prefix="/area", tags=["area"])
log = logging.getLogger("twin.server.area")

#: Most features one export may hold; a bigger area has to be split.
MAX_EXPORT = 100_000
MAX_VERTICES = 10_000
Format = Literal["geojson", "gpkg", "csv"]
MEDIA = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "csv": "text/csv; charset=utf-8",
}
_POLYGON_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object",
            "description": "GeoJSON Polygon or MultiPolygon (lon/lat, WGS 84), or a Feature "
                           "with one as its geometry",
            "example": {"type": "Polygon", "coordinates": [[[108.20, 16.05], [108.22, 16.05],
                                                             [108.22, 16.07], [108.20, 16.07],
                                                             [108.20, 16.05]]]},
        }}},
    }
}


def parse_polygon(raw: bytes) -> bytes:
    """Validate a GeoJSON (Multi)Polygon body; its WKB (EPSG:4326), or :class:`InputError`."""
    import shapely

    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"the body is not JSON: {exc}") from None
    geom = read_geometry(doc, "the polygon", types=("Polygon", "MultiPolygon"),
                         max_vertices=MAX_VERTICES)
    if geom.area == 0:
        raise InputError("the polygon has no area")
    return bytes(shapely.to_wkb(geom))


def _in_area(layer: Layer, date: dt.date | None) -> str:
    """WHERE clause: the layer's own filter, intersecting :g, in force at :d if asked."""
    parts = [f"ST_Intersects(f.{layer.geometry_column}, ST_GeomFromWKB(:g, 4326))"]
    if layer.where:
        parts.append(f"({layer.where})")
    if date and layer.time_field and layer.time_end_field:
        # layers with a validity period: what was in force on that day
        parts.append(f"(f.{layer.time_field} IS NULL OR f.{layer.time_field} <= :d)")
        parts.append(f"(f.{layer.time_end_field} IS NULL OR f.{layer.time_end_field} > :d)")
    return " AND ".join(parts)


def summary(conn: Connection, catalog: Catalog, role: str | None, wkb: bytes,
            date: dt.date | None = None) -> dict[str, Any]:
    """Feature counts per visible layer inside the polygon, and its area in km²."""
    area = conn.execute(
        text("SELECT ST_Area(ST_GeomFromWKB(:g, 4326)::geography) / 1e6"), {"g": wkb}
    ).scalar_one()
    rows: list[dict[str, Any]] = []
    for lyr in catalog.visible(role):
        row: dict[str, Any] = {"id": lyr.id, "title": lyr.title.model_dump(), "count": None}
        try:
            with conn.begin_nested():
                row["count"] = int(conn.execute(
                    text(f"SELECT count(*) FROM {lyr.table} AS f WHERE {_in_area(lyr, date)}"),
                    {"g": wkb, "d": date},
                ).scalar_one())
        except DBAPIError as exc:
            # one broken layer (say, a table not migrated yet) must not hide the others
            log.warning("area summary: layer %s failed: %s", lyr.id, exc.orig)
            row["error"] = "unavailable"
        rows.append(row)
    return {"area_km2": round(float(area), 4), "date": date.isoformat() if date else None,
            "layers": rows}


def _rows(conn: Connection, layer: Layer, wkb: bytes, date: dt.date | None,
          geom_sql: str) -> list[dict[str, Any]]:
    cols = [f"f.{layer.id_column} AS _fid"]
    cols += [f"f.{p.col} AS {p.name}" for p in layer.properties]
    cols.append(f"{geom_sql.format(g=f'f.{layer.geometry_column}')} AS _geom")
    sql = (f"SELECT {', '.join(cols)} FROM {layer.table} AS f WHERE {_in_area(layer, date)} "
           f"ORDER BY f.{layer.id_column} LIMIT {MAX_EXPORT + 1}")
    rows = [dict(r) for r in conn.execute(text(sql), {"g": wkb, "d": date}).mappings()]
    if len(rows) > MAX_EXPORT:
        raise InputError(f"the area holds more than {MAX_EXPORT} {layer.id} features; "
                         "draw a smaller area")
    return rows


def _plain(v: Any) -> Any:
    if isinstance(v, dt.date | dt.datetime):
        return v.isoformat()
    return v


def export_geojson(conn: Connection, layer: Layer, wkb: bytes, date: dt.date | None) -> bytes:
    rows = _rows(conn, layer, wkb, date, "ST_AsGeoJSON({g}, 7)")
    names = [p.name for p in layer.properties]
    feats = [{"type": "Feature", "id": r["_fid"], "geometry": orjson.loads(r["_geom"]),
              "properties": {k: _plain(r[k]) for k in names}} for r in rows]
    return orjson.dumps({"type": "FeatureCollection", "name": layer.id, "features": feats})


def export_csv(conn: Connection, layer: Layer, wkb: bytes, date: dt.date | None) -> bytes:
    """CSV with the id, every declared property and the geometry as WKT (lon/lat)."""
    rows = _rows(conn, layer, wkb, date, "ST_AsText({g})")
    names = [p.name for p in layer.properties]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", *names, "wkt"])
    for r in rows:
        w.writerow([r["_fid"], *(_plain(r[k]) for k in names), r["_geom"]])
    return buf.getvalue().encode("utf-8")


def export_gpkg(conn: Connection, layer: Layer, wkb: bytes, date: dt.date | None) -> bytes:
    """A GeoPackage with one table named after the layer, EPSG:4326, written by pyogrio."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio
    import shapely

    rows = _rows(conn, layer, wkb, date, "ST_AsBinary({g})")
    dtypes = {"integer": "Int64", "number": "Float64", "boolean": "boolean", "string": "string"}
    data: dict[str, Any] = {"id": pd.array([r["_fid"] for r in rows], dtype="Int64")}
    for p in layer.properties:
        values = [r[p.name] for r in rows]
        if p.type in ("date", "datetime"):
            data[p.name] = pd.to_datetime(pd.Series(values, dtype="object"))
        else:
            data[p.name] = pd.array(values, dtype=dtypes[p.type])
    geoms = shapely.from_wkb([bytes(r["_geom"]) for r in rows]) if rows else []
    gdf = gpd.GeoDataFrame(data, geometry=list(geoms), crs="EPSG:4326")
    with tempfile.TemporaryDirectory(prefix="twin-export-") as tmp:
        path = Path(tmp) / f"{layer.id}.gpkg"
        pyogrio.write_dataframe(gdf, path, layer=layer.id, driver="GPKG",
                                geometry_type=layer.geometry_type if rows else "Unknown")
        return path.read_bytes()


_EXPORTERS = {"geojson": export_geojson, "csv": export_csv, "gpkg": export_gpkg}


def _date(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise InputError(f"date must be YYYY-MM-DD, got {value!r}") from None


@router.post("/summary", openapi_extra=_POLYGON_BODY)
async def area_summary(
    request: Request, conn: ConnDep, catalog: CatalogDep, principal: PrincipalDep,
    date: Annotated[str | None, Query(description="Count only features in force on this "
                                      "day (layers with a time field), YYYY-MM-DD")] = None,
) -> dict[str, Any]:
    """How many features of each layer you may see lie in (intersect) the polygon."""
    wkb = parse_polygon(await request.body())
    return await run_in_threadpool(summary, conn, catalog, principal.role, wkb, _date(date))


@router.post("/export", openapi_extra=_POLYGON_BODY, response_class=Response)
async def area_export(
    request: Request, conn: ConnDep, catalog: CatalogDep, principal: PrincipalDep,
    layer: Annotated[str, Query(description="Layer (collection) id")],
    format: Annotated[Format, Query(description="geojson, gpkg or csv")] = "geojson",
    date: Annotated[str | None, Query(description="Only features in force on this day")] = None,
) -> Response:
    """The features of one layer inside the polygon, as GeoJSON, GeoPackage or CSV."""
    lyr = catalog.get(layer, principal.role)
    wkb = parse_polygon(await request.body())
    body = await run_in_threadpool(_EXPORTERS[format], conn, lyr, wkb, _date(date))
    ext = {"geojson": "geojson", "gpkg": "gpkg", "csv": "csv"}[format]
    return Response(body, media_type=MEDIA[format], headers={
        "Content-Disposition": f'attachment; filename="{lyr.id}-area.{ext}"'})
