"""Turn restrictions from OSM relations, resolved to the segments the road writer made.

A relation ``type=restriction`` names a ``from`` way, a ``via`` node (or a short way)
and a ``to`` way. Ways are split at every junction (segment ids ``way/<id>/<k>``), so
each member is resolved to the piece that touches the via point. ``no_*`` forbids the
path ``[from, (via,) to]``; ``only_*`` forbids every other way out of the via node.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from twin.ingest.summary import Summary


@dataclass(frozen=True)
class Restriction:
    """One OSM restriction relation, as read (ids are OSM ids)."""

    relation: int
    kind: str  # no_left_turn, only_straight_on, …
    from_way: int
    to_way: int
    via_node: int | None
    via_way: int | None


# segments of one OSM way touching a road node: the piece of the way at that junction
_PIECE = """
    SELECT s.id, s.from_node, s.to_node FROM road_segment s
    WHERE s.source = :src AND (s.source_id = :way OR s.source_id LIKE :way || '/%')
      AND (s.from_node = :node OR s.to_node = :node)
"""


def write_restrictions(conn: Connection, items: list[Restriction], *, source: str,
                       summary: Summary) -> int:
    """Replace the source's restrictions with ``items`` resolved to segment paths;
    returns how many paths were written (unresolvable relations are skipped, counted)."""
    conn.execute(text("DELETE FROM road_restriction WHERE source = :s"), {"s": source})
    written = 0
    for r in items:
        paths = _resolve(conn, r, source)
        if paths is None:
            summary.skip("road_restriction", "restriction whose ways or via are not in the "
                         "road network (outside the extract?)")
            continue
        via, plist = paths
        for path in plist:
            conn.execute(text(
                "INSERT INTO road_restriction (source, source_id, kind, path, geom) "
                "SELECT :s, :sid, :k, CAST(:p AS bigint[]), geom FROM road_node WHERE id = :v"),
                {"s": source, "sid": f"relation/{r.relation}", "k": r.kind, "p": path,
                 "v": via})
            written += 1
    if written:
        summary.add("road_restriction", "inserted", written)
    return written


def _node_id(conn: Connection, source: str, osm_node: int) -> int | None:
    row = conn.execute(text("SELECT id FROM road_node WHERE source = :s AND source_id = :n"),
                       {"s": source, "n": f"node/{osm_node}"}).first()
    return None if row is None else int(row[0])


def _piece(conn: Connection, source: str, way: int, node: int) -> int | None:
    rows = conn.execute(text(_PIECE), {"src": source, "way": f"way/{way}", "node": node}).all()
    return int(rows[0][0]) if len(rows) == 1 else None


def _resolve(conn: Connection, r: Restriction, source: str) -> tuple[int, list[list[int]]] | None:
    """(via node id, forbidden segment paths) or None when it does not resolve."""
    if r.via_node is not None:
        via = _node_id(conn, source, r.via_node)
        if via is None:
            return None
        frm, to = _piece(conn, source, r.from_way, via), _piece(conn, source, r.to_way, via)
        if frm is None or to is None:
            return None
        if r.kind.startswith("no_"):
            return via, [[frm, to]]
        others = conn.execute(text(
            "SELECT id FROM road_segment WHERE (from_node = :v OR to_node = :v) "
            "AND id NOT IN (:f, :t) ORDER BY id"), {"v": via, "f": frm, "t": to}).scalars()
        return via, [[frm, int(o)] for o in others]
    if r.via_way is None or not r.kind.startswith("no_"):
        return None
    # a short via way (a U-turn through a median): one piece joining from and to
    vias = conn.execute(text(
        "SELECT id, from_node, to_node FROM road_segment WHERE source = :s AND "
        "(source_id = :w OR source_id LIKE :w || '/%')"),
        {"s": source, "w": f"way/{r.via_way}"}).all()
    if len(vias) != 1:
        return None
    vid, a, b = (int(x) for x in vias[0])
    for start, end in ((a, b), (b, a)):
        frm, to = _piece(conn, source, r.from_way, start), _piece(conn, source, r.to_way, end)
        if frm is not None and to is not None:
            return start, [[frm, vid, to]]
    return None
