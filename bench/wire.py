"""``python -m bench.wire``: bytes on the wire, ours against tipg, for the same answers.

The same bbox item pages (100 buildings, the same properties) and z14 building tiles as
``bench.run``, each asked three ways (``Accept-Encoding: identity``, ``gzip``, ``br``),
and our static bundles (deck.gl, the pages' own scripts) and a page; the bytes counted
are the body as sent, before any decoding. Written to the section "## Compressed answers
(bench.wire)" of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import data, servers
from bench.run import OURS_TILE, POOL, PROPS, tipg_tile
from bench.scale import RESULTS, write_section
from layers.catalog import load_catalog
from layers.versions import libpq_url
from twin.settings import Settings

HEADER = "## Compressed answers (bench.wire)"
ENCODINGS = ("identity", "gzip", "br")
T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def sent(client: httpx.Client, url: str, encoding: str, accept: str = "*/*") -> tuple[int, str]:
    """The body's size as sent for ``Accept-Encoding: encoding``, and its encoding."""
    with client.stream("GET", url, headers={"Accept-Encoding": encoding,
                                            "Accept": accept}) as r:
        r.raise_for_status()
        size = sum(len(chunk) for chunk in r.iter_raw())
        return size, r.headers.get("content-encoding", "identity")


def sizes(client: httpx.Client, urls: list[str],
          accept: str = "*/*") -> dict[str, dict[str, Any]]:
    """Per encoding: median bytes over ``urls`` and the encodings the server chose."""
    out: dict[str, dict[str, Any]] = {}
    for enc in ENCODINGS:
        got = [sent(client, u, enc, accept) for u in urls]
        out[enc] = {"bytes": statistics.median(g[0] for g in got),
                    "as": sorted({g[1] for g in got})}
    return out


def main() -> int:
    url, origin = data.choose(log)
    b, _ = data.counts(url)
    if b < data.MIN_BUILDINGS:
        log(f"not enough buildings for the benchmark (< {data.MIN_BUILDINGS})")
        return 2
    data.lowzoom_table(url, log)
    buildings = load_catalog(Settings().layers_file).get("buildings")
    bboxes = data.sample_bboxes(url, 8)
    tiles = data.sample_tiles(url, 14, 8)
    props = ",".join(PROPS)
    res: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, \
            servers.tipg(libpq_url(url), Path(tmp), ["public.building",
                                                     f"public.{data.LOWZOOM_TABLE}"], POOL,
                         buildings.max_features_per_tile) as tipg, \
            servers.ours("ours", url, Path(tmp), None, POOL) as ours, \
            httpx.Client(timeout=60) as c:
        q = [f"?bbox={','.join(map(str, bb))}&limit=100" for bb in bboxes]
        res["items"] = {
            "ours": sizes(c, [f"{ours.base}/collections/buildings/items{s}" for s in q]),
            "tipg": sizes(c, [f"{tipg.base}/collections/public.building/items{s}"
                              f"&properties={props}" for s in q])}
        log(f"items: {res['items']}")
        res["tiles"] = {
            "ours": sizes(c, [ours.base + OURS_TILE.format(z=z, x=x, y=y)
                              for z, x, y, _ in tiles]),
            "tipg": sizes(c, [tipg.base + tipg_tile(z).format(z=z, x=x, y=y)
                              for z, x, y, _ in tiles])}
        log(f"z14 tiles: {res['tiles']}")
        html = {"Accept-Encoding": "identity", "Accept": "text/html"}
        page = c.get(ours.base + "/", headers=html).text
        res["page"] = sizes(c, [ours.base + "/"], "text/html")
        res["static"] = {}
        for src in sorted(set(re.findall(r'src="(/static/[^"]+\.js)"', page))):
            res["static"][src] = sizes(c, [ours.base + src])
            cache = c.get(ours.base + src).headers.get("cache-control", "")
            res["static"][src]["cache"] = cache
        log(f"static: {len(res['static'])} scripts")
    write_section(render(res, origin, b), HEADER)
    log(f"written to {RESULTS}")
    return 0


def _kb(n: float) -> str:
    return f"{n / 1024:,.1f}"


def _cell(s: dict[str, Any], enc: str) -> str:
    chose = s[enc]["as"]
    return _kb(s[enc]["bytes"]) + ("" if chose == [enc] else f" ({'/'.join(chose)})")


def _row(what: str, s: dict[str, Any], peer: dict[str, Any] | None = None) -> str:
    cells = [_cell(s, enc) + (f" vs {_cell(peer, enc)}" if peer else "") for enc in ENCODINGS]
    return f"| {what} | " + " | ".join(cells) + " |"


def render(res: dict[str, Any], origin: str, buildings: int) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        HEADER, "",
        f"- date: {now}; data: {buildings:,} buildings ({origin}); both servers on the "
        "same database, asked for the same rows and properties; KiB of body as sent "
        "(median over the requests), with the encoding the server chose where it is not "
        "the one asked for",
        "", "| answer | identity | gzip | br |", "|---|---|---|---|",
        _row("items page, bbox, 100 buildings: ours vs tipg", res["items"]["ours"],
             res["items"]["tipg"]),
        _row("z14 building tile (8 tiles): ours vs tipg", res["tiles"]["ours"],
             res["tiles"]["tipg"]),
        _row("the public map page `/`", res["page"]),
    ]
    for src, s in res["static"].items():
        name = src.rsplit("/", 1)[-1]
        lines.append(_row(f"`{name}` ({s['cache'] or 'no Cache-Control'})", s))
    if all(res[k]["tipg"][enc]["as"] == ["identity"] for k in ("items", "tiles")
           for enc in ("gzip", "br")):
        lines += ["", "tipg answered uncompressed when asked for gzip or br (it leaves "
                  "compression to a proxy in front).", ""]
    else:
        lines.append("")
    if res["tiles"]["ours"]["br"]["as"] == ["identity"]:
        lines += ["Our tiles are kept gzip-compressed in the tile cache and sent as they are "
                  "to any client that takes gzip (every browser does); a client that takes "
                  "only br gets them uncompressed.", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
