"""The ASGI *zero copy send* extension for uvicorn: file bodies go out by ``sendfile(2)``.

WADO-RS sends whole series, hundreds of megabytes of stored files. Read into Python and
written through asyncio's transport, every byte is copied twice and every piece crosses
from a worker thread to the event loop; the kernel can move page-cache pages into the
socket itself. uvicorn does not offer the extension, so :class:`ZeroCopyHttpToolsProtocol`
adds it to its httptools protocol: plain-HTTP requests get
``scope["extensions"]["http.response.zerocopysend"]``, and the response cycle accepts the
extension's ``{"type": "http.response.zerocopysend", "file", "offset", "count",
"more_body"}`` messages (https://asgi.readthedocs.io/en/latest/extensions.html). Over TLS
the kernel cannot encrypt, so the extension is not offered and applications stream as before.

The transport's own buffer is emptied before a file goes out, and nothing else writes while
it does; the socket is duplicated for the send, so a client that disconnects midway closes
nothing under it. Files are expected in the page cache (they were just looked up); a cold
file stalls the event loop for the duration of its disk read.
"""

import asyncio
import os
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

ZERO_COPY_SEND: Final = "http.response.zerocopysend"


class _ZeroCopyCycle(RequestResponseCycle):
    async def send(self, message: Any) -> None:
        if message["type"] != ZERO_COPY_SEND:
            await super().send(message)
            return
        if not self.response_started or self.response_complete:
            raise RuntimeError(
                f"unexpected ASGI message {ZERO_COPY_SEND!r} outside a response body"
            )
        # Only the descriptor is used: the extension's "file" need not be more than fileno().
        fd: int = message["file"].fileno()
        offset = message.get("offset")
        offset = os.lseek(fd, 0, os.SEEK_CUR) if offset is None else offset
        count = message.get("count")
        count = os.fstat(fd).st_size - offset if count is None else count
        more_body = bool(message.get("more_body", False))
        if self.chunked_encoding or self.scope["method"] == "HEAD":
            body = b"" if self.scope["method"] == "HEAD" else os.pread(fd, count, offset)
            await super().send({"type": "http.response.body", "body": body, "more_body": more_body})
            return
        if count > self.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        await self._empty_transport_buffer()
        if not self.disconnected:
            await self._sendfile(fd, offset, count)
        self.expected_content_length -= count
        if not more_body:
            await super().send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _empty_transport_buffer(self) -> None:
        """Wait until everything written through the transport has reached the socket.

        With both limits at zero the transport pauses its protocol while any byte is queued
        and resumes it once the queue is empty, which uvicorn's flow control lets us await.
        """
        if not self.transport.get_write_buffer_size():
            return
        low, high = self.transport.get_write_buffer_limits()
        self.transport.set_write_buffer_limits(high=0, low=0)
        try:
            await self.flow.drain()
        finally:
            if not self.transport.is_closing():
                self.transport.set_write_buffer_limits(high=high, low=low)

    async def _sendfile(self, fd: int, offset: int, count: int) -> None:
        loop = asyncio.get_running_loop()
        sock = os.dup(self.transport.get_extra_info("socket").fileno())
        try:
            while count > 0 and not self.disconnected:
                try:
                    sent = os.sendfile(sock, fd, offset, count)
                except BlockingIOError:
                    await _writable(loop, sock)
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    self.disconnected = True
                    return
                if sent == 0:
                    raise RuntimeError(f"file ended {count} bytes before the announced length")
                offset += sent
                count -= sent
        finally:
            os.close(sock)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready = loop.create_future()
    loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_writer(fd)


class ZeroCopyHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the zero copy send extension on plain HTTP."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.scheme == "http":
            self.scope["extensions"] = {ZERO_COPY_SEND: {}}

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if type(self.cycle) is RequestResponseCycle:
            # The cycle was made a moment ago and its task has not run yet; only send differs.
            self.cycle.__class__ = _ZeroCopyCycle


__all__ = ["ZERO_COPY_SEND", "ZeroCopyHttpToolsProtocol"]
