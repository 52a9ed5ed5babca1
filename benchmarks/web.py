"""Web benchmark: the gallery page and its first API calls with 10,000 series in the project.

The issue's target: a gallery page renders in <= 1 s with 10,000 series. The series are
bulk-inserted as ``catalog.py`` does (realistic series-level DICOM JSON, catalog rows built by
the catalog's own code). Then, through the ASGI app in-process with a logged-in session, each
sample requests what the browser needs before the first cards show: the page, then the facets
of the sidebar and the first 40 cards (``POST /api/v1/facets`` and ``POST /api/v1/search``,
which the page sends together). The figure is their sum, sequential, so no overlap of the
browser's parallel requests is counted in its favour. The field list for "Add a filter" (``GET
/api/v1/fields``) is sent at the same time but nothing on the first screen waits for it (unless
the URL filters on a field, whose kind it tells), so it is timed on its own; thumbnails load
lazily afterwards and are not part of it.

Usage: ``python benchmarks/web.py [--series N] [--samples N] [--out FILE]``; JSON to stdout.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from _common import Report, add_output_arguments, latency_summary, tool_versions
from catalog import load
from kaapana.api import create_app
from kaapana.config import Settings
from kaapana.platform import Platform

PASSWORD = "benchmark-password-1"
FACETS = [
    {"field": "Modality", "limit": 20},
    {"field": "BodyPartExamined", "limit": 20},
    {"field": "tags", "limit": 20},
    {"field": "StudyDate", "type": "date_histogram", "interval": "year"},
]


def _timed(call: Any) -> float:
    started = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        problem = f"{response.request.url} answered {response.status_code}: {response.text}"
        raise RuntimeError(problem)
    return elapsed


def measure(client: TestClient, samples: int, series_count: int) -> dict[str, Any]:
    names = ("page", "fields", "facets", "search", "total")
    steps: dict[str, list[float]] = {name: [] for name in names}
    # The first field list is derived from every row of the project's series; the next ones,
    # with the index unchanged, are the one kept.
    first_fields = _timed(lambda: client.get("/api/v1/fields", params={"project": "admin"}))
    for _ in range(samples):
        page = _timed(lambda: client.get("/p/admin/gallery"))
        fields = _timed(lambda: client.get("/api/v1/fields", params={"project": "admin"}))
        facets = _timed(
            lambda: client.post(
                "/api/v1/facets", json={"project": "admin", "query": {}, "facets": FACETS}
            )
        )
        search = _timed(
            lambda: client.post(
                "/api/v1/search", json={"project": "admin", "query": {}, "limit": 40}
            )
        )
        for name, value in zip(steps, (page, fields, facets, search), strict=False):
            steps[name].append(value)
        steps["total"].append(page + facets + search)
    everything = {"project": "admin", "query": {}, "facets": FACETS}
    counted = client.post("/api/v1/facets", json=everything)
    found = counted.json()["counts"]["series"]
    if found != series_count:
        raise RuntimeError(f"the project holds {found} series, expected {series_count}")
    figures: dict[str, Any] = {name: latency_summary(values) for name, values in steps.items()}
    figures["fields_first_ms"] = round(first_fields * 1000, 1)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=20)
    add_output_arguments(parser)
    args = parser.parse_args()
    report = Report(benchmark="web", environment=tool_versions())
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder) / "data", admin_password=PASSWORD)
        with Platform(settings) as platform:
            seconds, _ = load(platform, args.series)
            with TestClient(create_app(settings, platform=platform)) as client:
                login = client.post(
                    "/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
                )
                login.raise_for_status()
                client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
                client.get("/p/admin/gallery")  # warm: templates compiled, caches filled
                figures = measure(client, args.samples, args.series)
    report.cases.append(
        {
            "case": "gallery first screen",
            "engine": "sqlite",
            "series": args.series,
            "load_seconds": round(seconds, 1),
            **figures,
        }
    )
    report.ratio("gallery_first_screen_under_1s", 1.0, figures["total"]["p95_ms"] / 1000, 1.0)
    report.emit(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
