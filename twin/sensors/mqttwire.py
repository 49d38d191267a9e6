"""Many MQTT control packets in one socket write.

paho-mqtt sends each PUBACK and each PUBLISH with its own ``send`` (and wakes its
network thread for each), which costs more than storing the reading. After a batch
commits, the ingester queues all its PUBACKs — and the QoS 0 PUBLISHes of the new
observations — as one write on paho's outgoing queue. Falls back to paho's public API
if its internals ever change.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as mqtt

_PUBACK = 0x40
_PUBLISH = 0x30


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pubacks(mids: Iterable[int]) -> bytes:
    """PUBACKs (success) for these packet ids, back to back."""
    return b"".join(struct.pack("!BBH", _PUBACK, 2, mid) for mid in mids)


def publish_qos0(topic: str, payload: bytes, v5: bool = True) -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + (b"\x00" if v5 else b"") + payload
    return bytes([_PUBLISH]) + _varint(len(body)) + body


def _can_queue(client: mqtt.Client) -> bool:
    return hasattr(client, "_out_packet") and hasattr(client, "_sockpairW")


def send(client: mqtt.Client, data: bytes) -> bool:
    """Queue ``data`` (whole MQTT packets) for paho's network thread; False if paho's
    internals are not as expected (the caller then uses the public API)."""
    if not data:
        return True
    if not _can_queue(client):
        return False
    c: Any = client
    # labelled as a PUBACK: paho runs no publish callbacks for it once written
    c._out_packet.append({"command": _PUBACK, "mid": 0, "qos": 1, "pos": 0,
                          "to_process": len(data), "packet": data, "info": None})
    if c._sockpairW is not None:
        try:
            c._sockpairW.send(b"0")
        except BlockingIOError:
            pass
    c._call_socket_register_write()
    return True


def ack_all(client: mqtt.Client, mids: list[int]) -> None:
    if mids and not send(client, pubacks(mids)):
        for mid in mids:
            client.ack(mid, 1)


def publish_all(client: mqtt.Client, messages: list[tuple[str, bytes]]) -> None:
    if messages and not send(client, b"".join(publish_qos0(t, p) for t, p in messages)):
        for t, p in messages:
            client.publish(t, p, qos=0)


class _BufferedSocket:
    """A socket whose reads come from a 256 KiB buffer: paho reads each packet in
    several tiny ``recv`` calls; ``pending()`` tells its loop that more is buffered (the
    hook it has for TLS sockets), so nothing waits in ``select`` meanwhile."""

    def __init__(self, sock: Any):
        self._sock = sock
        self._buf = bytearray()

    def recv(self, n: int) -> bytes:
        if not self._buf:
            data = self._sock.recv(262_144)
            if not data:
                return b""
            self._buf += data
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def pending(self) -> int:
        return len(self._buf)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class Client(mqtt.Client):
    """paho's client reading through :class:`_BufferedSocket` and draining everything
    buffered per read event (several times faster for streams of small messages).

    With ``on_raw`` set, incoming MQTT v5 PUBLISH packets of QoS 0 and 1 skip paho's
    message objects and topic dispatch: ``on_raw(mid, qos, topic, payload)`` is called
    straight from the decoded packet (acknowledging stays with the caller, as with
    ``manual_ack``)."""

    on_raw: Any = None

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        me: Any = self
        cmd, pkt = me._in_packet["command"], me._in_packet["packet"]
        qos = (cmd & 0x06) >> 1
        if self.on_raw is None or qos == 2 or me._protocol != mqtt.MQTTv5:
            return super()._handle_publish()  # type: ignore[no-any-return]
        n = (pkt[0] << 8) | pkt[1]
        topic = bytes(pkt[2:2 + n]).decode("utf-8", "replace")
        pos, mid = 2 + n, 0
        if qos:
            mid = (pkt[pos] << 8) | pkt[pos + 1]
            pos += 2
        size, mult = 0, 1
        while True:  # the properties' length (a variable byte integer), then skip them
            byte = pkt[pos]
            pos += 1
            size += (byte & 0x7F) * mult
            mult *= 128
            if not byte & 0x80:
                break
        self.on_raw(mid, qos, topic, bytes(pkt[pos + size:]))
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _create_socket(self) -> Any:
        return _BufferedSocket(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        me: Any = self
        sock = me._sock
        while rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS and sock is not None and \
                sock is me._sock and sock.pending() > 0:
            rc = super().loop_read(1)
        return rc
