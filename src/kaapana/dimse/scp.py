"""The DICOM SCP: one AE that receives, answers queries and serves retrievals.

Throughput comes from three choices: Nagle off on every socket (each small object would otherwise
wait ~40 ms on delayed ACKs), large PDUs (fewer, bigger reads in Python), and several receiver
processes accepting from one listening socket (one Python process is GIL-bound). A receiver takes
a connection only while no sibling has fewer associations, so 4 associations over 2 processes run
2 and 2 (the kernel's choice, e.g. with ``SO_REUSEPORT``, puts 3 or 4 on one process in most runs).
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

from kaapana.dicomnet.reactor import WaitingRequestHandler
from kaapana.dicomnet.transport import configure, no_delay
from kaapana.dimse.associations import AssociationRegistry
from kaapana.dimse.qr import handle_find, handle_get, handle_move
from kaapana.dimse.store import handle_store
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


class AcceptBalance:
    """The association counts of all receiver processes, in shared memory."""

    HANDOFF_SECONDS = 0.05  # how long a busier receiver leaves a connection to its siblings

    def __init__(self, counts: Any, index: int) -> None:
        self._counts = counts  # multiprocessing.Array("i", processes)
        self._index = index
        self._deferring_since = 0.0

    def defer(self) -> bool:
        """True while a sibling with fewer associations may take the pending connection."""
        counts = self._counts[:]
        if counts[self._index] <= min(counts):
            return False
        now = time.monotonic()
        if now - self._deferring_since > 2 * self.HANDOFF_SECONDS:  # a new connection
            self._deferring_since = now
        return now - self._deferring_since < self.HANDOFF_SECONDS

    def opened(self) -> None:
        with self._counts.get_lock():
            self._counts[self._index] += 1

    def closed(self) -> None:
        with self._counts.get_lock():
            self._counts[self._index] -= 1


class ReceiverServer(ThreadedAssociationServer):
    """An association server that disables Nagle; in a pool of receiver processes it accepts
    from the listening socket the pool shares, balanced by ``AcceptBalance``."""

    def __init__(
        self,
        *args: Any,
        listener: socket.socket | None = None,
        balance: AcceptBalance | None = None,
        **kwargs: Any,
    ) -> None:
        self._listener = listener
        self._balance = balance
        super().__init__(*args, request_handler=WaitingRequestHandler, **kwargs)

    def server_bind(self) -> None:
        if self._listener is None:
            super().server_bind()
            return
        self.socket.close()
        self.socket = self._listener
        self.socket.setblocking(False)  # siblings race for each connection; losers must not wait
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        if self._listener is None:
            super().server_activate()

    def _handle_request_noblock(self) -> None:
        if self._balance is not None and self._balance.defer():
            time.sleep(0.001)
            return
        super()._handle_request_noblock()

    def get_request(self) -> tuple[socket.socket, Any]:
        client, address = super().get_request()  # OSError when a sibling was faster
        no_delay(client)
        if self._balance is not None:
            self._balance.opened()
        return client, address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            if self._balance is not None:
                self._balance.closed()

    def shutdown(self) -> None:
        """Stop accepting; associations in progress run to their end (see ``wait_idle``)."""
        socketserver.BaseServer.shutdown(self)
        if self._listener is None:
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


def start_scp(
    platform: Platform,
    *,
    host: str,
    port: int,
    listener: socket.socket | None = None,
    balance: AcceptBalance | None = None,
) -> ReceiverServer:
    """Start serving in background threads; returns the server (``shutdown()`` to stop).

    With ``listener`` the server accepts from that (shared, listening) socket instead of binding
    ``host:port`` itself.
    """
    ae, handlers = build_ae(platform)
    server = ae.make_server(
        (host, port),
        evt_handlers=handlers,
        server_class=ReceiverServer,
        listener=listener,
        balance=balance,
    )
    thread = threading.Thread(target=server.serve_forever, name="kaapana-dimse", daemon=True)
    thread.start()
    log.info("DICOM SCP %s listening on %s:%d", ae.ae_title, host, server.server_address[1])
    return server


__all__ = ["QUERY_RETRIEVE_MODELS", "AcceptBalance", "ReceiverServer", "build_ae", "start_scp"]
