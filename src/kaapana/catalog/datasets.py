"""Datasets: named sets of series in a project (cohorts), what workflows and exports run over.

Three kinds, one table. A *selection* holds the series someone picked; a *snapshot* holds the
series a query matched when it was created (the query is kept for provenance); both keep their
members in ``dataset_series`` and change only through ``add``/``remove``. A *live* dataset keeps
only its query, evaluated at every read through ``resolve_query``, so it always shows what the
query matches now. Members are always narrowed to series the project still holds, and every
change is written to the audit trail with the acting user.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    CompoundSelect,
    Engine,
    Select,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    union,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaapana.archive.browse import Page
from kaapana.archive.visibility import visible_series_pks
from kaapana.auth.audit import Audit
from kaapana.catalog.manifest import ManifestFormatValues, manifest_csv, manifest_json
from kaapana.catalog.summary import SeriesSummary, summarize, summarize_each
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import (
    Dataset,
    DatasetSeries,
    Patient,
    Project,
    Series,
    SeriesProject,
    Study,
)
from kaapana.errors import Conflict, InvalidInput, NotFound

ResolveQuery = Callable[[int, dict[str, Any]], Select[tuple[int]]]
MAX_DESCRIPTION = 1024
_CHUNK = 500


class DatasetKindValues(StrEnum):
    selection = "selection"  # picked series; add/remove change it
    snapshot = "snapshot"  # a query's series, copied at creation; add/remove change it
    live = "live"  # a saved query, evaluated at every read


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    project: str
    name: str
    description: str
    kind: DatasetKindValues
    query: dict[str, Any] | None
    created_at: datetime
    summary: SeriesSummary


class DatasetMember(BaseModel):
    series_instance_uid: str
    study_instance_uid: str
    patient_id: str
    modality: str
    series_description: str
    number_of_instances: int
    study_date: str


def _valid_name(value: str) -> bool:
    return (
        0 < len(value) <= 64 and value.isprintable() and "/" not in value and value == value.strip()
    )


def check_dataset_name(value: str, *, field: str = "name") -> str:
    """1-64 printable characters, no ``/`` (names are URL path segments and file names)."""
    if not _valid_name(value):
        raise InvalidInput(
            f"'{field}' must be 1-64 printable characters without '/' and without leading or "
            f"trailing spaces, got {value[:80]!r}"
        )
    return value


def _check_description(value: str) -> str:
    if len(value) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"'description' must be at most {MAX_DESCRIPTION} characters, got {len(value)}"
        )
    if "\x00" in value:
        raise InvalidInput("'description' must not contain NUL characters")
    return value


def _check_query(query: object) -> dict[str, Any]:
    if not isinstance(query, dict) or not query:
        raise InvalidInput(f"'query' must be a non-empty JSON object, got {str(query)[:80]!r}")
    return query


def _held_by(project_pk: int, series_pk: Any) -> Any:
    return exists().where(
        SeriesProject.series_pk == series_pk, SeriesProject.project_pk == project_pk
    )


class Datasets:
    """The datasets of every project; ``resolve_query`` connects the catalog's query language."""

    def __init__(
        self, *, engine: Engine, audit: Audit, resolve_query: ResolveQuery | None = None
    ) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self._audit = audit
        self._resolve_query = resolve_query

    # reading

    def list(self, project: Project) -> list[DatasetInfo]:
        """The project's datasets by name, with their counts (two aggregate queries in all)."""
        with self._sessions() as session:
            datasets = list(
                session.scalars(
                    select(Dataset).where(Dataset.project_pk == project.id).order_by(Dataset.name)
                )
            )
            if not datasets:
                return []
            summaries = summarize_each(session, self._members_of_all(project, datasets))
        return [self._info(project, d, summaries.get(d.id, SeriesSummary())) for d in datasets]

    def names(self, project: Project) -> Sequence[str]:
        """The project's dataset names, sorted; no counts (pickers and suggestions need none)."""
        with self._sessions() as session:
            statement = select(Dataset.name).where(Dataset.project_pk == project.id)
            return list(session.scalars(statement.order_by(Dataset.name)))

    def get(self, project: Project, name: str) -> DatasetInfo:
        with self._sessions() as session:
            dataset = self._dataset(session, project, name)
            summary = summarize(session, self._member_ids(project, dataset))
        return self._info(project, dataset, summary)

    def series_ids(self, project: Project, name: str) -> Select[tuple[int]]:
        """A select of the member ``series.id``s, for workflows and exports that read them."""
        with self._sessions() as session:
            return self._member_ids(project, self._dataset(session, project, name))

    def members(
        self, project: Project, name: str, *, limit: int = 100, offset: int = 0
    ) -> Page[DatasetMember]:
        """Member series by patient, study date and series number."""
        with self._sessions() as session:
            member = Series.id.in_(self._member_ids(project, self._dataset(session, project, name)))
            total = session.scalar(select(func.count()).select_from(Series).where(member)) or 0
            rows = session.execute(
                select(
                    Series.series_instance_uid,
                    Study.study_instance_uid,
                    Patient.patient_id,
                    Series.modality,
                    Series.series_description,
                    Series.number_of_instances,
                    Study.study_date,
                )
                .join(Study, Series.study_pk == Study.id)
                .join(Patient, Study.patient_pk == Patient.id)
                .where(member)
                .order_by(
                    Patient.patient_id,
                    Study.study_date,
                    Study.study_instance_uid,
                    Series.series_number.nulls_last(),
                    Series.id,
                )
                .limit(limit)
                .offset(offset)
            ).all()
        items = [DatasetMember(**row._mapping) for row in rows]
        return Page(items=items, total=total, limit=limit, offset=offset)

    def manifest(
        self,
        project: Project,
        name: str,
        *,
        format: ManifestFormatValues,
        actor: str,
        address: str | None = None,
    ) -> Iterator[str]:
        """The member list as CSV or JSON text chunks; resolved (and audited) before it streams."""
        with self._sessions() as session:
            dataset = self._dataset(session, project, name)
            series_ids = self._member_ids(project, dataset)
        self._audit.record_access(
            "dataset.manifest",
            actor=actor,
            target=f"dataset:{dataset.name}",
            project=project.name,
            address=address,
            detail={"format": format.value},
        )
        if format is ManifestFormatValues.csv:
            return manifest_csv(self._engine, series_ids)
        header = {
            "project": project.name,
            "dataset": dataset.name,
            "kind": dataset.kind,
            "query": dataset.query,
        }
        return manifest_json(self._engine, series_ids, header=header)

    # creating

    def create(
        self,
        project: Project,
        name: str,
        *,
        series_instance_uids: Sequence[str],
        description: str = "",
        actor: str,
        address: str | None = None,
    ) -> DatasetInfo:
        """A selection of series the project holds; any other UID fails the whole request."""

        def fill(session: Session, dataset: Dataset) -> int:
            pks = visible_series_pks(session, series_instance_uids, frozenset({project.id}))
            session.execute(
                insert(DatasetSeries), [{"dataset_pk": dataset.id, "series_pk": pk} for pk in pks]
            )
            return len(pks)

        return self._create(
            project,
            name,
            kind=DatasetKindValues.selection,
            description=description,
            query=None,
            fill=fill,
            actor=actor,
            address=address,
        )

    def create_snapshot(
        self,
        project: Project,
        name: str,
        *,
        series_ids: Select[tuple[int]] | None = None,
        query: dict[str, Any] | None = None,
        description: str = "",
        actor: str,
        address: str | None = None,
    ) -> DatasetInfo:
        """The series ``series_ids`` selects now (or, without it, what ``query`` matches).

        ``query`` is kept for provenance; the members never change with it afterwards.
        """
        if query is not None:
            _check_query(query)
        if series_ids is None:
            if query is None:
                raise InvalidInput("a snapshot needs 'query' (or a selection of series ids)")
            series_ids = self._resolve(project, query)
        selected = series_ids

        def fill(session: Session, dataset: Dataset) -> int:
            session.execute(
                insert(DatasetSeries).from_select(
                    ["dataset_pk", "series_pk"],
                    select(literal(dataset.id), SeriesProject.series_pk).where(
                        SeriesProject.project_pk == project.id,
                        SeriesProject.series_pk.in_(selected),
                    ),
                )
            )
            copied = session.scalar(
                select(func.count()).where(DatasetSeries.dataset_pk == dataset.id)
            )
            if not copied:
                raise InvalidInput("'query' selects no series of the project: nothing to keep")
            return copied

        return self._create(
            project,
            name,
            kind=DatasetKindValues.snapshot,
            description=description,
            query=query,
            fill=fill,
            actor=actor,
            address=address,
        )

    def create_live(
        self,
        project: Project,
        name: str,
        *,
        query: dict[str, Any],
        description: str = "",
        actor: str,
        address: str | None = None,
    ) -> DatasetInfo:
        """A saved query; its members are whatever it matches when read."""
        self._resolve(project, _check_query(query))  # refuse a query the catalog cannot run
        return self._create(
            project,
            name,
            kind=DatasetKindValues.live,
            description=description,
            query=query,
            fill=lambda _session, _dataset: 0,
            actor=actor,
            address=address,
        )

    # changing

    def add(
        self,
        project: Project,
        name: str,
        series_instance_uids: Sequence[str],
        *,
        actor: str,
        address: str | None = None,
    ) -> int:
        """Add series the project holds; returns how many were not members yet."""
        with write_transaction(self._engine) as session:
            dataset = self._static(session, project, name)
            pks = visible_series_pks(session, series_instance_uids, frozenset({project.id}))
            added = 0
            for start in range(0, len(pks), _CHUNK):
                chunk = pks[start : start + _CHUNK]
                present = set(
                    session.scalars(
                        select(DatasetSeries.series_pk).where(
                            DatasetSeries.dataset_pk == dataset.id,
                            DatasetSeries.series_pk.in_(chunk),
                        )
                    )
                )
                new = [
                    {"dataset_pk": dataset.id, "series_pk": pk} for pk in chunk if pk not in present
                ]
                if new:
                    session.execute(insert(DatasetSeries), new)
                added += len(new)
        detail = {"requested": len(pks), "added": added}
        self._record("dataset.add", project, name, actor=actor, address=address, detail=detail)
        return added

    def remove(
        self,
        project: Project,
        name: str,
        series_instance_uids: Sequence[str],
        *,
        actor: str,
        address: str | None = None,
    ) -> int:
        """Take series out of the dataset (never out of the project); returns how many left."""
        with write_transaction(self._engine) as session:
            dataset = self._static(session, project, name)
            pks = visible_series_pks(session, series_instance_uids, frozenset({project.id}))
            removed = 0
            for start in range(0, len(pks), _CHUNK):
                result = session.execute(
                    delete(DatasetSeries).where(
                        DatasetSeries.dataset_pk == dataset.id,
                        DatasetSeries.series_pk.in_(pks[start : start + _CHUNK]),
                    )
                )
                removed += result.rowcount or 0
        detail = {"requested": len(pks), "removed": removed}
        self._record("dataset.remove", project, name, actor=actor, address=address, detail=detail)
        return removed

    def update(
        self,
        project: Project,
        name: str,
        *,
        new_name: str | None = None,
        description: str | None = None,
        actor: str,
        address: str | None = None,
    ) -> DatasetInfo:
        """Rename and/or describe; the name stays unique within the project."""
        if new_name is not None:
            check_dataset_name(new_name)
        if description is not None:
            _check_description(description)
        try:
            with write_transaction(self._engine) as session:
                dataset = self._dataset(session, project, name)
                if new_name is not None and new_name != dataset.name:
                    self._check_free(session, project, new_name)
                    dataset.name = new_name
                if description is not None:
                    dataset.description = description
        except IntegrityError as exc:
            raise Conflict(f"a dataset named {new_name!r} exists in {project.name!r}") from exc
        changes = {"name": new_name, "description": description}
        detail = {k: v for k, v in changes.items() if v is not None}
        self._record("dataset.update", project, name, actor=actor, address=address, detail=detail)
        return self.get(project, dataset.name)

    def delete(
        self, project: Project, name: str, *, actor: str, address: str | None = None
    ) -> None:
        """Forget the dataset; its series stay in the project and the archive."""
        with write_transaction(self._engine) as session:
            dataset = self._dataset(session, project, name)
            session.execute(delete(DatasetSeries).where(DatasetSeries.dataset_pk == dataset.id))
            session.delete(dataset)
        self._record("dataset.delete", project, name, actor=actor, address=address)

    # internals

    def _create(
        self,
        project: Project,
        name: str,
        *,
        kind: DatasetKindValues,
        description: str,
        query: dict[str, Any] | None,
        fill: Callable[[Session, Dataset], int],
        actor: str,
        address: str | None,
    ) -> DatasetInfo:
        check_dataset_name(name)
        _check_description(description)
        try:
            with write_transaction(self._engine) as session:
                self._check_free(session, project, name)
                dataset = Dataset(
                    project_pk=project.id,
                    name=name,
                    description=description,
                    kind=kind.value,
                    query=query,
                )
                session.add(dataset)
                session.flush()
                members = fill(session, dataset)
        except IntegrityError as exc:  # created by someone else a moment ago
            raise Conflict(f"a dataset named {name!r} exists in {project.name!r}") from exc
        detail = {"kind": kind.value, "series": members}
        self._record("dataset.create", project, name, actor=actor, address=address, detail=detail)
        return self.get(project, name)

    @staticmethod
    def _check_free(session: Session, project: Project, name: str) -> None:
        taken = session.scalar(
            select(Dataset.id).where(Dataset.project_pk == project.id, Dataset.name == name)
        )
        if taken is not None:
            raise Conflict(f"a dataset named {name!r} exists in {project.name!r}")

    @staticmethod
    def _dataset(session: Session, project: Project, name: str) -> Dataset:
        dataset = (
            session.scalar(
                select(Dataset).where(Dataset.project_pk == project.id, Dataset.name == name)
            )
            if _valid_name(name)  # no other name exists, and NUL would upset PostgreSQL
            else None
        )
        if dataset is None:
            raise NotFound(f"no dataset named {name[:80]!r} in project {project.name!r}")
        return dataset

    def _static(self, session: Session, project: Project, name: str) -> Dataset:
        dataset = self._dataset(session, project, name)
        if dataset.kind == DatasetKindValues.live:
            raise InvalidInput(
                f"dataset {name!r} is live: its members are what its query matches; make a "
                "snapshot of the query to curate members by hand"
            )
        return dataset

    def _resolve(self, project: Project, query: dict[str, Any]) -> Select[tuple[int]]:
        if self._resolve_query is None:
            raise InvalidInput(
                "'query' cannot be evaluated: this installation has no catalog query language "
                "connected, so live datasets and snapshots of a query are unavailable"
            )
        return self._resolve_query(project.id, query)

    def _member_ids(self, project: Project, dataset: Dataset) -> Select[tuple[int]]:
        """The members' ``series.id``s, always narrowed to what the project holds now."""
        if dataset.kind == DatasetKindValues.live and dataset.query is not None:
            resolved = self._resolve(project, dataset.query)
            return select(SeriesProject.series_pk).where(
                SeriesProject.project_pk == project.id, SeriesProject.series_pk.in_(resolved)
            )
        return select(DatasetSeries.series_pk).where(
            DatasetSeries.dataset_pk == dataset.id, _held_by(project.id, DatasetSeries.series_pk)
        )

    def _members_of_all(
        self, project: Project, datasets: Sequence[Dataset]
    ) -> Select[tuple[int, int]] | CompoundSelect[tuple[int, int]]:
        """``(dataset.id, series.id)`` for many datasets in one statement."""
        static = [d.id for d in datasets if d.kind != DatasetKindValues.live]
        parts: list[Select[tuple[int, int]]] = [
            select(DatasetSeries.dataset_pk, DatasetSeries.series_pk).where(
                DatasetSeries.dataset_pk.in_(static),
                _held_by(project.id, DatasetSeries.series_pk),
            )
        ]
        for dataset in datasets:
            if dataset.kind == DatasetKindValues.live:
                parts.append(
                    select(literal(dataset.id), self._member_ids(project, dataset).subquery().c[0])
                )
        return parts[0] if len(parts) == 1 else union(*parts)

    def _record(
        self,
        action: str,
        project: Project,
        name: str,
        *,
        actor: str,
        address: str | None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self._audit.record(
            action,
            actor=actor,
            target=f"dataset:{name}",
            project=project.name,
            address=address,
            detail=detail,
        )

    @staticmethod
    def _info(project: Project, dataset: Dataset, summary: SeriesSummary) -> DatasetInfo:
        return DatasetInfo(
            project=project.name,
            name=dataset.name,
            description=dataset.description,
            kind=DatasetKindValues(dataset.kind),
            query=dataset.query,
            created_at=dataset.created_at,
            summary=summary,
        )


__all__ = [
    "MAX_DESCRIPTION",
    "DatasetInfo",
    "DatasetKindValues",
    "DatasetMember",
    "Datasets",
    "ResolveQuery",
    "check_dataset_name",
]
