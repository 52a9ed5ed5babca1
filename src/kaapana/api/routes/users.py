"""Users (administrators manage them) and a user's own password."""

from typing import Annotated

from fastapi import APIRouter, Body, Path, Request
from pydantic import BaseModel, Field

from kaapana.api.deps import AdminPrincipal, CurrentPrincipal, PlatformDep, client_address
from kaapana.db.models import User
from kaapana.errors import Forbidden, Unauthorized

router = APIRouter(tags=["users"])
Username = Annotated[str, Path(max_length=64)]


class UserPublic(BaseModel):
    username: str
    display_name: str
    is_admin: bool
    is_active: bool
    has_password: bool
    oidc: bool


class UserCreate(BaseModel):
    username: str = Field(max_length=64)
    password: str | None = Field(None, max_length=1024, description="Unset: OIDC-only user.")
    display_name: str = Field("", max_length=255)
    is_admin: bool = False


class UserUpdate(BaseModel):
    password: str | None = Field(None, max_length=1024)
    display_name: str | None = Field(None, max_length=255)
    is_admin: bool | None = None
    is_active: bool | None = None


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


def _public(user: User) -> UserPublic:
    return UserPublic(
        username=user.username,
        display_name=user.display_name,
        is_admin=user.is_admin,
        is_active=user.is_active,
        has_password=user.password_hash is not None,
        oidc=user.oidc_subject is not None,
    )


@router.get("/users", operation_id="list_users")
def list_users(platform: PlatformDep, _admin: AdminPrincipal) -> list[UserPublic]:
    return [_public(u) for u in platform.auth.users.list()]


@router.post("/users", operation_id="create_user", status_code=201)
def create_user(
    request: Request,
    platform: PlatformDep,
    principal: AdminPrincipal,
    body: Annotated[UserCreate, Body()],
) -> UserPublic:
    user = platform.auth.users.create(
        body.username,
        password=body.password,
        is_admin=body.is_admin,
        display_name=body.display_name,
    )
    platform.auth.audit.record(
        "user.create",
        actor=principal.username,
        target=f"user:{user.username}",
        address=client_address(request),
        detail={"is_admin": body.is_admin},
    )
    return _public(user)


@router.get("/users/{username}", operation_id="get_user")
def get_user(username: Username, platform: PlatformDep, _admin: AdminPrincipal) -> UserPublic:
    return _public(platform.auth.users.get(username))


@router.patch("/users/{username}", operation_id="update_user")
def update_user(
    username: Username,
    request: Request,
    platform: PlatformDep,
    principal: AdminPrincipal,
    body: Annotated[UserUpdate, Body()],
) -> UserPublic:
    """Change a user; deactivating one ends its sessions at once."""
    if username == principal.username and (body.is_admin is False or body.is_active is False):
        raise Forbidden("administrators cannot demote or deactivate themselves")
    user = platform.auth.users.update(username, **body.model_dump(exclude_unset=True))
    if body.is_active is False or body.password is not None:
        platform.auth.sessions.close_all(user.id)
    changes = body.model_dump(exclude_unset=True, exclude={"password"})
    platform.auth.audit.record(
        "user.update",
        actor=principal.username,
        target=f"user:{username}",
        address=client_address(request),
        detail={**changes, "password_changed": body.password is not None},
    )
    return _public(user)


@router.delete("/users/{username}", operation_id="delete_user", status_code=204)
def delete_user(
    username: Username, request: Request, platform: PlatformDep, principal: AdminPrincipal
) -> None:
    if username == principal.username:
        raise Forbidden("administrators cannot delete themselves")
    platform.auth.users.delete(username)
    platform.auth.audit.record(
        "user.delete",
        actor=principal.username,
        target=f"user:{username}",
        address=client_address(request),
    )


@router.post("/auth/password", operation_id="change_password", status_code=204, tags=["auth"])
def change_password(
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    body: Annotated[PasswordChange, Body()],
) -> None:
    """Change one's own password; other sessions of the user end."""
    user = platform.auth.users.get(principal.username)
    if not platform.auth.passwords.verify(user.password_hash, body.current_password):
        raise Unauthorized("the current password is wrong")
    platform.auth.users.update(user.username, password=body.new_password)
    platform.auth.sessions.close_all(user.id)
    platform.auth.audit.record(
        "user.password",
        actor=principal.username,
        target=f"user:{user.username}",
        address=client_address(request),
    )
