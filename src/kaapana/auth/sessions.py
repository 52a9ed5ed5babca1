"""Browser login sessions, kept server-side so logout and deactivation end them at once.

The cookie carries a random id; the table holds its SHA-256 and a CSRF token that the browser
must echo in ``X-CSRF-Token`` on every state-changing request.
"""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, delete, select

from kaapana.auth.tokens import token_hash
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import LoginSession, User, utcnow


@dataclass(frozen=True, slots=True)
class OpenedSession:
    cookie: str
    csrf_token: str
    max_age: int


class LoginSessions:
    def __init__(self, engine: Engine, *, hours: float) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self._lifetime = timedelta(hours=hours)

    def open(self, user: User) -> OpenedSession:
        cookie = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        now = utcnow()
        with write_transaction(self._engine) as session:
            session.execute(delete(LoginSession).where(LoginSession.expires_at <= now))
            session.add(
                LoginSession(
                    id_hash=token_hash(cookie),
                    user_pk=user.id,
                    csrf_token=csrf,
                    expires_at=now + self._lifetime,
                )
            )
        return OpenedSession(cookie, csrf, int(self._lifetime.total_seconds()))

    def resolve(self, cookie: str) -> tuple[User, str] | None:
        """The active user and CSRF token of a live session, or None."""
        with self._sessions() as session:
            row = session.execute(
                select(User, LoginSession.csrf_token)
                .join(LoginSession, LoginSession.user_pk == User.id)
                .where(
                    LoginSession.id_hash == token_hash(cookie), LoginSession.expires_at > utcnow()
                )
            ).first()
        if row is None or not row[0].is_active:
            return None
        return row[0], row[1]

    def close(self, cookie: str) -> None:
        with write_transaction(self._engine) as session:
            session.execute(delete(LoginSession).where(LoginSession.id_hash == token_hash(cookie)))

    def close_all(self, user_pk: int) -> None:
        with write_transaction(self._engine) as session:
            session.execute(delete(LoginSession).where(LoginSession.user_pk == user_pk))


__all__ = ["LoginSessions", "OpenedSession"]
