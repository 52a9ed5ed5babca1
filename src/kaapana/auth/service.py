"""``Auth``: the one entry to identity: who is asking (``Principal``) and what happened (audit).

Interfaces hand it what arrived (a password, a cookie, a bearer token) and get a ``Principal``
or an ``Unauthorized``; every login attempt and token use lands in the audit trail.
"""

import logging

from sqlalchemy import Engine

from kaapana.auth.audit import Audit
from kaapana.auth.oidc import OidcIdentity, OidcVerifier
from kaapana.auth.oidc_login import OidcLogin
from kaapana.auth.passwords import Passwords
from kaapana.auth.principal import Principal
from kaapana.auth.projects import ADMIN_PROJECT, Projects
from kaapana.auth.roles import RoleValues
from kaapana.auth.sessions import LoginSessions, OpenedSession
from kaapana.auth.throttle import LoginThrottle
from kaapana.auth.tokens import TOKEN_PREFIX, Tokens
from kaapana.auth.users import Users
from kaapana.config import Settings
from kaapana.db.models import ApiToken, User
from kaapana.errors import Conflict, Unauthorized

log = logging.getLogger(__name__)


class Auth:
    def __init__(self, *, settings: Settings, engine: Engine, projects: Projects) -> None:
        self.projects = projects
        self.passwords = Passwords(settings.password_hash_profile)
        self.users = Users(engine, self.passwords)
        self.tokens = Tokens(engine)
        self.sessions = LoginSessions(engine, hours=settings.session_hours)
        self.audit = Audit(engine)
        self.throttle = LoginThrottle(max_failures=settings.login_max_failures)
        self._oidc = OidcVerifier(settings) if settings.oidc_issuer else None
        self.oidc_login = OidcLogin(settings) if settings.oidc_client_id else None
        self._admin_pk: int | None = None

    def bootstrap(self, admin_password: str | None) -> str | None:
        """First start: the ``admin`` user; returns the generated password to print once."""
        return self.users.bootstrap_admin(admin_password)

    def _check_password(self, username: str, password: str, *, address: str, via: str) -> User:
        self.throttle.check(username=username, address=address)
        user = self.users.find(username)
        if (
            user is None
            or not self.passwords.verify(user.password_hash, password)
            or not user.is_active
        ):
            self.throttle.failed(username=username, address=address)
            self.audit.record(
                "login", actor=username, outcome="failure", address=address, detail={"via": via}
            )
            raise Unauthorized("unknown user or wrong password")
        self.throttle.succeeded(username=username)
        self.users.touch_login(user.id)
        self.audit.record("login", actor=username, address=address, detail={"via": via})
        return user

    def login(self, username: str, password: str, *, address: str) -> tuple[User, OpenedSession]:
        user = self._check_password(username, password, address=address, via="password")
        return user, self.sessions.open(user)

    def login_with_id_token(self, id_token: str, *, address: str) -> tuple[User, OpenedSession]:
        """A browser session for the user of an ID token from the OIDC login flow."""
        if self._oidc is None:
            raise Unauthorized("OIDC is not configured: set 'oidc_issuer'")
        principal = self._from_oidc(self._oidc.verify(id_token), address=address)
        user = self.users.get(principal.username)
        return user, self.sessions.open(user)

    def from_dimse_credentials(self, username: str, passcode: str, *, address: str) -> Principal:
        """DICOM User Identity Negotiation: an API token of ``username``, or the password."""
        if passcode.startswith(TOKEN_PREFIX):
            principal = self.from_bearer(passcode, address=address)
            if principal.username != username:
                raise Unauthorized(f"the token does not belong to {username!r}")
            return principal
        user = self._check_password(username, passcode, address=address, via="dimse")
        return self.principal_for(user, via="dimse")

    def logout(self, cookie: str, *, principal: Principal, address: str) -> None:
        self.sessions.close(cookie)
        self.audit.record("logout", actor=principal.username, address=address)

    def from_session(self, cookie: str) -> Principal | None:
        resolved = self.sessions.resolve(cookie)
        if resolved is None:
            return None
        user, csrf = resolved
        return self.principal_for(user, via="session", csrf_token=csrf)

    def from_bearer(self, credential: str, *, address: str) -> Principal:
        """A principal for an API token, or for an OIDC JWT when a provider is configured."""
        if self._oidc is not None and OidcVerifier.looks_like_jwt(credential):
            return self._from_oidc(self._oidc.verify(credential), address=address)
        try:
            user, token = self.tokens.verify(credential)
        except Unauthorized:
            self.audit.record_access(
                "token.use",
                actor="anonymous",
                target="unknown token",
                outcome="failure",
                address=address,
            )
            raise
        if self.audit.record_access(
            "token.use",
            actor=user.username,
            target=f"token:{token.id}",
            address=address,
            detail={"name": token.name},
        ):
            self.tokens.mark_used(token.id)
        return self.principal_for(user, via="token", token=token)

    def _from_oidc(self, identity: OidcIdentity, *, address: str) -> Principal:
        user = self.users.find(identity.username)
        if user is None:
            try:
                user = self.users.create(
                    identity.username,
                    password=None,
                    display_name=identity.display_name,
                    oidc_subject=identity.subject,
                )
            except Conflict:  # a concurrent first request created it
                user = self.users.get(identity.username)
        elif user.oidc_subject not in (None, identity.subject):
            raise Unauthorized(
                f"user {identity.username!r} is bound to another identity-provider subject"
            )
        if not user.is_active:
            raise Unauthorized(f"user {identity.username!r} is deactivated")
        roles = {}
        for name, role in identity.roles.items():
            project = self.projects.find(name)
            if project is not None:
                roles[project.id] = role
        if user.is_admin != identity.is_admin or self.users.roles_of(user.id) != roles:
            self.users.update(user.username, is_admin=identity.is_admin)
            self.users.replace_roles(user.id, roles)
            user = self.users.get(user.username)
        if self.audit.record_access(
            "login", actor=user.username, target="oidc", address=address, detail={"via": "oidc"}
        ):
            self.users.touch_login(user.id)
        return self.principal_for(user, via="oidc")

    def _admin_project_pk(self) -> int | None:
        """Created once at the first start and never renamed, so looked up once."""
        if self._admin_pk is None:
            admin = self.projects.find(ADMIN_PROJECT)
            self._admin_pk = admin.id if admin else None
        return self._admin_pk

    def principal_for(
        self,
        user: User,
        *,
        via: str,
        token: ApiToken | None = None,
        csrf_token: str | None = None,
    ) -> Principal:
        roles = self.users.roles_of(user.id)
        admin_pk = self._admin_project_pk()
        sees_everything = user.is_admin or admin_pk in roles
        can_write = True
        if token is not None:
            allowed = self.projects.pks_named(token.projects or [])
            if token.projects is not None:
                if user.is_admin:
                    roles = dict.fromkeys(allowed, RoleValues.principal_investigator)
                roles = {pk: role for pk, role in roles.items() if pk in allowed}
                sees_everything = sees_everything and admin_pk in allowed
            can_write = token.can_write
        return Principal(
            username=user.username,
            user_pk=user.id,
            is_admin=user.is_admin,
            roles=roles,
            sees_everything=sees_everything,
            can_write=can_write,
            via=via,
            csrf_token=csrf_token,
            token_pk=token.id if token is not None else None,
        )


__all__ = ["Auth"]
