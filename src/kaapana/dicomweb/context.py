"""What every DICOMweb route shares: the caller's scope, base URLs and JSON answers.

DICOMweb is served twice: under ``/dicomweb`` it sees every project the caller may read (and
STOW-RS stores into the caller's only writable project), under ``/dicomweb/projects/{project}``
it sees and stores into that one project, which gives each project a DICOMweb root of its own
for viewers and peers such as Orthanc.
"""

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from kaapana.api.deps import CurrentPrincipal, PlatformDep
from kaapana.archive.visibility import ProjectScope
from kaapana.auth.principal import Principal
from kaapana.auth.projects import ADMIN_PROJECT
from kaapana.auth.roles import PermissionValues
from kaapana.db.models import Project
from kaapana.errors import InvalidInput, NotFound
from kaapana.platform import Platform

DICOM_JSON = "application/dicom+json"


@dataclass(frozen=True, slots=True)
class DicomwebContext:
    platform: Platform
    principal: Principal
    project: Project | None  # the project of a /dicomweb/projects/{project} root
    base_url: str  # ends with "/", e.g. http://host/dicomweb/

    @property
    def scope(self) -> ProjectScope:
        if self.project is not None:
            return frozenset({self.project.id})
        return self.principal.scope

    def url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")

    def store_project(self) -> Project:
        """Where STOW-RS stores: the root's project, else the caller's one writable project."""
        if self.project is not None:
            self.principal.require(
                self.project.id, PermissionValues.write, what=f"project {self.project.name!r}"
            )
            return self.project
        projects = self.platform.archive.projects.list()
        writable = [p for p in projects if self.principal.allows(p.id, PermissionValues.write)]
        if len(writable) == 1:
            return writable[0]
        admin = next((p for p in writable if p.name == ADMIN_PROJECT), None)
        if admin is not None and self.principal.is_admin:
            return admin
        names = ", ".join(p.name for p in writable) or "none"
        raise InvalidInput(
            "name the project to store into with /dicomweb/projects/{project}/studies "
            f"(writable: {names})"
        )


def public_root(request: Request, platform: Platform) -> str:
    """The server's external URL: configured, else the request's, with the port it came in on.

    Some clients (dicomweb-client among them) send a Host header without the port, which would
    make every URL in an answer point at the wrong port.
    """
    configured = platform.settings.public_url
    if configured:
        return configured.rstrip("/") + "/"
    url = request.base_url
    server = request.scope.get("server")
    default = 443 if url.scheme == "https" else 80
    if url.port is None and server and server[1] not in (None, default):
        url = url.replace(port=server[1])
    return str(url)


def dicomweb_context(
    request: Request, platform: PlatformDep, principal: CurrentPrincipal
) -> DicomwebContext:
    name = request.path_params.get("project")
    project = None
    base = public_root(request, platform) + "dicomweb/"
    if name is not None:
        project = platform.archive.projects.find(name)
        if project is None or not principal.sees(project.id):
            raise NotFound(f"project {name!r} not found")
        base += f"projects/{project.name}/"
    return DicomwebContext(platform, principal, project, base)


ContextDep = Annotated[DicomwebContext, Depends(dicomweb_context)]


def absolute_bulk_data(document: dict[str, Any], base_url: str) -> dict[str, Any]:
    """Stored JSON carries bulk data URIs relative to the DICOMweb root; answers need them whole."""
    result: dict[str, Any] = {}
    for tag, element in document.items():
        uri = element.get("BulkDataURI")
        if uri is not None:
            element = {**element, "BulkDataURI": base_url + uri}
        elif element.get("vr") == "SQ" and element.get("Value"):
            element = {
                **element,
                "Value": [absolute_bulk_data(item, base_url) for item in element["Value"]],
            }
        result[tag] = element
    return result


_BULK_DATA_URI = re.compile(r'"BulkDataURI":\s*"')


def absolute_bulk_data_text(document: str, base_url: str) -> str:
    """The same for JSON text: inside JSON strings quotes are escaped, so this finds keys only."""
    return _BULK_DATA_URI.sub(lambda _match: f'"BulkDataURI":"{base_url}', document)


def dicom_json_response(
    documents: Iterable[dict[str, Any]], *, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps(list(documents), separators=(",", ":"))
    return Response(body, media_type=DICOM_JSON, headers=headers)


__all__ = [
    "DICOM_JSON",
    "ContextDep",
    "DicomwebContext",
    "absolute_bulk_data",
    "absolute_bulk_data_text",
    "dicom_json_response",
    "dicomweb_context",
    "public_root",
]
