"""The demo network and the simulated rain event: rivers pass the flood marks (alarms,
flood incidents), then recede (alarms clear)."""

from sqlalchemy import text

from twin.sensors import demo, ingest, payloads, simulate


def test_demo_network_then_a_rain_event(engine):
    with engine.begin() as c:
        out = demo.add_sensor_network(c, seed=3)
    if out["created"]:  # (`twin sensors demo`, tested elsewhere, may have made it first)
        assert out["things"] == len(demo.SITES) and out["gateway_key"]
        assert out["observations"] == out["datastreams"] * 37
    with engine.begin() as c:
        assert demo.add_sensor_network(c)["created"] is False
    with engine.connect() as c:
        states = dict(c.execute(text(
            "SELECT s.state, count(*) FROM sensor_state s JOIN thing t ON t.id = s.id "
            "WHERE t.properties ->> 'source' = :m GROUP BY 1"), {"m": demo.MARK}).all())
        private = c.execute(text("SELECT count(*) FROM thing WHERE NOT public AND "
                                 "properties ->> 'source' = :m"), {"m": demo.MARK}).scalar()
    assert states == {"normal": len(demo.SITES)} and private == 4
    with engine.connect() as c:  # rule names in both languages
        names = {tuple(r) for r in c.execute(text(
            "SELECT r.name, r.name_i18n ->> 'en' FROM rule r WHERE r.opens_incident "
            "AND r.name_i18n IS NOT NULL"))}
    assert ("Vượt mức lũ", "Flood mark") in names
    with engine.connect() as c:  # datastream names: Vietnamese, with English beside
        ds = c.execute(text(
            "SELECT d.name, d.properties -> 'name_i18n' FROM datastream d JOIN thing t ON "
            "t.id = d.thing_id WHERE t.properties ->> 'source' = :m AND d.properties ->> 'key' "
            "= 'level' ORDER BY d.id LIMIT 1"), {"m": demo.MARK}).one()
    if out["created"]:
        assert ds[0].startswith("Mực nước – ") and "(" not in ds[0]
        assert ds[1] == {"vi": ds[0], "en": ds[0].replace("Mực nước", "Water level")}

    def send(batch):
        with engine.begin() as c:
            ingest.ingest(c, [payloads.RawObs(d, t, None, None, v) for d, t, v in batch],
                          via="simulator")

    peak = {}

    def watch(line):
        with engine.connect() as c:
            peak.update({r[0]: r[1] for r in c.execute(text(
                "SELECT s.state, count(*) FROM sensor_state s JOIN thing t ON t.id = s.id "
                "WHERE s.kind = 'flood_tower' AND t.properties ->> 'source' = :m GROUP BY 1"),
                {"m": demo.MARK})} if "event 0.55" in line else {})

    n = simulate.run(engine, send, tick_seconds=0, event_ticks=20, duration=120,
                     max_ticks=30, say=watch)
    assert n == 30 * len(simulate.feeds(engine))
    assert peak.get("alarm") == 9  # every flood tower past its flood mark at the peak
    with engine.connect() as c:
        incidents = c.execute(text(
            "SELECT count(DISTINCT a.incident_id) FROM alarm a JOIN rule r ON r.id = a.rule_id "
            "WHERE r.opens_incident")).scalar()
        still = c.execute(text(
            "SELECT count(*) FROM alarm a JOIN thing t ON t.id = a.thing_id WHERE "
            "a.cleared_at IS NULL AND a.kind <> 'no_signal' AND t.kind = 'flood_tower' "
            "AND a.severity >= 4 AND t.properties ->> 'source' = :m"), {"m": demo.MARK}).scalar()
        grouped = c.execute(text(
            "SELECT count(DISTINCT i.id), count(DISTINCT i.ward), count(DISTINCT a.thing_id) "
            "FROM alarm a JOIN rule r ON r.id = a.rule_id JOIN incident i ON i.id = a.incident_id "
            "JOIN thing t ON t.id = a.thing_id WHERE r.opens_incident AND "
            "t.properties ->> 'source' = :m"), {"m": demo.MARK}).one()
        towers = c.execute(text(
            "SELECT count(DISTINCT t.id) FROM incident_event e JOIN thing t ON "
            "t.id = (e.data -> 'tower' ->> 'thing')::bigint WHERE t.properties ->> 'source' = :m "
            "AND e.incident_id IN (SELECT incident_id FROM alarm)"), {"m": demo.MARK}).scalar()
    assert incidents >= 1
    # grouped (one per ward where wards are loaded, else towers within 300 m): fewer
    # incidents than towers, every tower listed on its incident's timeline
    assert grouped[0] < grouped[2], grouped
    assert towers == grouped[2]
    assert still == 0  # the water went down again
    if out["created"]:  # an alarm's message names the datastream in each language
        with engine.connect() as c:
            msg = c.execute(text(
                "SELECT a.message_i18n FROM alarm a JOIN rule r ON r.id = a.rule_id JOIN thing t "
                "ON t.id = a.thing_id WHERE r.kind = 'above' AND t.properties ->> 'source' = :m "
                "ORDER BY a.id DESC LIMIT 1"), {"m": demo.MARK}).scalar()
        assert "· Mực nước: " in msg["vi"] and "trên ngưỡng" in msg["vi"], msg
        assert "· Water level: " in msg["en"] and "(water level)" not in msg["vi"], msg
        thing = msg["vi"].split(" · ")[0]  # the station is named once, not again after
        assert all(m.count(thing) == 1 for m in msg.values()), msg
