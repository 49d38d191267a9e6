"""Road noding: lines → a connected, routable graph in ``road_node`` / ``road_segment``.

Geometry is WKB in EPSG:4326 (lon/lat); lengths are geodesic metres, costs seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterator, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, text

from twin.analysis.components import refresh_components
from twin.ingest.common import line_wkb, merge, point_wkb, stage, write_rows
from twin.ingest.summary import Summary

# -- noding ---------------------------------------------------------------------------


class Piece(NamedTuple):
    """One edge of the noded graph: the k-th piece (1-based) of input line ``line``."""

    line: int
    k: int
    from_key: Hashable
    to_key: Hashable
    coords: list[tuple[float, float]]


def split_lines(lines: Sequence[Sequence[tuple[Hashable, float, float]]]) -> Iterator[Piece]:
    """Node lines into graph edges.

    A line is split at each of its points whose key (an OSM node id, or a rounded
    coordinate) occurs two or more times over all lines, and at its ends. Pieces that
    collapse to one location are dropped.

    Parameters
    ----------
    lines
        Each line is a sequence of ``(key, lon, lat)``; EPSG:4326 degrees.
    """
    uses: Counter[Hashable] = Counter()
    for pts in lines:
        uses.update(p[0] for p in pts)
    for i, pts in enumerate(lines):
        if len(pts) < 2:
            continue
        k = 0
        start = 0
        for j in range(1, len(pts)):
            if j == len(pts) - 1 or uses[pts[j][0]] > 1:
                piece = pts[start : j + 1]
                coords = [(p[1], p[2]) for p in piece]
                if len(set(coords)) >= 2:
                    k += 1
                    yield Piece(i, k, piece[0][0], piece[-1][0], coords)
                start = j


# -- road graph -----------------------------------------------------------------------


class RoadLine(NamedTuple):
    """A road as read from a file, before noding. ``oneway`` is 1, 0 or -1."""

    source_id: str
    pts: list[tuple[Hashable, float, float]]
    road_class: str
    name: str | None
    name_en: str | None
    ref: str | None
    oneway: int
    maxspeed_kmh: float
    lanes: int | None
    bridge: bool


_SEGMENT_STAGE = [
    ("source_id", "text"),
    ("from_key", "text"),
    ("to_key", "text"),
    ("road_class", "text"),
    ("name", "text"),
    ("name_en", "text"),
    ("ref", "text"),
    ("oneway", "boolean"),
    ("maxspeed_kmh", "float8"),
    ("lanes", "integer"),
    ("bridge", "boolean"),
    ("geom", "bytea"),
]


def write_roads(
    conn: Connection,
    lines: Sequence[RoadLine],
    *,
    source: str,
    node_id: Any,
    summary: Summary,
) -> None:
    """Node ``lines`` into a routable graph and upsert ``road_node`` / ``road_segment``.

    Segment ids are ``<line source_id>/<k>``; pieces of these lines left over from an
    earlier import (the line has since been split differently) are deleted. Costs are
    seconds at ``maxspeed_kmh`` over the geodesic length; ``reverse_cost`` is −1 on
    one-way roads, whose geometry runs in the direction of travel. The connected
    components of the whole road network are refreshed last (same transaction).

    Parameters
    ----------
    node_id
        Callable giving a node's ``source_id`` from its key.
    """
    nodes: dict[str, tuple[float, float]] = {}
    segs: list[tuple[Any, ...]] = []
    for piece in split_lines([ln.pts for ln in lines]):
        ln = lines[piece.line]
        a, b, coords = node_id(piece.from_key), node_id(piece.to_key), piece.coords
        nodes[a] = coords[0]
        nodes[b] = coords[-1]
        if ln.oneway < 0:
            a, b, coords = b, a, coords[::-1]
        segs.append(
            (
                f"{ln.source_id}/{piece.k}",
                a,
                b,
                ln.road_class,
                ln.name,
                ln.name_en,
                ln.ref,
                ln.oneway != 0,
                ln.maxspeed_kmh,
                ln.lanes,
                ln.bridge,
                line_wkb(coords),
            )
        )
    write_rows(
        conn,
        "road_node",
        [("geom", "bytea")],
        ((k, point_wkb(*xy)) for k, xy in nodes.items()),
        source=source,
        summary=summary,
    )
    n = stage(conn, "_stage_road_segment", _SEGMENT_STAGE, segs)
    gone = conn.execute(
        text(
            """
            DELETE FROM road_segment r
            WHERE r.source = :source
              AND regexp_replace(r.source_id, '/[0-9]+$', '') IN
                  (SELECT regexp_replace(source_id, '/[0-9]+$', '') FROM _stage_road_segment)
              AND r.source_id NOT IN (SELECT source_id FROM _stage_road_segment)
            """
        ),
        {"source": source},
    ).rowcount
    if gone:
        summary.notes.append(f"road_segment: {gone} stale pieces of re-split roads deleted")
    secs = "s.len / (s.maxspeed_kmh / 3.6)"
    targets = {c: f"s.{c}" for c, _ in _SEGMENT_STAGE[3:-1]}
    targets.update(
        from_node="fn.id",
        to_node="tn.id",
        geom="s.g",
        length_m="s.len",
        cost=secs,
        reverse_cost=f"CASE WHEN s.oneway THEN -1 ELSE {secs} END",
    )
    g = "ST_GeomFromWKB(t.geom, 4326)"
    joins = (
        "JOIN road_node fn ON fn.source = :source AND fn.source_id = s.from_key "
        "JOIN road_node tn ON tn.source = :source AND tn.source_id = s.to_key"
    )
    merge(
        conn,
        "road_segment",
        "_stage_road_segment",
        targets,
        source=source,
        joins=joins,
        summary=summary,
        staged_rows=n,
        derived=f"{g} AS g, ST_Length({g}::geography) AS len",
    )
    summary.notes.append(refresh_components(conn).note())
