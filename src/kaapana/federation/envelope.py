"""Sealed payloads: Fernet (AES-128-CBC with HMAC-SHA256) around the job id, a nonce, a
timestamp and the files, so that the ciphertext alone says which job it belongs to, when it was
made and that nobody without the peer's key made or changed it. The receiver rejects a token
that does not authenticate (tampered or wrong key), one for another job, one that is too old,
and (with its nonce store) one it has seen before."""

import base64
import binascii
import json
import secrets
import time
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from kaapana.errors import InvalidInput, Unauthorized


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
    document = {
        "job_id": job_id,
        "kind": kind,
        "nonce": secrets.token_hex(16),
        "timestamp": time.time(),
        "files": {name: base64.b64encode(data).decode() for name, data in files.items()},
    }
    return Fernet(key).encrypt(json.dumps(document, separators=(",", ":")).encode())


def open_sealed(
    key: bytes, token: bytes, *, job_id: str, kind: str, max_age: float | None
) -> Envelope:
    """The envelope inside ``token``, checked; every failure names what was wrong."""
    try:
        plain = Fernet(key).decrypt(token)
    except InvalidToken as exc:
        raise TamperedPayload(
            "the payload does not authenticate with this peer's key: it was modified, or "
            "sealed with another key"
        ) from exc
    try:
        document = json.loads(plain)
        envelope = Envelope(
            job_id=str(document["job_id"]),
            kind=str(document["kind"]),
            nonce=str(document["nonce"]),
            timestamp=float(document["timestamp"]),
            files={
                str(name): base64.b64decode(data, validate=True)
                for name, data in document["files"].items()
            },
        )
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
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
