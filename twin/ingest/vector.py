"""Import any vector file pyogrio reads (GeoJSON, GPKG, Shapefile …) into one table.

Fields map to columns through defaults per table plus the user's ``--map field=column``;
geometry is reprojected to EPSG:4326, repaired and coerced to the table's type. Rows are
upserted on (``source='file:<stem>'``, ``source_id``) so a re-import updates in place.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from twin.analysis.components import refresh_components
from twin.errors import InputError
from twin.ingest.common import (
    AREA_M2,
    LENGTH_M,
    address_of,
    clean_text,
    finish_import,
    parse_bool,
    parse_float,
    parse_height,
    parse_int,
    parse_levels,
    to_multipolygon,
    write_rows,
)
from twin.ingest.osm import facility_kind, land_cover_kind, oneway_of, speed_kmh
from twin.ingest.roads import RoadLine, write_roads
from twin.ingest.summary import Summary
from twin.models import FACILITY_KINDS
from twin.progress import Reporter


def _date(v: Any) -> dt.date | None:
    if isinstance(v, dt.date):
        return v.date() if isinstance(v, dt.datetime) else v
    s = clean_text(v)
    try:
        return dt.date.fromisoformat(s[:10]) if s else None
    except ValueError:
        return None


def _kv(v: Any) -> float | None:
    x = parse_float(v)
    return x / 1000.0 if x is not None and x > 1000 else x  # a value in volts


def _level(value: Any, name: Any = None) -> str | None:
    """Normalise an admin type (``urban_district``, ``Huyện``, ``6``) to a level."""
    for raw in (value, name):
        s = (clean_text(raw) or "").lower()
        if s in ("4", "6", "8"):
            return {"4": "city", "6": "district", "8": "ward"}[s]
        if any(w in s for w in ("district", "huyện", "quận", "thị xã", "town")):
            return "district"
        if any(w in s for w in ("ward", "phường", "thị trấn")):
            return "ward"
        if any(w in s for w in ("commune", "xã")):
            return "commune"
        if any(w in s for w in ("city", "province", "thành phố", "tỉnh")):
            return "city"
    return None


# Column → (SQL type, converter) per table.
_T, _I, _F = ("text", clean_text), ("integer", parse_int), ("float8", parse_float)
COLUMNS: dict[str, dict[str, tuple[str, Callable[[Any], Any]]]] = {
    "building": {"name": _T, "use": _T, "levels": ("integer", parse_levels),
                 "height_m": ("float8", parse_height), "address": _T, "ward": _T,
                 "population": _I, "area_m2": _F},
    "facility": {"kind": _T, "name_vi": _T, "name_en": _T, "capacity": _I, "address": _T,
                 "phone": _T},
    "admin_area": {"level": _T, "code": _T, "name_vi": _T, "name_en": _T, "parent_code": _T,
                   "population": _I, "area_km2": _F, "valid_from": ("date", _date),
                   "valid_to": ("date", _date)},
    "land_cover": {"kind": _T, "name": _T},
    "place": {"kind": _T, "name_vi": _T, "name_en": _T, "rank": _I},
    "road_segment": {"road_class": _T, "name": _T, "name_en": _T, "ref": _T, "oneway": _T,
                     "maxspeed_kmh": _T, "lanes": _I, "bridge": ("boolean", parse_bool)},
    "utility_node": {"network": _T, "kind": _T, "name": _T, "status": _T},
    "utility_edge": {"network": _T, "kind": _T, "diameter_mm": _F,
                     "voltage_kv": ("float8", _kv), "name": _T},
}
SHAPE = {
    "building": "polygon", "admin_area": "polygon", "land_cover": "polygon",
    "facility": "point", "place": "point", "utility_node": "point",
    "road_segment": "line", "utility_edge": "line",
}
# Column → file fields tried in order when the user's mapping does not name the column.
# Shapefiles cut field names to 10 characters (GDAL also turns ':' into '_'), so
# "building:levels" arrives as "building_l" and "addr:housenumber" as "addr_house".
DEFAULTS: dict[str, dict[str, tuple[str, ...]]] = {
    "building": {"name": ("name",), "use": ("use", "building", "amenity", "type"),
                 "levels": ("levels", "building:levels", "building_levels", "building_l"),
                 "height_m": ("height_m", "height"), "address": ("address",),
                 "ward": ("ward",), "population": ("population",)},
    "facility": {"kind": ("kind", "category", "amenity", "healthcare", "emergency", "type"),
                 "name_vi": ("name_vi", "name"), "name_en": ("name_en", "name:en"),
                 "capacity": ("capacity", "beds"), "address": ("address",),
                 "phone": ("phone",)},
    "admin_area": {"level": ("level", "type", "admin_level"), "code": ("code",),
                   "name_vi": ("name_vi", "name"), "name_en": ("name_en", "name:en"),
                   "parent_code": ("parent_code", "parent_cod"), "population": ("population",),
                   "area_km2": ("area_km2",), "valid_from": ("valid_from",),
                   "valid_to": ("valid_to",)},
    "land_cover": {"kind": ("kind",), "name": ("name",)},
    "place": {"kind": ("kind", "place", "type"), "name_vi": ("name_vi", "name"),
              "name_en": ("name_en", "name:en"), "rank": ("rank",)},
    "road_segment": {"road_class": ("road_class", "highway", "class"), "name": ("name",),
                     "name_en": ("name_en", "name:en"), "ref": ("ref",),
                     "oneway": ("oneway",),
                     "maxspeed_kmh": ("maxspeed_kmh", "maxspeed_k", "maxspeed"),
                     "lanes": ("lanes",), "bridge": ("bridge",)},
    "utility_node": {"network": ("network",), "kind": ("kind", "power"), "name": ("name",),
                     "status": ("status",)},
    "utility_edge": {"network": ("network",), "kind": ("kind", "power"),
                     "diameter_mm": ("diameter_mm", "diameter_m", "diameter"),
                     "voltage_kv": ("voltage_kv", "voltage"), "name": ("name",)},
}
ID_FIELDS = ("source_id", "osm_id", "id", "fid", "gid", "objectid", "source_feature_id")
POWER_KINDS = {"minor_line": "line"}


def import_vector(
    conn: Connection,
    path: Path,
    layer: str,
    mapping: dict[str, str],
    *,
    reporter: Reporter,
    file_layer: str | None = None,
    valid_from: dt.date | None = None,
    valid_to: dt.date | None = None,
    prune: bool = False,
) -> Summary:
    """Import one layer of a vector file into table ``layer``, in the caller's transaction.

    Parameters
    ----------
    path
        Any file pyogrio/GDAL reads; it must declare its CRS (reprojected to EPSG:4326).
    layer
        Target table: building, road_segment, facility, admin_area, land_cover, place,
        utility_node or utility_edge.
    mapping
        File field → table column, on top of the defaults; ``field=source_id`` names
        the id field (else ``osm_type``/``osm_id``, a unique id-like field, or the
        feature index).
    file_layer
        Layer inside a multi-layer file (GPKG); the first one by default.
    valid_from, valid_to
        Validity ``[valid_from, valid_to)`` of admin units that the file does not date
        itself (a unit's own dates win). Without either, an admin import notes that its
        units count as valid at every date.
    prune
        Delete rows an earlier import of this file wrote that it no longer holds
        (without it they are counted as ``gone`` and kept).

    Returns
    -------
    Summary
        Counts for the table (roads also count ``road_node``), with skip reasons.

    Raises
    ------
    InputError
        Unknown table, unreadable file, unknown CRS, bad mapping (before any write).
    """
    path = Path(path)
    if layer not in COLUMNS:
        raise InputError(f"unknown target layer {layer!r}; choose one of {', '.join(COLUMNS)}")
    if not path.exists():
        raise InputError(f"vector file not found: {path}")
    source = f"file:{path.stem}" + (f"/{file_layer}" if file_layer else "")
    summary = Summary(source=source)
    task = reporter.task(f"reading {path.name}")
    gdf = _read(path, file_layer, summary)
    reporter.done(task)
    fields = [c for c in gdf.columns if c != gdf.geometry.name]
    columns = COLUMNS[layer]
    for f, c in mapping.items():
        if f not in fields:
            raise InputError(
                f"mapped field {f!r} is not in {path.name}; available fields: "
                + (", ".join(fields) or "(none)")
            )
        if c != "source_id" and c not in columns:
            raise InputError(
                f"{c!r} is not a column of {layer}; columns: source_id, {', '.join(columns)}"
            )
    chosen = {c: f for f, c in mapping.items()}
    for col, candidates in DEFAULTS[layer].items():
        if col not in chosen:
            found = next((f for f in candidates if f in fields), None)
            if found:
                chosen[col] = found
    if (valid_from or valid_to) and "valid_from" not in columns:
        raise InputError(f"--valid-from/--valid-to date admin units; {layer} has no validity")
    if valid_from and valid_to and valid_to <= valid_from:
        raise InputError(f"--valid-to {valid_to} must be after --valid-from {valid_from}")
    if "valid_from" in columns and not (valid_from or valid_to or "valid_from" in chosen
                                          or "valid_to" in chosen):
        summary.notes.append(
            "warning: these admin units carry no valid_from/valid_to, so they count as valid "
            "at every date; give --valid-from/--valid-to (Đà Nẵng's districts ended on "
            "2025-07-01)")
    ids = _ids(gdf, fields, chosen.get("source_id"))
    records = gdf[fields].to_dict("records")
    geoms = _geometries(gdf, SHAPE[layer], summary, layer)
    task = reporter.task(f"checking {len(records)} features", total=len(records))
    rows: list[dict[str, Any]] = []
    for i, rec in enumerate(records):
        if i % 1000 == 999:
            reporter.advance(task, 1000)
        if not geoms[i]:
            continue
        row = {c: columns[c][1](rec[f]) for c, f in chosen.items() if c in columns}
        if valid_from and row.get("valid_from") is None:
            row["valid_from"] = valid_from
        if valid_to and row.get("valid_to") is None:
            row["valid_to"] = valid_to
        reason = _complete(layer, row, rec, "kind" in mapping.values())
        if reason:
            summary.skip(layer, reason)
            continue
        for k, geom in enumerate(geoms[i]):
            sid = ids[i] if len(geoms[i]) == 1 else f"{ids[i]}/{k + 1}"
            rows.append({"source_id": sid, **row, "geom": geom})
    reporter.done(task)
    task = reporter.task(f"writing {layer}", total=1)
    _write(conn, layer, rows, source, summary)
    if finish_import(conn, summary, source, prune=prune) and layer == "road_segment":
        summary.notes.append(refresh_components(conn).note())
    reporter.done(task)
    return summary


def _read(path: Path, file_layer: str | None, summary: Summary) -> Any:
    import pyogrio

    try:
        layers = [str(x[0]) for x in pyogrio.list_layers(path)]
    except Exception as exc:  # noqa: BLE001 - GDAL says why in its message
        raise InputError(f"cannot read {path.name} as a vector file: {exc}") from exc
    if file_layer is not None and file_layer not in layers:
        raise InputError(f"layer {file_layer!r} not in {path.name}; layers: {', '.join(layers)}")
    if file_layer is None and len(layers) > 1:
        summary.notes.append(f"read layer {layers[0]!r} of {', '.join(layers)} (use --layer)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gdf = pyogrio.read_dataframe(path, layer=file_layer or layers[0])
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"cannot read {path.name}: {exc}") from exc
    if gdf.crs is None:
        raise InputError(
            f"{path.name}: unknown CRS (the file declares no coordinate reference system); "
            "add one first, e.g. ogr2ogr -a_srs EPSG:4326 out.gpkg in.shp"
        )
    if gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(4326)
    return gdf


def _ids(gdf: Any, fields: list[str], id_field: str | None) -> list[str]:
    def fmt(v: Any) -> str | None:
        if isinstance(v, float):
            return None if math.isnan(v) else (str(int(v)) if v.is_integer() else str(v))
        return clean_text(v)

    if id_field:
        return [fmt(v) or str(i) for i, v in enumerate(gdf[id_field].tolist())]
    if "osm_type" in fields and "osm_id" in fields:
        return [f"{t}/{fmt(i)}" for t, i in zip(gdf["osm_type"], gdf["osm_id"], strict=True)]
    lower = {f.lower(): f for f in fields}
    for name in ID_FIELDS:
        f = lower.get(name)
        if f and gdf[f].notna().all() and gdf[f].is_unique:
            return [fmt(v) or str(i) for i, v in enumerate(gdf[f].tolist())]
    return [str(i) for i in range(len(gdf))]


def _geometries(gdf: Any, shape: str, summary: Summary, table: str) -> list[list[Any]]:
    """Per feature, the list of shapely geometries to write (usually one, none to skip)."""
    import shapely

    out: list[list[Any]] = []
    for geom in gdf.geometry.values:
        if geom is None or geom.is_empty:
            summary.skip(table, "empty or null geometry")
            out.append([])
            continue
        gtype = geom.geom_type
        geom = shapely.force_2d(geom)
        if shape == "polygon":
            mp, repaired = to_multipolygon(geom)
            if mp is None:
                summary.skip(table, f"no polygon in {gtype} geometry")
                out.append([])
                continue
            if repaired:
                summary.add(table, "repaired")
            out.append([mp])
        elif shape == "point":
            if gtype not in ("Point", "MultiPoint", "Polygon", "MultiPolygon"):
                summary.skip(table, f"{gtype} geometry does not fit a point table")
                out.append([])
                continue
            if gtype != "Point":
                geom = shapely.point_on_surface(shapely.make_valid(geom))
            out.append([geom])
        else:
            if gtype not in ("LineString", "MultiLineString"):
                summary.skip(table, f"{gtype} geometry does not fit a line table")
                out.append([])
                continue
            parts = [p for p in shapely.get_parts(shapely.line_merge(geom))
                     if len(set(p.coords)) >= 2]
            if not parts:
                summary.skip(table, "degenerate line")
            out.append(parts)
    return out


def _first(rec: dict[str, Any], *fields: str) -> Any:
    """The first of ``fields`` that the record has a value for."""
    return next((rec[f] for f in fields if rec.get(f) not in (None, "")), None)


#: OSM highway values for roads that are not there to travel on (yet, or any more)
NOT_ROUTABLE = frozenset({"proposed", "construction", "abandoned", "disused", "razed",
                          "planned", "no", "raceway"})


def _complete(table: str, row: dict[str, Any], rec: dict[str, Any], kind_mapped: bool) -> str:
    """Fill required values in ``row``; return a skip reason, or '' when the row is good."""
    if table == "building":
        row["use"] = row.get("use") or "yes"
        if not row.get("address"):
            row["address"] = address_of(_first(rec, "addr:housenumber", "addr_housenumber",
                                               "addr_house"),
                                        _first(rec, "addr:street", "addr_street", "addr_stree"))
    elif table == "facility":
        raw = row.get("kind")
        kind = raw if raw in FACILITY_KINDS else facility_kind(raw)
        if not kind and not kind_mapped:
            kind = facility_kind(*(rec.get(f) for f in ("amenity", "healthcare", "emergency")))
        if not kind:
            return f"not a facility kind: {raw}"
        row["kind"] = kind
    elif table == "road_segment":
        cls = str(row.get("road_class") or "").strip().lower()
        if cls in NOT_ROUTABLE:
            return f"not a usable road: {cls}"  # never routable, never drawn as a street
    elif table == "admin_area":
        row["level"] = _level(row.get("level"), row.get("name_vi"))
        if not row.get("name_vi"):
            return "no name"
        if not row["level"]:
            return "no level (map a field to level)"
    elif table == "land_cover":
        row["kind"] = row.get("kind") or land_cover_kind(rec)
        if not row["kind"]:
            return "no land cover kind (landuse / natural / leisure)"
    elif table == "place":
        row["kind"] = row.get("kind") or "place"
        row["rank"] = row.get("rank") or 5
        if not row.get("name_vi"):
            return "no name"
    elif table in ("utility_node", "utility_edge"):
        kind = row.get("kind")
        row["kind"] = POWER_KINDS.get(kind or "", kind)
        row["network"] = row.get("network") or ("power" if rec.get("power") else None)
        if table == "utility_node":
            row["status"] = row.get("status") or "in_service"
        if not row["network"] or not row["kind"]:
            return "no network or kind"
    return ""


def _write(
    conn: Connection, table: str, rows: list[dict[str, Any]], source: str, summary: Summary
) -> None:
    import shapely

    if table == "road_segment":
        lines = []
        for r in rows:
            cls = r.get("road_class") or "unclassified"
            lines.append(RoadLine(
                r["source_id"], [((round(x, 7), round(y, 7)), x, y) for x, y in r["geom"].coords],
                cls, r.get("name"), r.get("name_en"), r.get("ref"), oneway_of(r.get("oneway"), cls),
                speed_kmh(r.get("maxspeed_kmh"), cls), r.get("lanes"), bool(r.get("bridge")),
            ))
        write_roads(conn, lines, source=source, summary=summary,
                    node_id=lambda key: f"{key[0]:.7f},{key[1]:.7f}")
        return
    columns = [(c, t) for c, (t, _) in COLUMNS[table].items()]
    names = [c for c, _ in columns]
    computed = {}
    if table == "building":
        computed["area_m2"] = f"COALESCE(s.area_m2, {AREA_M2})"
    if table == "utility_edge":
        computed["length_m"] = LENGTH_M
    write_rows(
        conn, table, [*columns, ("geom", "bytea")],
        ((r["source_id"], *(r.get(c) for c in names), shapely.to_wkb(r["geom"])) for r in rows),
        source=source, summary=summary, computed=computed,
    )
