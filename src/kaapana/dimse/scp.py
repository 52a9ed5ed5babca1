"""The DICOM SCP: one AE that receives, answers queries and serves retrievals.

Throughput comes from three choices: Nagle off on every socket (each small object would otherwise
wait ~40 ms on delayed ACKs), large PDUs (fewer, bigger reads in Python), and several receiver
processes sharing the port through ``SO_REUSEPORT`` (one Python process is GIL-bound).
"""

import logging
import socket
import socketserver
import threading
import time
from typing import Any

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)
from pynetdicom.transport import ThreadedAssociationServer

from kaapana.dimse.associations import AssociationRegistry
from kaapana.dimse.qr import handle_find, handle_get, handle_move
from kaapana.dimse.store import handle_store
from kaapana.dimse.transport import configure, no_delay
from kaapana.platform import Platform

log = logging.getLogger(__name__)

QUERY_RETRIEVE_MODELS = (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelMove,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelGet,
)


class ReusePortServer(ThreadedAssociationServer):
    """An association server that shares its port with sibling processes and disables Nagle."""

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()

    def get_request(self) -> tuple[socket.socket, Any]:
        client, address = super().get_request()
        no_delay(client)
        return client, address

    def shutdown(self) -> None:
        """Stop accepting; associations in progress run to their end (see ``wait_idle``)."""
        socketserver.BaseServer.shutdown(self)
        self.server_close()

    def wait_idle(self, timeout: float) -> None:
        """Let open associations finish (graceful stop), up to ``timeout`` seconds in all.

        A connection that has not asked for an association yet holds nothing worth waiting for
        (a port probe would otherwise hold the stop for the whole ACSE timeout): its socket is
        closed and its daemon thread left to end with the process.
        """
        deadline = time.monotonic() + timeout
        for assoc in self.active_associations:
            if assoc.is_established:
                assoc.join(max(0.0, deadline - time.monotonic()))
            elif assoc.dul.socket is not None:
                assoc.dul.socket.close()


def build_ae(platform: Platform) -> tuple[AE, list[Any]]:
    """The application entity with every context we serve, and its event handlers."""
    archive = platform.archive
    settings = archive.settings
    configure()
    ae = AE(ae_title=settings.ae_title)
    ae.maximum_pdu_size = settings.max_pdu_size
    ae.maximum_associations = settings.max_associations
    ae.network_timeout = 60
    ae.dimse_timeout = 60
    ae.acse_timeout = 30
    ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
    for context in AllStoragePresentationContexts:
        # scp_role lets C-GET requestors receive the objects on this association.
        ae.add_supported_context(
            context.abstract_syntax, ALL_TRANSFER_SYNTAXES, scp_role=True, scu_role=False
        )
    for model in QUERY_RETRIEVE_MODELS:
        ae.add_supported_context(model, ALL_TRANSFER_SYNTAXES)
    registry = AssociationRegistry(archive, platform.auth)
    handlers = [
        (evt.EVT_REQUESTED, registry.handle_requested),
        (evt.EVT_USER_ID, registry.handle_user_id),
        (evt.EVT_RELEASED, registry.handle_ended),
        (evt.EVT_ABORTED, registry.handle_ended),
        (evt.EVT_C_STORE, handle_store, [archive, registry]),
        (evt.EVT_C_FIND, handle_find, [archive, registry]),
        (evt.EVT_C_MOVE, handle_move, [archive, registry]),
        (evt.EVT_C_GET, handle_get, [archive, registry]),
    ]
    return ae, handlers


def start_scp(platform: Platform, *, host: str, port: int) -> ReusePortServer:
    """Start serving in background threads; returns the server (``shutdown()`` to stop)."""
    ae, handlers = build_ae(platform)
    server = ae.make_server((host, port), evt_handlers=handlers, server_class=ReusePortServer)
    thread = threading.Thread(target=server.serve_forever, name="kaapana-dimse", daemon=True)
    thread.start()
    log.info("DICOM SCP %s listening on %s:%d", ae.ae_title, host, server.server_address[1])
    return server


__all__ = ["QUERY_RETRIEVE_MODELS", "ReusePortServer", "build_ae", "start_scp"]
