"""Roles and access levels: one rule, used on every path that reveals data."""

from __future__ import annotations

from typing import Literal

Access = Literal["public", "staff", "restricted"]
ROLES = ("anonymous", "citizen", "responder", "planner", "admin")
STAFF_ROLES = frozenset({"responder", "planner", "admin"})


def can_see(role: str | None, access: str) -> bool:
    """Whether ``role`` (None = anonymous) may see data of the given access level."""
    if access == "public":
        return True
    if access == "staff":
        return role in STAFF_ROLES
    if access == "restricted":
        return role == "admin"
    return False


def is_staff(role: str | None) -> bool:
    return role in STAFF_ROLES
