"""How one SSE stream is written: straight out when the connection takes it, in order
behind a slow write, dropped when the connection has gone."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from server.live import BACKLOG_MAX, Client


class Connection:
    """An ASGI ``send`` whose writes can be made to wait (a paused transport)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.gate: asyncio.Event | None = None
        self.gone = False

    async def send(self, message: dict[str, Any]) -> None:
        if self.gone:
            raise OSError("client disconnected")
        if self.gate is not None:
            await self.gate.wait()
        self.bodies.append(message["body"])


def run(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run`` on a thread of its own: the process may already run an event loop
    (Playwright's, when the browser tests share this worker)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, main).result()


def streaming(conn: Connection) -> Client:
    c = Client(staff=True, send=conn.send)
    c.backlog = None  # past the hello and the replay: writes go straight out
    return c


def test_writes_go_straight_out_without_a_task():
    async def main() -> None:
        conn = Connection()
        c = streaming(conn)
        tasks = len(asyncio.all_tasks())
        assert c.write(b"a") and c.write(b"b")
        assert conn.bodies == [b"a", b"b"] and c.backlog is None
        assert len(asyncio.all_tasks()) == tasks

    run(main())


def test_a_slow_reader_keeps_its_order_and_blocks_no_one():
    async def main() -> None:
        slow, fast = Connection(), Connection()
        slow.gate = asyncio.Event()
        s, f = streaming(slow), streaming(fast)
        for data in (b"1", b"2", b"3"):
            assert s.write(data) and f.write(data)
        assert fast.bodies == [b"1", b"2", b"3"]  # not held up by the slow one
        assert slow.bodies == [] and s.backlog == [b"2", b"3"]
        slow.gate.set()
        for _ in range(10):
            await asyncio.sleep(0)
        assert slow.bodies == [b"1", b"2", b"3"] and s.backlog is None
        assert s.write(b"4") and slow.bodies[-1] == b"4"

    run(main())


def test_a_gone_or_hopeless_client_is_reported():
    async def main() -> None:
        conn = Connection()
        c = streaming(conn)
        conn.gone = True
        assert c.write(b"x") is False
        stuck = Connection()
        stuck.gate = asyncio.Event()
        c = streaming(stuck)
        assert all(c.write(b"y") for _ in range(BACKLOG_MAX + 1))
        assert c.write(b"z") is False  # too far behind: dropped, it will reconnect

    run(main())


def test_replay_then_live_events_without_duplicates():
    async def main() -> None:
        conn = Connection()
        c = Client(staff=True, send=conn.send)  # replaying: live events wait
        assert c.write(b"id: 5\nevent: incident\ndata: {}\n\n")
        assert c.write(b"id: 7\nevent: incident\ndata: {}\n\n")
        assert c.write(b"event: sensor\ndata: {}\n\n")
        await c.flush(skip_upto=5)  # 5 was in the replay
        assert conn.bodies == [b"id: 7\nevent: incident\ndata: {}\n\n",
                               b"event: sensor\ndata: {}\n\n"]
        assert c.backlog is None

    run(main())
