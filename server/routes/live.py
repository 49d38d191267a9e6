"""``GET /live``: Server-Sent Events of committed changes, filtered by the caller's role."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import jwt
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from layers.access import is_staff
from server.auth import read_token
from server.deps import get_principal
from server.live import Client, LiveHub, sse

router = APIRouter(tags=["live"])
HEARTBEAT_S = 15.0


async def hub_for(request: Request) -> LiveHub:
    state = request.app.state
    lock = state.__dict__.setdefault("_live_lock", asyncio.Lock())
    async with lock:
        hub = getattr(state, "live_hub", None)
        if hub is None:
            hub = LiveHub(state.settings, state.engine, asyncio.get_running_loop())
            await asyncio.to_thread(hub.start)
            state.live_hub = hub
            beat = asyncio.create_task(hub.heartbeat(HEARTBEAT_S))
            state.closers += [hub.stop, beat.cancel]
    return hub


@router.get("/live")
async def live(request: Request, access_token: str | None = None) -> StreamingResponse:
    """Incident changes as they are committed (``text/event-stream``), plus sensor
    readings (``event: sensor``; the public gets public things only) and sensor alarms
    (``event: alarm``, staff only). Sensor events carry no id and are not replayed.

    Browsers' EventSource cannot send headers, so the token may also come as
    ``?access_token=``. Reconnecting with ``Last-Event-ID`` replays what was missed."""
    principal = get_principal(request)
    if access_token:
        try:
            principal = read_token(request.app.state.settings, access_token)
        except jwt.InvalidTokenError:
            raise HTTPException(401, "invalid or expired token") from None
    staff = is_staff(principal.role)
    hub = await hub_for(request)
    client = Client(staff=staff)
    hub.clients.add(client)  # subscribe before replaying: nothing falls in between
    last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    last_id = int(last) if last and last.isdigit() else None

    async def stream() -> AsyncIterator[str | bytes]:
        sent_upto = 0
        try:
            yield "retry: 2000\n" + sse(
                None, "hello", {"role": principal.role or "anonymous", "worker": os.getpid()}
            )
            if last_id is not None:
                missed = await asyncio.to_thread(hub.replay_since, last_id)
                if missed:
                    for staff_msg, public_msg in await asyncio.to_thread(hub.render, missed):
                        replayed = staff_msg if staff else public_msg
                        if replayed:
                            yield replayed
                    sent_upto = missed[-1]["event"]
            while True:
                # no timer per wait: the hub queues a keep-alive every HEARTBEAT_S, and a
                # write to a closed connection ends this stream
                data = await client.queue.get()
                if sent_upto and data.startswith(b"id: "):
                    eid = int(data[4 : data.index(b"\n")])
                    if eid <= sent_upto:
                        continue  # already replayed
                yield data
        finally:
            hub.clients.discard(client)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
