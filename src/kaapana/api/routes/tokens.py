"""API tokens: create (the secret is in this one response only), list, revoke."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel, Field

from kaapana.api.deps import CurrentPrincipal, PlatformDep, client_address
from kaapana.db.models import ApiToken
from kaapana.errors import Forbidden, NotFound

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenPublic(BaseModel):
    id: int
    username: str
    name: str
    prefix: str
    projects: list[str] | None
    can_write: bool
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class TokenCreate(BaseModel):
    name: str = Field(max_length=64)
    projects: list[str] | None = Field(
        None, description="Projects the token is limited to; null: all of the user's."
    )
    can_write: bool = Field(False, description="Allow storing and changing data.")
    expires_in_days: float | None = Field(90, description="null: never expires.")


class TokenCreated(TokenPublic):
    token: str = Field(description="The secret; shown only in this response.")


def _public(username: str, token: ApiToken) -> TokenPublic:
    return TokenPublic(
        id=token.id,
        username=username,
        name=token.name,
        prefix=token.prefix,
        projects=token.projects,
        can_write=token.can_write,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
        created_at=token.created_at,
    )


@router.get("", operation_id="list_tokens")
def list_tokens(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    all_users: Annotated[bool, Query(alias="all", description="Every user's (admins).")] = False,
) -> list[TokenPublic]:
    if all_users:
        principal.require_admin()
        return [_public(u, t) for u, t in platform.auth.tokens.list()]
    user = platform.auth.users.get(principal.username)
    return [_public(u, t) for u, t in platform.auth.tokens.list(user)]


@router.post("", operation_id="create_token", status_code=201)
def create_token(
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    body: Annotated[TokenCreate, Body()],
) -> TokenCreated:
    """A token for the caller; a token-authenticated caller cannot widen its own scope."""
    if principal.token_pk is not None:
        _, current = platform.auth.tokens.get(principal.token_pk)
        if body.can_write and not current.can_write:
            raise Forbidden("a read-only token cannot create a writing token")
        if current.projects is not None and (
            body.projects is None or not set(body.projects) <= set(current.projects)
        ):
            raise Forbidden("a project-scoped token can only create tokens within its projects")
    user = platform.auth.users.get(principal.username)
    issued = platform.auth.tokens.issue(
        user,
        name=body.name,
        projects=body.projects,
        can_write=body.can_write,
        expires_in_days=body.expires_in_days,
    )
    platform.auth.audit.record(
        "token.create",
        actor=principal.username,
        target=f"token:{issued.token.id}",
        address=client_address(request),
        detail={"name": body.name, "projects": body.projects, "can_write": body.can_write},
    )
    return TokenCreated(**_public(user.username, issued.token).model_dump(), token=issued.secret)


@router.delete("/{token_id}", operation_id="revoke_token", status_code=204)
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=2**62)],
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
) -> None:
    """Revoke one of one's tokens (admins: anyone's)."""
    owner, _token = platform.auth.tokens.get(token_id)
    if owner != principal.username and not principal.is_admin:
        raise NotFound(f"no API token with id {token_id}")
    platform.auth.tokens.revoke(token_id)
    platform.auth.audit.record(
        "token.revoke",
        actor=principal.username,
        target=f"token:{token_id}",
        address=client_address(request),
    )
