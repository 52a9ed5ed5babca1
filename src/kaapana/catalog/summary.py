"""Counts of patients, studies, series and instances, and the modalities, of any set of series.

The set is a ``Select`` of ``series.id`` (a dataset's members, a catalog query, ...), so the
counting happens in the database with two aggregate queries however many series it selects; no
row ever travels to Python. ``summarize_each`` does the same for many sets at once (a list of
datasets), grouped by a key, so a page of datasets costs two queries, not two per dataset.
"""

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import CompoundSelect, Connection, Select, func, select
from sqlalchemy.orm import Session

from kaapana.db.models import Series, Study


class SeriesSummary(BaseModel):
    """What a set of series holds; ``modalities`` maps each modality to its number of series."""

    patients: int = 0
    studies: int = 0
    series: int = 0
    instances: int = 0
    modalities: dict[str, int] = Field(default_factory=dict)


def _counts() -> Sequence[Any]:
    return (
        func.count(Study.patient_pk.distinct()),
        func.count(Series.study_pk.distinct()),
        func.count(Series.id),
        func.coalesce(func.sum(Series.number_of_instances), 0),
    )


def summarize(bind: Session | Connection, series_ids: Select[tuple[int]]) -> SeriesSummary:
    """Counts over the series that ``series_ids`` selects (duplicates count once)."""
    member = Series.id.in_(series_ids)
    patients, studies, series, instances = bind.execute(
        select(*_counts())
        .select_from(Series)
        .join(Study, Series.study_pk == Study.id)
        .where(member)
    ).one()
    modalities = bind.execute(
        select(Series.modality, func.count()).where(member).group_by(Series.modality)
    ).all()
    return SeriesSummary(
        patients=patients,
        studies=studies,
        series=series,
        instances=int(instances),
        modalities={modality: count for modality, count in sorted(modalities)},
    )


def summarize_each(
    bind: Session | Connection, members: Select[tuple[int, int]] | CompoundSelect[tuple[int, int]]
) -> dict[int, SeriesSummary]:
    """Counts per key over ``members``, a select of distinct ``(key, series.id)`` pairs.

    Keys without any series are absent from the answer; callers default them to empty.
    """
    pairs = members.subquery()
    key, series_pk = pairs.c[0], pairs.c[1]
    joined = (
        select(key)
        .select_from(pairs)
        .join(Series, Series.id == series_pk)
        .join(Study, Series.study_pk == Study.id)
    )
    totals = bind.execute(joined.add_columns(*_counts()).group_by(key)).all()
    modalities = bind.execute(
        select(key, Series.modality, func.count())
        .select_from(pairs)
        .join(Series, Series.id == series_pk)
        .group_by(key, Series.modality)
    ).all()
    summaries = {
        group: SeriesSummary(
            patients=patients, studies=studies, series=series, instances=int(instances)
        )
        for group, patients, studies, series, instances in totals
    }
    for group, modality, count in sorted(modalities):
        summaries[group].modalities[modality] = count
    return summaries


__all__ = ["SeriesSummary", "summarize", "summarize_each"]
