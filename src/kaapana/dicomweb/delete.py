"""DELETE of a study or series (the PS3.18 §10.9 "Delete" transaction, as Kaapana offers it).

Principal investigators remove data from their projects; it leaves the archive when no project
holds it any more. Administrators deleting at the root remove it from every project, i.e. from
the archive. Under ``/dicomweb/projects/{project}`` only that project is touched.
"""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kaapana.api.deps import client_address
from kaapana.archive.deletion import remove
from kaapana.archive.instances import describe_target, stored_instances
from kaapana.archive.visibility import ProjectScope
from kaapana.auth.roles import PermissionValues
from kaapana.dicomweb.context import ContextDep, DicomwebContext
from kaapana.dicomweb.uids import check_uid
from kaapana.errors import Forbidden

router = APIRouter()


def _projects_to_unlink(context: DicomwebContext, what: str) -> ProjectScope:
    principal = context.principal
    if context.project is not None:
        principal.require(context.project.id, PermissionValues.manage, what=what)
        return frozenset({context.project.id})
    if principal.is_admin and principal.sees_everything and principal.can_write:
        return None
    managed = frozenset(
        pk for pk in principal.roles if principal.allows(pk, PermissionValues.manage)
    )
    if not managed:
        raise Forbidden(f"deleting {what} needs the principal investigator role")
    return managed


def _delete(request: Request, context: DicomwebContext, study: str, series: str | None) -> Response:
    study = check_uid(study, field="study")
    series = check_uid(series, field="series") if series else None
    what = describe_target(study, series)
    stored_instances(  # 404 for what the caller cannot see, before any 403
        context.platform.engine, study=study, series=series, projects=context.scope
    )
    projects = _projects_to_unlink(context, what)
    context.platform.archive.flush()  # rows still in flight must not outlive their deletion
    removal = remove(
        context.platform.engine,
        context.platform.store,
        study=study,
        series=series,
        projects=projects,
        intents=context.platform.removal_intents,
        results=context.platform.series_results,
    )
    context.platform.auth.audit.record(
        "delete",
        actor=context.principal.username,
        target=f"study:{study}" + (f"/series:{series}" if series else ""),
        project=context.project.name if context.project else None,
        address=client_address(request),
        detail={
            "series_unlinked": removal.series_unlinked,
            "series_deleted": removal.series_deleted,
            "instances_deleted": removal.instances_deleted,
        },
    )
    return Response(status_code=204)


@router.delete("/studies/{study}", include_in_schema=False)
def delete_study(study: str, request: Request, context: ContextDep) -> Response:
    return _delete(request, context, study, None)


@router.delete("/studies/{study}/series/{series}", include_in_schema=False)
def delete_series(study: str, series: str, request: Request, context: ContextDep) -> Response:
    return _delete(request, context, study, series)
