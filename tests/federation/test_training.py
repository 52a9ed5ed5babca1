"""federated-training's pieces in one process: what may leave as weights, FedProx's pull
towards the global model, and what a site accepts as a pushed model (the federated run itself,
with the push, is in test_serve_sites)."""

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kaapana.config import Settings
from kaapana.errors import Conflict, InvalidInput, NotFound
from kaapana.federation.envelope import TamperedPayload, seal
from kaapana.federation.keys import derive_keys
from kaapana.federation.outputs import OutputRefused, check_outputs
from kaapana.federation.training import (
    MODEL_NAME,
    PROVENANCE_NAME,
    WORKFLOW_NAME,
)
from kaapana.models.registry import ModelView
from kaapana.operators.training_data import export_series, pair_cases
from kaapana.platform import Platform
from kaapana.testing import ct_series
from tests.federation.cohort import TINY_TRAINING, lung_case
from tests.helpers import part10

KEY = derive_keys("kpf_" + "c" * 43).fernet_key


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
    parameters = FederatedTrainingParameters(**{**TINY_TRAINING, "epochs": 2})
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


def test_a_pushed_model_is_taken_only_with_a_delivered_training_job(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    import torch

    with Platform(make_settings(site_name="site-a")) as site:
        admin = site.archive.projects.get("admin")
        ct = ct_series(rows=16, columns=16, slices=1)[0]
        site.archive.store_bytes(part10(ct), site.archive.target("admin", "lungs"), source="test")
        site.archive.flush()
        site.federation.policies.expose(project="admin", dataset="lungs")
        site.federation.policies.allow(WORKFLOW_NAME, approval="automatic", actor="owner")
        workflow = site.workflows.registry.get(WORKFLOW_NAME)
        offer = {
            "job_id": "j1",
            "federated_run": 7,
            "round": 2,
            "workflow": WORKFLOW_NAME,
            "definition_hash": workflow.definition_hash,
            "dataset": "lungs",
            "params": TINY_TRAINING,
            "outputs": list(workflow.federated_outputs),
            "has_input": True,
        }
        site.federation.jobs.receive(offer, orchestrator="central")
        buffer = io.BytesIO()
        segments = [{"label": "lungs"}]
        torch.save(
            {"format": "x", "config": {"segments": segments}, "state": {"w": torch.ones(2)}}, buffer
        )
        model = buffer.getvalue()

        def pushed(data: bytes = model, sha256: str = "", run: int = 7) -> bytes:
            provenance = {
                "federated_run": run,
                "round": 2,
                "sha256": sha256 or hashlib.sha256(data).hexdigest(),
            }
            files = {MODEL_NAME: data, PROVENANCE_NAME: json.dumps(provenance).encode()}
            return seal(KEY, job_id="j1", kind="model", files=files)

        def register(sealed: bytes, orchestrator: str = "central") -> ModelView:
            return site.federation.pushed_models.register(
                "j1", sealed, orchestrator=orchestrator, key=KEY
            )

        with pytest.raises(Conflict, match="a model comes only with a delivered job"):
            register(pushed())
        site.federation.jobs.uploaded("j1", len(model))
        with pytest.raises(NotFound, match="no federated job 'j1' from 'elsewhere'"):
            register(pushed(), orchestrator="elsewhere")
        with pytest.raises(TamperedPayload):
            register(pushed()[:-1])
        with pytest.raises(InvalidInput, match="provenance does not match"):
            register(pushed(sha256="0" * 64))
        with pytest.raises(InvalidInput, match="provenance does not match"):
            register(pushed(run=8))
        with pytest.raises(OutputRefused, match="no torch file"):
            register(pushed(b"\x93NUMPY..."))
        assert site.models.list_models() == []

        registered = register(pushed())
        assert (registered.name, registered.version, registered.project) == (
            "federated-lungs",
            1,
            "admin",
        )
        assert registered.metrics == {
            "federated_run": 7,
            "orchestrator": "central",
            "round": 2,
            "sha256": hashlib.sha256(model).hexdigest(),
            "job": "j1",
        }
        assert register(pushed()).version == 1
        resolved = site.models.resolve(admin.id, "federated-lungs")
        assert (
            resolved["sha256"] == registered.sha256 and Path(resolved["path"]).read_bytes() == model
        )
        events = site.auth.audit.query(action="federation.model.receive")
        assert sorted(e.outcome for e in events) == ["failure"] * 6 + ["success"] * 2

        site.federation.policies.revoke(WORKFLOW_NAME)
        with pytest.raises(Conflict, match="no longer allowed"):
            register(pushed())
