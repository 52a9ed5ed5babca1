"""The upload page: files, folders and zip archives into the project, NIfTI through a workflow."""

from fastapi import APIRouter
from starlette.responses import Response

from kaapana.api.deps import PlatformDep
from kaapana.auth.roles import PermissionValues
from kaapana.web.contexts import UploadPage
from kaapana.web.deps import PageError, PagePrincipal, RendererDep, layout_for, page_project
from kaapana.web.pages.project import ProjectName

router = APIRouter(prefix="/p/{project}", include_in_schema=False)
NIFTI_WORKFLOW = "import-nifti"


@router.get("/upload")
def upload(
    project: ProjectName, platform: PlatformDep, principal: PagePrincipal, renderer: RendererDep
) -> Response:
    found = page_project(platform, principal, project)
    if not principal.allows(found.id, PermissionValues.write):
        raise PageError(403, f"uploading to project {project!r} needs write access")
    layout = layout_for(platform, principal, section="upload", project=project, subpath="upload")
    names = {w.name for w in platform.workflows.workflows()}
    return renderer.response(UploadPage(layout=layout, can_nifti=NIFTI_WORKFLOW in names))
