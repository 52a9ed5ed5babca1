"""API tokens: random secrets, shown once, kept only as SHA-256, scoped, expiring, revocable.

A token has 256 bits of entropy, so a fast hash is enough to make a stolen table useless (slow
password hashes exist for guessable secrets); it also makes every request's lookup one indexed
read.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from kaapana.auth.projects import check_name
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import ApiToken, User, utcnow
from kaapana.errors import InvalidInput, NotFound, Unauthorized

TOKEN_PREFIX = "kpt_"
MAX_EXPIRY_DAYS = 3650


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: ``secret`` exists only here, never in the database."""

    token: ApiToken
    secret: str


class Tokens:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)

    def issue(
        self,
        user: User,
        *,
        name: str,
        projects: list[str] | None = None,
        can_write: bool = False,
        expires_in_days: float | None = 90,
    ) -> IssuedToken:
        check_name(name, field="name")
        if expires_in_days is not None and not 0 < expires_in_days <= MAX_EXPIRY_DAYS:
            raise InvalidInput(
                f"'expires_in_days' must be > 0 and <= {MAX_EXPIRY_DAYS}, got {expires_in_days}"
            )
        for project in projects or []:
            check_name(project, field="projects")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = ApiToken(
            user_pk=user.id,
            name=name,
            token_hash=token_hash(secret),
            prefix=secret[: len(TOKEN_PREFIX) + 6],
            projects=sorted(set(projects)) if projects is not None else None,
            can_write=can_write,
            expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
        )
        with write_transaction(self._engine) as session:
            session.add(token)
        return IssuedToken(token, secret)

    def verify(self, secret: str) -> tuple[User, ApiToken]:
        """The active user and live token behind ``secret``; ``Unauthorized`` otherwise."""
        with self._sessions() as session:
            row = session.execute(
                select(User, ApiToken)
                .join(ApiToken, ApiToken.user_pk == User.id)
                .where(ApiToken.token_hash == token_hash(secret))
            ).first()
        if row is None:
            raise Unauthorized("unknown API token")
        user, token = row
        if token.revoked_at is not None:
            raise Unauthorized("this API token was revoked")
        if token.expires_at is not None and token.expires_at <= utcnow():
            raise Unauthorized("this API token has expired")
        if not user.is_active:
            raise Unauthorized("the user of this API token is deactivated")
        return user, token

    def mark_used(self, token_pk: int) -> None:
        with write_transaction(self._engine) as session:
            token = session.get(ApiToken, token_pk)
            if token is not None:
                token.last_used_at = utcnow()

    def list(self, user: User | None = None) -> list[tuple[str, ApiToken]]:
        """(username, token) pairs, of one user or of everyone."""
        statement = (
            select(User.username, ApiToken)
            .join(User, ApiToken.user_pk == User.id)
            .order_by(User.username, ApiToken.id)
        )
        if user is not None:
            statement = statement.where(ApiToken.user_pk == user.id)
        with self._sessions() as session:
            return [(username, token) for username, token in session.execute(statement)]

    def get(self, token_pk: int) -> tuple[str, ApiToken]:
        with self._sessions() as session:
            row = session.execute(
                select(User.username, ApiToken)
                .join(User, ApiToken.user_pk == User.id)
                .where(ApiToken.id == token_pk)
            ).first()
        if row is None:
            raise NotFound(f"no API token with id {token_pk}")
        return row[0], row[1]

    def revoke(self, token_pk: int) -> ApiToken:
        with write_transaction(self._engine) as session:
            token = session.get(ApiToken, token_pk)
            if token is None:
                raise NotFound(f"no API token with id {token_pk}")
            if token.revoked_at is None:
                token.revoked_at = utcnow()
            return token


def is_expired(token: ApiToken, now: datetime | None = None) -> bool:
    return token.expires_at is not None and token.expires_at <= (now or utcnow())


__all__ = ["TOKEN_PREFIX", "IssuedToken", "Tokens", "is_expired", "token_hash"]
