"""The DICOM SCU: verify a remote node and send objects to it, as stored (no re-encoding).

A node is anything with a name, AE title, host and port: a registered ``DicomNode`` row, or the
``NodeAddress`` a workflow task is handed (workers never read the registry).
"""

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pydicom
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification

from kaapana.dicomnet.transport import MAX_CONTEXTS, configure, no_delay, pause_reactor
from kaapana.errors import InvalidInput, KaapanaError


class AssociationFailed(KaapanaError):
    status = 502
    code = "association_failed"


class RemoteNode(Protocol):
    """Where an association goes; ``name`` is for messages."""

    name: str
    ae_title: str
    host: str
    port: int


@dataclass
class SendReport:
    sent: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def associate(ae: AE, node: RemoteNode, **kwargs: Any) -> Association:
    """An established association with ``node`` (``kwargs`` go to ``AE.associate``), or
    ``AssociationFailed`` naming the node and why."""
    configure()
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title, **kwargs)
    if not assoc.is_established:
        if assoc.is_rejected:
            reason = "rejected"
        elif assoc.rejected_contexts:
            refused = ", ".join(
                f"{cx.abstract_syntax.name} in {cx.transfer_syntax[0].name}"
                for cx in assoc.rejected_contexts
            )
            reason = f"failed: the node accepts none of {refused}"
        else:
            reason = "aborted or unreachable"
        raise AssociationFailed(
            f"association with {node.name} ({node.ae_title}@{node.host}:{node.port}) {reason}"
        )
    if assoc.dul.socket is not None and assoc.dul.socket.socket is not None:
        no_delay(assoc.dul.socket.socket)
    return assoc


def echo(node: RemoteNode, *, calling_ae_title: str) -> float:
    """C-ECHO round trip in seconds; raises ``AssociationFailed``."""
    ae = AE(ae_title=calling_ae_title)
    ae.add_requested_context(Verification)
    started = time.perf_counter()
    assoc = associate(ae, node)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if not status or status.Status != 0:
        raise AssociationFailed(f"C-ECHO to {node.name} failed: {status}")
    return time.perf_counter() - started


def _presentation(path: Path) -> tuple[str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    sop_class = str(ds.get("SOPClassUID") or ds.file_meta.MediaStorageSOPClassUID)
    return sop_class, str(ds.file_meta.TransferSyntaxUID)


def send(
    node: RemoteNode,
    files: Iterable[Path],
    *,
    calling_ae_title: str,
    on_progress: Callable[[Path, bool], None] | None = None,
) -> SendReport:
    """C-STORE every file to ``node``, in its stored transfer syntax."""
    report = SendReport()
    groups: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for path in files:
        try:
            groups[_presentation(path)].append(path)
        except Exception as exc:
            report.failed.append((str(path), f"unreadable: {exc}"))
    if not groups and not report.failed:
        raise InvalidInput("nothing to send")
    pairs = sorted(groups)
    for start in range(0, len(pairs), MAX_CONTEXTS):
        chunk = pairs[start : start + MAX_CONTEXTS]
        ae = AE(ae_title=calling_ae_title)
        for sop_class, transfer_syntax in chunk:
            ae.add_requested_context(sop_class, transfer_syntax)
        assoc = associate(ae, node)
        try:
            for pair in chunk:
                for path in groups[pair]:
                    ok = _send_one(assoc, path, report)
                    if on_progress is not None:
                        on_progress(path, ok)
        finally:
            assoc.release()
    return report


def _send_one(assoc: Association, path: Path, report: SendReport) -> bool:
    try:
        pause_reactor(assoc)
        status = assoc.send_c_store(path)
    except Exception as exc:
        report.failed.append((str(path), f"{type(exc).__name__}: {exc}"))
        return False
    code = getattr(status, "Status", None)
    if code is None or code not in (0x0000, 0xB000, 0xB006, 0xB007):
        comment = getattr(status, "ErrorComment", "") if status else "no response"
        report.failed.append((str(path), f"status 0x{code or 0:04X} {comment}".strip()))
        return False
    report.sent += 1
    return True


__all__ = ["AssociationFailed", "RemoteNode", "SendReport", "associate", "echo", "send"]
