"""Every rule kind fires and clears; one open alarm per rule; an alarm opens an incident."""

import datetime as dt

import pytest
from sqlalchemy import text

from tests.twin.sensors_net import T0, make_net, put, series
from twin.errors import Conflict
from twin.sensors import rules

MIN = dt.timedelta(minutes=1)


def _rule(engine, ds, **kw):
    with engine.begin() as c:
        return rules.add_rule(c, {"datastream_id": ds, **kw})


def _alarms(engine, rule_id):
    with engine.connect() as c:
        return [dict(r) for r in c.execute(text(
            "SELECT id, kind, severity, value, cleared_at, cleared_by, occurrences, incident_id "
            "FROM alarm WHERE rule_id = :r ORDER BY id"), {"r": rule_id}).mappings()]


@pytest.fixture
def net(engine):
    return make_net(engine)


def test_above_fires_holds_one_alarm_and_clears_with_hysteresis(engine, net):
    rid = _rule(engine, net.level, kind="above", threshold=2.0, clear_threshold=1.8, severity=3)
    put(engine, series(net.level, [1.0], T0))
    assert _alarms(engine, rid) == []
    put(engine, series(net.level, [2.5], T0 + MIN))
    put(engine, series(net.level, [2.7], T0 + 2 * MIN))  # worse: tracked, not a new alarm
    put(engine, series(net.level, [2.6, 1.9], T0 + 3 * MIN))  # 1.9 is inside the band
    (a,) = _alarms(engine, rid)
    # occurrences counts crossings (2.5 then 2.7 is one crossing, its worst value kept)
    assert a["cleared_at"] is None and a["value"] == 2.7 and a["occurrences"] == 1
    put(engine, series(net.level, [1.7], T0 + 5 * MIN))
    (a,) = _alarms(engine, rid)
    assert a["cleared_at"] is not None and a["cleared_by"].startswith("rule")
    put(engine, series(net.level, [3.0], T0 + 6 * MIN))  # fires again: a new alarm
    assert [x["cleared_at"] is None for x in _alarms(engine, rid)] == [False, True]


def test_below_fires_and_clears(engine, net):
    rid = _rule(engine, net.level, kind="below", threshold=6.5, severity=3)
    put(engine, series(net.level, [7.0, 6.9], T0))
    assert _alarms(engine, rid) == []
    put(engine, series(net.level, [6.1], T0 + 2 * MIN))
    assert _alarms(engine, rid)[0]["cleared_at"] is None
    put(engine, series(net.level, [6.8], T0 + 3 * MIN))
    assert _alarms(engine, rid)[0]["cleared_at"] is not None


def test_must_hold_for_a_duration_before_firing(engine, net):
    rid = _rule(engine, net.level, kind="above", threshold=2.0, hold_seconds=600)
    put(engine, series(net.level, [1.0] + [2.5] * 10, T0))  # held 9 min by minute 10
    assert _alarms(engine, rid) == []
    put(engine, series(net.level, [2.5] * 3, T0 + 11 * MIN))  # held past 10 min
    (a,) = _alarms(engine, rid)
    assert a["cleared_at"] is None and "for 10 min" in _message(engine, a["id"])
    put(engine, series(net.level, [1.5], T0 + 14 * MIN))
    assert _alarms(engine, rid)[0]["cleared_at"] is not None


def _message(engine, alarm_id):
    with engine.connect() as c:
        return rules.get_alarm(c, alarm_id)["message"]


def test_rate_of_change_rising(engine, net):
    rid = _rule(engine, net.level, kind="rate", threshold=0.5, window_seconds=900)
    put(engine, series(net.level, [1.0] * 20, T0))
    assert _alarms(engine, rid) == []
    put(engine, series(net.level, [1.0 + 0.02 * k for k in range(1, 21)], T0 + 20 * MIN))
    (a,) = _alarms(engine, rid)  # 0.3 m in 15 min = 1.2 m/h
    assert a["cleared_at"] is None and a["value"] == pytest.approx(1.2)
    put(engine, series(net.level, [1.4] * 20, T0 + 40 * MIN))
    assert _alarms(engine, rid)[0]["cleared_at"] is not None


def test_rate_of_change_falling(engine, net):
    rid = _rule(engine, net.level, kind="rate", threshold=-1.0, window_seconds=600)
    put(engine, series(net.level, [3.0 - 0.05 * k for k in range(15)], T0))
    assert _alarms(engine, rid)[0]["value"] == pytest.approx(-3.0)


def test_no_signal_after_n_minutes_then_cleared_by_a_reading(engine, net):
    rid = _rule(engine, net.level, kind="no_signal", no_signal_minutes=5, severity=2)
    now = dt.datetime.now(dt.UTC)
    put(engine, series(net.level, [1.0], now - dt.timedelta(minutes=10)))
    with engine.begin() as c:
        raised = rules.sweep(c)
        again = rules.sweep(c)
    mine = [a for a in _alarms(engine, rid)]
    assert len(mine) == 1 and mine[0]["kind"] == "no_signal" and mine[0]["id"] in raised
    assert mine[0]["id"] not in again
    with engine.connect() as c:
        assert c.execute(text("SELECT state FROM sensor_state WHERE id = :t"),
                         {"t": net.tower}).scalar() == "no_signal"
    put(engine, series(net.level, [1.1], now))
    assert _alarms(engine, rid)[0]["cleared_at"] is not None


def test_states_of_the_sensor_layer(engine, net):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    warn = _rule(engine, net.level, kind="above", threshold=1.5, severity=3)
    _rule(engine, net.level, kind="above", threshold=2.0, severity=4)

    def state():
        with engine.connect() as c:
            return c.execute(text("SELECT state, last_value FROM sensor_state WHERE id = :t"),
                             {"t": net.tower}).one()

    put(engine, series(net.level, [1.0], now - 3 * MIN))
    assert tuple(state()) == ("normal", 1.0)
    put(engine, series(net.level, [1.7], now - 2 * MIN))
    assert state()[0] == "warning"
    put(engine, series(net.level, [2.4], now - MIN))
    assert state()[0] == "alarm"
    with engine.begin() as c:
        rules.clear(c, _alarms(engine, warn)[0]["id"], actor="op")
    assert state()[0] == "alarm"


def test_flood_mark_opens_a_flood_incident_and_a_second_alarm_joins_it(engine, net):
    with engine.begin() as c:  # other tests' flood incidents at this bridge: closed
        c.execute(text("UPDATE incident SET status = 'closed', close_reason = 'resolved' "
                       "WHERE category = 'flood' AND status <> 'closed'"))
    r1 = _rule(engine, net.level, kind="above", threshold=2.2, severity=4, opens_incident=True,
               name="Flood mark")
    r2 = _rule(engine, net.level, kind="above", threshold=2.5, severity=5, opens_incident=True,
               name="Extreme level")
    put(engine, series(net.level, [2.4], T0))
    (a1,) = _alarms(engine, r1)
    assert a1["incident_id"] is not None
    with engine.connect() as c:
        inc = c.execute(text("SELECT category, status, severity, channel, title, "
                             "ST_X(geom), ST_Y(geom) FROM incident WHERE id = :i"),
                        {"i": a1["incident_id"]}).one()
    assert inc[:4] == ("flood", "reported", 4, "sensor")
    assert "Flood mark" in inc[4] and inc[5:] == pytest.approx((108.2270, 16.0612))
    put(engine, series(net.level, [2.6], T0 + MIN))
    (a2,) = _alarms(engine, r2)
    assert a2["incident_id"] == a1["incident_id"]
    with engine.connect() as c:
        kinds = [r[0] for r in c.execute(text(
            "SELECT kind FROM incident_event WHERE incident_id = :i ORDER BY id"),
            {"i": a1["incident_id"]})]
    assert kinds == ["created", "comment"]


def test_acknowledge_assign_clear(engine, net):
    rid = _rule(engine, net.level, kind="above", threshold=1.0)
    put(engine, series(net.level, [1.5], T0))
    aid = _alarms(engine, rid)[0]["id"]
    with engine.begin() as c:
        a = rules.acknowledge(c, aid, actor="op1")
        assert a["status"] == "acknowledged" and a["acknowledged_by"] == "op1"
        with pytest.raises(Conflict):
            rules.acknowledge(c, aid, actor="op2")
        assert rules.assign(c, aid, "Đội PCCC Hải Châu", actor="op1")["assignee"] == \
            "Đội PCCC Hải Châu"
        a = rules.clear(c, aid, actor="op1", note="checked on site")
        assert a["status"] == "cleared" and "checked on site" in a["cleared_by"]
        with pytest.raises(Conflict):
            rules.clear(c, aid, actor="op1")
        assert a["geometry"]["coordinates"] == pytest.approx([108.2270, 16.0612])


def _one(engine, alarm_id, lang=None):
    with engine.connect() as c:
        return rules.get_alarm(c, alarm_id, lang=lang)


def test_a_crossing_shorter_than_its_duration_is_not_raised(engine, net):
    rid = _rule(engine, net.level, kind="above", threshold=2.0, hold_seconds=300)
    put(engine, series(net.level, [1.0, 2.5, 2.6, 2.7], T0))  # 2 min over, then back
    put(engine, series(net.level, [1.5], T0 + 4 * MIN))
    put(engine, series(net.level, [2.5, 2.5, 2.5], T0 + 5 * MIN))  # 2 min over again
    assert _alarms(engine, rid) == []
    put(engine, series(net.level, [2.5] * 4, T0 + 8 * MIN))  # 6 min over since minute 5
    assert len(_alarms(engine, rid)) == 1


def test_a_value_inside_the_band_does_not_clear_and_clear_after_waits(engine, net):
    rid = _rule(engine, net.level, kind="above", threshold=2.0, clear_threshold=1.5,
                clear_seconds=180)
    put(engine, series(net.level, [1.0, 2.5], T0))
    put(engine, series(net.level, [1.8, 1.9, 1.6], T0 + 2 * MIN))  # inside the band
    assert _alarms(engine, rid)[0]["cleared_at"] is None
    put(engine, series(net.level, [1.2, 1.3], T0 + 5 * MIN))  # under, but only 1 min
    assert _alarms(engine, rid)[0]["cleared_at"] is None
    put(engine, series(net.level, [1.2, 1.2, 1.1], T0 + 7 * MIN))  # under 4 min by minute 9
    assert _alarms(engine, rid)[0]["cleared_at"] is not None


def test_out_of_order_readings_count_by_phenomenon_time(engine, net):
    rid = _rule(engine, net.level, kind="above", threshold=2.0, hold_seconds=180)
    put(engine, series(net.level, [2.5], T0 + 5 * MIN))  # newest first
    put(engine, series(net.level, [1.0], T0))
    assert _alarms(engine, rid) == []  # 1.0 at T0, 2.5 only at minute 5
    put(engine, series(net.level, [2.4, 2.3, 2.2, 2.6], T0 + MIN))  # late: minutes 1-4
    assert len(_alarms(engine, rid)) == 1  # over since minute 1: held 4 min > 3
    put(engine, series(net.level, [0.5], T0 - MIN))  # an old low reading clears nothing
    assert _alarms(engine, rid)[0]["cleared_at"] is None


def test_repeated_crossings_fold_into_one_alarm_with_a_count_and_ack_stays(engine, net):
    rid = _rule(engine, net.level, kind="above", threshold=2.0, clear_threshold=1.0)
    put(engine, series(net.level, [1.0, 2.5], T0))
    aid = _alarms(engine, rid)[0]["id"]
    with engine.begin() as c:
        rules.acknowledge(c, aid, actor="op1")
    for k in range(3):  # back inside the band and over again, three times
        put(engine, series(net.level, [1.5, 2.2 + k / 10], T0 + (2 + 2 * k) * MIN))
    (a,) = _alarms(engine, rid)
    assert a["occurrences"] == 4 and a["value"] == pytest.approx(2.5)
    one = _one(engine, aid)
    assert one["count"] == 4 and one["status"] == "acknowledged"
    assert one["last_seen_at"] > one["raised_at"] or one["last_seen_at"] >= one["raised_at"]
    put(engine, series(net.level, [0.5], T0 + 10 * MIN))  # clears
    put(engine, series(net.level, [2.8], T0 + 11 * MIN))  # a new alarm, not acknowledged
    old, new = _alarms(engine, rid)
    assert old["cleared_at"] is not None and new["cleared_at"] is None
    assert _one(engine, new["id"])["status"] == "open"


def test_update_events_are_throttled(engine, net):
    rid = _rule(engine, net.level, kind="above", threshold=2.0, clear_threshold=1.0)
    put(engine, series(net.level, [2.5], T0))
    aid = _alarms(engine, rid)[0]["id"]
    with engine.connect() as c:
        first = c.execute(text("SELECT notified_at FROM alarm WHERE id = :i"),
                          {"i": aid}).scalar()
    put(engine, series(net.level, [2.6], T0 + MIN))  # worse at once: no new update event
    put(engine, series(net.level, [2.7], T0 + 2 * MIN))
    with engine.connect() as c:
        assert c.execute(text("SELECT notified_at FROM alarm WHERE id = :i"),
                         {"i": aid}).scalar() == first
        c.execute(text("UPDATE alarm SET notified_at = notified_at - interval '10 s' "
                       "WHERE id = :i"), {"i": aid})
        c.commit()
    put(engine, series(net.level, [2.9], T0 + 3 * MIN))
    with engine.connect() as c:
        assert c.execute(text("SELECT notified_at FROM alarm WHERE id = :i"),
                         {"i": aid}).scalar() > first


def test_messages_in_both_languages(engine, net):
    rid = _rule(engine, net.level, kind="above", threshold=2.0,
                name="Flood mark", name_i18n={"vi": "Vượt mức lũ", "en": "Flood mark"})
    put(engine, series(net.level, [2.5], T0))
    aid = _alarms(engine, rid)[0]["id"]
    vi, en = _one(engine, aid, "vi"), _one(engine, aid, "en")
    assert set(vi["message_i18n"]) == {"vi", "en"}
    assert vi["message"] == vi["message_i18n"]["vi"] != en["message"] == vi["message_i18n"]["en"]
    assert vi["rule_name"] == "Vượt mức lũ" and en["rule_name"] == "Flood mark"


@pytest.mark.parametrize("bad", [
    {"kind": "above", "threshold": 2.0, "clear_threshold": 2.5},
    {"kind": "below", "threshold": 2.0, "clear_threshold": 1.5},
    {"kind": "above", "threshold": 2.0, "hold_seconds": -5},
    {"kind": "above", "threshold": 2.0, "clear_seconds": -1},
    {"kind": "above", "threshold": 2.0, "clear_seconds": 1.5},
    {"kind": "rate", "threshold": 1.0, "clear_threshold": 0.5},
    {"kind": "above", "threshold": 2.0, "name_i18n": {"fr": "x"}},
])
def test_nonsense_rules_are_refused(engine, net, bad):
    from twin.errors import InputError

    with engine.begin() as c, pytest.raises(InputError):
        rules.add_rule(c, {"datastream_id": net.level, **bad})


def test_update_rule_validates_against_the_stored_rule(engine, net):
    from twin.errors import InputError

    rid = _rule(engine, net.level, kind="above", threshold=2.0)
    with engine.begin() as c:
        r = rules.update_rule(c, rid, {"clear_threshold": 1.5, "hold_seconds": 60})
        assert (r["clear_threshold"], r["hold_seconds"]) == (1.5, 60)
    with engine.begin() as c, pytest.raises(InputError):
        rules.update_rule(c, rid, {"threshold": 1.0})  # clear 1.5 now above threshold 1.0
    with engine.connect() as c:
        assert rules.list_rules(c, net.level)[-1]["threshold"] == 2.0
