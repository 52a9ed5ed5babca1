"""Fixtures shared by the suite: settings and platforms on SQLite and (when present) PostgreSQL."""

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from kaapana.config import Settings
from kaapana.platform import Platform

# Hundreds of users are made here; the Argon2 profile meant for test suites keeps that cheap, also
# in the `kaapana serve` processes the tests start (they inherit the environment).
os.environ.setdefault("KAAPANA_PASSWORD_HASH_PROFILE", "CHEAPEST")

POSTGRES_URL = os.environ.get(
    "KAAPANA_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings in a fresh data dir; keyword arguments override single values."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": tmp_path / "data", "series_quiet_seconds": 0.5}
        values.update(overrides)
        return Settings(**values)

    return make


@contextmanager
def postgres_schema() -> Iterator[str]:
    """The URL of a disposable schema in the test database; skipped (visibly) where PostgreSQL
    is absent."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    schema = f"kp_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.orig}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Run a test once per engine: SQLite (default URL) and PostgreSQL."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def platform(
    make_settings: Callable[..., Settings], database_url: str | None
) -> Iterator[Platform]:
    with Platform(make_settings(database_url=database_url)) as built:
        yield built
