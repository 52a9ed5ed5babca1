"""The catalog's query language where other parts take a query: facets' counts, datasets."""

from typing import Any

from kaapana.testing import ct_series
from tests.api.conftest import Site
from tests.catalog.test_api import API, _post, cataloged  # noqa: F401  (the fixture)
from tests.helpers import part10

MR = {"where": {"field": "Modality", "op": "=", "value": "MR"}}


def test_facets_answer_counts_for_the_query(cataloged: Site) -> None:  # noqa: F811
    answer = _post(cataloged, "/facets", {"project": "A", "facets": [{"field": "Modality"}]})
    assert answer.status_code == 200, answer.text
    everything = cataloged.study_a
    assert answer.json()["counts"] == {
        "patients": len({ds.PatientID for ds in everything}),
        "studies": len({ds.StudyInstanceUID for ds in everything}),
        "series": len({ds.SeriesInstanceUID for ds in everything}),
        "instances": len(everything),
        "modalities": {"CT": 1, "MR": 1},
    }
    body = {"project": "A", "query": MR, "facets": [{"field": "Modality"}]}
    counts = _post(cataloged, "/facets", body).json()["counts"]
    mr = [ds for ds in everything if ds.Modality == "MR"]
    assert (counts["series"], counts["instances"], counts["modalities"]) == (1, len(mr), {"MR": 1})


def _dataset(target: Site, **body: Any) -> Any:
    return _post(target, "/projects/A/datasets", body)


def test_datasets_from_a_catalog_query(cataloged: Site) -> None:  # noqa: F811
    snapshot = _dataset(cataloged, name="mr then", kind="snapshot", query=MR)
    assert snapshot.status_code == 201, snapshot.text
    assert snapshot.json()["modalities"] == {"MR": 1}
    ct = {"where": {"field": "Modality", "op": "=", "value": "CT"}}
    live = _dataset(cataloged, name="ct now", kind="live", query=ct)
    assert live.status_code == 201, live.text
    assert live.json()["series"] == 1
    more = ct_series(patient_id="PA2", rows=16, columns=16, slices=2, seed=11)
    target = cataloged.platform.archive.target("A")
    for ds in more:
        cataloged.platform.archive.store_bytes(part10(ds), target)
    cataloged.platform.catalog.reindex()
    now = cataloged.get(f"{API}/projects/A/datasets/ct%20now", who="sci_a").json()
    assert now["series"] == 2  # a live dataset follows its query
    then = cataloged.get(f"{API}/projects/A/datasets/mr%20then", who="sci_a").json()
    assert then["series"] == 1
    bad = _dataset(
        cataloged, name="bad", kind="live", query={"where": {"field": "Nope", "value": 1}}
    )
    assert bad.status_code == 400 and "unknown field 'Nope'" in bad.json()["detail"]
    empty = _dataset(
        cataloged,
        name="none",
        kind="snapshot",
        query={"where": {"field": "Modality", "value": "XA"}},
    )
    assert empty.status_code == 400 and "selects no series" in empty.json()["detail"]
