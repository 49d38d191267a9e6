"""Connectivity of the road network, and snapping points to the part of it that counts.

``road_node.component`` is the connected component a node belongs to (pgRouting's id:
the smallest node id in it) and ``component_size`` how many nodes that component holds,
on the undirected graph of ``road_segment`` (a one-way street still connects its ends; a
node with no segment is a component of its own). Importers refresh them at the end of
every road write, in the same transaction.

Snapping prefers large components: two datasets that overlap without touching (the demo
city and an OSM extract), private roads or parking lots left unconnected would otherwise
catch a start point on a small island from which nothing is reachable.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Connection, text

#: metres beyond the nearest node within which a node of a larger component wins
SNAP_SLACK_M = 150.0
#: at most this many rivals of the nearest node are weighed (nearest first: a dense OSM
#: extract has ~100 nodes within 150 m; a point far from everything would otherwise
#: weigh every node)
SNAP_MAX_CANDIDATES = 1000
#: road classes no car may use: the drive graph leaves them out, and drive routes start
#: and end at nodes a car can reach (a footway's end would strand the route)
FOOT_ONLY = ("pedestrian", "footway", "path", "steps", "cycleway", "bridleway", "corridor")
FOOT_ONLY_SQL = "ARRAY[" + ", ".join(f"'{c}'" for c in FOOT_ONLY) + "]::text[]"
CAR_NODE = ("EXISTS (SELECT 1 FROM road_segment cs WHERE (cs.from_node = n.id OR "
            f"cs.to_node = n.id) AND cs.road_class <> ALL({FOOT_ONLY_SQL}))")

REFRESH = """
WITH cc AS (
    SELECT node, component FROM pgr_connectedComponents(
        'SELECT id, from_node AS source, to_node AS target, 1::float8 AS cost,
                1::float8 AS reverse_cost FROM road_segment')
), sized AS (
    SELECT n.id, coalesce(cc.component, n.id) AS component,
           count(*) OVER (PARTITION BY coalesce(cc.component, n.id))::int AS size
    FROM road_node n LEFT JOIN cc ON cc.node = n.id
)
UPDATE road_node r SET component = s.component, component_size = s.size
FROM sized s
WHERE r.id = s.id
  AND (r.component, r.component_size) IS DISTINCT FROM (s.component, s.size)
"""


class Components(NamedTuple):
    """The road network's connectivity after a refresh."""

    nodes: int
    components: int
    largest: int
    updated: int

    def note(self) -> str:
        """One line for an import summary."""
        share = self.largest / self.nodes if self.nodes else 0.0
        return (f"road network: {self.components} connected component(s); the largest holds "
                f"{self.largest} of {self.nodes} nodes ({share:.1%})")


def refresh_components(conn: Connection) -> Components:
    """Recompute ``road_node.component`` / ``component_size`` for the whole network
    (pgr_connectedComponents, one UPDATE touching only the nodes whose values change).

    Parameters
    ----------
    conn
        A connection inside the transaction that wrote the roads.
    """
    updated = conn.execute(text(REFRESH)).rowcount
    row = conn.execute(
        text(
            "SELECT count(*), count(DISTINCT component), coalesce(max(component_size), 0) "
            "FROM road_node"
        )
    ).one()
    return Components(int(row[0]), int(row[1]), int(row[2]), int(updated))


def snap_sql(point: str, *, alias: str = "snap", prefer: str | None = None,
             car: bool = True) -> str:
    """A ``LATERAL`` subquery giving ``(id, distance_m, component)`` of the road node to
    route from for the EPSG:4326 point expression ``point`` (trusted SQL, never input).

    The nodes within ``SNAP_SLACK_M`` metres of the nearest node's distance compete: the
    node of the largest component wins, ties go to the nearest. A point near a small
    island snaps to the main network when that is close by; a point near nothing but the
    island still snaps to the island. Nodes whose component was never computed count as
    components of one node. ``prefer`` (a trusted SQL expression giving a component id,
    e.g. a bound parameter) wins over size: a destination snaps to the component the
    route starts in when that is within reach. With ``car`` (drive routes) only nodes on
    a road a car may use are candidates.
    """
    p = f"({point})"
    dist = f"ST_Distance(n.geom::geography, {p}::geography)"
    first = f"(q.component = {prefer}) IS TRUE DESC, " if prefer else ""
    # Only nodes that could beat the nearest one (a larger component, or the preferred
    # one) are weighed, and none when the nearest is already on the largest component
    # (the usual case: max() reads the component_size index once). The box is in
    # degrees: metres / 110 km per degree of latitude, widened by 1 / cos(latitude) for
    # longitude, holds the circle of radius r.
    rival = "coalesce(n.component_size, 1) > z.size"
    gate = "z.size < (SELECT max(component_size) FROM road_node)"
    if prefer:
        rival = f"({rival} OR n.component = {prefer})"
        gate = f"({gate} OR z.component IS DISTINCT FROM {prefer})"
    where = f"WHERE {CAR_NODE}" if car else ""
    also = f" AND {CAR_NODE}" if car else ""
    return (
        f"LATERAL (SELECT q.id, q.d AS distance_m, q.component FROM ("
        f"SELECT n.id, n.component, coalesce(n.component_size, 1) AS size, {dist} AS d "
        f"FROM road_node n {where} ORDER BY n.geom <-> {p} LIMIT 1) z "
        f"CROSS JOIN LATERAL (SELECT z.id, z.component, z.size, z.d UNION ALL ("
        f"SELECT n.id, n.component, coalesce(n.component_size, 1), {dist} FROM road_node n "
        f"WHERE n.geom && ST_Expand({p}, (z.d + {SNAP_SLACK_M}) / 110000.0 / "
        f"greatest(cos(radians(ST_Y({p}))), 0.01)) AND {rival} AND {gate}{also} "
        f"ORDER BY n.geom <-> {p} LIMIT {SNAP_MAX_CANDIDATES})) q "
        f"WHERE q.d <= z.d + {SNAP_SLACK_M} "
        f"ORDER BY {first}q.size DESC, q.d, q.id LIMIT 1) {alias}"
    )
