"""Password hashing with Argon2id, with the parameters of a named argon2-cffi profile.

The default profile follows RFC 9106's low-memory recommendation. ``CHEAPEST`` exists for test
suites, which create hundreds of users: argon2-cffi provides it for exactly that purpose.
"""

from enum import StrEnum

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from kaapana.errors import InvalidInput

MIN_PASSWORD_LENGTH = 8


class HashProfileValues(StrEnum):
    RFC_9106_LOW_MEMORY = "RFC_9106_LOW_MEMORY"
    RFC_9106_HIGH_MEMORY = "RFC_9106_HIGH_MEMORY"
    CHEAPEST = "CHEAPEST"


def check_password(password: str, *, field: str = "password") -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"'{field}' must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise InvalidInput(f"'{field}' must have at most 1024 characters")
    return password


class Passwords:
    def __init__(self, profile: HashProfileValues = HashProfileValues.RFC_9106_LOW_MEMORY) -> None:
        self._hasher = PasswordHasher.from_parameters(getattr(profiles, profile.value))
        # Verified when a user does not exist, so a failed login costs the same either way.
        self._decoy = self._hasher.hash("kaapana-decoy-password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(check_password(password))

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Any stored Argon2 hash verifies, whatever profile made it."""
        try:
            stored = password_hash or self._decoy
            return self._hasher.verify(stored, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


__all__ = ["MIN_PASSWORD_LENGTH", "HashProfileValues", "Passwords", "check_password"]
