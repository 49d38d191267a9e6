"""Search places, wards and districts, facilities and streets by name.

Matching ignores case and Vietnamese diacritics (PostgreSQL ``unaccent``), so
"Hai Chau" finds "Hải Châu" and "benh vien" finds "Bệnh viện …". Names that equal
the query come first (also without a generic first word: "Đường Hoàng Diệu" for
"hoang dieu"), then names starting with it, then names with a word starting with it,
then names containing it, then close spellings (``pg_trgm`` word similarity). Within
a tier, importance decides (a unit in force, a place, a hospital, a main road, a long
street before an alley, then parks, lakes and named buildings) together with how much
of the name the query covers; ties fall in Vietnamese order.
Only tables published by a layer the caller may see are searched.
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from fastapi import APIRouter, Query
from sqlalchemy import Connection, text

from layers.catalog import Catalog, Layer
from server.deps import CatalogDep, PrincipalDep, ReadConnDep

router = APIRouter(tags=["search"])


class Source(NamedTuple):
    """One searchable table: SQL expressions over its row alias ``f`` (trusted text).

    ``weight`` is the feature's importance within a match tier, lower first: a main
    road before an alley, a hospital before a café, a unit in force before a historic one.
    """

    table: str
    name_vi: str
    name_en: str
    kind: str
    weight: str
    group_by_name: bool = False
    layer_id: str | None = None


# Generic words a name starts with: "Đường Hoàng Diệu" is an exact match for "hoang dieu".
_GENERIC = r"^(duong|pho|dai lo|quoc lo|phuong|quan|xa|huyen|cau) "
# Alleys and lanes: "Kiệt 12 Hoàng Diệu", "Hẻm 2 …", "K391 …", "Ngõ …".
_ALLEY = r"^(kiet|hem|ngo|ngach|k[0-9]|h[0-9])"
_ROAD_CLASS = ("CASE {c} WHEN 'motorway' THEN 0 WHEN 'trunk' THEN 0.1 WHEN 'primary' THEN 0.2 "
               "WHEN 'secondary' THEN 0.3 WHEN 'tertiary' THEN 0.4 WHEN 'unclassified' THEN 0.6 "
               "WHEN 'residential' THEN 0.7 WHEN 'living_street' THEN 0.8 ELSE 1 END")
_FACILITY_KIND = ("CASE {k} WHEN 'hospital' THEN 0.3 WHEN 'fire_station' THEN 0.4 "
                  "WHEN 'police' THEN 0.5 WHEN 'shelter' THEN 0.5 WHEN 'school' THEN 0.7 "
                  "ELSE 1 END")

SOURCES = (
    Source("admin_area", "f.name_vi", "f.name_en", "f.level",
           # the units in force rank above the historic ones (districts before 2025-07-01)
           "CASE WHEN f.valid_to IS NULL OR f.valid_to > current_date THEN 0 ELSE 1.5 END"),
    Source("place", "f.name_vi", "f.name_en", "f.kind", "0.5 + f.rank / 100.0"),
    Source("facility", "f.name_vi", "f.name_en", "f.kind",
           _FACILITY_KIND.format(k="f.kind") + " - least(coalesce(f.capacity, 0), 1000) / 50000.0"),
    Source("road_segment", "f.name", "f.name_en", "f.road_class",
           # one street: its best class, longer streets first, alleys after streets
           "min(" + _ROAD_CLASS.format(c="f.road_class") + ")"
           " - least(sum(ST_Length(f.geom::geography)), 5000) / 20000.0"
           f" + CASE WHEN lower(unaccent(f.name)) ~ '{_ALLEY}' THEN 1 ELSE 0 END",
           group_by_name=True),
    Source("land_cover", "f.name", "NULL", "f.kind", "0.6", layer_id="water"),
    Source("land_cover", "f.name", "NULL", "f.kind", "0.6", layer_id="landuse"),
    Source("building", "f.name", "NULL", "'building'", "1.2"),
)

# The name without its generic first word, unaccented and lower-cased.
_CORE = "regexp_replace(lower(unaccent(coalesce({vi}, ''))), '" + _GENERIC + "', '')"
_MATCH = """
  lower(unaccent(coalesce({vi}, ''))) LIKE :pat ESCAPE '\\'
  OR lower(unaccent(coalesce({en}, ''))) LIKE :pat ESCAPE '\\'
  OR word_similarity(:q, lower(unaccent(coalesce({vi}, '')))) >= 0.6
"""
# Match tiers: exact (also without the generic word), prefix, word prefix, anywhere, close
# spelling; within a tier the share of the name the query covers (a short name first).
_SCORE = """
  CASE
    WHEN lower(unaccent(coalesce({vi}, ''))) = :q OR lower(unaccent(coalesce({en}, ''))) = :q
      OR {core} = :q THEN 0
    WHEN lower(unaccent(coalesce({vi}, ''))) LIKE :prefix ESCAPE '\\'
      OR lower(unaccent(coalesce({en}, ''))) LIKE :prefix ESCAPE '\\'
      OR {core} LIKE :prefix ESCAPE '\\' THEN 1
    WHEN lower(unaccent(coalesce({vi}, ''))) LIKE :word ESCAPE '\\'
      OR lower(unaccent(coalesce({en}, ''))) LIKE :word ESCAPE '\\' THEN 2
    WHEN lower(unaccent(coalesce({vi}, ''))) LIKE :pat ESCAPE '\\' THEN 3
    ELSE 4 - word_similarity(:q, lower(unaccent(coalesce({vi}, ''))))
  END
"""
_COVER = "1 - length(:q)::float / greatest(length(coalesce({vi}, '')), 1)"


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _source_sql(src: Source, layer: Layer) -> str:
    vi, en = src.name_vi, src.name_en
    match = _MATCH.format(vi=vi, en=en)
    score = _SCORE.format(vi=vi, en=en, core=_CORE.format(vi=vi))
    cover = _COVER.format(vi=vi)
    geom = f"f.{layer.geometry_column}"
    where = f"{vi} IS NOT NULL AND ({match})"
    if layer.where:
        where += f" AND ({layer.where})"
    if src.group_by_name:
        # a street is many segments: one result per name, its box around all of them
        return f"""
        SELECT min(f.{layer.id_column})::text AS id, {vi} AS name_vi, max({en}) AS name_en,
               mode() WITHIN GROUP (ORDER BY {src.kind}) AS kind,
               min({score}) AS score, {src.weight} + 0.5 * min({cover}) AS rank,
               lower(unaccent({vi})) AS sortkey,
               ST_X(ST_PointOnSurface(ST_Collect({geom}))) AS lon,
               ST_Y(ST_PointOnSurface(ST_Collect({geom}))) AS lat,
               ST_XMin(ST_Extent({geom})) AS w, ST_YMin(ST_Extent({geom})) AS s,
               ST_XMax(ST_Extent({geom})) AS e, ST_YMax(ST_Extent({geom})) AS n
        FROM {layer.table} AS f WHERE {where}
        GROUP BY {vi} ORDER BY score, rank, sortkey LIMIT :lim"""
    return f"""
        SELECT f.{layer.id_column}::text AS id, {vi} AS name_vi, {en} AS name_en,
               {src.kind} AS kind, {score} AS score, {src.weight} + 0.5 * ({cover}) AS rank,
               lower(unaccent({vi})) AS sortkey,
               ST_X(ST_PointOnSurface({geom})) AS lon, ST_Y(ST_PointOnSurface({geom})) AS lat,
               ST_XMin({geom}) AS w, ST_YMin({geom}) AS s,
               ST_XMax({geom}) AS e, ST_YMax({geom}) AS n
        FROM {layer.table} AS f WHERE {where}
        ORDER BY score, rank, sortkey LIMIT :lim"""


def _layer_for(catalog: Catalog, src: Source, role: str | None) -> Layer | None:
    for lyr in catalog.by_table(src.table):
        if src.layer_id is not None and lyr.id != src.layer_id:
            continue
        if lyr.table == src.table and lyr.visible_to(role):
            return lyr
    return None


def search(conn: Connection, catalog: Catalog, q: str, role: str | None,
           limit: int = 10) -> list[dict[str, Any]]:
    """Named features matching ``q`` in the layers ``role`` may see, best first.

    Coordinates are WGS 84 degrees: ``lon``/``lat`` a point on the feature, ``bbox``
    its box ``[west, south, east, north]``.
    """
    norm = conn.execute(text("SELECT lower(unaccent(:q))"), {"q": q.strip()}).scalar_one()
    norm = " ".join(str(norm).split())
    if not norm:
        return []
    esc = _like_escape(norm)
    params = {"q": norm, "pat": f"%{esc}%", "prefix": f"{esc}%", "word": f"% {esc}%",
              "lim": limit}
    found: list[tuple[float, float, str, int, dict[str, Any]]] = []
    for order, src in enumerate(SOURCES):
        layer = _layer_for(catalog, src, role)
        if layer is None:
            continue
        for r in conn.execute(text(_source_sql(src, layer)), params).mappings():
            item = {
                "id": r["id"], "layer": layer.id, "kind": r["kind"],
                "name_vi": r["name_vi"], "name_en": r["name_en"],
                "lon": r["lon"], "lat": r["lat"], "bbox": [r["w"], r["s"], r["e"], r["n"]],
            }
            # ties in Vietnamese order: "Đ" with "D", not after "K" as its code point is
            found.append((float(r["score"]), float(r["rank"]), r["sortkey"] or "", order, item))
    found.sort(key=lambda t: t[:4])
    out: list[dict[str, Any]] = []
    seen: set[tuple[Any, Any]] = set()
    for t in found:  # a ward is an admin unit and a place label: one result
        key = (t[4]["name_vi"], t[4]["kind"])
        if key not in seen:
            seen.add(key)
            out.append(t[4])
    return out[:limit]


@router.get("/search")
def search_route(
    conn: ReadConnDep,
    catalog: CatalogDep,
    principal: PrincipalDep,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Name or part of it, "
                            "with or without Vietnamese diacritics")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> dict[str, Any]:
    """Places, wards/districts, facilities and streets whose name matches ``q``."""
    return {"query": q, "items": search(conn, catalog, q, principal.role, limit)}
