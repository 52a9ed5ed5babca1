"""QIDO-RS: searches answer from the index, filtered to what the caller may see."""

from typing import Any

from tests.api.conftest import Site


def _values(results: list[dict[str, Any]], tag: str) -> list[Any]:
    return [r[tag]["Value"][0] if "Value" in r.get(tag, {}) else None for r in results]


def test_study_search_carries_the_required_attributes(site: Site) -> None:
    answer = site.get("/dicomweb/studies", "admin")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/dicom+json")
    studies = answer.json()
    assert len(studies) == 2
    by_patient = {s["00100020"]["Value"][0]: s for s in studies}
    a = by_patient["PA"]
    assert a["00080061"]["Value"] == ["CT", "MR"]  # ModalitiesInStudy
    assert a["00201206"]["Value"] == [2]  # NumberOfStudyRelatedSeries
    assert a["00201208"]["Value"] == [6]  # NumberOfStudyRelatedInstances
    assert a["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Phantom^One"}]}
    assert a["00080050"] == {"vr": "SH"} or "Value" in a["00080050"]  # AccessionNumber
    uid = site.study_a[0].StudyInstanceUID
    assert a["00081190"]["Value"] == [f"http://testserver/dicomweb/studies/{uid}"]
    assert "00080052" not in a  # QueryRetrieveLevel is C-FIND's, not QIDO's


def test_matching_by_keyword_tag_wildcard_range_and_uid_list(site: Site) -> None:
    def studies(**params: str) -> list[str]:
        answer = site.get("/dicomweb/studies", params=params)
        assert answer.status_code == 200, answer.text
        return sorted(_values(answer.json(), "00100020"))

    assert studies(PatientID="PA") == ["PA"]
    assert studies(**{"00100020": "P*"}) == ["PA", "PB"]
    assert studies(PatientID="P?") == ["PA", "PB"]
    assert studies(ModalitiesInStudy="MR") == ["PA"]
    date = site.study_a[0].StudyDate
    assert studies(StudyDate=f"{date}-") == ["PA", "PB"]
    assert studies(StudyDate="19000101-19000102") == []
    uids = f"{site.study_a[0].StudyInstanceUID},{site.study_b[0].StudyInstanceUID}"
    assert studies(StudyInstanceUID=uids) == ["PA", "PB"]


def test_series_and_instance_levels_with_includefield(site: Site) -> None:
    study = site.study_a[0].StudyInstanceUID
    series = site.get(f"/dicomweb/studies/{study}/series", params={"Modality": "CT"}).json()
    assert _values(series, "00080060") == ["CT"]
    assert _values(series, "00201209") == [4]
    series_uid = site.study_a[0].SeriesInstanceUID
    instances = site.get(
        f"/dicomweb/studies/{study}/series/{series_uid}/instances",
        params={"includefield": "SliceThickness,00280030"},
    ).json()
    assert len(instances) == 4
    assert _values(instances, "00280010") == [32] * 4  # Rows, required at this level
    assert instances[0]["00180050"]["Value"] == [2.5]  # SliceThickness
    assert len(instances[0]["00280030"]["Value"]) == 2  # PixelSpacing by tag
    full = site.get(
        "/dicomweb/instances",
        params={"SOPInstanceUID": site.study_a[1].SOPInstanceUID, "includefield": "all"},
    ).json()
    assert len(full) == 1
    assert full[0]["7FE00010"]["BulkDataURI"].startswith("http://testserver/dicomweb/studies/")
    paged = site.get("/dicomweb/instances", params={"limit": "2", "offset": "1"})
    assert len(paged.json()) == 2
    assert "more than 2" in paged.headers["warning"]


def test_scope_hides_other_projects(site: Site) -> None:
    seen = site.get("/dicomweb/studies", "sci_a").json()
    assert _values(seen, "00100020") == ["PA"]
    other = site.study_b[0].StudyInstanceUID
    assert site.get(f"/dicomweb/studies/{other}/series", "sci_a").json() == []
    narrowed = site.get("/dicomweb/projects/B/studies", "admin").json()
    assert _values(narrowed, "00100020") == ["PB"]
    assert site.get("/dicomweb/projects/B/studies", "sci_a").status_code == 404
    assert site.get("/dicomweb/studies", "anonymous").status_code == 401


def test_bad_queries_are_refused_with_reasons(site: Site) -> None:
    cases = {
        "NoSuchKeyword=1": "unknown query key",
        "limit=99999999": "'limit' must be between",
        "limit=ten": "'limit' must be an integer",
        "Rows=many": "needs a number",
        "StudyInstanceUID=1.2.x": "not a valid UID",
    }
    for query, reason in cases.items():
        answer = site.get(f"/dicomweb/studies?{query}")
        assert answer.status_code == 400, query
        assert reason in answer.json()["detail"], answer.json()
    assert site.get("/dicomweb/studies/not-a-uid/series").status_code == 400
