"""Citizens' photos: sniffed by content, re-encoded without metadata (EXIF, GPS), with a
thumbnail, stored beside the report in the same transaction (``incident_media``)."""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from twin.errors import InputError
from twin.i18n import t

MAX_FILES = 3
MAX_BYTES = 5 * 1024 * 1024  # per photo, as uploaded
MAX_SIDE = 2048  # px: larger photos are scaled down when re-encoded
THUMB_SIDE = 320  # px, the longer side of a thumbnail
MAX_PIXELS = 50_000_000  # refuse decompression bombs before decoding
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"),
           "WEBP": ("image/webp", "webp")}


class UnsupportedMedia(InputError):
    """Not a JPEG, PNG or WebP image (answered 415)."""


class MediaTooLarge(InputError):
    """A photo over :data:`MAX_BYTES` (answered 413)."""


@dataclass(frozen=True)
class Photo:
    content_type: str
    ext: str
    width: int
    height: int
    data: bytes
    thumb: bytes


def sniff(data: bytes) -> str | None:
    """The image format by its magic bytes (never by the name or the declared type)."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _encode(img: Any, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        img.save(out, "JPEG", quality=85, optimize=True)
    elif fmt == "PNG":
        img.save(out, "PNG", optimize=True)
    else:
        img.save(out, "WEBP", quality=85)
    return out.getvalue()


def process(data: bytes, name: str, lang: str = "vi") -> Photo:
    """Check and re-encode one uploaded photo. Re-encoding from pixels drops every
    metadata block (EXIF with GPS, XMP, comments); the EXIF orientation is applied first
    so the photo still stands upright."""
    from PIL import Image, ImageOps

    if len(data) > MAX_BYTES:
        raise MediaTooLarge(t("err.media_size", lang, name=name, limit="5 MiB"))
    fmt = sniff(data)
    if fmt is None:
        raise UnsupportedMedia(t("err.media_type", lang, name=name))
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format != fmt:
                raise UnsupportedMedia(t("err.media_type", lang, name=name))
            if probe.width * probe.height > MAX_PIXELS:
                raise InputError(t("err.media_broken", lang, name=name))
            probe.verify()
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            upright = ImageOps.exif_transpose(img)
    except InputError:
        raise
    except Exception:  # noqa: BLE001 - Pillow raises many kinds for a broken file
        raise InputError(t("err.media_broken", lang, name=name)) from None
    keep_alpha = fmt != "JPEG" and upright.mode in ("RGBA", "LA", "P")
    clean = upright.convert("RGBA" if keep_alpha else "RGB")
    clean.info = {}  # nothing from the original travels with the pixels
    if max(clean.size) > MAX_SIDE:
        clean.thumbnail((MAX_SIDE, MAX_SIDE))
    thumb = clean.copy()
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
    ctype, ext = FORMATS[fmt]
    return Photo(ctype, ext, clean.width, clean.height, _encode(clean, fmt), _encode(thumb, fmt))


def store(conn: Connection, incident_id: int, photos: list[Photo]) -> list[str]:
    """Insert the photos of a report; returns their names (random, unguessable)."""
    names = []
    for i, p in enumerate(photos):
        name = f"{secrets.token_urlsafe(16)}.{p.ext}"
        conn.execute(
            text(
                "INSERT INTO incident_media (incident_id, name, position, content_type, width, "
                "height, data, thumb) VALUES (:i, :n, :p, :c, :w, :h, :d, :t)"
            ),
            {"i": incident_id, "n": name, "p": i, "c": p.content_type, "w": p.width,
             "h": p.height, "d": p.data, "t": p.thumb},
        )
        names.append(name)
    return names


def names_of(conn: Connection, incident_id: int) -> list[str]:
    rows = conn.execute(
        text("SELECT name FROM incident_media WHERE incident_id = :i ORDER BY position, id"),
        {"i": incident_id},
    )
    return [r[0] for r in rows]


def load(conn: Connection, name: str, thumb: bool) -> tuple[int, str, bytes] | None:
    """(incident id, content type, bytes) of a photo or its thumbnail, or None."""
    row = conn.execute(
        text(
            "SELECT incident_id, content_type, "
            + ("thumb" if thumb else "data")
            + " FROM incident_media WHERE name = :n"
        ),
        {"n": name},
    ).first()
    return (int(row[0]), str(row[1]), bytes(row[2])) if row else None


def url(name: str, thumb: bool = False) -> str:
    return f"/open311/v2/media/{name}" + ("?size=thumb" if thumb else "")
