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
    assert a["cleared_at"] is None and a["value"] == 2.7 and a["occurrences"] == 2
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
