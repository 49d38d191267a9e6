"""PMTiles archives written by ``twin tiles export``, served with HTTP range requests
(what the pmtiles reader in the viewer and any CDN-style client ask for)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from twin.errors import NotFound

router = APIRouter(tags=["tiles"])
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,80}$")


def archive_dir(request: Request):  # noqa: ANN201
    return request.app.state.settings.data_dir / "pmtiles"


@router.get("/pmtiles", summary="Exported PMTiles archives")
def list_archives(request: Request) -> dict[str, list[dict[str, object]]]:
    folder = archive_dir(request)
    files = sorted(folder.glob("*.pmtiles")) if folder.exists() else []
    return {"archives": [{"name": f.stem, "bytes": f.stat().st_size,
                          "href": f"/pmtiles/{f.name}"} for f in files]}


@router.get("/pmtiles/{name}.pmtiles", summary="One PMTiles archive (supports Range)",
            response_class=FileResponse,
            responses={206: {"description": "the requested byte range"},
                       404: {"description": "no such archive"}})
def get_archive(name: str, request: Request) -> FileResponse:
    path = archive_dir(request) / f"{name}.pmtiles"
    if not NAME.match(name) or not path.is_file():
        raise NotFound(f"no archive {name[:80]!r}; `twin tiles export` writes them into "
                       "TWIN_DATA_DIR/pmtiles")
    return FileResponse(path, media_type="application/vnd.pmtiles",
                        headers={"Cache-Control": "public, max-age=300"})
