"""Command operators follow Kaapana's processing-container contract; plugins load from the data
dir; containers run where an engine does."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kaapana.workflows import CommandOperator, ContainerOperator, Step, Workflow
from kaapana.workflows.execution import container_engine
from tests.workflows.conftest import Site

# A processing script as Kaapana containers have them: everything from the environment.
KAAPANA_SCRIPT = """
import glob, json, os
workflow_dir = os.environ["WORKFLOW_DIR"]
for element in sorted(glob.glob(os.path.join(workflow_dir, os.environ["BATCH_NAME"], "*"))):
    source = os.path.join(element, os.environ["OPERATOR_IN_DIR"])
    target = os.path.join(element, os.environ["OPERATOR_OUT_DIR"])
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, "contract.json"), "w") as out:
        json.dump({
            "files": len(os.listdir(source)),
            "series": os.path.basename(element),
            "greeting": os.environ["GREETING"],
            "repeat": os.environ["REPEAT"],
            "ids": [os.environ[k] for k in ("RUN_ID", "DAG_ID", "TASK_ID")],
        }, out)
    # A careless script writes beside its output folder: that must not reach the results.
    with open(os.path.join(element, "stray.txt"), "w") as stray:
        stray.write("x")
print("processed", os.environ["BATCH_NAME"])
"""

SUMMARY_SCRIPT = """
import glob, os
workflow_dir = os.environ["WORKFLOW_DIR"]
found = glob.glob(os.path.join(workflow_dir, "batch", "*", os.environ["OPERATOR_IN_DIR"],
                               "contract.json"))
out = os.path.join(workflow_dir, os.environ["OPERATOR_OUT_DIR"])
os.makedirs(out, exist_ok=True)
open(os.path.join(out, "summary.txt"), "w").write(str(len(found)))
"""


def _write_plugins(folder: Path, scripts: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (scripts / "process.py").write_text(KAAPANA_SCRIPT)
    (scripts / "summary.py").write_text(SUMMARY_SCRIPT)
    (folder / "contract.yaml").write_text(
        f"""
name: contract
version: "1"
parameters:
  greeting: {{type: string, default: hello}}
  repeat: {{type: integer, default: 2}}
steps:
  - name: process
    command: ["{sys.executable}", "{scripts / "process.py"}"]
    artifacts: ["*.json"]
  - name: summary
    mode: per_run
    upstream: [process]
    command: ["{sys.executable}", "{scripts / "summary.py"}"]
    artifacts: ["summary.txt"]
"""
    )
    (folder / "broken.py").write_text("raise RuntimeError('this plugin is broken')\n")
    (folder / "python_plugin.py").write_text(
        "from kaapana.workflows import Step, Workflow\n\n"
        "def touch(ctx):\n"
        "    (ctx.output_dir / 'plugin.txt').write_text(ctx.project)\n\n"
        "STEP = Step(name='touch', operator=touch)\n"
        "PLUGIN = Workflow(name='plugin', version='1', steps=[STEP])\n"
    )


def test_a_kaapana_style_command_produces_the_expected_files(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    site = make_site(series=2)
    engine = site.platform.workflows
    assert [e.source for e in engine.load_errors()] == []
    _write_plugins(site.platform.settings.resolved_plugins_dir, tmp_path)
    errors = engine.reload()
    assert len(errors) == 1 and errors[0].source.endswith("broken.py")
    assert "this plugin is broken" in errors[0].error
    assert {"contract", "plugin", "noop", "series-metadata"} <= {w.name for w in engine.workflows()}

    run = engine.start_run(
        project_pk=site.project_pk,
        workflow="contract",
        dataset="cohort",
        params={"greeting": "salut"},
    )
    done = engine.wait(run.id, timeout=120)
    assert done.state == "succeeded", done
    work = site.platform.settings.resolved_work_dir / str(run.id)
    for uid in site.series:
        contract = (work / "batch" / uid / "process" / "contract.json").read_text()
        assert f'"series": "{uid}"' in contract and '"files": 2' in contract
        assert '"greeting": "salut"' in contract and '"repeat": "2"' in contract
        assert f'"ids": ["{run.id}", "contract", "process"]' in contract
        assert not (work / "batch" / uid / "stray.txt").exists()
    assert (work / "summary" / "summary.txt").read_text() == "2"
    names = {a.name for a in engine.artifacts(run.id)}
    assert "summary/summary.txt" in names
    assert {f"batch/{uid}/process/contract.json" for uid in site.series} <= names
    process = next(t for t in done.tasks if t.step == "process")
    assert "processed batch" in engine.log_path(run.id, process.id).read_text()

    plugin = engine.start_run(project_pk=site.project_pk, workflow="plugin", dataset="cohort")
    assert engine.wait(plugin.id, timeout=60).state == "succeeded"
    uid = site.series[0]
    written = site.platform.settings.resolved_work_dir / str(plugin.id) / "batch" / uid
    assert (written / "touch" / "plugin.txt").read_text() == "admin"


def test_a_command_that_cannot_start_fails_its_task(make_site: Callable[..., Site]) -> None:
    site = make_site(series=1)
    engine = site.platform.workflows
    engine.registry.add(
        Workflow(
            name="missing",
            version="1",
            steps=[Step(name="x", operator=CommandOperator(("/nonexistent/tool",)))],
        )
    )
    run = engine.start_run(project_pk=site.project_pk, workflow="missing", dataset="cohort")
    done = engine.wait(run.id, timeout=60)
    assert done.state == "failed" and "nonexistent" in done.tasks[0].error


def _engine_runs() -> str | None:
    engine = container_engine()
    if engine is None:
        return None
    probe = subprocess.run([engine, "info"], capture_output=True, check=False, timeout=30)
    return engine if probe.returncode == 0 else None


@pytest.mark.skipif(_engine_runs() is None, reason="no running docker or podman engine here")
def test_a_container_operator_runs_an_image(make_site: Callable[..., Site]) -> None:
    site = make_site(series=1)
    engine = site.platform.workflows
    command = ("sh", "-c", 'echo "$DAG_ID" > "$WORKFLOW_DIR/batch/"*"/$OPERATOR_OUT_DIR/id"')
    engine.registry.add(
        Workflow(
            name="boxed",
            version="1",
            steps=[Step(name="box", operator=ContainerOperator("busybox", command))],
        )
    )
    run = engine.start_run(project_pk=site.project_pk, workflow="boxed", dataset="cohort")
    assert engine.wait(run.id, timeout=300).state == "succeeded"
    work = site.platform.settings.resolved_work_dir / str(run.id) / "batch"
    assert (work / site.series[0] / "box" / "id").read_text().strip() == "boxed"
