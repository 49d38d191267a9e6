"""The facts the demo city is built from: ``data/demo/*.yaml`` in the project tree.

Coordinates in those files are WGS84 ``[lon, lat]``. Each fact carries its source and a
``verified`` flag (see the files' headers); the demo reads nothing else at run time.
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path
from typing import Any

from twin.settings import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT / "data" / "demo"
FILES = ("geography", "admin", "roads", "facilities", "places")


@functools.cache
def load(name: str, data_dir: Path = DATA_DIR) -> dict[str, Any]:
    """One facts file (``geography``, ``admin``, ``roads``, ``facilities``, ``places``)."""
    import yaml

    if name not in FILES:
        raise KeyError(f"no demo facts file {name!r}")
    with open(data_dir / f"{name}.yaml", encoding="utf-8") as f:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(f, Loader=loader)  # noqa: S506 - a safe loader
    if not isinstance(data, dict):
        raise ValueError(f"{name}.yaml: expected a mapping")
    return data


def ascii_name(text: str) -> str:
    """Vietnamese text without diacritics (``Đà Nẵng`` → ``Da Nang``), for English names."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def lonlat(value: Any) -> tuple[float, float]:
    """A ``[lon, lat]`` pair from the facts as a float tuple."""
    lon, lat = value
    return float(lon), float(lat)
