"""Utility outage: a burst main (an edge) or a failed device (a node, e.g. a transformer)
traced over the utility graph to the devices that isolate it, and what loses service.

1. Isolation: a breadth-first walk from the fault over the network's edges that stops
   at isolating devices — valves on water-like networks, switches (and substations) on
   power. The edges walked are the isolated section; the devices met are the ones to
   operate (those already shut are listed apart). A fault on a device starts the walk
   at that device.
2. Supply: when the network has sources (water: plant, tank; power: substation), the
   edges still connected to a source once the section is cut out and the operated
   devices shut are supplied; those supplied before but not after are cut off too.
3. Buildings without service: those whose ``utility_service`` edge is isolated or cut
   off, on that network.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from twin.errors import InputError
from twin.i18n import t
from twin.scenarios import store
from twin.scenarios.utilgraph import Graph, downstream, isolate, supplied

STOPS = {"power": {"switch", "substation"}}
STOPS_DEFAULT = {"valve"}
SOURCES = {"water": {"plant", "tank"}, "power": {"substation"}}
RADIAL = {"power"}  # networks run radially: a fault darkens what lies downstream of it
MESSAGE_DEVICES = 8
MAX_LISTED = 2_000
WORDS = {"power": ("open", "switches", "power"), "water": ("close", "valves", "water")}


def _fault(conn: Connection, edge_id: int | None, node_id: int | None) -> dict[str, Any]:
    if (edge_id is None) == (node_id is None):
        raise InputError("give edge_id (a burst main, a cut cable) or node_id (a failed device)")
    if edge_id is not None:
        row = conn.execute(
            text("SELECT id, network, kind, name, from_node, to_node FROM utility_edge "
                 "WHERE id = :i"), {"i": edge_id}
        ).mappings().first()
        if row is None:
            raise InputError(f"unknown utility edge {edge_id}")
        if row["from_node"] is None and row["to_node"] is None:
            raise InputError(f"utility edge {edge_id} is not connected to any node")
        return {"edge_id": int(row["id"]), **{k: row[k] for k in ("network", "kind", "name")}}
    row = conn.execute(
        text("SELECT id, network, kind, name FROM utility_node WHERE id = :i"), {"i": node_id}
    ).mappings().first()
    if row is None:
        raise InputError(f"unknown utility node {node_id}")
    return {"node_id": int(row["id"]), **{k: row[k] for k in ("network", "kind", "name")}}


def _graph(conn: Connection, network: str) -> Graph:
    nodes = conn.execute(
        text("SELECT array_agg(id), array_agg(kind), array_agg(status) FROM utility_node "
             "WHERE network = :n"), {"n": network}
    ).one()
    edges = conn.execute(
        text("SELECT array_agg(id), array_agg(from_node), array_agg(to_node), "
             "array_agg(coalesce(length_m, ST_Length(geom_3857) * cos(radians(ST_Y("
             "ST_StartPoint(geom)))))) FROM utility_edge WHERE network = :n "
             "AND from_node IS NOT NULL AND to_node IS NOT NULL"), {"n": network}
    ).one()
    return Graph.build(edges, nodes)


def run_outage(
    conn: Connection,
    *,
    edge_id: int | None = None,
    node_id: int | None = None,
    name: str | None = None,
    created_by: str | None = None,
    save: bool = True,
) -> dict[str, Any]:
    """Trace an outage and store it as a scenario (see the module for the method).

    Returns
    -------
    dict
        The scenario view with ``summary.message`` ("close valves V1, V2; 312 buildings
        without water") and ``features``: isolated and cut-off edges, the devices to
        operate, the buildings without service (property ``layer``).
    """
    t0 = time.perf_counter()
    fault = _fault(conn, edge_id, node_id)
    network = fault["network"]
    g = _graph(conn, network)
    stops = STOPS.get(network, STOPS_DEFAULT)
    sources = SOURCES.get(network, set())
    e_idx = g.edge_index(edge_id) if edge_id is not None else None
    n_idx = g.index(node_id) if node_id is not None else None
    operate: list[int] = []
    shut: list[int] = []
    if e_idx is None and n_idx is None:  # a device with no pipe or cable attached
        iso = np.zeros(len(g.edge_ids), bool)
        cut_mask = np.zeros_like(iso)
        notes = [t("outage.not_connected", "en")]
        notes_vi = [t("outage.not_connected", "vi")]
    else:
        radial = downstream(g, stops, sources, edge=e_idx, node=n_idx) if (
            network in RADIAL) else None
        notes, notes_vi = [], []
        if radial is not None:
            iso, operate, cut_mask = radial
            notes.append(t("outage.radial", "en"))
            notes_vi.append(t("outage.radial", "vi"))
        else:
            iso, operate, shut = isolate(g, stops | sources, edge=e_idx, node=n_idx)
            blocked = [v for v in operate if g.kind[v] not in sources]
            if n_idx is not None:
                blocked.append(n_idx)
            before = supplied(g, sources, np.zeros_like(iso), [])
            after = supplied(g, sources, iso, blocked)
            cut_mask = (before & ~after & ~iso) if before is not None and after is not None \
                else np.zeros_like(iso)
            if before is None:
                notes.append(t("outage.no_sources", "en", network=network))
                notes_vi.append(t("outage.no_sources", "vi", network=network))
    isolated = sorted(g.edge_ids[iso].tolist())
    cut = sorted(g.edge_ids[cut_mask].tolist())
    length = dict(zip(g.edge_ids[iso | cut_mask].tolist(),
                      g.length[iso | cut_mask].tolist(), strict=True))
    operate = [int(g.node_ids[v]) for v in operate]
    shut = [int(g.node_ids[v]) for v in shut]
    out_edges = isolated + cut
    rows = list(conn.execute(
        text("SELECT DISTINCT b.id, b.population, ST_AsGeoJSON(ST_PointOnSurface(b.geom), 6) "
             "FROM utility_service s JOIN building b ON b.id = s.building_id "
             "WHERE s.network = :n AND s.edge_id = ANY(:e) ORDER BY b.id"),
        {"n": network, "e": out_edges},
    ).all())
    verb, devices, what = WORDS.get(network, ("close", "valves", network))
    info = _details(conn, [*operate, *shut])
    labels = [info[n]["name"] or f"#{n}" for n in operate]
    shown = f"{verb} {devices} " + ", ".join(labels[:MESSAGE_DEVICES])
    if len(labels) > MESSAGE_DEVICES:
        shown += f" and {len(labels) - MESSAGE_DEVICES} more"
    noun = "building" if len(rows) == 1 else "buildings"
    message = f"{shown if labels else f'no {devices} to {verb}'}; {len(rows)} {noun} without {what}"
    message_i18n = {"en": message, "vi": _message_vi(network, labels, len(rows))}
    summary: dict[str, Any] = {
        "network": network,
        "fault": fault,
        "message": message,
        "message_i18n": message_i18n,
        "operate": [_device(n, info[n], verb) for n in operate],
        "already_shut": [_device(n, info[n], None) for n in shut],
        "isolated": _edge_summary(isolated, length),
        "cut_off": _edge_summary(cut, length),
        "buildings": {
            "count": len(rows), "population": sum(int(r[1] or 0) for r in rows),
            "ids": [int(r[0]) for r in rows[:MAX_LISTED]],
            "ids_truncated": len(rows) > MAX_LISTED,
        },
        "notes": [*notes, t("outage.method", "en")],
        "notes_i18n": {"vi": [*notes_vi, t("outage.method", "vi")],
                       "en": [*notes, t("outage.method", "en")]},
        "timing_ms": {"total": round((time.perf_counter() - t0) * 1000, 1)},
        "_building_ids": [int(r[0]) for r in rows],
    }
    summary["_geojson"] = _features(conn, summary, isolated, cut, rows)
    params = {"edge_id": edge_id, "node_id": node_id}
    return store.record(conn, "outage", params, summary, name=name, created_by=created_by,
                        save=save)


#: a device farther than this (degrees, ~550 m) from every named road gets no street
STREET_REACH_DEG = 0.005


def _details(conn: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Name, kind, status, lon/lat of a few utility nodes, and the street each lies on:
    the nearest named road segment (its Vietnamese and English name, distance in m)."""
    rows = conn.execute(
        text("SELECT n.id, n.kind, n.status, n.name, ST_X(n.geom), ST_Y(n.geom), r.name, "
             "r.name_en, r.dist FROM utility_node n LEFT JOIN LATERAL (SELECT s.name, "
             "s.name_en, ST_Distance(s.geom::geography, n.geom::geography) AS dist "
             "FROM road_segment s WHERE s.name IS NOT NULL AND s.name <> '' "
             "AND s.geom && ST_Expand(n.geom, :r) ORDER BY s.geom <-> n.geom LIMIT 1) r "
             "ON true WHERE n.id = ANY(:i)"), {"i": ids, "r": STREET_REACH_DEG}
    ).all()
    return {int(r[0]): {"kind": r[1], "status": r[2], "name": r[3], "lon": r[4], "lat": r[5],
                        "street": r[6], "street_en": r[7] or r[6],
                        "street_m": round(float(r[8]), 1) if r[8] is not None else None}
            for r in rows}


def _device(n: int, info: dict[str, Any], action: str | None) -> dict[str, Any]:
    return {"id": n, "name": info["name"], "kind": info["kind"], "status": info["status"],
            "action": action, "lon": info["lon"], "lat": info["lat"],
            "street": info["street"], "street_en": info["street_en"],
            "street_m": info["street_m"]}


def _message_vi(network: str, labels: list[str], buildings: int) -> str:
    """The summary message in Vietnamese (the English one is built above)."""
    net = network if network in WORDS else "water"
    if labels:
        out = t(f"outage.{net}.operate", "vi", labels=", ".join(labels[:MESSAGE_DEVICES]))
        if len(labels) > MESSAGE_DEVICES:
            out += t("outage.more", "vi", n=len(labels) - MESSAGE_DEVICES)
    else:
        out = t(f"outage.{net}.none", "vi")
    what = {"power": "điện", "water": "nước"}.get(network, network)
    return out + t("outage.result", "vi", n=buildings, what=what)


def _edge_summary(ids: list[int], length: dict[int, float]) -> dict[str, Any]:
    return {"count": len(ids), "length_m": round(sum(length.get(i, 0.0) for i in ids), 1),
            "ids": ids[:MAX_LISTED], "ids_truncated": len(ids) > MAX_LISTED}


def _features(
    conn: Connection, summary: dict[str, Any], isolated: list[int], cut: list[int],
    buildings: list[Any],
) -> dict[str, Any]:
    rows = conn.execute(
        text("SELECT id, kind, name, ST_AsGeoJSON(geom, 6) FROM utility_edge "
             "WHERE id = ANY(:e)"), {"e": (isolated + cut)[: 2 * MAX_LISTED]}
    ).all()
    iso = set(isolated)
    feats: list[dict[str, Any]] = [
        {"type": "Feature", "id": int(r[0]), "geometry": json.loads(r[3]),
         "properties": {"layer": "isolated" if r[0] in iso else "cut_off", "id": int(r[0]),
                        "kind": r[1], "name": r[2]}}
        for r in rows
    ]
    for d in summary["operate"] + summary["already_shut"]:
        feats.append({"type": "Feature", "id": d["id"],
                      "geometry": {"type": "Point", "coordinates": [d["lon"], d["lat"]]},
                      "properties": {"layer": "operate" if d["action"] else "shut", **d}})
    for r in buildings[:MAX_LISTED]:
        feats.append({"type": "Feature", "id": int(r[0]), "geometry": json.loads(r[2]),
                      "properties": {"layer": "building", "id": int(r[0]),
                                     "population": int(r[1] or 0)}})
    return {"type": "FeatureCollection", "features": feats}
