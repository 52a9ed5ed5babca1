"""The OHIF Viewer at ``/ohif/``, when ``kaapana viewer install-ohif`` has put it in the data dir.

Every file needs a login session like any page. ``app-config.js`` is made per request for the
signed-in user; any other path that is not a file of the release is one of OHIF's own routes
(``/ohif/viewer/<project>?StudyInstanceUIDs=...``) and gets its ``index.html``.
"""

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from kaapana.api.deps import PlatformDep
from kaapana.dicomweb.context import public_root
from kaapana.ohif.app_config import app_config, app_config_script
from kaapana.ohif.install import OhifRelease, installed
from kaapana.platform import Platform
from kaapana.web.deps import PageError, PagePrincipal, projects_first_to_open
from kaapana.web.security import OHIF_CONTENT_SECURITY_POLICY

router = APIRouter(prefix="/ohif", include_in_schema=False)
NOT_INSTALLED = (
    "The OHIF Viewer is not installed on this server. An administrator installs it with "
    "`kaapana viewer install-ohif` (it is fetched from the npm registry into the data folder)."
)
# A missing asset where OHIF keeps its files is a 404: its index.html would only confuse the
# browser. OHIF's routes (``viewer/<project>``) lie outside its folders, dots or not.
_ASSET_SUFFIXES = frozenset(
    {".js", ".mjs", ".css", ".wasm", ".json", ".map", ".png", ".svg", ".ico", ".woff", ".woff2"}
)
_MEDIA_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
}
_HEADERS = {"Content-Security-Policy": OHIF_CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"}


@router.get("/app-config.js")
def config_script(request: Request, platform: PlatformDep, principal: PagePrincipal) -> Response:
    _release_of(platform)
    names = [p.name for p in projects_first_to_open(platform, principal)]
    config = app_config(names, public_root=public_root(request, platform))
    return Response(
        app_config_script(config),
        media_type="text/javascript",
        headers={**_HEADERS, "Cache-Control": "no-store"},
    )


@router.get("")
@router.get("/{path:path}")
def ohif_file(
    request: Request, platform: PlatformDep, _principal: PagePrincipal, path: str = ""
) -> Response:
    release = _release_of(platform)
    dist = release.dist.resolve()
    file = (dist / path).resolve() if "\0" not in path else dist.parent
    if not file.is_relative_to(dist) or (
        not file.is_file() and file.suffix.lower() in _ASSET_SUFFIXES and file.parent.is_dir()
    ):
        raise PageError(404, f"OHIF {release.version} has no file {path[:200]!r}")
    if file == dist or not file.is_file():
        file = dist / "index.html"
    response = FileResponse(file, media_type=_MEDIA_TYPES.get(file.suffix), stat_result=file.stat())
    return _revalidated(request, response)


def _revalidated(request: Request, response: FileResponse) -> Response:
    """Browsers ask again every time (``no-cache``); an unchanged file is a bodiless 304.

    OHIF is some 30 MB of scripts: sending them in full on every visit would be most of its
    start-up time.
    """
    response.headers.update(_HEADERS)
    if request.headers.get("if-none-match") == response.headers["etag"]:
        return Response(status_code=304, headers={**_HEADERS, "ETag": response.headers["etag"]})
    return response


def _release_of(platform: Platform) -> OhifRelease:
    release = installed(platform.settings.resolved_ohif_dir)
    if release is None:
        raise PageError(404, NOT_INSTALLED)
    return release


__all__ = ["router"]
