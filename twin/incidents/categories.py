"""The documented list of incident categories (also the Open311 services)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    code: str
    name_vi: str
    name_en: str
    group: str
    severity: int  # default severity 1–5
    sla_hours: float  # expected time to resolve
    subcategories: tuple[str, ...] = ()
    citizen: bool = True  # offered to citizens over Open311


CATEGORIES: tuple[Category, ...] = (
    Category(
        "fire", "Cháy", "Fire", "emergency", 5, 2, ("building", "vehicle", "forest", "electrical")
    ),
    Category(
        "flood",
        "Ngập lụt",
        "Flood",
        "emergency",
        4,
        12,
        ("street", "house", "river_overflow", "flash_flood"),
    ),
    Category(
        "traffic_accident",
        "Tai nạn giao thông",
        "Traffic accident",
        "emergency",
        4,
        2,
        ("collision", "injury", "vehicle_fire"),
    ),
    Category(
        "road_blocked",
        "Đường bị chặn",
        "Road blocked",
        "roads",
        3,
        6,
        ("debris", "vehicle", "works"),
    ),
    Category("pothole", "Ổ gà, hư hỏng mặt đường", "Pothole or road damage", "roads", 2, 72),
    Category("water_main_burst", "Vỡ ống nước", "Water main burst", "utilities", 4, 8),
    Category("power_outage", "Mất điện", "Power outage", "utilities", 3, 8),
    Category("streetlight", "Đèn đường hỏng", "Street light out", "utilities", 1, 72),
    Category("fallen_tree", "Cây đổ", "Fallen tree", "environment", 3, 12),
    Category("landslide", "Sạt lở đất", "Landslide", "emergency", 5, 12),
    Category("medical", "Cấp cứu y tế", "Medical emergency", "emergency", 5, 1, (), True),
    Category(
        "pollution",
        "Ô nhiễm môi trường",
        "Pollution",
        "environment",
        2,
        72,
        ("air", "water", "noise", "waste"),
    ),
    Category("waste", "Rác thải", "Illegal dumping / waste", "environment", 1, 72),
    Category("drainage_blocked", "Cống thoát nước tắc", "Blocked drain", "utilities", 2, 24),
)

BY_CODE = {c.code: c for c in CATEGORIES}


def get_category(code: str) -> Category | None:
    return BY_CODE.get(code)
