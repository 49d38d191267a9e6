"""A realistic sensor network for the demo city of Đà Nẵng.

Flood towers along the Hàn, Cẩm Lệ and Cu Đê rivers (water level; warning and flood
marks, the flood mark opening a flood incident), rain gauges at the stations the city
reports rainfall for, water-quality stations at the treatment plants (turbidity,
salinity, pH, residual chlorine; staff only), air-quality stations, traffic counters and
smart street lights, with six hours of plausible readings. Positions of bridges and
plants follow ``shared/data/danang/facts.yaml`` (several are approximate); the alarm
levels are demo values, except Cẩm Lệ's alert level 1 of 1.0 m.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from twin.sensors import gateways, ingest, payloads, rules, write
from twin.sensors.values import COUNT, MEASUREMENT, TRUTH

MARK = "danang-demo"


@dataclass(frozen=True)
class Stream:
    key: str
    name: str
    unit: tuple[str, str, str]  # name, symbol, definition
    prop: tuple[str, str]  # observed property name, definition
    base: float
    noise: float
    otype: str = MEASUREMENT
    rules: tuple[dict[str, Any], ...] = ()


_U = "http://qudt.org/vocab/unit/"
_Q = "http://qudt.org/vocab/quantitykind/"


def _split(name: str) -> dict[str, str]:
    """A demo name written "Vietnamese (English)" as ``{"vi": …, "en": …}``."""
    vi, sep, en = name.partition(" (")
    if not sep or not en.endswith(")"):
        return {"vi": name, "en": name}
    return {"vi": vi, "en": en[:1].upper() + en[1:-1]}


def _named(rule: dict[str, Any]) -> dict[str, Any]:
    """A demo rule named "Vietnamese (English)": the Vietnamese name, both in name_i18n."""
    names = _split(str(rule["name"]))
    if names["vi"] == names["en"]:
        return rule
    return {**rule, "name": names["vi"], "name_i18n": names}


def _level(warn: float, flood: float, base: float) -> Stream:
    return Stream(
        "level", "Mực nước (water level)", ("metre", "m", _U + "M"),
        ("Water level", _Q + "Height"), base, 0.03,
        rules=(
            {"kind": "above", "name": "Vượt báo động 1 (warning level)", "threshold": warn,
             "clear_threshold": warn - 0.1, "severity": 3},
            {"kind": "above", "name": "Vượt mức lũ (flood mark)", "threshold": flood,
             "clear_threshold": flood - 0.1, "hold_seconds": 0, "severity": 4,
             "opens_incident": True, "incident_category": "flood"},
            {"kind": "rate", "name": "Nước lên nhanh (rapid rise)", "threshold": 0.5,
             "window_seconds": 900, "severity": 3},
            {"kind": "no_signal", "name": "Mất tín hiệu (no signal)", "no_signal_minutes": 30,
             "severity": 2},
        ))


RAIN = Stream("rain", "Lượng mưa 10 phút (rain, 10 min)", ("millimetre", "mm", _U + "MilliM"),
              ("Precipitation", _Q + "Length"), 0.0, 0.0,
              rules=({"kind": "above", "name": "Mưa rất to (very heavy rain)", "threshold": 30,
                      "clear_threshold": 10, "severity": 3},))
WATER_QUALITY = (
    Stream("turbidity", "Độ đục (turbidity)", ("nephelometric turbidity unit", "NTU",
                                               _U + "NTU"),
           ("Turbidity", _Q + "Turbidity"), 1.2, 0.2,
           rules=({"kind": "above", "name": "Độ đục cao (high turbidity)", "threshold": 5,
                   "severity": 3},)),
    Stream("salinity", "Độ mặn (chloride)", ("milligram per litre", "mg/L", _U + "MilliGM-PER-L"),
           ("Salinity (chloride)", _Q + "MassConcentration"), 80.0, 8.0,
           rules=({"kind": "above", "name": "Nhiễm mặn (salinity intrusion)", "threshold": 250,
                   "clear_threshold": 200, "severity": 4},)),
    Stream("ph", "pH", ("pH", "pH", _U + "PH"), ("pH", _Q + "Acidity"), 7.2, 0.08,
           rules=({"kind": "below", "name": "pH thấp (low pH)", "threshold": 6.5,
                   "severity": 3},
                  {"kind": "above", "name": "pH cao (high pH)", "threshold": 8.5,
                   "severity": 3})),
    Stream("chlorine", "Clo dư (residual chlorine)", ("milligram per litre", "mg/L",
                                                      _U + "MilliGM-PER-L"),
           ("Residual chlorine", _Q + "MassConcentration"), 0.6, 0.05,
           rules=({"kind": "below", "name": "Clo dư thấp (low chlorine)", "threshold": 0.3,
                   "severity": 3},)),
)
AIR = (
    Stream("pm25", "Bụi PM2.5", ("microgram per cubic metre", "µg/m³", _U + "MicroGM-PER-M3"),
           ("PM2.5", _Q + "MassConcentration"), 22.0, 4.0,
           rules=({"kind": "above", "name": "PM2.5 có hại (unhealthy)", "threshold": 55,
                   "clear_threshold": 45, "severity": 2},)),
    Stream("pm10", "Bụi PM10", ("microgram per cubic metre", "µg/m³", _U + "MicroGM-PER-M3"),
           ("PM10", _Q + "MassConcentration"), 38.0, 6.0),
)
TRAFFIC = Stream("vehicles", "Lưu lượng xe 5 phút (vehicles, 5 min)", ("vehicle", "veh",
                                                                       _U + "NUM"),
                 ("Vehicle count", _Q + "Count"), 180.0, 30.0, COUNT)
LIGHT = (Stream("power", "Công suất đèn (lamp power)", ("watt", "W", _U + "W"),
                ("Electric power", _Q + "Power"), 0.0, 2.0,
                rules=({"kind": "no_signal", "name": "Đèn mất kết nối (lamp offline)",
                        "no_signal_minutes": 60, "severity": 1},)),
         Stream("on", "Trạng thái đèn (lamp on)", ("none", "", ""),
                ("Lamp on", _Q + "Dimensionless"), 0.0, 0.0, TRUTH))

# (name, kind, lon, lat, public, streams, description)
SITES: tuple[tuple[str, str, float, float, bool, tuple[Stream, ...], str], ...] = (
    ("Tháp báo lũ cầu Thuận Phước", "flood_tower", 108.2222, 16.0915, True,
     (_level(1.4, 2.1, 0.5),), "Hàn river mouth"),
    ("Tháp báo lũ cầu sông Hàn", "flood_tower", 108.2262, 16.0722, True,
     (_level(1.5, 2.2, 0.6),), "Hàn river, Sông Hàn bridge"),
    ("Tháp báo lũ cầu Rồng", "flood_tower", 108.2265, 16.0612, True,
     (_level(1.5, 2.2, 0.6),), "Hàn river, Dragon Bridge"),
    ("Tháp báo lũ cầu Trần Thị Lý", "flood_tower", 108.2254, 16.0512, True,
     (_level(1.6, 2.3, 0.65),), "Hàn river, Trần Thị Lý bridge"),
    ("Tháp báo lũ cầu Tiên Sơn", "flood_tower", 108.2292, 16.0365, True,
     (_level(1.7, 2.4, 0.7),), "Hàn river, Tiên Sơn bridge"),
    ("Trạm thủy văn Cẩm Lệ", "flood_tower", 108.2004, 16.0069, True,
     (_level(1.0, 2.0, 0.45),), "Cẩm Lệ river gauge (alert level 1 = 1.0 m)"),
    ("Tháp báo lũ cầu Đỏ", "flood_tower", 108.1900, 15.9990, True,
     (_level(1.2, 2.3, 0.6),), "Cầu Đỏ bridge on QL1A (approximate)"),
    ("Tháp báo lũ Cu Đê – Nam Ô", "flood_tower", 108.1200, 16.1235, True,
     (_level(2.0, 3.5, 0.8),), "Cu Đê river near QL1A (approximate)"),
    ("Tháp báo lũ Cu Đê – Giàn Bí", "flood_tower", 108.0400, 16.1350, True,
     (_level(2.5, 4.0, 1.0),), "Upper Cu Đê at Tà Lang–Giàn Bí (approximate)"),
    ("Trạm đo mưa Đà Nẵng", "rain_gauge", 108.2020, 16.0440, True, (RAIN,),
     "City meteorological station"),
    ("Trạm đo mưa Cẩm Lệ", "rain_gauge", 108.2050, 16.0150, True, (RAIN,), "Cẩm Lệ"),
    ("Trạm đo mưa Suối Đá", "rain_gauge", 108.2700, 16.1100, True, (RAIN,),
     "Sơn Trà peninsula (approximate)"),
    ("Trạm đo mưa hồ Thạc Gián", "rain_gauge", 108.1920, 16.0600, True, (RAIN,),
     "Thạc Gián lake (approximate)"),
    ("Trạm đo mưa Hòa Bắc", "rain_gauge", 108.0500, 16.1300, True, (RAIN,),
     "Hòa Bắc (approximate)"),
    ("Quan trắc nước NMN Cầu Đỏ", "water_quality", 108.1875, 15.9985, False, WATER_QUALITY,
     "Raw water intake, Cầu Đỏ treatment plant (approximate)"),
    ("Quan trắc nước NMN Sân Bay", "water_quality", 108.2010, 16.0480, False, WATER_QUALITY,
     "Sân Bay treatment plant (approximate)"),
    ("Quan trắc nước NMN Hòa Liên", "water_quality", 108.0950, 16.1120, False, WATER_QUALITY,
     "Hòa Liên treatment plant (approximate)"),
    ("Quan trắc nước NMN Sơn Trà", "water_quality", 108.2550, 16.1050, False, WATER_QUALITY,
     "Sơn Trà treatment plant (approximate)"),
    ("Quan trắc không khí Hải Châu", "air_quality", 108.2208, 16.0678, True, AIR, "Hải Châu"),
    ("Quan trắc không khí Sơn Trà", "air_quality", 108.2450, 16.0700, True, AIR, "Sơn Trà"),
    ("Quan trắc không khí Hòa Khánh", "air_quality", 108.1500, 16.0720, True, AIR,
     "Hòa Khánh industrial zone"),
    ("Quan trắc không khí Ngũ Hành Sơn", "air_quality", 108.2500, 16.0020, True, AIR,
     "Ngũ Hành Sơn"),
    ("Đếm xe cầu Rồng", "traffic_counter", 108.2275, 16.0616, True, (TRAFFIC,), "Dragon Bridge"),
    ("Đếm xe cầu sông Hàn", "traffic_counter", 108.2270, 16.0725, True, (TRAFFIC,),
     "Sông Hàn bridge"),
    ("Đếm xe Nguyễn Văn Linh", "traffic_counter", 108.2080, 16.0560, True, (TRAFFIC,),
     "Nguyễn Văn Linh street"),
    ("Đếm xe Điện Biên Phủ", "traffic_counter", 108.1900, 16.0670, True, (TRAFFIC,),
     "Điện Biên Phủ street"),
    *((f"Đèn đường thông minh Bạch Đằng {k + 1}", "street_light", 108.2240 + 0.0004 * (k % 2),
       16.0590 + 0.004 * k, True, LIGHT, "Bạch Đằng riverside") for k in range(4)),
    *((f"Đèn đường thông minh Võ Nguyên Giáp {k + 1}", "street_light", 108.2470 + 0.001 * k,
       16.0450 + 0.008 * k, True, LIGHT, "Beach road") for k in range(4)),
)
SENSORS = {
    "flood_tower": ("Radar water-level sensor", "Non-contact radar level gauge on a tower"),
    "rain_gauge": ("Tipping-bucket rain gauge", "0.2 mm tipping bucket"),
    "water_quality": ("Multiparameter water-quality sonde", "Turbidity, Cl⁻, pH, free Cl₂"),
    "air_quality": ("Optical particle counter", "PM2.5 / PM10 laser counter"),
    "traffic_counter": ("Inductive loop vehicle counter", "Dual loop, 5-minute counts"),
    "street_light": ("Smart lamp controller", "NEMA controller with power metering"),
}


TIDE = 0.25  # m, the amplitude of the semi-diurnal tide on the river levels


def value(s: Stream, rng: random.Random, t: dt.datetime) -> float | int | bool:
    """A plausible quiet-weather reading of stream ``s`` at time ``t``."""
    hour = (t.hour + 7 + t.minute / 60) % 24  # local time (UTC+7)
    if s.key == "level":  # a semi-diurnal tide of ±0.25 m on the base level
        hours = t.timestamp() / 3600
        return round(s.base + TIDE * math.sin(2 * math.pi * hours / 12.42)
                     + rng.gauss(0, s.noise), 3)
    if s.key == "rain":
        return round(max(0.0, rng.gauss(0, 0.3)) if rng.random() < 0.2 else 0.0, 1)
    if s.key == "vehicles":
        rush = 1.6 if 7 <= hour < 9 or 17 <= hour < 19 else (0.3 if hour < 5 else 1.0)
        return max(0, int(rng.gauss(s.base * rush, s.noise)))
    if s.key in ("power", "on"):
        night = hour >= 18 or hour < 6
        return (night if s.key == "on" else
                round(120 + rng.gauss(0, s.noise), 1) if night else 0.0)
    return round(max(0.0, rng.gauss(s.base, s.noise)), 3)


def add_sensor_network(conn: Connection, seed: int = 7, hours: float = 6) -> dict[str, Any]:
    """Create the network (once) with ``hours`` of readings every 10 minutes; returns
    counts and, the first time, the demo gateway's API key (shown once)."""
    if conn.execute(text("SELECT 1 FROM thing WHERE properties ->> 'source' = :m LIMIT 1"),
                    {"m": MARK}).first():
        return {"created": False, "things": 0, "datastreams": 0, "observations": 0}
    rng = random.Random(seed)
    sensor_ids = {k: write.create(conn, "Sensors", {
        "name": n, "description": d, "encodingType": "text/html",
        "metadata": "https://www.danang.gov.vn (demo)"}) for k, (n, d) in SENSORS.items()}
    props: dict[str, int] = {}
    streams: list[tuple[int, Stream]] = []
    for name, kind, lon, lat, public, sts, desc in SITES:
        tid = write.create(conn, "Things", {
            "name": name, "description": desc,
            "properties": {"kind": kind, "public": public, "source": MARK},
            "Locations": [{"name": name, "description": desc,
                           "encodingType": "application/geo+json",
                           "location": {"type": "Point", "coordinates": [lon, lat]}}]})
        for k, s in enumerate(sts):
            if s.prop[0] not in props:
                props[s.prop[0]] = write.create(conn, "ObservedProperties", {
                    "name": s.prop[0], "definition": s.prop[1]})
            names = {lang: f"{n} – {name}" for lang, n in _split(s.name).items()}
            did = write.create(conn, "Datastreams", {
                "name": names["vi"], "description": f"{_split(s.name)['vi']} · {desc}",
                "unitOfMeasurement": dict(zip(("name", "symbol", "definition"), s.unit,
                                              strict=True)),
                "observationType": s.otype, "properties": {"key": s.key, "name_i18n": names},
                "Sensor": {"@iot.id": sensor_ids[kind]},
                "ObservedProperty": {"@iot.id": props[s.prop[0]]}}, "body", {"thing": tid})
            conn.execute(text("UPDATE datastream SET is_primary = :p, no_signal_minutes = :n "
                              "WHERE id = :d"),
                         {"p": k == 0, "d": did, "n": 30 if kind == "flood_tower" else 60})
            for r in s.rules:
                rules.add_rule(conn, {"datastream_id": did, **_named(r)})
            streams.append((did, s))
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    steps = int(hours * 6)
    raw = [
        payloads.RawObs(did, t, None, t, value(s, rng, t))
        for did, s in streams
        for t in (now - dt.timedelta(minutes=10 * k) for k in range(steps, -1, -1))
    ]
    res = ingest.ingest(conn, raw, via="demo")
    key = None
    if not conn.execute(text("SELECT 1 FROM gateway WHERE name = 'demo-gateway'")).first():
        _, key = gateways.add(conn, "demo-gateway")
    return {"created": True, "things": len(SITES), "datastreams": len(streams),
            "observations": res.inserted, "gateway_key": key}
