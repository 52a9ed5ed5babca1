"""``Catalog``: cohort search over the archive's index, one project at a time.

Every method takes the project's pk and sees only the series linked to it (``series_projects``);
checking that the caller may read or write the project is the interface's job, through its
``Principal``. The attribute rows it searches are built by ``reindex`` and, as data arrives, by
``on_series_arrived``.
"""

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import Session

from kaapana.archive.events import SeriesArrived
from kaapana.catalog import discovery, facets, indexing, tags
from kaapana.catalog import features as features_module
from kaapana.catalog import search as searching
from kaapana.catalog.facets import Facet, FacetCounter, FacetSpec
from kaapana.catalog.query import CatalogQuery, parse_query
from kaapana.catalog.summary import SeriesSummary, summarize
from kaapana.db.engine import write_transaction
from kaapana.db.models import Series, SeriesProject
from kaapana.errors import InvalidInput

log = logging.getLogger(__name__)


class Catalog:
    def __init__(self, *, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._field_lists = discovery.FieldLists()

    def select_series(self, *, project_pk: int, query: CatalogQuery) -> Select[tuple[int]]:
        """A select of the matching ``series.id`` of the project, to use as a subquery."""
        with Session(self._engine) as session:
            return searching.select_series(
                project_pk=project_pk, query=query, dialect=self._dialect, session=session
            )

    def matches(self, *, project_pk: int, series_pk: int, query: CatalogQuery) -> bool:
        """Whether one series of the project matches ``query`` (for workflow triggers)."""
        statement = self.select_series(project_pk=project_pk, query=query).where(
            SeriesProject.series_pk == series_pk
        )
        with Session(self._engine) as session:
            return session.scalar(statement.limit(1)) is not None

    def resolve(self, project_pk: int, query: Mapping[str, Any]) -> Select[tuple[int]]:
        """``select_series`` for a query as stored (JSON): datasets and workflow runs keep it so."""
        return self.select_series(project_pk=project_pk, query=parse_query(dict(query)))

    def matches_stored(self, project_pk: int, series_pk: int, query: Mapping[str, Any]) -> bool:
        """``matches`` for a stored query (workflow trigger rules)."""
        return self.matches(
            project_pk=project_pk, series_pk=series_pk, query=parse_query(dict(query))
        )

    def search(
        self, *, project_pk: int, query: CatalogQuery, limit: int = 50, cursor: str | None = None
    ) -> searching.SearchPage:
        """One page of matching series in the query's sort order; ``next_cursor`` continues."""
        with Session(self._engine) as session:
            return searching.search(
                session,
                project_pk=project_pk,
                query=query,
                dialect=self._dialect,
                limit=limit,
                cursor=cursor,
            )

    def facets(
        self, *, project_pk: int, query: CatalogQuery, specs: Sequence[FacetSpec]
    ) -> list[Facet]:
        """Counts, histograms and date histograms over the series matching ``query``."""
        if len(specs) > facets.MAX_FACETS:
            raise InvalidInput(f"facets: at most {facets.MAX_FACETS} per request, got {len(specs)}")
        with Session(self._engine) as session:
            matching = searching.select_series(
                project_pk=project_pk, query=query, dialect=self._dialect, session=session
            )
            with facets.matching_series(session, matching):
                counter = FacetCounter(session, project_pk=project_pk)
                return [counter.facet(spec) for spec in specs]

    def summary(self, *, project_pk: int, query: CatalogQuery) -> SeriesSummary:
        """Patients, studies, series, instances and modalities of the matching series."""
        with Session(self._engine) as session:
            matching = searching.select_series(
                project_pk=project_pk, query=query, dialect=self._dialect, session=session
            )
            return summarize(session, matching)

    def fields(self, *, project_pk: int, prefix: str = "") -> list[discovery.FieldInfo]:
        """The fields the project's series have, with kind, counts and example values."""
        with Session(self._engine) as session:
            return discovery.fields(
                session, project_pk=project_pk, prefix=prefix, lists=self._field_lists
            )

    def values(
        self, *, project_pk: int, field: str, prefix: str = "", limit: int = 20
    ) -> list[discovery.ValueCount]:
        """The most frequent values of one field (autocomplete)."""
        with Session(self._engine) as session:
            return discovery.values(
                session, project_pk=project_pk, field=field, prefix=prefix, limit=limit
            )

    def tag(
        self,
        *,
        project_pk: int,
        series_instance_uids: Sequence[str],
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> tags.TagChange:
        """Add and remove tags on many series of the project at once (all or nothing)."""
        with write_transaction(self._engine) as session:
            return tags.change_tags(
                session,
                project_pk=project_pk,
                series_instance_uids=series_instance_uids,
                add=add,
                remove=remove,
            )

    def tags(self, *, project_pk: int) -> list[tags.TagCount]:
        """The project's tags with the number of series carrying each, most used first."""
        with Session(self._engine) as session:
            return tags.tag_counts(session, project_pk=project_pk)

    def set_features(
        self,
        *,
        project_pk: int,
        series_instance_uid: str,
        source: str,
        features: Mapping[str, object],
    ) -> int:
        """Replace a series' features of ``source`` and index them as fields
        ``<source>.<name>``; returns how many were stored."""
        checked = features_module.checked_features(source, features)
        with write_transaction(self._engine) as session:
            series_pk = features_module.replace_features(
                session,
                series_instance_uid=series_instance_uid,
                projects={project_pk},
                source=source,
                features=checked,
            )
        indexing.index_series(self._engine, [series_pk])
        return len(checked)

    def reindex(self, series_pks: Sequence[int] | None = None) -> int:
        """Rebuild the search rows of ``series_pks`` (default: every series); returns the count."""
        pks = indexing.all_series_pks(self._engine) if series_pks is None else list(series_pks)
        return indexing.index_series(self._engine, pks)

    def index_uids(self, series_instance_uids: Collection[str]) -> int:
        """Index the series of these UIDs (those still there); returns how many were indexed.

        For the processes that stored them, at once: an import makes its series searchable
        before it exits, not only when a server announces them as arrived.
        """
        uids = list(series_instance_uids)
        pks: list[int] = []
        with Session(self._engine) as session:
            for start in range(0, len(uids), indexing.BATCH):
                chunk = uids[start : start + indexing.BATCH]
                pks += session.scalars(
                    select(Series.id).where(Series.series_instance_uid.in_(chunk))
                )
        return indexing.index_series(self._engine, sorted(pks))

    def on_series_arrived(self, event: SeriesArrived) -> None:
        """Index a series once it is stable: ``SeriesArrived`` handler."""
        if not self.index_uids([event.series_instance_uid]):
            log.info("series %s is gone before it was cataloged", event.series_instance_uid)


__all__ = ["Catalog"]
