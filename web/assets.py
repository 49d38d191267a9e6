"""Copy the viewer's third-party assets into ``web/static/vendor`` (run by make).

deck.gl comes from the bundle inside pydeck's wheel; the MVT worker and maplibre's css
come from npm packages installed in ``web/node_modules``. Nothing is fetched from a CDN.

Each file is precompressed next to itself (``.gz``, and ``.br`` with brotli at its best
quality) and named by its content in ``vendor/manifest.json``
(``deckgl-bundle.js`` → ``deckgl-bundle.<sha256:12>.js``): pages link the hashed name,
served with ``Cache-Control: public, max-age=31536000, immutable``; the plain names keep
working (cached for a day).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from functools import lru_cache
from pathlib import Path

WEB = Path(__file__).resolve().parent
VENDOR = WEB / "static" / "vendor"
MANIFEST = VENDOR / "manifest.json"
URL = "/static/vendor"
_HASHED = re.compile(r"^(?P<stem>[^/]+)\.(?P<hash>[0-9a-f]{12})(?P<ext>\.[a-z0-9]+)$")

NPM_FILES = {
    "@loaders.gl/mvt/dist/mvt-worker.js": "mvt-worker.js",
    "maplibre-gl/dist/maplibre-gl.css": "maplibre-gl.css",
    "pmtiles/dist/pmtiles.js": "pmtiles.js",  # reads exported archives (twin tiles export)
}


def pydeck_bundle() -> Path:
    import pydeck

    return Path(pydeck.__file__).parent / "nbextension" / "static" / "index.js"


def install() -> list[Path]:
    VENDOR.mkdir(parents=True, exist_ok=True)
    written = []
    dst = VENDOR / "deckgl-bundle.js"
    shutil.copyfile(pydeck_bundle(), dst)
    written.append(dst)
    for rel, name in NPM_FILES.items():
        src = WEB / "node_modules" / rel
        if not src.exists():
            raise SystemExit(f"missing npm asset {src}; run `npm install` in web/")
        shutil.copyfile(src, VENDOR / name)
        written.append(VENDOR / name)
    import brotli

    names: dict[str, str] = {}
    for path in list(written):  # precompressed once, served as is to gzip / br clients
        data = path.read_bytes()
        gz = path.with_name(path.name + ".gz")
        gz.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
        br = path.with_name(path.name + ".br")
        br.write_bytes(brotli.compress(data, quality=11))
        written += [gz, br]
        digest = hashlib.sha256(data).hexdigest()[:12]
        names[path.name] = f"{path.stem}.{digest}{path.suffix}"
    MANIFEST.write_text(json.dumps(names, indent=1, sort_keys=True) + "\n")
    written.append(MANIFEST)
    manifest.cache_clear()
    return written


@lru_cache(maxsize=1)
def manifest() -> dict[str, str]:
    """Plain name → hashed name of each vendor file (empty before ``make web-assets``)."""
    try:
        data = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def vendor_url(name: str) -> str:
    """The URL pages use for a vendor file: its hashed name when the manifest has it."""
    return f"{URL}/{manifest().get(name, name)}"


def unhash(name: str) -> str | None:
    """The plain vendor file name behind a hashed one (None: not a current hashed name)."""
    m = _HASHED.match(name)
    if m is None:
        return None
    plain = m["stem"] + m["ext"]
    return plain if manifest().get(plain) == name else None


if __name__ == "__main__":
    for p in install():
        print(f"    {p.relative_to(WEB.parent)}")
