"""The ASGI application factory.

``create_app(settings)`` builds its own ``Platform`` in the lifespan; ``kaapana serve`` passes the
platform it already runs, so the HTTP server and an in-process DICOM receiver share one index
writer.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from kaapana import __version__
from kaapana.archive.browse import StudySummary, list_studies
from kaapana.config import Settings
from kaapana.errors import KaapanaError
from kaapana.platform import Platform


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(_platform)]


def create_app(settings: Settings, *, platform: Platform | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if platform is not None:
            app.state.platform = platform
            yield
            return
        with Platform(settings) as own:
            app.state.platform = own
            yield

    app = FastAPI(
        title="kaapana",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
    )

    @app.exception_handler(KaapanaError)
    async def _kaapana_error(_request: Request, exc: KaapanaError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status)

    @app.get("/healthz", operation_id="health")
    def health(platform: PlatformDep) -> dict[str, str]:
        """Liveness and readiness: answers once the index is reachable."""
        platform.archive.ping()
        return {"status": "ok", "version": __version__}

    @app.get("/api/v1/studies", operation_id="list_studies")
    def studies(
        platform: PlatformDep,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[StudySummary]:
        """Studies in the archive, newest first (the full REST API is built on the same index)."""
        return list_studies(platform.engine, limit=limit, offset=offset)

    return app


__all__ = ["create_app"]
