"""Password hashing with Argon2id (argon2-cffi's defaults follow RFC 9106's recommendations)."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kaapana.errors import InvalidInput

MIN_PASSWORD_LENGTH = 8
_HASHER = PasswordHasher()
# Verified when a user does not exist, so a failed login costs the same either way.
_DECOY = _HASHER.hash("kaapana-decoy-password")


def check_password(password: str, *, field: str = "password") -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"'{field}' must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise InvalidInput(f"'{field}' must have at most 1024 characters")
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(check_password(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _DECOY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


__all__ = [
    "MIN_PASSWORD_LENGTH",
    "check_password",
    "hash_password",
    "needs_rehash",
    "verify_password",
]
