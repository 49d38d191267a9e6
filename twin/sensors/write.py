"""SensorThings writes: create (with deep insert), update (PATCH) and delete, with the
standard's integrity rules (a deleted Thing takes its Datastreams and their
Observations along; a Thing's new Location is recorded as a HistoricalLocation)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

from twin.errors import Conflict, InputError, NotFound
from twin.sensors import ingest, payloads
from twin.sensors.values import OBSERVATION_TYPES, geojson_geometry, parse_time

_GEO_ENC = ("application/geo+json", "application/vnd.geo+json")
_FIELDS: dict[str, set[str]] = {
    "Things": {"name", "description", "properties", "Locations", "Datastreams",
               "HistoricalLocations"},
    "Locations": {"name", "description", "encodingType", "location", "properties", "Things"},
    "HistoricalLocations": {"time", "Thing", "Locations"},
    "Sensors": {"name", "description", "encodingType", "metadata", "properties", "Datastreams"},
    "ObservedProperties": {"name", "definition", "description", "properties", "Datastreams"},
    "FeaturesOfInterest": {"name", "description", "encodingType", "feature", "properties"},
    "Datastreams": {"name", "description", "unitOfMeasurement", "observationType",
                    "observedArea", "properties", "Thing", "Sensor", "ObservedProperty",
                    "Observations", "phenomenonTime", "resultTime"},
}


# a Datastream's name joins its Thing's and its property's, hence 200
TEXT_LIMITS = {"name": 200, "description": 5000, "encodingType": 100, "metadata": 2000,
               "definition": 2000}


def _check(set_name: str, body: Any, where: str, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InputError(f"{where} must be a JSON object")
    unknown = [k for k in body if k not in _FIELDS[set_name] and not k.startswith("@iot.")]
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} "
                         f"(allowed: {', '.join(sorted(_FIELDS[set_name]))})")
    for k in required:
        if body.get(k) in (None, ""):
            raise InputError(f"{where}: {k} is required")
    for k in ("name", "description", "encodingType", "metadata", "definition"):
        if k in body and not isinstance(body[k], str):
            raise InputError(f"{where}: {k} must be a string")
        if k in body and len(body[k]) > TEXT_LIMITS[k]:
            raise InputError(f"{where}: {k} is longer than {TEXT_LIMITS[k]} characters")
    if "properties" in body and body["properties"] is not None and not isinstance(
            body["properties"], dict):
        raise InputError(f"{where}: properties must be a JSON object")
    return body


def _ref(value: Any) -> int | None:
    """The id of a ``{"@iot.id": n}`` reference, or None for a new entity."""
    if isinstance(value, dict) and set(value) <= {"@iot.id", "@iot.selfLink"} and value:
        return payloads.entity_id(value, "reference")
    return None


def _exists(conn: Connection, table: str, ident: int, name: str) -> int:
    if not conn.execute(text(f"SELECT 1 FROM {table} WHERE id = :i"), {"i": ident}).first():
        raise InputError(f"{name}({ident}) does not exist")
    return ident


def _js(v: Any) -> str | None:
    return None if v is None else json.dumps(v)


def _enc(body: dict[str, Any], key: str, where: str) -> str:
    enc = body.get("encodingType", "application/geo+json")
    if enc not in _GEO_ENC:
        raise InputError(f"{where}: encodingType must be one of {', '.join(_GEO_ENC)}")
    return str(enc)


def _thing_cols(props: dict[str, Any] | None) -> tuple[str | None, bool, str | None]:
    p = dict(props or {})
    kind = p.pop("kind", None)
    public = p.pop("public", True)
    if kind is not None and not isinstance(kind, str):
        raise InputError("Thing properties.kind must be a string")
    if not isinstance(public, bool):
        raise InputError("Thing properties.public must be true or false")
    return kind, public, _js(p or None)


def create(conn: Connection, set_name: str, body: Any, where: str = "body",
           link: dict[str, int] | None = None) -> int:
    """Create an entity (and the entities nested in it); returns its id."""
    link = link or {}
    fn = _CREATE.get(set_name)
    if fn is None:
        raise InputError(f"cannot create {set_name} here")
    return fn(conn, body, where, link)


def _one(conn: Connection, set_name: str, value: Any, where: str) -> int:
    rid = _ref(value)
    table = {"Things": "thing", "Sensors": "sensor", "ObservedProperties": "observed_property",
             "Locations": "location", "FeaturesOfInterest": "feature_of_interest",
             "Datastreams": "datastream"}[set_name]
    if rid is not None:
        return _exists(conn, table, rid, set_name[:-1] if set_name != "ObservedProperties"
                       else "ObservedProperty")
    return create(conn, set_name, value, where)


def _create_thing(conn: Connection, body: Any, where: str, link: dict[str, int]) -> int:
    body = _check("Things", body, where, ("name",))
    kind, public, props = _thing_cols(body.get("properties"))
    tid = int(conn.execute(
        text("INSERT INTO thing (name, description, kind, public, properties) VALUES "
             "(:n, :d, :k, :p, CAST(:pr AS jsonb)) RETURNING id"),
        {"n": body["name"], "d": body.get("description", ""), "k": kind, "p": public,
         "pr": props}).scalar_one())
    locs = body.get("Locations") or []
    if not isinstance(locs, list):
        raise InputError(f"{where}.Locations must be a list")
    for k, loc in enumerate(locs):
        set_location(conn, tid, _one(conn, "Locations", loc, f"{where}.Locations[{k}]"))
    if "location" in link:
        set_location(conn, tid, link["location"])
    for k, ds in enumerate(body.get("Datastreams") or []):
        create(conn, "Datastreams", ds, f"{where}.Datastreams[{k}]", {"thing": tid})
    return tid


def set_location(conn: Connection, thing_id: int, location_id: int, replace: bool = False) -> None:
    """Link a Location to a Thing and record the move as a HistoricalLocation."""
    if replace:
        conn.execute(text("DELETE FROM thing_location WHERE thing_id = :t"), {"t": thing_id})
    conn.execute(text("INSERT INTO thing_location (thing_id, location_id) VALUES (:t, :l) "
                      "ON CONFLICT DO NOTHING"), {"t": thing_id, "l": location_id})
    conn.execute(text("INSERT INTO historical_location (thing_id, location_id) "
                      "VALUES (:t, :l)"), {"t": thing_id, "l": location_id})


def _create_location(conn: Connection, body: Any, where: str, link: dict[str, int]) -> int:
    body = _check("Locations", body, where, ("name", "location"))
    enc = _enc(body, "encodingType", where)
    wkt = geojson_geometry(body["location"], f"{where}.location")
    lid = int(conn.execute(
        text("INSERT INTO location (name, description, encoding_type, properties, geom) "
             "VALUES (:n, :d, :e, CAST(:p AS jsonb), ST_GeomFromText(:w, 4326)) RETURNING id"),
        {"n": body["name"], "d": body.get("description", ""), "e": enc,
         "p": _js(body.get("properties")), "w": wkt}).scalar_one())
    for k, th in enumerate(body.get("Things") or []):
        rid = _ref(th)
        if rid is not None:
            set_location(conn, _exists(conn, "thing", rid, "Thing"), lid)
        else:
            create(conn, "Things", th, f"{where}.Things[{k}]", {"location": lid})
    if "thing" in link:
        set_location(conn, link["thing"], lid)
    return lid


def _create_hist(conn: Connection, body: Any, where: str, link: dict[str, int]) -> int:
    body = _check("HistoricalLocations", body, where, ())
    thing = link.get("thing") or _ref(body.get("Thing"))
    if thing is None:
        raise InputError(f"{where}: Thing is required")
    locs = [_ref(v) for v in body.get("Locations") or []]
    t = parse_time(body["time"], f"{where}.time") if body.get("time") else None
    return int(conn.execute(
        text("INSERT INTO historical_location (thing_id, location_id, time) VALUES "
             "(:t, :l, COALESCE(:ti, now())) RETURNING id"),
        {"t": _exists(conn, "thing", thing, "Thing"), "l": locs[0] if locs else None,
         "ti": t}).scalar_one())


def _create_sensor(conn: Connection, body: Any, where: str, link: dict[str, int]) -> int:
    body = _check("Sensors", body, where, ("name", "encodingType"))
    return int(conn.execute(
        text("INSERT INTO sensor (name, description, encoding_type, metadata, properties) "
             "VALUES (:n, :d, :e, :m, CAST(:p AS jsonb)) RETURNING id"),
        {"n": body["name"], "d": body.get("description", ""), "e": body["encodingType"],
         "m": body.get("metadata", ""), "p": _js(body.get("properties"))}).scalar_one())


def _create_obsprop(conn: Connection, body: Any, where: str, link: dict[str, int]) -> int:
    body = _check("ObservedProperties", body, where, ("name", "definition"))
    return int(conn.execute(
        text("INSERT INTO observed_property (name, definition, description, properties) "
             "VALUES (:n, :df, :d, CAST(:p AS jsonb)) RETURNING id"),
        {"n": body["name"], "df": body["definition"], "d": body.get("description", ""),
         "p": _js(body.get("properties"))}).scalar_one())


def _create_foi(conn: Connection, body: Any, where: str, link: dict[str, int]) -> int:
    body = _check("FeaturesOfInterest", body, where, ("name", "feature"))
    enc = _enc(body, "encodingType", where)
    wkt = geojson_geometry(body["feature"], f"{where}.feature")
    return int(conn.execute(
        text("INSERT INTO feature_of_interest (name, description, encoding_type, properties, "
             "geom) VALUES (:n, :d, :e, CAST(:p AS jsonb), ST_GeomFromText(:w, 4326)) "
             "RETURNING id"),
        {"n": body["name"], "d": body.get("description", ""), "e": enc,
         "p": _js(body.get("properties")), "w": wkt}).scalar_one())


def _uom(value: Any, where: str) -> str:
    if not isinstance(value, dict) or not all(
            isinstance(value.get(k), str | None) for k in ("name", "symbol", "definition")):
        raise InputError(f"{where}.unitOfMeasurement must be an object with name, symbol "
                         "and definition strings")
    return json.dumps(value)


def _create_datastream(conn: Connection, body: Any, where: str, link: dict[str, int]) -> int:
    body = _check("Datastreams", body, where, ("name", "unitOfMeasurement", "observationType"))
    if body["observationType"] not in OBSERVATION_TYPES:
        raise InputError(f"{where}.observationType must be one of {', '.join(OBSERVATION_TYPES)}")
    thing = link.get("thing")
    if thing is None:
        if "Thing" not in body:
            raise InputError(f"{where}: Thing is required")
        thing = _one(conn, "Things", body["Thing"], f"{where}.Thing")
    for k in ("Sensor", "ObservedProperty"):
        if k not in body and k.lower() not in link:
            raise InputError(f"{where}: {k} is required")
    sensor = link.get("sensor") or _one(conn, "Sensors", body.get("Sensor"), f"{where}.Sensor")
    op = link.get("observedproperty") or _one(
        conn, "ObservedProperties", body.get("ObservedProperty"), f"{where}.ObservedProperty")
    area = (geojson_geometry(body["observedArea"], f"{where}.observedArea")
            if body.get("observedArea") else None)
    did = int(conn.execute(
        text("INSERT INTO datastream (name, description, unit_of_measurement, "
             "observation_type, properties, thing_id, sensor_id, observed_property_id, "
             "observed_area) VALUES (:n, :d, CAST(:u AS jsonb), :o, CAST(:p AS jsonb), :t, :s, "
             ":op, ST_GeomFromText(:a, 4326)) RETURNING id"),
        {"n": body["name"], "d": body.get("description", ""),
         "u": _uom(body["unitOfMeasurement"], where), "o": body["observationType"],
         "p": _js(body.get("properties")), "t": thing, "s": sensor, "op": op, "a": area},
    ).scalar_one())
    obs = body.get("Observations") or []
    if obs:
        if not isinstance(obs, list):
            raise InputError(f"{where}.Observations must be a list")
        raw = [payloads.parse_observation(o, datastream_id=did, where=f"{where}.Observations[{k}]")
               for k, o in enumerate(obs)]
        ingest.ingest(conn, raw, via="http")
    return did


def create_observation(conn: Connection, body: Any, datastream_id: int | None = None) -> int:
    """One Observation (a new FeatureOfInterest in it is created first)."""
    if isinstance(body, dict) and isinstance(body.get("FeatureOfInterest"), dict) and _ref(
            body["FeatureOfInterest"]) is None:
        fid = _create_foi(conn, body["FeatureOfInterest"], "FeatureOfInterest", {})
        body = {**body, "FeatureOfInterest": {"@iot.id": fid}}
    raw = payloads.parse_observation(body, datastream_id=datastream_id)
    res = ingest.ingest(conn, [raw], via="http", want_ids=True)
    oid = res.ids[0]
    assert oid is not None
    return oid


_CREATE = {
    "Things": _create_thing, "Locations": _create_location,
    "HistoricalLocations": _create_hist, "Sensors": _create_sensor,
    "ObservedProperties": _create_obsprop, "FeaturesOfInterest": _create_foi,
    "Datastreams": _create_datastream,
}

# -- update ---------------------------------------------------------------------------

_COLUMNS = {"name": "name", "description": "description", "encodingType": "encoding_type",
            "metadata": "metadata", "definition": "definition",
            "observationType": "observation_type"}
_TABLES = {"Things": "thing", "Locations": "location", "HistoricalLocations":
           "historical_location", "Sensors": "sensor", "ObservedProperties": "observed_property",
           "FeaturesOfInterest": "feature_of_interest", "Datastreams": "datastream",
           "Observations": "observation"}


def update(conn: Connection, set_name: str, ident: int, body: Any) -> None:
    """PATCH: change the given fields only."""
    table = _TABLES[set_name]
    if not conn.execute(text(f"SELECT 1 FROM {table} WHERE id = :i"), {"i": ident}).first():
        raise NotFound(f"{set_name}({ident}) not found")
    if set_name == "Observations":
        return _update_observation(conn, ident, body)
    body = _check(set_name, body, "body", ())
    sets: list[str] = []
    p: dict[str, Any] = {"i": ident}
    for key, value in body.items():
        if key in _COLUMNS:
            if key == "observationType" and value not in OBSERVATION_TYPES:
                raise InputError(f"observationType must be one of {', '.join(OBSERVATION_TYPES)}")
            sets.append(f"{_COLUMNS[key]} = :{key}")
            p[key] = value
        elif key == "properties" and set_name == "Things":
            kind, public, props = _thing_cols(value)
            sets += ["kind = :kind", "public = :public", "properties = CAST(:props AS jsonb)"]
            p.update(kind=kind, public=public, props=props)
        elif key == "properties":
            sets.append("properties = CAST(:props AS jsonb)")
            p["props"] = _js(value)
        elif key in ("location", "feature", "observedArea"):
            sets.append("geom = ST_GeomFromText(:w, 4326)" if key != "observedArea"
                        else "observed_area = ST_GeomFromText(:w, 4326)")
            p["w"] = geojson_geometry(value, key)
        elif key == "unitOfMeasurement":
            sets.append("unit_of_measurement = CAST(:u AS jsonb)")
            p["u"] = _uom(value, "body")
        elif key in ("Thing", "Sensor", "ObservedProperty") and set_name == "Datastreams":
            col = {"Thing": "thing_id", "Sensor": "sensor_id",
                   "ObservedProperty": "observed_property_id"}[key]
            sets.append(f"{col} = :{col}")
            tset = {"Thing": "Things", "Sensor": "Sensors",
                    "ObservedProperty": "ObservedProperties"}[key]
            p[col] = _one(conn, tset, value, key)
        elif key == "Locations" and set_name == "Things":
            for k, loc in enumerate(value or []):
                set_location(conn, ident, _one(conn, "Locations", loc, f"Locations[{k}]"),
                             replace=(k == 0))
        elif key == "time" and set_name == "HistoricalLocations":
            sets.append("time = :t")
            p["t"] = parse_time(value, "time")
        elif key.startswith("@iot.") or key in ("phenomenonTime", "resultTime"):
            continue
        else:
            raise InputError(f"{key} cannot be changed on {set_name}")
    if sets:
        conn.execute(text(f"UPDATE {table} SET {', '.join(sets)} WHERE id = :i"), p)


def _update_observation(conn: Connection, ident: int, body: Any) -> None:
    if not isinstance(body, dict):
        raise InputError("body must be a JSON object")
    row = conn.execute(text(
        "SELECT o.datastream_id, o.phenomenon_time, d.observation_type FROM observation o "
        "JOIN datastream d ON d.id = o.datastream_id WHERE o.id = :i"), {"i": ident}).one()
    from twin.sensors.values import check_result

    sets, p = [], {"d": row[0], "t": row[1]}
    if "result" in body:
        num, js = check_result(body["result"], row[2], "result")
        sets += ["result = :r", "result_json = CAST(:rj AS jsonb)"]
        p.update(r=num, rj=_js(js))
    if "phenomenonTime" in body:
        sets.append("phenomenon_time = :nt")
        p["nt"] = parse_time(body["phenomenonTime"], "phenomenonTime")
    if "resultTime" in body:
        sets.append("result_time = :rt")
        p["rt"] = parse_time(body["resultTime"], "resultTime") if body["resultTime"] else None
    if "resultQuality" in body:
        sets.append("quality = CAST(:q AS jsonb)")
        p["q"] = _js(body["resultQuality"])
    if "parameters" in body:
        sets.append("parameters = CAST(:pa AS jsonb)")
        p["pa"] = _js(body["parameters"])
    if not sets:
        raise InputError("nothing to change")
    try:
        with conn.begin_nested():
            conn.execute(text(f"UPDATE observation SET {', '.join(sets)} "
                              "WHERE datastream_id = :d AND phenomenon_time = :t"), p)
    except Exception as exc:  # noqa: BLE001 - a clash with another reading's time
        if "pk_observation" in str(exc):
            raise Conflict("another observation of this datastream has that phenomenonTime")\
                from None
        raise


# -- delete ---------------------------------------------------------------------------

def delete(conn: Connection, set_name: str, ident: int) -> None:
    table = _TABLES[set_name]
    if not conn.execute(text(f"SELECT 1 FROM {table} WHERE id = :i"), {"i": ident}).first():
        raise NotFound(f"{set_name}({ident}) not found")
    ds_of = {"Things": "thing_id", "Sensors": "sensor_id",
             "ObservedProperties": "observed_property_id"}
    if set_name in ds_of or set_name == "Datastreams":
        where = f"{ds_of[set_name]} = :i" if set_name in ds_of else "id = :i"
        ids = [r[0] for r in conn.execute(text(f"SELECT id FROM datastream WHERE {where}"),
                                          {"i": ident})]
        if ids:
            conn.execute(text("DELETE FROM observation WHERE datastream_id = ANY(:d)"),
                         {"d": ids})
            conn.execute(text("DELETE FROM datastream WHERE id = ANY(:d)"), {"d": ids})
    elif set_name == "FeaturesOfInterest":
        conn.execute(text("DELETE FROM observation WHERE foi_id = :i"), {"i": ident})
    if set_name != "Datastreams":
        conn.execute(text(f"DELETE FROM {table} WHERE id = :i"), {"i": ident})
