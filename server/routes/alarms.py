"""Sensor alarms and rules for staff: list, acknowledge, clear, assign; add rules.

Listing alarms first runs the no-signal sweep (at most every 10 s per process), so the
console is current even when no ingester is running.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import APIRouter, Body, Request

from server.deps import StaffDep
from twin.i18n import pick
from twin.sensors import rules

router = APIRouter(tags=["sensors"])
_SWEEP_S = 10.0
_last_sweep = 0.0
_sweep_lock = threading.Lock()


def _lang(request: Request) -> str:
    """The alarm messages' language: ``lang`` or Accept-Language, Vietnamese by default."""
    return pick(request.query_params.get("lang"), request.headers.get("accept-language"))


def _sweep(request: Request) -> None:
    global _last_sweep
    with _sweep_lock:
        if time.monotonic() - _last_sweep < _SWEEP_S:
            return
        _last_sweep = time.monotonic()
    with request.app.state.engine.begin() as conn:
        rules.sweep(conn)


@router.get("/alarms", summary="Sensor alarms (staff)")
def list_alarms(
    request: Request,
    staff: StaffDep,
    status: str = "active",
    thing: int | None = None,
    severity_min: int | None = None,
    limit: int = 200,
) -> dict[str, Any]:
    """``status``: active (not cleared, default), open (not acknowledged), cleared, all."""
    _sweep(request)
    with request.app.state.engine.connect() as conn:
        found = rules.list_alarms(conn, status=status, thing_id=thing,
                                  severity_min=severity_min, limit=min(max(limit, 1), 1000),
                                  lang=_lang(request))
    return {"alarms": found, "numberReturned": len(found)}


@router.get("/alarms/{alarm_id}", summary="One alarm (staff)")
def get_alarm(request: Request, alarm_id: int, staff: StaffDep) -> dict[str, Any]:
    with request.app.state.engine.connect() as conn:
        return rules.get_alarm(conn, alarm_id, lang=_lang(request))


@router.post("/alarms/{alarm_id}/acknowledge", summary="Acknowledge an alarm")
def acknowledge(request: Request, alarm_id: int, staff: StaffDep) -> dict[str, Any]:
    with request.app.state.engine.begin() as conn:
        rules.acknowledge(conn, alarm_id, actor=staff.username or "staff")
        return rules.get_alarm(conn, alarm_id, lang=_lang(request))


@router.post("/alarms/{alarm_id}/clear", summary="Clear an alarm")
def clear(
    request: Request,
    alarm_id: int,
    staff: StaffDep,
    body: dict[str, Any] | None = Body(None),  # noqa: B008
) -> dict[str, Any]:
    note = str((body or {}).get("note") or "")
    with request.app.state.engine.begin() as conn:
        rules.clear(conn, alarm_id, actor=staff.username or "staff", note=note)
        return rules.get_alarm(conn, alarm_id, lang=_lang(request))


@router.post("/alarms/{alarm_id}/assign", summary="Assign an alarm to someone (or null)")
def assign(
    request: Request,
    alarm_id: int,
    staff: StaffDep,
    body: dict[str, Any] = Body(...),  # noqa: B008
) -> dict[str, Any]:
    with request.app.state.engine.begin() as conn:
        rules.assign(conn, alarm_id, body.get("assignee"), actor=staff.username or "staff")
        return rules.get_alarm(conn, alarm_id, lang=_lang(request))


@router.get("/rules", summary="Alarm rules (staff)")
def list_rules(request: Request, staff: StaffDep, datastream: int | None = None) -> dict[str, Any]:
    with request.app.state.engine.connect() as conn:
        return {"rules": rules.list_rules(conn, datastream)}


@router.post("/rules", status_code=201, summary="Add an alarm rule to a datastream (staff)")
def add_rule(
    request: Request, staff: StaffDep, body: dict[str, Any] = Body(...)  # noqa: B008
) -> dict[str, Any]:
    """Fields: datastream_id, kind (above | below | rate | no_signal), threshold,
    clear_threshold (hysteresis: an above rule clears at or below it), hold_seconds (raise
    only after this long beyond), clear_seconds (clear only after this long back),
    window_seconds, name_i18n ({"vi", "en"}), no_signal_minutes, severity (1–5),
    opens_incident, incident_category, name."""
    with request.app.state.engine.begin() as conn:
        rid = rules.add_rule(conn, body)
        return {"id": rid, **next(r for r in rules.list_rules(conn) if r["id"] == rid)}


@router.patch("/rules/{rule_id}", summary="Change an alarm rule (staff)")
def update_rule(
    request: Request, rule_id: int, staff: StaffDep,
    body: dict[str, Any] = Body(...),  # noqa: B008
) -> dict[str, Any]:
    """Any of: name, name_i18n, threshold, clear_threshold, hold_seconds, clear_seconds,
    window_seconds, no_signal_minutes, severity, opens_incident, enabled."""
    with request.app.state.engine.begin() as conn:
        return rules.update_rule(conn, rule_id, body)
