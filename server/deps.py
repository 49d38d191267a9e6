"""Request dependencies: a pooled connection, the caller's role, the catalogue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request
from sqlalchemy import Connection

from layers.catalog import Catalog
from server.auth import Principal, StaleToken, UserCheck, read_token
from twin.settings import Settings


def get_conn(request: Request) -> Iterator[Connection]:
    with request.app.state.engine.connect() as conn:
        yield conn


def read_engine(request: Request) -> Any:
    """A healthy streaming replica when any is configured, else the primary."""
    replicas = getattr(request.app.state, "replicas", None)
    return replicas.read_engine() if replicas is not None else request.app.state.engine


def get_read_conn(request: Request) -> Iterator[Connection]:
    """A connection for reads that need not see the caller's own last write."""
    with read_engine(request).connect() as conn:
        yield conn


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_catalog(request: Request) -> Catalog:
    return request.app.state.catalog  # type: ignore[no-any-return]


def get_principal(request: Request) -> Principal:
    """Anonymous without an Authorization header; 401 for a bad or expired token, or
    one whose user was removed or holds another role now."""
    header = request.headers.get("authorization")
    if not header:
        return Principal()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "expected 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    return principal_from_token(request, token.strip())


def principal_from_token(request: Request, token: str) -> Principal:
    """The caller a bearer token names, checked against the users table (cached per
    worker for ``TWIN_USER_CACHE_SECONDS``); 401 otherwise."""
    state = request.app.state
    try:
        principal = read_token(state.settings, token)
        check = state.__dict__.get("user_check")
        if check is None:
            check = state.user_check = UserCheck(state.engine,
                                                 state.settings.user_cache_seconds)
        return check.verify(principal)
    except jwt.ExpiredSignatureError:
        raise HTTPException(401, "token expired", headers={"WWW-Authenticate": "Bearer"}) from None
    except StaleToken as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
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
ReadConnDep = Annotated[Connection, Depends(get_read_conn)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
StaffDep = Annotated[Principal, Depends(require_staff)]
