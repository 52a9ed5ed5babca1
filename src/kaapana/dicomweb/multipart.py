"""``multipart/related`` bodies for DICOMweb (PS3.18 §8.6, §8.7; RFC 2387, RFC 2046 §5.1).

STOW-RS requests and WADO-RS responses carry many DICOM objects in one ``multipart/related``
body, which may be gigabytes long, so both directions stream: :func:`read_parts` consumes the
request body chunk by chunk and holds no more than the part it is reading (spilling a large
part to a temporary file), and :func:`multipart_stream` produces a response body without loading the
files it sends.

Why a parser of our own: both maintained Python libraries are written for
``multipart/form-data``. ``python-multipart``'s ``MultipartParser`` rejects a preamble that is
not blank lines and the transport padding RFC 2046 allows after a boundary, and
``multipart``'s ``PushMultipartParser`` insists on a ``Content-Disposition: form-data`` header
unless a private hook is overridden, and also rejects transport padding. Both ran at under
200 MB/s on a 200 MB part in 64 KiB chunks; the ``bytes.find`` on a sliding buffer below splits
at several GB/s and the whole reader, spooling included, runs at about 1 GB/s, so a STOW-RS
upload is bounded by the network and the disk rather than by parsing.
Media types of the headers are parsed in :mod:`kaapana.dicomweb.media_types`.
"""

import asyncio
import io
import os
import re
import secrets
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self, TypeAlias

from kaapana.dicomweb.media_types import (
    MediaType,
)
from kaapana.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

DEFAULT_MEMORY_LIMIT = 64 * 1024 * 1024
"""Part bodies up to this size stay in memory; larger ones are spooled to a temporary file."""

DEFAULT_MAX_HEADER_BYTES = 16 * 1024
"""Longest header block of one part: DICOMweb parts have a handful of short headers."""

FILE_CHUNK_BYTES = 4 * 1024 * 1024
"""Size of the pieces a streamed body is written in: few thread hops, little memory each."""

_SPOOL_FLUSH_BYTES = 1024 * 1024
_MAX_TRANSPORT_PADDING = 1024

_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]*[0-9A-Za-z'()+_,\-./:=?]")
BOUNDARY_LIMIT = 70
"""RFC 2046's longest boundary: what we write."""
RECEIVED_BOUNDARY_LIMIT = 200
"""What we read: Orthanc, for one, sends 73 characters (two UUIDs); parsing loses nothing."""
_HEADER_NAME = re.compile(rb"[!-9;-~]+")
_HEADER_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_PADDING = re.compile(rb"[ \t]*")
_HEADER_TEXT = re.compile(r"[\t\x20-\x7e]*")

_CR = 0x0D
_LF = 0x0A
_HYPHEN = 0x2D


def boundary_of(media_type: MediaType) -> str:
    """The ``boundary`` parameter of a multipart request's ``Content-Type``, checked."""
    if not media_type.type.startswith("multipart/"):
        raise UnsupportedMediaType(f"expected a multipart body, got Content-Type {media_type}")
    boundary = media_type.params.get("boundary")
    if boundary is None:
        raise InvalidInput(f"Content-Type {media_type} has no boundary parameter")
    problem = _boundary_problem(boundary, RECEIVED_BOUNDARY_LIMIT)
    if problem:
        raise InvalidInput(f"multipart boundary {boundary!r} is invalid: {problem}")
    return boundary


def new_boundary() -> str:
    """A fresh random boundary: 128 random bits cannot plausibly occur in any body."""
    return secrets.token_hex(16)


def multipart_content_type(part_type: str, boundary: str, **params: str) -> str:
    """The ``Content-Type`` of a ``multipart/related`` body whose parts are ``part_type``.

    Keyword names take ``-`` for ``_`` (``transfer_syntax=`` gives ``transfer-syntax=``);
    ``boundary`` comes last.
    """
    problem = _boundary_problem(boundary)
    if problem:
        raise ValueError(f"multipart boundary {boundary!r} is invalid: {problem}")
    rendered: dict[str, str] = {"type": part_type}
    rendered.update((name.replace("_", "-"), value) for name, value in params.items())
    rendered["boundary"] = boundary
    return str(MediaType("multipart/related", rendered))


class PartHeaders(Mapping[str, str]):
    """The headers of one body part, looked up without regard to case."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, tuple[str, str]] = {
            name.lower(): (name, value) for name, value in items
        }

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"PartHeaders({dict(self.items())!r})"


class Part:
    """One body part of a received multipart message, owning its body until closed.

    Ownership passes to the caller when :func:`read_parts` yields the part: close it (or use
    it as a context manager) once stored, so a spooled body's temporary file goes away at a
    known moment rather than at garbage collection. Reading a spooled body is blocking file
    IO; async callers run it in a thread.
    """

    __slots__ = ("_body", "_file", "headers", "size")

    def __init__(
        self, headers: PartHeaders, size: int, body: bytes | None, file: BinaryIO | None
    ) -> None:
        self.headers = headers
        self.size = size
        self._body = body
        self._file = file

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    @property
    def spooled(self) -> bool:
        """Whether the body lives in a temporary file rather than in memory."""
        return self._file is not None

    def read(self) -> bytes:
        """The whole body."""
        if self._body is not None:
            return self._body
        return self.open().read()

    def open(self) -> BinaryIO:
        """The body as a binary file positioned at its start, for readers that want a stream.

        A spooled part hands out its own temporary file, so there is one reader at a time,
        and closing that file closes the part.
        """
        if self._body is not None:
            return io.BytesIO(self._body)
        if self._file is None or self._file.closed:
            raise ValueError("the body of this part has been closed")
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        self._body = None
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "spooled" if self.spooled else "in memory"
        return f"<Part {self.content_type!r} {self.size} bytes {where}>"


async def read_parts(
    chunks: AsyncIterable[bytes],
    *,
    boundary: str,
    max_body_bytes: int,
    spool_dir: Path | None = None,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
) -> AsyncIterator[Part]:
    """Yield the body parts of a ``multipart/*`` body as they complete.

    Reading stops with :class:`PayloadTooLarge` as soon as more than ``max_body_bytes`` have
    arrived, and with :class:`InvalidInput` at the first byte that breaks RFC 2046. Parts
    larger than ``memory_limit`` are spooled to a temporary file in ``spool_dir`` (the system
    default when None); the file is unlinked from the start, so nothing is left on disk even
    if the process dies. At a ``yield`` no part is in progress, so abandoning the iteration
    leaks nothing: only the yielded parts, which the caller owns, remain to be closed.
    """
    problem = _boundary_problem(boundary, RECEIVED_BOUNDARY_LIMIT)
    if problem:
        raise InvalidInput(f"multipart boundary {boundary!r} is invalid: {problem}")
    splitter = _Splitter(boundary.encode("ascii"), max_header_bytes)
    received = 0
    spool: _Spool | None = None
    try:
        async for chunk in chunks:
            if not isinstance(chunk, bytes):
                chunk = bytes(chunk)  # parts keep views of chunks: a reused buffer would change
            received += len(chunk)
            if received > max_body_bytes:
                raise PayloadTooLarge(
                    f"request body exceeds the limit of {max_body_bytes} bytes "
                    f"({received} bytes received so far)"
                )
            for event in splitter.feed(chunk):
                if isinstance(event, PartHeaders):
                    spool = _Spool(event, splitter.part_count, memory_limit, spool_dir)
                elif isinstance(event, _EndOfPart):
                    assert spool is not None
                    part = await spool.finish()
                    spool = None
                    yield part
                else:
                    assert spool is not None
                    await spool.write(event)
        splitter.close()
    finally:
        if spool is not None:
            spool.discard()


@dataclass(frozen=True)
class OutgoingPart:
    """One part of a response body: its body is bytes, or the path of a file sent as it is."""

    content_type: str
    body: bytes | str | PathLike[str]
    content_location: str | None = None
    size: int | None = None  # of a file body, where known (from the index): saves a stat

    def __post_init__(self) -> None:
        for name, value in (
            ("content_type", self.content_type),
            ("content_location", self.content_location),
        ):
            if value is not None and not _HEADER_TEXT.fullmatch(value):
                raise ValueError(f"{name} {value!r} is not printable ASCII")

    def header_block(self) -> bytes:
        """The part's header lines and the blank line that ends them."""
        lines = [f"Content-Type: {self.content_type}\r\n"]
        if self.content_location is not None:
            lines.append(f"Content-Location: {self.content_location}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("ascii")


def multipart_stream(
    parts: Iterable[OutgoingPart], *, boundary: str, chunk_size: int = FILE_CHUNK_BYTES
) -> Iterator[bytes]:
    """Encode ``parts`` as a multipart body, reading file bodies in ``chunk_size`` pieces.

    A plain iterator rather than an async one: Starlette's ``StreamingResponse`` runs it in
    its thread pool, so the file reads do not block the event loop.
    """
    return _encode(multipart_segments(parts, boundary=boundary), chunk_size)


def multipart_segments(
    parts: Iterable[OutgoingPart], *, boundary: str
) -> Iterator[bytes | OutgoingPart]:
    """The body in order as framing bytes (delimiters, part headers and in-memory bodies,
    adjacent ones joined) and the parts whose files go between them, unread."""
    problem = _boundary_problem(boundary)
    if problem:
        raise ValueError(f"multipart boundary {boundary!r} is invalid: {problem}")
    return _segments(parts, b"--" + boundary.encode("ascii"))


def multipart_length(parts: Sequence[OutgoingPart], *, boundary: str) -> int:
    """The exact length of ``multipart_stream(parts)``, so a response can declare it.

    With a Content-Length the server writes pieces as they are, without chunked framing (a copy
    of every piece); file bodies are measured now and must not change before they are sent.
    """
    dash = len(boundary) + 2
    length = 0
    for number, part in enumerate(parts):
        body = len(part.body) if isinstance(part.body, bytes) else file_size(part)
        length += (dash if number == 0 else dash + 2) + 2 + len(part.header_block()) + body
    return length + (dash if not parts else dash + 2) + 4


def file_size(part: OutgoingPart) -> int:
    """The length of a file body: as known, else as stored now."""
    if part.size is not None:
        return part.size
    return os.stat(part.body).st_size


def _segments(
    parts: Iterable[OutgoingPart], dash_boundary: bytes
) -> Iterator[bytes | OutgoingPart]:
    pending = bytearray()
    opening = dash_boundary  # the first delimiter needs no CRLF: the body starts with it
    for part in parts:
        pending += opening + b"\r\n" + part.header_block()
        if isinstance(part.body, bytes):
            pending += part.body
        else:
            yield bytes(pending)
            pending.clear()
            yield part
        opening = b"\r\n" + dash_boundary  # the CRLF ending a body belongs to the delimiter
    pending += opening + b"--\r\n"
    yield bytes(pending)


def _encode(segments: Iterable[bytes | OutgoingPart], chunk_size: int) -> Iterator[bytes]:
    """Pieces of about ``chunk_size``: each one crosses from a worker thread to the event loop
    and into the socket, so many small parts (headers, 500 kB slices) go out together."""
    pending = bytearray()
    for segment in segments:
        if isinstance(segment, bytes):
            pending += segment
        else:
            with open(segment.body, "rb") as file:
                while chunk := file.read(chunk_size):
                    pending += chunk
                    if len(pending) >= chunk_size:
                        yield bytes(pending)
                        pending.clear()
        if len(pending) >= chunk_size:
            yield bytes(pending)
            pending.clear()
    yield bytes(pending)


class _EndOfPart:
    __slots__ = ()


_END_OF_PART = _EndOfPart()

_Event: TypeAlias = memoryview | PartHeaders | _EndOfPart

_PREAMBLE = "preamble"
_AFTER_BOUNDARY = "after boundary"
_HEADERS = "headers"
_BODY_START = "body start"
_BODY = "body"
_EPILOGUE = "epilogue"


class _Splitter:
    """Turns a byte stream into part headers, body slices and part ends, chunk by chunk.

    Between calls only the bytes that may still begin a delimiter (or an unfinished header
    block) are kept, so memory does not grow with the body. Delimiters are searched as
    ``LF "--" boundary``, and a CR before the LF is dropped from the body: that matches the
    RFC 2046 delimiter ``CRLF "--" boundary`` and tolerates LF-only senders at no cost.
    """

    def __init__(self, boundary: bytes, max_header_bytes: int) -> None:
        self._boundary = boundary
        self._dash_boundary = b"--" + boundary
        self._delimiter = b"\n--" + boundary
        self._max_header_bytes = max_header_bytes
        # The body may open with the boundary, with no CRLF before it: pretend there was one.
        self._buffer = b"\r\n"
        self._state = _PREAMBLE
        self._header_scan = 0
        self.part_count = 0

    def feed(self, data: bytes) -> list[_Event]:
        """Split the next chunk; body bytes come out as views of ``data``, which must not change.

        Views rather than copies matter for large parts: a part kept in memory is then copied
        once, when it is joined, instead of twice.
        """
        events: list[_Event] = []
        delimiter = self._delimiter
        held = self._buffer
        if (
            self._state is _BODY
            and len(data) >= len(delimiter)
            and (held + data[: len(delimiter)]).find(delimiter) < 0
        ):
            # No delimiter starts in the held bytes (nor, then, its CR): they are body.
            if held:
                events.append(memoryview(held))
            buf = data
        else:
            buf = held + data if held else data
        pos = 0
        while True:
            state = self._state
            if state is _BODY or state is _PREAMBLE:
                found = buf.find(delimiter, pos)
                if found < 0:
                    # Keep what may begin a delimiter, and the CR that may precede it.
                    keep = max(pos, len(buf) - len(delimiter))
                    if state is _BODY and keep > pos:
                        events.append(memoryview(buf)[pos:keep])
                    pos = keep
                    break
                if state is _BODY:
                    end = found - 1 if found > pos and buf[found - 1] == _CR else found
                    if end > pos:
                        events.append(memoryview(buf)[pos:end])
                    events.append(_END_OF_PART)
                pos = found + len(delimiter)
                self._state = _AFTER_BOUNDARY
            elif state is _AFTER_BOUNDARY:
                pos, complete = self._boundary_line(buf, pos)
                if not complete:
                    break
            elif state is _HEADERS:
                headers, pos = self._header_block(buf, pos)
                if headers is None:
                    break
                events.append(headers)
                self._state = _BODY_START
            elif state is _BODY_START:
                # A part without a body may end its headers with the CRLF that begins the
                # delimiter, so the header block ate the delimiter's CRLF: "--boundary" here
                # at the start of a line is a delimiter all the same.
                dash = self._dash_boundary
                if buf.startswith(dash, pos):
                    events.append(_END_OF_PART)
                    pos += len(dash)
                    self._state = _AFTER_BOUNDARY
                elif len(buf) - pos < len(dash) and dash.startswith(buf[pos:]):
                    break
                else:
                    self._state = _BODY
            else:
                pos = len(buf)  # the epilogue is ignored (RFC 2046 §5.1.1)
                break
        self._buffer = buf[pos:]
        return events

    def _boundary_line(self, buf: bytes, pos: int) -> tuple[int, bool]:
        """Consume what follows a boundary: ``--`` closes, else padding and a line end."""
        if pos == len(buf):
            return pos, False
        if buf[pos] == _HYPHEN:
            if pos + 1 == len(buf):
                return pos, False
            if buf[pos + 1] == _HYPHEN:
                self._state = _EPILOGUE
                return pos + 2, True
        end = _PADDING.match(buf, pos).end()  # type: ignore[union-attr]
        if end - pos > _MAX_TRANSPORT_PADDING:
            raise self._error(f"more than {_MAX_TRANSPORT_PADDING} bytes of padding")
        if end < len(buf) and buf[end] == _LF:
            self._start_part()
            return end, True  # the LF stays: it lets an empty header block be found
        if end < len(buf) and buf[end] == _CR:
            if end + 1 == len(buf):
                return pos, False
            if buf[end + 1] == _LF:
                self._start_part()
                return end + 1, True
        if end == len(buf):
            return pos, False
        raise self._error(f"unexpected bytes {bytes(buf[end : end + 16])!r} after a boundary")

    def _start_part(self) -> None:
        self.part_count += 1
        self._state = _HEADERS
        self._header_scan = 0

    def _header_block(self, buf: bytes, pos: int) -> tuple[PartHeaders | None, int]:
        """Find the blank line after the part's headers; ``buf[pos]`` is the preceding LF."""
        limit = pos + 1 + self._max_header_bytes + 3
        scan = pos + self._header_scan
        crlf = buf.find(b"\n\r\n", scan, limit)
        lf = buf.find(b"\n\n", scan, limit if crlf < 0 else crlf + 1)
        if crlf < 0 and lf < 0:
            if len(buf) >= limit:
                raise self._error(
                    f"part headers longer than {self._max_header_bytes} bytes, "
                    "or no blank line after them"
                )
            self._header_scan = max(0, len(buf) - pos - 2)
            return None, pos
        if lf >= 0:
            end, body = lf, lf + 2
        else:
            end, body = crlf, crlf + 3
        return self._parse_headers(buf[pos + 1 : end]), body

    def _parse_headers(self, block: bytes) -> PartHeaders:
        fields: list[tuple[bytes, bytearray]] = []
        for line in block.split(b"\n") if block else ():
            line = line.removesuffix(b"\r")
            if line[:1] in (b" ", b"\t") and fields:
                fields[-1][1].extend(b" " + line.strip(b" \t"))  # folded (RFC 5322 §2.2.3)
                continue
            name, colon, value = line.partition(b":")
            name = name.rstrip(b" \t")
            if not colon or not _HEADER_NAME.fullmatch(name):
                raise self._error(f"malformed header line {_excerpt(line)}")
            fields.append((name, bytearray(value.strip(b" \t"))))
        headers: list[tuple[str, str]] = []
        seen: set[bytes] = set()
        for name, value in fields:
            if name.lower() in seen:
                raise self._error(f"header {name.decode()} appears twice")
            seen.add(name.lower())
            if not _HEADER_VALUE.fullmatch(value):
                raise self._error(
                    f"header {name.decode()} has control characters: {_excerpt(value)}"
                )
            try:
                headers.append((name.decode("ascii"), value.decode("utf-8")))
            except UnicodeDecodeError:
                raise self._error(
                    f"header {name.decode()} is not UTF-8: {_excerpt(value)}"
                ) from None
        return PartHeaders(headers)

    def close(self) -> None:
        """Check that the body ended where a multipart body may end."""
        if self._state is _EPILOGUE:
            return
        if self._state is _PREAMBLE:
            raise InvalidInput(
                f"multipart body has no boundary --{self._boundary.decode()} (or is empty)"
            )
        raise self._error(f"body ends without the closing delimiter --{self._boundary.decode()}--")

    def _error(self, problem: str) -> InvalidInput:
        if self.part_count == 0:
            where = "before the first part"
        elif self._state is _AFTER_BOUNDARY:
            where = f"after part {self.part_count}"
        else:
            where = f"in part {self.part_count}"
        return InvalidInput(f"malformed multipart body {where}: {problem}")


class _Spool:
    """Collects one part's body in memory, moving it to a temporary file past a size limit.

    File writes are batched to about a megabyte and run in a thread, so a large upload does
    not stall the event loop with disk IO.
    """

    __slots__ = (
        "_chunks",
        "_file",
        "_headers",
        "_memory_limit",
        "_number",
        "_size",
        "_spool_dir",
        "_unwritten",
    )

    def __init__(
        self, headers: PartHeaders, number: int, memory_limit: int, spool_dir: Path | None
    ) -> None:
        _check_content_length(headers, number)
        self._headers = headers
        self._number = number
        self._memory_limit = memory_limit
        self._spool_dir = spool_dir
        self._chunks: list[memoryview] = []
        self._unwritten = 0  # bytes in _chunks, not (yet) in the file
        self._size = 0
        self._file: BinaryIO | None = None

    async def write(self, data: memoryview) -> None:
        self._chunks.append(data)
        self._unwritten += len(data)
        self._size += len(data)
        if self._file is None:
            if self._size <= self._memory_limit:
                return
            self._file = await asyncio.to_thread(
                tempfile.TemporaryFile, prefix="kaapana-part-", dir=self._spool_dir
            )
        if self._unwritten >= _SPOOL_FLUSH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        assert self._file is not None
        chunks, self._chunks, self._unwritten = self._chunks, [], 0
        await asyncio.to_thread(self._file.writelines, chunks)

    async def finish(self) -> Part:
        content_length = self._headers.get("Content-Length")
        if content_length is not None and int(content_length) != self._size:
            self.discard()
            raise InvalidInput(
                f"malformed multipart body in part {self._number}: Content-Length is "
                f"{content_length} but the body has {self._size} bytes"
            )
        if self._file is None:
            return Part(self._headers, self._size, b"".join(self._chunks), None)
        await self._flush()
        await asyncio.to_thread(self._file.flush)
        return Part(self._headers, self._size, None, self._file)

    def discard(self) -> None:
        self._chunks = []
        if self._file is not None:
            self._file.close()


def _check_content_length(headers: PartHeaders, number: int) -> None:
    value = headers.get("Content-Length")
    if value is not None and not (value.isascii() and value.isdigit()):
        raise InvalidInput(
            f"malformed multipart body in part {number}: Content-Length {value!r} "
            "is not a number of bytes"
        )


def _boundary_problem(boundary: str, limit: int = BOUNDARY_LIMIT) -> str | None:
    if len(boundary) > limit or not _BOUNDARY.fullmatch(boundary):
        return (
            f"allowed are 1 to {limit} letters, digits and '()+_,-./:=? or spaces, "
            "not ending in a space (RFC 2046)"
        )
    return None


def _excerpt(data: bytes | bytearray) -> str:
    shown = bytes(data[:64])
    return repr(shown) + ("..." if len(data) > 64 else "")


__all__ = [
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MEMORY_LIMIT",
    "FILE_CHUNK_BYTES",
    "OutgoingPart",
    "Part",
    "PartHeaders",
    "boundary_of",
    "file_size",
    "multipart_content_type",
    "multipart_length",
    "multipart_segments",
    "multipart_stream",
    "new_boundary",
    "read_parts",
]
