"""A flood run for a flood incident (the /ops flood layer): where it starts and how high.

Unless the request says otherwise the water starts at the incident (a point on its
geometry, EPSG:4326) and rises to the water level (metres, the gauge's datum ≈ mean sea
level) last read by a flood-tower alarm that opened or joined the incident. The sensor
rules record that reading on the incident's timeline (``data.reading`` of the event);
incidents opened before they did fall back to the value their ``above``/``below`` alarm
holds (the worst reading while it is active). Without a reading the level must be given.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text

from twin.errors import InputError
from twin.scenarios.flood import MAX_LEVEL_M

if TYPE_CHECKING:
    from twin.scenarios.flood_scenario import FloodParams

#: unit symbol of a water-level datastream (SensorThings ``unitOfMeasurement.symbol``)
LEVEL_UNIT = "m"


def level_reading(conn: Connection, incident_id: int) -> dict[str, Any] | None:
    """The newest water-level reading (metres) behind an incident's alarms, or None.

    Returns
    -------
    dict or None
        ``value`` (m), ``datastream``, ``alarm``, ``time`` (ISO 8601, when known) and
        ``source``: ``timeline`` (the reading that raised the alarm) or ``alarm`` (the
        value an older alarm holds).
    """
    row = conn.execute(
        text("SELECT data -> 'reading' FROM incident_event WHERE incident_id = :i "
             "AND data -> 'reading' ->> 'unit' = :u "
             "AND jsonb_typeof(data -> 'reading' -> 'value') = 'number' "
             "ORDER BY id DESC LIMIT 1"),
        {"i": incident_id, "u": LEVEL_UNIT},
    ).first()
    if row is not None:
        r = row[0] if isinstance(row[0], dict) else json.loads(row[0])
        return {"value": float(r["value"]), "datastream": r.get("datastream"),
                "alarm": r.get("alarm"), "time": r.get("time"), "source": "timeline"}
    row = conn.execute(
        text("SELECT a.value, a.datastream_id, a.id, a.raised_at FROM alarm a "
             "JOIN datastream d ON d.id = a.datastream_id WHERE a.incident_id = :i "
             "AND a.kind IN ('above', 'below') AND a.value IS NOT NULL "
             "AND d.unit_of_measurement ->> 'symbol' = :u "
             "ORDER BY a.raised_at DESC, a.id DESC LIMIT 1"),
        {"i": incident_id, "u": LEVEL_UNIT},
    ).first()
    if row is None:
        return None
    return {"value": float(row[0]), "datastream": int(row[1]), "alarm": int(row[2]),
            "time": row[3].isoformat(), "source": "alarm"}


def apply(conn: Connection, p: FloodParams) -> tuple[FloodParams, dict[str, Any]]:
    """Fill a flood's seeds and level from its incident.

    Returns
    -------
    tuple
        The completed parameters and what to record of them in the scenario's
        ``params``: ``incident_id``, ``defaulted`` (the keys filled) and, when the level
        came from a sensor, ``reading``.

    Raises
    ------
    InputError
        No such incident, not a flood incident, no level given and none read, or a
        reading that is no usable level.
    """
    if p.incident_id is None:
        return p, {}
    row = conn.execute(
        text("SELECT category, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
             "FROM incident WHERE id = :i"),
        {"i": p.incident_id},
    ).first()
    if row is None:
        raise InputError(f"unknown incident {p.incident_id}")
    if row[0] != "flood":
        raise InputError(f"incident {p.incident_id} is a {row[0]} incident: flood scenarios "
                         "are run for flood incidents only")
    record: dict[str, Any] = {"incident_id": p.incident_id, "defaulted": []}
    changes: dict[str, Any] = {}
    if p.seeds is None:
        changes["seeds"] = ((float(row[1]), float(row[2])),)
        record["defaulted"].append("seeds")
    if p.water_level_m is None and p.rise_m is None:
        reading = level_reading(conn, p.incident_id)
        if reading is None:
            raise InputError(f"incident {p.incident_id} has no flood-tower reading: give "
                             "water_level_m (metres above sea level)")
        v = reading["value"]
        if not math.isfinite(v) or not 0 <= v <= MAX_LEVEL_M:
            raise InputError(f"the water level read for incident {p.incident_id} ({v:g} m) "
                             "is no usable level: give water_level_m")
        changes["water_level_m"] = v
        record["defaulted"].append("water_level_m")
        record["reading"] = reading
    return dataclasses.replace(p, **changes), record
