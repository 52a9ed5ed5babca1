"""OIDC login for browsers: send the browser to the provider, take the code back, open a session.

Between the two legs the browser holds ``state`` and the PKCE verifier in a short-lived HttpOnly
cookie (SameSite=Lax, so it comes back on the provider's top-level redirect); a callback whose
``state`` differs from the cookie's is refused, so nobody can log a browser into their account.
"""

import base64
import json
import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from kaapana.api.deps import PlatformDep, client_address
from kaapana.api.routes.session import set_session_cookies
from kaapana.auth.oidc_login import OidcLogin
from kaapana.errors import KaapanaError
from kaapana.platform import Platform
from kaapana.web.deps import PageError
from kaapana.web.security import safe_next

router = APIRouter(prefix="/auth/oidc", include_in_schema=False)
FLOW_COOKIE = "kaapana_oidc"
_FLOW_SECONDS = 600
Param = Annotated[str | None, Query(max_length=4096)]


def _login(platform: Platform) -> OidcLogin:
    if platform.auth.oidc_login is None:
        raise PageError(404, "OIDC login is not configured")
    return platform.auth.oidc_login


def _redirect_uri(request: Request, platform: Platform) -> str:
    base = platform.settings.public_url or str(request.base_url)
    return base.rstrip("/") + "/auth/oidc/callback"


def _encode(values: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


def _decode(cookie: str | None) -> dict[str, str]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cookie or ""))
    except ValueError as exc:
        raise PageError(400, "the OIDC login expired or was started elsewhere; try again") from exc
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise PageError(400, "the OIDC login expired or was started elsewhere; try again")
    return values


@router.get("/login")
def start(
    request: Request,
    platform: PlatformDep,
    next_url: Annotated[str | None, Query(alias="next", max_length=2048)] = None,
) -> Response:
    try:
        flow = _login(platform).start(redirect_uri=_redirect_uri(request, platform))
    except KaapanaError as exc:
        raise PageError(exc.status, str(exc)) from exc
    response = RedirectResponse(flow.url, status_code=303)
    response.set_cookie(
        FLOW_COOKIE,
        _encode({"state": flow.state, "verifier": flow.code_verifier, "next": safe_next(next_url)}),
        max_age=_FLOW_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/auth/oidc",
    )
    return response


@router.get("/callback")
def callback(
    request: Request,
    platform: PlatformDep,
    code: Param = None,
    state: Param = None,
    error: Param = None,
    error_description: Param = None,
) -> Response:
    if error:
        raise PageError(401, f"the OIDC provider refused the login: {error_description or error}")
    flow = _decode(request.cookies.get(FLOW_COOKIE))
    if not code or not state or not secrets.compare_digest(state, flow.get("state", "")):
        raise PageError(400, "the OIDC login answer does not match this browser; try again")
    try:
        id_token = _login(platform).exchange(
            code=code,
            code_verifier=flow.get("verifier", ""),
            redirect_uri=_redirect_uri(request, platform),
        )
        _user, opened = platform.auth.login_with_id_token(id_token, address=client_address(request))
    except KaapanaError as exc:
        raise PageError(exc.status, str(exc)) from exc
    response = RedirectResponse(safe_next(flow.get("next")), status_code=303)
    set_session_cookies(request, response, opened)
    response.delete_cookie(FLOW_COOKIE, path="/auth/oidc")
    return response
