"""One error shape for every HTTP failure: ``{"error": code, "detail": text}`` (+ ``fields``).

Services raise ``KaapanaError``s; FastAPI's validation errors and Starlette's HTTP errors (unknown
route, wrong method) are rendered the same way, and anything unexpected becomes a logged 500 that
says nothing about internals.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from kaapana.errors import KaapanaError, TooManyRequests, Unauthorized

log = logging.getLogger(__name__)
_CODES = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}


def _field(error: dict[str, Any], body: Any) -> dict[str, Any]:
    location = [str(part) for part in error.get("loc", ())]
    message = str(error.get("msg", "invalid"))
    if error.get("type") == "json_invalid" and isinstance(body, str):
        # FastAPI gives the character offset; people look for a line and column.
        reason = str(error.get("ctx", {}).get("error", "JSON decode error"))
        position = int(location[-1]) if location[-1].isdigit() else 0
        line = body.count("\n", 0, position) + 1
        column = position - body.rfind("\n", 0, position)
        message = f"invalid JSON: {reason} at line {line}, column {column}"
    return {"location": location, "message": message}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KaapanaError)
    async def _kaapana(_request: Request, exc: KaapanaError) -> JSONResponse:
        headers = {}
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = 'Bearer realm="kaapana"'
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse(error_body(exc.code, exc.detail), exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [_field(error, exc.body) for error in exc.errors()]
        summary = "; ".join(f"{'.'.join(f['location'])}: {f['message']}" for f in fields)
        return JSONResponse(
            error_body("invalid_input", summary or "invalid request", fields=fields), 422
        )

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", "internal server error"), 500)


__all__ = ["error_body", "install_error_handlers"]
