"""Series validation (dciodvfy and the built-in checks) and completeness of a series' geometry."""

import shutil
import warnings
from collections.abc import Sequence

import pytest
from pydicom import Dataset

from kaapana.catalog import check_completeness, validate_series
from kaapana.catalog.slices import Slice
from kaapana.catalog.validation import (
    REQUIRED_KEYWORDS,
    SeriesValidationResult,
    ValidationStatusValues,
    ValidatorValues,
    dataset_findings,
    stored_validation,
)
from kaapana.db.engine import session_factory
from kaapana.db.models import Series
from kaapana.platform import Platform
from kaapana.testing import ct_series, mr_series
from tests.api.conftest import Site
from tests.catalog.helpers import arrive, store

MISSING = "/nonexistent/dciodvfy"


@pytest.fixture(params=[ValidatorValues.dciodvfy, ValidatorValues.pydicom])
def validator(request: pytest.FixtureRequest) -> ValidatorValues:
    """Each test once with dciodvfy and once with the built-in checks (dciodvfy not found)."""
    if request.param is ValidatorValues.dciodvfy and shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy is not installed (make test installs dicom3tools)")
    return ValidatorValues(request.param)


def _validated(
    platform: Platform, series_instance_uid: str, validator: ValidatorValues
) -> SeriesValidationResult:
    with session_factory(platform.engine)() as session:
        series = session.query(Series).filter_by(series_instance_uid=series_instance_uid).one()
    return validate_series(
        engine=platform.engine,
        store=platform.store,
        series_pk=series.id,
        dciodvfy_path="dciodvfy" if validator is ValidatorValues.dciodvfy else MISSING,
    )


def test_a_good_series_passes_on_arrival(platform: Platform) -> None:
    ct = ct_series(rows=32, columns=32, slices=5, seed=11)
    mr = mr_series(rows=32, columns=32, slices=3, seed=11)
    store(platform, [*ct, *mr])
    arrive(platform)
    with session_factory(platform.engine)() as session:
        for uid in (ct[0].SeriesInstanceUID, mr[0].SeriesInstanceUID):
            series = session.query(Series).filter_by(series_instance_uid=uid).one()
            result = stored_validation(session, series)
            assert result is not None and result.errors == [], result
            assert result.status in (ValidationStatusValues.ok, ValidationStatusValues.warning)
            expected = "dciodvfy" if shutil.which("dciodvfy") else "pydicom"
            assert result.validator == expected


def test_a_good_series_passes_either_validator(
    platform: Platform, validator: ValidatorValues
) -> None:
    ct = ct_series(rows=32, columns=32, slices=4, seed=12)
    store(platform, ct)
    result = _validated(platform, ct[0].SeriesInstanceUID, validator)
    assert result.validator is validator
    assert result.errors == []


def test_a_missing_slice_is_an_error(platform: Platform, validator: ValidatorValues) -> None:
    ct = ct_series(rows=32, columns=32, slices=6, seed=13)
    store(platform, [ds for ds in ct if ds.InstanceNumber != 3])
    result = _validated(platform, ct[0].SeriesInstanceUID, validator)
    assert result.status is ValidationStatusValues.error
    errors = result.errors
    assert "missing instance numbers: 3" in errors
    assert any(
        e.startswith("slice spacing deviates from the median 2.50 mm: 5.00 mm") for e in errors
    )


def test_wrong_values_for_their_vr_are_errors(
    platform: Platform, validator: ValidatorValues
) -> None:
    ct = ct_series(rows=32, columns=32, slices=3, seed=14)
    broken = ct[1]  # the middle slice, which the sample always includes
    with warnings.catch_warnings():  # pydicom warns about what is written here on purpose
        warnings.simplefilter("ignore")
        broken.FrameOfReferenceUID = "1.2.abc"
        broken.ContentDate = "2024-13-45"
    store(platform, ct)
    result = _validated(platform, ct[0].SeriesInstanceUID, validator)
    assert result.status is ValidationStatusValues.error
    errors = " | ".join(result.errors)
    names = (
        ("Frame of Reference UID", "Content Date")
        if validator is ValidatorValues.dciodvfy
        else ("FrameOfReferenceUID (UI)", "ContentDate (DA)")
    )
    for name in names:
        assert name in errors
    assert broken.SOPInstanceUID in errors
    assert ct[0].SOPInstanceUID not in errors


def test_the_builtin_checks_require_the_identifying_attributes() -> None:
    ds = ct_series(rows=16, columns=16, slices=1, seed=15)[0]
    assert dataset_findings(ds).errors == ()
    ds.PatientID = ""
    del ds.Modality
    errors = dataset_findings(ds).errors
    assert [e.split(" ")[0] for e in errors] == ["PatientID", "Modality"]
    assert set(REQUIRED_KEYWORDS) >= {"PatientID", "Modality", "SOPInstanceUID"}


def _slices(datasets: Sequence[Dataset]) -> list[Slice]:
    return [
        Slice.from_json(
            sop_instance_uid=ds.SOPInstanceUID,
            storage_key=f"key-{index}",
            instance_number=int(ds.InstanceNumber),
            metadata={k: v for k, v in ds.to_json_dict().items() if k != "7FE00010"},
        )
        for index, ds in enumerate(datasets)
    ]


def test_completeness_checks() -> None:
    ct = ct_series(rows=16, columns=16, slices=6, seed=16)
    assert check_completeness(_slices(ct)).complete
    assert check_completeness(_slices(ct[::-1])).complete  # any order

    gap = [ds for ds in ct if ds.InstanceNumber != 4]
    for number, ds in enumerate(gap, start=1):
        ds.InstanceNumber = number  # numbered without a gap: only the positions tell
    found = check_completeness(_slices(gap))
    assert not found.complete
    assert len(found.messages) == 1 and found.messages[0].startswith("slice spacing deviates")

    ct = ct_series(rows=16, columns=16, slices=4, seed=16)
    ct[3].ImagePositionPatient = list(ct[2].ImagePositionPatient)
    assert check_completeness(_slices(ct)).messages == (
        f"duplicate slice positions at {float(ct[2].ImagePositionPatient[2])} mm",
    )

    ct = ct_series(rows=16, columns=16, slices=4, seed=16)
    ct[1].ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    assert check_completeness(_slices(ct)).messages == (
        "mixed orientation: 2 different ImageOrientationPatient values",
    )


def test_rest_serves_the_validation_within_the_project(site: Site) -> None:
    uid = site.study_a[0].SeriesInstanceUID
    answer = site.get(f"/api/v1/series/{uid}/validation", who="sci_a")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["series_instance_uid"] == uid
    assert body["status"] in ("ok", "warning") and body["errors"] == []
    assert body["validator"] in ("dciodvfy", "pydicom") and body["checked_at"]
    again = site.get(f"/api/v1/series/{uid}/validation", who="sci_a").json()
    assert again["checked_at"] == body["checked_at"]  # stored, not validated again
    assert site.get(f"/api/v1/series/{uid}/validation", who="sci_b").status_code == 404
