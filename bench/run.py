"""``python -m bench.run``: our tiles and features against tipg, side by side in one run.

T1 tiles with caches off (z14, z16), T2 the same tiles warm + 304, T3 one tile one
client against the raw SQL, F1 items (bbox, CQL2 filter), M1 our RSS under tile load.
Answers are compared before timing; the peers are interleaved (A B A B) with the same
concurrency, and medians are reported in ``bench/RESULTS.md``. Bounded: a few minutes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx

from bench import checks, data, load, report, servers, tipg_env
from layers.catalog import load_catalog
from layers.versions import libpq_url
from twin.settings import Settings

ROUNDS = 5
T1_SECONDS = 8
F1_ROUNDS = 3
T2_SECONDS = 8
T3_SECONDS = 12
F1_SECONDS = 8
POOL = 10
TILES = {14: 12, 16: 48}
PROPS = ["name", "use", "levels", "height_m", "address", "ward", "area_m2"]
OURS_TILE = "/collections/buildings/tiles/WebMercatorQuad/{z}/{x}/{y}"
TIPG_TILE = ("/collections/public.building/tiles/WebMercatorQuad/{z}/{x}/{y}"
             "?properties=" + ",".join(["id", *PROPS]))
#: at z <= 14 our buildings layer draws the generalised blocks; tipg serves the same
#: blocks from a plain table laid out as it expects (data.lowzoom_table)
TIPG_LOWZOOM_TILE = TIPG_TILE.replace("public.building/", f"public.{data.LOWZOOM_TABLE}/")


def tipg_tile(z: int) -> str:
    return TIPG_LOWZOOM_TILE if z <= GENERALISED_MAXZOOM else TIPG_TILE
GENERALISED_MAXZOOM = 14
T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def median_stats(runs: list[load.Stats]) -> dict[str, float]:
    return {
        "rps": statistics.median(r.rps for r in runs),
        "p50": statistics.median(r.p50_ms for r in runs),
        "p95": statistics.median(r.p95_ms for r in runs),
        "errors": sum(r.errors for r in runs),
        "runs": [round(r.rps, 1) for r in runs],  # type: ignore[dict-item]
    }


def interleave(named: dict[str, tuple[str, list[str]]], seconds: float,
               rounds: int = ROUNDS) -> dict[str, Any]:
    """``rounds`` rounds of A B (A B …), each a bounded wrk run; medians per server."""
    runs: dict[str, list[load.Stats]] = {k: [] for k in named}
    for _ in range(rounds):
        for name, (base, paths) in named.items():
            runs[name].append(load.run(base, paths, seconds))
    return {k: median_stats(v) for k, v in runs.items()}


def warm(base: str, paths: list[str]) -> None:
    with httpx.Client(base_url=base, timeout=60) as c:
        for p in paths:
            c.get(p, headers={"Accept-Encoding": "gzip"})


def tile_paths(template: str, tiles: list[tuple[int, int, int, int]]) -> list[str]:
    return [template.format(z=z, x=x, y=y) for z, x, y, _ in tiles]


def main() -> int:
    res: dict[str, Any] = {"started": time.time(), "load_before": os.getloadavg()}
    url, origin = data.choose(log)
    b, r = data.counts(url)
    res["data"] = {"origin": origin, "buildings": b, "roads": r, "url": url.split("@")[-1],
                   "full_url": url}
    log(f"database {res['data']['url']}: {b} buildings, {r} roads ({origin})")
    if b < data.MIN_BUILDINGS:
        log(f"not enough buildings for the benchmark (< {data.MIN_BUILDINGS})")
        return 2
    if r < data.MIN_ROADS:
        log(f"note: fewer road segments than the {data.MIN_ROADS} asked for; "
            "the tile benchmark reads buildings")
    if data.BENCH_DB in url.rsplit("/", 1)[-1]:
        data.cluster(url, log)  # only the benchmark's own database is reorganised
    res["data"]["clustered"] = data.is_clustered(url)
    res["data"]["generalised"] = data.lowzoom_table(url, log)
    tipg_env.ensure_venv(log)
    res["tipg_version"] = tipg_env.version()
    res["wrk"] = load.have_wrk()
    catalog = load_catalog(Settings().layers_file)
    buildings = catalog.get("buildings")
    tiles = {z: data.sample_tiles(url, z, n) for z, n in TILES.items()}
    bboxes = data.sample_bboxes(url, 32)
    pq = libpq_url(url)
    with tempfile.TemporaryDirectory() as tmp, \
            servers.tipg(pq, Path(tmp), ["public.building", f"public.{data.LOWZOOM_TABLE}",
                                         "public.road_segment"], POOL,
                         buildings.max_features_per_tile) as tipg, \
            servers.ours("ours-nocache", url, Path(tmp), 0, POOL) as ours, \
            servers.ours("ours-cache", url, Path(tmp), None, POOL) as cached:
        log(f"tipg {tipg.base}, ours (cache off) {ours.base}, ours (cache on) {cached.base}")
        res["checks"] = {}
        for z, tl in tiles.items():
            c = checks.compare_tiles(ours.base, tipg.base, tl, OURS_TILE, tipg_tile(z),
                                     buildings.max_features_per_tile)
            res["checks"][z] = dataclasses.asdict(c)
            log(f"z{z}: {c.matched}/{c.tiles} tiles match, {c.capped} at the cap; "
                f"features/tile ours {c.ours_features / c.tiles:.0f} "
                f"tipg {c.tipg_features / c.tiles:.0f}"
                + (f"; {c.worst}" if c.worst else ""))
        res["T1"], res["T2"], res["T3"] = {}, {}, {}
        with ours.sampling(), cached.sampling():
            for z, tl in tiles.items():
                ours_p, tipg_p = tile_paths(OURS_TILE, tl), tile_paths(tipg_tile(z), tl)
                warm(ours.base, ours_p)
                warm(tipg.base, tipg_p)
                log(f"T1 z{z}: {len(tl)} tiles, {ROUNDS}×{T1_SECONDS}s each, A B interleaved")
                res["T1"][z] = interleave({"tipg": (tipg.base, tipg_p),
                                           "ours": (ours.base, ours_p)}, T1_SECONDS)
                log(f"   tipg {res['T1'][z]['tipg']['rps']:.1f} req/s, "
                    f"ours {res['T1'][z]['ours']['rps']:.1f} req/s")
                res["T2"][z] = t2(cached.base, ours_p)
                log(f"T2 z{z}: warm {res['T2'][z]['warm']['rps']:.0f} req/s, "
                    f"304 {res['T2'][z]['not_modified']['rps']:.0f} req/s")
        res["M1"] = {"ours_nocache": ours.peak_rss_mb, "ours_cache": cached.peak_rss_mb}
        for z, tl in tiles.items():
            res["T3"][z] = t3(url, buildings, ours.base, tipg.base, tl)
            log(f"T3 z{z}: ours p50 {res['T3'][z]['ours_ms']:.2f} ms, "
                f"SQL {res['T3'][z]['sql_ms']:.2f} ms")
        res["F1"] = f1(ours.base, tipg.base, bboxes)
    res["elapsed"] = time.monotonic() - T0
    res["load_after"] = os.getloadavg()
    report.LAST.parent.mkdir(exist_ok=True)
    report.LAST.write_text(json.dumps(res, indent=1), encoding="utf-8")
    path = report.write(res)
    log(f"wrote {path}")
    return 0


def t2(base: str, paths: list[str]) -> dict[str, Any]:
    """Warm cache throughput, and If-None-Match answered 304 (checked, then timed)."""
    warm(base, paths)
    warm_runs = [load.run(base, paths, T2_SECONDS) for _ in range(2)]
    etags: dict[str, dict[str, str]] = {}
    ok = True
    with httpx.Client(base_url=base, timeout=30) as c:
        for p in paths:
            tag = c.get(p).headers.get("etag", "")
            etags[p] = {"If-None-Match": tag}
            ok = ok and c.get(p, headers=etags[p]).status_code == 304
    nm = load.run(base, paths, T2_SECONDS / 2, headers=etags)
    return {"warm": median_stats(warm_runs), "not_modified": median_stats([nm]),
            "all_304": ok}


def t3(url: str, layer: Any, ours: str, tipg: str,
       tiles: list[tuple[int, int, int, int]]) -> dict[str, Any]:
    """One tile (the median of the set by features), one client: the raw SQL, our
    server and tipg, one request each in turn."""
    z, x, y, n = sorted(tiles, key=lambda t: t[3])[len(tiles) // 2]
    paths = {"ours": ours + OURS_TILE.format(z=z, x=x, y=y),
             "tipg": tipg + tipg_tile(z).format(z=z, x=x, y=y)}
    t = checks.one_client(url, [layer], z, x, y, paths, T3_SECONDS,
                          peer_sql=checks.tipg_sql(
                              z, x, y, ["id", *PROPS],
                              f"public.{data.LOWZOOM_TABLE}" if z <= GENERALISED_MAXZOOM
                              else "public.building"))
    med = {k: statistics.median(v) for k, v in t.items()}
    return {"tile": f"{z}/{x}/{y}", "buildings": n, "sql_ms": med["sql"],
            "ours_ms": med["ours"], "tipg_ms": med["tipg"], "rounds": len(t["sql"]),
            "tipg_sql_ms": med["peer_sql"],
            "ratio": med["ours"] / med["sql"],
            "pair_ratio": statistics.median(o / s for o, s in zip(t["ours"], t["sql"],
                                                                  strict=True))}


def f1(ours: str, tipg: str, bboxes: list[tuple[float, ...]]) -> dict[str, Any]:
    """items?bbox&limit=100, and with a CQL2 filter, if our features endpoint is up."""
    probe = httpx.get(ours + "/collections/buildings/items?limit=1", timeout=30)
    if probe.status_code != 200:
        return {"skipped": f"/collections/buildings/items answered {probe.status_code}"}
    props = ",".join(PROPS)
    flt = urllib.parse.quote("height_m > 10")
    out: dict[str, Any] = {}
    for name, extra in (("bbox", ""), ("bbox+cql2", f"&filter={flt}&filter-lang=cql2-text")):
        q = [f"?bbox={','.join(map(str, bb))}&limit=100{extra}" for bb in bboxes]
        o_paths = [f"/collections/buildings/items{s}" for s in q]
        t_paths = [f"/collections/public.building/items{s}&properties={props}" for s in q]
        ok, why = checks.compare_items(ours, tipg, list(zip(o_paths, t_paths, strict=True))[:8])
        log(f"F1 {name}: {why}")
        r = interleave({"tipg": (tipg, t_paths), "ours": (ours, o_paths)}, F1_SECONDS,
                       F1_ROUNDS)
        r["match"], r["why"] = ok, why
        log(f"   tipg {r['tipg']['rps']:.1f} req/s, ours {r['ours']['rps']:.1f} req/s")
        out[name] = r
    return out


if __name__ == "__main__":
    sys.exit(main())
