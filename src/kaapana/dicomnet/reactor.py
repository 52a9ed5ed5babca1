"""Accepted associations whose threads wait for work instead of polling for it.

pynetdicom runs two threads per association, and both poll: the DUL thread sleeps 1 ms whenever
a turn found nothing to do, the reactor thread sleeps 1 ms before every look at its queues. An
idle association therefore costs about a fifth of a core (four idle associations kept a receiver
process at 45 % of a core), and every object waits for up to three such sleeps on its way from
the socket to the handler and back as a response. Here the DUL thread waits in ``select`` on its
socket and on a wake-up socket that every primitive queued for sending rings, and the reactor
thread waits on an event that the DUL sets whenever it hands up a DIMSE message or an ACSE
primitive. Both still wake every ``IDLE_SECONDS`` for their timers (ARTIM, network timeout) and
kill flags, so nothing pynetdicom checks goes unchecked.

Received PDUs are also read in as few ``recv_into`` calls as the kernel allows, where
pynetdicom reads 4 KiB per call: a 512x512 CT slice is one PDU of half a megabyte. And the
supported presentation contexts are handed to each association as they are, where pynetdicom
deep-copies all ~170 of them per association (150 ms, most of an association's set-up).

The loops are pynetdicom 3.0's own, turn for turn; only the waits differ.
"""

import contextlib
import logging
import queue
import select
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from pynetdicom import evt
from pynetdicom._globals import MODE_ACCEPTOR
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.transport import AssociationSocket, RequestHandler

if TYPE_CHECKING:
    from pynetdicom.ae import ApplicationEntity

log = logging.getLogger(__name__)
IDLE_SECONDS: Final = 0.05


class _RingingQueue(queue.Queue[Any]):
    """A queue that calls ``ring`` after every put."""

    def __init__(self, ring: Callable[[], None]) -> None:
        super().__init__()
        self._ring = ring

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._ring()


class BulkSocket(AssociationSocket):
    """Reads a PDU into one buffer with as few system calls as the data arrives in."""

    def recv(self, nr_bytes: int) -> bytearray:
        buffer = bytearray(nr_bytes)
        view = memoryview(buffer)
        received = 0
        sock = self.socket
        assert sock is not None
        while received < nr_bytes:
            count = sock.recv_into(view[received:])
            if not count:  # connection broken: what arrived so far, as pynetdicom returns it
                return buffer[:received]
            received += count
        return buffer


class WaitingDUL(DULServiceProvider):
    """The DUL thread, waiting in ``select`` while it has nothing to send or read."""

    def __init__(self, assoc: "WaitingAssociation") -> None:
        super().__init__(assoc)
        self._bell, self._clapper = socket.socketpair()
        self._bell.setblocking(False)
        self._clapper.setblocking(False)
        self.to_provider_queue = _RingingQueue(self._ring)
        self.to_user_queue = _RingingQueue(assoc.activity.set)

    def _ring(self) -> None:
        with contextlib.suppress(OSError):  # already ringing, or the thread has ended
            self._bell.send(b"\0")

    def kill_dul(self) -> None:
        super().kill_dul()
        self._ring()

    def _wait(self) -> None:
        """Until the socket has data, a primitive is queued, or ``IDLE_SECONDS`` passed."""
        watched: list[Any] = [self._clapper]
        sock = self.socket.socket if self.socket is not None else None
        if sock is not None and sock.fileno() >= 0:
            pending = getattr(sock, "pending", None)  # TLS may hold decrypted bytes
            if pending is not None and pending():
                return
            watched.append(sock)
        try:
            readable, _, _ = select.select(watched, [], [], IDLE_SECONDS)
        except (OSError, ValueError):  # the socket was closed meanwhile: look at once
            return
        if self._clapper in readable:
            try:
                while self._clapper.recv(4096):
                    pass
            except BlockingIOError:
                pass

    def run_reactor(self) -> None:
        try:
            self._run_waiting()
        finally:
            self.assoc.activity.set()  # the reactor checks whether the DUL is still alive
            self._bell.close()
            self._clapper.close()

    def _run_waiting(self) -> None:
        self._idle_timer.start()
        assert self.socket is not None
        wait = False
        while True:
            if not self.assoc._dul_ready.is_set():
                self.assoc._dul_ready.set()
                wait = True
            if wait:
                self._wait()
            if self._kill_thread:
                break
            if self.artim_timer.expired:
                self.event_queue.put("Evt18")
            try:
                # Per turn either a queued primitive is encoded and sent or a PDU is read.
                if self._process_recv_primitive():
                    pass
                elif self._is_transport_event():
                    self._idle_timer.restart()
            except Exception as exc:
                log.error("Exception in the DUL reactor, aborting the association")
                log.exception(exc)
                abort_pdu = A_ABORT_RQ()
                abort_pdu.source = 0x02
                abort_pdu.reason_diagnostic = 0x00
                self.socket.send(abort_pdu.encode())
                self.assoc.is_aborted = True
                self.assoc.is_established = False
                self.assoc._kill = True
                self._kill_thread = True
                return
            try:
                event = self.event_queue.get(block=False)
            except queue.Empty:
                wait = True
                continue
            self.state_machine.do_action(event)
            wait = False


class WaitingAssociation(Association):
    """An accepted association whose reactor thread sleeps until the DUL has something."""

    def __init__(self, ae: "ApplicationEntity") -> None:
        super().__init__(ae, MODE_ACCEPTOR)
        self.activity = threading.Event()
        self.dul = WaitingDUL(self)
        self.dimse.msg_queue = _RingingQueue(self.activity.set)
        # Association.__init__ handed its timeouts to the DUL it made; hand them to this one.
        self.acse_timeout = ae.acse_timeout
        self.network_timeout = ae.network_timeout

    def kill(self) -> None:
        self.activity.set()
        super().kill()

    def _run_reactor(self) -> None:
        self._is_paused = False
        while not self._kill:
            self.activity.wait(IDLE_SECONDS)
            self.activity.clear()  # before looking: what arrives from now on rings again
            # Blocks while a sender has paused the reactor (see transport.pause_reactor).
            self._is_paused = True
            self._reactor_checkpoint.wait()
            self._is_paused = False

            context_id, msg = self.dimse.get_msg(block=False)
            if msg:
                self._serve_request(msg, context_id)  # type: ignore[arg-type]
                self.activity.set()  # more may be queued behind it

            if self.is_established and self.acse.is_release_requested():
                self.acse.send_release(is_response=True)
                log.info("Association Released")
                self.is_released = True
                self.is_established = False
                evt.trigger(self, evt.EVT_RELEASED, {})
                self.kill()
                return

            if self.acse.is_aborted():
                log_msg = "Association Aborted"
                if self.acse.is_aborted("a-p-abort"):
                    log_msg += " (A-P-ABORT)"
                log.info(log_msg)
                self.dul.receive_pdu(wait=False)
                self.is_aborted = True
                self.is_established = False
                evt.trigger(self, evt.EVT_ABORTED, {})
                self.kill()
                return

            if not self.dul.is_alive():
                self.kill()
                return

            if self.dul.idle_timer_expired():
                log.error("Network timeout reached")
                if self.network_timeout_response == "A-RELEASE":
                    self._is_paused = True
                    self._reactor_checkpoint.wait()
                    self.release()
                    self._is_paused = False
                else:
                    self.abort()
                self.kill()
                return


class WaitingRequestHandler(RequestHandler):
    """Accepts each connection as a ``WaitingAssociation`` reading through a ``BulkSocket``."""

    def _create_association(self) -> Association:
        assoc = WaitingAssociation(self.ae)
        assoc._server = self.server
        assoc.name = f"AcceptorThread@{self.client_address}"
        assoc.set_socket(BulkSocket(assoc, client_socket=self.request))
        assoc.acceptor.maximum_length = self.ae.maximum_pdu_size
        assoc.acceptor.ae_title = self.server.ae_title
        assoc.acceptor.address_info = self.local
        assoc.acceptor.implementation_class_uid = self.ae.implementation_class_uid
        assoc.acceptor.implementation_version_name = self.ae.implementation_version_name
        # pynetdicom deep-copies them, 150 ms for our ~170 contexts; negotiation only reads them.
        assoc.acceptor.supported_contexts = list(self.server.contexts)
        assoc.requestor.address_info = self.remote
        for event, handlers in self.server._handlers.items():
            if event.is_intervention and handlers:
                assoc.bind(event, *handlers)
            elif isinstance(event, evt.NotificationEvent):
                for handler in handlers:
                    assoc.bind(event, handler[0], handler[1])
        return assoc


__all__ = ["IDLE_SECONDS", "BulkSocket", "WaitingAssociation", "WaitingRequestHandler"]
