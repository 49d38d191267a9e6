"""OAuth2 password flow: ``POST /auth/token`` → a signed, expiring bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordRequestForm

from server.auth import issue_token
from server.deps import ConnDep, PrincipalDep, SettingsDep
from server.ratelimit import RateLimiter, limiter
from twin.users import authenticate

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token")
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    conn: ConnDep,
    settings: SettingsDep,
    request: Request,
) -> dict[str, object]:
    """Exchange a username and password for a bearer token carrying the user's role.
    Too many failed attempts for a user name, or from an address, answer 429 for a
    minute (password guessing)."""
    by_user, by_address = _failures(request)
    if len(form.username) > 100 or len(form.password) > 1000:
        raise HTTPException(400, "username (≤ 100 characters) or password (≤ 1000) too long")
    user = form.username.lower()
    address = request.client.host if request.client else "?"
    refused = by_user.blocked(user) or by_address.blocked(address)
    if refused:
        raise HTTPException(429, "too many failed sign-ins; retry in a minute",
                            headers={"Retry-After": str(refused.retry_after)})
    role = authenticate(conn, form.username, form.password)
    if role is None:
        by_user.note(user)
        by_address.note(address)
        raise HTTPException(401, "wrong username or password",
                            headers={"WWW-Authenticate": "Bearer"})
    conn.commit()  # a legacy password hash upgraded to argon2id
    access_token, lifetime = issue_token(settings, form.username, role)
    return {"access_token": access_token, "token_type": "bearer", "expires_in": lifetime,
            "role": role}


def _failures(request: Request) -> tuple[RateLimiter, RateLimiter]:
    """Failed sign-ins per user name, and per address (ten times as many: an office
    behind one address has many users); shared by all workers."""
    state = request.app.state
    n = state.settings.login_failures_per_minute
    return limiter(state, "login-user", n), limiter(state, "login-address", 10 * n)


@router.get("/me")
def me(principal: PrincipalDep) -> dict[str, object]:
    """Who the token says the caller is (anonymous without one)."""
    return {"username": principal.username, "role": principal.role or "anonymous"}
