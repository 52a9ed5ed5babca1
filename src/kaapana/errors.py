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


class InvalidJson(InvalidInput):
    """Text that should be JSON (a request body, a query) is not; the detail says where."""

    status = 422
    code = "invalid_json"


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


class NotAcceptable(KaapanaError):
    """None of the representations the client's Accept header allows can be produced."""

    status = 406
    code = "not_acceptable"


class PayloadTooLarge(KaapanaError):
    """The request body is larger than the platform takes in one request."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(KaapanaError):
    """The request body's Content-Type is not one the endpoint reads."""

    status = 415
    code = "unsupported_media_type"


class Unauthorized(KaapanaError):
    """No credentials, or credentials that do not identify an active user."""

    status = 401
    code = "unauthorized"


class TooManyRequests(KaapanaError):
    """The caller must wait ``retry_after`` seconds (brute-force protection)."""

    status = 429
    code = "too_many_requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidDicom",
    "InvalidInput",
    "InvalidJson",
    "KaapanaError",
    "NotAcceptable",
    "NotFound",
    "PayloadTooLarge",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
]
