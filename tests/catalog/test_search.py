"""Search on SQLite and PostgreSQL: every operator, groups, sequences, text, sort and paging,
each checked against a brute-force evaluation over the synthetic data."""

import re
from collections.abc import Callable
from typing import Any

import pytest
from pydicom import Dataset

from kaapana.archive import SeriesArrived, SeriesQuietMonitor
from kaapana.catalog import parse_query
from kaapana.platform import Platform
from tests.catalog.conftest import HOSTILE_DESCRIPTION, Cohort, _project_a, store


def _thickness(ds: Dataset) -> float | None:
    return float(ds.SliceThickness) if "SliceThickness" in ds else None


def _referenced(ds: Dataset) -> set[str]:
    return {item.SeriesInstanceUID for item in ds.get("ReferencedSeriesSequence", [])}


def _labels(ds: Dataset) -> set[str]:
    return {item.SegmentLabel for item in ds.get("SegmentSequence", [])}


CASES: list[tuple[dict[str, Any], Callable[[Dataset], bool]]] = [
    ({"field": "Modality", "op": "=", "value": "CT"}, lambda ds: ds.Modality == "CT"),
    ({"field": "00080060", "op": "!=", "value": "CT"}, lambda ds: ds.Modality != "CT"),
    (
        {"field": "SliceThickness", "op": "<", "value": 2.5},
        lambda ds: (t := _thickness(ds)) is not None and t < 2.5,
    ),
    (
        {"field": "SliceThickness", "op": "<=", "value": 2.5},
        lambda ds: (t := _thickness(ds)) is not None and t <= 2.5,
    ),
    (
        {"field": "00180050", "op": ">", "value": 2.5},
        lambda ds: (t := _thickness(ds)) is not None and t > 2.5,
    ),
    (
        {"field": "SliceThickness", "op": ">=", "value": 2.5},
        lambda ds: (t := _thickness(ds)) is not None and t >= 2.5,
    ),
    (
        {"field": "StudyDate", "op": "range", "value": ["2023-01-01", "2023-12-31"]},
        lambda ds: ds.StudyDate.startswith("2023"),
    ),
    ({"field": "StudyDate", "op": "=", "value": "2023"}, lambda ds: ds.StudyDate[:4] == "2023"),
    ({"field": "StudyDate", "op": "<", "value": "2023"}, lambda ds: ds.StudyDate < "2023"),
    ({"field": "StudyDate", "op": "<=", "value": "2023-06"}, lambda ds: ds.StudyDate < "202307"),
    (
        {"field": "Modality", "op": "in", "value": ["MR", "SEG"]},
        lambda ds: ds.Modality in ("MR", "SEG"),
    ),
    (
        {"field": "SeriesDescription", "op": "wildcard", "value": "*thorax*"},
        lambda ds: "thorax" in ds.SeriesDescription.lower(),
    ),
    (
        {"field": "SeriesDescription", "op": "wildcard", "value": "50%_off*"},
        lambda ds: ds.SeriesDescription == HOSTILE_DESCRIPTION,
    ),
    (
        {"field": "SeriesDescription", "op": "wildcard", "value": "5?_*"},
        lambda ds: False,  # "_" is literal: unescaped, it would match the "%" of "50%_off"
    ),
    (
        {"field": "SeriesDescription", "op": "=", "value": HOSTILE_DESCRIPTION},
        lambda ds: ds.SeriesDescription == HOSTILE_DESCRIPTION,
    ),
    (
        {"field": "ReferencedSeriesSequence.SeriesInstanceUID", "op": "exists"},
        lambda ds: bool(_referenced(ds)),
    ),
    (
        {"field": "SegmentSequence.SegmentLabel", "op": "exists", "value": False},
        lambda ds: not _labels(ds),
    ),
    (
        {
            "and": [
                {"field": "Modality", "op": "=", "value": "CT"},
                {"not": {"field": "SliceThickness", "op": "=", "value": 2.5}},
            ]
        },
        lambda ds: ds.Modality == "CT" and _thickness(ds) != 2.5,
    ),
    (
        {
            "and": [
                {"field": "Modality", "op": "=", "value": "CT"},
                {"field": "SliceThickness", "op": "range", "value": [0.5, 2.5]},
                {"field": "StudyDate", "op": ">=", "value": "2023"},
                {"field": "ImageType", "op": "=", "value": "AXIAL"},
            ]
        },
        lambda ds: (
            ds.Modality == "CT"
            and 0.5 <= (_thickness(ds) or 0) <= 2.5
            and ds.StudyDate >= "2023"
            and "AXIAL" in ds.ImageType
        ),
    ),
    (
        {
            "or": [
                {"field": "Modality", "op": "=", "value": "MR"},
                {"field": "PatientID", "op": "=", "value": "KP-THIN"},
            ]
        },
        lambda ds: ds.Modality == "MR" or ds.PatientID == "KP-THIN",
    ),
    (
        {"field": "curated_modality", "op": "=", "value": "XR"},
        lambda ds: "LOCALIZER" in ds.get("ImageType", []),
    ),
    (
        {"field": "patient_age_years", "op": "<", "value": 1},
        lambda ds: ds.get("PatientAge") == "006M",
    ),
    (
        {"field": "annotation_labels", "op": "=", "value": "liver"},
        lambda ds: "liver" in _labels(ds),
    ),
    (
        {"field": "acquisition_datetime", "op": ">=", "value": "2023-07"},
        lambda ds: ds.StudyDate >= "202307",
    ),
    (
        {"field": "PatientName", "op": "wildcard", "value": "phantom1^*"},
        lambda ds: str(ds.PatientName).startswith("Phantom1^"),
    ),
]


@pytest.mark.parametrize(("where", "predicate"), CASES)
def test_operators_match_brute_force(
    shared_cohort: Cohort, where: dict[str, Any], predicate: Callable[[Dataset], bool]
) -> None:
    expected = shared_cohort.where(predicate)
    assert shared_cohort.uids({"where": where}) == expected


def test_the_cases_are_not_trivial(shared_cohort: Cohort) -> None:
    """Most cases select a proper, non-empty subset, so an operator ignored would show."""
    sizes = [len(shared_cohort.where(predicate)) for _, predicate in CASES]
    assert sum(0 < size < len(shared_cohort.series) for size in sizes) >= len(CASES) - 1


def test_sequence_path_by_tags_finds_the_segmentation_of_a_ct(shared_cohort: Cohort) -> None:
    seg = next(ds for ds in shared_cohort.series.values() if ds.Modality == "SEG")
    (ct_uid,) = _referenced(seg)
    query = {"where": {"field": "00081115.0020000E", "op": "=", "value": ct_uid}}
    assert shared_cohort.uids(query) == {seg.SeriesInstanceUID}


def _words(ds: Dataset) -> list[str]:
    """The words free text searches, from the fields the documentation lists."""
    fields = ("SeriesDescription", "StudyDescription", "PatientName", "BodyPartExamined")
    texts = [str(ds.get(keyword, "")) for keyword in (*fields, "ProtocolName")]
    return re.findall(r"[^\W_]+", " ".join([*texts, *_labels(ds)]).lower())


def _text_matches(ds: Dataset, text: str) -> bool:
    words = _words(ds)
    tokens = re.findall(r"[^\W_]+", text.lower())
    return all(any(word.startswith(token) for word in words) for token in tokens)


@pytest.mark.parametrize(
    "text", ["liver", "LIV", "thorax abdomen", "thorax nowhere", "baby", "phantom2", "head"]
)
def test_free_text_matches_brute_force(shared_cohort: Cohort, text: str) -> None:
    expected = shared_cohort.where(lambda ds: _text_matches(ds, text))
    assert shared_cohort.uids({"text": text}) == expected


def test_free_text_takes_hostile_strings_as_words(shared_cohort: Cohort) -> None:
    text = "'; DROP TABLE series;-- \" * ( 50%_"
    expected = shared_cohort.where(lambda ds: ds.SeriesDescription == HOSTILE_DESCRIPTION)
    assert expected == shared_cohort.where(lambda ds: _text_matches(ds, text))
    assert shared_cohort.uids({"text": text}) == expected


def test_text_and_where_combine(shared_cohort: Cohort) -> None:
    query = {"where": {"field": "StudyDate", "op": ">=", "value": "2023"}, "text": "liver"}
    expected = shared_cohort.where(lambda ds: "liver" in _labels(ds) and ds.StudyDate >= "2023")
    assert shared_cohort.uids(query) == expected


@pytest.mark.parametrize(
    "sort",
    [
        [{"field": "StudyDate", "order": "desc"}],
        [{"field": "Modality"}, {"field": "SliceThickness", "order": "desc"}],
        [{"field": "patient_age_years", "order": "asc"}],
        [{"field": "SeriesDescription", "order": "asc"}],
    ],
)
def test_cursor_paging_visits_every_series_once_in_order(
    shared_cohort: Cohort, sort: list[dict[str, str]]
) -> None:
    query = parse_query({"sort": sort})
    seen: list[str] = []
    cursor = None
    while True:
        page = shared_cohort.platform.catalog.search(
            project_pk=shared_cohort.project_pk, query=query, limit=2, cursor=cursor
        )
        seen += [hit.series_instance_uid for hit in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == len(shared_cohort.series)
    assert set(seen) == set(shared_cohort.series)
    first = sort[0]
    keyword = first["field"]
    if keyword in ("StudyDate", "SeriesDescription", "Modality"):
        values = [str(shared_cohort.series[uid].get(keyword, "")) for uid in seen]
        assert values == sorted(values, reverse=first.get("order") == "desc")


@pytest.mark.parametrize(
    ("where", "predicate"),
    [
        # the condition on the sort field drives, in sort order
        (
            {"field": "StudyDate", "op": ">=", "value": "2023"},
            lambda ds: ds.StudyDate >= "2023",
        ),
        (
            {
                "and": [
                    {"field": "StudyDate", "op": ">=", "value": "2000"},
                    {"field": "Modality", "op": "!=", "value": "SEG"},
                    {"not": {"field": "tags", "op": "=", "value": "nothing"}},
                ]
            },
            lambda ds: ds.Modality != "SEG",
        ),
        # a more selective condition than the sort field's drives instead
        (
            {
                "and": [
                    {"field": "StudyDate", "op": ">=", "value": "2000"},
                    {"field": "Modality", "op": "=", "value": "SEG"},
                ]
            },
            lambda ds: ds.Modality == "SEG",
        ),
    ],
)
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_filtered_on_the_sort_field_pages_in_order_like_brute_force(
    shared_cohort: Cohort, where: dict[str, Any], predicate: Callable[[Dataset], bool], order: str
) -> None:
    query = parse_query({"where": where, "sort": [{"field": "StudyDate", "order": order}]})
    seen: list[str] = []
    cursor = None
    while True:
        page = shared_cohort.platform.catalog.search(
            project_pk=shared_cohort.project_pk, query=query, limit=2, cursor=cursor
        )
        seen += [hit.series_instance_uid for hit in page.items]
        if (cursor := page.next_cursor) is None:
            break
    expected = shared_cohort.where(predicate)
    assert len(seen) == len(set(seen)) and set(seen) == expected and len(expected) > 2
    positions = [(shared_cohort.series[uid].StudyDate, uid) for uid in seen]
    dates = [date for date, _ in positions]
    assert dates == sorted(dates, reverse=order == "desc")


def test_project_scope(shared_cohort: Cohort) -> None:
    everything = shared_cohort.uids(None)
    assert everything == set(shared_cohort.series)
    assert not everything & set(shared_cohort.other_series)
    other = shared_cohort.platform.catalog.search(
        project_pk=shared_cohort.other_project_pk, query=parse_query(None)
    )
    assert {hit.series_instance_uid for hit in other.items} == set(shared_cohort.other_series)
    (b_uid,) = shared_cohort.other_series
    by_uid = {"where": {"field": "SeriesInstanceUID", "op": "=", "value": b_uid}}
    assert shared_cohort.uids(by_uid) == set()
    selected = shared_cohort.platform.catalog.select_series(
        project_pk=shared_cohort.project_pk, query=parse_query(by_uid)
    )
    with shared_cohort.platform.engine.connect() as conn:
        assert conn.execute(selected).all() == []


def test_select_series_and_matches(shared_cohort: Cohort) -> None:
    catalog = shared_cohort.platform.catalog
    query = parse_query({"where": {"field": "Modality", "op": "=", "value": "SEG"}})
    with shared_cohort.platform.engine.connect() as conn:
        pks = {
            row[0]
            for row in conn.execute(
                catalog.select_series(project_pk=shared_cohort.project_pk, query=query)
            )
        }
        rows = dict(conn.exec_driver_sql("SELECT id, modality FROM series").all())
    assert pks and all(rows[pk] == "SEG" for pk in pks)
    assert len(pks) == len(shared_cohort.where(lambda ds: ds.Modality == "SEG"))
    pk = next(iter(pks))
    assert catalog.matches(project_pk=shared_cohort.project_pk, series_pk=pk, query=query)
    assert not catalog.matches(project_pk=shared_cohort.other_project_pk, series_pk=pk, query=query)
    ct = parse_query({"where": {"field": "Modality", "op": "=", "value": "CT"}})
    assert not catalog.matches(project_pk=shared_cohort.project_pk, series_pk=pk, query=ct)


def test_series_arrived_indexes_the_series(platform: Platform) -> None:
    store(platform, _project_a()[-1:], "admin")
    project_pk = platform.archive.projects.get("admin").id
    scout = parse_query({"text": "scout"})
    assert platform.catalog.search(project_pk=project_pk, query=scout).items == []
    monitor = SeriesQuietMonitor(platform.engine, platform.events, quiet_seconds=0)
    seen: list[SeriesArrived] = []
    platform.events.subscribe(SeriesArrived, seen.append)
    monitor.poll()
    assert len(seen) == 1
    found = platform.catalog.search(project_pk=project_pk, query=scout).items
    assert [hit.series_instance_uid for hit in found] == [seen[0].series_instance_uid]


def test_deleting_a_series_drops_its_rows(cohort: Cohort) -> None:
    engine = cohort.platform.engine
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM series WHERE modality = 'MR'")
    assert cohort.uids({"where": {"field": "Modality", "op": "=", "value": "MR"}}) == set()
    assert cohort.uids({"text": "head"}) == set()
    with engine.connect() as conn:
        orphans = conn.exec_driver_sql(
            "SELECT count(*) FROM series_attributes WHERE series_pk NOT IN (SELECT id FROM series)"
        ).scalar_one()
    assert orphans == 0
