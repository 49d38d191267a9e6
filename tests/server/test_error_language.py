"""Error texts a planner, a responder or an administrator reads in the viewer come in the
UI's language: every text raised by the what-if, analysis, raster, rule, user and route
modules has Vietnamese, and the API answers it for ``Accept-Language: vi`` / ``lang=vi``."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.errors import translate
from tests.server.helpers import token_for

ROOT = Path(__file__).resolve().parents[2]
# the modules whose errors reach the viewer's panels (the SensorThings query language and
# the importers answer API clients and the CLI, in English)
UI_MODULES = [
    "layers/raster.py", "twin/analysis/routing.py", "twin/bounds.py", "twin/users.py",
    "twin/incidents/cap.py", "twin/incidents/open311.py", "twin/incidents/store.py",
    "twin/sensors/rules.py", "twin/sensors/entities.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "twin/scenarios").glob("*.py")),
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "server/routes").glob("*.py")
            if p.name != "sta.py"),
]
ERRORS = {"InputError", "NotFound", "Conflict", "PreconditionFailed", "RateLimited",
          "HTTPException"}
# what a {…} in an f-string may stand for: a number, a word, an operator
SAMPLES = ("7", "x", ">")


def _raised(path: str) -> list[tuple[int, list[str | None]]]:
    """(line, parts) for each error raised with a literal text; None marks a {…}."""
    out = []
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        name = fn.id if isinstance(fn, ast.Name) else getattr(fn, "attr", None)
        if name not in ERRORS:
            continue
        for arg in [*node.args, *(k.value for k in node.keywords if k.arg == "detail")]:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                out.append((node.lineno, [arg.value]))
            elif isinstance(arg, ast.JoinedStr):
                out.append((node.lineno, [v.value if isinstance(v, ast.Constant) else None
                                          for v in arg.values]))
    return out


def _has_vietnamese(parts: list[str | None]) -> bool:
    holes = parts.count(None)
    for fill in itertools.product(SAMPLES, repeat=holes):
        it = iter(fill)
        text = "".join(p if p is not None else next(it) for p in parts)
        if translate(text, "vi") != text:
            return True
    return False


def test_every_error_the_viewer_shows_has_vietnamese() -> None:
    found, missing = 0, []
    for path in UI_MODULES:
        for line, parts in _raised(path):
            found += 1
            if not _has_vietnamese(parts):
                missing.append(f"{path}:{line}: {''.join(p or '{…}' for p in parts)}")
    assert found > 150  # the walk sees the modules' errors
    assert not missing, "no Vietnamese for:\n" + "\n".join(missing)


def test_more_specific_texts_win_over_general_shapes() -> None:
    assert translate("unknown mode 'boat'; one of drive, walk", "vi") == \
        "không có phương tiện 'boat'; chọn một trong: drive, walk"
    assert translate("unknown facility kind 'zoo'; one of hospital", "vi") == \
        "không có loại cơ sở 'zoo'; chọn một trong: hospital"
    assert translate("rain_mm must be > 0 and ≤ 2000, got -1", "vi") == \
        "rain_mm phải > 0 và ≤ 2000, nhận được -1"


@pytest.fixture(scope="module")
def client(settings):  # noqa: ANN001, ANN201
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def planner(client, engine):  # noqa: ANN001, ANN201
    return token_for(client, engine, "planner")


@pytest.mark.parametrize(("method", "path", "body", "vi"), [
    ("get", "/scenarios/999999999", None, "không tìm thấy kịch bản 999999999"),
    ("post", "/scenarios/closure", {"segment_ids": [999999999]},
     "không có đoạn đường mã: 999999999"),
    ("post", "/scenarios/outage", {}, "cho edge_id (ống vỡ, cáp đứt) hoặc node_id (thiết bị hỏng)"),
    ("post", "/scenarios/rain", {"rain_mm": 100, "hours": 6, "hyetograph": [1, 2]},
     "cho rain_mm (kèm hours) hoặc biểu đồ mưa, không cho cả hai"),
    ("post", "/scenarios/river", {}, "cho stage_m (mét tại trạm đo)"),
])
def test_the_api_answers_what_if_errors_in_vietnamese(client, planner, method, path, body,  # noqa: ANN001
                                                      vi) -> None:  # noqa: ANN001
    kw = {"json": body} if body is not None else {}
    r = getattr(client, method)(path, headers={**planner, "Accept-Language": "vi"}, **kw)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["description"].startswith(vi), r.json()
    en = getattr(client, method)(path + "?lang=en", headers=planner, **kw)
    assert en.status_code == r.status_code
    assert en.json()["description"] != r.json()["description"]
