"""``/metrics`` in the Prometheus text format: HTTP traffic and what the archive holds.

Request counts and latencies are counted in this process (the one that serves HTTP) per route
template, never per concrete path, so a UID in a URL cannot blow up the number of series. The
archive's sizes come from the index at scrape time, so they include what every DICOM receiver
process stored. Readable by administrators (a Prometheus scrape job sends an admin token).
"""

import time
from collections.abc import Iterator

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kaapana.api.deps import AdminPrincipal
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Patient, Series, Study

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _ArchiveCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._sessions() as session:
            counts = {
                "patients": session.scalar(select(func.count()).select_from(Patient)),
                "studies": session.scalar(select(func.count()).select_from(Study)),
                "series": session.scalar(select(func.count()).select_from(Series)),
                "instances": session.scalar(select(func.count()).select_from(Instance)),
            }
            stored_bytes = session.scalar(select(func.coalesce(func.sum(Instance.size), 0)))
        gauge = GaugeMetricFamily(
            "kaapana_archive_objects", "Objects in the index, by level.", labels=["level"]
        )
        for level, count in counts.items():
            gauge.add_metric([level], float(count or 0))
        yield gauge
        yield GaugeMetricFamily(
            "kaapana_archive_stored_bytes", "Bytes of all stored objects.", value=stored_bytes
        )


def _route_template(scope: Scope) -> str:
    """The matched route with its prefixes (FastAPI records included routes without them)."""
    effective = (scope.get("fastapi") or {}).get("effective_route_context")
    template = getattr(effective, "path_format", None)
    return str(template or getattr(scope.get("route"), "path", "unmatched"))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kaapana_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "kaapana_http_request_duration_seconds",
            "Time to the response headers, by method and route template.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def watch(self, engine: Engine) -> None:
        self.registry.register(_ArchiveCollector(engine))

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = _route_template(scope)
        self.latency.labels(scope["method"], route).observe(seconds)
        self.requests.labels(scope["method"], route, str(status)).inc()


class _MetricsMiddleware:
    """Counts each response when its headers go out, the moment its latency ends.

    A plain ASGI middleware, so response messages pass through untouched (Starlette's
    ``BaseHTTPMiddleware`` re-streams every body piece through a queue, and knows only
    ``http.response.body`` messages).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.observe(scope, message["status"], time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, observed)


def install_metrics(app: FastAPI) -> Metrics:
    metrics = Metrics()
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    router = APIRouter()

    @router.get("/metrics", operation_id="metrics", tags=["health"], response_class=Response)
    def scrape(_admin: AdminPrincipal) -> Response:
        """Prometheus metrics (administrators)."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)
    return metrics


__all__ = ["Metrics", "install_metrics"]
