"""DICOM nodes (remote AEs): everyone signed in may list them, admins change them."""

from typing import Annotated

from fastapi import APIRouter, Body, Path, Request
from pydantic import BaseModel, Field

from kaapana.api.deps import AdminPrincipal, CurrentPrincipal, PlatformDep, client_address
from kaapana.archive.nodes import Nodes
from kaapana.db.models import DicomNode
from kaapana.dicomnet.scu import echo

router = APIRouter(prefix="/nodes", tags=["nodes"])


class NodePublic(BaseModel):
    name: str
    ae_title: str
    host: str
    port: int
    description: str


class NodeCreate(BaseModel):
    name: str = Field(max_length=64)
    ae_title: str = Field(max_length=16)
    host: str = Field(max_length=255)
    port: int = Field(ge=1, le=65535)
    description: str = Field("", max_length=1024)


def _public(node: DicomNode) -> NodePublic:
    return NodePublic(
        name=node.name,
        ae_title=node.ae_title,
        host=node.host,
        port=node.port,
        description=node.description,
    )


@router.get("", operation_id="list_nodes")
def list_nodes(platform: PlatformDep, _principal: CurrentPrincipal) -> list[NodePublic]:
    return [_public(n) for n in Nodes(platform.engine).list()]


@router.post("", operation_id="create_node", status_code=201)
def create_node(
    request: Request,
    platform: PlatformDep,
    principal: AdminPrincipal,
    body: Annotated[NodeCreate, Body()],
) -> NodePublic:
    node = Nodes(platform.engine).add(
        body.name, body.ae_title, body.host, body.port, body.description
    )
    platform.auth.audit.record(
        "node.create",
        actor=principal.username,
        target=f"node:{node.name}",
        address=client_address(request),
        detail={"ae_title": node.ae_title, "host": node.host, "port": node.port},
    )
    return _public(node)


@router.delete("/{name}", operation_id="delete_node", status_code=204)
def delete_node(
    name: Annotated[str, Path(max_length=64)],
    request: Request,
    platform: PlatformDep,
    principal: AdminPrincipal,
) -> None:
    Nodes(platform.engine).remove(name)
    platform.auth.audit.record(
        "node.delete",
        actor=principal.username,
        target=f"node:{name}",
        address=client_address(request),
    )


class EchoResult(BaseModel):
    node: str
    milliseconds: float


@router.post("/{name}/echo", operation_id="echo_node")
def echo_node(
    name: Annotated[str, Path(max_length=64)], platform: PlatformDep, _admin: AdminPrincipal
) -> EchoResult:
    """C-ECHO the node; a node that does not answer is a 502 naming why."""
    seconds = echo(Nodes(platform.engine).get(name), calling_ae_title=platform.settings.ae_title)
    return EchoResult(node=name, milliseconds=round(seconds * 1000, 1))
