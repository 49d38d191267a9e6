"""Copy the viewer's third-party assets into ``web/static/vendor`` (run by make).

deck.gl comes from the bundle inside pydeck's wheel; the MVT worker and maplibre's css
come from npm packages installed in ``web/node_modules``. Nothing is fetched from a CDN.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

WEB = Path(__file__).resolve().parent
VENDOR = WEB / "static" / "vendor"

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
    for path in list(written):  # precompressed once, served as is to gzip clients
        gz = path.with_name(path.name + ".gz")
        gz.write_bytes(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))
        written.append(gz)
    return written


if __name__ == "__main__":
    for p in install():
        print(f"    {p.relative_to(WEB.parent)}")
