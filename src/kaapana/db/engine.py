"""Engines that behave the same on SQLite and PostgreSQL.

SQLite is the laptop default, so it gets what a multi-process receiver needs: WAL (readers never
block the writer), a busy timeout instead of instant "database is locked", and write transactions
that take the write lock up front (``BEGIN IMMEDIATE``) so a read-then-write never fails halfway.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_IMMEDIATE = "kaapana_immediate"


def _json_serializer(value: Any) -> str:
    """JSON without NUL characters, which PostgreSQL's JSONB refuses (real DICOM pads with NUL)."""
    return json.dumps(value, separators=(",", ":")).replace("\\u0000", "")


def create_engine_for(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite files get WAL and immediate write transactions."""
    kwargs.setdefault("json_serializer", _json_serializer)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, **kwargs)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Session]:
    """A session whose transaction holds the write lock from its first statement (SQLite)."""
    with (
        engine.connect().execution_options(**{_IMMEDIATE: True}) as conn,
        Session(bind=conn, expire_on_commit=False) as session,
        conn.begin(),
    ):
        yield session
        session.flush()


__all__ = ["create_engine_for", "session_factory", "write_transaction"]
