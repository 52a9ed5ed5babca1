"""Per-project secret keys for operators that pseudonymise (de-identify).

One installation secret, 32 random bytes in ``<data dir>/secrets/deidentify.key`` (mode 0600,
created on first use), and per project the HMAC-SHA256 of the project name under it. Pseudonyms
and remapped UIDs are thus stable within a project across runs and restarts, and unlinkable
across projects or installations; the secret itself never enters parameters, logs or manifests.
"""

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from kaapana.errors import InvalidInput

DEIDENTIFY_KEY_FILE = "deidentify.key"
_KEY_BYTES = 32


def installation_secret(secrets_dir: Path, name: str = DEIDENTIFY_KEY_FILE) -> bytes:
    """The secret in ``secrets_dir/name``; created atomically (no two writers race) if absent."""
    path = secrets_dir / name
    if not path.exists():
        secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = secrets_dir / f".{name}.{os.getpid()}.tmp"
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(descriptor, secrets.token_bytes(_KEY_BYTES))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        try:
            os.link(temp, path)  # fails if another process created it first: keep theirs
        except FileExistsError:
            pass
        finally:
            temp.unlink()
    secret = path.read_bytes()
    if len(secret) < _KEY_BYTES:
        raise InvalidInput(f"the secret {path} holds {len(secret)} bytes, expected {_KEY_BYTES}")
    return secret


def project_key(secrets_dir: Path, project: str) -> bytes:
    """The de-identification key of ``project``: HMAC-SHA256(installation secret, project)."""
    if not project:
        raise InvalidInput("a project key needs a project name")
    secret = installation_secret(secrets_dir)
    return hmac.new(secret, b"kaapana-deidentify:" + project.encode(), hashlib.sha256).digest()


__all__ = ["DEIDENTIFY_KEY_FILE", "installation_secret", "project_key"]
