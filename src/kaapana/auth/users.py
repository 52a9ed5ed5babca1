"""Local users and their project memberships."""

import builtins
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError

from kaapana.auth.passwords import Passwords
from kaapana.auth.roles import RoleValues
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import Membership, Project, User, utcnow
from kaapana.errors import Conflict, InvalidInput, NotFound

ADMIN_USER = "admin"
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def check_username(value: str) -> str:
    if not _USERNAME.match(value):
        raise InvalidInput(
            "'username' must start with a letter or digit and use only letters, digits, "
            f"'_', '.', '@', '-' (at most 64), got {value[:80]!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class MembershipInfo:
    username: str
    project: str
    role: RoleValues


class Users:
    def __init__(self, engine: Engine, passwords: Passwords) -> None:
        self._engine = engine
        self._passwords = passwords
        self._sessions = session_factory(engine)

    def bootstrap_admin(self, password: str | None) -> str | None:
        """Create ``admin`` when there are no users; returns a generated password, once."""
        with write_transaction(self._engine) as session:
            if session.scalar(select(func.count()).select_from(User)):
                return None
            generated = None if password else secrets.token_urlsafe(18)
            session.add(
                User(
                    username=ADMIN_USER,
                    password_hash=self._passwords.hash(password or generated or ""),
                    is_admin=True,
                    display_name="Administrator",
                )
            )
        return generated

    def create(
        self,
        username: str,
        *,
        password: str | None,
        is_admin: bool = False,
        display_name: str = "",
        oidc_subject: str | None = None,
    ) -> User:
        user = User(
            username=check_username(username),
            password_hash=self._passwords.hash(password) if password is not None else None,
            is_admin=is_admin,
            display_name=display_name[:255],
            oidc_subject=oidc_subject,
        )
        try:
            with write_transaction(self._engine) as session:
                session.add(user)
        except IntegrityError as exc:
            raise Conflict(f"a user named {username!r} exists") from exc
        return user

    def get(self, username: str) -> User:
        with self._sessions() as session:
            user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound(f"no user named {username!r}")
        return user

    def find(self, username: str) -> User | None:
        with self._sessions() as session:
            return session.scalar(select(User).where(User.username == username))

    def by_pk(self, user_pk: int) -> User | None:
        with self._sessions() as session:
            return session.get(User, user_pk)

    def list(self) -> list[User]:
        with self._sessions() as session:
            return list(session.scalars(select(User).order_by(User.username)))

    def update(
        self,
        username: str,
        *,
        password: str | None = None,
        is_admin: bool | None = None,
        is_active: bool | None = None,
        display_name: str | None = None,
    ) -> User:
        with write_transaction(self._engine) as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                raise NotFound(f"no user named {username!r}")
            if password is not None:
                user.password_hash = self._passwords.hash(password)
            if is_admin is not None:
                user.is_admin = is_admin
            if is_active is not None:
                user.is_active = is_active
            if display_name is not None:
                user.display_name = display_name[:255]
            return user

    def touch_login(self, user_pk: int) -> None:
        with write_transaction(self._engine) as session:
            user = session.get(User, user_pk)
            if user is not None:
                user.last_login_at = utcnow()

    def delete(self, username: str) -> None:
        with write_transaction(self._engine) as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                raise NotFound(f"no user named {username!r}")
            session.delete(user)

    def roles_of(self, user_pk: int) -> dict[int, RoleValues]:
        """Project pk -> role."""
        with self._sessions() as session:
            rows = session.execute(
                select(Membership.project_pk, Membership.role).where(Membership.user_pk == user_pk)
            )
            return {int(pk): RoleValues(role) for pk, role in rows}

    def set_role(self, username: str, project: Project, role: RoleValues) -> MembershipInfo:
        """Add ``username`` to ``project`` with ``role``, or change the role of a member."""
        with write_transaction(self._engine) as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                raise NotFound(f"no user named {username!r}")
            membership = session.get(Membership, (user.id, project.id))
            if membership is None:
                session.add(Membership(user_pk=user.id, project_pk=project.id, role=role.value))
            else:
                membership.role = role.value
        return MembershipInfo(username, project.name, role)

    def remove_member(self, username: str, project: Project) -> None:
        with write_transaction(self._engine) as session:
            user = session.scalar(select(User).where(User.username == username))
            result = session.execute(
                delete(Membership).where(
                    Membership.user_pk == (user.id if user else -1),
                    Membership.project_pk == project.id,
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise NotFound(f"{username!r} is not a member of project {project.name!r}")

    def replace_roles(self, user_pk: int, roles: dict[int, RoleValues]) -> None:
        """Make the memberships exactly ``roles`` (identity-provider claims are the truth)."""
        with write_transaction(self._engine) as session:
            session.execute(delete(Membership).where(Membership.user_pk == user_pk))
            session.add_all(
                Membership(user_pk=user_pk, project_pk=pk, role=role.value)
                for pk, role in roles.items()
            )

    def memberships(
        self, *, project: Project | None = None, username: str | None = None
    ) -> builtins.list[MembershipInfo]:
        statement = (
            select(User.username, Project.name, Membership.role)
            .join(User, Membership.user_pk == User.id)
            .join(Project, Membership.project_pk == Project.id)
            .order_by(Project.name, User.username)
        )
        if project is not None:
            statement = statement.where(Membership.project_pk == project.id)
        if username is not None:
            statement = statement.where(User.username == username)
        with self._sessions() as session:
            return [
                MembershipInfo(user, name, RoleValues(role))
                for user, name, role in session.execute(statement)
            ]


__all__ = ["ADMIN_USER", "MembershipInfo", "Users", "check_username"]
