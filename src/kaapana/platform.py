"""The composition root: builds every service of one installation from its ``Settings``."""

from types import TracebackType
from typing import Self

from kaapana.archive import Archive, EventBus
from kaapana.config import Settings
from kaapana.db import create_engine_for, upgrade
from kaapana.storage import FilesystemStore


class Platform:
    """Everything a process needs; ``migrate=False`` for helper processes of a running server."""

    def __init__(self, settings: Settings, *, migrate: bool = True) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine_for(settings.resolved_database_url)
        if migrate:
            upgrade(self.engine)
        self.store = FilesystemStore(settings.resolved_storage_dir)
        self.events = EventBus()
        self.archive = Archive(
            settings=settings, engine=self.engine, store=self.store, indexes_journals=migrate
        )
        if migrate:
            self.archive.projects.bootstrap(ae_title=settings.ae_title)
            self.archive.recover()

    def close(self) -> None:
        self.archive.close()
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


__all__ = ["Platform"]
