"""radiomics, evaluate-segmentation and collect-metadata through the engine."""

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydicom import Dataset
from pydicom.sr.codedict import codes

from kaapana.catalog import parse_query
from kaapana.errors import InvalidInput
from kaapana.operators.series import SegmentSpec, build_segmentation, segment_masks, sort_series
from kaapana.testing import ct_series
from kaapana.testing.synthetic import ct_segmentation
from kaapana.workflows.builtin import metadata as metadata_workflows
from tests.helpers import part10
from tests.workflows.conftest import Site
from tests.workflows.test_library_segment import store

PARAMS = {
    "feature_classes": ["firstorder", "shape"],
    "indexed_features": ["original_shape_VoxelVolume", "original_firstorder_Mean"],
}


def text_artifact(site: Site, run_id: int, name: str) -> str:
    _, stream = site.platform.workflows.open_artifact(run_id, name)
    with stream:
        return stream.read().decode()


def test_radiomics_of_a_seg_finds_its_image_indexes_features_and_summarises_the_run(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=0)
    platform = site.platform
    ct = ct_series(rows=32, columns=32, slices=8)
    ct_uid = store(platform, ct)
    seg = ct_segmentation(ct, labels=("lungs", "bones"))
    seg_uid = store(platform, [seg])
    run = platform.workflows.start_run(
        project_pk=site.project_pk, workflow="radiomics", series=[seg_uid], params=PARAMS
    )
    done = platform.workflows.wait(run.id, timeout=180)
    assert done.state == "succeeded", done

    features = json.loads(text_artifact(site, run.id, f"batch/{seg_uid}/radiomics/features.json"))
    assert features["image_series_instance_uid"] == ct_uid
    lungs, bones = features["segments"]
    masks = seg.get_pixels_by_source_instance([ds.SOPInstanceUID for ds in ct], dtype=bool)
    voxel_ml = 2.0 * 2.0 * 2.5
    assert lungs["label"] == "lungs" and lungs["voxels"] == int(masks[..., 0].sum())
    assert lungs["features"]["original_shape_VoxelVolume"] == lungs["voxels"] * voxel_ml
    assert -900 < lungs["features"]["original_firstorder_Mean"] < -800  # lung HU of the phantom
    assert bones["features"]["original_firstorder_Mean"] > 200

    run_table = text_artifact(site, run.id, "radiomics-summary/radiomics.csv")
    table = list(csv.DictReader(io.StringIO(run_table)))
    assert [(row["seg_series_instance_uid"], row["segment_label"]) for row in table] == [
        (seg_uid, "lungs"),
        (seg_uid, "bones"),
    ]
    assert float(table[0]["original_shape_VoxelVolume"]) == lungs["voxels"] * voxel_ml
    svg = text_artifact(site, run.id, "radiomics-summary/summary.svg")
    assert svg.startswith("<svg") and "original_firstorder_Mean" in svg and "bones" in svg

    volume = lungs["voxels"] * voxel_ml
    found = platform.catalog.search(
        project_pk=site.project_pk,
        query=parse_query(
            {
                "where": {
                    "field": "radiomics.lungs.original_shape_VoxelVolume",
                    "op": "range",
                    "value": [volume - 1, volume + 1],
                }
            }
        ),
    )
    assert [hit.series_instance_uid for hit in found.items] == [seg_uid]
    indexed = platform.catalog.fields(project_pk=site.project_pk, prefix="radiomics")
    fields = {f.field: f for f in indexed}
    assert set(fields) == {
        f"radiomics.{label}.{name}"
        for label in ("lungs", "bones")
        for name in PARAMS["indexed_features"]
    }
    assert fields["radiomics.bones.original_firstorder_Mean"].derived


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_seg_without_its_image_fails_by_name_while_the_other_seg_and_images_succeed(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=0)
    platform = site.platform
    ct = ct_series(rows=32, columns=32, slices=8)
    ct_uid = store(platform, ct, dataset="mixed")
    seg_uid = store(platform, [ct_segmentation(ct, labels=("lungs",))], dataset="mixed")
    absent = ct_series(patient_id="ABSENT", rows=32, columns=32, slices=8, seed=2)
    orphan = ct_segmentation(absent, seed=2, labels=("lungs",))
    platform.archive.store_bytes(part10(orphan), platform.archive.target("admin", "mixed"))
    run = platform.workflows.start_run(
        project_pk=site.project_pk, workflow="radiomics", dataset="mixed", params=PARAMS
    )
    done = platform.workflows.wait(run.id, timeout=180)
    assert done.state == "failed"
    tasks = {(t.step, t.series_instance_uid): t for t in done.tasks}
    assert tasks["radiomics", ct_uid].state == "succeeded"
    assert tasks["radiomics", seg_uid].state == "succeeded"
    failed = tasks["radiomics", str(orphan.SeriesInstanceUID)]
    assert failed.state == "failed"
    assert f"references image series ['{absent[0].SeriesInstanceUID}']" in failed.error
    assert tasks["radiomics-summary", None].state == "upstream_failed"
    names = {a.name for a in platform.workflows.artifacts(run.id)}
    assert f"batch/{seg_uid}/radiomics/features.csv" in names


def model_seg(ct: list[Dataset], seg: Dataset, *, shift_lungs: int) -> Dataset:
    """A "model's" SEG of ``ct``: the phantom's masks, the lungs moved by rows."""
    ordered, _ = sort_series(ct)
    _, _, masks = segment_masks(seg, ordered)
    lungs, bones = masks[..., 0], masks[..., 1]
    specs = [
        SegmentSpec(label, codes.cid7150.AnatomicalStructure, code)
        for label, code in (("Lungs", codes.SCT.Lung), ("bones", codes.SCT.Bone))
    ]
    return build_segmentation(
        ordered,
        {"Lungs": np.roll(lungs, shift_lungs, axis=1), "bones": bones},
        specs,
        operator="test-model",
        parameters={"shift": shift_lungs},
        series_description="model",
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_evaluate_segmentation_scores_predictions_against_the_reference_by_tag(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    site = make_site(series=0)
    platform = site.platform
    ct = ct_series(rows=32, columns=32, slices=8)
    store(platform, ct, dataset="eval")
    reference = ct_segmentation(ct, labels=("lungs", "bones"))
    same, shifted = (model_seg(ct, reference, shift_lungs=shift) for shift in (0, 1))
    absent = ct_series(patient_id="ABSENT", rows=32, columns=32, slices=8, seed=2)
    unpaired = ct_segmentation(absent, seed=2, labels=("lungs",))
    uids = {name: store(platform, [seg], dataset="eval") for name, seg in (
        ("reference", reference), ("same", same), ("shifted", shifted), ("unpaired", unpaired)
    )}  # fmt: skip
    platform.catalog.tag(
        project_pk=site.project_pk, series_instance_uids=[uids["reference"]], add=["truth"]
    )
    predictions = [uids["same"], uids["shifted"], uids["unpaired"]]
    platform.catalog.tag(
        project_pk=site.project_pk, series_instance_uids=predictions, add=["model"]
    )
    run = platform.workflows.start_run(
        project_pk=site.project_pk,
        workflow="evaluate-segmentation",
        dataset="eval",
        params={"prediction_tag": "model", "reference_tag": "truth"},
    )
    done = platform.workflows.wait(run.id, timeout=180)
    # The prediction without a reference fails alone, with the reason; the report goes on.
    assert done.state == "failed", done
    failed = {t.series_instance_uid: t.error for t in done.tasks if t.state != "succeeded"}
    assert failed == {
        uids["unpaired"]: f"prediction {uids['unpaired']}: 0 reference SEGs of image series "
        f"{absent[0].SeriesInstanceUID}, one needed"
    }

    table = text_artifact(site, run.id, "evaluate-segmentation/metrics.csv")
    rows = {
        (row["prediction_series_instance_uid"], row["label"]): row
        for row in csv.DictReader(io.StringIO(table))
    }
    assert len(rows) == 4
    for label in ("lungs", "bones"):  # "Lungs" of the model matches "lungs" of the reference
        row = rows[uids["same"], label]
        assert (float(row["dice"]), float(row["iou"]), float(row["hd95_mm"])) == (1.0, 1.0, 0.0)
    masks = reference.get_pixels_by_source_instance([ds.SOPInstanceUID for ds in ct], dtype=bool)
    lungs = masks[..., 0]
    moved = np.roll(lungs, 1, axis=1)
    overlap = int((lungs & moved).sum())
    row = rows[uids["shifted"], "lungs"]
    assert float(row["dice"]) == pytest.approx(2 * overlap / (2 * int(lungs.sum())))
    assert float(row["iou"]) == pytest.approx(overlap / int((lungs | moved).sum()))
    assert float(row["hd95_mm"]) == pytest.approx(2.0)  # one row of 2 mm
    assert float(row["volume_difference_ml"]) == pytest.approx(0.0)
    assert float(rows[uids["shifted"], "bones"]["dice"]) == 1.0

    report = text_artifact(site, run.id, "evaluate-segmentation/report.html")
    assert "<svg" in report and "Dice per label" in report
    assert "2 prediction SEGs, 4 label comparisons" in report and uids["unpaired"] not in report
    pair = json.loads(text_artifact(site, run.id, f"batch/{uids['same']}/evaluate/pair.json"))
    assert (pair["reference"], pair["image"]) == (uids["reference"], ct[0].SeriesInstanceUID)


def test_collect_metadata_writes_one_row_per_series_as_csv_and_parquet(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    site = make_site(series=0)
    platform = site.platform
    ct = ct_series(rows=16, columns=16, slices=2, series_description="CT chest")
    ct_uid = store(platform, ct, dataset="cohort")
    seg_uid = store(platform, [ct_segmentation(ct, labels=("lungs",))], dataset="cohort")
    platform.catalog.tag(project_pk=site.project_pk, series_instance_uids=[ct_uid], add=["train"])
    run = platform.workflows.start_run(
        project_pk=site.project_pk,
        workflow="collect-metadata",
        dataset="cohort",
        params={"attributes": ["PatientName", "SeriesDescription", "PixelSpacing", "Rows"]},
    )
    done = platform.workflows.wait(run.id, timeout=180)
    assert done.state == "succeeded", done

    _, stream = platform.workflows.open_artifact(run.id, "collect-metadata/metadata.parquet")
    with stream:
        table = pq.read_table(io.BytesIO(stream.read()))
    rows = {row["series_instance_uid"]: row for row in table.to_pylist()}
    assert set(rows) == {ct_uid, seg_uid}
    assert rows[ct_uid]["SeriesDescription"] == "CT chest"
    assert rows[ct_uid]["PixelSpacing"] == [2.0, 2.0] and rows[ct_uid]["Rows"] == 16.0
    assert rows[ct_uid]["PatientName"] == str(ct[0].PatientName)
    assert (rows[ct_uid]["tags"], rows[ct_uid]["datasets"]) == (["train"], ["cohort"])
    assert rows[seg_uid]["modality"] == "SEG" and rows[seg_uid]["PixelSpacing"] is None
    assert table.schema.field("Rows").type == pa.float64()

    text = text_artifact(site, run.id, "collect-metadata/metadata.csv")
    by_uid = {row["series_instance_uid"]: row for row in csv.DictReader(io.StringIO(text))}
    assert by_uid[ct_uid]["PixelSpacing"] == "2\\2" and by_uid[ct_uid]["Rows"] == "16"


def test_collect_metadata_refuses_unknown_and_binary_attributes() -> None:
    (workflow,) = metadata_workflows.WORKFLOWS
    with pytest.raises(InvalidInput, match=r"'Colour' is not a DICOM keyword.*'PixelData' is"):
        workflow.validate_params({"attributes": ["Colour", "PixelData"]})
