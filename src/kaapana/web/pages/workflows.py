"""Workflow pages of one project: what can run here, and the form that starts a run."""

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from kaapana.api.deps import PlatformDep
from kaapana.auth.roles import PermissionValues
from kaapana.errors import KaapanaError
from kaapana.federation.states import PeerRoleValues
from kaapana.platform import Platform
from kaapana.web.contexts import FederatedForm, WorkflowFormPage, WorkflowsPage
from kaapana.web.deps import PageError, PagePrincipal, RendererDep, layout_for, page_project

router = APIRouter(prefix="/p/{project}", include_in_schema=False)
ProjectName = Annotated[str, Path(max_length=64)]
MAX_PRESELECTED = 10_000


@router.get("/workflows")
def workflows(
    project: ProjectName, platform: PlatformDep, principal: PagePrincipal, renderer: RendererDep
) -> Response:
    page_project(platform, principal, project)
    layout = layout_for(
        platform, principal, section="workflows", project=project, subpath="workflows"
    )
    page = WorkflowsPage(
        layout=layout,
        workflows=platform.workflows.workflows(),
        load_errors=platform.workflows.load_errors() if layout.is_admin else [],
    )
    return renderer.response(page)


def federated_form(platform: Platform, workflow: str) -> FederatedForm | None:
    """The federated plan whose sites run ``workflow``, with the registered participants."""
    for plan in platform.federation.plans.all():
        if plan.workflow == workflow:
            participants = [
                s for s in platform.federation.sites.list() if s.role is PeerRoleValues.participant
            ]
            return FederatedForm(
                plan=plan.name, default_rounds=plan.default_rounds, participants=participants
            )
    return None


@router.get("/workflows/{name}")
def workflow_form(
    project: ProjectName,
    name: Annotated[str, Path(max_length=128)],
    platform: PlatformDep,
    principal: PagePrincipal,
    renderer: RendererDep,
    series: Annotated[str, Query(max_length=1_000_000, description="uid1,uid2,...")] = "",
    dataset: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """``?series=`` and ``?dataset=`` preselect the input, so other pages can link here."""
    found = page_project(platform, principal, project)
    try:
        workflow = platform.workflows.workflow(name)
    except KaapanaError as exc:
        raise PageError(exc.status, str(exc)) from exc
    uids = [uid.strip() for uid in series.split(",") if uid.strip()]
    if len(uids) > MAX_PRESELECTED:
        raise PageError(400, f"'series' may name at most {MAX_PRESELECTED} series, got {len(uids)}")
    layout = layout_for(
        platform, principal, section="workflows", project=project, subpath="workflows"
    )
    page = WorkflowFormPage(
        layout=layout,
        workflow=workflow,
        can_write=principal.allows(found.id, PermissionValues.write),
        series=uids,
        dataset=dataset,
        federated=federated_form(platform, workflow.name) if layout.is_admin else None,
    )
    return renderer.response(page)
