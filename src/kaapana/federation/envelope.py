"""Sealed payloads: Fernet (AES-128-CBC with HMAC-SHA256) around the job id, a nonce, a
timestamp and the files, so that the ciphertext alone says which job it belongs to, when it was
made and that nobody without the peer's key made or changed it. The receiver rejects a token
that does not authenticate (tampered or wrong key), one for another job, one that is too old,
and (with its nonce store) one it has seen before.

On the wire a sealed payload is binary: the Fernet token's bytes without their base64 (the
HTTP body carries bytes), around a plaintext of a length-prefixed JSON header and the files'
bytes one after the other. A model travels at its own size, not base64 inside base64 (1.8
times).
"""

import base64
import binascii
import json
import secrets
import struct
import time
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from kaapana.errors import InvalidInput, Unauthorized

_HEADER_LENGTH = struct.Struct(">I")


class TamperedPayload(Unauthorized):
    """The ciphertext does not authenticate with the peer's key."""

    code = "tampered_payload"


@dataclass(frozen=True, slots=True)
class Envelope:
    job_id: str
    kind: str
    nonce: str
    timestamp: float
    files: dict[str, bytes]


def seal(key: bytes, *, job_id: str, kind: str, files: dict[str, bytes]) -> bytes:
    header = json.dumps(
        {
            "job_id": job_id,
            "kind": kind,
            "nonce": secrets.token_hex(16),
            "timestamp": time.time(),
            "files": [[name, len(data)] for name, data in files.items()],
        },
        separators=(",", ":"),
    ).encode()
    plain = b"".join([_HEADER_LENGTH.pack(len(header)), header, *files.values()])
    return base64.urlsafe_b64decode(Fernet(key).encrypt(plain))


def _parse(plain: bytes) -> Envelope:
    (length,) = _HEADER_LENGTH.unpack_from(plain)
    start = _HEADER_LENGTH.size + length
    document = json.loads(plain[_HEADER_LENGTH.size : start])
    files: dict[str, bytes] = {}
    for name, size in document["files"]:
        if not isinstance(size, int) or size < 0 or start + size > len(plain):
            raise ValueError(f"file {name!r} runs past the payload's end")
        files[str(name)] = plain[start : start + size]
        start += size
    if start != len(plain):
        raise ValueError("bytes follow the last file")
    return Envelope(
        job_id=str(document["job_id"]),
        kind=str(document["kind"]),
        nonce=str(document["nonce"]),
        timestamp=float(document["timestamp"]),
        files=files,
    )


def open_sealed(
    key: bytes, token: bytes, *, job_id: str, kind: str, max_age: float | None
) -> Envelope:
    """The envelope inside ``token``, checked; every failure names what was wrong."""
    try:
        plain = Fernet(key).decrypt(base64.urlsafe_b64encode(token))
    except InvalidToken as exc:
        raise TamperedPayload(
            "the payload does not authenticate with this peer's key: it was modified, or "
            "sealed with another key"
        ) from exc
    try:
        envelope = _parse(plain)
    except (ValueError, KeyError, TypeError, struct.error, binascii.Error) as exc:
        raise InvalidInput(f"the sealed payload is not a kaapana envelope: {exc}") from exc
    if envelope.job_id != job_id:
        raise InvalidInput(
            f"the payload was sealed for job {envelope.job_id!r}, not for job {job_id!r}"
        )
    if envelope.kind != kind:
        raise InvalidInput(f"the payload is a {envelope.kind!r}, expected {kind!r}")
    age = time.time() - envelope.timestamp
    if max_age is not None and not -60 <= age <= max_age:
        raise InvalidInput(
            f"the payload was sealed {age:.0f} s ago; accepted are at most {max_age:.0f} s"
        )
    return envelope


__all__ = ["Envelope", "TamperedPayload", "open_sealed", "seal"]
