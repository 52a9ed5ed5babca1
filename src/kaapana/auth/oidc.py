"""Bearer JWTs from an OpenID Connect provider (e.g. a Keycloak realm).

The provider is the truth about who a user is and which roles they hold: each accepted token
provisions its user on first sight and synchronises admin flag and memberships from the roles
claim (``admin`` or ``<project>:<role>``). Keys come from the provider's JWKS and are cached;
an unknown key id triggers one refetch (key rotation).
"""

import logging
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from kaapana.auth.roles import RoleValues
from kaapana.config import Settings
from kaapana.errors import Unauthorized

log = logging.getLogger(__name__)
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]


@dataclass(frozen=True, slots=True)
class OidcIdentity:
    subject: str
    username: str
    display_name: str
    is_admin: bool
    roles: dict[str, RoleValues]  # project name -> role


class OidcVerifier:
    def __init__(self, settings: Settings) -> None:
        if not settings.oidc_issuer:
            raise ValueError("'oidc_issuer' must be set to verify OIDC tokens")
        self._issuer = settings.oidc_issuer
        self._audience = settings.oidc_audience
        self._jwks_url = settings.oidc_jwks_url
        self._username_claim = settings.oidc_username_claim
        self._roles_claim = settings.oidc_roles_claim
        self._keys: jwt.PyJWKClient | None = None

    def _client(self) -> jwt.PyJWKClient:
        if self._keys is None:
            url = self._jwks_url or self._discover()
            self._keys = jwt.PyJWKClient(url, cache_keys=True, lifespan=3600)
        return self._keys

    def _discover(self) -> str:
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            response = httpx.get(url, timeout=10)
            response.raise_for_status()
            return str(response.json()["jwks_uri"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise Unauthorized(f"OIDC provider discovery failed at {url}: {exc}") from exc

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        return token.count(".") == 2

    def verify(self, token: str) -> OidcIdentity:
        try:
            key = self._client().get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=_ALGORITHMS,
                issuer=self._issuer,
                audience=self._audience,
                options={"verify_aud": self._audience is not None, "require": ["exp", "sub"]},
            )
        except jwt.PyJWKClientError as exc:
            raise Unauthorized(f"OIDC token signed with an unknown key: {exc}") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid OIDC token: {exc}") from exc
        username = claims.get(self._username_claim)
        if not isinstance(username, str) or not username:
            raise Unauthorized(f"OIDC token lacks the '{self._username_claim}' claim")
        is_admin, roles = self._roles(claims.get(self._roles_claim))
        return OidcIdentity(
            subject=str(claims["sub"]),
            username=username,
            display_name=str(claims.get("name") or ""),
            is_admin=is_admin,
            roles=roles,
        )

    @staticmethod
    def _roles(claim: Any) -> tuple[bool, dict[str, RoleValues]]:
        values = claim if isinstance(claim, list) else []
        is_admin = False
        roles: dict[str, RoleValues] = {}
        for value in values:
            if value == "admin":
                is_admin = True
                continue
            project, _, role = str(value).partition(":")
            try:
                roles[project] = RoleValues(role)
            except ValueError:
                log.warning("ignoring OIDC role %r: not admin or <project>:<role>", value)
        return is_admin, roles


__all__ = ["OidcIdentity", "OidcVerifier"]
