"""Bearer tokens (signed JWT, expiring) carrying the user's role."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import jwt

from twin.settings import Settings

ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``role`` is None for anonymous requests."""

    username: str | None = None
    role: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.role is None


def issue_token(settings: Settings, username: str, role: str) -> tuple[str, int]:
    lifetime = settings.token_minutes * 60
    now = dt.datetime.now(dt.UTC)
    payload = {
        "sub": username,
        "role": role,
        "iat": now,
        "exp": now + dt.timedelta(seconds=lifetime),
    }
    return jwt.encode(payload, settings.secret_key, algorithm=ALGORITHM), lifetime


def read_token(settings: Settings, token: str) -> Principal:
    """Decode a token; raises ``jwt.InvalidTokenError`` when bad or expired."""
    payload = jwt.decode(token, settings.secret_key, algorithms=[ALGORITHM])
    return Principal(username=payload.get("sub"), role=payload.get("role"))
