"""One boundary for DIMSE handlers: any failure becomes a status with an Error Comment.

The SCP must keep serving whatever a peer sends; an exception escaping a handler would abort the
association. Expected failures are returned with ``failure.status(code, reason)``; anything
unexpected is logged with its traceback and answered with the handler's fallback status.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from pydicom.dataset import Dataset

from kaapana.dicomnet import statuses

log = logging.getLogger(__name__)


def status_dataset(code: int, comment: str | None = None) -> Dataset:
    ds = Dataset()
    ds.Status = code
    if comment:
        ds.ErrorComment = comment.replace("\\", "/")[: statuses.ERROR_COMMENT_MAX]
    return ds


class Failure:
    def __init__(self, operation: str, fallback: int) -> None:
        self.operation = operation
        self.fallback = fallback
        self.result: Dataset = status_dataset(fallback)

    def status(self, code: int, reason: str) -> Dataset:
        log.warning("%s failed (0x%04X): %s", self.operation, code, reason)
        return status_dataset(code, reason)


@contextmanager
def dimse_failure(operation: str, fallback: int) -> Iterator[Failure]:
    """Run a handler body; an unexpected exception sets ``failure.result`` instead of escaping."""
    failure = Failure(operation, fallback)
    try:
        yield failure
    except Exception as exc:
        log.exception("%s failed unexpectedly", operation)
        failure.result = status_dataset(fallback, f"{type(exc).__name__}: {exc}")


__all__ = ["Failure", "dimse_failure", "status_dataset"]
