"""A ``multipart/related`` response of stored files, sent without copying them through Python.

A series retrieval is hundreds of stored files; where the server offers the ASGI zero copy
send extension (``kaapana serve`` over plain HTTP, :mod:`kaapana.asgi`), each file goes from
the page cache into the socket by ``sendfile(2)`` and only the part headers pass through
Python. Elsewhere (TLS, other servers, in-process test clients) the body streams from a
worker thread in large pieces, byte for byte the same.
"""

import os
from collections.abc import Sequence

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from kaapana.asgi import ZERO_COPY_SEND
from kaapana.dicomweb.multipart import (
    OutgoingPart,
    file_size,
    multipart_content_type,
    multipart_length,
    multipart_segments,
    multipart_stream,
    new_boundary,
)


class MultipartResponse(StreamingResponse):
    """``parts`` under a fresh boundary, with the exact Content-Length (file sizes now)."""

    def __init__(self, parts: Sequence[OutgoingPart], *, part_type: str) -> None:
        self._parts = parts
        self._boundary = new_boundary()
        super().__init__(
            multipart_stream(parts, boundary=self._boundary),
            media_type=multipart_content_type(part_type, self._boundary),
            headers={"Content-Length": str(multipart_length(parts, boundary=self._boundary))},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if ZERO_COPY_SEND not in scope.get("extensions", {}):
            await super().__call__(scope, receive, send)
            return
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        for segment in multipart_segments(self._parts, boundary=self._boundary):
            if isinstance(segment, bytes):
                await send({"type": "http.response.body", "body": segment, "more_body": True})
                continue
            # A bare descriptor: a file object would cost system calls that contend for the GIL.
            file = _Descriptor(os.open(segment.body, os.O_RDONLY | os.O_CLOEXEC))
            try:
                await send(
                    {
                        "type": ZERO_COPY_SEND,
                        "file": file,
                        "offset": 0,
                        "count": file_size(segment),
                        "more_body": True,
                    }
                )
            finally:
                os.close(file.fd)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Descriptor:
    """An open file as the zero copy send extension takes it: something with ``fileno()``."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


__all__ = ["MultipartResponse"]
