"""The UI's static files, served under one content-hashed version so browsers cache them forever.

Every URL is ``/static/<version>/<path>`` where ``<version>`` hashes all files together. ES modules
import each other by relative path (``./api.js``), so their imports land on the same version
without rewriting anything, and a change to any file moves every URL.
"""

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import Response

from kaapana.errors import NotFound

_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
CACHE_FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class _Asset:
    content: bytes
    media_type: str


def _walk(folder: Traversable, prefix: str = "") -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for entry in folder.iterdir():
        if entry.is_dir():
            found.update(_walk(entry, f"{prefix}{entry.name}/"))
        elif not entry.name.startswith("."):
            found[prefix + entry.name] = entry.read_bytes()
    return found


def _media_type(path: str) -> str:
    suffix = path[path.rfind(".") :]
    return _MEDIA_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


class StaticAssets:
    """Read once when the app is built (never at import time); answered from memory."""

    def __init__(self, folder: Traversable | None = None) -> None:
        contents = _walk(folder or files("kaapana.web") / "static")
        digest = hashlib.sha256()
        for path in sorted(contents):
            digest.update(path.encode() + b"\0" + contents[path] + b"\0")
        self.version = digest.hexdigest()[:12]
        self._assets = {path: _Asset(body, _media_type(path)) for path, body in contents.items()}

    def url(self, path: str) -> str:
        """The hashed URL of a static file; a typo fails when the template renders."""
        if path not in self._assets:
            raise KeyError(f"no static file {path!r} in kaapana.web")
        return f"/static/{self.version}/{path}"

    def response(self, version: str, path: str) -> Response:
        asset = self._assets.get(path)
        if asset is None or version != self.version:
            raise NotFound(f"static file {path!r} of version {version!r} not found")
        return Response(
            asset.content, media_type=asset.media_type, headers={"Cache-Control": CACHE_FOREVER}
        )


__all__ = ["CACHE_FOREVER", "StaticAssets"]
