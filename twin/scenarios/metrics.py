"""The figures of a stored scenario the planner compares: which metric, its unit, its
label in Vietnamese and English, and a one-line headline of a summary.

Two scenarios are comparable when they are of one family: the water-depth kinds
(flood, rain, river: one stored shape) with each other, a closure with a closure, an
outage with an outage. Anything else is refused (:class:`InputError`), since a table of
the few figures a flood and a closure share (buildings, people) would read as if the
two answered the same question.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from twin.errors import InputError
from twin.scenarios.models import DEPTH_KINDS


class Metric(NamedTuple):
    """One row of a comparison: ``path`` is the dotted key in the summary."""

    key: str
    path: str
    unit: str
    vi: str
    en: str
    digits: int = 0


FLOOD = (
    Metric("water_level", "water_level_m", "m", "Mực nước", "Water level", 2),
    Metric("area", "flooded_area_km2", "km²", "Diện tích ngập", "Flooded area", 3),
    Metric("max_depth", "max_depth_m", "m", "Độ sâu lớn nhất", "Deepest water", 2),
    Metric("mean_depth", "mean_depth_m", "m", "Độ sâu trung bình", "Mean depth", 2),
    Metric("buildings", "buildings.count", "", "Công trình ngập", "Buildings flooded"),
    Metric("floor_area", "buildings.floor_area_m2", "m²", "Diện tích sàn ngập",
           "Floor area flooded"),
    Metric("population", "population", "người", "Dân số bị ảnh hưởng", "People affected"),
    Metric("roads", "roads.count", "", "Đoạn đường ngập", "Road segments flooded"),
    Metric("impassable", "roads.impassable.count", "", "Đoạn đường không qua được",
           "Impassable road segments"),
    Metric("impassable_km", "roads.impassable.length_m", "m", "Chiều dài đường không qua được",
           "Impassable road length"),
    Metric("facilities", "facilities.count", "", "Cơ sở thiết yếu ngập",
           "Essential facilities flooded"),
)
CLOSURE = (
    Metric("closed", "closed.count", "", "Đoạn đường đóng", "Road segments closed"),
    Metric("closed_m", "closed.length_m", "m", "Chiều dài đường đóng", "Length closed"),
    Metric("cut_segments", "cut_off.segments", "", "Đoạn đường bị cô lập",
           "Road segments cut off"),
    Metric("cut_m", "cut_off.length_m", "m", "Chiều dài bị cô lập", "Length cut off"),
    Metric("buildings", "buildings.count", "", "Công trình mất lối ra",
           "Buildings cut off"),
    Metric("population", "buildings.population", "người", "Dân số bị cô lập",
           "People cut off"),
)
OUTAGE = (
    Metric("valves", "operate", "", "Van/thiết bị cần thao tác", "Valves or switches to operate"),
    Metric("isolated", "isolated.count", "", "Đoạn ống bị cô lập", "Sections isolated"),
    Metric("isolated_m", "isolated.length_m", "m", "Chiều dài bị cô lập", "Length isolated"),
    Metric("cut", "cut_off.count", "", "Đoạn mất nguồn", "Sections cut off"),
    Metric("buildings", "buildings.count", "", "Công trình mất dịch vụ",
           "Buildings without service"),
    Metric("population", "buildings.population", "người", "Dân số mất dịch vụ",
           "People without service"),
)
KIND_NAMES = {
    "flood": ("Lũ (mực nước)", "Flood (water level)"),
    "rain": ("Mưa lớn", "Heavy rain"),
    "river": ("Lũ sông", "River flood"),
    "closure": ("Đóng đường", "Road closure"),
    "outage": ("Sự cố tiện ích", "Utility outage"),
}


def family(kind: str) -> str:
    return "depth" if kind in DEPTH_KINDS else kind


def metrics_for(kind: str) -> tuple[Metric, ...]:
    return {"depth": FLOOD, "closure": CLOSURE, "outage": OUTAGE}.get(family(kind), ())


def value(summary: dict[str, Any], path: str) -> float | None:
    """The number at a dotted path (a list counts its items; ``facilities.count`` sums a
    flood's facilities by kind); None when absent."""
    if path == "facilities.count" and isinstance(summary.get("facilities"), dict):
        by_kind = summary["facilities"].get("by_kind") or {}
        return float(sum(v for v in by_kind.values() if isinstance(v, int | float)))
    cur: Any = summary
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    if isinstance(cur, list):
        return float(len(cur))
    if isinstance(cur, bool) or not isinstance(cur, int | float):
        return None
    return float(cur)


def table(kind_a: str, sa: dict[str, Any], kind_b: str, sb: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{key, label: {vi, en}, unit, a, b, diff}`` (diff = b − a) for two
    scenarios of one family; a metric neither has is left out.

    Raises
    ------
    InputError
        The two are not of one family (a flood and a closure, say).
    """
    if family(kind_a) != family(kind_b):
        raise InputError(
            f"a {kind_a} scenario cannot be compared with a {kind_b} one: compare floods "
            "(flood, rain, river) with each other, closures with closures, outages with outages")
    rows = []
    for m in metrics_for(kind_a):
        a, b = value(sa, m.path), value(sb, m.path)
        if a is None and b is None:
            continue
        diff = None if a is None or b is None else round(b - a, max(m.digits, 3))
        rows.append({"key": m.key, "label": {"vi": m.vi, "en": m.en}, "unit": m.unit,
                     "digits": m.digits, "a": a, "b": b, "diff": diff})
    return rows


def _n(x: float | None, digits: int = 0, lang: str = "en") -> str:
    if x is None:
        return "—"
    s = f"{x:,.{digits}f}"
    return s.replace(",", "\0").replace(".", ",").replace("\0", ".") if lang == "vi" else s


def headline(kind: str, params: dict[str, Any], summary: dict[str, Any]) -> dict[str, str]:
    """A one-line description of what a scenario found, in vi and en."""
    out = {}
    for lang in ("vi", "en"):
        vi = lang == "vi"
        b = value(summary, "buildings.count")
        if family(kind) == "depth":
            area = _n(value(summary, "flooded_area_km2"), 2, lang)
            lead = ""
            if kind == "flood" and value(summary, "water_level_m") is not None:
                lead = f"{_n(value(summary, 'water_level_m'), 1, lang)} m: "
            elif kind == "rain" and isinstance(params.get("rain_mm"), int | float):
                lead = f"{_n(float(params['rain_mm']), 0, lang)} mm: "
            out[lang] = (f"{lead}{area} km² ngập, {_n(b, 0, lang)} công trình" if vi
                         else f"{lead}{area} km² flooded, {_n(b, 0, lang)} buildings")
        elif kind == "closure":
            c, seg = value(summary, "closed.count"), value(summary, "cut_off.segments")
            out[lang] = (f"{_n(c, 0, lang)} đoạn đóng, {_n(seg, 0, lang)} đoạn bị cô lập, "
                         f"{_n(b, 0, lang)} công trình mất lối ra" if vi else
                         f"{_n(c, 0, lang)} closed, {_n(seg, 0, lang)} segments cut off, "
                         f"{_n(b, 0, lang)} buildings cut off")
        else:
            v = value(summary, "operate")
            out[lang] = (f"{_n(v, 0, lang)} van cần đóng, {_n(b, 0, lang)} công trình mất dịch vụ"
                         if vi else f"{_n(v, 0, lang)} valves to close, {_n(b, 0, lang)} "
                         "buildings without service")
    return out


def kind_label(kind: str) -> dict[str, str]:
    vi, en = KIND_NAMES.get(kind, (kind, kind))
    return {"vi": vi, "en": en}
