"""Adjustments to pynetdicom's transport that every association of ours needs.

- Nagle off: DIMSE is request/response, so with delayed ACKs every small object would wait ~40 ms.
- A race in pynetdicom 3.0: an association's reactor thread is "paused" by a flag it sets just
  before blocking, so a reactor that had just passed the checkpoint can take a C-STORE response
  off the queue ("Received unexpected C-STORE service message"); the send then waits for the DIMSE
  timeout and the association dies (about one send in a thousand). Senders wait until the
  reactor thread really blocks.
- Its DUL thread either sends or reads per loop, sending first, so while a C-FIND keeps the
  send queue full a C-CANCEL is never read; a long answer pauses now and then until the queue
  has drained and the DUL had a turn at the socket.
- Process-wide switches, set once by ``configure``: storage of SOP classes pynetdicom does not
  list (private and newer ones), ``send_c_store(path)`` streaming the file's data set bytes
  unchanged instead of decoding and encoding them again, and no standard event logging.
"""

import socket
import time
from typing import Final

import pynetdicom
from pynetdicom.association import Association

_PAUSE_TIMEOUT: Final = 1.0
MAX_CONTEXTS: Final = 128  # PS3.8: presentation context ids are the odd numbers 1-255


def configure() -> None:
    """Set pynetdicom's process-wide switches (idempotent)."""
    pynetdicom._config.UNRESTRICTED_STORAGE_SERVICE = True
    # Its standard handlers format every DIMSE message for a debug log we never keep (~5 % of
    # the CPU per C-FIND response); warnings and errors are still logged.
    pynetdicom._config.LOG_HANDLER_LEVEL = "none"
    pynetdicom._config.STORE_SEND_CHUNKED_DATASET = True


def no_delay(sock: socket.socket) -> None:
    """Disable Nagle on a TCP socket."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def pause_reactor(assoc: Association) -> None:
    """Return once the association's reactor thread is blocked on its checkpoint."""
    checkpoint = assoc._reactor_checkpoint
    checkpoint.clear()
    # CPython's Event keeps the threads blocked in wait() in its condition's waiter list.
    waiters = getattr(getattr(checkpoint, "_cond", None), "_waiters", None)
    if waiters is None:
        time.sleep(0.002)  # another Python: one reactor cycle is 1 ms
        return
    deadline = time.monotonic() + _PAUSE_TIMEOUT
    while not waiters and assoc.is_alive() and time.monotonic() < deadline:
        time.sleep(0.0001)


def let_peer_speak(assoc: Association) -> None:
    """Wait until queued sends are out and the DUL thread has looked at the socket once more."""
    deadline = time.monotonic() + _PAUSE_TIMEOUT
    while not assoc.dul.to_provider_queue.empty() and time.monotonic() < deadline:
        time.sleep(0.0002)
    time.sleep(0.002)  # two turns of the DUL loop (1 ms each) to read and decode what arrived


__all__ = ["MAX_CONTEXTS", "configure", "let_peer_speak", "no_delay", "pause_reactor"]
