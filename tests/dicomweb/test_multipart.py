"""multipart/related reading and writing: framing per RFC 2046, limits, spooling, interop."""

import asyncio
import io
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file

from kaapana.dicomweb.media_types import AcceptedType, parse_accept, parse_media_type
from kaapana.dicomweb.multipart import (
    OutgoingPart,
    Part,
    boundary_of,
    multipart_content_type,
    multipart_length,
    multipart_stream,
    new_boundary,
    read_parts,
)
from kaapana.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

BOUNDARY = "kaapana-test-boundary"
CHUNK_SIZES = [1, 7, 8192]


async def _chunked(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def parse(
    body: bytes, boundary: str = BOUNDARY, *, chunk_size: int = 8192, **options: Any
) -> list[tuple[dict[str, str], bytes]]:
    """Headers and body of every part, each part closed once read."""
    options.setdefault("max_body_bytes", 1 << 30)

    async def run() -> list[tuple[dict[str, str], bytes]]:
        parsed = []
        async for part in read_parts(_chunked(body, chunk_size), boundary=boundary, **options):
            with part:
                parsed.append((dict(part.headers), part.read()))
        return parsed

    return asyncio.run(run())


def encode(parts: list[OutgoingPart], boundary: str = BOUNDARY) -> bytes:
    return b"".join(multipart_stream(parts, boundary=boundary))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


TRICKY_BODIES = [
    b"",
    b"\r\n",
    b"\r",
    b"\n",
    b"--",
    b"--" + BOUNDARY[:-1].encode(),  # right after the blank line, the boundary less one byte
    b"\r\n--" + BOUNDARY[:-1].encode(),  # the delimiter less one byte
    b"\r\n--" + BOUNDARY[:-1].encode() + b"\r\n",
    b"x--" + BOUNDARY.encode() + b"\r\n",  # the boundary, but not at the start of a line
    b"ends with CR\r",
    b"ends with CRLF\r\n",
    b"\r\n\r\n--\r\n--\r\n",
    bytes(range(256)) * 4,
]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_round_trip_keeps_every_byte_of_tricky_bodies(chunk_size: int) -> None:
    bodies = TRICKY_BODIES
    outgoing = [
        OutgoingPart(
            "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
            body,
            content_location=f"/studies/1.2/series/3.4/instances/{number}",
        )
        for number, body in enumerate(bodies)
    ]

    parsed = parse(encode(outgoing), chunk_size=chunk_size)

    assert [body for _, body in parsed] == bodies
    assert parsed[3][0] == {
        "Content-Type": "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
        "Content-Location": "/studies/1.2/series/3.4/instances/3",
    }


def test_randomised_bodies_round_trip_at_random_chunk_sizes() -> None:
    rng = random.Random(20240611)
    boundary = "9c1f5a7e2b3d4c6f8a0e1d2c3b4a5f6e"  # fixed, so the run is the same every time
    fragments = [b"\r", b"\n", b"\r\n", b"-", b"--", b"\r\n--", b" ", b"x", b"\x00\xff"]
    fragments += [boundary[:cut].encode() for cut in (1, 8, 31)]
    for _ in range(300):
        bodies = [
            b"".join(rng.choice(fragments) for _ in range(rng.randrange(0, 40)))
            for _ in range(rng.randrange(1, 5))
        ]
        if any(boundary.encode() in body for body in bodies):
            continue  # prefixes can join into the boundary; such a body cannot be framed
        body = encode([OutgoingPart("application/dicom", b) for b in bodies], boundary)
        parsed = parse(body, boundary, chunk_size=rng.randrange(1, 64))
        assert [part_body for _, part_body in parsed] == bodies


def test_writer_frames_parts_as_rfc_2046_says() -> None:
    body = encode(
        [
            OutgoingPart("application/dicom", b"AB"),
            OutgoingPart("application/octet-stream", b"CD", content_location="/bulk/1"),
        ],
        boundary="b1",
    )

    assert body == (
        b"--b1\r\nContent-Type: application/dicom\r\n\r\nAB"
        b"\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Location: /bulk/1\r\n\r\nCD"
        b"\r\n--b1--\r\n"
    )


def test_writer_streams_in_pieces_of_about_the_chunk_size(tmp_path: Path) -> None:
    content = os.urandom(10_000)
    path = tmp_path / "instance.dcm"
    path.write_bytes(content)

    pieces = list(
        multipart_stream(
            [OutgoingPart("application/dicom", path), OutgoingPart("application/dicom", b"small")],
            boundary=BOUNDARY,
            chunk_size=4096,
        )
    )

    # Headers and bodies travel together; no piece is much larger than the chunk size.
    assert len(pieces) == 3
    assert all(4096 <= len(piece) < 2 * 4096 for piece in pieces[:-1])
    assert [body for _, body in parse(b"".join(pieces))] == [content, b"small"]
    many = list(
        multipart_stream(
            [OutgoingPart("application/dicom", b"x" * 100) for _ in range(100)],
            boundary=BOUNDARY,
            chunk_size=4096,
        )
    )
    assert len(many) <= len(b"".join(many)) // 4096 + 1  # a handful of pieces, not 200


def test_writer_refuses_header_injection_and_bad_boundaries() -> None:
    with pytest.raises(ValueError, match="content_location"):
        OutgoingPart("application/dicom", b"", content_location="/x\r\nX-Evil: 1")
    with pytest.raises(ValueError, match="boundary 'has space at end '"):
        multipart_stream([], boundary="has space at end ")


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_preamble_epilogue_and_transport_padding_are_ignored(chunk_size: int) -> None:
    body = (
        b"This is the preamble, with --abc but not at a line start.\r\n"
        b"--abc \t \r\n"
        b"Content-Type: application/dicom\r\n"
        b"\r\n"
        b"first\r\n"
        b"--abc\t\r\n"
        b"content-type: application/dicom\r\n"
        b"content-id: <2@kaapana>\r\n"
        b"\r\n"
        b"second"
        b"\r\n--abc--  \r\n"
        b"This is the epilogue. --abc\r\n--abc--\r\n"
    )

    parsed = parse(body, "abc", chunk_size=chunk_size)

    assert [part_body for _, part_body in parsed] == [b"first", b"second"]
    assert parsed[1][0] == {"content-type": "application/dicom", "content-id": "<2@kaapana>"}


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_lf_only_line_endings_are_tolerated(chunk_size: int) -> None:
    body = b"--abc\nContent-Type: a/b\n\nfirst\n--abc\n\nsecond\r\n\n--abc--"

    parsed = parse(body, "abc", chunk_size=chunk_size)

    assert parsed == [({"Content-Type": "a/b"}, b"first"), ({}, b"second\r\n")]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_parts_without_headers_or_body(chunk_size: int) -> None:
    body = (
        b"--abc\r\n\r\n\r\n"  # no headers, empty body
        b"--abc\r\nContent-Type: a/b\r\n"  # headers whose CRLF is also the delimiter's
        b"\r\n--abc\r\n\r\nlast\r\n--abc--"
    )

    assert parse(body, "abc", chunk_size=chunk_size) == [
        ({}, b""),
        ({"Content-Type": "a/b"}, b""),
        ({}, b"last"),
    ]


def test_header_lookup_ignores_case_and_unfolds_continuation_lines() -> None:
    body = (
        b'--abc\r\nCONTENT-TYPE: application/dicom;\r\n transfer-syntax="1.2"\r\n\r\nx\r\n--abc--'
    )

    async def run() -> tuple[str | None, str, bool]:
        async for part in read_parts(_chunked(body, 3), boundary="abc", max_body_bytes=1000):
            with part:
                return (
                    part.content_type,
                    part.headers["content-type"],
                    "Content-Type" in part.headers,
                )
        raise AssertionError("no part")

    content_type, looked_up, contained = asyncio.run(run())
    assert content_type == looked_up == 'application/dicom; transfer-syntax="1.2"'
    assert contained


def test_large_part_is_spooled_to_disk_and_reads_back_identical(tmp_path: Path) -> None:
    large = os.urandom(3 * 1024 * 1024 + 17)
    body = encode(
        [OutgoingPart("application/dicom", b"small"), OutgoingPart("application/dicom", large)]
    )
    baseline = open_fds()

    async def run() -> list[Part]:
        chunks = _chunked(body, 65536)
        return [
            part
            async for part in read_parts(
                chunks,
                boundary=BOUNDARY,
                max_body_bytes=1 << 30,
                spool_dir=tmp_path,
                memory_limit=1000,
            )
        ]

    small_part, large_part = asyncio.run(run())

    assert not small_part.spooled
    assert small_part.read() == b"small"
    assert large_part.spooled
    assert large_part.size == len(large)
    assert large_part.read() == large
    assert large_part.open().read() == large
    assert list(tmp_path.iterdir()) == []  # the spool file has no name to leave behind
    assert open_fds() == baseline + 1

    large_part.close()
    small_part.close()

    assert open_fds() == baseline
    with pytest.raises(ValueError, match="closed"):
        large_part.read()
    with pytest.raises(ValueError, match="closed"):
        small_part.read()


def test_spool_of_an_unfinished_part_is_closed_when_the_body_breaks_off(tmp_path: Path) -> None:
    body = encode([OutgoingPart("application/dicom", os.urandom(100_000))])[:-1000]
    baseline = open_fds()

    with pytest.raises(InvalidInput, match="closing delimiter") as raised:
        parse(body, spool_dir=tmp_path, memory_limit=1000)

    # The traceback keeps the reader's frame, and with it the spool, alive: still closed.
    assert raised.value.status == 400
    assert open_fds() == baseline


def test_body_limit_stops_reading_at_the_chunk_that_crosses_it() -> None:
    body = encode(
        [
            OutgoingPart("application/dicom", b"a" * 1000),
            OutgoingPart("application/dicom", b"b" * 100_000),
        ]
    )
    pulled = 0
    received: list[bytes] = []

    async def source() -> AsyncIterator[bytes]:
        nonlocal pulled
        for start in range(0, len(body), 1000):
            pulled += 1
            yield body[start : start + 1000]

    async def run() -> None:
        async for part in read_parts(source(), boundary=BOUNDARY, max_body_bytes=10_500):
            with part:
                received.append(part.read())

    with pytest.raises(PayloadTooLarge, match="limit of 10500 bytes") as raised:
        asyncio.run(run())

    assert raised.value.status == 413
    assert raised.value.code == "payload_too_large"
    assert pulled == 11
    assert received == [b"a" * 1000]


def test_body_of_exactly_the_limit_is_accepted() -> None:
    body = encode([OutgoingPart("application/dicom", b"x" * 500)])

    assert parse(body, max_body_bytes=len(body), chunk_size=100) == [
        ({"Content-Type": "application/dicom"}, b"x" * 500)
    ]


MALFORMED = [
    pytest.param(b"", "has no boundary --abc (or is empty)", id="empty"),
    pytest.param(b"just some text\r\n", "has no boundary --abc", id="no-boundary"),
    pytest.param(
        b"--abc\r\n\r\ndata",
        "in part 1: body ends without the closing delimiter --abc--",
        id="no-close",
    ),
    pytest.param(b"--abc", "body ends without the closing delimiter", id="ends-at-boundary"),
    pytest.param(
        b"--abcd\r\n\r\nx\r\n--abc--",
        "before the first part: unexpected bytes b'd",
        id="longer-boundary",
    ),
    pytest.param(
        b"--abc\r\n\r\nx\r\n--abc-x\r\n", "after part 1: unexpected bytes b'-x", id="bad-close"
    ),
    pytest.param(
        b"--abc\r\nthis is not a header\r\n\r\nx\r\n--abc--",
        "in part 1: malformed header line b'this is not a header'",
        id="garbage-header",
    ),
    pytest.param(
        b"--abc\r\nContent Type: a/b\r\n\r\nx\r\n--abc--",
        "malformed header line b'Content Type: a/b'",
        id="space-in-name",
    ),
    pytest.param(
        b"--abc\r\n" + b"X-Filler: yyyyyyyyyyyyyyyyyyyy\r\n" * 1000 + b"\r\nx\r\n--abc--",
        "part headers longer than 16384 bytes",
        id="endless-headers",
    ),
    pytest.param(
        b"--abc\r\nContent-Type: a/b\r\ncontent-type: c/d\r\n\r\nx\r\n--abc--",
        "header content-type appears twice",
        id="duplicate-header",
    ),
    pytest.param(
        b"--abc\r\nX: a\x00b\r\n\r\nx\r\n--abc--",
        "header X has control characters: b'a\\x00b'",
        id="control",
    ),
    pytest.param(
        b"--abc\r\nX: \xff\xfe\r\n\r\nx\r\n--abc--", "header X is not UTF-8", id="not-utf8"
    ),
    pytest.param(
        b"--abc\r\nContent-Length: 5\r\n\r\nabcd\r\n--abc--",
        "in part 1: Content-Length is 5 but the body has 4 bytes",
        id="content-length-mismatch",
    ),
    pytest.param(
        b"--abc\r\nContent-Length: -1\r\n\r\nabcd\r\n--abc--",
        "Content-Length '-1' is not a number of bytes",
        id="content-length-garbage",
    ),
    pytest.param(
        b"--abc" + b" " * 2000 + b"\r\n\r\nx\r\n--abc--",
        "more than 1024 bytes of padding",
        id="padding",
    ),
]


@pytest.mark.parametrize("chunk_size", [1, 8192])
@pytest.mark.parametrize(("body", "message"), MALFORMED)
def test_malformed_bodies_are_refused_with_the_reason(
    body: bytes, message: str, chunk_size: int
) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse(body, "abc", chunk_size=chunk_size)

    assert message in raised.value.detail
    assert raised.value.status == 400


def test_content_length_that_matches_is_accepted() -> None:
    body = b"--abc\r\nContent-Length: 4\r\n\r\nabcd\r\n--abc--"

    assert parse(body, "abc") == [({"Content-Length": "4"}, b"abcd")]


def test_reader_refuses_an_invalid_boundary() -> None:
    with pytest.raises(InvalidInput, match="boundary 'a\"b' is invalid"):
        parse(b'--a"b\r\n\r\n\r\n--a"b--', 'a"b')


def test_parse_media_type() -> None:
    media_type = parse_media_type(
        'Multipart/Related; TYPE="application/dicom" ;transfer-syntax=* ; '
        'boundary="a \\"quoted\\" one"'
    )

    assert media_type.type == "multipart/related"
    assert media_type.params == {
        "type": "application/dicom",
        "transfer-syntax": "*",
        "boundary": 'a "quoted" one',
    }
    assert str(media_type) == (
        'multipart/related; type="application/dicom"; transfer-syntax=*; '
        'boundary="a \\"quoted\\" one"'
    )
    assert parse_media_type(str(media_type)) == media_type


def test_parse_media_type_tolerates_unquoted_slash_and_empty_parameters() -> None:
    media_type = parse_media_type("multipart/related;;type=application/dicom; boundary=x;")

    assert media_type.params == {"type": "application/dicom", "boundary": "x"}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "empty value at character 0"),
        ("dicom", "expected type/subtype at character 0"),
        ("multipart/", "expected type/subtype at character 0"),
        ("a/b c", "unexpected text at character 4"),
        ('a/b; x="unterminated', "unexpected text at character 5"),
        ("a/b; x", "unexpected text at character 5"),
        ("a/b; =3", "unexpected text at character 5"),
        ("a/b; x=1 2", "unexpected text at character 9"),
        ("a/b; x=1; X=2", "parameter 'x' given twice at character 10"),
    ],
)
def test_parse_media_type_refuses_malformed_values(header: str, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_media_type(header)

    assert raised.value.detail == f"malformed Content-Type {header!r}: {message}"


def test_boundary_of() -> None:
    assert (
        boundary_of(parse_media_type('multipart/related; type="application/dicom"; boundary=abc'))
        == "abc"
    )
    with pytest.raises(InvalidInput, match="has no boundary parameter"):
        boundary_of(parse_media_type('multipart/related; type="application/dicom"'))
    orthanc = "4f25b575-0ff4-4085-978e-4152ff179905-4f25b575-0ff4-4085-978e-4152ff179905"
    assert boundary_of(parse_media_type(f"multipart/related; boundary={orthanc}")) == orthanc
    with pytest.raises(InvalidInput, match="is invalid: allowed are 1 to 200"):
        boundary_of(parse_media_type("multipart/related; boundary=" + "x" * 201))
    with pytest.raises(ValueError, match="allowed are 1 to 70"):
        multipart_content_type("application/dicom", "x" * 71)
    with pytest.raises(UnsupportedMediaType, match="got Content-Type application/dicom") as raised:
        boundary_of(parse_media_type("application/dicom"))
    assert raised.value.status == 415


def test_parse_accept_orders_by_q_then_position() -> None:
    accepted = parse_accept(
        "application/dicom+json;q=0.5, "
        'multipart/related; type="application/dicom"; transfer-syntax=*, '
        'multipart/related; type="application/octet-stream"; q=0.9,'
        "image/*;q=0 ,, */*;Q=0.1, "
        'text/plain; note="a, b"'
    )

    assert accepted == [
        AcceptedType("multipart/related", {"type": "application/dicom", "transfer-syntax": "*"}),
        AcceptedType("text/plain", {"note": "a, b"}),
        AcceptedType("multipart/related", {"type": "application/octet-stream"}, 0.9),
        AcceptedType("application/dicom+json", {}, 0.5),
        AcceptedType("*/*", {}, 0.1),
        AcceptedType("image/*", {}, 0.0),
    ]


def test_accepted_type_matches_wildcards() -> None:
    anything, images, dicom = parse_accept("*/*, image/*, application/dicom")

    assert anything.matches("application/dicom")
    assert images.matches("image/jpeg")
    assert not images.matches("application/dicom")
    assert dicom.matches("Application/DICOM")
    assert not dicom.matches("application/dicom+json")


def test_parse_accept_of_empty_header_is_empty() -> None:
    assert parse_accept("") == []
    assert parse_accept(" , ") == []


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("a/b;q=2", "q-value '2' of a/b is not a number from 0 to 1"),
        ("a/b;q=0.1234", "q-value '0.1234'"),
        ("a/b;q=high", "q-value 'high'"),
        ("*/json", "invalid media range '*/json' at character 0"),
        ("a/b c/d", "expected ',' or end at character 4"),
        ("a/b, dicom", "expected type/subtype at character 5"),
    ],
)
def test_parse_accept_refuses_malformed_values(header: str, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_accept(header)

    assert raised.value.detail.startswith(f"malformed Accept {header!r}: ")
    assert message in raised.value.detail


def test_multipart_content_type() -> None:
    rendered = multipart_content_type(
        "application/dicom", "abc123", transfer_syntax="1.2.840.10008.1.2.1"
    )

    assert rendered == (
        'multipart/related; type="application/dicom"; '
        "transfer-syntax=1.2.840.10008.1.2.1; boundary=abc123"
    )
    assert boundary_of(parse_media_type(rendered)) == "abc123"
    with pytest.raises(ValueError, match="boundary ''"):
        multipart_content_type("application/dicom", "")


def test_new_boundary_is_random_and_valid() -> None:
    first, second = new_boundary(), new_boundary()

    assert first != second
    assert len(first) == 32
    assert (
        boundary_of(parse_media_type(multipart_content_type("application/dicom", first))) == first
    )


class _StubTransport(requests.adapters.BaseAdapter):
    """Answers every request with a fixed reply and keeps what was sent: no sockets."""

    def __init__(self, reply: bytes = b"", content_type: str = "application/dicom+json") -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []
        self._reply = reply
        self._content_type = content_type

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        self.sent.append(request)
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = self._content_type
        response.raw = io.BytesIO(self._reply)
        response.request = request
        response.url = request.url or ""
        return response

    def close(self) -> None:
        pass


def _client(transport: _StubTransport) -> DICOMwebClient:
    session = requests.Session()
    session.mount("http://", transport)
    return DICOMwebClient(url="http://127.0.0.1/dicomweb", session=session)


def _uids(datasets: list[pydicom.Dataset]) -> list[str]:
    return [str(dataset.SOPInstanceUID) for dataset in datasets]


TEST_FILES = ["CT_small.dcm", "MR_small.dcm"]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_reads_the_stow_body_dicomweb_client_sends(chunk_size: int) -> None:
    datasets = [pydicom.dcmread(get_testdata_file(name)) for name in TEST_FILES]
    transport = _StubTransport()

    _client(transport).store_instances(datasets)

    (request,) = transport.sent
    assert isinstance(request.body, bytes)
    boundary = boundary_of(parse_media_type(request.headers["Content-Type"]))
    parsed = parse(request.body, boundary, chunk_size=chunk_size)
    assert [headers for headers, _ in parsed] == [{"Content-Type": "application/dicom"}] * 2
    received = [pydicom.dcmread(io.BytesIO(body)) for _, body in parsed]
    assert _uids(received) == _uids(datasets)
    assert [r.PixelData for r in received] == [d.PixelData for d in datasets]


def test_dicomweb_client_reads_the_wado_body_we_stream(tmp_path: Path) -> None:
    paths = []
    for name in TEST_FILES:
        path = tmp_path / name
        path.write_bytes(Path(str(get_testdata_file(name))).read_bytes())
        paths.append(path)
    boundary = new_boundary()
    body = b"".join(
        multipart_stream(
            [
                OutgoingPart("application/dicom; transfer-syntax=1.2.840.10008.1.2.1", path)
                for path in paths
            ],
            boundary=boundary,
            chunk_size=1000,
        )
    )
    transport = _StubTransport(body, multipart_content_type("application/dicom", boundary))

    retrieved = _client(transport).retrieve_study("1.2.3")

    assert _uids(retrieved) == _uids([pydicom.dcmread(path) for path in paths])


def test_declared_length_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "body.dcm"
    path.write_bytes(os.urandom(5000))
    for parts in (
        [],
        [OutgoingPart("application/dicom", b"abc")],
        [
            OutgoingPart("application/dicom", path, content_location="/studies/1"),
            OutgoingPart("application/octet-stream", b""),
            OutgoingPart("application/dicom", path),
        ],
    ):
        body = b"".join(multipart_stream(parts, boundary=BOUNDARY, chunk_size=1000))
        assert multipart_length(parts, boundary=BOUNDARY) == len(body)
