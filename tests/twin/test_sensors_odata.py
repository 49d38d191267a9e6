"""The $filter / $orderby parser: precedence, literals and clear errors."""

import datetime as dt

import pytest

from twin.errors import InputError
from twin.sensors.odata import Bin, Call, Lit, Neg, Not, Path, parse_filter, parse_orderby


def test_precedence_and_or_not_arithmetic():
    t = parse_filter("a eq 1 or b gt 2 add 3 mul 4 and not c lt -5")
    assert t == Bin("or", Bin("eq", Path(("a",)), Lit(1, "num")),
                    Bin("and",
                        Bin("gt", Path(("b",)),
                            Bin("add", Lit(2, "num"), Bin("mul", Lit(3, "num"), Lit(4, "num")))),
                        Not(Bin("lt", Path(("c",)), Lit(-5, "num")))))


def test_literals():
    assert parse_filter("name eq 'O''Brien'").right == Lit("O'Brien", "str")
    t = parse_filter("phenomenonTime ge 2026-10-14T06:00:00+07:00").right
    assert t.type == "time" and t.value == dt.datetime(2026, 10, 13, 23, tzinfo=dt.UTC)
    assert parse_filter("x eq 2026-10-14").right.value == dt.datetime(2026, 10, 14, tzinfo=dt.UTC)
    g = parse_filter("geo.intersects(location, geography'POINT(108.22 16.06)')")
    assert g == Call("geo.intersects", (Path(("location",)), Lit("POINT (108.22 16.06)", "geom")))
    assert parse_filter("x eq 1.5e2").right == Lit(150.0, "num")
    assert parse_filter("x eq null").right == Lit(None, "null")
    assert parse_filter("-(x)") == Neg(Path(("x",)))


def test_paths_and_functions():
    t = parse_filter("substringof('Hàn', Datastream/Thing/name)")
    assert t == Call("substringof", (Lit("Hàn", "str"), Path(("Datastream", "Thing", "name"))))
    assert parse_filter("length(trim(name)) gt 3").left.name == "length"


@pytest.mark.parametrize("src, words", [
    ("name eq", "ends too early"),
    ("name eq 'x", "unterminated string"),
    ("frobnicate(name)", "unknown function 'frobnicate'"),
    ("substring(name)", "takes 2 or 3 argument"),
    ("(name eq 'x'", "expected ')'"),
    ("name eq 'x')", "unexpected ')'"),
    ("a eq 1 eq 2", "cannot be chained"),
    ("geo.intersects(location, geography'POINT(1)')", "invalid WKT"),
    ("name $ 'x'", "unexpected character '$'"),
    ("eq 1", "needs a value before it"),
    ("", "empty"),
])
def test_errors_name_the_problem(src, words):
    with pytest.raises(InputError) as e:
        parse_filter(src)
    assert words in str(e.value) and "$filter" in str(e.value)


def test_orderby():
    out = parse_orderby("phenomenonTime desc, result, Datastream/name asc")
    assert [d for _, d in out] == [True, False, False]
    with pytest.raises(InputError, match=r"\$orderby"):
        parse_orderby("result sideways")


# -- the compiler: SQLAlchemy Core, every value bound ------------------------------------


@pytest.mark.parametrize(("entity", "src"), [
    ("Things", "Datastreams/name eq 'O''Brien; DROP TABLE thing' and properties/kind eq 'x'"),
    ("Observations", "result gt 3.5 and phenomenonTime ge 2020-01-01T00:00:00Z"),
    ("Datastreams", "phenomenonTime lt 2024-06-01T00:00:00Z or name ne null"),
    ("Locations", "geo.distance(location, geography'POINT(108.2 16.05)') lt 500"),
    ("Things", "startswith(tolower(name), 'trạm') and length(description) add 1 gt 2"),
    ("Observations", "Datastream/Thing/name eq 'Trạm Hàn' and not (result eq null)"),
])
def test_filters_compile_to_core_with_bound_values(entity, src) -> None:
    import sqlalchemy as sa

    from twin.sensors.entities import ENTITIES
    from twin.sensors.filters import Binder, Compiler

    b = Binder()
    c = Compiler(b, ENTITIES[entity], "a0", anonymous=True)
    cond = c.condition(parse_filter(src))
    assert isinstance(cond, sa.ColumnElement)
    sql = c.where(parse_filter(src))
    values = [v for v in b.params.values() if isinstance(v, str)]
    assert b.params and all(v not in sql for v in values if len(v) > 2)  # bound, not written
    for name in b.params:
        assert f":{name}" in sql or name not in sql
    assert "::VARCHAR" not in sql  # no driver bind casts in the statement text
