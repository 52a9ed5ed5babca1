"""Every user's own API tokens: list, create (the secret is shown once), revoke."""

from fastapi import APIRouter
from starlette.responses import Response

from kaapana.api.deps import PlatformDep
from kaapana.db.models import ApiToken
from kaapana.web.contexts import TokenRow, TokensPage
from kaapana.web.deps import PagePrincipal, RendererDep, layout_for, visible_projects

router = APIRouter(include_in_schema=False)


def _row(token: ApiToken) -> TokenRow:
    return TokenRow(
        id=token.id,
        name=token.name,
        prefix=token.prefix,
        projects=", ".join(token.projects) if token.projects is not None else "all of yours",
        can_write=token.can_write,
        expires_at=f"{token.expires_at:%Y-%m-%d %H:%M}" if token.expires_at else "never",
        last_used_at=f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never",
        revoked=token.revoked_at is not None,
    )


@router.get("/tokens")
def tokens(platform: PlatformDep, principal: PagePrincipal, renderer: RendererDep) -> Response:
    user = platform.auth.users.get(principal.username)
    page = TokensPage(
        layout=layout_for(platform, principal, section="tokens"),
        rows=[_row(token) for _, token in platform.auth.tokens.list(user)],
        projects=[p.name for p in visible_projects(platform, principal)],
    )
    return renderer.response(page)
