"""Sending stored objects in C-MOVE and C-GET sub-operations exactly as they were received.

pynetdicom's retrieve SCP sends whatever data set the handler yields, encoded again by pydicom,
which is neither byte-preserving (group lengths, UN sequences and odd lengths come out changed)
nor cheap (every file is parsed in full). So the handler yields a ``StoredInstance`` stand-in,
and the association that sends the sub-operations gets a ``send_c_store`` that:

- streams the stored file when the peer accepted its (SOP class, transfer syntax): pynetdicom's
  chunked send, straight from disk, the data set bytes untouched (a store without local files
  gets the decoded object, encoded again in the same syntax);
- otherwise decodes it and lets pynetdicom convert between uncompressed syntaxes, decompressing
  first when the peer takes the SOP class only uncompressed;
- and raises for anything else (no context, unreadable file), which pynetdicom counts as a
  failed sub-operation and lists in the Failed SOP Instance UID List.

Streaming relies on pynetdicom's ``STORE_SEND_CHUNKED_DATASET`` (see ``transport.configure``):
``send_c_store(path)`` then requires an exact transfer syntax match, what a byte-preserving
sender wants anyway.

On a C-MOVE sub-association the sender waits for the reactor to pause (``transport``).
"""

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import build_context
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext

from kaapana.archive.query import RetrieveItem
from kaapana.dicomnet.transport import MAX_CONTEXTS, pause_reactor
from kaapana.storage import ObjectStore

log = logging.getLogger(__name__)
_UNCOMPRESSED: Final = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


class StoredInstance(Dataset):
    """What a retrieve handler yields for one stored object: only what pynetdicom looks at."""

    def __init__(self, item: RetrieveItem) -> None:
        super().__init__()
        self.SOPClassUID = item.sop_class_uid
        self.SOPInstanceUID = item.sop_instance_uid
        self.file_meta = FileMetaDataset()
        self.file_meta.TransferSyntaxUID = item.transfer_syntax_uid
        self.item = item


class _SendAsStored:
    """Replaces ``send_c_store`` on one association; other data sets pass through unchanged."""

    def __init__(self, assoc: Association, store: ObjectStore, *, own_reactor: bool) -> None:
        self._assoc = assoc
        self._store = store
        self._send = assoc.send_c_store
        # A C-GET sends from its association's reactor thread; a sub-association has its own.
        self._own_reactor = own_reactor

    def __call__(self, dataset: Any, **kwargs: Any) -> Dataset:
        if not isinstance(dataset, StoredInstance):
            return self._send(dataset, **kwargs)
        item = dataset.item
        path = self._store.local_path(item.storage_key)
        if path is not None and self._accepts(item.sop_class_uid, item.transfer_syntax_uid):
            payload: str | Dataset = path
        else:
            payload = self._decoded(item)
        if self._own_reactor:
            pause_reactor(self._assoc)
        return self._send(payload, **kwargs)

    def _accepts(self, sop_class_uid: str, transfer_syntax_uid: str) -> bool:
        return any(
            context.abstract_syntax == sop_class_uid
            and context.transfer_syntax[0] == transfer_syntax_uid
            and context.as_scu
            for context in self._assoc.accepted_contexts
        )

    def _decoded(self, item: RetrieveItem) -> Dataset:
        with self._store.open(item.storage_key) as stream:
            ds = dcmread(stream)
        syntax = UID(item.transfer_syntax_uid)
        if syntax.is_compressed and any(
            self._accepts(item.sop_class_uid, uncompressed) for uncompressed in _UNCOMPRESSED
        ):
            log.info(
                "decompressing %s: the peer does not accept %s", item.sop_instance_uid, syntax.name
            )
            ds.decompress(generate_instance_uid=False)
        return ds


def send_as_stored(assoc: Association, store: ObjectStore) -> None:
    """From now on the C-MOVE sub-association ``assoc`` sends stand-ins as their stored objects."""
    assoc.send_c_store = _SendAsStored(assoc, store, own_reactor=True)  # type: ignore[method-assign]


@contextmanager
def sending_as_stored(assoc: Association, store: ObjectStore) -> Iterator[None]:
    """The same for the duration of one C-GET, on the requestor's own association."""
    assoc.send_c_store = _SendAsStored(assoc, store, own_reactor=False)  # type: ignore[method-assign]
    try:
        yield
    finally:
        vars(assoc).pop("send_c_store", None)


def move_contexts(items: Sequence[RetrieveItem]) -> list[PresentationContext]:
    """The presentation contexts a C-MOVE sub-association proposes for ``items``.

    One context per stored (SOP class, transfer syntax) pair, most used first, so the peer can
    accept each stored syntax on its own; then, per SOP class not stored in Implicit VR Little
    Endian, one uncompressed fallback for a peer that refuses the stored syntax.
    """
    counts = Counter((item.sop_class_uid, item.transfer_syntax_uid) for item in items)
    pairs = sorted(counts, key=lambda pair: (-counts[pair], pair))
    contexts = [build_context(sop_class, [syntax]) for sop_class, syntax in pairs]
    for sop_class in dict.fromkeys(sop_class for sop_class, _ in pairs):
        if (sop_class, ImplicitVRLittleEndian) not in counts:
            fallback = [syntax for syntax in _UNCOMPRESSED if (sop_class, syntax) not in counts]
            contexts.append(build_context(sop_class, fallback))
    if len(contexts) > MAX_CONTEXTS:
        log.warning(
            "C-MOVE needs %d presentation contexts, proposing the first %d; objects without "
            "one fail",
            len(contexts),
            MAX_CONTEXTS,
        )
    return contexts[:MAX_CONTEXTS]


__all__ = ["StoredInstance", "move_contexts", "send_as_stored", "sending_as_stored"]
