"""Bearer tokens (signed JWT, expiring) carrying the user's role, and the check that the
user they name still exists with that role."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass

import jwt
from sqlalchemy import Engine

from twin.settings import Settings
from twin.users import ROLES, role_of

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "role"]


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``role`` is None for anonymous requests."""

    username: str | None = None
    role: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.role is None


class StaleToken(jwt.InvalidTokenError):
    """A well-signed token whose user was removed or now has another role."""


def issue_token(settings: Settings, username: str, role: str) -> tuple[str, int]:
    lifetime = settings.token_minutes * 60
    now = dt.datetime.now(dt.UTC)
    payload = {
        "sub": username,
        "role": role,
        "iat": now,
        "exp": now + dt.timedelta(seconds=lifetime),
    }
    return jwt.encode(payload, settings.signing_key(), algorithm=ALGORITHM), lifetime


def read_token(settings: Settings, token: str) -> Principal:
    """Decode a token signed by us, with ``exp``, ``iat``, a user name and a known role;
    raises ``jwt.InvalidTokenError`` (``ExpiredSignatureError`` when expired). Whether
    the user still holds the role is :class:`UserCheck`'s part."""
    payload = jwt.decode(token, settings.signing_key(), algorithms=[ALGORITHM],
                         options={"require": REQUIRED_CLAIMS})
    sub, role = payload["sub"], payload["role"]
    if not isinstance(sub, str) or not sub:
        raise jwt.InvalidTokenError("token names no user")
    if role not in ROLES:
        raise jwt.InvalidTokenError(f"unknown role {role!r}")
    return Principal(username=sub, role=role)


class UserCheck:
    """Per worker: the current role of users named by tokens, each looked up again
    after ``ttl_s`` seconds (so a removed or demoted user loses access within it)."""

    def __init__(self, engine: Engine, ttl_s: float) -> None:
        self.engine = engine
        self.ttl = ttl_s
        self._seen: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()

    def verify(self, principal: Principal) -> Principal:
        """``principal`` when its user still has its role; raises :class:`StaleToken`."""
        name = principal.username or ""
        now = time.monotonic()
        with self._lock:
            hit = self._seen.get(name)
        if hit is None or now - hit[1] >= self.ttl:
            with self.engine.connect() as conn:
                role = role_of(conn, name)
            with self._lock:
                if len(self._seen) > 10_000:
                    self._seen.clear()
                self._seen[name] = (role, now)
        else:
            role = hit[0]
        if role is None:
            raise StaleToken("the token's user no longer exists")
        if role != principal.role:
            raise StaleToken("the token's user no longer has that role; sign in again")
        return principal
