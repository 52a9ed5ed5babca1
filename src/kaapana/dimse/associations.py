"""Who is on the other end of an association, and which project it talks to.

The called AE title selects the project; a calling AE title ``kp-<name>`` also files received
series into dataset ``<name>`` (Kaapana's convention). Resolved once per association.
"""

import logging
import threading
import weakref
from dataclasses import dataclass, field

from pynetdicom import evt
from pynetdicom.association import Association

from kaapana.archive import Archive, StoreTarget
from kaapana.auth.projects import ADMIN_PROJECT, admits
from kaapana.config import UnknownCalledAEValues
from kaapana.db.models import Project
from kaapana.dimse import statuses

log = logging.getLogger(__name__)
DATASET_AE_PREFIX = "kp-"


@dataclass
class AssociationContext:
    project: Project
    calling_ae_title: str
    dataset: str | None
    _target: StoreTarget | None = field(default=None, repr=False)

    @property
    def sees_everything(self) -> bool:
        return self.project.name == ADMIN_PROJECT


class AssociationRegistry:
    """Maps live associations to their context; entries vanish with the association."""

    def __init__(self, archive: Archive) -> None:
        self._archive = archive
        self._contexts: weakref.WeakKeyDictionary[Association, AssociationContext] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def handle_requested(self, event: evt.Event) -> None:
        """EVT_REQUESTED: accept or reject by called AE title, before any negotiation."""
        assoc = event.assoc
        called = assoc.requestor.primitive.called_ae_title.strip()
        calling = assoc.requestor.primitive.calling_ae_title.strip()
        project = self._archive.projects.by_ae_title(called)
        settings = self._archive.settings
        if project is None and settings.unknown_called_ae is UnknownCalledAEValues.accept:
            project = self._archive.projects.get(ADMIN_PROJECT)
        if project is None:
            log.warning("rejected association from %s: unknown called AE title %r", calling, called)
            self._reject(assoc, statuses.CALLED_AE_NOT_RECOGNISED)
            return
        if not admits(project, calling_ae_title=calling, address=assoc.requestor.address):
            log.warning(
                "rejected association from %s at %s: project %s does not admit it",
                calling,
                assoc.requestor.address,
                project.name,
            )
            self._reject(assoc, statuses.CALLING_AE_NOT_RECOGNISED)
            return
        dataset = None
        if calling.lower().startswith(DATASET_AE_PREFIX) and len(calling) > len(DATASET_AE_PREFIX):
            dataset = calling[len(DATASET_AE_PREFIX) :]
        with self._lock:
            self._contexts[assoc] = AssociationContext(project, calling, dataset)

    @staticmethod
    def _reject(assoc: Association, reason: int) -> None:
        assoc.acse.send_reject(statuses.REJECTED_PERMANENT, statuses.SOURCE_SERVICE_USER, reason)
        assoc.kill()  # waits until the A-ASSOCIATE-RJ has left, as pynetdicom's own rejections

    def context(self, assoc: Association) -> AssociationContext:
        with self._lock:
            return self._contexts[assoc]

    def store_target(self, assoc: Association) -> StoreTarget:
        """Where this association's objects go; the dataset is created on the first C-STORE."""
        context = self.context(assoc)
        if context._target is None:
            context._target = self._archive.target(context.project.name, context.dataset)
        return context._target


__all__ = ["DATASET_AE_PREFIX", "AssociationContext", "AssociationRegistry"]
