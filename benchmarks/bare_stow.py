"""The bare STOW-RS server of the DICOMweb benchmark: what Python over HTTP alone costs.

It does the least an archive must do with a STOW-RS request and kaapana's durability: read the
whole body (uvicorn with httptools, as `kaapana serve` runs), split it at the boundary, write
each part to a file, fsync the files together (16 threads), rename them into place, fsync the
folder, and answer 200 with an empty DICOM JSON object. No parsing, checking, indexing or
authentication, so the gap to kaapana is kaapana's own work. With WORKERS > 1 uvicorn runs
that many processes on one socket: what spreading HTTP over processes could reach at best.

Usage: ``python benchmarks/bare_stow.py PORT OUT_DIR [WORKERS]``; stops on SIGINT or SIGTERM.
"""

import asyncio
import os
import re
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn

OUT_DIR_VARIABLE = "BARE_STOW_OUT_DIR"
_SYNCERS = ThreadPoolExecutor(16)
_BOUNDARY = re.compile(rb'boundary="?([^";]+)')


def _store(folder: str, parts: list[bytes]) -> None:
    names, fds = [], []
    for data in parts:
        name = os.path.join(folder, uuid.uuid4().hex)
        fd = os.open(f"{name}.tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        names.append(name)
        fds.append(fd)
    list(_SYNCERS.map(os.fsync, fds))
    for name, fd in zip(names, fds, strict=True):
        os.close(fd)
        os.rename(f"{name}.tmp", name)
    folder_fd = os.open(folder, os.O_RDONLY)
    os.fsync(folder_fd)
    os.close(folder_fd)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    found = _BOUNDARY.search(dict(scope["headers"])[b"content-type"])
    assert found is not None
    boundary = found.group(1)
    pieces = bytes(body).split(b"\r\n--" + boundary)
    first = pieces[0][len(boundary) + 2 :]  # the body opens with "--" boundary
    parts = [piece.partition(b"\r\n\r\n")[2] for piece in [first, *pieces[1:-1]]]
    folder = os.environ[OUT_DIR_VARIABLE]
    await asyncio.get_running_loop().run_in_executor(None, _store, folder, parts)
    answer = b"{}"
    headers = [(b"content-type", b"application/dicom+json"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


def main(port: int, out_dir: str, workers: int) -> None:
    os.makedirs(out_dir, exist_ok=True)
    os.environ[OUT_DIR_VARIABLE] = os.path.abspath(out_dir)
    uvicorn.run(
        "bare_stow:app",
        app_dir=os.path.dirname(os.path.abspath(__file__)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        workers=workers,
        http="httptools",
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
