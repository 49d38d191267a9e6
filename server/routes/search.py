"""Search places, wards and districts, facilities and streets by name.

Matching ignores case and Vietnamese diacritics (PostgreSQL ``unaccent``), so
"Hai Chau" finds "Hải Châu" and "benh vien" finds "Bệnh viện …". Names that equal
the query come first, then names starting with it, then names with a word starting
with it, then names containing it, then close spellings (``pg_trgm`` word similarity).
Only tables published by a layer the caller may see are searched.
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from fastapi import APIRouter, Query
from sqlalchemy import Connection, text

from layers.catalog import Catalog, Layer
from server.deps import CatalogDep, ConnDep, PrincipalDep

router = APIRouter(tags=["search"])


class Source(NamedTuple):
    """One searchable table: SQL expressions over its row alias ``f`` (trusted text)."""

    table: str
    name_vi: str
    name_en: str
    kind: str
    rank: str
    group_by_name: bool = False


SOURCES = (
    Source("admin_area", "f.name_vi", "f.name_en", "f.level",
           # the units in force rank above the historic ones (districts before 2025-07-01)
           "CASE WHEN f.valid_to IS NULL OR f.valid_to > current_date THEN 0 ELSE 1 END"),
    Source("place", "f.name_vi", "f.name_en", "f.kind", "1 + f.rank / 100.0"),
    Source("facility", "f.name_vi", "f.name_en", "f.kind", "1"),
    Source("road_segment", "f.name", "f.name_en", "f.road_class", "2", group_by_name=True),
)

_MATCH = """
  lower(unaccent(coalesce({vi}, ''))) LIKE :pat ESCAPE '\\'
  OR lower(unaccent(coalesce({en}, ''))) LIKE :pat ESCAPE '\\'
  OR word_similarity(:q, lower(unaccent(coalesce({vi}, '')))) >= 0.6
"""
_SCORE = """
  CASE
    WHEN lower(unaccent(coalesce({vi}, ''))) = :q OR lower(unaccent(coalesce({en}, ''))) = :q THEN 0
    WHEN lower(unaccent(coalesce({vi}, ''))) LIKE :prefix ESCAPE '\\'
      OR lower(unaccent(coalesce({en}, ''))) LIKE :prefix ESCAPE '\\' THEN 1
    WHEN lower(unaccent(coalesce({vi}, ''))) LIKE :word ESCAPE '\\'
      OR lower(unaccent(coalesce({en}, ''))) LIKE :word ESCAPE '\\' THEN 2
    WHEN lower(unaccent(coalesce({vi}, ''))) LIKE :pat ESCAPE '\\' THEN 3
    ELSE 4 - word_similarity(:q, lower(unaccent(coalesce({vi}, ''))))
  END
"""


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _source_sql(src: Source, layer: Layer) -> str:
    vi, en = src.name_vi, src.name_en
    match = _MATCH.format(vi=vi, en=en)
    score = _SCORE.format(vi=vi, en=en)
    geom = f"f.{layer.geometry_column}"
    where = f"({match})"
    if layer.where:
        where += f" AND ({layer.where})"
    if src.group_by_name:
        # a street is many segments: one result per name, its box around all of them
        return f"""
        SELECT min(f.{layer.id_column})::text AS id, {vi} AS name_vi, max({en}) AS name_en,
               mode() WITHIN GROUP (ORDER BY {src.kind}) AS kind,
               min({score}) AS score, min({src.rank}) AS rank,
               ST_X(ST_PointOnSurface(ST_Collect({geom}))) AS lon,
               ST_Y(ST_PointOnSurface(ST_Collect({geom}))) AS lat,
               ST_XMin(ST_Extent({geom})) AS w, ST_YMin(ST_Extent({geom})) AS s,
               ST_XMax(ST_Extent({geom})) AS e, ST_YMax(ST_Extent({geom})) AS n
        FROM {layer.table} AS f WHERE {vi} IS NOT NULL AND {where}
        GROUP BY {vi} ORDER BY score, rank, name_vi LIMIT :lim"""
    return f"""
        SELECT f.{layer.id_column}::text AS id, {vi} AS name_vi, {en} AS name_en,
               {src.kind} AS kind, {score} AS score, {src.rank} AS rank,
               ST_X(ST_PointOnSurface({geom})) AS lon, ST_Y(ST_PointOnSurface({geom})) AS lat,
               ST_XMin({geom}) AS w, ST_YMin({geom}) AS s,
               ST_XMax({geom}) AS e, ST_YMax({geom}) AS n
        FROM {layer.table} AS f WHERE {where}
        ORDER BY score, rank, name_vi LIMIT :lim"""


def _layer_for(catalog: Catalog, table: str, role: str | None) -> Layer | None:
    for lyr in catalog.by_table(table):
        if lyr.table == table and lyr.visible_to(role):
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
    found: list[tuple[float, float, int, dict[str, Any]]] = []
    for order, src in enumerate(SOURCES):
        layer = _layer_for(catalog, src.table, role)
        if layer is None:
            continue
        for r in conn.execute(text(_source_sql(src, layer)), params).mappings():
            item = {
                "id": r["id"], "layer": layer.id, "kind": r["kind"],
                "name_vi": r["name_vi"], "name_en": r["name_en"],
                "lon": r["lon"], "lat": r["lat"], "bbox": [r["w"], r["s"], r["e"], r["n"]],
            }
            found.append((float(r["score"]), float(r["rank"]), order, item))
    found.sort(key=lambda t: (t[0], t[1], t[2], t[3]["name_vi"] or ""))
    return [t[3] for t in found[:limit]]


@router.get("/search")
def search_route(
    conn: ConnDep,
    catalog: CatalogDep,
    principal: PrincipalDep,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Name or part of it, "
                            "with or without Vietnamese diacritics")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> dict[str, Any]:
    """Places, wards/districts, facilities and streets whose name matches ``q``."""
    return {"query": q, "items": search(conn, catalog, q, principal.role, limit)}
