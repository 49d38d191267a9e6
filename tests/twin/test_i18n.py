"""Server texts in vi (default) or en: language choice, rule-opened incidents, what-if
summaries."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, text

from tests.twin.sensors_net import T0, make_net, put, series
from tests.twin.test_scenarios_flood import basin, lonlat  # noqa: F401 - a fixture
from tests.twin.test_scenarios_outage import net as outage_net  # noqa: F401 - a fixture
from twin import i18n
from twin.scenarios import flood, outage
from twin.sensors import rules


def test_language_choice() -> None:
    assert i18n.pick() == "vi"
    assert i18n.pick("en") == "en" and i18n.pick("en-US") == "en" and i18n.pick("fr") == "vi"
    assert i18n.pick(None, "fr-FR,en;q=0.8,vi;q=0.5") == "en"
    assert i18n.pick(None, "en;q=0.3, vi-VN") == "vi"
    assert i18n.pick("vi", "en") == "vi"
    assert i18n.pick(None, "en;q=0") == "vi"
    assert i18n.t("status.verified", "en") == "Verified"
    assert i18n.both("status.verified") == {"vi": "Đã xác minh", "en": "Verified"}
    assert i18n.local_iso(dt.datetime(2026, 1, 1, 17, 30, tzinfo=dt.UTC)) == \
        "2026-01-02T00:30:00+07:00"
    assert i18n.local_text(dt.datetime(2026, 1, 1, 17, 30, tzinfo=dt.UTC)) == \
        "00:30 02/01/2026 (GMT+7)"


def test_numbers_are_written_the_way_the_language_writes_them() -> None:
    vi = i18n.t("rain.balance", "vi", rain=1234567.8, infiltrated=1000, drained=2.5e4,
                stored=12.0, to_sea=0)
    en = i18n.t("rain.balance", "en", rain=1234567.8, infiltrated=1000, drained=2.5e4,
                stored=12.0, to_sea=0)
    assert "mưa 1.234.568 m³" in vi and "thấm 1.000" in vi and "cống 25.000" in vi
    assert "rain 1,234,568 m³" in en
    assert i18n.t("rain.tide", "vi", level=1.5, km2=2.25) == "triều 1,5 m: 2,250 km² ngập từ biển"
    assert i18n.t("rain.tide", "en", level=1.5, km2=2.25).startswith("tide at 1.5 m: 2.250 km²")
    # only numbers: a name or an id's text keeps its dots
    assert i18n.t("rule.above", "vi", where="Trạm 2.1", v=3, unit="m", x=2.5, held="") == \
        "Trạm 2.1: 3 m trên ngưỡng 2,5 m"
    assert i18n.number(0.75, "vi", ".2f") == "0,75" and i18n.number(0.75, "en", ".2f") == "0.75"


def test_a_rule_opens_its_incident_in_vietnamese_with_english_kept(engine: Engine) -> None:
    net = make_net(engine)
    with engine.begin() as c:  # other tests' flood incidents at this bridge: closed
        c.execute(text("UPDATE incident SET status = 'closed', close_reason = 'resolved' "
                       "WHERE category = 'flood' AND status <> 'closed'"))
        rid = rules.add_rule(c, {"datastream_id": net.level, "kind": "above", "threshold": 2.2,
                                 "severity": 4, "opens_incident": True, "name": "Mức lũ"})
    put(engine, series(net.level, [2.4], T0))
    with engine.connect() as c:
        iid, description = c.execute(text(
            "SELECT i.id, i.description FROM alarm a JOIN incident i ON i.id = a.incident_id "
            "WHERE a.rule_id = :r"), {"r": rid}).one()
        texts = c.execute(text("SELECT data->'texts'->'description' FROM incident_event "
                               "WHERE incident_id = :i AND kind = 'created'"), {"i": iid}).scalar()
    assert description.startswith("Mở từ cảnh báo cảm biến")
    assert "2,4 m trên ngưỡng 2,2 m" in description
    assert "Raised by" not in description and "above" not in description
    assert texts["vi"] == description
    assert texts["en"].startswith("Raised by sensor alarm") and "2.4 m above 2.2 m" in texts["en"]


def test_outage_summary_in_both_languages(engine: Engine, outage_net) -> None:  # noqa: ANN001, F811
    with engine.begin() as conn:
        s = outage.run_outage(conn, edge_id=outage_net["e4"])["summary"]
    assert s["message_i18n"]["en"] == s["message"]
    assert s["message_i18n"]["vi"].startswith("đóng van V1, V2, V3")
    assert s["message_i18n"]["vi"].endswith("; 3 tòa nhà mất nước")
    assert len(s["notes_i18n"]["vi"]) == len(s["notes_i18n"]["en"]) == len(s["notes"])


def test_flood_notes_in_both_languages(basin) -> None:  # noqa: ANN001, F811
    dry = flood.fill(basin, water_level_m=2, seeds=[lonlat(50, 20)])  # on the hill
    assert "1 seed point(s) lie above the water level and flood nothing" in dry.notes
    assert "1 điểm nguồn cao hơn mực nước, không gây ngập" in dry.notes_vi
    # method, source and limits, the same notes in each language
    assert len(dry.notes) == len(dry.notes_vi) == 3
    assert dry.notes[0].startswith("method: bathtub") and "1 given seed" in dry.notes[0]
    assert dry.notes_vi[0].startswith("phương pháp: lấp bồn") and "điểm nguồn" in dry.notes_vi[0]
    assert flood.sea_level_note("vi").startswith("nguồn mặc định: biển")
