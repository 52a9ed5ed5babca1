"""Facets, field discovery and tags on both engines, counted against brute force."""

from collections import Counter

import pytest

from kaapana.catalog import FacetSpec, parse_query
from kaapana.errors import InvalidInput, NotFound
from tests.catalog.conftest import Cohort, store


def _facet(cohort: Cohort, spec: FacetSpec, query: object = None) -> list[tuple[object, int]]:
    (found,) = cohort.platform.catalog.facets(
        project_pk=cohort.project_pk, query=parse_query(query), specs=[spec]
    )
    return [
        (b.value if b.period is None and b.low is None else b.period or b.low, b.count)
        for b in found.buckets
    ]


def test_value_counts_top_n_and_other(shared_cohort: Cohort) -> None:
    counts = Counter(ds.Modality for ds in shared_cohort.series.values())
    (found,) = shared_cohort.platform.catalog.facets(
        project_pk=shared_cohort.project_pk,
        query=parse_query(None),
        specs=[FacetSpec(field="Modality", limit=1)],
    )
    top, top_count = counts.most_common(1)[0]
    assert [(b.value, b.count) for b in found.buckets] == [(top, top_count)]
    assert found.other == sum(counts.values()) - top_count


def test_value_counts_restricted_to_the_query(shared_cohort: Cohort) -> None:
    query = {"where": {"field": "StudyDate", "op": ">=", "value": "2023"}}
    matching = [ds for ds in shared_cohort.series.values() if ds.StudyDate >= "2023"]
    expected = Counter(ds.PatientSex for ds in matching)
    assert dict(_facet(shared_cohort, FacetSpec(field="PatientSex"), query)) == dict(expected)


def test_numeric_histogram_fixed_and_automatic(shared_cohort: Cohort) -> None:
    thickness = [
        float(ds.SliceThickness) for ds in shared_cohort.series.values() if "SliceThickness" in ds
    ]
    expected = Counter(int(value // 2) * 2.0 for value in thickness)
    assert dict(
        _facet(shared_cohort, FacetSpec(field="SliceThickness", type="histogram", width=2))
    ) == dict(expected)
    (auto,) = shared_cohort.platform.catalog.facets(
        project_pk=shared_cohort.project_pk,
        query=parse_query(None),
        specs=[FacetSpec(field="patient_age_years", type="histogram", bins=4)],
    )
    assert auto.width is not None and auto.width > 0
    assert sum(b.count for b in auto.buckets) == len(shared_cohort.series)
    assert all(
        b.low is not None and b.high == pytest.approx(b.low + auto.width) for b in auto.buckets
    )


def test_date_histogram_by_month_and_year(shared_cohort: Cohort) -> None:
    by_month = Counter(
        f"{ds.StudyDate[:4]}-{ds.StudyDate[4:6]}" for ds in shared_cohort.series.values()
    )
    assert dict(_facet(shared_cohort, FacetSpec(field="StudyDate", type="date_histogram"))) == dict(
        by_month
    )
    by_year = Counter(ds.StudyDate[:4] for ds in shared_cohort.series.values())
    spec = FacetSpec(field="StudyDate", type="date_histogram", interval="year")
    assert dict(_facet(shared_cohort, spec)) == dict(by_year)


def test_facet_errors(shared_cohort: Cohort) -> None:
    facets = shared_cohort.platform.catalog.facets
    query = parse_query(None)
    with pytest.raises(InvalidInput, match="needs a numeric field"):
        facets(
            project_pk=shared_cohort.project_pk,
            query=query,
            specs=[FacetSpec(field="Modality", type="histogram")],
        )
    with pytest.raises(InvalidInput, match="needs a date field"):
        facets(
            project_pk=shared_cohort.project_pk,
            query=query,
            specs=[FacetSpec(field="SliceThickness", type="date_histogram")],
        )
    with pytest.raises(InvalidInput, match="unknown field"):
        facets(project_pk=shared_cohort.project_pk, query=query, specs=[FacetSpec(field="Nope")])


def test_tags_add_remove_list_filter_and_facet(cohort: Cohort) -> None:
    catalog = cohort.platform.catalog
    ct = sorted(uid for uid, ds in cohort.series.items() if ds.Modality == "CT")
    change = catalog.tag(
        project_pk=cohort.project_pk, series_instance_uids=ct, add=["excluded", "reviewed"]
    )
    assert (change.series, change.changed) == (len(ct), 2 * len(ct))
    again = catalog.tag(project_pk=cohort.project_pk, series_instance_uids=ct[:1], add=["excluded"])
    assert again.changed == 0
    catalog.tag(project_pk=cohort.project_pk, series_instance_uids=ct[:1], remove=["reviewed"])
    assert [(t.tag, t.series) for t in catalog.tags(project_pk=cohort.project_pk)] == [
        ("excluded", len(ct)),
        ("reviewed", len(ct) - 1),
    ]
    assert catalog.tags(project_pk=cohort.other_project_pk) == []
    not_excluded = {"where": {"not": {"field": "tags", "op": "=", "value": "excluded"}}}
    assert cohort.uids(not_excluded) == set(cohort.series) - set(ct)
    assert cohort.uids({"where": {"field": "tags", "op": "wildcard", "value": "REV*"}}) == set(
        ct[1:]
    )
    assert cohort.uids({"text": "review"}) == set(ct[1:])
    assert dict(_facet(cohort, FacetSpec(field="tags"))) == {
        "excluded": len(ct),
        "reviewed": len(ct) - 1,
    }
    named = {f.field for f in catalog.fields(project_pk=cohort.project_pk, prefix="ta")}
    assert "tags" in named and all(name.lower().startswith("ta") for name in named)


def test_tag_errors_change_nothing(cohort: Cohort) -> None:
    catalog = cohort.platform.catalog
    (other_uid,) = cohort.other_series
    mine = next(iter(cohort.series))
    with pytest.raises(NotFound, match="not found in this project"):
        catalog.tag(project_pk=cohort.project_pk, series_instance_uids=[mine, other_uid], add=["x"])
    with pytest.raises(InvalidInput, match="tag"):
        catalog.tag(project_pk=cohort.project_pk, series_instance_uids=[mine], add=["%; drop"])
    with pytest.raises(InvalidInput, match="at least one tag"):
        catalog.tag(project_pk=cohort.project_pk, series_instance_uids=[mine])
    assert catalog.tags(project_pk=cohort.project_pk) == []


def test_field_discovery(shared_cohort: Cohort) -> None:
    found = {
        f.field: f
        for f in shared_cohort.platform.catalog.fields(project_pk=shared_cohort.project_pk)
    }
    thickness = found["SliceThickness"]
    assert (thickness.vr, thickness.kind.value, thickness.derived) == ("DS", "number", False)
    assert thickness.series == sum("SliceThickness" in ds for ds in shared_cohort.series.values())
    assert set(thickness.examples) <= {
        float(ds.SliceThickness) for ds in shared_cohort.series.values() if "SliceThickness" in ds
    }
    assert found["SegmentSequence.SegmentLabel"].series == sum(
        ds.Modality == "SEG" for ds in shared_cohort.series.values()
    )
    assert found["annotation_labels"].derived and found["annotation_labels"].description
    assert found["curated_modality"].series == len(shared_cohort.series)
    assert "PixelData" not in found
    only = shared_cohort.platform.catalog.fields(
        project_pk=shared_cohort.project_pk, prefix="referencedseries"
    )
    assert only and all(f.field.startswith("ReferencedSeries") for f in only)


def test_field_list_follows_the_index_and_the_project(cohort: Cohort) -> None:
    catalog = cohort.platform.catalog

    def listed() -> dict[str, int]:
        return {f.field: f.series for f in catalog.fields(project_pk=cohort.project_pk)}

    before = listed()
    assert before == listed()
    assert before["curated_modality"] == len(cohort.series)
    # A write of the index alone (no series added): a new field.
    uid = next(iter(cohort.series))
    catalog.set_features(
        project_pk=cohort.project_pk,
        series_instance_uid=uid,
        source="radiomics",
        features={"lungs.volume": 4.5},
    )
    assert listed() == {**before, "radiomics.lungs.volume": 1}
    # A series of project B linked to A as well: counted without being indexed again.
    (other_uid,) = cohort.other_series
    store(cohort.platform, (cohort.other_series[other_uid],), "A")
    assert listed()["curated_modality"] == len(cohort.series) + 1


def test_value_autocomplete(shared_cohort: Cohort) -> None:
    catalog = shared_cohort.platform.catalog
    names = Counter(str(ds.PatientName) for ds in shared_cohort.series.values())
    expected = sorted(
        ((n, c) for n, c in names.items() if n.lower().startswith("phantom")),
        key=lambda x: (-x[1], x[0]),
    )
    found = catalog.values(
        project_pk=shared_cohort.project_pk, field="PatientName", prefix="PHANTOM"
    )
    assert [(v.value, v.count) for v in found] == expected
    assert (
        catalog.values(project_pk=shared_cohort.project_pk, field="PatientName", prefix="%") == []
    )
    other = catalog.values(
        project_pk=shared_cohort.other_project_pk, field="PatientName", prefix="p"
    )
    theirs = Counter(str(ds.PatientName) for ds in shared_cohort.other_series.values())
    assert [(v.value, v.count) for v in other] == sorted(theirs.items())


def test_a_failed_facets_call_leaves_the_connection_usable(shared_cohort: Cohort) -> None:
    catalog = shared_cohort.platform.catalog
    specs = [FacetSpec(field="Modality"), FacetSpec(field="Modality", type="histogram")]
    for _ in range(3):
        with pytest.raises(InvalidInput):
            catalog.facets(
                project_pk=shared_cohort.project_pk, query=parse_query(None), specs=specs
            )
    (found,) = catalog.facets(
        project_pk=shared_cohort.project_pk, query=parse_query(None), specs=specs[:1]
    )
    assert sum(b.count for b in found.buckets) == len(shared_cohort.series)
