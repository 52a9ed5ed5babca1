"""Access: projects (and, later, users, roles, tokens and audit)."""

from kaapana.auth.projects import ADMIN_PROJECT, Projects

__all__ = ["ADMIN_PROJECT", "Projects"]
