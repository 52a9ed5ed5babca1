"""Workflows: what can run here, with the JSON Schema of each one's parameters."""

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from kaapana.api.deps import AdminPrincipal, CurrentPrincipal, PlatformDep
from kaapana.workflows.views import LoadErrorView, WorkflowView

router = APIRouter(prefix="/workflows", tags=["workflows"])


class WorkflowList(BaseModel):
    workflows: list[WorkflowView]
    load_errors: list[LoadErrorView]


@router.get("", operation_id="list_workflows")
def list_workflows(platform: PlatformDep, _principal: CurrentPrincipal) -> WorkflowList:
    engine = platform.workflows
    return WorkflowList(workflows=engine.workflows(), load_errors=engine.load_errors())


@router.post("/reload", operation_id="reload_workflows")
def reload_workflows(platform: PlatformDep, _principal: AdminPrincipal) -> WorkflowList:
    """Read the plugins folder and installed packages again (admins)."""
    errors = platform.workflows.reload()
    return WorkflowList(workflows=platform.workflows.workflows(), load_errors=errors)


@router.get("/{name}", operation_id="get_workflow")
def get_workflow(
    name: Annotated[str, Path(max_length=128)], platform: PlatformDep, _principal: CurrentPrincipal
) -> WorkflowView:
    return platform.workflows.workflow(name)
