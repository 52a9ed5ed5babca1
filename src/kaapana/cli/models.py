"""``kaapana models``: the registry of trained models."""

import json
from typing import Annotated

import typer
from rich.table import Table

from kaapana.cli._common import console, platform_of, print_json
from kaapana.models import ModelView, parse_model_reference

app = typer.Typer(help="Trained models: versions, labels, metrics, training runs.")

AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ProjectOption = Annotated[str | None, typer.Option(help="Only models of this project.")]


def _dice(model: ModelView) -> str:
    dice = model.metrics.get("validation_dice") or {}
    return ", ".join(f"{label} {value:.3f}" for label, value in dice.items())


@app.command("list")
def list_models(ctx: typer.Context, project: ProjectOption = None, as_json: AsJson = False) -> None:
    """List every version of every model, newest version first."""
    with platform_of(ctx) as platform:
        project_pk = platform.archive.projects.get(project).id if project else None
        models = platform.models.list_models(project_pk=project_pk)
    if as_json:
        print_json([m.model_dump(mode="json") for m in models])
        return
    table = Table("name", "version", "project", "modality", "labels", "run", "validation Dice")
    for m in models:
        labels = ", ".join(str(item["label"]) for item in m.labels)
        run = "" if m.run_id is None else str(m.run_id)
        table.add_row(m.name, str(m.version), m.project, m.modality, labels, run, _dice(m))
    console().print(table)


@app.command("show")
def show_model(
    ctx: typer.Context,
    reference: Annotated[str, typer.Argument(help="NAME (the latest version) or NAME/VERSION.")],
    project: ProjectOption = None,
    as_json: AsJson = False,
) -> None:
    """Show one model version: labels with their codes, metrics, training run and file."""
    with platform_of(ctx) as platform:
        name, version = parse_model_reference(reference)
        project_pk = platform.archive.projects.get(project).id if project else None
        model = platform.models.get(name, version, project_pk=project_pk)
    if as_json:
        print_json(model.model_dump(mode="json"))
        return
    out = console()
    out.print(f"[bold]{model.name}[/bold] version {model.version} in project {model.project}")
    out.print(f"modality {model.modality}, trained by run {model.run_id}, {model.created_at:%c}")
    out.print(f"file {model.storage_key} ({model.size} bytes, sha256 {model.sha256})")
    out.print_json(json.dumps({"labels": model.labels, "metrics": model.metrics}))
