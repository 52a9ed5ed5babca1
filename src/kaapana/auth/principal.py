"""``Principal``: who is asking, resolved once per request or association, checked everywhere.

A UID of a project the caller cannot see answers 404, never 403, so existence is not leaked;
403 is only for a project the caller sees but may not change.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from kaapana.archive.visibility import ProjectScope
from kaapana.auth.roles import ROLE_PERMISSIONS, PermissionValues, RoleValues
from kaapana.errors import Forbidden, NotFound, Unauthorized


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    ``roles`` maps project pks to the caller's role there, already narrowed to a token's
    projects. ``sees_everything`` (admins and members of the ``admin`` project, unless a token
    narrows them) reads every project. ``can_write`` is False for read-only tokens.
    """

    username: str
    user_pk: int | None = None
    is_admin: bool = False
    roles: Mapping[int, RoleValues] = field(default_factory=dict)
    sees_everything: bool = False
    can_write: bool = True
    via: str = "session"
    csrf_token: str | None = None
    token_pk: int | None = None

    @property
    def scope(self) -> ProjectScope:
        """The projects whose data this caller reads (None: all)."""
        return None if self.sees_everything else frozenset(self.roles)

    def sees(self, project_pk: int) -> bool:
        return self.sees_everything or project_pk in self.roles

    def allows(self, project_pk: int, permission: PermissionValues) -> bool:
        if not self.sees(project_pk):
            return False
        if permission is PermissionValues.read:
            return True
        if not self.can_write:
            return False
        if self.is_admin and (self.sees_everything or project_pk in self.roles):
            return True
        role = self.roles.get(project_pk)
        return role is not None and permission in ROLE_PERMISSIONS[role]

    def require(self, project_pk: int, permission: PermissionValues, *, what: str) -> None:
        """Raise ``NotFound`` for an invisible project, ``Forbidden`` for a missing right."""
        if not self.sees(project_pk):
            raise NotFound(f"{what} not found")
        if not self.allows(project_pk, permission):
            reason = "this token is read-only" if not self.can_write else "your role does not"
            raise Forbidden(f"{permission.value} access to {what} denied: {reason} allow it")

    def require_admin(self) -> None:
        if not (self.is_admin and self.sees_everything):
            raise Forbidden("only an instance administrator may do this")


def require_principal(principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthorized("authentication required: a bearer token or a login session")
    return principal


__all__ = ["Principal", "require_principal"]
