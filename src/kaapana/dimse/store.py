"""C-STORE SCP: received bytes go to the archive untouched; every failure becomes a DICOM status."""

import logging

from pydicom.dataset import Dataset
from pynetdicom import evt

from kaapana.archive import Archive
from kaapana.auth.roles import PermissionValues
from kaapana.dicomnet import statuses
from kaapana.dimse.associations import AssociationRegistry
from kaapana.dimse.failures import dimse_failure
from kaapana.errors import Conflict, InvalidDicom

log = logging.getLogger(__name__)


def handle_store(
    event: evt.Event, archive: Archive, registry: AssociationRegistry
) -> Dataset | int:
    """EVT_C_STORE: store the encoded data set as received, answer once it is indexed."""
    request = event.request
    with dimse_failure("C-STORE", statuses.OUT_OF_RESOURCES) as failure:
        refusal = registry.context(event.assoc).refusal(PermissionValues.write)
        if refusal is not None:
            return failure.status(statuses.NOT_AUTHORIZED, refusal)
        data = event.encoded_dataset(include_meta=True)
        context_sop_class = str(event.context.abstract_syntax)
        try:
            result = archive.store_bytes(
                data,
                registry.store_target(event.assoc),
                source=f"C-STORE from {event.assoc.requestor.ae_title.strip()}",
                wait=False,  # durable and journaled is enough to acknowledge; see archive/journal
            )
        except InvalidDicom as exc:
            return failure.status(statuses.CANNOT_UNDERSTAND, exc.detail)
        except Conflict as exc:
            return failure.status(statuses.DUPLICATE_REFUSED, exc.detail)
        if result.sop_instance_uid != str(request.AffectedSOPInstanceUID).strip("\x00 "):
            log.warning(
                "C-STORE of %s: data set SOP Instance UID differs from the request's %s",
                result.sop_instance_uid,
                request.AffectedSOPInstanceUID,
            )
        registry.context(event.assoc).stored_studies[result.study_instance_uid] += 1
        if context_sop_class != str(request.AffectedSOPClassUID).strip("\x00 "):
            log.warning("C-STORE of %s: SOP Class differs from context", result.sop_instance_uid)
        return statuses.SUCCESS
    return failure.result


__all__ = ["handle_store"]
