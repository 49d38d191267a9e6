"""SensorThings observation payloads as received (HTTP bodies, MQTT messages): one
Observation object, or the ``CreateObservations`` dataArray format. Errors name the
element that is wrong; nothing is stored from a batch with a bad element."""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from twin.errors import InputError
from twin.sensors.values import parse_instant_or_interval, parse_time

MAX_BATCH = 50_000
"""Most observations accepted in one request or flush."""


class TooLarge(InputError):
    """A batch over :data:`MAX_BATCH` observations (answered 413)."""


class RawObs(NamedTuple):
    """An observation as received (result not yet checked against the datastream)."""

    datastream_id: int
    phenomenon_time: dt.datetime
    phenomenon_time_end: dt.datetime | None
    result_time: dt.datetime | None
    result: Any
    quality: Any = None
    parameters: Any = None
    foi_id: int | None = None
    where: str = ""


_FIELDS = {"phenomenonTime", "resultTime", "result", "resultQuality", "validTime",
           "parameters", "FeatureOfInterest", "Datastream"}


def entity_id(value: Any, what: str) -> int:
    """``{"@iot.id": n}`` (or a bare integer) → n."""
    if isinstance(value, dict):
        value = value.get("@iot.id", value.get("id"))
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{what} must be a reference {{\"@iot.id\": <positive integer>}}")
    return value


def parse_observation(
    obj: Any, *, datastream_id: int | None = None, where: str = "observation"
) -> RawObs:
    """A SensorThings Observation object (HTTP body or MQTT payload) → :class:`RawObs`."""
    if not isinstance(obj, dict):
        raise InputError(f"{where} must be a JSON object")
    unknown = [k for k in obj if k not in _FIELDS and not k.startswith("@iot.")]
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    if "Datastream" in obj:
        ds = entity_id(obj["Datastream"], f"{where}: Datastream")
        if datastream_id is not None and ds != datastream_id:
            raise InputError(f"{where}: Datastream {ds} differs from the one in the path")
        datastream_id = ds
    if datastream_id is None:
        raise InputError(f"{where}: Datastream is required")
    if "result" not in obj:
        raise InputError(f"{where}: result is required")
    if "phenomenonTime" in obj and obj["phenomenonTime"] is not None:
        start, end = parse_instant_or_interval(obj["phenomenonTime"], f"{where}: phenomenonTime")
    else:
        start, end = dt.datetime.now(dt.UTC), None
    rt = obj.get("resultTime")
    foi = obj.get("FeatureOfInterest")
    return RawObs(
        datastream_id,
        start,
        end,
        parse_time(rt, f"{where}: resultTime") if rt is not None else None,
        obj["result"],
        obj.get("resultQuality"),
        _params(obj.get("parameters"), where),
        entity_id(foi, f"{where}: FeatureOfInterest") if foi is not None else None,
        where,
    )


def _params(value: Any, where: str) -> Any:
    if value is not None and not isinstance(value, dict):
        raise InputError(f"{where}: parameters must be a JSON object")
    return value


_COMPONENTS = {"id", "phenomenonTime", "resultTime", "result", "resultQuality", "validTime",
               "parameters", "FeatureOfInterest/id"}


def parse_create_observations(body: Any, limit: int = MAX_BATCH) -> list[RawObs]:
    """The body of ``POST CreateObservations`` (dataArray format) → observations.

    :class:`TooLarge` past ``limit`` observations; :class:`InputError` names the first
    bad element (nothing is stored when any element is bad)."""
    if not isinstance(body, list):
        raise InputError("CreateObservations expects a JSON array of "
                         "{Datastream, components, dataArray} objects")
    total = sum(len(b.get("dataArray") or []) for b in body if isinstance(b, dict))
    if total > limit:
        raise TooLarge(f"batch of {total} observations exceeds the limit of {limit}")
    out: list[RawObs] = []
    for i, block in enumerate(body):
        where = f"[{i}]"
        if not isinstance(block, dict):
            raise InputError(f"{where} must be an object")
        ds = entity_id(block.get("Datastream"), f"{where}.Datastream")
        comps = block.get("components")
        if not isinstance(comps, list) or not all(isinstance(c, str) for c in comps):
            raise InputError(f"{where}.components must be a list of names")
        bad = [c for c in comps if c not in _COMPONENTS]
        if bad:
            raise InputError(f"{where}.components: unknown {', '.join(bad)}; "
                             f"allowed: {', '.join(sorted(_COMPONENTS))}")
        if "result" not in comps:
            raise InputError(f"{where}.components must include result")
        rows = block.get("dataArray")
        if not isinstance(rows, list):
            raise InputError(f"{where}.dataArray must be a list of rows")
        idx = {c: k for k, c in enumerate(comps)}
        n = len(comps)
        ip, ir, irt = idx.get("phenomenonTime"), idx["result"], idx.get("resultTime")
        iq, ipa, ifoi = idx.get("resultQuality"), idx.get("parameters"), idx.get(
            "FeatureOfInterest/id")
        now = dt.datetime.now(dt.UTC)
        for j, row in enumerate(rows):
            w = f"{where}.dataArray[{j}]"
            if not isinstance(row, list) or len(row) != n:
                raise InputError(f"{w} must be a list of {n} values ({', '.join(comps)})")
            if ip is not None and row[ip] is not None:
                start, end = parse_instant_or_interval(row[ip], f"{w} phenomenonTime")
            else:
                start, end = now, None
            rt = row[irt] if irt is not None else None
            out.append(RawObs(
                ds, start, end,
                parse_time(rt, f"{w} resultTime") if rt is not None else None,
                row[ir],
                row[iq] if iq is not None else None,
                _params(row[ipa], w) if ipa is not None else None,
                entity_id(row[ifoi], f"{w} FeatureOfInterest/id") if ifoi is not None else None,
                w,
            ))
    return out
