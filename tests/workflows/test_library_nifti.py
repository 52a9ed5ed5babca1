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
from kaapana.testing import ct_series
from kaapana.testing.synthetic import ct_segmentation
from kaapana.workflows import ModeValues, Step, Workflow
from tests.helpers import part10
from tests.workflows import operators
from tests.workflows.conftest import Site
from tests.workflows.test_library_segment import store


def test_convert_to_nifti_keeps_a_nifti_and_its_sidecar_and_refuses_a_seg(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=0)
    platform = site.platform
    ct = ct_series(rows=32, columns=32, slices=6)
    ct_uid = store(platform, ct, dataset="both")
    seg = ct_segmentation(ct)
    platform.archive.store_bytes(part10(seg), platform.archive.target("admin", "both"))
    run = platform.workflows.start_run(
        project_pk=site.project_pk, workflow="convert-to-nifti", dataset="both"
    )
    done = platform.workflows.wait(run.id, timeout=180)
    tasks = {t.series_instance_uid: t for t in done.tasks}
    assert tasks[ct_uid].state == "succeeded"
    failed = tasks[str(seg.SeriesInstanceUID)]
    assert failed.state == "failed" and "is a SEG" in failed.error
    names = sorted(a.name for a in platform.workflows.artifacts(run.id))
    prefix = f"batch/{ct_uid}/convert-to-nifti/"
    assert f"{prefix}image.nii.gz" in names and f"{prefix}image.json" in names
    _, stream = platform.workflows.open_artifact(run.id, f"{prefix}image.json")
    with stream:
        assert json.load(stream)["Modality"] == "CT"


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
