"""Query/Retrieve SCP: C-FIND answered from the index, C-MOVE and C-GET sending stored objects.

Handlers are pynetdicom generators with the archive and association registry bound. Everything
that can fail (decoding the identifier, the index) runs inside ``dimse_failure`` and becomes a
status with an Error Comment; sending one object can only fail that sub-operation (see
``stored``). Every request sees only the series of the project its called AE title selects.
"""

import logging
from collections.abc import Iterator, Sequence
from typing import Any, Final

from pydicom.dataset import Dataset
from pynetdicom import build_context, evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    Verification,
)

from kaapana.archive import Archive
from kaapana.archive.attributes import InformationModelValues
from kaapana.archive.nodes import Nodes
from kaapana.archive.query import ArchiveQuery, RetrieveItem
from kaapana.auth.roles import PermissionValues
from kaapana.db.models import DicomNode
from kaapana.dicomnet import statuses
from kaapana.dicomnet.transport import let_peer_speak, no_delay
from kaapana.dimse.associations import AssociationRegistry
from kaapana.dimse.failures import Failure, dimse_failure
from kaapana.dimse.stored import StoredInstance, move_contexts, send_as_stored, sending_as_stored
from kaapana.errors import InvalidInput
from kaapana.storage import ObjectStore

log = logging.getLogger(__name__)
CANCEL_CHECK_EVERY: Final = 64  # responses between chances for a C-CANCEL to be read
_PATIENT_ROOT: Final = frozenset(
    {
        PatientRootQueryRetrieveInformationModelFind,
        PatientRootQueryRetrieveInformationModelMove,
        PatientRootQueryRetrieveInformationModelGet,
    }
)
# (status, identifier) for C-FIND and the data set stages of C-MOVE/C-GET; the first stages of
# those yield a destination and a count instead.
Response = tuple[int | Dataset, Dataset | None]


def _model(event: evt.Event) -> InformationModelValues:
    """Only the patient and study root models are registered (``scp.QUERY_RETRIEVE_MODELS``)."""
    if event.request.AffectedSOPClassUID in _PATIENT_ROOT:
        return InformationModelValues.PATIENT_ROOT
    return InformationModelValues.STUDY_ROOT


def handle_find(
    event: evt.Event, archive: Archive, registry: AssociationRegistry
) -> Iterator[Response]:
    """EVT_C_FIND: one pending response per match; a failure after some ends the responses."""
    with dimse_failure("C-FIND", statuses.UNABLE_TO_PROCESS) as failure:
        yield from _find(event, archive, registry, failure)
        return
    yield failure.result, None


def _find(
    event: evt.Event, archive: Archive, registry: AssociationRegistry, failure: Failure
) -> Iterator[Response]:
    context = registry.context(event.assoc)
    refusal = context.refusal(PermissionValues.read)
    if refusal is not None:
        yield failure.status(statuses.NOT_AUTHORIZED, refusal), None
        return
    try:
        matches = ArchiveQuery(archive.engine).find(
            model=_model(event),
            identifier=event.identifier,
            projects=context.scope,
            retrieve_ae_title=context.project.ae_title or archive.settings.ae_title,
        )
    except InvalidInput as exc:
        yield failure.status(statuses.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, exc.detail), None
        return
    for number, match in enumerate(matches):
        if number and number % CANCEL_CHECK_EVERY == 0:
            let_peer_speak(event.assoc)
        if event.is_cancelled:
            log.info("C-FIND cancelled by %s", context.calling_ae_title)
            yield statuses.CANCEL, None
            return
        yield statuses.PENDING, match


def _resolve(
    event: evt.Event, archive: Archive, registry: AssociationRegistry, operation: str
) -> list[RetrieveItem] | Dataset:
    """The instances to send, or the failure status to answer with."""
    with dimse_failure(operation, statuses.UNABLE_TO_PROCESS) as failure:
        context = registry.context(event.assoc)
        refusal = context.refusal(PermissionValues.read)
        if refusal is not None:
            return failure.status(statuses.NOT_AUTHORIZED, refusal)
        try:
            items = ArchiveQuery(archive.engine).instances_to_retrieve(
                model=_model(event),
                identifier=event.identifier,
                projects=context.scope,
            )
        except InvalidInput as exc:
            return failure.status(statuses.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, exc.detail)
        log.info("%s of %d instances for %s", operation, len(items), context.calling_ae_title)
        if items:
            registry.audit_retrieval(context, operation, {i.study_instance_uid for i in items})
        return items
    return failure.result


def _sub_operations(
    event: evt.Event, items: Sequence[RetrieveItem], operation: str
) -> Iterator[Response]:
    """One pending stand-in per object; pynetdicom counts, sends and reports each."""
    for item in items:
        if event.is_cancelled:
            log.info("%s cancelled by the requestor", operation)
            yield statuses.CANCEL, None
            return
        yield statuses.PENDING, StoredInstance(item)


def _destination(event: evt.Event, archive: Archive) -> DicomNode | None:
    """The registered node of the Move Destination AE title; None answers 0xA801.

    Only registered nodes receive data. If the lookup itself fails there is no destination
    either, and 0xA801 is the only status pynetdicom can send before one is known.
    """
    title = (event.move_destination or "").strip()
    with dimse_failure("C-MOVE", statuses.MOVE_DESTINATION_UNKNOWN):
        node = Nodes(archive.engine).by_ae_title(title) if title else None
        if node is None:
            log.warning("C-MOVE to unknown destination %r refused", title)
        return node
    return None


def _open_sub_association(event: evt.Event, store: ObjectStore) -> None:
    """EVT_CONN_OPEN of a C-MOVE sub-association: Nagle off, send stored objects as stored."""
    no_delay(event.assoc.dul.socket.socket)
    send_as_stored(event.assoc, store)


def handle_move(event: evt.Event, archive: Archive, registry: AssociationRegistry) -> Iterator[Any]:
    """EVT_C_MOVE: destination, number of sub-operations, then one stand-in per object."""
    node = _destination(event, archive)
    if node is None:
        yield None, None
        return
    outcome = _resolve(event, archive, registry, "C-MOVE")
    if isinstance(outcome, Dataset):
        # pynetdicom associates before it takes a status; Verification is all it needs then.
        yield node.host, node.port, {"contexts": [build_context(Verification)]}
        yield 1
        yield outcome, None
        return
    handlers = [(evt.EVT_CONN_OPEN, _open_sub_association, [archive.store])]
    yield node.host, node.port, {"contexts": move_contexts(outcome), "evt_handlers": handlers}
    yield len(outcome)
    yield from _sub_operations(event, outcome, "C-MOVE")


def handle_get(event: evt.Event, archive: Archive, registry: AssociationRegistry) -> Iterator[Any]:
    """EVT_C_GET: number of sub-operations, then the objects over the requestor's association.

    Objects go out on the storage contexts the requestor proposed with the SCP role; one without
    a usable context is a failed sub-operation.
    """
    outcome = _resolve(event, archive, registry, "C-GET")
    if isinstance(outcome, Dataset):
        yield 1
        yield outcome, None
        return
    yield len(outcome)
    with sending_as_stored(event.assoc, archive.store):
        yield from _sub_operations(event, outcome, "C-GET")


__all__ = ["handle_find", "handle_get", "handle_move"]
