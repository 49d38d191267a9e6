"""Viewer pages: pydeck renders the deck.gl page, then we make it run fully offline.

pydeck's HTML template loads deck.gl, mapbox-gl, bootstrap, font-awesome and maplibre's
css from CDNs. Every page here is the pydeck page with those tags removed and deck.gl
pointed at the bundle copied from pydeck's own wheel (``/static/vendor``), so a browser
showing it never talks to another host. pydeck's ``createDeck`` still builds the
``deck.Deck`` (initial view on Đà Nẵng, map view, controller); ``/static/viewer.js``
then adds our layers, panels and tools to that instance.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any, Literal

import pydeck as pdk

from web.assets import vendor_url
from web.panels import panels_html, signin_html

Page = Literal["map", "plan", "ops", "track"]

#: Where the map opens: central Đà Nẵng (Hải Châu), WGS 84 degrees and web-map zoom.
HOME_VIEW = {"longitude": 108.21, "latitude": 16.06, "zoom": 13.0, "pitch": 40.0, "bearing": 0.0}
VENDOR = "/static/vendor"
STATIC = "/static"
#: Canvas clear colour (land); the browser tests compare pixels against it.
BACKGROUND = (242, 239, 233)

_TITLES = {
    "map": "Bản đồ Đà Nẵng · Da Nang map",
    "plan": "Quy hoạch · Planner — Da Nang Twin",
    "ops": "Điều hành khẩn cấp · Emergency console — Da Nang Twin",
    "track": "Theo dõi báo cáo · Follow your report — Da Nang Twin",
    "signin": "Đăng nhập · Sign in — Da Nang Twin",
}
_EXTERNAL_TAG = re.compile(
    r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*['\"]?https?://[^>]*>(?:\s*</script>)?\s*",
    re.IGNORECASE,
)
_EXTERNAL_URL = re.compile(r"\b(?:src|href)\s*=\s*['\"]?(?:https?:)?//", re.IGNORECASE)


def deck_html() -> str:
    """The pydeck page for our map: no basemap provider, a map view with a controller."""
    deck = pdk.Deck(
        layers=[],
        initial_view_state=pdk.ViewState(**HOME_VIEW, max_pitch=70, min_zoom=8, max_zoom=20),
        views=[pdk.View("MapView", controller=True)],
        map_provider=None,
        map_style=None,
        tooltip=False,
    )
    bg = "rgb({},{},{})".format(*BACKGROUND)
    out = deck.to_html(as_string=True, notebook_display=False, css_background_color=bg)
    assert isinstance(out, str)
    return out


def localise(page: str) -> str:
    """Swap pydeck's CDN tags for our local copies; refuse to return any external URL."""
    page = _EXTERNAL_TAG.sub("", page)
    head_assets = (
        f'<script src="{vendor_url("deckgl-bundle.js")}"></script>\n'
        f'    <link rel="stylesheet" href="{vendor_url("maplibre-gl.css")}" />\n'
        f'    <link rel="stylesheet" href="{STATIC}/twin.css" />\n'
        f'    <link rel="stylesheet" href="{STATIC}/citizen.css" />\n'
        f'    <link rel="icon" href="{STATIC}/favicon.svg" type="image/svg+xml" />\n'
    )
    page = page.replace("<style>", head_assets + "    <style>", 1)
    leftover = _EXTERNAL_URL.search(page)
    if leftover:
        near = page[leftover.start():][:80]
        raise RuntimeError(f"external asset left in the viewer page near {near!r}")
    return page


def _config_script(config: dict[str, Any]) -> str:
    # </script> inside JSON would end the tag early; escape the slash.
    data = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")
    return f"<script>window.TWIN_CONFIG = {data};</script>\n"


def _scripts(names: list[str]) -> str:
    return "".join(f'<script src="{STATIC}/{n}"></script>\n' for n in names)


def render_map_page(page: Page, layers: list[dict[str, Any]], role: str | None = None,
                    api: dict[str, bool] | None = None) -> str:
    """A map page (``map``, ``plan`` or ``ops``) with the layers the page starts with.

    Parameters
    ----------
    page
        Which view: the public map, the planner view or the emergency console.
    layers
        The catalogue entries visible to ``role`` (see ``server.routes.viewer``); the
        page asks ``/viewer/layers`` again with the stored token after sign-in.
    role
        The role the layers were chosen for (None = anonymous).
    api
        Which optional citizen APIs the server has (``warnings``, ``nearby``, ``support``,
        ``media``): the page leaves out what is missing instead of asking for it.
    """
    out = localise(deck_html())
    out = out.replace("<title>pydeck</title>", f"<title>{html.escape(_TITLES[page])}</title>")
    out = out.replace("<html>", '<html lang="vi">', 1)
    out = out.replace(
        '<meta http-equiv="content-type" content="text/html; charset=UTF-8" />',
        '<meta http-equiv="content-type" content="text/html; charset=UTF-8" />\n'
        '    <meta name="viewport" content="width=device-width, initial-scale=1" />',
        1,
    )
    config = {
        "page": page,
        "role": role,
        "layers": layers,
        "home": HOME_VIEW,
        "background": list(BACKGROUND),
        "workerUrl": vendor_url("mvt-worker.js"),
        "staffOnly": page in ("plan", "ops"),
        "api": api or {},
    }
    out = out.replace("<body>", f'<body class="page-{page}">\n' + panels_html(page), 1)
    scripts = ["i18n.js", "twin.js", "style.js", "incidents.js", "viewer.js", "archive.js",
               "legend.js",
               "mapctl.js", "labels.js", "basemap.js", "panels.js", "live.js", "sensorchart.js",
               "warnings.js"]
    if page == "map":
        scripts += ["report.js"]
    if page == "track":
        scripts += ["track.js"]
    if page == "plan":
        scripts += ["draw.js", "plan.js", "whatif.js", "scenarios.js", "rain.js"]
    if page == "ops":
        scripts += ["ops.js", "alarms.js", "opsflood.js", "rain.js"]
    tail = _config_script(config) + _scripts(scripts)
    # pydeck's own script (createDeck) comes first; ours run after it, in order.
    idx = out.rfind("</html>")
    return out[:idx] + tail + out[idx:]


def render_signin_page() -> str:
    """The sign-in form (no map): posts to ``/auth/token`` and returns to ``?next=``."""
    return (
        '<!DOCTYPE html>\n<html lang="vi">\n<head>\n'
        '<meta charset="utf-8" />\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1" />\n'
        f"<title>{html.escape(_TITLES['signin'])}</title>\n"
        f'<link rel="stylesheet" href="{STATIC}/twin.css" />\n'
        f'<link rel="icon" href="{STATIC}/favicon.svg" type="image/svg+xml" />\n'
        "</head>\n"
        f'<body class="page-signin">\n{signin_html()}\n'
        + _config_script({"page": "signin"})
        + _scripts(["i18n.js", "twin.js", "panels.js", "signin.js"])
        + "</body>\n</html>\n"
    )
