"""The HTML of the panels around the map (``web/templates/*.html``).

Texts are Vietnamese by default; ``i18n.js`` swaps them (``data-i18n`` keys) to the
language the visitor chose. Every control is a real button, input or label so the
panels work from the keyboard and with a screen reader.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).resolve().parent / "templates"
_NAV = (("map", "/", "nav.map", "Bản đồ"), ("plan", "/plan", "nav.plan", "Quy hoạch"),
        ("ops", "/ops", "nav.ops", "Điều hành"))


@cache
def _template(name: str) -> str:
    return (TEMPLATES / f"{name}.html").read_text(encoding="utf-8")


def header_html(page: str) -> str:
    """The top bar: page links, search (on map pages), language switch, account."""
    links = "".join(
        f'<a href="{href}" data-i18n="{key}"'
        + (' aria-current="page"' if name == page else "")
        + f">{text}</a>"
        for name, href, key, text in _NAV
    )
    search = "" if page == "signin" else "\n" + _template("search")
    return "\n" + Template(_template("header")).substitute(links=links, search=search.rstrip())


def panels_html(page: str) -> str:
    """Header, layer and attribute panels, plus the page's own tools."""
    out = header_html(page) + "\n" + _template("common")
    if page == "plan":
        out += _template("plan") + _template("gate")
    elif page == "ops":
        out += _template("ops") + _template("gate")
    elif page == "map":
        out += _template("report")
    elif page == "track":
        out += _template("track")
    return out


def signin_html() -> str:
    """The sign-in form; signin.js posts it to ``/auth/token``."""
    return header_html("signin") + "\n" + _template("signin")
