"""The Query/Retrieve SCU: C-FIND a remote node's studies and C-GET them into a folder.

C-GET rather than C-MOVE: the objects come back on the association the caller opened, so a
workflow task retrieves from any worker without the node knowing where that worker listens. A
C-MOVE needs a destination AE registered on the node at a fixed address, and its objects arrive
on another association, out of the task's sight.
"""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, StoragePresentationContexts, build_role, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from kaapana.archive.metadata import UID_PATTERN
from kaapana.dicomnet import statuses
from kaapana.dicomnet.scu import AssociationFailed, RemoteNode, associate
from kaapana.dicomnet.transport import MAX_CONTEXTS

_PENDING: Final = frozenset({statuses.PENDING, statuses.PENDING_WARNING})
# The end of a C-GET whose sub-operations all, some or none failed: the counts tell how many,
# and the caller decides what that means.
_GET_DONE: Final = frozenset(
    {
        statuses.SUCCESS,
        statuses.SUB_OPERATIONS_WARNING,
        statuses.OUT_OF_RESOURCES_SUB_OPERATIONS,
    }
)
# What a retrieving association accepts per storage SOP class: the node picks one of these
# for each class (and transcodes, where it can, what it holds in another).
RETRIEVE_TRANSFER_SYNTAXES: Final = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
]
# One context is the C-GET model's; the others are pynetdicom's common storage SOP classes.
RETRIEVE_STORAGE_CLASSES: Final = [
    cx.abstract_syntax for cx in StoragePresentationContexts[: MAX_CONTEXTS - 1]
]


@dataclass(frozen=True, slots=True)
class FoundStudies:
    studies: list[Dataset]
    truncated: bool
    """More studies matched than the limit; the association was aborted after it."""


@dataclass(slots=True)
class Retrieved:
    """What one C-GET brought: the files written, and the node's sub-operation counts."""

    study_instance_uid: str
    files: list[Path] = field(default_factory=list)
    completed: int = 0
    failed: int = 0
    warning: int = 0
    refused: list[str] = field(default_factory=list)
    """Why objects were not written here (SOP Instance UID and reason)."""


def find_studies(
    node: RemoteNode, identifier: Dataset, *, calling_ae_title: str, limit: int
) -> FoundStudies:
    """C-FIND at study level (Study Root); at most ``limit`` answers."""
    ae = AE(ae_title=calling_ae_title)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = associate(ae, node)
    found: list[Dataset] = []
    try:
        responses = assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind)
        for status, answer in responses:
            code = _code(node, "C-FIND", status)
            if code in _PENDING:
                if len(found) == limit:
                    assoc.abort()
                    return FoundStudies(found, truncated=True)
                if answer is not None:
                    found.append(answer)
            elif code != statuses.SUCCESS:
                raise AssociationFailed(
                    f"C-FIND on {_where(node)} failed: status 0x{code:04X} "
                    f"{status.get('ErrorComment', '')}".rstrip()
                )
    finally:
        if assoc.is_established:
            assoc.release()
    return FoundStudies(found, truncated=False)


def get_study(
    node: RemoteNode, study_instance_uid: str, folder: Path, *, calling_ae_title: str
) -> Retrieved:
    """C-GET one study (Study Root) into ``folder`` as Part 10 files named by SOP Instance UID,
    each written as received."""
    folder.mkdir(parents=True, exist_ok=True)
    ae = AE(ae_title=calling_ae_title)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    for sop_class in RETRIEVE_STORAGE_CLASSES:
        ae.add_requested_context(sop_class, RETRIEVE_TRANSFER_SYNTAXES)
    roles = [build_role(sop_class, scp_role=True) for sop_class in RETRIEVE_STORAGE_CLASSES]
    retrieved = Retrieved(study_instance_uid)
    handlers = [(evt.EVT_C_STORE, _receive, [folder, retrieved])]
    assoc = associate(ae, node, ext_neg=roles, evt_handlers=handlers)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study_instance_uid
    try:
        responses = assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet)
        for status, _answer in responses:
            code = _code(node, "C-GET", status)
            retrieved.completed = int(status.get("NumberOfCompletedSuboperations", 0) or 0)
            retrieved.failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
            retrieved.warning = int(status.get("NumberOfWarningSuboperations", 0) or 0)
            if code not in _PENDING and code not in _GET_DONE:
                raise AssociationFailed(
                    f"C-GET of study {study_instance_uid} from {_where(node)} failed: status "
                    f"0x{code:04X} {status.get('ErrorComment', '')}".rstrip()
                )
    finally:
        if assoc.is_established:
            assoc.release()
    return retrieved


def _receive(event: evt.Event, folder: Path, retrieved: Retrieved) -> int:
    """EVT_C_STORE of a C-GET sub-operation: the object's bytes, as received, into a file."""
    uid = str(event.request.AffectedSOPInstanceUID or "")
    safe = UID_PATTERN.match(uid) is not None and len(uid) <= 64
    name = uid if safe else hashlib.sha256(uid.encode()).hexdigest()
    path = folder / f"{name}.dcm"
    try:
        path.write_bytes(event.encoded_dataset())
    except OSError as exc:
        retrieved.refused.append(f"{uid}: not written ({exc.strerror})")
        return statuses.OUT_OF_RESOURCES
    retrieved.files.append(path)
    return statuses.SUCCESS


def _code(node: RemoteNode, what: str, status: Dataset) -> int:
    if not status or "Status" not in status:
        raise AssociationFailed(f"{what} on {_where(node)}: no response (timeout or abort)")
    return int(status.Status)


def _where(node: RemoteNode) -> str:
    return f"{node.name} ({node.ae_title}@{node.host}:{node.port})"


__all__ = [
    "RETRIEVE_STORAGE_CLASSES",
    "RETRIEVE_TRANSFER_SYNTAXES",
    "FoundStudies",
    "Retrieved",
    "find_studies",
    "get_study",
]
