"""Who is on the other end of an association, and which project it talks to.

The called AE title selects the project; a calling AE title ``kp-<name>`` also files received
series into dataset ``<name>`` (Kaapana's convention). Resolved once per association.

A peer may identify a user through User Identity Negotiation (PS3.7 D.3.3.7): a username with
an API token (or the password) as passcode, or an OIDC JWT. The user must be able to read the
project, or the association is rejected; queries then see only what the user may see, and
stores need write access. A project can demand an identity (``dimse_identity_required``);
scanners that cannot send one are admitted by AE title and network rules instead.
"""

import logging
import threading
import weakref
from collections import Counter
from dataclasses import dataclass, field

from pynetdicom import evt
from pynetdicom.association import Association

from kaapana.archive import Archive, StoreTarget
from kaapana.archive.visibility import ProjectScope
from kaapana.auth.principal import Principal
from kaapana.auth.projects import ADMIN_PROJECT, admits
from kaapana.auth.roles import PermissionValues
from kaapana.auth.service import Auth
from kaapana.config import UnknownCalledAEValues
from kaapana.db.models import Project
from kaapana.dicomnet import statuses
from kaapana.errors import KaapanaError

log = logging.getLogger(__name__)
DATASET_AE_PREFIX = "kp-"


@dataclass
class AssociationContext:
    project: Project
    calling_ae_title: str
    dataset: str | None
    principal: Principal | None = None
    address: str = ""
    stored_studies: Counter[str] = field(default_factory=Counter)
    _target: StoreTarget | None = field(default=None, repr=False)

    @property
    def actor(self) -> str:
        """Who acts, for the audit trail: the negotiated user, else the calling AE title."""
        return self.principal.username if self.principal else f"dicom:{self.calling_ae_title}"

    @property
    def sees_everything(self) -> bool:
        return self.project.name == ADMIN_PROJECT

    @property
    def scope(self) -> ProjectScope:
        """What queries and retrievals of this association may see."""
        if not self.sees_everything:
            return frozenset({self.project.id})
        return None if self.principal is None else self.principal.scope

    def refusal(self, permission: PermissionValues) -> str | None:
        """Why this association may not do ``permission`` on its project, or None."""
        if self.principal is None:
            if self.project.dimse_identity_required:
                return f"AE {self.project.ae_title} needs user identity negotiation"
            return None
        if not self.principal.allows(self.project.id, permission):
            return f"user {self.principal.username} may not {permission.value} here"
        return None


class AssociationRegistry:
    """Maps live associations to their context; entries vanish with the association."""

    def __init__(self, archive: Archive, auth: Auth) -> None:
        self._archive = archive
        self._auth = auth
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
        context = AssociationContext(
            project, calling, dataset, address=assoc.requestor.address or ""
        )
        with self._lock:
            self._contexts[assoc] = context

    def handle_user_id(
        self,
        event: evt.Event,
    ) -> tuple[bool, bytes | None]:
        """EVT_USER_ID: verify the identity; an unknown one or one without access is refused."""
        context = self.context(event.assoc)
        kind = event.user_id_type
        primary = event.primary_field.decode("utf-8", "replace")
        address = event.assoc.requestor.address
        try:
            if kind == 2:
                principal = self._auth.from_dimse_credentials(
                    primary, event.secondary_field.decode("utf-8", "replace"), address=address
                )
            elif kind == 5:
                principal = self._auth.from_bearer(primary, address=address)
            else:
                log.warning("user identity type %d from %s is not supported", kind, address)
                return False, None
        except KaapanaError as exc:
            log.warning("user identity from %s refused: %s", address, exc.detail)
            return False, None
        if not principal.sees(context.project.id):
            log.warning("user %s may not use project %s", principal.username, context.project.name)
            return False, None
        context.principal = principal
        return True, None

    def handle_ended(self, event: evt.Event) -> None:
        """EVT_RELEASED / EVT_ABORTED: one audit record for what the association stored."""
        with self._lock:
            context = self._contexts.pop(event.assoc, None)
        if context is None or not context.stored_studies:
            return
        self._auth.audit.record(
            "store",
            actor=context.actor,
            target=",".join(sorted(context.stored_studies))[:1024],
            project=context.project.name,
            address=context.address,
            detail={
                "via": "DIMSE",
                "calling_ae_title": context.calling_ae_title,
                "instances": sum(context.stored_studies.values()),
            },
        )

    def audit_retrieval(
        self, context: AssociationContext, operation: str, studies: set[str]
    ) -> None:
        self._auth.audit.record(
            "retrieve",
            actor=context.actor,
            target=",".join(sorted(f"study:{uid}" for uid in studies))[:1024],
            project=context.project.name,
            address=context.address,
            detail={"kind": operation, "calling_ae_title": context.calling_ae_title},
        )

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
