"""Observations of one datastream aggregated into time buckets in the database
(``date_bin``): the chart of a sensor and what FROST users have long asked for."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import Connection, text

from twin.errors import InputError, NotFound
from twin.sensors.values import iso, parse_time

FUNCTIONS = {
    "avg": "avg(result)", "min": "min(result)", "max": "max(result)", "sum": "sum(result)",
    "count": "count(*)", "stddev": "stddev_samp(result)",
    "first": "(array_agg(result ORDER BY phenomenon_time))[1]",
    "last": "(array_agg(result ORDER BY phenomenon_time DESC))[1]",
}
MAX_BUCKETS = 10_000
_UNITS = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "hour": 3600, "d": 86400,
          "day": 86400, "w": 604800, "week": 604800}
_SIMPLE = re.compile(r"^(\d+)\s*([a-z]+)$")
_ISO = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
ORIGIN = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def parse_interval(value: str) -> int:
    """``15min``, ``1h``, ``30s``, ``1d`` or ISO 8601 ``PT15M`` → seconds."""
    v = value.strip()
    m = _SIMPLE.match(v.lower())
    if m and m.group(2) in _UNITS:
        secs = int(m.group(1)) * _UNITS[m.group(2)]
    else:
        m2 = _ISO.match(v.upper())
        if not m2 or not any(m2.groups()):
            raise InputError(f"interval {value!r}: use e.g. 30s, 15min, 1h, 1d or PT15M")
        d, h, mi, s = (int(x or 0) for x in m2.groups())
        secs = d * 86400 + h * 3600 + mi * 60 + s
    if secs <= 0:
        raise InputError("interval must be positive")
    if secs > 366 * 86400:
        raise InputError("interval must be at most 366 days")
    return secs


def aggregate(
    conn: Connection,
    datastream_id: int,
    *,
    interval: str = "15min",
    fn: str = "avg,min,max,count",
    start: str | None = None,
    end: str | None = None,
    public_only: bool = False,
) -> dict[str, Any]:
    """Buckets of ``interval`` between ``start`` (inclusive) and ``end`` (exclusive).

    Buckets are aligned on UTC midnight of 2000-01-01 (so 1d buckets are UTC days); a
    bucket's ``time`` is its start. Empty buckets are left out. Defaults: the 24 hours
    up to the datastream's newest reading.
    """
    secs = parse_interval(interval)
    fns = [f.strip() for f in fn.split(",") if f.strip()]
    bad = [f for f in fns if f not in FUNCTIONS]
    if not fns or bad:
        raise InputError(f"fn: unknown {', '.join(bad) or '(none)'}; "
                         f"choose from {', '.join(FUNCTIONS)}")
    ds = conn.execute(
        text("SELECT d.id, d.name, d.unit_of_measurement, (SELECT max(o.phenomenon_time) "
             "FROM observation o WHERE o.datastream_id = d.id), t.public, "
             "d.properties -> 'name_i18n' "
             "FROM datastream d JOIN thing t ON t.id = d.thing_id WHERE d.id = :d"),
        {"d": datastream_id}).first()
    if ds is None or (public_only and not ds[4]):
        raise NotFound(f"Datastreams({datastream_id}) not found")
    t1 = parse_time(end, "to") if end else (ds[3] + dt.timedelta(microseconds=1)
                                             if ds[3] else dt.datetime.now(dt.UTC))
    t0 = parse_time(start, "from") if start else t1 - dt.timedelta(days=1)
    if t1 <= t0:
        raise InputError("'to' must be after 'from'")
    if (t1 - t0).total_seconds() / secs > MAX_BUCKETS:
        raise InputError(f"{interval} buckets from {iso(t0)} to {iso(t1)} would be more than "
                         f"{MAX_BUCKETS}; use a longer interval or a shorter range")
    cols = ", ".join(f"{FUNCTIONS[f]} AS {f}" for f in fns)
    rows = conn.execute(
        text(f"SELECT date_bin(make_interval(secs => :s), phenomenon_time, :o) AS t, {cols} "
             "FROM observation WHERE datastream_id = :d AND phenomenon_time >= :t0 "
             "AND phenomenon_time < :t1 GROUP BY 1 ORDER BY 1"),
        {"s": secs, "o": ORIGIN, "d": datastream_id, "t0": t0, "t1": t1},
    ).mappings()
    value = []
    for r in rows:
        item: dict[str, Any] = {"time": iso(r["t"])}
        for f in fns:
            v = r[f]
            item[f] = int(v) if f == "count" else (None if v is None else float(v))
        value.append(item)
    return {
        # name_i18n: the name in each language where the datastream carries one (the demo's)
        "Datastream": {"@iot.id": ds[0], "name": ds[1], "unitOfMeasurement": ds[2],
                       **({"name_i18n": ds[5]} if isinstance(ds[5], dict) else {})},
        "interval": interval, "interval_seconds": secs, "from": iso(t0), "to": iso(t1),
        "fn": fns, "value": value,
    }
