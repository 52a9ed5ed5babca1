"""Login and logout for browsers; ``/me`` for everyone (who am I, what may I see)."""

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, Field

from kaapana.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    CurrentPrincipal,
    PlatformDep,
    client_address,
)
from kaapana.auth.sessions import OpenedSession

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class ProjectRole(BaseModel):
    project: str
    role: str


class Me(BaseModel):
    username: str
    is_admin: bool
    sees_everything: bool
    can_write: bool
    via: str
    projects: list[ProjectRole]
    csrf_token: str | None = None


def _me(platform: PlatformDep, principal: CurrentPrincipal) -> Me:
    names = {p.id: p.name for p in platform.archive.projects.list()}
    return Me(
        username=principal.username,
        is_admin=principal.is_admin,
        sees_everything=principal.sees_everything,
        can_write=principal.can_write,
        via=principal.via,
        projects=[
            ProjectRole(project=names[pk], role=role.value)
            for pk, role in sorted(principal.roles.items(), key=lambda kv: names.get(kv[0], ""))
            if pk in names
        ],
        csrf_token=principal.csrf_token,
    )


def set_session_cookies(request: Request, response: Response, opened: OpenedSession) -> None:
    """The HttpOnly session cookie and the CSRF cookie that scripts echo in a header."""
    secure = request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE,
        opened.cookie,
        max_age=opened.max_age,
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    response.set_cookie(
        CSRF_COOKIE, opened.csrf_token, max_age=opened.max_age, samesite="strict", secure=secure
    )


@router.post("/login", operation_id="login")
def login(
    request: Request,
    response: Response,
    platform: PlatformDep,
    credentials: Annotated[LoginRequest, Body()],
) -> Me:
    """Open a browser session: sets an HttpOnly session cookie and returns the CSRF token."""
    user, opened = platform.auth.login(
        credentials.username, credentials.password, address=client_address(request)
    )
    set_session_cookies(request, response, opened)
    principal = platform.auth.principal_for(user, via="session", csrf_token=opened.csrf_token)
    return _me(platform, principal)


@router.post("/logout", operation_id="logout", status_code=204)
def logout(
    request: Request, response: Response, platform: PlatformDep, principal: CurrentPrincipal
) -> None:
    """End the browser session (a no-op for token callers)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and principal.via == "session":
        platform.auth.logout(cookie, principal=principal, address=client_address(request))
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)


@router.get("/me", operation_id="me")
def me(platform: PlatformDep, principal: CurrentPrincipal) -> Me:
    """Who the caller is and the projects it may see, with its role in each."""
    return _me(platform, principal)
