"""train-test-split's core: patients kept together, strata in proportion, the seed reproduces."""

from collections import Counter, defaultdict

import pytest
from pydantic import ValidationError

from kaapana.errors import InvalidInput
from kaapana.operators.split import (
    SplitItem,
    SplitValues,
    TrainTestSplitParameters,
    attribute_tag,
    split_items,
    split_patients,
)
from kaapana.testing import ct_series, mr_series


def _cohort(strata: dict[str, int], series_per_patient: int = 2) -> list[SplitItem]:
    return [
        SplitItem(f"1.2.{index}.{ordinal}.{number}", f"{stratum}-{number:03d}", stratum)
        for index, (stratum, patients) in enumerate(sorted(strata.items()))
        for number in range(patients)
        for ordinal in range(series_per_patient)
    ]


def _patients_per_part(items: list[SplitItem], parts: dict[str, SplitValues]) -> Counter:
    seen = {(item.stratum, item.patient_id, parts[item.series_instance_uid]) for item in items}
    return Counter((stratum, part) for stratum, _patient, part in seen)


def test_every_stratum_is_split_in_proportion_and_patients_stay_together() -> None:
    items = _cohort({"CT": 30, "MR": 10})
    parameters = TrainTestSplitParameters(
        test_fraction=0.2, validation_fraction=0.1, stratify_by="Modality", seed=3
    )
    split = split_patients(items, parameters)
    by_patient = defaultdict(set)
    for item in items:
        by_patient[item.patient_id].add(split.parts[item.series_instance_uid])
    assert all(len(parts) == 1 for parts in by_patient.values())
    counts = _patients_per_part(items, split.parts)
    assert counts == {
        ("CT", SplitValues.test): 6,
        ("CT", SplitValues.validation): 3,
        ("CT", SplitValues.train): 21,
        ("MR", SplitValues.test): 2,
        ("MR", SplitValues.validation): 1,
        ("MR", SplitValues.train): 7,
    }
    assert split.counts(items)["MR"]["test"] == {"patients": 2, "series": 4}


def test_small_strata_share_the_remainder_and_totals_are_kept() -> None:
    items = _cohort({"CT": 5, "MR": 3, "PT": 2}, series_per_patient=1)
    parameters = TrainTestSplitParameters(test_fraction=0.3, stratify_by="Modality", seed=1)
    counts = _patients_per_part(items, split_patients(items, parameters).parts)
    tests = {stratum: counts[stratum, SplitValues.test] for stratum in ("CT", "MR", "PT")}
    assert sum(tests.values()) == 3  # 30 % of 10 patients
    assert tests["CT"] in (1, 2) and tests["MR"] in (0, 1) and tests["PT"] in (0, 1)
    assert all(counts[stratum, SplitValues.train] >= 1 for stratum in tests)


def test_the_seed_reproduces_the_split_and_another_seed_changes_it() -> None:
    items = _cohort({"CT": 40})
    first = split_patients(items, TrainTestSplitParameters(seed=11)).parts
    assert split_patients(list(reversed(items)), TrainTestSplitParameters(seed=11)).parts == first
    assert split_patients(items, TrainTestSplitParameters(seed=12)).parts != first


def test_a_patient_with_two_modalities_is_a_stratum_of_its_own() -> None:
    items = [
        SplitItem("1.1", "P1", "CT"),
        SplitItem("1.2", "P1", "MR"),
        *[SplitItem(f"2.{n}", f"Q{n}", "CT") for n in range(4)],
    ]
    split = split_patients(items, TrainTestSplitParameters(test_fraction=0.4))
    assert split.strata["P1"] == "CT+MR"
    assert split.parts["1.1"] is split.parts["1.2"]


def test_the_strata_of_real_series_come_from_their_dicom_json() -> None:
    series = [ct_series(patient_id="C", rows=16, columns=16, slices=1)[0]]
    series.append(mr_series(patient_id="M", rows=16, columns=16, slices=1)[0])
    tag = TrainTestSplitParameters(stratify_by="Modality").stratify_by
    items = split_items([(ds.SeriesInstanceUID, ds.to_json_dict(), ()) for ds in series], tag)
    assert [(item.patient_id, item.stratum) for item in items] == [("C", "CT"), ("M", "MR")]


def test_series_are_read_from_dicom_json_and_bad_input_is_refused() -> None:
    tag = attribute_tag("Modality")
    metadata = {"00100020": {"vr": "LO", "Value": ["P7"]}, tag: {"vr": "CS", "Value": ["MR"]}}
    assert split_items([("1.2.3", metadata, ())], tag) == [SplitItem("1.2.3", "P7", "MR")]
    tags = ("diagnosis:positive", "reviewed", "diagnosis:rare")
    by_tag = TrainTestSplitParameters(stratify_by="tag:diagnosis").stratify_by
    assert split_items([("1.2.3", metadata, tags)], by_tag)[0].stratum == "positive+rare"
    assert split_items([("1.2.3", metadata, ("reviewed",))], by_tag)[0].stratum == ""
    with pytest.raises(InvalidInput, match=r"series 1\.2\.4 has no PatientID"):
        split_items([("1.2.4", {tag: {"vr": "CS", "Value": ["CT"]}}, ())], tag)
    with pytest.raises(InvalidInput, match="2 patients are too few"):
        split_patients(_cohort({"CT": 2}), TrainTestSplitParameters(validation_fraction=0.2))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"stratify_by": "NoSuchKeyword"}, "neither a DICOM keyword nor a tag"),
        ({"test_fraction": 0.6, "validation_fraction": 0.4}, "leave nothing for training"),
        ({"test_fraction": 0}, "greater than 0"),
        ({"tag_prefix": "bad*prefix"}, "letters, digits"),
        ({"stratify_by": "tag: "}, "needs a tag prefix"),
    ],
)
def test_parameters_are_checked(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainTestSplitParameters.model_validate(values)
    assert TrainTestSplitParameters(stratify_by="(0018,0015)").stratify_by == "00180015"
