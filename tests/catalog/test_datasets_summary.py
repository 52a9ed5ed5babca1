"""``summarize`` and ``summarize_each`` against counts made the slow way, in Python."""

from collections import Counter

import pytest
from sqlalchemy import Select, literal, select, union
from sqlalchemy.orm import Session

from kaapana.catalog import SeriesSummary, summarize, summarize_each
from kaapana.db.engine import session_factory
from kaapana.db.models import Series, SeriesProject, Study
from tests.catalog.dataset_cohort import DatasetCohort


def _brute_force(dataset_cohort: DatasetCohort, series_uids: set[str]) -> SeriesSummary:
    """From the ingested objects themselves, not from the index."""
    chosen = [ds for ds in dataset_cohort.objects if ds.SeriesInstanceUID in series_uids]
    modalities = Counter({ds.SeriesInstanceUID: ds.Modality for ds in chosen}.values())
    return SeriesSummary(
        patients=len({ds.PatientID for ds in chosen}),
        studies=len({ds.StudyInstanceUID for ds in chosen}),
        series=len({ds.SeriesInstanceUID for ds in chosen}),
        instances=len({ds.SOPInstanceUID for ds in chosen}),
        modalities=dict(sorted(modalities.items())),
    )


def _uids(session: Session, statement: Select[tuple[int]]) -> set[str]:
    return set(session.scalars(select(Series.series_instance_uid).where(Series.id.in_(statement))))


@pytest.mark.parametrize(
    ("where", "selects_some"),
    [
        ([], True),
        ([Series.modality == "CT"], True),
        ([Series.modality.in_(["MR", "SEG"])], True),
        ([Study.study_date >= "20230101"], True),
        ([Series.modality == "XA"], False),
    ],
    ids=["all", "ct", "mr-seg", "recent", "none"],
)
def test_summary_matches_a_brute_force_count(
    dataset_cohort: DatasetCohort, where: list[object], selects_some: bool
) -> None:
    statement = select(Series.id).join(Study, Series.study_pk == Study.id).where(*where)
    with session_factory(dataset_cohort.platform.engine)() as session:
        chosen = _uids(session, statement)
        summary = summarize(session, statement)
    assert summary == _brute_force(dataset_cohort, chosen)
    assert (summary.series > 0) is selects_some


def test_summary_counts_duplicates_once_and_takes_a_connection(
    dataset_cohort: DatasetCohort,
) -> None:
    twice = union(select(Series.id), select(Series.id).where(Series.modality == "CT"))
    with dataset_cohort.platform.engine.connect() as connection:
        summary = summarize(connection, select(twice.subquery().c[0]))
    assert summary == _brute_force(dataset_cohort, set(dataset_cohort.series_uids()))


def test_summarize_each_groups_many_sets_in_one_go(dataset_cohort: DatasetCohort) -> None:
    in_b = select(SeriesProject.series_pk).where(SeriesProject.project_pk == dataset_cohort.b.id)
    ct = select(Series.id).where(Series.modality == "CT")
    members = union(
        select(literal(1), in_b.subquery().c[0]),
        select(literal(2), ct.subquery().c[0]),
    )
    with session_factory(dataset_cohort.platform.engine)() as session:
        expected = {1: _uids(session, in_b), 2: _uids(session, ct)}
        summaries = summarize_each(session, members)
    assert summaries == {key: _brute_force(dataset_cohort, uids) for key, uids in expected.items()}
    assert summaries[1].series == 1
