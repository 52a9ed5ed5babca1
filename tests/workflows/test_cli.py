"""``kaapana workflows``, ``kaapana run`` and ``kaapana runs`` as a user types them."""

import json
from pathlib import Path

import pytest
from distributed import LocalCluster
from typer.testing import CliRunner

from kaapana.cli import app
from kaapana.config import Settings
from kaapana.platform import Platform
from tests.workflows.conftest import store_series

runner = CliRunner()


@pytest.fixture
def data_dir(
    tmp_path: Path, dask_cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, list[str]]:
    monkeypatch.setenv("KAAPANA_DASK_SCHEDULER", dask_cluster.scheduler_address)
    monkeypatch.setenv("KAAPANA_WORKFLOW_ENTRY_POINTS", "false")
    folder = tmp_path / "data"
    with Platform(Settings(data_dir=folder, admin_password="admin-password-1")) as platform:
        series = store_series(platform, 2, dataset="cohort")
    return folder, series


def kaapana(data_dir: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["--data-dir", str(data_dir), *args])
    assert result.exit_code == code, result.output
    return result.output


def test_workflows_list_show_and_reload(data_dir: tuple[Path, list[str]]) -> None:
    folder, _series = data_dir
    listed = json.loads(kaapana(folder, "workflows", "list", "--json"))
    assert {"noop", "series-metadata"} <= {w["name"] for w in listed["workflows"]}
    (folder / "plugins").mkdir()
    (folder / "plugins" / "broken.yaml").write_text("name: broken\n")
    output = kaapana(folder, "workflows", "reload")
    assert "failed to load" in output and "broken.yaml" in output
    assert "broken.yaml" in kaapana(folder, "workflows", "list")
    shown = kaapana(folder, "workflows", "show", "series-metadata")
    assert "definition hash" in shown and '"indent"' in shown
    assert "not found" in kaapana(folder, "workflows", "show", "nope", code=1)


def test_run_wait_show_logs_rerun_diff(data_dir: tuple[Path, list[str]]) -> None:
    folder, series = data_dir
    run = json.loads(
        kaapana(
            folder,
            "run",
            "series-metadata",
            "--project",
            "admin",
            "--dataset",
            "cohort",
            "-p",
            "indent=2",
            "--wait",
            "--json",
        )
    )
    assert run["state"] == "succeeded" and run["params"] == {"indent": 2}
    assert str(run["id"]) in kaapana(folder, "runs", "list")
    assert "series-metadata 1.0 in admin: succeeded" in kaapana(folder, "runs", "show", "1")
    shown = json.loads(kaapana(folder, "runs", "show", str(run["id"]), "--json"))
    assert shown["series_instance_uids"] == sorted(series)
    task = run["tasks"][0]["id"]
    assert "wrote series.json" in kaapana(folder, "runs", "logs", str(run["id"]), str(task))
    again = json.loads(kaapana(folder, "runs", "rerun", str(run["id"]), "--wait", "--json"))
    assert again["state"] == "succeeded" and again["rerun_of"] == run["id"]
    same = kaapana(folder, "runs", "diff", str(run["id"]), str(again["id"]))
    assert "same definition, parameters, inputs and outputs" in same
    assert "is succeeded already" in kaapana(folder, "runs", "cancel", str(run["id"]), code=1)


def test_bad_run_options_are_clear_errors(data_dir: tuple[Path, list[str]]) -> None:
    folder, series = data_dir
    out = kaapana(folder, "run", "series-metadata", "--project", "admin", "--dataset", "x", code=1)
    assert "dataset 'x' not found" in out
    out = kaapana(
        folder,
        "run",
        "series-metadata",
        "--project",
        "admin",
        "--series",
        series[0],
        "-p",
        "indent=wide",
        code=1,
    )
    assert "indent" in out and "wide" in out
    out = kaapana(
        folder, "run", "noop", "--project", "admin", "--series", series[0], "-p", "x", code=1
    )
    assert "'-p' takes key=value, got 'x'" in out


def test_trigger_rules(data_dir: tuple[Path, list[str]]) -> None:
    folder, _series = data_dir
    args = ["triggers", "add", "meta", "--workflow", "series-metadata", "--project", "admin"]
    assert "starts series-metadata in admin" in kaapana(folder, *args, "-p", "indent=1")
    assert "exists already" in kaapana(folder, *args, code=1)
    out = kaapana(folder, *args[:2], "q", *args[3:], "--query", '{"Modality": "SEG"}', code=1)
    assert "unknown key 'Modality'" in out
    listed = json.loads(kaapana(folder, "triggers", "list", "--json"))
    assert [(r["name"], r["params"], r["enabled"], r["system"]) for r in listed] == [
        ("series-media", {}, True, True),  # the platform's own: thumbnails and validation
        ("meta", {"indent": 1}, True, False),
    ]
    kaapana(folder, "triggers", "enable", "meta", "--project", "admin", "--off")
    assert not json.loads(kaapana(folder, "triggers", "list", "--json"))[1]["enabled"]
    out = kaapana(folder, "triggers", "remove", "series-media", "--project", "admin", code=1)
    assert "system rule" in out
    kaapana(folder, "triggers", "remove", "meta", "--project", "admin")
    assert "not found" in kaapana(
        folder, "triggers", "remove", "meta", "--project", "admin", code=1
    )
