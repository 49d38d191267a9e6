"""Request dependencies: a pooled connection, the caller's role, the catalogue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request
from sqlalchemy import Connection

from layers.catalog import Catalog
from server.auth import Principal, read_token
from twin.settings import Settings


def get_conn(request: Request) -> Iterator[Connection]:
    with request.app.state.engine.connect() as conn:
        yield conn


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_catalog(request: Request) -> Catalog:
    return request.app.state.catalog  # type: ignore[no-any-return]


def get_principal(request: Request) -> Principal:
    """Anonymous without an Authorization header; 401 for a bad or expired token."""
    header = request.headers.get("authorization")
    if not header:
        return Principal()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "expected 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        return read_token(request.app.state.settings, token.strip())
    except jwt.ExpiredSignatureError:
        raise HTTPException(401, "token expired", headers={"WWW-Authenticate": "Bearer"}) from None
    except jwt.InvalidTokenError:
        raise HTTPException(401, "invalid token", headers={"WWW-Authenticate": "Bearer"}) from None


def require_staff(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    from layers.access import is_staff

    if principal.anonymous:
        raise HTTPException(401, "sign in required", headers={"WWW-Authenticate": "Bearer"})
    if not is_staff(principal.role):
        raise HTTPException(403, "staff only")
    return principal


ConnDep = Annotated[Connection, Depends(get_conn)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
StaffDep = Annotated[Principal, Depends(require_staff)]
