"""A lean MQTT v5 QoS 1 publisher for the S1 benchmark: a gateway that pipelines its
PUBLISH packets (at most ``window`` unacknowledged) and counts the broker's PUBACKs,
without paho's per-message bookkeeping, so the load generator is not what is measured."""

from __future__ import annotations

import socket
import struct
import time


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def connect(host: str, port: int, client_id: str, username: str | None = None,
            password: str | None = None) -> socket.socket:
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # clean start, and the user name and password flags when signing in
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    var = _string("MQTT") + bytes([5, flags]) + struct.pack("!H", 60) + b"\x00"
    body = var + _string(client_id)
    if username is not None:
        body += _string(username)
    if password is not None:
        body += _string(password)
    sock.sendall(b"\x10" + _varint(len(body)) + body)
    head = sock.recv(2)
    if not head or head[0] != 0x20:
        raise ConnectionError("no CONNACK")
    rest = _recv_exact(sock, head[1])
    if rest[1] != 0:
        raise ConnectionError(f"CONNACK reason {rest[1]}")
    return sock


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def publish_qos1(sock: socket.socket, messages: list[tuple[str, bytes]],
                 window: int = 500) -> float:
    """Send every message with QoS 1 and wait for all PUBACKs; returns the seconds."""
    packets = []
    for k, (topic, payload) in enumerate(messages):
        mid = k % 65535 + 1
        body = _string(topic) + struct.pack("!H", mid) + b"\x00" + payload
        packets.append(b"\x32" + _varint(len(body)) + body)
    t = time.perf_counter()
    sent = acked = 0
    pending = b""
    n = len(packets)
    while acked < n:
        if sent < n and sent - acked < window:
            end = min(n, acked + window)
            sock.sendall(b"".join(packets[sent:end]))
            sent = end
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed")
        pending += data
        while len(pending) >= 2:
            ptype, length = pending[0] & 0xF0, pending[1]
            if length & 0x80 or len(pending) < 2 + length:
                break
            if ptype == 0x40:
                acked += 1
            pending = pending[2 + length:]
    return time.perf_counter() - t


def disconnect(sock: socket.socket) -> None:
    try:
        sock.sendall(b"\xe0\x00")
    finally:
        sock.close()
