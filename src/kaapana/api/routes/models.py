"""Models: the registry of trained models, each version with its labels, input modality,
training run and metrics. Reading needs read access to the model's project."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from kaapana.api.deps import CurrentPrincipal, PlatformDep
from kaapana.auth.principal import Principal
from kaapana.auth.roles import PermissionValues
from kaapana.models import ModelView
from kaapana.platform import Platform

router = APIRouter(prefix="/models", tags=["models"])
ModelName = Annotated[str, Path(max_length=64, description="Model name.")]
ProjectFilter = Annotated[
    str | None, Query(max_length=64, description="Only models of this project.")
]


def _project_pk(platform: Platform, principal: Principal, project: str | None) -> int | None:
    if project is None:
        return None
    found = platform.archive.projects.get(project)
    principal.require(found.id, PermissionValues.read, what=f"project {project!r}")
    return found.id


@router.get("", operation_id="list_models")
def list_models(
    platform: PlatformDep, principal: CurrentPrincipal, project: ProjectFilter = None
) -> list[ModelView]:
    """Every version of every model the caller sees, by name, newest version first."""
    return platform.models.list_models(
        scope=principal.scope, project_pk=_project_pk(platform, principal, project)
    )


@router.get("/{name}", operation_id="get_model_versions")
def get_model_versions(
    name: ModelName,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    project: ProjectFilter = None,
) -> list[ModelView]:
    """The versions of one model, newest first."""
    return platform.models.versions(
        name, scope=principal.scope, project_pk=_project_pk(platform, principal, project)
    )


@router.get("/{name}/versions/{version}", operation_id="get_model_version")
def get_model_version(
    name: ModelName,
    version: Annotated[int, Path(ge=1, le=2**31 - 1, description="Model version.")],
    platform: PlatformDep,
    principal: CurrentPrincipal,
    project: ProjectFilter = None,
) -> ModelView:
    return platform.models.get(
        name,
        version,
        scope=principal.scope,
        project_pk=_project_pk(platform, principal, project),
    )
