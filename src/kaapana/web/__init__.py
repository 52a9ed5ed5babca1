"""The browser UI: server-rendered Jinja pages plus hand-written ES modules, no build step.

``install_web(app)`` adds the pages, the hashed static files, the security headers and the
login redirect to the FastAPI app that also serves ``/api/v1`` and ``/dicomweb``.
"""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import RedirectResponse, Response

from kaapana.web.assets import StaticAssets
from kaapana.web.contexts import ErrorPage
from kaapana.web.deps import LoginRequired, PageError
from kaapana.web.pages import (
    admin,
    catalog,
    downloads,
    ohif,
    oidc,
    project,
    runs,
    session,
    sites,
    tokens,
    upload,
    viewer,
    workflows,
)
from kaapana.web.rendering import Renderer
from kaapana.web.security import SecurityHeaders, is_ui_path


def install_web(app: FastAPI) -> None:
    """Call after ``install_error_handlers``: page validation errors wrap the API's handler."""
    assets = StaticAssets()
    renderer = Renderer(assets)
    app.state.web_renderer = renderer
    app.add_middleware(SecurityHeaders)

    @app.get("/static/{version}/{path:path}", include_in_schema=False)
    def static(version: str, path: str) -> Response:
        return assets.response(version, path)

    async def login_required(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(exc.login_url, status_code=303)

    async def page_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        page = ErrorPage(layout=None, status=exc.status, message=exc.message)
        return renderer.response(page, status_code=exc.status)

    api_validation = app.exception_handlers[RequestValidationError]

    async def validation_error(request: Request, exc: Exception) -> Response:
        """Bad query parameters of a page get an HTML page; the APIs keep their JSON."""
        if not is_ui_path(request.url.path):
            return await api_validation(request, exc)
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'][1:])}: {error['msg']}"
            for error in exc.errors()
        )
        page = ErrorPage(layout=None, status=400, message=f"invalid request: {problems}")
        return renderer.response(page, status_code=400)

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    for module in (
        session,
        oidc,
        project,
        admin,
        tokens,
        catalog,
        workflows,
        runs,
        viewer,
        upload,
        downloads,
        sites,
        ohif,
    ):
        app.include_router(module.router)


__all__ = ["install_web"]
