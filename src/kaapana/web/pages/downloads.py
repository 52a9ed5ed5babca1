"""The gallery's zip download: a plain form post, so the browser saves the stream to disk.

A ``fetch`` would have to hold the whole archive in memory before saving it; a form post is
answered as a download. A form cannot send the ``X-CSRF-Token`` header, so the token comes
as a form field and is checked here against the session.
"""

import hmac
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from kaapana.api.deps import SESSION_COOKIE, PlatformDep, client_address
from kaapana.api.routes.downloads import selection_download
from kaapana.errors import KaapanaError
from kaapana.web.deps import LoginRequired, PageError, page_project
from kaapana.web.pages.project import ProjectName

router = APIRouter(prefix="/p/{project}", include_in_schema=False)
MAX_FORM_BYTES = 4 << 20  # 50,000 UIDs with their separators


@router.post("/download")
async def download(project: ProjectName, request: Request, platform: PlatformDep) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    principal = await run_in_threadpool(platform.auth.from_session, cookie) if cookie else None
    if principal is None:
        raise LoginRequired(f"/p/{project}/gallery")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PageError(413, f"the form has {len(body)} bytes; at most {MAX_FORM_BYTES}")
    form = parse_qs(body.decode("utf-8", "replace"))
    token = form.get("csrf_token", [""])[0]
    if not principal.csrf_token or not hmac.compare_digest(token, principal.csrf_token):
        raise PageError(403, "missing or wrong csrf_token in the download form")
    uids = [uid for field in form.get("series", []) for uid in field.split()]
    found = page_project(platform, principal, project)
    try:
        return await run_in_threadpool(
            selection_download, platform, principal, found, uids, client_address(request)
        )
    except KaapanaError as exc:
        raise PageError(exc.status, str(exc)) from exc
