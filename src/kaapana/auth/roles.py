"""Roles and what they permit; the one place that says who may do what to a project's data."""

from enum import StrEnum

from kaapana.errors import InvalidInput


class RoleValues(StrEnum):
    """Project roles (ARCHITECTURE §3); the instance-wide ``admin`` is a user flag, not a role."""

    scientist = "scientist"
    principal_investigator = "principal_investigator"


class PermissionValues(StrEnum):
    read = "read"  # search, retrieve, view
    write = "write"  # add data (STOW-RS, import), run workflows
    manage = "manage"  # members, deletion of data


ROLE_PERMISSIONS: dict[RoleValues, frozenset[PermissionValues]] = {
    RoleValues.scientist: frozenset({PermissionValues.read, PermissionValues.write}),
    RoleValues.principal_investigator: frozenset(PermissionValues),
}


def parse_role(value: str) -> RoleValues:
    try:
        return RoleValues(value)
    except ValueError as exc:
        raise InvalidInput(
            f"'role' must be one of {', '.join(RoleValues)}, got {value[:64]!r}"
        ) from exc


__all__ = ["ROLE_PERMISSIONS", "PermissionValues", "RoleValues", "parse_role"]
