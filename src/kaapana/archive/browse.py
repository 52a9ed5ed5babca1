"""Listing studies for people and scripts (paged), from the index alone."""

from pydantic import BaseModel
from sqlalchemy import Engine, func, select

from kaapana.db.engine import session_factory
from kaapana.db.models import Patient, Series, Study


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


def list_studies(engine: Engine, *, limit: int = 100, offset: int = 0) -> list[StudySummary]:
    with session_factory(engine)() as session:
        page = (
            select(Study, Patient)
            .join(Patient, Study.patient_pk == Patient.id)
            .order_by(Study.study_date.desc(), Study.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = session.execute(page).all()
        study_pks = [study.id for study, _ in rows]
        series_rows = session.execute(
            select(
                Series.study_pk, Series.modality, func.sum(Series.number_of_instances), func.count()
            )
            .where(Series.study_pk.in_(study_pks))
            .group_by(Series.study_pk, Series.modality)
        ).all()
    modalities: dict[int, list[str]] = {pk: [] for pk in study_pks}
    counts: dict[int, list[int]] = {pk: [0, 0] for pk in study_pks}
    for study_pk, modality, instances, series in series_rows:
        if modality:
            modalities[study_pk].append(modality)
        counts[study_pk][0] += series
        counts[study_pk][1] += instances or 0
    return [
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


__all__ = ["StudySummary", "list_studies"]
