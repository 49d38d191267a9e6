"""User accounts: scrypt-hashed passwords and roles."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from sqlalchemy import Connection, text

from twin.errors import Conflict, InputError

ROLES = ("citizen", "responder", "planner", "admin")
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    salt = base64.b64decode(salt_b64)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def add_user(conn: Connection, username: str, password: str, role: str) -> int:
    """Create a user; :class:`Conflict` if the name is taken."""
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if not username.strip() or len(password) < 8:
        raise InputError("a user needs a name and a password of at least 8 characters")
    exists = conn.execute(
        text("SELECT 1 FROM app_user WHERE username = :u"), {"u": username}
    ).first()
    if exists:
        raise Conflict(f"user {username!r} already exists")
    return int(
        conn.execute(
            text(
                "INSERT INTO app_user (username, password_hash, role) "
                "VALUES (:u, :h, :r) RETURNING id"
            ),
            {"u": username, "h": hash_password(password), "r": role},
        ).scalar_one()
    )


def authenticate(conn: Connection, username: str, password: str) -> str | None:
    """The user's role when the password matches, else None."""
    row = conn.execute(
        text("SELECT password_hash, role FROM app_user WHERE username = :u"), {"u": username}
    ).first()
    if row is None:
        hash_password(password)  # same work either way: no user-enumeration by timing
        return None
    return str(row.role) if verify_password(password, row.password_hash) else None
