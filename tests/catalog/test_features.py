"""set-series-features: a task's features of a series become catalog number fields."""

import pytest

from kaapana.catalog import parse_query
from kaapana.catalog.workflow_actions import SET_SERIES_FEATURES, set_series_features_handler
from kaapana.errors import InvalidInput
from kaapana.platform import Platform
from kaapana.testing import ct_series
from kaapana.workflows.actions import ActionRequest
from tests.helpers import part10


def request(uid: str, project_pk: int, **payload: object) -> ActionRequest:
    return ActionRequest(
        action=SET_SERIES_FEATURES,
        run_id=1,
        project_pk=project_pk,
        project="admin",
        series_instance_uid=uid,
        input_series=(uid,),
        payload=payload,
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_features_are_searchable_replaced_as_a_whole_and_checked(platform: Platform) -> None:
    ct = ct_series(rows=16, columns=16, slices=2)
    for ds in ct:
        platform.archive.store_bytes(part10(ds), platform.archive.target("admin"))
    uid = str(ct[0].SeriesInstanceUID)
    project_pk = platform.archive.projects.get("admin").id
    handle = set_series_features_handler(platform.catalog)

    line = handle(request(uid, project_pk, source="radiomics", features={"lungs.volume": 4.5}))
    assert line == f"{SET_SERIES_FEATURES}: 1 radiomics features on series {uid}"

    def matching(field: str, op: str, value: object) -> list[str]:
        query = parse_query({"where": {"field": field, "op": op, "value": value}})
        page = platform.catalog.search(project_pk=project_pk, query=query)
        return [hit.series_instance_uid for hit in page.items]

    assert matching("radiomics.lungs.volume", ">", 4) == [uid]
    assert matching("radiomics.lungs.volume", ">", 5) == []
    handle(request(uid, project_pk, source="radiomics", features={"bones.volume": 1}))
    assert matching("radiomics.lungs.volume", "exists", True) == []
    assert matching("radiomics.bones.volume", "=", 1) == [uid]
    platform.catalog.reindex()
    assert matching("radiomics.bones.volume", "=", 1) == [uid]

    with pytest.raises(InvalidInput, match="feature source 'shape' is unknown"):
        handle(request(uid, project_pk, source="shape", features={"x": 1}))
    with pytest.raises(InvalidInput, match="feature 'x' must be a finite number"):
        handle(request(uid, project_pk, source="radiomics", features={"x": float("nan")}))
    with pytest.raises(InvalidInput, match="feature name 'a b'"):
        handle(request(uid, project_pk, source="radiomics", features={"a b": 1}))
    outside = request(uid, project_pk, source="radiomics", features={}, series="1.2.3")
    with pytest.raises(InvalidInput, match="input series only"):
        handle(outside)
    assert matching("radiomics.bones.volume", "=", 1) == [uid]
    with pytest.raises(InvalidInput, match="unknown field"):
        matching("shape.bones.volume", "=", 1)
