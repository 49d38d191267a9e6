"""The demo build, stage by stage: geography → terrain → streets → sites and buildings →
utilities → writing (delete the old demo rows, then COPY the new ones).

Generation works in the local metric frame (:mod:`twin.demo.geo`); rows are written in
EPSG:4326 with lengths in metres, costs in seconds and areas in m² (km² for admin areas).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from sqlalchemy import Connection, text

from twin.analysis.components import refresh_components
from twin.demo import buildings as bld
from twin.demo import facts, labels, landcover, network, roads, sites, terrain, utilities
from twin.demo import writer as w
from twin.demo.geo import Geography, build_geography, locate, polygonal
from twin.ingest.summary import Summary
from twin.progress import Reporter
from twin.settings import Settings

if TYPE_CHECKING:
    from twin.demo import Scale

FACILITY_KIND = {"office": "government"}


@dataclass
class City:
    geo: Geography
    zones: landcover.Zones
    street_area: Any
    net: roads.Network
    sites: list[sites.Site]
    lots: bld.Lots
    polys: np.ndarray
    attrs: dict[str, Any]
    population: np.ndarray
    utilities: utilities.Utilities
    notes: list[str]


def generate(conn: Connection, reporter: Reporter, params: Scale, seed: int,
             settings: Settings) -> City:
    """Every feature of the demo city, in memory (the DEM is written and registered)."""
    t = reporter.task("demo: geography and terrain", total=3)
    geo = build_geography()
    zones = landcover.build_zones(geo, seed)
    reporter.advance(t)
    dem = terrain.build_terrain(conn, geo, seed=seed, settings=settings, airport=zones.airport)
    reporter.advance(t)
    zones.forest = terrain.forest(dem, geo)
    reporter.advance(t)
    reporter.done(t)

    t = reporter.task("demo: streets", total=2)
    lines, street_area = roads.draw_lines(geo, zones, params.grid, seed)
    reporter.advance(t)
    net = network.node_network(lines, geo)
    reporter.advance(t)
    reporter.done(t)

    t = reporter.task("demo: sites and buildings", total=4)
    rng = np.random.default_rng([seed, 404])
    free = polygonal(geo.land.difference(geo.water.buffer(5.0)).difference(zones.no_streets()))
    placed = sites.place_sites(sites.plan_sites(geo, params.schools_per_ward, rng, street_area),
                               net, free)
    reporter.advance(t)
    lots = bld.candidate_lots(net, geo, zones, params.rows, rng)
    reporter.advance(t)
    buildable = free.difference(bld.site_footprints(placed))
    chosen, polys = bld.select_lots(lots, net, geo, buildable,
                                    max(params.buildings - len(placed), 0), rng)
    reporter.advance(t)
    attrs = bld.attributes(chosen, polys, net, geo, rng)
    pop, notes = bld.population(geo, attrs["district"], attrs["use"], attrs["levels"],
                                attrs["area"])
    reporter.advance(t)
    reporter.done(t)

    t = reporter.task("demo: utilities", total=1)
    all_polys = np.concatenate([np.array([s.footprint for s in placed], dtype=object), polys])
    cents = shapely.get_coordinates(shapely.centroid(all_polys))
    frontage = np.concatenate([np.full(len(placed), -1), chosen.edge])
    util = utilities.build_utilities(net, geo, cents, frontage, seed)
    reporter.advance(t)
    reporter.done(t)
    return City(geo, zones, street_area, net, placed, chosen, polys, attrs, pop, util, notes)


def write(conn: Connection, city: City, reporter: Reporter, summary: Summary) -> None:
    """COPY the city into the tables (the old demo rows are already deleted)."""
    t = reporter.task("demo: writing", total=9)
    clock = time.perf_counter()
    spent: dict[str, float] = {}

    def lap(name: str, steps: int) -> None:
        nonlocal clock
        now = time.perf_counter()
        spent[name] = now - clock
        clock = now
        reporter.advance(t, steps)

    _roads(conn, city, summary)
    lap("roads", 2)
    bids = _buildings(conn, city, summary)
    lap("buildings", 2)
    _facilities(conn, city, bids, summary)
    lap("facilities", 1)
    _utilities(conn, city, bids, summary)
    lap("utilities", 2)
    _labels(conn, city, summary)
    lap("labels", 1)
    for table in w.TABLES:
        conn.execute(text(f"ANALYZE {table}"))
    lap("analyze", 1)
    reporter.done(t)
    summary.notes.append("writing (s): " + ", ".join(f"{k} {v:.1f}" for k, v in spent.items()))


def _roads(conn: Connection, city: City, summary: Summary) -> np.ndarray:
    net = city.net
    ids = w.allocate_ids(conn, "road_node", len(net.node_xy))
    pts = shapely.points(net.node_xy)
    n = w.copy_columns(conn, "road_node", {
        "id": ids, "source_id": [f"node/{i:07d}" for i in range(len(ids))], "geom": w.ewkb(pts)})
    summary.add("road_node", "inserted", n)
    cost = net.length / (net.speed / 3.6)
    names = net.name
    n = w.copy_columns(conn, "road_segment", {
        "source_id": [f"road/{i:07d}" for i in range(len(net.a))],
        "from_node": ids[net.a], "to_node": ids[net.b], "road_class": net.road_class,
        "name": names, "name_en": [facts.ascii_name(x) if x else None for x in names],
        "ref": net.ref, "oneway": net.oneway, "maxspeed_kmh": net.speed,
        "lanes": net.lanes, "bridge": net.bridge, "length_m": np.round(net.length, 2),
        "cost": np.round(cost, 3), "reverse_cost": np.where(net.oneway, -1.0, np.round(cost, 3)),
        "geom": w.ewkb(net.geom),
    })
    summary.add("road_segment", "inserted", n)
    summary.notes.append(refresh_components(conn).note())
    return ids


def _buildings(conn: Connection, city: City, summary: Summary) -> np.ndarray:
    geo, s, a = city.geo, city.sites, city.attrs
    k = len(s)
    polys = np.concatenate([np.array([x.footprint for x in s], dtype=object), city.polys])
    cent = shapely.get_coordinates(shapely.centroid(polys))
    ward_idx = locate(geo.wards, cent[:, 0], cent[:, 1])
    wards = [labels.ward_label(geo.wards[i])[0] for i in ward_idx.tolist()]
    site_use = [x.kind if x.kind in ("hospital", "school", "office") else "public" for x in s]
    site_levels = [x.levels for x in s]
    site_height = [x.height_m or round(x.levels * 3.6 + 2.0, 1) for x in s]
    ids = w.allocate_ids(conn, "building", len(polys))
    n = w.copy_columns(conn, "building", {
        "id": ids, "source_id": [f"bldg/{i:07d}" for i in range(len(polys))],
        "name": [x.name_vi for x in s] + [None] * len(city.polys),
        "use": site_use + a["use"].tolist(),
        "levels": site_levels + a["levels"].tolist(),
        "height_m": site_height + a["height"].tolist(),
        "address": [x.address for x in s] + a["address"],
        "ward": wards,
        "population": [0] * k + city.population.tolist(),
        "area_m2": np.round(shapely.area(polys), 1), "geom": w.ewkb(polys, multi=True),
    })
    summary.add("building", "inserted", n)
    return ids


def _facilities(conn: Connection, city: City, bids: np.ndarray, summary: Summary) -> None:
    rows = []
    for s in city.sites:
        c = s.footprint.centroid if s.footprint is not None else s.target
        rows.append((FACILITY_KIND.get(s.kind, s.kind), s.name_vi, s.name_en, s.capacity,
                     s.address, c))
        if s.shelter:
            rows.append(("shelter", f"Điểm sơ tán – {s.name_vi}",
                         f"Flood shelter – {s.name_en}", (s.capacity or 600) // 2, s.address, c))
    n = w.copy_columns(conn, "facility", {
        "source_id": [f"facility/{i:05d}" for i in range(len(rows))],
        "kind": [r[0] for r in rows], "name_vi": [r[1] for r in rows],
        "name_en": [r[2] for r in rows], "capacity": [r[3] for r in rows],
        "address": [r[4] for r in rows], "geom": w.ewkb([r[5] for r in rows]),
    })
    summary.add("facility", "inserted", n)


def _utilities(conn: Connection, city: City, bids: np.ndarray, summary: Summary) -> None:
    u = city.utilities
    nids = w.allocate_ids(conn, "utility_node", len(u.n_net))
    n = w.copy_columns(conn, "utility_node", {
        "id": nids, "source_id": [f"{net}/node/{i:07d}" for i, net in enumerate(u.n_net)],
        "network": u.n_net, "kind": u.n_kind, "name": u.n_name,
        "status": ["in_service"] * len(nids),
        "attrs": u.n_attrs, "geom": w.ewkb(shapely.points(np.array(u.n_xy))),
    })
    summary.add("utility_node", "inserted", n)
    eids = w.allocate_ids(conn, "utility_edge", len(u.e_net))
    geoms = np.array(u.e_geom, dtype=object)
    n = w.copy_columns(conn, "utility_edge", {
        "id": eids, "source_id": [f"{net}/edge/{i:07d}" for i, net in enumerate(u.e_net)],
        "network": u.e_net, "kind": u.e_kind, "from_node": nids[np.array(u.e_from)],
        "to_node": nids[np.array(u.e_to)], "diameter_mm": u.e_diam, "voltage_kv": u.e_kv,
        "length_m": np.round(shapely.length(geoms), 2), "name": u.e_name,
        "geom": w.ewkb(geoms),
    })
    summary.add("utility_edge", "inserted", n)
    total = 0
    for network_name, edge_of in u.services.items():
        total += w.copy_columns(conn, "utility_service", {
            "source_id": [f"svc/{network_name}/{i:07d}" for i in range(len(bids))],
            "network": [network_name] * len(bids), "building_id": bids,
            "edge_id": eids[edge_of],
        })
    summary.add("utility_service", "inserted", total)


def _labels(conn: Connection, city: City, summary: Summary) -> None:
    lc = landcover.land_cover_rows(city.geo, city.zones, city.street_area)
    n = w.copy_columns(conn, "land_cover", {
        "source_id": [f"lc/{i:05d}" for i in range(len(lc))], "kind": [r[0] for r in lc],
        "name": [r[1] for r in lc], "geom": w.ewkb([r[2] for r in lc], multi=True),
    })
    summary.add("land_cover", "inserted", n)
    net = city.net
    named = [(name, g) for name, g, b in zip(net.name, net.geom, net.bridge, strict=True)
             if b and name]
    places = labels.place_rows(city.geo, named)
    n = w.copy_columns(conn, "place", {
        key: (w.ewkb([p["geom"] for p in places]) if key == "geom" else [p[key] for p in places])
        for key in ("source_id", "kind", "name_vi", "name_en", "rank", "geom")
    })
    summary.add("place", "inserted", n)
    adm = labels.admin_rows(city.geo)
    cols = ("source_id", "level", "code", "name_vi", "name_en", "parent_code", "population",
            "area_km2", "valid_from", "valid_to")
    data: dict[str, Any] = {c: [r[c] for r in adm] for c in cols}
    data["geom"] = w.ewkb([r["geom"] for r in adm], multi=True)
    n = w.copy_columns(conn, "admin_area", data)
    summary.add("admin_area", "inserted", n)
    from twin.admin import load_lineage

    summary.add("admin_lineage", "inserted", load_lineage(conn))
    summary.add("terrain", "inserted", 1)


def build(conn: Connection, *, reporter: Reporter, params: Scale, scale: str, seed: int,
          settings: Settings) -> Summary:
    """Generate the demo city and write it (see :func:`twin.demo.build_demo`)."""
    summary = Summary(source=f"demo (scale {scale}, seed {seed})")
    t = reporter.task("demo: deleting the previous demo", total=1)
    deleted = w.delete_demo(conn)
    old = sum(n for k, n in deleted.items() if k != "terrain")
    if old:
        summary.notes.append(f"replaced {old} rows of an earlier demo")
    reporter.done(t)
    started = time.perf_counter()
    city = generate(conn, reporter, params, seed, settings)
    summary.notes.append(f"generated in {time.perf_counter() - started:.1f} s")
    write(conn, city, reporter, summary)
    summary.notes.extend(city.notes)
    summary.notes.append(f"DEM written to {settings.terrain_dir / 'demo_dem.tif'}")
    return summary
