"""The zero copy send extension of ``kaapana serve``'s HTTP server, through real sockets."""

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from kaapana.asgi import ZERO_COPY_SEND, ZeroCopyHttpToolsProtocol
from tests.helpers import free_port, wait_until

MB = 1024 * 1024


class _Files:
    """An ASGI application answering with stored files; the path names the response."""

    def __init__(self, folder: Path) -> None:
        self.small = folder / "small.bin"
        self.large = folder / "large.bin"
        self.small.write_bytes(os.urandom(5000))
        self.large.write_bytes(os.urandom(48 * MB))
        self.errors: list[BaseException] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        try:
            await getattr(self, scope["path"].strip("/").replace("-", "_"))(scope, send)
        except BaseException as exc:
            self.errors.append(exc)
            raise

    async def extensions(self, scope: Any, send: Any) -> None:
        body = json.dumps(sorted(scope.get("extensions", {}))).encode()
        await _start(send, len(body))
        await send({"type": "http.response.body", "body": body})

    async def mixed(self, scope: Any, send: Any) -> None:
        """Framing bytes between a file slice and a whole file, as a multipart body has."""
        await _start(send, 1 + 1000 + 1 + 5000 + 1)
        with self.small.open("rb") as small:
            await send({"type": "http.response.body", "body": b"<", "more_body": True})
            await _file(send, small, offset=10, count=1000)
            await send({"type": "http.response.body", "body": b"|", "more_body": True})
            await _file(send, small, offset=0)
        await send({"type": "http.response.body", "body": b">"})

    async def queued_first(self, scope: Any, send: Any) -> None:
        """A body larger than the socket takes at once, so the transport queues part of it."""
        await _start(send, 32 * MB + 48 * MB)
        await send({"type": "http.response.body", "body": b"q" * (32 * MB), "more_body": True})
        with self.large.open("rb") as large:
            await _file(send, large, more_body=False)

    async def large_file(self, scope: Any, send: Any) -> None:
        await _start(send, 48 * MB)
        with self.large.open("rb") as large:
            await _file(send, large, more_body=False)

    async def chunked(self, scope: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with self.small.open("rb") as small:
            await _file(send, small, offset=0, count=5000)
        await send({"type": "http.response.body", "body": b"end"})

    async def too_long(self, scope: Any, send: Any) -> None:
        await _start(send, 10)
        with self.small.open("rb") as small:
            await _file(send, small, offset=0, more_body=False)

    async def past_the_end(self, scope: Any, send: Any) -> None:
        await _start(send, 6000)
        with self.small.open("rb") as small:
            await _file(send, small, offset=0, count=6000, more_body=False)


async def _start(send: Any, length: int) -> None:
    headers = [(b"content-length", str(length).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def _file(send: Any, file: Any, *, more_body: bool = True, **where: int) -> None:
    await send({"type": ZERO_COPY_SEND, "file": file, "more_body": more_body, **where})


@pytest.fixture(params=["asyncio", "uvloop"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, _Files]]:
    app = _Files(tmp_path)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="critical",
        lifespan="off",
        loop=request.param,
        http=ZeroCopyHttpToolsProtocol,
    )
    http = uvicorn.Server(config)
    thread = threading.Thread(target=http.run, daemon=True)
    thread.start()
    wait_until(lambda: http.started, what="the HTTP server to start")
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        http.should_exit = True
        thread.join(10)


def test_plain_http_offers_the_extension(server: tuple[str, _Files]) -> None:
    url, _app = server
    assert httpx.get(f"{url}/extensions").json() == [ZERO_COPY_SEND]


def test_file_slices_and_framing_arrive_in_order(server: tuple[str, _Files]) -> None:
    url, app = server
    small = app.small.read_bytes()
    with httpx.Client() as client:
        for _ in range(3):  # one keep-alive connection: each response leaves it as it found it
            response = client.get(f"{url}/mixed")
            assert response.content == b"<" + small[10:1010] + b"|" + small + b">"


def test_a_file_waits_for_bytes_the_transport_still_holds(server: tuple[str, _Files]) -> None:
    url, app = server
    with httpx.Client() as client:
        body = client.get(f"{url}/queued-first").content
        assert body[: 32 * MB] == b"q" * (32 * MB)
        assert body[32 * MB :] == app.large.read_bytes()
        assert client.get(f"{url}/mixed").status_code == 200


def test_a_slow_reader_gets_every_byte(server: tuple[str, _Files]) -> None:
    url, app = server
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(b"GET /large-file HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        received = bytearray()
        while chunk := sock.recv(256 * 1024):
            received += chunk
            if len(received) < 4 * MB:
                threading.Event().wait(0.001)  # let the server's socket fill up, and wait
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == app.large.read_bytes()


def test_chunked_and_head_responses_read_the_file_instead(server: tuple[str, _Files]) -> None:
    url, app = server
    response = httpx.get(f"{url}/chunked")
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.content == app.small.read_bytes() + b"end"
    head = httpx.head(f"{url}/large-file")
    assert head.headers["content-length"] == str(48 * MB)
    assert head.content == b""


@pytest.mark.parametrize(
    ("path", "problem"),
    [("too-long", "longer than Content-Length"), ("past-the-end", "file ended 1000 bytes before")],
)
def test_a_file_unlike_its_announcement_closes_the_connection(
    server: tuple[str, _Files], path: str, problem: str
) -> None:
    url, app = server
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{url}/{path}")
    assert any(problem in str(exc) for exc in app.errors)
    assert httpx.get(f"{url}/mixed").status_code == 200


def test_a_client_leaving_midway_leaves_no_descriptor_open(server: tuple[str, _Files]) -> None:
    url, _app = server
    port = int(url.rsplit(":", 1)[1])
    opened = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /large-file HTTP/1.1\r\nHost: test\r\n\r\n")
            sock.recv(MB)
    with httpx.Client() as client:
        assert client.get(f"{url}/mixed").status_code == 200
    wait_until(
        lambda: len(os.listdir("/proc/self/fd")) <= opened,
        what="the server to close the abandoned connections",
    )
