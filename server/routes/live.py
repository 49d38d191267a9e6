"""``GET /live``: Server-Sent Events of committed changes, filtered by the caller's role."""

from __future__ import annotations

import asyncio
import os

from fastapi import APIRouter, Request, Response
from starlette.types import Receive, Scope, Send

from layers.access import is_staff
from server.deps import get_principal, principal_from_token
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


@router.get("/live", response_class=Response,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "An endless stream of Server-Sent Events"}})
async def live(request: Request, access_token: str | None = None) -> Response:
    """Incident changes as they are committed (``text/event-stream``), plus sensor
    readings (``event: sensor``; the public gets public things only) and sensor alarms
    (``event: alarm``, staff only). Sensor events carry no id and are not replayed.

    Browsers' EventSource cannot send headers, so the token may also come as
    ``?access_token=``. Reconnecting with ``Last-Event-ID`` replays what was missed."""
    principal = get_principal(request)
    if access_token:
        principal = principal_from_token(request, access_token)
    last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    hello = "retry: 2000\n" + sse(
        None, "hello", {"role": principal.role or "anonymous", "worker": os.getpid()})
    return LiveStream(await hub_for(request), Client(staff=is_staff(principal.role)),
                      hello.encode(), int(last) if last and last.isdigit() else None)


class LiveStream(Response):
    """The SSE response: it hands its connection to the hub, which writes each event to
    every stream from one place (no task wakes per client and event), and holds the
    request open until the client leaves."""

    media_type = "text/event-stream"

    def __init__(self, hub: LiveHub, client: Client, hello: bytes, last_id: int | None):
        super().__init__()
        # set by hand: Response would announce a zero content-length for an empty body
        self.raw_headers = [(b"content-type", b"text/event-stream; charset=utf-8"),
                            (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        self.hub, self.client, self.hello, self.last_id = hub, client, hello, last_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub, client = self.hub, self.client
        await send({"type": "http.response.start", "status": 200,
                    "headers": self.raw_headers})
        client.send = send
        hub.clients.add(client)  # subscribe before replaying: live events wait in backlog
        try:
            await send({"type": "http.response.body", "body": self.hello, "more_body": True})
            sent_upto = 0
            if self.last_id is not None:
                missed = await asyncio.to_thread(hub.replay_since, self.last_id)
                rendered = await asyncio.to_thread(hub.render, missed) if missed else []
                for staff_msg, public_msg in rendered:
                    replayed = staff_msg if client.staff else public_msg
                    if replayed:
                        await send({"type": "http.response.body", "body": replayed.encode(),
                                    "more_body": True})
                sent_upto = missed[-1]["event"] if missed else 0
            await client.flush(skip_upto=sent_upto)  # from here the hub writes directly
            while (await receive())["type"] != "http.disconnect":
                pass
        except OSError:
            pass  # the client went away mid-write
        finally:
            hub.clients.discard(client)
