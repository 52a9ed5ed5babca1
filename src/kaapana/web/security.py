"""Headers that keep the UI's pages from running injected code, and the login redirect guard."""

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# OHIF (under /ohif only) decodes compressed frames with WebAssembly in its workers and sets
# inline styles from its UI library; it still runs no inline, eval'd or foreign script.
OHIF_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)
# Machine interfaces keep their own headers: the OpenAPI docs page needs its inline scripts.
_NOT_UI = ("/api/", "/dicomweb", "/healthz", "/metrics")


def is_ui_path(path: str) -> bool:
    return not path.startswith(_NOT_UI)


class SecurityHeaders:
    """ASGI middleware adding the UI's security headers to every response outside the APIs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_ui_path(str(scope["path"])):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((name, value) for name, value in SECURITY_HEADERS if name not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def safe_next(value: str | None, default: str = "/") -> str:
    """``value`` if it is a path on this site, else ``default``: never an open redirect.

    Browsers read ``//host`` and ``/\\host`` as other sites and drop tabs and newlines, so
    only a single leading slash followed by a printable, non-backslash path passes.
    """
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(not char.isprintable() or char == "\\" for char in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


__all__ = [
    "CONTENT_SECURITY_POLICY",
    "OHIF_CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "SecurityHeaders",
    "is_ui_path",
    "safe_next",
]
