"""The model registry: registration by a training task's action, resolution when a run that
applies a model is created, and the registry over REST and the CLI, each seen per project."""

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kaapana.api import create_app
from kaapana.auth.roles import RoleValues
from kaapana.cli import app as cli
from kaapana.config import Settings
from kaapana.errors import InvalidInput, NotFound
from kaapana.models.workflow_actions import REGISTER_MODEL
from kaapana.platform import Platform
from kaapana.testing import ct_series
from kaapana.workflows.actions import ActionRequest
from kaapana.workflows.resolvers import RESOLVED_PARAMS
from kaapana.workflows.results import artifact_key
from tests.helpers import part10

LABELS = [
    {
        "label": "lungs",
        "category": {"value": "91723000", "scheme_designator": "SCT", "meaning": "Anatomical"},
        "type": {"value": "39607008", "scheme_designator": "SCT", "meaning": "Lung"},
    }
]


@dataclass
class Registered:
    platform: Platform
    projects: dict[str, int]
    runs: list[int]


def training_run(platform: Platform, project: str, series: str) -> int:
    """A recorded run (never scheduled) whose task left a model file in result storage."""
    project_pk = platform.archive.projects.get(project).id
    run = platform.workflows.start_run(
        project_pk=project_pk, workflow="noop", series=[series], start=False
    )
    platform.results.put(artifact_key(run.id, "train-segmentation/model.pt"), f"m{run.id}".encode())
    return run.id


def register(platform: Platform, project: str, run_id: int, **payload: object) -> str:
    request = ActionRequest(
        action=REGISTER_MODEL,
        run_id=run_id,
        project_pk=platform.archive.projects.get(project).id,
        project=project,
        series_instance_uid=None,
        input_series=(),
        payload={
            "name": "lungs",
            "artifact": "train-segmentation/model.pt",
            "labels": LABELS,
            "modality": "CT",
            "metrics": {"validation_dice": {"lungs": 0.9}},
            **payload,
        },
    )
    return platform.workflows.actions.apply(request)


def fill(platform: Platform) -> Registered:
    projects = {"A": platform.archive.projects.create("A").id}
    projects["B"] = platform.archive.projects.create("B").id
    series = {}
    for project in projects:
        datasets = ct_series(patient_id=f"M{project}", rows=16, columns=16, slices=2)
        for ds in datasets:
            platform.archive.store_bytes(part10(ds), platform.archive.target(project))
        series[project] = str(datasets[0].SeriesInstanceUID)
    runs = [training_run(platform, "A", series["A"]) for _ in range(2)]
    runs.append(training_run(platform, "B", series["B"]))
    assert register(platform, "A", runs[0]) == "register-model: lungs version 1 in project A"
    assert register(platform, "A", runs[1]).endswith("lungs version 2 in project A")
    assert register(platform, "B", runs[2], name="liver").endswith("liver version 1 in project B")
    return Registered(platform, projects, runs)


def test_registration_is_versioned_idempotent_and_checked(platform: Platform) -> None:
    filled = fill(platform)
    run_a = filled.runs[0]
    # A retried task asks again: the same version, not a new one.
    assert register(platform, "A", run_a).endswith("lungs version 1 in project A")
    with pytest.raises(InvalidInput, match=r"no file 'runs/\d+/train-segmentation/other\.pt'"):
        register(platform, "A", run_a, name="other", artifact="train-segmentation/other.pt")
    with pytest.raises(InvalidInput, match="a model name must be"):
        register(platform, "A", run_a, name="Lungs Model")
    incomplete = ActionRequest(REGISTER_MODEL, run_a, filled.projects["A"], "A", None, (), {})
    with pytest.raises(InvalidInput, match=r"lacks \['name', 'artifact', 'labels', 'modality'\]"):
        platform.workflows.actions.apply(incomplete)
    model = platform.models.get("lungs", 1)
    assert (model.run_id, model.modality, model.project) == (run_a, "CT", "A")
    assert model.sha256 == hashlib.sha256(f"m{run_a}".encode()).hexdigest()
    assert [m.version for m in platform.models.versions("lungs")] == [2, 1]


def test_a_run_applying_a_model_carries_the_resolved_version_and_file(platform: Platform) -> None:
    filled = fill(platform)
    a = filled.projects["A"]
    resolved = platform.models.resolve(a, "lungs")
    assert (resolved["name"], resolved["version"]) == ("lungs", 2)
    assert Path(resolved["path"]).read_bytes() == f"m{filled.runs[1]}".encode()
    assert platform.models.resolve(a, "lungs/1")["labels"] == LABELS
    with pytest.raises(NotFound, match="model 'lungs' has no version 9"):
        platform.models.resolve(a, "lungs/9")
    with pytest.raises(NotFound, match="model 'liver' not found in this project"):
        platform.models.resolve(a, "liver")
    with pytest.raises(InvalidInput, match="'name' or 'name/version'"):
        platform.models.resolve(a, "lungs/latest")

    # Workflows without parameters to resolve keep their parameters as given.
    assert RESOLVED_PARAMS not in platform.workflows.get_run(filled.runs[0]).params
    ct = ct_series(patient_id="MA", rows=16, columns=16, slices=2)
    run = platform.workflows.start_run(
        project_pk=a,
        workflow="predict-segmentation",
        series=[str(ct[0].SeriesInstanceUID)],
        params={"model": "lungs/1"},
        start=False,
    )
    assert run.params["model"] == "lungs/1"
    assert run.params[RESOLVED_PARAMS]["model"]["version"] == 1
    with pytest.raises(NotFound, match="'liver' not found in this project"):
        platform.workflows.start_run(
            project_pk=a,
            workflow="predict-segmentation",
            series=[str(ct[0].SeriesInstanceUID)],
            params={"model": "liver"},
            start=False,
        )


@pytest.fixture
def api(make_settings: Callable[..., Settings]) -> Iterator[tuple[TestClient, dict, Registered]]:
    app = create_app(make_settings(workflow_entry_points=False, admin_password="admin-pass-1"))
    with TestClient(app) as client:
        filled = fill(app.state.platform)
        headers = {}
        auth = app.state.platform.auth
        for name, project in (("sci_a", "A"), ("sci_b", "B")):
            user = auth.users.create(name, password="a-good-password")
            auth.users.set_role(
                name, app.state.platform.archive.projects.get(project), RoleValues.scientist
            )
            issued = auth.tokens.issue(user, name="t", can_write=False)
            headers[name] = {"Authorization": f"Bearer {issued.secret}"}
        yield client, headers, filled


def test_models_over_rest_are_filtered_by_project(api: tuple[TestClient, dict, Registered]) -> None:
    client, headers, filled = api

    def get(path: str, who: str = "sci_a") -> tuple[int, object]:
        response = client.get(f"/api/v1/models{path}", headers=headers[who])
        return response.status_code, response.json()

    status, listed = get("")
    assert status == 200 and [(m["name"], m["version"]) for m in listed] == [
        ("lungs", 2),
        ("lungs", 1),
    ]
    assert [m["name"] for m in get("", "sci_b")[1]] == ["liver"]
    status, versions = get("/lungs")
    assert status == 200 and [m["version"] for m in versions] == [2, 1]
    status, one = get("/lungs/versions/1")
    assert status == 200 and one["run_id"] == filled.runs[0] and one["labels"] == LABELS
    assert one["metrics"] == {"validation_dice": {"lungs": 0.9}}
    assert get("/lungs", "sci_b")[0] == 404
    assert get("/lungs/versions/5")[0] == 404
    assert get("?project=B")[0] == 404
    assert get("?project=A")[0] == 200


def test_models_cli(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(workflow_entry_points=False, admin_password="admin-pass-1")
    with Platform(settings) as platform:
        filled = fill(platform)
    runner = CliRunner()

    def kaapana(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["--data-dir", str(settings.data_dir), "models", *args])
        assert result.exit_code == code, result.output
        return result.output

    listed = json.loads(kaapana("list", "--json"))
    assert [(m["name"], m["version"], m["project"]) for m in listed] == [
        ("liver", 1, "B"),
        ("lungs", 2, "A"),
        ("lungs", 1, "A"),
    ]
    assert "lungs 0.900" in kaapana("list", "--project", "A")
    shown = kaapana("show", "lungs/1")
    assert f"trained by run {filled.runs[0]}" in shown and '"Lung"' in shown
    assert json.loads(kaapana("show", "lungs", "--json"))["version"] == 2
    assert "has no version 7" in kaapana("show", "lungs/7", code=1)
