"""Browser login at an OpenID Connect provider: the authorization-code flow with PKCE (RFC 7636).

The provider's endpoints come from its discovery document. ``start`` makes the URL to send the
browser to, with a fresh ``state`` (binds the answer to this browser) and code verifier (binds
the code to this client); ``exchange`` trades the returned code for the ID token, which the
same verifier as for bearer JWTs then checks.
"""

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from kaapana.config import Settings
from kaapana.errors import Unauthorized


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    url: str
    state: str
    code_verifier: str


def code_challenge(verifier: str) -> str:
    """The S256 challenge of a PKCE code verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcLogin:
    def __init__(self, settings: Settings) -> None:
        if not settings.oidc_issuer or not settings.oidc_client_id:
            raise ValueError("'oidc_issuer' and 'oidc_client_id' must be set for OIDC login")
        self._issuer = settings.oidc_issuer.rstrip("/")
        self._client_id = settings.oidc_client_id
        self._secret = settings.oidc_client_secret
        self._scopes = settings.oidc_scopes
        self._endpoints: dict[str, Any] | None = None

    def _endpoint(self, name: str) -> str:
        if self._endpoints is None:
            url = self._issuer + "/.well-known/openid-configuration"
            try:
                response = httpx.get(url, timeout=10)
                response.raise_for_status()
                self._endpoints = dict(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                raise Unauthorized(f"OIDC provider discovery failed at {url}: {exc}") from exc
        value = self._endpoints.get(name)
        if not isinstance(value, str):
            raise Unauthorized(f"the OIDC provider's discovery document lacks {name!r}")
        return value

    def start(self, *, redirect_uri: str) -> AuthorizationRequest:
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._client_id,
                "redirect_uri": redirect_uri,
                "scope": self._scopes,
                "state": state,
                "code_challenge": code_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        endpoint = self._endpoint("authorization_endpoint")
        separator = "&" if "?" in endpoint else "?"
        return AuthorizationRequest(f"{endpoint}{separator}{query}", state, verifier)

    def exchange(self, *, code: str, code_verifier: str, redirect_uri: str) -> str:
        """The ID token for an authorization code; ``Unauthorized`` when the provider refuses."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self._client_id,
            "code_verifier": code_verifier,
        }
        auth = (self._client_id, self._secret.get_secret_value()) if self._secret else None
        try:
            response = httpx.post(
                self._endpoint("token_endpoint"), data=form, auth=auth, timeout=10
            )
        except httpx.HTTPError as exc:
            raise Unauthorized(f"the OIDC token endpoint is unreachable: {exc}") from exc
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code != 200 or not isinstance(answer.get("id_token"), str):
            error = answer.get("error_description") or answer.get("error") or response.status_code
            raise Unauthorized(f"the OIDC provider refused the authorization code: {error}")
        return str(answer["id_token"])


__all__ = ["AuthorizationRequest", "OidcLogin", "code_challenge"]
