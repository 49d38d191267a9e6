"""OAuth2 password flow: ``POST /auth/token`` → a signed, expiring bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.security import OAuth2PasswordRequestForm

from server.auth import issue_token
from server.deps import ConnDep, PrincipalDep, SettingsDep
from twin.users import authenticate

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token")
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    conn: ConnDep,
    settings: SettingsDep,
) -> dict[str, object]:
    """Exchange a username and password for a bearer token carrying the user's role."""
    role = authenticate(conn, form.username, form.password)
    if role is None:
        raise HTTPException(401, "wrong username or password",
                            headers={"WWW-Authenticate": "Bearer"})
    access_token, lifetime = issue_token(settings, form.username, role)
    return {"access_token": access_token, "token_type": "bearer", "expires_in": lifetime,
            "role": role}


@router.get("/me")
def me(principal: PrincipalDep) -> dict[str, object]:
    """Who the token says the caller is (anonymous without one)."""
    return {"username": principal.username, "role": principal.role or "anonymous"}
