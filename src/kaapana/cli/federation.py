"""``kaapana sites`` and ``kaapana federation``: peers and keys, the data owner's policies,
received jobs, federated runs, and simulation."""

import dataclasses
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kaapana.cli._common import console, platform_of, print_json, reported_errors, settings_of
from kaapana.cli.users import cli_actor
from kaapana.cli.workflows import parse_params
from kaapana.errors import InvalidInput
from kaapana.federation.states import ApprovalValues, FederatedRunStateValues

sites_app = typer.Typer(
    help="Federation sites: participants of this orchestrator, or its orchestrator."
)
app = typer.Typer(help="Federation: policies, exposed datasets, jobs, federated runs, simulation.")
policy_app = typer.Typer(help="Which workflows may run here as federated jobs, and how.")
app.add_typer(policy_app, name="policy")

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


class RoleOption(StrEnum):
    participant = "participant"
    orchestrator = "orchestrator"


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


@sites_app.command("add")
def sites_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The peer's site name.")],
    role: Annotated[
        RoleOption,
        typer.Option(
            help="participant: a site polling this orchestrator (prints its enrolment "
            "secret once); orchestrator: the orchestrator this site polls."
        ),
    ] = RoleOption.participant,
    url: Annotated[str, typer.Option(help="The orchestrator's base URL (https://...).")] = "",
    secret: Annotated[
        str,
        typer.Option(
            help="The enrolment secret the orchestrator's admin handed over.",
            envvar="KAAPANA_FEDERATION_SECRET",
        ),
    ] = "",
    verify_tls: Annotated[
        bool, typer.Option(help="Verify the orchestrator's TLS certificate.")
    ] = True,
    pin: Annotated[
        str, typer.Option(help="SHA-256 of the orchestrator's certificate (hex) to pin.")
    ] = "",
) -> None:
    """Register a participant (at the orchestrator) or the orchestrator (at a participant)."""
    with platform_of(ctx) as platform:
        sites = platform.federation.sites
        if role is RoleOption.participant:
            enrolled = sites.add_participant(name)
            console().print(
                f"participant [bold]{name}[/bold] added. Its enrolment secret, shown only now; "
                "hand it to the site's administrator out of band:"
            )
            typer.echo(enrolled.secret)
            return
        if not url or not secret:
            raise InvalidInput("an orchestrator needs --url and --secret")
        site = sites.add_orchestrator(
            name, url=url, secret=secret, verify_tls=verify_tls, pinned_sha256=pin
        )
        platform.auth.audit.record(
            "federation.site.add",
            actor=cli_actor(),
            target=f"site:{name}",
            detail={"role": "orchestrator", "url": site.url},
        )
    console().print(
        f"orchestrator [bold]{name}[/bold] at {site.url} added; `kaapana serve` polls it"
    )


@sites_app.command("list")
def sites_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List registered sites."""
    with platform_of(ctx) as platform:
        sites = platform.federation.sites.list()
    if as_json:
        print_json([_plain(s) for s in sites])
        return
    table = Table("name", "role", "url", "datasets", "last seen (UTC)")
    for s in sites:
        datasets = ", ".join(f"{d.get('name')} ({d.get('series')} series)" for d in s.datasets)
        seen = s.last_seen_at.isoformat(timespec="seconds") if s.last_seen_at else ""
        table.add_row(s.name, s.role.value, s.url, datasets, seen)
    console().print(table)


@sites_app.command("show")
def sites_show(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="A site; default: this installation.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show this installation's site name and peers, or one registered site."""
    with platform_of(ctx) as platform:
        federation = platform.federation
        if name is not None:
            shown: dict[str, Any] = _plain(federation.sites.get(name))
        else:
            orchestrator = federation.sites.orchestrator()
            shown = {
                "name": federation.site_name,
                "orchestrator": orchestrator.name if orchestrator else None,
                "participants": federation.sites.participants(),
            }
    if as_json:
        print_json(shown)
    else:
        console().print(shown)


@sites_app.command("remove")
def sites_remove(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Site to remove.")]
) -> None:
    """Remove a site and its keys."""
    with platform_of(ctx) as platform:
        platform.federation.sites.remove(name)
        platform.auth.audit.record(
            "federation.site.remove", actor=cli_actor(), target=f"site:{name}"
        )
    console().print(f"site [bold]{name}[/bold] removed")


# -- policies and datasets ------------------------------------------------------------------


@policy_app.command("allow")
def policy_allow(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="Workflow to allow.")],
    approval: Annotated[
        ApprovalValues, typer.Option(help="automatic: run jobs at once; manual: hold them.")
    ] = ApprovalValues.manual,
    definition_hash: Annotated[
        str | None, typer.Option("--hash", help="Pin this definition hash (default: installed).")
    ] = None,
    max_output_bytes: Annotated[
        int | None, typer.Option(min=1, help="Size limit of a job's upload.")
    ] = None,
    allow_pixel_data: Annotated[
        bool, typer.Option(help="Let DICOM and NumPy arrays leave (never by default).")
    ] = False,
    share_logs: Annotated[bool, typer.Option(help="Send task logs when asked.")] = False,
) -> None:
    """Allow a workflow as a federated job, pinned to its definition hash."""
    with platform_of(ctx) as platform:
        policy = platform.federation.policies.allow(
            workflow,
            approval=approval,
            actor=cli_actor(),
            definition_hash=definition_hash,
            max_output_bytes=max_output_bytes,
            allow_pixel_data=allow_pixel_data,
            share_logs=share_logs,
        )
        platform.auth.audit.record(
            "federation.policy.set",
            actor=cli_actor(),
            target=f"workflow:{workflow}",
            detail={"definition_hash": policy.definition_hash, "approval": policy.approval.value},
        )
    console().print(
        f"workflow [bold]{workflow}[/bold] allowed ({policy.approval.value} approval), pinned "
        f"to {policy.definition_hash[:12]}"
    )


@policy_app.command("revoke")
def policy_revoke(
    ctx: typer.Context, workflow: Annotated[str, typer.Argument(help="Workflow to disallow.")]
) -> None:
    """Disallow a workflow; its next jobs are refused."""
    with platform_of(ctx) as platform:
        platform.federation.policies.revoke(workflow)
        platform.auth.audit.record(
            "federation.policy.revoke", actor=cli_actor(), target=f"workflow:{workflow}"
        )
    console().print(f"workflow [bold]{workflow}[/bold] no longer allowed")


@policy_app.command("list")
def policy_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List allowed workflows and their pinned hashes."""
    with platform_of(ctx) as platform:
        policies = platform.federation.policies.list()
    if as_json:
        print_json([_plain(p) for p in policies])
        return
    table = Table("workflow", "hash", "approval", "max bytes", "pixel data", "logs")
    for p in policies:
        table.add_row(
            p.workflow,
            p.definition_hash[:12],
            p.approval.value,
            str(p.max_output_bytes),
            str(p.allow_pixel_data),
            str(p.share_logs),
        )
    console().print(table)


@app.command("expose")
def expose(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="Project of the dataset.")],
    dataset: Annotated[str, typer.Argument(help="Dataset to offer.")],
    name: Annotated[str | None, typer.Option(help="Name the orchestrator sees.")] = None,
) -> None:
    """Offer a dataset to federated jobs (the orchestrator sees its name and counts only)."""
    with platform_of(ctx) as platform:
        exposed = platform.federation.policies.expose(project=project, dataset=dataset, name=name)
    console().print(
        f"dataset {project}/{dataset} exposed as [bold]{exposed.name}[/bold] "
        f"({exposed.patients} patients, {exposed.series} series)"
    )


@app.command("unexpose")
def unexpose(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Exposed name.")]
) -> None:
    """Stop offering a dataset."""
    with platform_of(ctx) as platform:
        platform.federation.policies.unexpose(name)
    console().print(f"[bold]{name}[/bold] no longer exposed")


@app.command("datasets")
def datasets(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List exposed datasets with their counts."""
    with platform_of(ctx) as platform:
        exposed = platform.federation.policies.exposures()
    if as_json:
        print_json([_plain(e) for e in exposed])
        return
    table = Table("name", "project", "dataset", "patients", "studies", "series")
    for e in exposed:
        table.add_row(e.name, e.project, e.dataset, str(e.patients), str(e.studies), str(e.series))
    console().print(table)


# -- jobs at this participant ---------------------------------------------------------------


@app.command("jobs")
def jobs(
    ctx: typer.Context,
    state: Annotated[
        str | None, typer.Option(help="Only this state, e.g. pending_approval.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Jobs received from the orchestrator: who asked, what runs, on what, what would leave."""
    with platform_of(ctx) as platform:
        found = platform.federation.jobs.list(state=state)
    if as_json:
        print_json([_plain(j) for j in found])
        return
    table = Table("job", "state", "requester", "workflow", "hash", "dataset", "outputs", "reason")
    for j in found:
        table.add_row(
            j.job_id,
            j.state,
            j.requester,
            j.workflow,
            j.definition_hash[:12],
            j.dataset,
            ", ".join(j.outputs),
            j.reason,
        )
    console().print(table)


@app.command("approve")
def approve(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help="Job id.")]) -> None:
    """Approve a job pending approval; it runs with the next poll."""
    with platform_of(ctx) as platform:
        job = platform.federation.jobs.approve(job_id, actor=cli_actor())
    console().print(f"job {job.job_id} approved")


@app.command("deny")
def deny(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    reason: Annotated[str, typer.Option(help="Told to the orchestrator.")] = "",
) -> None:
    """Deny a job pending approval."""
    with platform_of(ctx) as platform:
        job = platform.federation.jobs.deny(job_id, actor=cli_actor(), reason=reason)
    console().print(f"job {job.job_id} denied")


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    reason: Annotated[str, typer.Option(help="Told to the orchestrator.")] = "",
) -> None:
    """Cancel a job at this site, whatever it is doing."""
    with platform_of(ctx) as platform:
        job = platform.federation.jobs.cancel(job_id, actor=cli_actor(), reason=reason)
    console().print(f"job {job.job_id} canceled")


# -- federated runs at the orchestrator -----------------------------------------------------


@app.command("start")
def start(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="Federated workflow, e.g. federated-statistics.")],
    dataset: Annotated[str, typer.Option(help="Exposed dataset name at the sites.")],
    site: Annotated[
        list[str] | None, typer.Option(help="A participant (repeatable; default: all).")
    ] = None,
    rounds: Annotated[int | None, typer.Option(min=1, help="Rounds (default: the plan's).")] = None,
    min_sites: Annotated[
        int | None, typer.Option(min=1, help="Sites that must deliver per round (default: all).")
    ] = None,
    site_timeout: Annotated[
        float, typer.Option(min=0.001, help="Seconds per site and round.")
    ] = 3600.0,
    param: Annotated[
        list[str] | None,
        typer.Option("-p", "--param", help="Parameter of the plan key=value (repeatable)."),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the end and print the result.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Start a federated run; `kaapana serve` at this orchestrator drives its rounds."""
    with platform_of(ctx) as platform:
        run = platform.federation.runs.start(
            workflow,
            dataset=dataset,
            actor=cli_actor(),
            sites=site,
            rounds=rounds,
            min_sites=min_sites,
            site_timeout=site_timeout,
            params=parse_params(param or []),
        )
        while wait and run.state == FederatedRunStateValues.running:
            time.sleep(0.5)
            run = platform.federation.runs.get(run.id)
    if as_json:
        print_json(_plain(run))
        return
    console().print(f"federated run {run.id} ({run.plan}, {len(run.sites)} sites): {run.state}")
    if run.result:
        print_json(run.result)


@app.command("runs")
def runs(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List federated runs of this orchestrator."""
    with platform_of(ctx) as platform:
        found = platform.federation.runs.list()
    if as_json:
        print_json([_plain(r) for r in found])
        return
    table = Table("id", "workflow", "state", "rounds", "sites", "error")
    for r in found:
        table.add_row(
            str(r.id),
            r.plan,
            r.state,
            f"{r.finished_rounds}/{r.rounds}",
            ", ".join(r.sites),
            r.error,
        )
    console().print(table)


@app.command("show")
def show(
    ctx: typer.Context, run_id: Annotated[int, typer.Argument(help="Federated run id.")]
) -> None:
    """A federated run with its jobs per round and its result."""
    with platform_of(ctx) as platform:
        print_json(_plain(platform.federation.runs.get(run_id)))


@app.command("simulate")
def simulate_command(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="Federated workflow to simulate.")],
    dataset: Annotated[str, typer.Option(help="Local dataset to split by patient.")],
    sites: Annotated[int, typer.Option(min=1, max=16, help="Virtual sites.")] = 3,
    project: Annotated[str, typer.Option(help="Project of the dataset.")] = "admin",
    rounds: Annotated[int | None, typer.Option(min=1, help="Rounds (default: the plan's).")] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="Folder of the virtual sites (default: a temporary one).")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("-p", "--param", help="Parameter of the plan key=value (repeatable)."),
    ] = None,
) -> None:
    """Split a local dataset by patient into virtual sites and run the real protocol between
    them in this process."""
    from kaapana.cli.simulate import simulate

    with reported_errors():
        result = simulate(
            settings_of(ctx),
            workflow=workflow,
            dataset=dataset,
            project=project,
            sites=sites,
            rounds=rounds,
            work_dir=work_dir,
            params=parse_params(param or []),
        )
    print_json(result)
