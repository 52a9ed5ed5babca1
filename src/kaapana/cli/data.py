"""``kaapana import``, ``demo`` and ``check``: getting data in and keeping it sound."""

import io
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from kaapana.archive.check import check
from kaapana.archive.importer import ImportReport, count_sources, import_paths
from kaapana.auth.projects import ADMIN_PROJECT
from kaapana.cli._common import console, platform_of, print_json


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console(),
        transient=False,
    )


def _report_table(report: ImportReport) -> Table:
    table = Table("outcome", "objects", title="import summary")
    table.add_row("accepted", str(report.accepted))
    table.add_row("duplicates (identical, kept)", str(report.duplicates))
    table.add_row("replaced (same UID, new content)", str(report.replaced))
    table.add_row("skipped (not DICOM)", str(report.skipped))
    table.add_row("rejected", str(len(report.rejected)))
    return table


def import_command(
    ctx: typer.Context,
    paths: Annotated[
        list[Path], typer.Argument(help="Files, folders (recursive) or zip archives.")
    ],
    project: Annotated[str, typer.Option(help="Project that will see the data.")] = ADMIN_PROJECT,
    dataset: Annotated[
        str | None, typer.Option(help="Also add the imported series to this dataset.")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes that parse (at most one per core).")
    ] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
) -> None:
    """Import DICOM files into the archive. Exit code 1 if any object was rejected."""
    with platform_of(ctx) as platform:
        target = platform.archive.target(project, dataset)
        total = count_sources(paths)
        with _progress() as progress:
            task = progress.add_task("importing", total=total)

            def advance(_source: object, _outcome: str, _reason: str) -> None:
                progress.advance(task)

            report = import_paths(
                platform.archive, paths, target, workers=workers, on_progress=advance
            )
        platform.catalog.index_uids(report.series_instance_uids)
    if as_json:
        print_json(
            {
                "accepted": report.accepted,
                "duplicates": report.duplicates,
                "replaced": report.replaced,
                "skipped": report.skipped,
                "rejected": [{"path": p, "reason": r} for p, r in report.rejected],
            }
        )
    else:
        out = console()
        out.print(_report_table(report))
        for path, reason in report.rejected:
            out.print(f"[red]rejected[/red] {path}: {reason}")
    if report.rejected:
        raise typer.Exit(1)


def demo_command(
    ctx: typer.Context,
    patients: Annotated[int, typer.Option(min=1, max=1000, help="Synthetic patients.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same data.")] = 0,
) -> None:
    """Load a deterministic synthetic cohort (CT with SEG, MR) into the archive."""
    from kaapana.testing.synthetic import demo_cohort

    with platform_of(ctx) as platform:
        target = platform.archive.target(ADMIN_PROJECT, "demo")
        counts: dict[str, int] = {}
        series_instance_uids: set[str] = set()
        with _progress() as progress:
            task = progress.add_task("generating demo data", total=None)
            for ds in demo_cohort(patients=patients, seed=seed):
                buffer = io.BytesIO()
                ds.save_as(buffer, enforce_file_format=True)
                result = platform.archive.store_bytes(buffer.getvalue(), target, source="demo")
                counts[result.status.value] = counts.get(result.status.value, 0) + 1
                series_instance_uids.add(result.series_instance_uid)
                progress.advance(task)
        platform.catalog.index_uids(series_instance_uids)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    console().print(f"demo data in dataset 'demo': {summary}")


def check_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
) -> None:
    """Verify that index and storage agree; re-index stray files. Run with the server stopped.

    Exit code 1 when rows without files or unreadable files remain.
    """
    with platform_of(ctx) as platform:
        report = check(platform.archive)
    if as_json:
        print_json(report.__dict__)
    else:
        out = console()
        out.print(
            f"{report.indexed_instances} indexed instances, {report.stored_files} stored files"
        )
        out.print(f"re-indexed files without rows: {len(report.reindexed)}")
        out.print(f"removed temp files of interrupted writes: {report.leftovers_removed}")
        for uid in report.missing_files:
            out.print(f"[red]missing file[/red] for SOP Instance {uid}")
        for key, reason in report.unreadable:
            out.print(f"[red]unreadable[/red] {key}: {reason}")
        out.print("consistent" if report.consistent else "[red]inconsistent[/red]")
    if report.missing_files or report.unreadable:
        raise typer.Exit(1)
