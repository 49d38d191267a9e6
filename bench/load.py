"""Load generation: ``wrk`` (C, cheap on a 2-core machine) with a Lua script that cycles
through a list of paths, or a small asyncio + httpx fallback when wrk is missing.

Every run is bounded by its duration and stops by itself.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CONCURRENCY = 8


@dataclass(frozen=True)
class Stats:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    bytes: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_LUA = """
local paths = %(paths)s
local extra = %(extra)s
local counter = 1
nthreads = 0
tid = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
end
function init(args)
  counter = 1 + (tid * 7919) %% #paths
end
function request()
  local p = paths[counter]
  counter = counter + 1
  if counter > #paths then counter = 1 end
  local h = {["Accept-Encoding"] = "gzip"}
  local e = extra[p]
  if e then for k, v in pairs(e) do h[k] = v end end
  return wrk.format("GET", p, h)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"us\\": %%d, \\"errors\\": %%d, \\"status\\": %%d, "
    .. "\\"p50\\": %%d, \\"p95\\": %%d, \\"bytes\\": %%d}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), summary.bytes))
end
"""


def _lua_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid Lua string literal here (ASCII paths)


def _lua_script(paths: list[str], headers: dict[str, dict[str, str]]) -> str:
    plist = "{" + ", ".join(_lua_str(p) for p in paths) + "}"
    extra = "{" + ", ".join(
        f"[{_lua_str(p)}] = {{" + ", ".join(f"[{_lua_str(k)}] = {_lua_str(v)}"
                                           for k, v in h.items()) + "}"
        for p, h in headers.items()) + "}"
    return _LUA % {"paths": plist, "extra": extra}


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run(base: str, paths: list[str], seconds: float, concurrency: int = CONCURRENCY,
        headers: dict[str, dict[str, str]] | None = None) -> Stats:
    """Request ``paths`` round-robin from ``base`` with ``concurrency`` connections."""
    if have_wrk():
        return _run_wrk(base, paths, seconds, concurrency, headers or {})
    return asyncio.run(_run_httpx(base, paths, seconds, concurrency, headers or {}))


def _run_wrk(base: str, paths: list[str], seconds: float, concurrency: int,
             headers: dict[str, dict[str, str]]) -> Stats:
    threads = max(1, min(2, concurrency))
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "paths.lua"
        script.write_text(_lua_script(paths, headers))
        res = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds:.0f}s",
             "--timeout", "10s", "-s", str(script), base],
            capture_output=True, text=True, timeout=seconds + 60,
        )
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {res.stdout}\n{res.stderr}")
    d = json.loads(line[len("RESULT "):])
    return Stats(requests=d["requests"], seconds=d["us"] / 1e6,
                 errors=d["errors"] + d["status"], p50_ms=d["p50"] / 1000,
                 p95_ms=d["p95"] / 1000, bytes=d["bytes"])


async def _run_httpx(base: str, paths: list[str], seconds: float, concurrency: int,
                     headers: dict[str, dict[str, str]]) -> Stats:
    import httpx

    lat: list[float] = []
    errors = 0
    nbytes = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient, offset: int) -> None:
        nonlocal errors, nbytes
        i = offset
        while time.perf_counter() < stop:
            p = paths[i % len(paths)]
            i += 1
            t0 = time.perf_counter()
            try:
                r = await client.get(p, headers={"Accept-Encoding": "gzip",
                                                 **headers.get(p, {})})
                nbytes += len(r.content)
                if r.status_code >= 400:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
        await asyncio.gather(*(worker(client, k * 7919) for k in range(concurrency)))
    elapsed = time.perf_counter() - t0
    lat.sort()
    p95 = lat[int(0.95 * (len(lat) - 1))] if lat else 0.0
    return Stats(requests=len(lat), seconds=elapsed, errors=errors,
                 p50_ms=1000 * statistics.median(lat) if lat else 0.0,
                 p95_ms=1000 * p95, bytes=nbytes)
