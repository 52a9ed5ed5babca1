"""Every operator's parameters model gives a JSON Schema a form can be built from."""

import pytest
from pydantic import BaseModel, ValidationError

from kaapana.operators.deidentify import DeidentifyParameters
from kaapana.operators.import_nifti import ImportNiftiParameters
from kaapana.operators.nifti import ConvertToNiftiParameters
from kaapana.operators.segment_ct import SegmentCTParameters
from kaapana.operators.segment_otsu import SegmentOtsuParameters

MODELS = [
    DeidentifyParameters,
    SegmentCTParameters,
    SegmentOtsuParameters,
    ConvertToNiftiParameters,
    ImportNiftiParameters,
]


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_schema_describes_every_parameter_and_defaults_validate(model: type[BaseModel]):
    schema = model.model_json_schema()
    for name, prop in schema["properties"].items():
        assert prop.get("description"), f"{model.__name__}.{name} has no description"
    assert model.model_validate(model().model_dump(mode="json")) == model()


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_unknown_parameters_are_refused_by_name(model: type[BaseModel]):
    with pytest.raises(ValidationError, match="no_such_option"):
        model.model_validate({"no_such_option": 1})
