"""Announce sensor changes on PostgreSQL's ``twin_sensor`` channel (delivered at commit).

Payloads (JSON, each under PostgreSQL's 8000-byte limit, split when needed):

* ``{"kind": "observation", "via": "http"|"mqtt", "first_id", "last_id", "n",
  "observations": [{"id", "datastream", "thing", "time", "result", "public"}]}`` — the
  newest reading per datastream of one ingested batch (listeners read the things' new
  state from ``sensor_state`` themselves, so the ingester does not);
* ``{"kind": "alarm", "alarm": id, "action": "raised"|"updated"|"acknowledged"|
  "assigned"|"cleared"}`` — staff only; ``updated`` at most every few seconds per alarm
  (``rules.UPDATE_EVENT_S``).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

SENSOR_CHANNEL = "twin_sensor"
MAX_PAYLOAD = 7500


def _send(conn: Connection, payload: dict[str, Any]) -> None:
    conn.execute(
        text("SELECT pg_notify(:c, :p)"),
        {"c": SENSOR_CHANNEL, "p": json.dumps(payload, default=str, separators=(",", ":"))},
    )


def observation_payloads(head: dict[str, Any], obs: list[dict[str, Any]]) -> list[str]:
    """One batch's notification, split into payloads under PostgreSQL's limit."""
    out: list[str] = []
    items: list[str] = []
    base = json.dumps({"kind": "observation", **head, "observations": []},
                      separators=(",", ":"))
    size = len(base)
    for o in obs:
        item = json.dumps(o, default=str, separators=(",", ":"))
        if items and size + len(item) + 1 > MAX_PAYLOAD:
            out.append(base[:-2] + ",".join(items) + "]}")
            items, size = [], len(base)
        items.append(item)
        size += len(item) + 1
    out.append(base[:-2] + ",".join(items) + "]}")
    return out


def alarm(conn: Connection, alarm_id: int, action: str) -> None:
    _send(conn, {"kind": "alarm", "alarm": alarm_id, "action": action})
