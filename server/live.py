"""The live channel: the notify bus (``twin/bus.py``: PostgreSQL LISTEN/NOTIFY, or Redis
pub/sub fed by the relay) → this worker's SSE clients.

Every worker process runs one listener thread, so a change committed through any worker
(or any process writing to the database) reaches every client. Event ids are timeline
ids, so a client that reconnects with ``Last-Event-ID`` is replayed what it missed.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from twin.bus import Message, Subscription, bus_for
from twin.incidents import store
from twin.incidents.store import LIVE_CHANNEL
from twin.sensors.notify import SENSOR_CHANNEL
from twin.settings import Settings

log = logging.getLogger("twin.live")
REPLAY_LIMIT = 5000


BACKLOG_MAX = 10_000  # messages held for one slow or replaying client before it is dropped


@dataclass(eq=False)
class Client:
    """One SSE stream, written straight to its connection's ASGI ``send``.

    ``backlog`` is None while writes go straight out; a list while the stream replays
    what it missed or while a write waits for a slow reader, so order is kept.
    """

    staff: bool
    send: Any = None
    backlog: list[bytes] | None = field(default_factory=list)

    def write(self, data: bytes) -> bool:
        """Send ``data`` now if the connection takes it at once (the usual case: one
        transport write, no task); otherwise finish in a task and hold what follows.
        False when the client is gone or hopelessly behind."""
        if self.backlog is not None:
            self.backlog.append(data)
            return len(self.backlog) <= BACKLOG_MAX
        coro = self.send({"type": "http.response.body", "body": data, "more_body": True})
        try:
            waiting = coro.send(None)  # runs until the write is done or must wait
        except StopIteration:
            return True
        except Exception:  # noqa: BLE001 - the connection has gone
            return False
        self.backlog = []  # the reader is slow: the rest queues behind this write
        asyncio.ensure_future(self._finish(coro, waiting))
        return True

    async def _finish(self, coro: Any, waiting: Any) -> None:
        """Drive a write that had to wait to its end, as a task would (it cannot be
        awaited: it is suspended inside its own await), then send what queued behind."""
        try:
            while True:
                if waiting is None:
                    await asyncio.sleep(0)
                else:
                    await waiting  # the future the write is suspended on (a drain)
                try:
                    waiting = coro.send(None)
                except StopIteration:
                    break
            await self.flush()
        except Exception:  # noqa: BLE001 - gone; the stream's own task ends it
            coro.close()
            self.backlog = None

    async def flush(self, skip_upto: int = 0) -> None:
        """Send the backlog (skipping incident events up to ``skip_upto``, already
        replayed), then write straight out again."""
        while self.backlog:
            data = self.backlog.pop(0)
            if skip_upto and data.startswith(b"id: "):
                if int(data[4 : data.index(b"\n")]) <= skip_upto:
                    continue
            await self.send({"type": "http.response.body", "body": data, "more_body": True})
        self.backlog = None


def sse(event_id: int | None, kind: str, data: dict[str, Any]) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, default=str, ensure_ascii=False)}\n\n"


def sensor_messages(msg: dict[str, Any]) -> tuple[str, str | None]:
    """``event: sensor`` for staff (everything) and the public (public things only)."""
    things = msg.get("things") or []
    obs = msg.get("observations") or []
    staff = sse(None, "sensor", {"kind": "observation", "things": things, "observations": obs})
    pub_things = [{k: v for k, v in t.items() if k != "public"} for t in things if t.get("public")]
    pub_obs = [{k: v for k, v in o.items() if k != "public"} for o in obs if o.get("public")]
    public = (sse(None, "sensor", {"kind": "observation", "things": pub_things,
                                   "observations": pub_obs})
              if pub_things or pub_obs else None)
    return staff, public


class LiveHub:
    """Fan-out of committed changes to the SSE clients of this process."""

    def __init__(self, settings: Settings, engine: Engine, loop: asyncio.AbstractEventLoop):
        self.settings, self.engine, self.loop = settings, engine, loop
        self.clients: set[Client] = set()
        self.public_ids: set[int] | None = None  # incidents the public has been shown
        self.warnings: dict[int, Any] | None = None  # current CAP warnings → expiry
        self._stop = threading.Event()
        self.subscription: Subscription | None = None

    def start(self) -> None:
        bus = bus_for(self.settings.url(), self.settings.redis_url)
        self.subscription = bus.subscribe([LIVE_CHANNEL, SENSOR_CHANNEL], self._on_batch,
                                          name="twin-live")
        self.subscription.wait_live(timeout=10)

    def stop(self) -> None:
        self._stop.set()
        if self.subscription is not None:
            self.subscription.stop()

    async def heartbeat(self, every_s: float) -> None:
        """A comment line to every client now and then: keeps proxies from closing idle
        streams and lets a stream notice its client has gone (the write fails)."""
        beat = b": keep-alive\n\n"
        step = min(1.0, every_s)  # warnings that expire are announced within a second
        waited = 0.0
        while not self._stop.is_set():
            await asyncio.sleep(step)
            self._expire_warnings()
            waited += step
            if waited >= every_s:
                waited = 0.0
                self._fan_out_bytes(beat)

    def _expire_warnings(self) -> None:
        """``event: warning`` (removed) to everyone for warnings whose time is up."""
        if not self.warnings:
            return
        now = datetime.datetime.now(datetime.UTC)
        for iid, expires in list(self.warnings.items()):
            if expires is None or expires <= now:
                self.warnings.pop(iid, None)
                self._fan_out_bytes(sse(None, "warning", {"kind": "removed", "id": iid}).encode())

    # -- the listener thread ------------------------------------------------------------
    def _on_batch(self, batch: list[Message]) -> None:
        for channel, payload in batch:
            if channel == SENSOR_CHANNEL:
                self.loop.call_soon_threadsafe(self._on_sensor, payload)
            else:
                self.loop.call_soon_threadsafe(self._on_notify, payload)

    # -- on the event loop ------------------------------------------------------------
    def _on_notify(self, payload: str) -> None:
        try:
            msg = json.loads(payload)
        except ValueError:
            return
        if self.clients:
            asyncio.ensure_future(self._deliver([msg]))

    # -- sensors: readings to everyone (public things only for the public), alarms to staff
    def _on_sensor(self, payload: str) -> None:
        try:
            msg = json.loads(payload)
        except ValueError:
            return
        if not self.clients:
            return
        if msg.get("kind") == "observation":
            asyncio.ensure_future(self._deliver_sensor(msg))
        elif msg.get("kind") == "alarm":
            asyncio.ensure_future(self._deliver_alarm(msg))

    async def _deliver_sensor(self, msg: dict[str, Any]) -> None:
        things = sorted({int(o["thing"]) for o in msg.get("observations") or []})

        def load() -> list[dict[str, Any]]:
            from twin.sensors.values import iso

            with self.engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT id, name, state, last_value, unit, last_time, datastream_id, "
                    "public FROM sensor_state WHERE id = ANY(:t)"), {"t": things})
                return [{"id": r[0], "name": r[1], "state": r[2], "value": r[3], "unit": r[4],
                         "time": iso(r[5]), "datastream": r[6], "public": r[7]} for r in rows]

        msg["things"] = await asyncio.to_thread(load) if things else []
        self._fan_out([sensor_messages(msg)])

    async def _deliver_alarm(self, msg: dict[str, Any]) -> None:
        from twin.sensors.rules import get_alarm

        def load() -> dict[str, Any] | None:
            with self.engine.connect() as conn:
                try:
                    return get_alarm(conn, int(msg["alarm"]))
                except Exception:  # noqa: BLE001 - deleted meanwhile: nothing to show
                    return None

        alarm = await asyncio.to_thread(load)
        if alarm is not None:
            self._fan_out([(sse(None, "alarm", {"action": msg.get("action"), "alarm": alarm}),
                            None)])

    def _fan_out_bytes(self, data: bytes) -> None:
        for c in list(self.clients):
            if not c.write(data):
                self.clients.discard(c)

    def _fan_out(self, rendered: list[tuple[str, str | None]]) -> None:
        for staff_msg, public_msg in rendered:
            staff_b = staff_msg.encode()
            public_b = public_msg.encode() if public_msg is not None else None
            for c in list(self.clients):
                data = staff_b if c.staff else public_b
                if data is not None and not c.write(data):
                    self.clients.discard(c)  # gone or stalled: it will reconnect

    def render(self, msgs: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
        """(staff message, public message or None) per notification; runs in a thread."""
        out: list[tuple[str, str | None]] = []
        with self.engine.connect() as conn:
            if self.public_ids is None:
                self.public_ids = {
                    r[0] for r in conn.execute(text("SELECT id FROM incident_public"))
                }
            if self.warnings is None:
                self.warnings = {int(r[0]): r[1] for r in conn.execute(text(
                    "SELECT id, cap_expires_at FROM incident WHERE cap_published_at IS NOT NULL "
                    "AND cap_expires_at > now() AND status <> 'closed'"))}
            for m in msgs:
                try:
                    row = store.get(conn, int(m["incident"]))
                except Exception:  # noqa: BLE001 - deleted meanwhile: nothing to show
                    continue
                warning = self._warning_change(m["kind"], row)
                if warning is not None:
                    out.append((warning, warning))
                eid = int(m["event"])
                staff_msg = sse(
                    eid,
                    "incident",
                    {"kind": m["kind"], "feature": store.to_feature(row, staff=True)},
                )
                public_msg = None
                if store.is_public(row):
                    self.public_ids.add(row["id"])
                    public_msg = sse(
                        eid,
                        "incident",
                        {"kind": m["kind"], "feature": store.to_feature(row, staff=False)},
                    )
                elif row["id"] in self.public_ids:
                    self.public_ids.discard(row["id"])
                    public_msg = sse(eid, "incident", {"kind": "removed", "id": row["id"]})
                out.append((staff_msg, public_msg))
        return out

    def _warning_change(self, kind: str, row: dict[str, Any]) -> str | None:
        """``event: warning`` for everyone (the public too) when a CAP warning is published
        or cancelled, or its incident closes; pages then refetch /warnings.json."""
        assert self.warnings is not None
        iid = row["id"]
        expires = row.get("cap_expires_at")
        if kind == "published":
            if expires is None or row["status"] == "closed" or (
                    expires <= datetime.datetime.now(datetime.UTC)):
                return None  # replayed after it ended
            self.warnings[iid] = expires
            return sse(None, "warning", {"kind": "published", "id": iid})
        if iid in self.warnings and (kind == "unpublished" or row["status"] == "closed"):
            self.warnings.pop(iid, None)
            return sse(None, "warning", {"kind": "removed", "id": iid})
        return None

    async def _deliver(self, msgs: list[dict[str, Any]]) -> None:
        self._fan_out(await asyncio.to_thread(self.render, msgs))

    def replay_since(self, last_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, incident_id, kind FROM incident_event WHERE id > :i "
                    "ORDER BY id LIMIT :n"
                ),
                {"i": last_id, "n": REPLAY_LIMIT},
            )
            return [{"event": r[0], "incident": r[1], "kind": r[2]} for r in rows]
