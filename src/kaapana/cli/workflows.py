"""``kaapana workflows``, ``kaapana run`` and ``kaapana runs``: workflows and their runs.

Commands record runs in the database; the process that schedules them is ``kaapana serve``, or,
with ``--wait`` and no server running, this command itself (with a local Dask cluster).
"""

import json
import sys
import time
from collections import Counter
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kaapana.cli._common import console, error_console, platform_of, print_json
from kaapana.errors import InvalidInput
from kaapana.platform import Platform
from kaapana.workflows.runs import CONSOLE_CREATOR
from kaapana.workflows.states import DONE_TASK_STATES, RunStateValues
from kaapana.workflows.views import RunDetailView

app = typer.Typer(help="Workflows this installation can run.")
runs_app = typer.Typer(help="Runs of workflows: follow, cancel, retry, rerun, compare.")

AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
RunArg = Annotated[int, typer.Argument(help="Run id.")]
_ENDED = {RunStateValues.succeeded, RunStateValues.failed, RunStateValues.canceled}


@app.command("list")
def list_workflows(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List workflows, and the sources that failed to load with their errors."""
    with platform_of(ctx) as platform:
        workflows = platform.workflows.workflows()
        errors = platform.workflows.load_errors()
    if as_json:
        print_json(
            {
                "workflows": [w.model_dump(exclude={"parameters_schema"}) for w in workflows],
                "load_errors": [e.model_dump() for e in errors],
            }
        )
        return
    table = Table("name", "version", "steps", "source", "description")
    for w in workflows:
        table.add_row(w.name, w.version, str(len(w.steps)), w.source, w.description)
    console().print(table)
    for error in errors:
        console().print(f"[red]failed to load[/red] {error.source}: {error.error}")


@app.command("show")
def show_workflow(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Workflow name.")],
    as_json: AsJson = False,
) -> None:
    """Show a workflow: steps, definition hash and the JSON Schema of its parameters."""
    with platform_of(ctx) as platform:
        workflow = platform.workflows.workflow(name)
    if as_json:
        print_json(workflow.model_dump())
        return
    out = console()
    out.print(f"[bold]{workflow.name}[/bold] {workflow.version}  {workflow.description}")
    out.print(f"definition hash {workflow.definition_hash}  (from {workflow.source})")
    table = Table("step", "mode", "operator", "upstream", "retries", "timeout")
    for step in workflow.steps:
        timeout = "" if step.timeout is None else f"{step.timeout:g} s"
        upstream = ", ".join(step.upstream)
        table.add_row(step.name, step.mode, step.operator, upstream, str(step.retries), timeout)
    out.print(table)
    out.print_json(json.dumps(workflow.parameters_schema))


@app.command("reload")
def reload_workflows(ctx: typer.Context) -> None:
    """Read the plugins folder and installed packages again (a running server: use the API)."""
    with platform_of(ctx) as platform:
        errors = platform.workflows.reload()
        count = len(platform.workflows.workflows())
    console().print(f"{count} workflows")
    for error in errors:
        console().print(f"[red]failed to load[/red] {error.source}: {error.error}")


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``key=value``; values that parse as JSON (numbers, true, lists) are taken as such."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"'-p' takes key=value, got {pair!r}")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def run_command(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="Workflow name (see `kaapana workflows list`).")],
    project: Annotated[str, typer.Option("--project", help="Project whose data it runs on.")],
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Run on this dataset of the project.")
    ] = None,
    series: Annotated[
        list[str] | None,
        typer.Option("--series", help="Run on this Series Instance UID (repeatable)."),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("-p", "--param", help="Parameter key=value (repeatable).")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the run with live progress until it ends.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Start a workflow on a dataset or on series (an import such as import-nifti needs neither);
    parameters are checked before anything runs."""
    with platform_of(ctx) as platform:
        project_pk = platform.archive.projects.get(project).id
        run = platform.workflows.start_run(
            project_pk=project_pk,
            workflow=workflow,
            params=parse_params(param or []),
            dataset=dataset,
            series=series,
            created_by=CONSOLE_CREATOR,
            start=wait,
        )
        _report(platform, run, wait=wait, as_json=as_json)


def _report(platform: Platform, run: RunDetailView, *, wait: bool, as_json: bool) -> None:
    if wait:
        run = _follow(platform, run.id, live=not as_json)
    if as_json:
        print_json(run.model_dump(mode="json"))
    else:
        _print_run(run)
    if wait and run.state != RunStateValues.succeeded:
        raise typer.Exit(1)
    if not wait:
        error_console().print(f"run {run.id} is {run.state}; `kaapana serve` runs it")


def _follow(platform: Platform, run_id: int, *, live: bool) -> RunDetailView:
    engine = platform.workflows
    if not live:
        return engine.wait(run_id)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[states]}"),
        TimeElapsedColumn(),
        console=console(),
    )
    bars: dict[str, Any] = {}
    with Live(progress, console=progress.console, refresh_per_second=4, transient=False):
        while True:
            run = engine.get_run(run_id)
            for step in run.dag or {t.step: [] for t in run.tasks}:
                tasks = [t for t in run.tasks if t.step == step]
                done = sum(t.state in DONE_TASK_STATES for t in tasks)
                states = " ".join(
                    f"{s}={n}" for s, n in sorted(Counter(t.state for t in tasks).items())
                )
                if step not in bars:
                    bars[step] = progress.add_task(step, total=len(tasks), states=states)
                progress.update(bars[step], completed=done, states=states)
            if run.state in _ENDED:
                return run
            time.sleep(0.3)


def _print_run(run: RunDetailView) -> None:
    out = console()
    colour = {"succeeded": "green", "failed": "red", "canceled": "yellow"}.get(run.state, "blue")
    out.print(
        f"run [bold]{run.id}[/bold] {run.workflow} {run.version} in {run.project}: "
        f"[{colour}]{run.state}[/{colour}]" + (f"  {run.error}" if run.error else "")
    )
    table = Table("task", "step", "series", "state", "attempts", "worker", "error")
    for task in run.tasks:
        table.add_row(
            str(task.id),
            task.step,
            task.series_instance_uid or "(run)",
            task.state,
            str(task.attempts),
            task.worker or "",
            task.error,
        )
    out.print(table)


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option(help="Only runs of this project.")] = None,
    limit: Annotated[int, typer.Option(help="Most runs shown, newest first.")] = 50,
    services: Annotated[
        bool,
        typer.Option(
            "--services", help="Also the platform's service runs (one per arriving series)."
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """List runs, newest first."""
    with platform_of(ctx) as platform:
        project_pk = platform.archive.projects.get(project).id if project else None
        runs = platform.workflows.list_runs(project_pk=project_pk, limit=limit, services=services)
    if as_json:
        print_json([r.model_dump(mode="json") for r in runs])
        return
    table = Table("run", "workflow", "version", "project", "state", "tasks", "created")
    for r in runs:
        counts = " ".join(f"{s}={n}" for s, n in sorted(r.task_counts.items()))
        created = r.created_at.isoformat(timespec="seconds")
        workflow = f"{r.workflow} (service)" if r.service else r.workflow
        table.add_row(str(r.id), workflow, r.version, r.project, r.state, counts, created)
    console().print(table)


@runs_app.command("show")
def show_run(ctx: typer.Context, run_id: RunArg, as_json: AsJson = False) -> None:
    """Show a run with the state of each task."""
    with platform_of(ctx) as platform:
        run = platform.workflows.get_run(run_id)
    if as_json:
        print_json(run.model_dump(mode="json"))
        return
    _print_run(run)


@runs_app.command("logs")
def logs(
    ctx: typer.Context,
    run_id: RunArg,
    task: Annotated[int, typer.Argument(help="Task id (see `kaapana runs show`).")],
    attempt: Annotated[int | None, typer.Option(help="Attempt; default: the latest.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the attempt ends.")
    ] = False,
) -> None:
    """Print a task's log: stdout, stderr and the operator's logger."""
    with platform_of(ctx) as platform:
        engine = platform.workflows
        if follow:
            for chunk in engine.follow_log(run_id, task, attempt=attempt):
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
            return
        path = engine.log_path(run_id, task, attempt=attempt)
        if path.exists():
            sys.stdout.buffer.write(path.read_bytes())


@runs_app.command("cancel")
def cancel(ctx: typer.Context, run_id: RunArg) -> None:
    """Cancel a run: running tasks are killed, pending ones never start."""
    with platform_of(ctx) as platform:
        run = platform.workflows.cancel(run_id)
    _print_run(run)


@runs_app.command("retry")
def retry(
    ctx: typer.Context,
    run_id: RunArg,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the run until it ends.")] = False,
) -> None:
    """Run a failed or canceled run's unfinished tasks again; succeeded tasks stay."""
    with platform_of(ctx) as platform:
        run = platform.workflows.retry(run_id, start=wait)
        _report(platform, run, wait=wait, as_json=False)


@runs_app.command("rerun")
def rerun(
    ctx: typer.Context,
    run_id: RunArg,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the new run until it ends.")] = False,
    as_json: AsJson = False,
) -> None:
    """Start the same workflow version on the same inputs with the same parameters."""
    with platform_of(ctx) as platform:
        run = platform.workflows.rerun(run_id, created_by=CONSOLE_CREATOR, start=wait)
        _report(platform, run, wait=wait, as_json=as_json)


@runs_app.command("diff")
def diff(
    ctx: typer.Context,
    a: Annotated[int, typer.Argument(help="First run id.")],
    b: Annotated[int, typer.Argument(help="Second run id.")],
    as_json: AsJson = False,
) -> None:
    """Compare two runs' manifests: definition, parameters, inputs and outputs."""
    with platform_of(ctx) as platform:
        differences = platform.workflows.diff(a, b)
    if as_json:
        print_json(differences)
        return
    if not differences:
        console().print(f"runs {a} and {b}: same definition, parameters, inputs and outputs")
        return
    table = Table("field", f"run {a}", f"run {b}")
    for item in differences:
        table.add_row(item["field"], json.dumps(item["a"]), json.dumps(item["b"]))
    console().print(table)


triggers_app = typer.Typer(help="Trigger rules: start a workflow when a series arrives.")


@triggers_app.command("add")
def add_trigger(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Rule name, unique in the project.")],
    workflow: Annotated[str, typer.Option("--workflow", help="Workflow to start.")],
    project: Annotated[str, typer.Option("--project", help="Project whose arrivals count.")],
    query: Annotated[
        str | None,
        typer.Option("--query", help="Catalog query as JSON; unset: every arriving series."),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("-p", "--param", help="Parameter key=value (repeatable).")
    ] = None,
) -> None:
    """Add a rule; parameters are checked now, not when a series arrives."""
    with platform_of(ctx) as platform:
        try:
            parsed = json.loads(query) if query is not None else None
        except ValueError as exc:
            raise InvalidInput(f"'--query' must be JSON, got {query!r}") from exc
        rule = platform.workflows.triggers.add(
            project_pk=platform.archive.projects.get(project).id,
            name=name,
            workflow=workflow,
            query=parsed,
            params=parse_params(param or []),
            created_by=CONSOLE_CREATOR,
        )
    console().print(f"trigger [bold]{rule.name}[/bold] starts {rule.workflow} in {rule.project}")


@triggers_app.command("list")
def list_triggers(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List trigger rules."""
    with platform_of(ctx) as platform:
        rules = platform.workflows.triggers.rules()
    if as_json:
        print_json([r.model_dump(mode="json") for r in rules])
        return
    table = Table("project", "name", "workflow", "query", "params", "enabled")
    for r in rules:
        query = json.dumps(r.query) if r.query is not None else "(every series)"
        enabled = "system" if r.system else "yes" if r.enabled else "no"
        table.add_row(r.project, r.name, r.workflow, query, json.dumps(r.params), enabled)
    console().print(table)


@triggers_app.command("enable")
def enable_trigger(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Rule name.")],
    project: Annotated[str, typer.Option("--project", help="The rule's project.")],
    off: Annotated[bool, typer.Option("--off", help="Disable the rule instead.")] = False,
) -> None:
    """Enable (or with --off disable) a rule."""
    with platform_of(ctx) as platform:
        project_pk = platform.archive.projects.get(project).id
        platform.workflows.triggers.set_enabled(project_pk=project_pk, name=name, enabled=not off)
    console().print(f"trigger {name} {'disabled' if off else 'enabled'}")


@triggers_app.command("remove")
def remove_trigger(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Rule name.")],
    project: Annotated[str, typer.Option("--project", help="The rule's project.")],
) -> None:
    """Remove a rule."""
    with platform_of(ctx) as platform:
        project_pk = platform.archive.projects.get(project).id
        platform.workflows.triggers.remove(project_pk=project_pk, name=name)
    console().print(f"trigger {name} removed")


__all__ = ["app", "run_command", "runs_app", "triggers_app"]
