"""Per-peer secrets: one enrolment secret, exchanged out of band, gives the token and the key.

The orchestrator creates a random 256-bit enrolment secret when it registers a participant and
shows it once; its administrator hands it to the participant's administrator (in person, by
phone, in a sealed letter, never through the federation itself). Both sides derive from it, by
HKDF-SHA256 with distinct labels, the bearer token the participant presents and the Fernet key
that encrypts and authenticates everything exchanged for that peer.

At rest: the orchestrator keeps the token's SHA-256 in the database and the Fernet key in
``<data dir>/secrets/federation/<peer>.key`` (mode 0600); the enrolment secret itself is never
stored there. The participant has to present the token, so it keeps the enrolment secret in
``<data dir>/secrets/federation/<peer>.secret`` (mode 0600).
"""

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kaapana.auth.tokens import token_hash
from kaapana.errors import InvalidInput, NotFound

SECRET_PREFIX = "kpf_"
_TOKEN_LABEL = b"kaapana-federation-token-v1"
_KEY_LABEL = b"kaapana-federation-fernet-v1"
KEY_SUFFIX = ".key"
SECRET_SUFFIX = ".secret"


@dataclass(frozen=True, slots=True)
class PeerKeys:
    """What an enrolment secret gives: the bearer token and the Fernet key (urlsafe base64)."""

    token: str
    fernet_key: bytes

    @property
    def token_hash(self) -> str:
        return token_hash(self.token)


def new_enrolment_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _derive(secret: str, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(secret.encode())


def derive_keys(secret: str) -> PeerKeys:
    """The token and key of an enrolment secret; a malformed one is refused."""
    secret = secret.strip()
    if not secret.startswith(SECRET_PREFIX) or len(secret) < len(SECRET_PREFIX) + 40:
        raise InvalidInput(
            f"an enrolment secret starts with {SECRET_PREFIX!r} and has 43 more characters; "
            f"got one of {len(secret)} characters"
        )
    token = "kpft_" + base64.urlsafe_b64encode(_derive(secret, _TOKEN_LABEL)).decode().rstrip("=")
    return PeerKeys(token=token, fernet_key=base64.urlsafe_b64encode(_derive(secret, _KEY_LABEL)))


def federation_secrets_dir(data_dir: Path) -> Path:
    return data_dir / "secrets" / "federation"


def write_secret_file(folder: Path, name: str, content: bytes) -> Path:
    """Written with mode 0600 from the start (never readable by others, not even briefly)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / name
    temp = folder / f".{name}.{os.getpid()}.tmp"
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, content)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    temp.replace(path)
    return path


def read_secret_file(folder: Path, name: str) -> bytes:
    path = folder / name
    try:
        return path.read_bytes().strip()
    except FileNotFoundError as exc:
        raise NotFound(f"the federation secret {path} is missing; register the peer again") from exc


def remove_secret_files(folder: Path, peer: str) -> None:
    for suffix in (KEY_SUFFIX, SECRET_SUFFIX):
        (folder / f"{peer}{suffix}").unlink(missing_ok=True)


__all__ = [
    "KEY_SUFFIX",
    "SECRET_PREFIX",
    "SECRET_SUFFIX",
    "PeerKeys",
    "derive_keys",
    "federation_secrets_dir",
    "new_enrolment_secret",
    "read_secret_file",
    "remove_secret_files",
    "write_secret_file",
]
