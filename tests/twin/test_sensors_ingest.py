"""Observation ingest: idempotent COPY path, partitions, bad batches write nothing."""

import datetime as dt

import pytest
from sqlalchemy import text

from tests.conftest import count
from tests.twin.sensors_net import T0, make_net, put, series
from twin.errors import InputError
from twin.sensors import ingest, payloads


@pytest.fixture(scope="module")
def net(engine):
    return make_net(engine)


def test_batch_then_resend_is_not_a_duplicate(engine, net):
    raw = series(net.level, [0.5 + k * 0.01 for k in range(500)], start=T0)
    first = put(engine, raw)
    assert (first.sent, first.inserted) == (500, 500)
    again = put(engine, raw)
    assert (again.sent, again.inserted, again.duplicates) == (500, 0, 500)
    assert count(engine, "observation", f"datastream_id = {net.level}") == 500
    # ids are answered for resends too (the stored ones)
    with engine.begin() as c:
        res = ingest.ingest(c, raw[:3], via="test", want_ids=True)
    assert res.inserted == 0 and all(isinstance(i, int) for i in res.ids)
    with engine.connect() as c:
        ds = c.execute(text("SELECT last_time, last_value FROM sensor_state "
                            "WHERE datastream_id = :d"), {"d": net.level}).one()
    assert ds[0] == T0 + dt.timedelta(minutes=499) and ds[1] == pytest.approx(0.5 + 4.99)


def test_rows_of_a_new_month_move_out_of_the_default_partition(engine, net):
    far = dt.datetime(2031, 5, 10, tzinfo=dt.UTC)
    put(engine, series(net.count, [1, 2, 3], start=far))
    with engine.begin() as c:
        assert c.execute(text("SELECT count(*) FROM observation_default WHERE "
                              "datastream_id = :d"), {"d": net.count}).scalar() == 3
        assert c.execute(text("SELECT twin_observation_partition('2031-05-01')")).scalar() \
            == "observation_y2031m05"
        assert c.execute(text("SELECT count(*) FROM observation_y2031m05")).scalar() == 3
        assert c.execute(text("SELECT count(*) FROM observation_default WHERE "
                              "datastream_id = :d"), {"d": net.count}).scalar() == 0
    put(engine, series(net.count, [1, 2, 3, 4], start=far))  # resend + one more
    assert count(engine, "observation", f"datastream_id = {net.count}") == 4


@pytest.mark.parametrize("raw, words", [
    (lambda n: series(n.level, [1.0, "high", 2.0]), "result must be a number"),
    (lambda n: series(n.count, [1, 2.5]), "must be an integer"),
    (lambda n: series(n.level, [1.0]) + series(999_999_999, [1.0]), "unknown Datastream"),
    (lambda n: series(n.level, [True]), "got a boolean"),
])
def test_a_bad_reading_rejects_the_whole_batch(engine, net, raw, words):
    before = count(engine, "observation")
    with pytest.raises(InputError, match=words), engine.begin() as c:
        ingest.ingest(c, raw(net), via="test")
    assert count(engine, "observation") == before


def test_create_observations_parsing():
    body = [{"Datastream": {"@iot.id": 3}, "components": ["phenomenonTime", "result",
                                                          "resultTime"],
             "dataArray@iot.count": 2,
             "dataArray": [["2026-01-01T00:00:00Z", 1.5, "2026-01-01T00:00:05Z"],
                           ["2026-01-01T00:00:00Z/2026-01-01T00:10:00Z", 2, None]]}]
    out = payloads.parse_create_observations(body)
    assert [o.result for o in out] == [1.5, 2]
    assert out[1].phenomenon_time_end == dt.datetime(2026, 1, 1, 0, 10, tzinfo=dt.UTC)
    with pytest.raises(InputError, match=r"\[0\].dataArray\[1\] must be a list of 2"):
        payloads.parse_create_observations([{"Datastream": {"@iot.id": 1}, "components": [
            "phenomenonTime", "result"], "dataArray": [["2026-01-01T00:00:00Z", 1], [1]]}])
    with pytest.raises(InputError, match="no UTC offset"):
        payloads.parse_create_observations([{"Datastream": {"@iot.id": 1}, "components": [
            "phenomenonTime", "result"], "dataArray": [["2026-01-01T00:00:00", 1]]}])
    with pytest.raises(InputError, match="unknown colour"):
        payloads.parse_create_observations([{"Datastream": {"@iot.id": 1}, "components": [
            "colour", "result"], "dataArray": []}])
    big = [{"Datastream": {"@iot.id": 1}, "components": ["result"],
            "dataArray": [[1]] * (payloads.MAX_BATCH + 1)}]
    with pytest.raises(payloads.TooLarge, match="exceeds the limit of 50000"):
        payloads.parse_create_observations(big)


def test_lenient_check_keeps_the_good_readings(engine, net):
    raw = series(net.level, [1.0, "x", 3.0], start=T0 + dt.timedelta(days=3))
    raw += series(123_456_789, [1.0])
    with engine.begin() as c:
        rows, _, rejected = ingest.check(c, raw, lenient=True)
    assert len(rows) == 2 and [k for k, _ in rejected] == [1, 3]


def test_private_thing_readings_are_flagged_in_the_notification(engine, net):
    import psycopg

    from twin.sensors.notify import SENSOR_CHANNEL

    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as listen:
        listen.execute(f"LISTEN {SENSOR_CHANNEL}")
        put(engine, series(net.turbidity, [1.0, 7.0], start=T0 + dt.timedelta(days=5)))
        import json

        notes = [json.loads(n.payload) for n in listen.notifies(timeout=2, stop_after=1)]
    assert notes and notes[0]["kind"] == "observation" and notes[0]["n"] == 2
    (obs,) = notes[0]["observations"]
    assert obs["datastream"] == net.turbidity and obs["result"] == 7.0
    assert obs["public"] is False and obs["thing"] == net.plant
