"""The ASGI application factory.

``create_app(settings)`` builds its own ``Platform`` in the lifespan; ``kaapana serve`` passes the
platform it already runs, so the HTTP server and an in-process DICOM receiver share one index
writer. REST lives under ``/api/v1`` (OpenAPI at ``/api/docs``), DICOMweb under ``/dicomweb`` and
``/dicomweb/projects/{project}`` (PS3.18 is its contract, so it stays out of the OpenAPI).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from kaapana import __version__
from kaapana.api.deps import PlatformDep
from kaapana.api.errors import install_error_handlers
from kaapana.api.metrics import install_metrics
from kaapana.api.routes import (
    audit,
    datasets,
    downloads,
    facets,
    federation,
    federation_protocol,
    fields,
    imports,
    nodes,
    projects,
    search,
    series,
    session,
    studies,
    system,
    tags,
    tokens,
    users,
)
from kaapana.api.routes import models as model_routes
from kaapana.api.routes import runs as run_routes
from kaapana.api.routes import workflows as workflow_routes
from kaapana.config import Settings
from kaapana.dicomweb import routes as dicomweb
from kaapana.platform import Platform
from kaapana.web import install_web

API_PREFIX = "/api/v1"


def create_app(settings: Settings, *, platform: Platform | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if platform is not None:
            app.state.platform = platform
            metrics.watch(platform.engine)
            yield
            return
        with Platform(settings) as own:
            app.state.platform = own
            metrics.watch(own.engine)
            yield

    app = FastAPI(
        title="kaapana",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
    )
    install_error_handlers(app)
    metrics = install_metrics(app)

    @app.get("/healthz", operation_id="health", tags=["health"])
    def health(platform: PlatformDep) -> dict[str, str]:
        """Liveness and readiness: answers once the index is reachable."""
        platform.archive.ping()
        return {"status": "ok", "version": __version__}

    api = APIRouter(prefix=API_PREFIX)
    for module in (
        session,
        users,
        projects,
        tokens,
        nodes,
        studies,
        audit,
        series,
        system,
        datasets,
        search,
        facets,
        fields,
        tags,
        workflow_routes,
        run_routes,
        model_routes,
        downloads,
        imports,
        federation,
        federation_protocol,
    ):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(dicomweb.router, prefix="/dicomweb")
    app.include_router(dicomweb.router, prefix="/dicomweb/projects/{project}")
    install_web(app)
    return app


__all__ = ["API_PREFIX", "create_app"]
