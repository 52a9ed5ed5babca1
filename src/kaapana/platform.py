"""The composition root: builds every service of one installation from its ``Settings``."""

from types import TracebackType
from typing import Self

from kaapana.archive import Archive, EventBus, SeriesArrived
from kaapana.archive.deletion import finish_removals
from kaapana.auth.service import Auth
from kaapana.catalog import Catalog, Datasets, SeriesDeletion, SeriesMedia
from kaapana.catalog.references import referenced_series_uids
from kaapana.catalog.series_workflow import (
    REINDEX_SERIES,
    SERIES_MEDIA,
    SERIES_MEDIA_WORKFLOW,
    reindex_series_handler,
)
from kaapana.catalog.thumbnails import thumbnail_results
from kaapana.catalog.workflow_actions import (
    ADD_TO_DATASET,
    DELETE_SERIES,
    SET_SERIES_FEATURES,
    TAG_SERIES,
    add_to_dataset_handler,
    delete_series_handler,
    set_series_features_handler,
    tag_series_handler,
)
from kaapana.config import Settings
from kaapana.db import create_engine_for, upgrade
from kaapana.federation import Federation
from kaapana.models import ModelRegistry
from kaapana.models.workflow_actions import MODEL_RESOLVER, REGISTER_MODEL, register_model_handler
from kaapana.storage import FilesystemStore
from kaapana.workflows import Engine


class Platform:
    """Everything a process needs; ``migrate=False`` for helper processes of a running server."""

    def __init__(self, settings: Settings, *, migrate: bool = True) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine_for(settings.resolved_database_url)
        if migrate:
            upgrade(self.engine)
        self.store = FilesystemStore(settings.resolved_storage_dir)
        self.results = FilesystemStore(settings.resolved_results_dir)
        self.events = EventBus()
        self.archive = Archive(
            settings=settings, engine=self.engine, store=self.store, indexes_journals=migrate
        )
        self.auth = Auth(settings=settings, engine=self.engine, projects=self.archive.projects)
        self.catalog = Catalog(engine=self.engine)
        if migrate:
            # The catalog's rows are written by the process that owns the index, once per series.
            self.events.subscribe(SeriesArrived, self.catalog.on_series_arrived)
        self.removal_intents = settings.data_dir / "removals"
        # The files a series removal deletes from result storage with the series.
        self.series_results = thumbnail_results(self.results)
        self.datasets = Datasets(
            engine=self.engine, audit=self.auth.audit, resolve_query=self.catalog.resolve
        )
        self.series_deletion = SeriesDeletion(
            engine=self.engine,
            store=self.store,
            results=self.series_results,
            intents=self.removal_intents,
            audit=self.auth.audit,
            flush=self.archive.flush,
        )
        # Schedules nothing until started (by `kaapana serve`, or the first run created here).
        self.workflows = Engine(
            settings=settings,
            engine=self.engine,
            archive=self.archive,
            results=self.results,
            select_series=self.catalog.resolve,
            matches_query=self.catalog.matches_stored,
            referenced_series=referenced_series_uids,
        )
        self.workflows.actions.register(TAG_SERIES, tag_series_handler(self.catalog))
        self.models = ModelRegistry(engine=self.engine, results=self.results)
        self.workflows.actions.register(REGISTER_MODEL, register_model_handler(self.models))
        self.workflows.resolvers.register(MODEL_RESOLVER, self.models.resolve)
        self.workflows.actions.register(
            ADD_TO_DATASET,
            add_to_dataset_handler(self.engine, self.datasets, self.archive.projects),
        )
        self.workflows.actions.register(
            DELETE_SERIES,
            delete_series_handler(
                self.engine, self.series_deletion, self.auth.users, self.archive.projects
            ),
        )
        self.workflows.actions.register(
            SET_SERIES_FEATURES, set_series_features_handler(self.catalog)
        )
        # The catalog's per-series work: a service workflow, re-indexing on the scheduler side.
        self.workflows.registry.add(SERIES_MEDIA_WORKFLOW, source="builtin")
        self.workflows.actions.register(
            REINDEX_SERIES, reindex_series_handler(self.engine, self.catalog)
        )
        self.events.subscribe(SeriesArrived, self.workflows.triggers.on_series_arrived)
        self.federation = Federation(
            settings=settings,
            engine=self.engine,
            workflows=self.workflows,
            projects=self.archive.projects,
            datasets=self.datasets,
            results=self.results,
            audit=self.auth.audit,
            models=self.models,
        )
        # Set on the first start only: the generated password of `admin`, for the CLI to print.
        self.initial_admin_password: str | None = None
        if migrate:
            self.archive.projects.bootstrap(ae_title=settings.ae_title)
            # Thumbnails, references and validation of every arriving series, in the process
            # that owns the index (so each series is processed once), through the engine.
            self.workflows.triggers.add_system(name=SERIES_MEDIA, workflow=SERIES_MEDIA)
            password = settings.admin_password
            self.initial_admin_password = self.auth.bootstrap(
                password.get_secret_value() if password else None
            )
            self.archive.recover()
            finish_removals(self.engine, self.store, self.removal_intents, self.series_results)

    @property
    def series_media(self) -> SeriesMedia:
        """What the per-series catalog functions need."""
        return SeriesMedia.of(self.settings, self.engine)

    def close(self) -> None:
        self.federation.close()
        self.workflows.close()
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
