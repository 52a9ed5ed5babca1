"""The PACS workflows' parameters and the C-FIND identifier they become."""

from datetime import date

import pytest
from pydantic import BaseModel, ValidationError

from kaapana.operators.pacs import (
    STUDY_COLUMNS,
    QueryPacsParameters,
    RetrieveFromPacsParameters,
    SendDicomParameters,
    study_identifier,
)
from kaapana.workflows.builtin.curation import TagDatasetParameters


@pytest.mark.parametrize(
    "model",
    [QueryPacsParameters, RetrieveFromPacsParameters, SendDicomParameters, TagDatasetParameters],
    ids=lambda model: model.__name__,
)
def test_every_parameter_is_described_and_unknown_ones_are_refused(model: type[BaseModel]):
    schema = model.model_json_schema()
    for name, prop in schema["properties"].items():
        assert prop.get("description"), f"{model.__name__}.{name} has no description"
    with pytest.raises(ValidationError, match="no_such_option"):
        model.model_validate({"node": "pacs", "add": ["x"], "no_such_option": 1})


def test_filters_become_study_level_matching_keys_with_every_return_key() -> None:
    filters = QueryPacsParameters(
        node="pacs",
        patient_id="KP*",
        study_date_from=date(2024, 1, 1),
        study_date_to=date(2024, 2, 29),
        modality="CT",
    )
    ds = study_identifier(filters, ["1.2.3", "1.2.4"])
    assert ds.QueryRetrieveLevel == "STUDY"
    assert ds.PatientID == "KP*" and ds.ModalitiesInStudy == "CT"
    assert ds.StudyDate == "20240101-20240229"
    assert list(ds.StudyInstanceUID) == ["1.2.3", "1.2.4"]
    assert all(keyword in ds for keyword in STUDY_COLUMNS)
    assert (
        study_identifier(QueryPacsParameters(node="p", study_date_to=date(2024, 3, 1))).StudyDate
        == "-20240301"
    )
    one_day = QueryPacsParameters(
        node="p", study_date_from=date(2024, 3, 1), study_date_to=date(2024, 3, 1)
    )
    assert study_identifier(one_day).StudyDate == "20240301"
    assert study_identifier(QueryPacsParameters(node="p")).PatientID == ""


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"node": "p"}, "give study_instance_uids or at least one filter"),
        ({"node": "p", "study_instance_uids": ["1.2.x"]}, "is not a valid UID"),
        ({"node": "p", "patient_id": "A\\B"}, "without backslash"),
        ({"node": "p", "patient_id": "A", "dataset": "a/b"}, "'dataset' must be"),
        (
            {"node": "p", "study_date_from": "2024-02-01", "study_date_to": "2024-01-01"},
            "is after study_date_to",
        ),
        ({"node": ""}, "at least 1 character"),
    ],
)
def test_retrieving_needs_a_choice_and_valid_values(values: dict[str, object], message: str):
    with pytest.raises(ValidationError, match=message):
        RetrieveFromPacsParameters.model_validate(values)


def test_tag_dataset_needs_a_change_and_valid_tags() -> None:
    with pytest.raises(ValidationError, match="give tags to add or to remove"):
        TagDatasetParameters()
    with pytest.raises(ValidationError, match="both added and removed"):
        TagDatasetParameters(add=["a"], remove=["a"])
    with pytest.raises(ValidationError, match="letters, digits"):
        TagDatasetParameters(add=["*"])
