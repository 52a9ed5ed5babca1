"""convert-to-nifti and import-nifti through the engine, and runs without input series."""

import json
import re
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from sqlalchemy import select

from kaapana.db.models import Instance, RunOutput, Series
from kaapana.errors import InvalidInput
from kaapana.operators.nifti import nifti_to_seg, specs_from_labels_file
from kaapana.platform import Platform
from kaapana.testing import ct_series
from kaapana.testing.synthetic import ct_segmentation
from kaapana.workflows import ModeValues, Step, Workflow
from tests.helpers import part10
from tests.workflows import operators
from tests.workflows.conftest import Site
from tests.workflows.test_library_segment import store


def artifact_file(platform: Platform, run_id: int, name: str, folder: Path) -> Path:
    _, stream = platform.workflows.open_artifact(run_id, name)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(name).name
    with stream:
        target.write_bytes(stream.read())
    return target


def test_convert_to_nifti_converts_an_image_and_its_seg_onto_its_grid_voxel_for_voxel(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    site = make_site(series=0)
    platform = site.platform
    ct = ct_series(rows=32, columns=32, slices=6)
    ct_uid = store(platform, ct, dataset="both")
    seg = ct_segmentation(ct, labels=("lungs", "bones"))
    platform.archive.store_bytes(part10(seg), platform.archive.target("admin", "both"))
    seg_uid = str(seg.SeriesInstanceUID)
    orphan_ct = ct_series(patient_id="ORPHAN", rows=32, columns=32, slices=6, seed=3)
    orphan = ct_segmentation(orphan_ct, seed=3, labels=("lungs",))
    platform.archive.store_bytes(part10(orphan), platform.archive.target("admin", "both"))
    run = platform.workflows.start_run(
        project_pk=site.project_pk, workflow="convert-to-nifti", dataset="both"
    )
    done = platform.workflows.wait(run.id, timeout=180)
    tasks = {t.series_instance_uid: t for t in done.tasks}
    assert tasks[ct_uid].state == "succeeded" and tasks[seg_uid].state == "succeeded", done
    failed = tasks[str(orphan.SeriesInstanceUID)]
    assert failed.state == "failed"
    assert f"references image series ['{orphan_ct[0].SeriesInstanceUID}']" in failed.error
    assert "needs its reference image" in failed.error

    names = sorted(a.name for a in platform.workflows.artifacts(run.id))
    prefix = f"batch/{ct_uid}/convert-to-nifti/"
    assert f"{prefix}image.nii.gz" in names and f"{prefix}image.json" in names
    image = artifact_file(platform, run.id, f"{prefix}image.nii.gz", tmp_path)
    sidecar = artifact_file(platform, run.id, f"{prefix}image.json", tmp_path)
    assert json.loads(sidecar.read_text())["Modality"] == "CT"
    seg_prefix = f"batch/{seg_uid}/convert-to-nifti/"
    label_map = artifact_file(platform, run.id, f"{seg_prefix}image.nii.gz", tmp_path / "x")
    labels = artifact_file(platform, run.id, f"{seg_prefix}image.labels.json", tmp_path / "x")
    reference, converted = nib.load(image), nib.load(label_map)
    assert converted.shape == reference.shape
    np.testing.assert_allclose(converted.affine, reference.affine, atol=1e-4)

    layout, segments = specs_from_labels_file(labels)
    back = nifti_to_seg(label_map, ct, segments, stacked=layout == "stacked")
    uids = [ds.SOPInstanceUID for ds in ct]
    original = seg.get_pixels_by_source_instance(uids, dtype=np.uint8)
    again = back.get_pixels_by_source_instance(uids, dtype=np.uint8)
    assert original.any() and np.array_equal(original, again)
    assert [s.SegmentLabel for s in back.SegmentSequence] == ["lungs", "bones"]


def nnunet_folder(root: Path) -> Path:
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True)
    (root / "dataset.json").write_text(
        json.dumps(
            {
                "channel_names": {"0": "CT"},
                "labels": {"background": 0, "lungs": 1},
                "numTraining": 1,
                "file_ending": ".nii.gz",
            }
        )
    )
    affine = np.diag([1.5, 1.5, 3.0, 1.0])
    image = np.full((32, 32, 6), -1000, dtype=np.int16)
    image[6:26, 6:26] = 40
    image[10:16, 10:22, 1:5] = -850
    nib.save(nib.Nifti1Image(image, affine), root / "imagesTr" / "case_001_0000.nii.gz")
    labels = (image == -850).astype(np.uint8)
    nib.save(nib.Nifti1Image(labels, affine), root / "labelsTr" / "case_001.nii.gz")
    return root


def test_import_nifti_runs_without_series_and_stores_a_ct_and_its_seg(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    site = make_site(series=0)
    platform = site.platform
    source = nnunet_folder(tmp_path / "Dataset001_Lungs")
    run = platform.workflows.start_run(
        project_pk=site.project_pk, workflow="import-nifti", params={"source_dir": str(source)}
    )
    assert [t.series_instance_uid for t in run.tasks] == [None]
    done = platform.workflows.wait(run.id, timeout=180)
    assert done.state == "succeeded", done
    with platform.archive._sessions() as session:
        stored = session.execute(
            select(Series.modality, Series.number_of_instances, Series.series_instance_uid)
            .join(Instance, Instance.series_pk == Series.id)
            .join(RunOutput, RunOutput.sop_instance_uid == Instance.sop_instance_uid)
            .where(RunOutput.run_pk == run.id)
            .distinct()
        ).all()
    assert sorted((m, n) for m, n, _ in stored) == [("CT", 6), ("SEG", 1)]
    assert platform.workflows.manifest(run.id)["inputs"] == []


def test_import_nifti_refuses_a_missing_folder_and_series_stay_required_elsewhere(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    site = make_site(series=0)
    engine = site.platform.workflows
    missing = tmp_path / "absent"
    expected = rf"source_dir: .*not an existing folder.*{re.escape(str(missing))}"
    with pytest.raises(InvalidInput, match=expected):
        engine.start_run(
            project_pk=site.project_pk, workflow="import-nifti", params={"source_dir": str(missing)}
        )
    with pytest.raises(InvalidInput, match=r"source_dir: .*absolute"):
        engine.start_run(
            project_pk=site.project_pk, workflow="import-nifti", params={"source_dir": "rel"}
        )
    with pytest.raises(InvalidInput, match="give exactly one of"):
        engine.start_run(project_pk=site.project_pk, workflow="segment-ct")
    assert engine.list_runs() == []


def test_only_per_run_workflows_may_run_without_series() -> None:
    with pytest.raises(InvalidInput, match="cannot run without series"):
        Workflow(
            name="odd",
            version="1",
            needs_series=False,
            steps=[Step(name="probe", operator=operators.probe, mode=ModeValues.per_series)],
        )
