"""One error hierarchy for every service, so each interface can render failures one way.

Services raise these; the HTTP layer maps ``status`` to a response, the CLI prints ``detail``
in red, and the DIMSE layer turns them into DICOM status codes.
"""


class KaapanaError(Exception):
    """Base of all errors the platform reports to a caller."""

    status = 500
    code = "internal_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(KaapanaError):
    """The caller sent something the platform cannot accept."""

    status = 400
    code = "invalid_input"


class InvalidDicom(InvalidInput):
    """A DICOM object is malformed or lacks what the index cannot do without."""

    code = "invalid_dicom"


class NotFound(KaapanaError):
    status = 404
    code = "not_found"


class Conflict(KaapanaError):
    status = 409
    code = "conflict"


class Forbidden(KaapanaError):
    status = 403
    code = "forbidden"


__all__ = ["Conflict", "Forbidden", "InvalidDicom", "InvalidInput", "KaapanaError", "NotFound"]
