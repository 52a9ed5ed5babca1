"""train-segmentation and predict-segmentation through the engine: a U-Net learns the phantom's
lungs from image + SEG pairs, is registered, and its SEG of a new CT matches the ground truth."""

import csv
import io
from collections.abc import Callable

import highdicom as hd
import numpy as np
import pytest
from pydicom import Dataset, dcmread
from sqlalchemy import select

from kaapana.db.models import Instance, RunOutput
from kaapana.errors import NotFound
from kaapana.platform import Platform
from kaapana.testing import ct_series
from kaapana.testing.synthetic import ct_segmentation, mr_series
from tests.helpers import part10
from tests.workflows.conftest import Site

pytestmark = pytest.mark.slow

TINY = {
    "model_name": "lungs",
    "labels": ["lungs"],
    "epochs": 12,
    "learning_rate": 0.01,
    "channels": [4, 8, 16],
    "num_res_units": 1,
    "patch_size": [16, 32, 32],
    "samples_per_case": 2,
    "threads": 1,
    "device": "cpu",
}


def case(seed: int) -> tuple[list[Dataset], Dataset]:
    ct = ct_series(patient_id=f"ML{seed}", rows=32, columns=32, slices=16, seed=seed)
    return ct, ct_segmentation(ct, seed=seed, labels=("lungs",))


def store(platform: Platform, datasets: list[Dataset], dataset: str) -> str:
    target = platform.archive.target("admin", dataset)
    for ds in datasets:
        platform.archive.store_bytes(part10(ds), target)
    return str(datasets[0].SeriesInstanceUID)


def lungs(seg: Dataset, ct: list[Dataset]) -> np.ndarray:
    """The SEG's lungs on the CT's slices (instance order), by the frames' source references."""
    pixels = hd.seg.Segmentation.from_dataset(seg).get_pixels_by_source_instance(
        [ds.SOPInstanceUID for ds in ct], assert_missing_frames_are_empty=True, dtype=np.uint8
    )
    return pixels[..., 0] > 0


# One engine: the schema is checked on both by the schema tests, and training twice costs time.
@pytest.mark.parametrize("database_url", [None])
def test_a_trained_model_is_registered_and_its_seg_of_a_new_ct_finds_the_lungs(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=0)
    platform = site.platform
    for seed in range(8):
        ct, seg = case(seed)
        store(platform, ct, "training")
        store(platform, [seg], "training")
    run = platform.workflows.start_run(
        project_pk=site.project_pk, workflow="train-segmentation", dataset="training", params=TINY
    )
    done = platform.workflows.wait(run.id, timeout=240)
    assert done.state == "succeeded", [(t.step, t.error) for t in done.tasks]

    model = platform.models.get("lungs")
    assert (model.version, model.run_id, model.modality) == (1, run.id, "CT")
    assert [item["label"] for item in model.labels] == ["lungs"]
    assert model.metrics["validation_dice"]["lungs"] >= 0.7
    assert model.metrics["train_patients"] + model.metrics["validation_patients"] == 8
    names = {a.name for a in platform.workflows.artifacts(run.id)}
    for name in ("model.pt", "metrics.csv", "metrics.json", "metrics.svg", "split.json"):
        assert f"train-segmentation/{name}" in names
    (training,) = [t for t in done.tasks if t.step == "train-segmentation"]
    kept = platform.workflows.workspace.checkpoint_dir(run.id, training.id) / "checkpoint.pt"
    assert kept.is_file()  # what a retry of the training would resume from
    metrics = platform.results.get(f"runs/{run.id}/train-segmentation/metrics.csv").decode()
    assert metrics.splitlines()[0] == "epoch,loss,dice_lungs,seconds"
    assert len(metrics.splitlines()) == 1 + TINY["epochs"]

    new_ct, truth = case(20)
    ct_uid = store(platform, new_ct, "new")
    mr_uid = store(platform, mr_series(patient_id="ML-MR", rows=32, columns=32, slices=8), "new")
    with pytest.raises(NotFound, match="'elsewhere' not found"):
        platform.workflows.start_run(
            project_pk=site.project_pk,
            workflow="predict-segmentation",
            dataset="new",
            params={"model": "elsewhere"},
        )
    applied = platform.workflows.start_run(
        project_pk=site.project_pk,
        workflow="predict-segmentation",
        dataset="new",
        params={"model": "lungs/1", "threads": 1, "device": "cpu"},
    )
    finished = platform.workflows.wait(applied.id, timeout=120)
    tasks = {t.series_instance_uid: t for t in finished.tasks}
    assert tasks[ct_uid].state == "succeeded", tasks[ct_uid].error
    assert tasks[mr_uid].state == "failed"
    assert "model 'lungs/1' segments CT series; this series is MR" in tasks[mr_uid].error

    with platform.archive._sessions() as session:
        (sop,) = session.scalars(
            select(RunOutput.sop_instance_uid).where(RunOutput.run_pk == applied.id)
        )
        key = session.scalar(select(Instance.storage_key).where(Instance.sop_instance_uid == sop))
    with platform.store.open(key) as stream:
        seg = dcmread(stream)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ct_uid
    assert seg.FrameOfReferenceUID == new_ct[0].FrameOfReferenceUID
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["lungs"]
    algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmFamilyCodeSequence[0].CodeMeaning == "Artificial Intelligence"
    predicted, expected = lungs(seg, new_ct), lungs(truth, new_ct)
    dice = 2 * (predicted & expected).sum() / (predicted.sum() + expected.sum())
    assert dice >= 0.7

    # evaluate-segmentation scores the stored prediction against the ground truth, as computed
    truth_uid = store(platform, [truth], "scored")
    platform.catalog.tag(
        project_pk=site.project_pk, series_instance_uids=[truth_uid], add=["truth"]
    )
    platform.catalog.tag(
        project_pk=site.project_pk, series_instance_uids=[seg.SeriesInstanceUID], add=["model"]
    )
    project = platform.archive.projects.get("admin")
    platform.datasets.add(project, "scored", [seg.SeriesInstanceUID], actor="test")
    evaluation = platform.workflows.start_run(
        project_pk=site.project_pk,
        workflow="evaluate-segmentation",
        dataset="scored",
        params={"prediction_tag": "model", "reference_tag": "truth"},
    )
    scored = platform.workflows.wait(evaluation.id, timeout=120)
    assert scored.state == "succeeded", [(t.step, t.error) for t in scored.tasks]
    table = platform.results.get(f"runs/{evaluation.id}/evaluate-segmentation/metrics.csv")
    (row,) = csv.DictReader(io.StringIO(table.decode()))
    assert row["label"] == "lungs" and float(row["dice"]) == pytest.approx(dice)
