"""federated-training between three virtual sites: the global model gets better at segmenting
a held-out set round by round, only weights and case counts travel (about sites times the model
per round), and the final model lands in the orchestrator's model registry."""

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kaapana.config import Settings
from kaapana.errors import InvalidInput
from kaapana.federation.aggregation import unpack_files
from kaapana.federation.coordinator import global_key
from kaapana.federation.outputs import OutputRefused, check_outputs
from kaapana.federation.simulate import simulate, site_settings
from kaapana.federation.training import MODEL_NAME, UPDATE_NAME
from kaapana.operators.training_data import TrainingCase, export_series, pair_cases
from kaapana.platform import Platform
from kaapana.testing import ct_series
from kaapana.testing.synthetic import ct_segmentation
from tests.helpers import part10

ROUNDS = 2
TINY = {
    "model_name": "federated-lungs",
    "labels": ["lungs"],
    "epochs": 4,
    "learning_rate": 0.03,
    "channels": [4, 8, 16],
    "num_res_units": 1,
    "patch_size": [16, 32, 32],
    "samples_per_case": 2,
    "validation_fraction": 0.3,
    "threads": 1,
    "device": "cpu",
}


def lung_case(seed: int) -> tuple[list[Any], Any]:
    ct = ct_series(patient_id=f"FT{seed}", rows=32, columns=32, slices=16, seed=seed)
    return ct, ct_segmentation(ct, seed=seed, labels=("lungs",))


def held_out(tmp_path: Path) -> list[TrainingCase]:
    folders = []
    for seed in (100, 101):
        ct, seg = lung_case(seed)
        for name, datasets in ((f"ct{seed}", ct), (f"seg{seed}", [seg])):
            folder = tmp_path / "held-out" / name
            export_series(datasets, folder, labels=["lungs"], modality="CT")
            folders.append(folder)
    return pair_cases(folders)[0]


def dice_of(model_file: bytes, cases: list[TrainingCase], tmp_path: Path) -> float:
    import torch

    from kaapana.operators.train_segmentation import dice_score
    from kaapana.operators.unet import infer_masks, load_model, normalize

    path = tmp_path / "global.pt"
    path.write_bytes(model_file)
    config, network = load_model(path)
    scores = [
        dice_score(
            infer_masks(network, config, normalize(c.image, "CT"), device=torch.device("cpu"))[0],
            c.masks[0],
        )
        for c in cases
    ]
    return float(np.mean(scores))


def test_weights_leave_only_as_declared_state_dicts() -> None:
    import torch

    def saved(value: object) -> bytes:
        buffer = io.BytesIO()
        torch.save(value, buffer)
        return buffer.getvalue()

    options: dict[str, Any] = {
        "declared": ["model.pt", "other.pt"],
        "max_bytes": 10**6,
        "allow_pixel_data": False,
        "weights": ["model.pt"],
    }
    weights = saved({"format": "x", "config": {"a": [1]}, "state": {"w": torch.ones(3)}})
    check_outputs({"model.pt": weights}, **options)
    with pytest.raises(OutputRefused, match=r"'other\.pt' is a torch tensor file"):
        check_outputs({"other.pt": weights}, **options)
    with pytest.raises(OutputRefused, match="tensors outside a state dict"):
        check_outputs({"model.pt": saved({"image": torch.zeros(4, 4), "w": 1})}, **options)
    with pytest.raises(OutputRefused, match="no torch file"):
        check_outputs({"model.pt": b"\x93NUMPY..."}, **options)


@pytest.mark.slow
def test_fedprox_keeps_the_local_model_near_the_global_one(tmp_path: Path) -> None:
    import torch

    from kaapana.operators.segmentation_parameters import FederatedTrainingParameters
    from kaapana.operators.train_segmentation import train_segmentation
    from kaapana.operators.unet import load_model

    torch.set_num_threads(1)
    folders = []
    for seed in range(3):
        ct, seg = lung_case(seed)
        for name, datasets in ((f"ct{seed}", ct), (f"seg{seed}", [seg])):
            export_series(datasets, tmp_path / name, labels=["lungs"], modality="CT")
            folders.append(tmp_path / name)
    cases, specs, _ = pair_cases(folders)
    parameters = FederatedTrainingParameters(**{**TINY, "epochs": 2})
    plain = train_segmentation(cases, specs, parameters, tmp_path / "plain")
    initial = load_model(plain.model)[1].state_dict()

    def drift(mu: float) -> float:
        result = train_segmentation(
            cases,
            specs,
            parameters,
            tmp_path / f"mu{mu}",
            initial_state=initial,
            proximal_mu=mu,
        )
        state = load_model(result.model)[1].state_dict()
        return float(sum(((state[k] - initial[k]) ** 2).sum() for k in initial))

    assert drift(50.0) < drift(0.0) / 2
    with pytest.raises(InvalidInput, match="do not fit the network"):
        train_segmentation(
            cases, specs, parameters, tmp_path / "bad", initial_state={"w": torch.ones(1)}
        )


@pytest.mark.slow
def test_federated_training_improves_held_out_dice_and_registers_the_model(
    tmp_path: Path,
) -> None:
    import torch

    torch.set_num_threads(1)
    settings = Settings(data_dir=tmp_path / "source")
    with Platform(settings) as source:
        target = source.archive.target("admin", "lungs")
        for seed in range(9):
            ct, seg = lung_case(seed)
            for ds in [*ct, seg]:
                source.archive.store_bytes(part10(ds), target, source="test")
        source.archive.flush()
    work = tmp_path / "sites"
    result = simulate(
        settings,
        workflow="federated-training",
        dataset="lungs",
        sites=3,
        rounds=ROUNDS,
        work_dir=work,
        timeout=300,
        params=TINY,
    )
    assert result["state"] == "succeeded", result
    assert result["sites"] == {"site-1": 6, "site-2": 6, "site-3": 6}
    rounds = result["result"]["rounds"]
    assert [r["round"] for r in rounds] == list(range(1, ROUNDS + 1))
    assert rounds[0]["cases"] == {"site-1": 2, "site-2": 2, "site-3": 2}

    cases = held_out(tmp_path)
    with Platform(site_settings(settings, work / "orchestrator", "orchestrator")) as orchestrator:
        globals_ = [
            unpack_files(orchestrator.results.get(global_key(result["run"], r)))
            for r in range(1, ROUNDS + 1)
        ]
        model = orchestrator.models.get("federated-lungs")
        run = orchestrator.federation.runs.get(result["run"])
        uploads = {name for job in run.jobs for name in job.outputs}
    dice = [dice_of(files[MODEL_NAME], cases, tmp_path) for files in globals_]
    model_bytes = result["result"]["model_bytes"]
    figures = {
        "held_out_dice_per_round": dice,
        "received_bytes_per_round": result["received_bytes_per_round"],
        "model_bytes": model_bytes,
    }
    print(json.dumps(figures))
    assert dice[-1] > max(dice[0], 0.5), figures
    assert uploads == {MODEL_NAME, UPDATE_NAME}
    for received in result["received_bytes_per_round"]:
        # Sealing (base64 in JSON, Fernet's base64) adds a fixed factor, not data.
        assert 3 * model_bytes < received < 3 * 2 * model_bytes, figures
    assert (model.version, model.run_id, model.modality) == (1, None, "CT")
    assert model.metrics["federated_run"] == result["run"] and model.metrics["rounds"] == ROUNDS
    assert [item["label"] for item in model.labels] == ["lungs"]
    registered = {"name": "federated-lungs", "version": 1, "project": "admin"}
    assert result["result"]["model"] == registered
