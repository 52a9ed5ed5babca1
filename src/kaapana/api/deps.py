"""What every route depends on: the platform and who is asking.

Credentials, strongest first: ``Authorization: Bearer`` (API token or OIDC JWT), ``Authorization:
Basic`` with an API token as the password (for DICOMweb peers that only speak Basic, such as
Orthanc), then the session cookie. A cookie-authenticated request that changes state must carry
the session's CSRF token in ``X-CSRF-Token``; bearer requests need none (browsers never attach
them on their own).
"""

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Request

from kaapana.auth.principal import Principal, require_principal
from kaapana.errors import Forbidden, Unauthorized
from kaapana.platform import Platform

SESSION_COOKIE = "kaapana_session"
CSRF_COOKIE = "kaapana_csrf"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _basic_token(credential: str) -> str:
    try:
        decoded = base64.b64decode(credential, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Unauthorized("malformed Basic credentials") from exc
    _username, _, secret = decoded.partition(":")
    return secret


def _resolve(request: Request, platform: Platform) -> Principal | None:
    address = client_address(request)
    header = request.headers.get("authorization")
    if header:
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        if not credential:
            raise Unauthorized("empty credentials in the Authorization header")
        if scheme.lower() == "bearer":
            return platform.auth.from_bearer(credential, address=address)
        if scheme.lower() == "basic":
            return platform.auth.from_bearer(_basic_token(credential), address=address)
        raise Unauthorized(f"unsupported authorization scheme {scheme[:16]!r}; use Bearer")
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    principal = platform.auth.from_session(cookie)
    if principal is None:
        raise Unauthorized("the login session has expired; log in again")
    if request.method not in _SAFE_METHODS and request.headers.get(CSRF_HEADER) != (
        principal.csrf_token
    ):
        raise Forbidden(f"missing or wrong {CSRF_HEADER} header for a cookie-authenticated request")
    return principal


def optional_principal(request: Request, platform: PlatformDep) -> Principal | None:
    if not hasattr(request.state, "principal"):
        request.state.principal = _resolve(request, platform)
    principal: Principal | None = request.state.principal
    return principal


def current_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    return require_principal(principal)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]


def admin_principal(principal: CurrentPrincipal) -> Principal:
    principal.require_admin()
    return principal


AdminPrincipal = Annotated[Principal, Depends(admin_principal)]


__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "AdminPrincipal",
    "CurrentPrincipal",
    "OptionalPrincipal",
    "PlatformDep",
    "client_address",
    "get_platform",
]
