"""Listing studies and series for people and scripts (paged), from the index alone."""

from typing import Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Engine, func, select

from kaapana.archive.visibility import ProjectScope, visible_series, visible_study
from kaapana.db.engine import session_factory
from kaapana.db.models import Patient, Project, Series, SeriesProject, Study
from kaapana.errors import NotFound

ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int
    limit: int
    offset: int


class StudySummary(BaseModel):
    study_instance_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    study_description: str
    accession_number: str
    modalities_in_study: list[str]
    number_of_study_related_series: int
    number_of_study_related_instances: int


class SeriesSummary(BaseModel):
    series_instance_uid: str
    study_instance_uid: str
    modality: str
    series_number: int | None
    series_description: str
    body_part_examined: str
    number_of_series_related_instances: int
    projects: list[str]


def list_studies(
    engine: Engine, *, projects: ProjectScope, limit: int = 100, offset: int = 0
) -> Page[StudySummary]:
    """Studies with at least one series the scope sees, newest first; counts of those only."""
    scope = [] if projects is None else [visible_study(projects)]
    with session_factory(engine)() as session:
        total = session.scalar(select(func.count()).select_from(Study).where(*scope)) or 0
        page = (
            select(Study, Patient)
            .join(Patient, Study.patient_pk == Patient.id)
            .where(*scope)
            .order_by(Study.study_date.desc(), Study.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = session.execute(page).all()
        study_pks = [study.id for study, _ in rows]
        series_scope = [] if projects is None else [visible_series(Series, projects)]
        series_rows = session.execute(
            select(
                Series.study_pk, Series.modality, func.sum(Series.number_of_instances), func.count()
            )
            .where(Series.study_pk.in_(study_pks), *series_scope)
            .group_by(Series.study_pk, Series.modality)
        ).all()
    modalities: dict[int, list[str]] = {pk: [] for pk in study_pks}
    counts: dict[int, list[int]] = {pk: [0, 0] for pk in study_pks}
    for study_pk, modality, instances, series in series_rows:
        if modality:
            modalities[study_pk].append(modality)
        counts[study_pk][0] += series
        counts[study_pk][1] += instances or 0
    items = [
        StudySummary(
            study_instance_uid=study.study_instance_uid,
            patient_id=patient.patient_id,
            patient_name=patient.patient_name,
            study_date=study.study_date,
            study_description=study.study_description,
            accession_number=study.accession_number,
            modalities_in_study=sorted(modalities[study.id]),
            number_of_study_related_series=counts[study.id][0],
            number_of_study_related_instances=counts[study.id][1],
        )
        for study, patient in rows
    ]
    return Page(items=items, total=total, limit=limit, offset=offset)


def list_series(
    engine: Engine,
    *,
    study_instance_uid: str,
    projects: ProjectScope,
    limit: int = 100,
    offset: int = 0,
) -> Page[SeriesSummary]:
    """The visible series of a study; ``NotFound`` when the scope sees none of it."""
    conditions = [Study.study_instance_uid == study_instance_uid]
    if projects is not None:
        conditions.append(visible_series(Series, projects))
    with session_factory(engine)() as session:
        base = select(Series).join(Study, Series.study_pk == Study.id).where(*conditions)
        total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
        if not total:
            raise NotFound(f"study {study_instance_uid} not found")
        series = session.scalars(
            base.order_by(Series.series_number.nulls_last(), Series.id).limit(limit).offset(offset)
        ).all()
        names: dict[int, list[str]] = {s.id: [] for s in series}
        links = (
            select(SeriesProject.series_pk, Project.name)
            .join(Project, SeriesProject.project_pk == Project.id)
            .where(SeriesProject.series_pk.in_(names))
            .order_by(Project.name)
        )
        if projects is not None:  # a caller learns only of the projects it sees
            links = links.where(SeriesProject.project_pk.in_(sorted(projects)))
        for series_pk, name in session.execute(links):
            names[series_pk].append(name)
    items = [
        SeriesSummary(
            series_instance_uid=s.series_instance_uid,
            study_instance_uid=study_instance_uid,
            modality=s.modality,
            series_number=s.series_number,
            series_description=s.series_description,
            body_part_examined=s.body_part_examined,
            number_of_series_related_instances=s.number_of_instances,
            projects=names[s.id],
        )
        for s in series
    ]
    return Page(items=items, total=total, limit=limit, offset=offset)


__all__ = ["Page", "SeriesSummary", "StudySummary", "list_series", "list_studies"]
