"""The bare receiver of the ingest benchmark: what pynetdicom alone costs.

It does the least any archive must do (accept the association, take the data set off the wire,
put its bytes in a file) with the two settings kaapana's SCP uses for speed, a large maximum PDU
and Nagle off on accepted sockets, so the gap to kaapana is kaapana's own work: parsing,
hashing, fsync and indexing. It runs as its own process like kaapana's receivers, and it uses
pynetdicom's threaded server, so parallel associations share one GIL as they would in one
kaapana receiver process.

Usage: ``python benchmarks/bare_scp.py PORT OUT_DIR MAX_PDU_SIZE``; stops on SIGINT or SIGTERM.
"""

import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

SUCCESS = 0x0000


class NoDelayServer(ThreadedAssociationServer):
    def get_request(self) -> tuple[socket.socket, Any]:
        client, address = super().get_request()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, address


def main(port: int, out_dir: Path, max_pdu_size: int) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)

    def handle_store(event: evt.Event) -> int:
        uid = str(event.request.AffectedSOPInstanceUID).strip("\x00 ")
        (out_dir / f"{uid}.dcm").write_bytes(event.encoded_dataset(include_meta=True))
        return SUCCESS

    ae = AE(ae_title="BARE")
    ae.maximum_pdu_size = max_pdu_size
    ae.maximum_associations = 32
    # The same contexts kaapana accepts, so negotiation costs the same.
    ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    server = ae.make_server(
        ("127.0.0.1", port),
        evt_handlers=[(evt.EVT_C_STORE, handle_store)],
        server_class=NoDelayServer,
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print("ready", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
