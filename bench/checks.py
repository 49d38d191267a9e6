"""Answers must match before anything is timed; and the raw-SQL floor for T3."""

from __future__ import annotations

import socket
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx
import mapbox_vector_tile
import psycopg

from layers.catalog import Layer
from layers.mvt import EXTENT, SESSION_OPTIONS, tile_query
from layers.versions import libpq_url


@dataclass
class TileCheck:
    tiles: int = 0
    matched: int = 0
    ours_features: int = 0
    tipg_features: int = 0
    ours_gzip_bytes: int = 0
    tipg_gzip_bytes: int = 0
    capped: int = 0
    worst: str = ""

    @property
    def ok(self) -> bool:
        return self.tiles > 0 and self.matched + self.capped == self.tiles


def _coords(geom: Any) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []

    def walk(c: Any) -> None:
        if c and isinstance(c[0], (int, float)):
            out.append((c[0], c[1]))
        else:
            for sub in c:
                walk(sub)

    walk(geom["coordinates"])
    return out


def _inside(geom: Any) -> bool:
    """Whether the feature's box touches the tile proper (not only the buffer)."""
    pts = _coords(geom)
    if not pts:
        return False
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(xs) < EXTENT and max(xs) > 0 and min(ys) < EXTENT and max(ys) > 0


def _get(client: httpx.Client, url: str) -> tuple[bytes, int]:
    """(decoded body, bytes on the wire)."""
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as r:
        if r.status_code == 204:
            return b"", 0
        r.raise_for_status()
        raw = b"".join(r.iter_raw())
    import gzip

    body = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    return body, len(raw)


def compare_tiles(ours: str, tipg: str, tiles: list[tuple[int, int, int, int]],
                  ours_path: str, tipg_path: str, cap: int) -> TileCheck:
    """Feature ids per tile: tipg's (features intersecting the tile) must equal ours that
    reach into the tile proper (ours also carry the 64-unit buffer's features). A tile
    where ours reach the layer's feature cap is counted apart: the cap applies to the
    tile with its buffer, tipg's to the tile alone, so the two keep different rows."""
    res = TileCheck()
    with httpx.Client(timeout=60) as client:
        for z, x, y, _ in tiles:
            o_body, o_len = _get(client, ours + ours_path.format(z=z, x=x, y=y))
            t_body, t_len = _get(client, tipg + tipg_path.format(z=z, x=x, y=y))
            o: dict[str, Any] = mapbox_vector_tile.decode(o_body) if o_body else {}
            t: dict[str, Any] = mapbox_vector_tile.decode(t_body) if t_body else {}
            o_feats = o.get("buildings", {}).get("features", [])
            t_layer: dict[str, Any] = next(iter(t.values())) if t else {}
            t_feats = t_layer.get("features", [])
            o_ids = {f["id"] for f in o_feats if _inside(f["geometry"])}
            t_ids = {int(f["properties"]["id"]) for f in t_feats}
            res.tiles += 1
            res.ours_features += len(o_feats)
            res.tipg_features += len(t_feats)
            res.ours_gzip_bytes += o_len
            res.tipg_gzip_bytes += t_len
            diff = len(o_ids ^ t_ids)
            # allow a hair of boundary disagreement (&& box vs ST_Intersects on edges)
            if diff <= max(2, len(t_ids) // 200):
                res.matched += 1
            elif len(o_feats) >= 0.97 * cap:
                res.capped += 1
            elif not res.worst:
                res.worst = f"{z}/{x}/{y}: ours {len(o_ids)} vs tipg {len(t_ids)} ({diff} differ)"
    return res


def compare_items(ours: str, tipg: str, pairs: list[tuple[str, str]]) -> tuple[bool, str]:
    """numberMatched (and the number returned) must agree for every query pair."""
    with httpx.Client(timeout=60) as client:
        for o_path, t_path in pairs:
            o = client.get(ours + o_path).json()
            t = client.get(tipg + t_path).json()
            o_n = (o.get("numberMatched"), len(o.get("features", [])))
            t_n = (t.get("numberMatched"), len(t.get("features", [])))
            if o_n != t_n:
                return False, f"{o_path}: ours {o_n} vs tipg {t_n} (matched, returned)"
    return True, f"{len(pairs)} queries agree on numberMatched and count"


class RawHTTP:
    """A minimal keep-alive HTTP/1.1 client on one socket: the least client-side time
    around a request, so one-client latency is the server's."""

    def __init__(self, base: str) -> None:
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.sock = socket.create_connection((self.host, self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get(self, path: str) -> tuple[int, int]:
        """(status, body bytes) of GET path, body read to its Content-Length."""
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                          "Accept-Encoding: gzip\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        got = len(body)
        while got < length:
            chunk = self.sock.recv(max(65536, length - got))
            if not chunk:
                raise ConnectionError("server closed the connection")
            got += len(chunk)
        return status, length

    def close(self) -> None:
        self.sock.close()


def tipg_sql(z: int, x: int, y: int, properties: list[str],
             table: str = "public.building") -> str:
    """The statement tipg 1.6 runs for this tile (its ``Collection.get_tile`` on a table
    whose first geometry column is ``geom``, EPSG:4326): rows tested with
    ``ST_Intersects`` against the tile's bounds in 4326, each transformed to 3857, a
    segmentized envelope, buffer 256, ordered by id. For the database-work comparison."""
    import morecantile
    from pyproj import Transformer

    b = morecantile.tms.get("WebMercatorQuad").xy_bounds(morecantile.Tile(x, y, z))
    w, s, e, n = Transformer.from_crs(3857, 4326, always_xy=True).transform_bounds(
        b.left, b.bottom, b.right, b.top)
    cols = ", ".join(f'"{p}"' for p in properties)
    return (
        f"WITH t AS (SELECT {cols}, ST_AsMVTGeom(ST_Transform(CAST(\"geom\" AS geometry), "
        f"3857), ST_Segmentize(ST_MakeEnvelope({b.left}, {b.bottom}, {b.right}, {b.top}), "
        f"{b.right - b.left}), 4096, 256, TRUE) AS geom FROM {table} "
        f"WHERE ST_Intersects(\"geom\", ST_SetSRID(ST_MakeEnvelope({w}, {s}, {e}, {n}), 4326)) "
        f"ORDER BY \"id\" LIMIT 20000) SELECT ST_AsMVT(t.*, 'default') FROM t"
    )


def one_client(url: str, layers: list[Layer], z: int, x: int, y: int,
               servers: dict[str, str], seconds: float, peer_sql: str | None = None,
               min_rounds: int = 15) -> dict[str, list[float]]:
    """One request at a time, alternating: the exact tile SQL the server runs (same
    session settings, prepared, binary result), then one HTTP request to each server
    (and ``peer_sql`` on a default session, when given). Alternating request by request
    puts every party under the same machine load. ``servers`` maps a name to the tile's
    full URL on that server. Milliseconds per request, by party ("sql", "peer_sql" and
    the servers' names)."""
    q = tile_query(layers, z)
    assert q is not None
    params = {"z": z, "x": x, "y": y, **q.params}
    times: dict[str, list[float]] = {"sql": [], **{name: [] for name in servers}}
    if peer_sql:
        times["peer_sql"] = []
    clients = {name: RawHTTP(full) for name, full in servers.items()}
    paths = {}
    for name, full in servers.items():
        u = urllib.parse.urlsplit(full)
        paths[name] = u.path + (f"?{u.query}" if u.query else "")
    try:
        with psycopg.connect(libpq_url(url), autocommit=True,
                             options=SESSION_OPTIONS) as conn, \
                psycopg.connect(libpq_url(url), autocommit=True) as peer, \
                conn.cursor(binary=True) as cur, peer.cursor(binary=True) as pcur:

            def run_peer() -> None:
                if peer_sql:
                    pcur.execute(peer_sql).fetchone()

            for _ in range(8):  # past psycopg's prepare threshold; warm the servers
                cur.execute(q.sql, params).fetchone()
                run_peer()
                for name, c in clients.items():
                    status, _ = c.get(paths[name])
                    assert status == 200, (name, status)
            stop = time.perf_counter() + seconds
            rounds = 0
            while rounds < min_rounds or time.perf_counter() < stop:
                t0 = time.perf_counter()
                cur.execute(q.sql, params).fetchone()
                times["sql"].append(1000 * (time.perf_counter() - t0))
                if peer_sql:
                    t0 = time.perf_counter()
                    run_peer()
                    times["peer_sql"].append(1000 * (time.perf_counter() - t0))
                for name, c in clients.items():
                    t0 = time.perf_counter()
                    c.get(paths[name])
                    times[name].append(1000 * (time.perf_counter() - t0))
                rounds += 1
    finally:
        for c in clients.values():
            c.close()
    return times
