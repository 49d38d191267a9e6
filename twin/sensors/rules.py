"""Rules on readings and the alarms they raise.

Kinds (per datastream):

* ``above`` / ``below`` — the newest reading is beyond ``threshold``; with
  ``hold_seconds`` > 0 it must have stayed beyond it that long (must-hold-for). It clears
  once the reading is back past ``clear_threshold`` (hysteresis; default the threshold),
  with ``clear_seconds`` > 0 only after it stayed back that long. Durations are judged on
  phenomenon times of the stored readings, so late or out-of-order readings count where
  they belong and every ingester agrees (no state in memory).
* ``rate`` — change per hour over ``window_seconds`` (newest reading against the last
  one at or before the window's start): fires at ``rate >= threshold`` for a positive
  threshold (rising), ``rate <= threshold`` for a negative one (falling).
* ``no_signal`` — no reading for ``no_signal_minutes``; raised by :func:`sweep` (called
  periodically), cleared by the next reading.

At most one uncleared alarm exists per rule and datastream (a partial unique index):
while a condition holds the alarm keeps the worst value seen, and each new crossing
(back inside the band, then over again) adds to its ``occurrences``; an acknowledgement
stays until the alarm clears. Update events go out at most every ``UPDATE_EVENT_S``.
Messages are stored in vi and en (``message_i18n``). A rule with ``opens_incident`` opens
an incident (or joins the open one of its ward, or one nearby) when it raises an alarm.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Connection, text

from twin.errors import Conflict, InputError, NotFound
from twin.i18n import LANGS, choose, local_text, t
from twin.sensors import notify
from twin.sensors.models import RULE_KINDS

_RULES = (
    "SELECT r.id, r.datastream_id, r.name, r.kind, r.threshold, r.clear_threshold, "
    "r.window_seconds, r.hold_seconds, COALESCE(r.no_signal_minutes, d.no_signal_minutes), "
    "r.severity, r.opens_incident, r.incident_category, d.thing_id, o.phenomenon_time, "
    "o.result, d.name, d.unit_of_measurement ->> 'symbol', t.name, r.created_at, "
    "r.clear_seconds, r.name_i18n, d.properties -> 'name_i18n' "
    "FROM rule r JOIN datastream d ON d.id = r.datastream_id JOIN thing t ON t.id = d.thing_id "
    "LEFT JOIN LATERAL (SELECT ob.phenomenon_time, ob.result FROM observation ob WHERE "
    "ob.datastream_id = d.id ORDER BY ob.phenomenon_time DESC LIMIT 1) o ON true "
    "WHERE r.enabled"
)
_KEYS = ("id", "datastream", "name", "kind", "threshold", "clear", "window", "hold",
         "no_signal_minutes", "severity", "opens_incident", "category", "thing", "last_time",
         "last_value", "ds_name", "unit", "thing_name", "created_at", "clear_s", "name_i18n",
         "ds_name_i18n")
# sensor-opened incidents group within this distance where no ward is known
GROUP_RADIUS_M = 2500.0
# update events of one open alarm at most this often (raise, clear and ack always go out)
UPDATE_EVENT_S = 5.0


def _held(conn: Connection, r: dict[str, Any], cond: str, seconds: int | None = None,
          x: float | None = None) -> bool:
    """Whether ``cond`` (on ``result``) held over the ``seconds`` (default the rule's hold)
    up to the newest reading, by phenomenon time: readings arriving late or out of order
    count where they belong, and the state is the stored readings themselves (every
    ingester and server reads the same)."""
    t = r["last_time"]
    hold = dt.timedelta(seconds=r["hold"] if seconds is None else seconds)
    p = {"d": r["datastream"], "t": t, "s": t - hold,
         "x": r["threshold"] if x is None else x}
    broken = conn.execute(
        text(f"SELECT 1 FROM observation WHERE datastream_id = :d AND phenomenon_time "
             f"BETWEEN :s AND :t AND NOT ({cond}) LIMIT 1"), p).first()
    if broken:
        return False
    before = conn.execute(
        text(f"SELECT ({cond}) FROM observation WHERE datastream_id = :d AND "
             "phenomenon_time < :s ORDER BY phenomenon_time DESC LIMIT 1"), p).first()
    return bool(before and before[0])


def _rate(conn: Connection, r: dict[str, Any]) -> float | None:
    """Change per hour over the rule's window, or None without a reference reading."""
    t, start = r["last_time"], r["last_time"] - dt.timedelta(seconds=r["window"])
    ref = conn.execute(
        text("SELECT phenomenon_time, result FROM observation WHERE datastream_id = :d "
             "AND phenomenon_time <= :s AND result IS NOT NULL "
             "ORDER BY phenomenon_time DESC LIMIT 1"),
        {"d": r["datastream"], "s": start},
    ).first() or conn.execute(
        text("SELECT phenomenon_time, result FROM observation WHERE datastream_id = :d "
             "AND phenomenon_time > :s AND phenomenon_time < :t AND result IS NOT NULL "
             "ORDER BY phenomenon_time LIMIT 1"),
        {"d": r["datastream"], "s": start, "t": t},
    ).first()
    if ref is None or r["last_value"] is None:
        return None
    hours = (t - ref[0]).total_seconds() / 3600
    return (r["last_value"] - ref[1]) / hours if hours > 0 else None


def _where(r: dict[str, Any], lang: str) -> str:
    """The thing and its datastream, the datastream named in ``lang`` where its properties
    carry ``name_i18n``; a datastream named after its thing ("Mực nước – Trạm Cẩm Lệ", as
    SensorThings names keep them apart) is not named twice."""
    thing = r["thing_name"]
    ds = (choose(r["ds_name_i18n"], lang, r["ds_name"]) or "").removesuffix(f" – {thing}")
    return f"{thing} · {ds}"


def _state(
    conn: Connection, r: dict[str, Any]
) -> tuple[bool, bool, float | None, dict[str, str]]:
    """(firing, clear, value, message in vi and en) for a rule at its datastream's newest
    reading."""
    v, x, unit = r["last_value"], r["threshold"], r["unit"] or ""
    if r["kind"] in ("above", "below"):
        if v is None or x is None:
            return False, False, v, {}
        above = r["kind"] == "above"
        beyond = v > x if above else v < x
        clear_x = r["clear"] if r["clear"] is not None else x
        back = v <= clear_x if above else v >= clear_x
        if beyond and r["hold"] > 0:
            beyond = _held(conn, r, "result > :x" if above else "result < :x")
        if back and r["clear_s"] > 0:
            back = _held(conn, r, "result <= :x" if above else "result >= :x",
                         seconds=r["clear_s"], x=clear_x)
        key = "rule.above" if above else "rule.below"
        return beyond, back, v, {lang: t(key, lang, where=_where(r, lang), v=v, unit=unit, x=x,
                                         held=(t("rule.held", lang, minutes=r["hold"] // 60)
                                               if r["hold"] else ""))
                                 for lang in LANGS}
    if r["kind"] == "rate":
        rate = _rate(conn, r)
        if rate is None or x is None:
            return False, False, rate, {}
        firing = rate >= x if x > 0 else rate <= x
        return firing, not firing, rate, {lang: t("rule.rate", lang, where=_where(r, lang),
                                                  rate=rate, unit=unit, x=x) for lang in LANGS}
    return False, False, None, {}


def evaluate(conn: Connection, datastream_ids: list[int]) -> list[int]:
    """Evaluate the rules of these datastreams at their newest readings (called by the
    ingester after each batch); returns the ids of alarms raised or cleared."""
    rows = conn.execute(text(_RULES + " AND r.datastream_id = ANY(:d) ORDER BY r.id"),
                        {"d": datastream_ids}).all()
    if not rows:
        return []
    open_ = _open_alarms(conn, [row[0] for row in rows])
    touched: list[int] = []
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        r = dict(zip(_KEYS, row, strict=True))
        current = open_.get((r["id"], r["datastream"]))
        if r["kind"] == "no_signal":
            fresh = r["last_time"] and r["last_time"] >= now - dt.timedelta(
                minutes=r["no_signal_minutes"])
            if current and fresh:
                touched.append(_clear(conn, current[0], "rule", "reading received"))
            continue
        firing, back, value, message = _state(conn, r)
        if firing and current is None:
            touched.append(_raise(conn, r, value, message))
        elif firing and current is not None and value is not None:
            _fold(conn, current, r, value, message)
        elif back and current is not None:
            touched.append(_clear(conn, current[0], "rule", "back to normal"))
    return touched


def sweep(conn: Connection, now: dt.datetime | None = None) -> list[int]:
    """Raise no-signal alarms for datastreams silent past their rule's minutes."""
    now = now or dt.datetime.now(dt.UTC)
    rows = conn.execute(
        text(_RULES + " AND r.kind = 'no_signal' AND COALESCE(o.phenomenon_time, r.created_at) < "
             ":now - make_interval(mins => COALESCE(r.no_signal_minutes, d.no_signal_minutes))"
             " AND NOT EXISTS (SELECT 1 FROM alarm a WHERE a.rule_id = r.id AND "
             "a.datastream_id = r.datastream_id AND a.cleared_at IS NULL) ORDER BY r.id"),
        {"now": now},
    ).all()
    raised = []
    for row in rows:
        r = dict(zip(_KEYS, row, strict=True))
        raised.append(_raise(conn, r, None, {lang: t(
            "rule.no_signal", lang, where=_where(r, lang), minutes=r["no_signal_minutes"],
            since=local_text(r["last_time"]) if r["last_time"] else t("rule.never", lang))
            for lang in LANGS}))
    return raised


def _open_alarms(conn: Connection, rule_ids: list[int]) -> dict[tuple[int, int], tuple[Any, ...]]:
    rows = conn.execute(
        text("SELECT id, rule_id, datastream_id, value FROM alarm "
             "WHERE rule_id = ANY(:r) AND cleared_at IS NULL"),
        {"r": rule_ids},
    )
    return {(a[1], a[2]): (a[0], a[3]) for a in rows}


def _new_crossing(conn: Connection, r: dict[str, Any]) -> bool:
    """Whether the reading before the newest one was not beyond the threshold (the value
    went back inside the band and crossed again)."""
    if r["kind"] not in ("above", "below"):
        return False
    prev = conn.execute(
        text("SELECT result FROM observation WHERE datastream_id = :d AND phenomenon_time < :t "
             "AND result IS NOT NULL ORDER BY phenomenon_time DESC LIMIT 1"),
        {"d": r["datastream"], "t": r["last_time"]}).first()
    if prev is None:
        return False
    return not (prev[0] > r["threshold"] if r["kind"] == "above" else prev[0] < r["threshold"])


def _fold(conn: Connection, current: tuple[Any, ...], r: dict[str, Any], v: float,
          messages: dict[str, str]) -> None:
    """A condition still (or again) holding while its alarm is open updates that alarm:
    worst value, last seen, a count of crossings, the newest message. Update events go
    out at most every :data:`UPDATE_EVENT_S` seconds per alarm (``notified_at``)."""
    old = current[1]
    worse = old is None or (v > old if r["kind"] == "above" or (
        r["kind"] == "rate" and (r["threshold"] or 0) > 0) else v < old)
    crossed = _new_crossing(conn, r)
    if not worse and not crossed:
        return
    row = conn.execute(
        text("UPDATE alarm SET value = CASE WHEN :w THEN :v ELSE value END, "
             "last_seen_at = now(), occurrences = occurrences + CASE WHEN :c THEN 1 ELSE 0 END, "
             "message = CASE WHEN :w THEN :m ELSE message END, "
             "message_i18n = CASE WHEN :w THEN CAST(:mi AS jsonb) ELSE message_i18n END, "
             "notified_at = CASE WHEN notified_at IS NULL OR notified_at < now() - "
             "make_interval(secs => :e) THEN now() ELSE notified_at END "
             "WHERE id = :i RETURNING notified_at = now()"),
        {"v": v, "i": current[0], "w": worse, "c": crossed, "m": messages.get("en", ""),
         "mi": json.dumps(messages, ensure_ascii=False), "e": UPDATE_EVENT_S},
    ).first()
    if row is not None and row[0]:
        notify.alarm(conn, current[0], "updated")


def _raise(
    conn: Connection, r: dict[str, Any], value: float | None, messages: dict[str, str]
) -> int:
    """Raise an alarm (its message in English for the alarm list) and open or comment on
    an incident with the texts in both languages."""
    message = messages.get("en", "")
    row = conn.execute(
        text("INSERT INTO alarm (rule_id, datastream_id, thing_id, kind, severity, message, "
             "message_i18n, value, notified_at) VALUES (:r, :d, :t, :k, :s, :m, "
             "CAST(:mi AS jsonb), :v, now()) ON CONFLICT (rule_id, datastream_id) "
             "WHERE cleared_at IS NULL DO NOTHING RETURNING id"),
        {"r": r["id"], "d": r["datastream"], "t": r["thing"], "k": r["kind"],
         "s": r["severity"], "m": message, "mi": json.dumps(messages, ensure_ascii=False),
         "v": value},
    ).first()
    if row is None:  # raised meanwhile by a concurrent batch
        return int(conn.execute(
            text("SELECT id FROM alarm WHERE rule_id = :r AND datastream_id = :d "
                 "AND cleared_at IS NULL"), {"r": r["id"], "d": r["datastream"]}).scalar_one())
    alarm_id = int(row[0])
    if r["opens_incident"]:
        _open_incident(conn, alarm_id, r, messages)
    notify.alarm(conn, alarm_id, "raised")
    return alarm_id


def _open_incident(
    conn: Connection, alarm_id: int, r: dict[str, Any], messages: dict[str, str]
) -> None:
    from shapely import wkt

    from twin.incidents import store

    loc = conn.execute(
        text("SELECT ST_AsText(ST_PointOnSurface(l.geom)) FROM thing_location tl JOIN "
             "location l ON l.id = tl.location_id WHERE tl.thing_id = :t "
             "ORDER BY l.id DESC LIMIT 1"), {"t": r["thing"]}).first()
    if loc is None:
        return
    geom = wkt.loads(loc[0])
    actor = f"sensor-rule:{r['id']}"
    # the reading behind the alarm, on the timeline (a flood run for the incident starts
    # at this water level: twin.scenarios.incident_flood)
    extra = {} if r["kind"] == "no_signal" or r["last_value"] is None else {"reading": {
        "alarm": alarm_id, "rule": r["id"], "datastream": r["datastream"],
        "value": r["last_value"], "unit": r["unit"],
        "time": r["last_time"].isoformat() if r["last_time"] else None}}
    raised = {lang: t("rule.raised", lang, alarm=alarm_id, message=messages.get(lang, ""))
              for lang in LANGS}
    # one incident per ward for one event: an open one the sensors opened in this ward
    # (else one within 300 m) takes the alarm, its towers listed on its timeline
    # (no ward data: one within GROUP_RADIUS_M)
    ward = store.ward_at(conn, geom)
    iid = conn.execute(
        text("SELECT id FROM incident WHERE category = :c AND channel = 'sensor' AND "
             "status <> 'closed' AND linked_to IS NULL AND created_at > now() - "
             "interval '24 hours' AND " + ("ward = :w" if ward else
             "ST_DWithin(geom::geography, ST_GeomFromText(:wkt, 4326)::geography, :r)") +
             " ORDER BY created_at LIMIT 1"),
        {"c": r["category"], "w": ward, "wkt": geom.wkt, "r": GROUP_RADIUS_M}).scalar()
    if iid is None:
        iid = store.find_open_nearby(conn, r["category"], geom, radius_m=300, hours=24)
    extra["tower"] = {"thing": r["thing"], "name": r["thing_name"]}
    if iid is None:
        inc = store.create(
            conn,
            {
                "category": r["category"],
                "subcategory": "river_overflow" if r["category"] == "flood" else None,
                "severity": max(r["severity"], 1),
                "title": f"{r['name']} — {r['thing_name']}",
                # Vietnamese (the default) stored; both on the timeline's created event
                "description": raised["vi"],
                "geometry": json.loads(json.dumps(geom.__geo_interface__)),
                "public": True,
            },
            actor=actor,
            channel="sensor",
            event_data={**extra, "texts": {"description": raised}},
        )
        iid = inc["id"]
    else:
        again = {lang: t("rule.again", lang, alarm=alarm_id, message=messages.get(lang, ""))
                 for lang in LANGS}
        store.event(conn, iid, actor, "comment", {"text": again["vi"], "texts": again, **extra})
    conn.execute(text("UPDATE alarm SET incident_id = :i WHERE id = :a"), {"i": iid, "a": alarm_id})


def _clear(conn: Connection, alarm_id: int, actor: str, note: str) -> int:
    conn.execute(
        text("UPDATE alarm SET cleared_at = now(), cleared_by = :by WHERE id = :i "
             "AND cleared_at IS NULL"),
        {"i": alarm_id, "by": f"{actor} ({note})" if note else actor},
    )
    notify.alarm(conn, alarm_id, "cleared")
    return alarm_id


# -- rules: create, list --------------------------------------------------------------

_RULE_FIELDS = ("datastream_id", "name", "kind", "threshold", "clear_threshold",
                "window_seconds", "hold_seconds", "clear_seconds", "no_signal_minutes", "severity",
                "opens_incident", "incident_category", "enabled", "name_i18n")


def _check_rule(data: dict[str, Any]) -> None:
    """Durations not negative, the clear threshold on the safe side of the threshold,
    a name in vi/en as strings."""
    for f in ("hold_seconds", "clear_seconds", "window_seconds", "no_signal_minutes"):
        v = data.get(f)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise InputError(f"{f} must be a whole number of at least 0")
    if data.get("window_seconds") == 0:
        raise InputError("window_seconds must be positive")
    x, c = data.get("threshold"), data.get("clear_threshold")
    if c is not None:
        if not isinstance(c, int | float) or isinstance(c, bool):
            raise InputError("clear_threshold must be a number")
        if data.get("kind") not in ("above", "below"):
            raise InputError("clear_threshold applies to above and below rules only")
        if isinstance(x, int | float):
            if data["kind"] == "above" and c > x:
                raise InputError("an above rule clears at or below its threshold: "
                                 f"clear_threshold {c} > threshold {x}")
            if data["kind"] == "below" and c < x:
                raise InputError("a below rule clears at or above its threshold: "
                                 f"clear_threshold {c} < threshold {x}")
    ni = data.get("name_i18n")
    if ni is not None and (not isinstance(ni, dict) or set(ni) - set(LANGS) or not all(
            isinstance(v, str) and v.strip() for v in ni.values())):
        raise InputError("name_i18n must map vi and/or en to non-empty names")


def add_rule(conn: Connection, data: dict[str, Any]) -> int:
    """Create a rule; :class:`InputError` says which field is wrong."""
    unknown = set(data) - set(_RULE_FIELDS)
    if unknown:
        raise InputError(f"unknown rule field(s): {', '.join(sorted(unknown))}")
    kind = data.get("kind")
    if kind not in RULE_KINDS:
        raise InputError(f"rule kind must be one of {', '.join(RULE_KINDS)}")
    if kind != "no_signal" and not isinstance(data.get("threshold"), int | float):
        raise InputError(f"a {kind} rule needs a numeric threshold")
    if kind == "rate" and data["threshold"] == 0:
        raise InputError("a rate threshold must be positive (rising) or negative (falling)")
    _check_rule(data)
    if data.get("opens_incident"):
        from twin.incidents.categories import get_category

        if get_category(str(data.get("incident_category", "flood"))) is None:
            raise InputError(f"unknown incident_category {data.get('incident_category')!r}")
    sev = data.get("severity", 3)
    if not isinstance(sev, int) or not 1 <= sev <= 5:
        raise InputError("severity must be an integer from 1 to 5")
    if not conn.execute(text("SELECT 1 FROM datastream WHERE id = :d"),
                        {"d": data.get("datastream_id")}).first():
        raise NotFound(f"Datastream {data.get('datastream_id')} not found")
    row = {"name": f"{kind} rule", "window_seconds": 900, "hold_seconds": 0,
           "clear_seconds": 0, "severity": 3, "name_i18n": None,
           "opens_incident": False, "incident_category": "flood", "enabled": True,
           "threshold": None, "clear_threshold": None, "no_signal_minutes": None, **data}
    row["name_i18n"] = json.dumps(row["name_i18n"], ensure_ascii=False) if row[
        "name_i18n"] else None
    cols = ", ".join(_RULE_FIELDS)
    vals = ", ".join("CAST(:name_i18n AS jsonb)" if c == "name_i18n" else ":" + c
                     for c in _RULE_FIELDS)
    return int(conn.execute(
        text(f"INSERT INTO rule ({cols}) VALUES ({vals}) RETURNING id"), row).scalar_one())


_PATCHABLE = ("name", "threshold", "clear_threshold", "window_seconds", "hold_seconds",
              "clear_seconds", "no_signal_minutes", "severity", "opens_incident", "enabled",
              "name_i18n")


def update_rule(conn: Connection, rule_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Change some fields of a rule (validated against the rule as it then stands)."""
    if not isinstance(data, dict) or not data:
        raise InputError("send the rule fields to change")
    unknown = set(data) - set(_PATCHABLE)
    if unknown:
        raise InputError(f"these rule field(s) cannot be changed: {', '.join(sorted(unknown))}")
    old = next((r for r in list_rules(conn) if r["id"] == rule_id), None)
    if old is None:
        raise NotFound(f"rule {rule_id} not found")
    merged = {**old, **data}
    if merged["kind"] != "no_signal" and not isinstance(merged.get("threshold"), int | float):
        raise InputError(f"a {merged['kind']} rule needs a numeric threshold")
    sev = merged.get("severity")
    if not isinstance(sev, int) or not 1 <= sev <= 5:
        raise InputError("severity must be an integer from 1 to 5")
    if "name" in data and (not isinstance(data["name"], str) or not data["name"].strip()):
        raise InputError("name must be a non-empty text")
    _check_rule(merged)
    p = {k: (json.dumps(v, ensure_ascii=False) if k == "name_i18n" and v is not None else v)
         for k, v in data.items()}
    sets = ", ".join(f"{k} = CAST(:{k} AS jsonb)" if k == "name_i18n" else f"{k} = :{k}"
                     for k in data)
    conn.execute(text(f"UPDATE rule SET {sets} WHERE id = :id"), {**p, "id": rule_id})
    return next(r for r in list_rules(conn) if r["id"] == rule_id)


def list_rules(conn: Connection, datastream_id: int | None = None) -> list[dict[str, Any]]:
    sql = "SELECT id, " + ", ".join(_RULE_FIELDS) + " FROM rule"
    if datastream_id is not None:
        sql += " WHERE datastream_id = :d"
    return [dict(r) for r in conn.execute(text(sql + " ORDER BY id"),
                                           {"d": datastream_id}).mappings()]


# -- alarms: read and handle ---------------------------------------------------------

_ALARM = (
    "SELECT a.id, a.rule_id, r.name AS rule_name, r.name_i18n AS rule_name_i18n, a.kind, "
    "a.severity, a.message, a.message_i18n, a.value, "
    "a.datastream_id, a.thing_id, t.name AS thing_name, a.raised_at, a.last_seen_at, "
    "a.occurrences, a.acknowledged_at, a.acknowledged_by, a.cleared_at, a.cleared_by, "
    "a.assignee, a.incident_id, (SELECT ST_AsGeoJSON(ST_PointOnSurface(l.geom), 7) FROM "
    "thing_location tl JOIN location l ON l.id = tl.location_id WHERE tl.thing_id = a.thing_id "
    "ORDER BY l.id DESC LIMIT 1) AS geometry FROM alarm a JOIN rule r ON r.id = a.rule_id "
    "JOIN thing t ON t.id = a.thing_id"
)


def _alarm_out(row: Any, lang: str | None = None) -> dict[str, Any]:
    """An alarm for the API: ``message`` and ``rule_name`` in ``lang`` when stored in it
    (``message_i18n`` / ``rule_name_i18n`` alongside), else as stored."""
    d = dict(row)
    if lang:
        d["message"] = (d.get("message_i18n") or {}).get(lang) or d["message"]
        d["rule_name"] = (d.get("rule_name_i18n") or {}).get(lang) or d["rule_name"]
    d["count"] = d["occurrences"]
    d["geometry"] = json.loads(d["geometry"]) if d["geometry"] else None
    d["status"] = ("cleared" if d["cleared_at"] else
                   "acknowledged" if d["acknowledged_at"] else "open")
    return d


def get_alarm(conn: Connection, alarm_id: int, lock: bool = False,
              lang: str | None = None) -> dict[str, Any]:
    sql = _ALARM + " WHERE a.id = :i" + (" FOR UPDATE OF a" if lock else "")
    row = conn.execute(text(sql), {"i": alarm_id}).mappings().first()
    if row is None:
        raise NotFound(f"alarm {alarm_id} not found")
    return _alarm_out(row, lang)


def list_alarms(
    conn: Connection, *, status: str = "active", thing_id: int | None = None,
    severity_min: int | None = None, limit: int = 200, lang: str | None = None,
) -> list[dict[str, Any]]:
    """``status``: active (not cleared), open (not acknowledged), cleared or all."""
    where = {"active": "a.cleared_at IS NULL",
             "open": "a.cleared_at IS NULL AND a.acknowledged_at IS NULL",
             "cleared": "a.cleared_at IS NOT NULL", "all": "TRUE"}.get(status)
    if where is None:
        raise InputError("status must be active, open, cleared or all")
    p: dict[str, Any] = {"n": limit}
    if thing_id is not None:
        where += " AND a.thing_id = :t"
        p["t"] = thing_id
    if severity_min is not None:
        where += " AND a.severity >= :s"
        p["s"] = severity_min
    rows = conn.execute(
        text(f"{_ALARM} WHERE {where} ORDER BY a.cleared_at IS NOT NULL, a.severity DESC, "
             "a.raised_at DESC LIMIT :n"), p).mappings()
    return [_alarm_out(r, lang) for r in rows]


def acknowledge(conn: Connection, alarm_id: int, *, actor: str) -> dict[str, Any]:
    a = get_alarm(conn, alarm_id, lock=True)
    if a["acknowledged_at"]:
        raise Conflict(f"alarm {alarm_id} was acknowledged by {a['acknowledged_by']}")
    conn.execute(text("UPDATE alarm SET acknowledged_at = now(), acknowledged_by = :b "
                      "WHERE id = :i"), {"i": alarm_id, "b": actor})
    notify.alarm(conn, alarm_id, "acknowledged")
    return get_alarm(conn, alarm_id)


def clear(conn: Connection, alarm_id: int, *, actor: str, note: str = "") -> dict[str, Any]:
    a = get_alarm(conn, alarm_id, lock=True)
    if a["cleared_at"]:
        raise Conflict(f"alarm {alarm_id} is already cleared")
    _clear(conn, alarm_id, actor, note)
    return get_alarm(conn, alarm_id)


def assign(conn: Connection, alarm_id: int, assignee: str | None, *, actor: str) -> dict[str, Any]:
    if assignee is not None and (not isinstance(assignee, str) or not assignee.strip()):
        raise InputError("assignee must be a non-empty name or null")
    get_alarm(conn, alarm_id, lock=True)
    conn.execute(text("UPDATE alarm SET assignee = :a WHERE id = :i"),
                 {"i": alarm_id, "a": assignee.strip() if assignee else None})
    notify.alarm(conn, alarm_id, "assigned")
    return get_alarm(conn, alarm_id)
