"""User accounts: argon2id-hashed passwords (parameters kept in each hash) and roles.

Hashes written before argon2id (``scrypt$salt$digest``, N=2^14 r=8 p=1) still verify
and are replaced by an argon2id hash at the next successful sign-in, as are argon2id
hashes made with weaker parameters than today's."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, text

from twin.errors import Conflict, InputError, NotFound

ROLES = ("citizen", "responder", "planner", "admin")
# argon2-cffi's defaults: RFC 9106's low-memory profile (t=3, m=64 MiB, p=4)
_hasher = PasswordHasher()
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}  # the fixed parameters of old hashes


def hash_password(password: str) -> str:
    """An argon2id hash in PHC form (``$argon2id$v=19$m=…,t=…,p=…$salt$hash``)."""
    return _hasher.hash(password)


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (argon2id, or a legacy scrypt hash)."""
    if stored.startswith("scrypt$"):
        return _verify_scrypt(password, stored)
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True for a legacy scheme or argon2id parameters weaker than today's."""
    if not stored.startswith("$argon2id$"):
        return True
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        _, salt_b64, digest_b64 = stored.split("$")
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except (ValueError, binascii.Error):
        return False
    mine = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)  # type: ignore[arg-type]
    return hmac.compare_digest(mine, digest)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")


def add_user(conn: Connection, username: str, password: str, role: str) -> int:
    """Create a user; :class:`Conflict` if the name is taken."""
    _check_role(role)
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


def remove_user(conn: Connection, username: str) -> None:
    """Delete a user; :class:`NotFound` if there is none. Their tokens stop working
    within ``TWIN_USER_CACHE_SECONDS``."""
    row = conn.execute(text("DELETE FROM app_user WHERE username = :u RETURNING id"),
                       {"u": username}).first()
    if row is None:
        raise NotFound(f"no user {username!r}")


def set_role(conn: Connection, username: str, role: str) -> None:
    """Change a user's role; tokens carrying the old role stop working."""
    _check_role(role)
    row = conn.execute(text("UPDATE app_user SET role = :r WHERE username = :u RETURNING id"),
                       {"u": username, "r": role}).first()
    if row is None:
        raise NotFound(f"no user {username!r}")


def role_of(conn: Connection, username: str) -> str | None:
    """The user's current role, or None when there is no such user."""
    role = conn.execute(text("SELECT role FROM app_user WHERE username = :u"),
                        {"u": username}).scalar()
    return None if role is None else str(role)


def list_users(conn: Connection) -> list[tuple[str, str]]:
    """(name, role) of every user, by name."""
    rows = conn.execute(text("SELECT username, role FROM app_user ORDER BY username"))
    return [(str(r.username), str(r.role)) for r in rows]


def authenticate(conn: Connection, username: str, password: str) -> str | None:
    """The user's role when the password matches, else None. A matching legacy (scrypt)
    or outdated hash is replaced by a fresh argon2id hash on ``conn`` (the caller
    commits)."""
    row = conn.execute(
        text("SELECT id, password_hash, role FROM app_user WHERE username = :u"),
        {"u": username},
    ).first()
    if row is None:
        hash_password(password)  # same work either way: no user-enumeration by timing
        return None
    if not verify_password(password, row.password_hash):
        return None
    if needs_rehash(row.password_hash):
        conn.execute(text("UPDATE app_user SET password_hash = :h WHERE id = :i"),
                     {"h": hash_password(password), "i": row.id})
    return str(row.role)
