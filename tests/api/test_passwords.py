"""Password hashes: Argon2id with the configured profile, verifiable across profiles."""

import pytest
from argon2 import extract_parameters, profiles

from kaapana.auth.passwords import HashProfileValues, Passwords
from kaapana.config import Settings
from kaapana.errors import InvalidInput


def test_installations_hash_with_rfc_9106_low_memory_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KAAPANA_PASSWORD_HASH_PROFILE")
    profile = Settings().password_hash_profile
    stored = Passwords(profile).hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert extract_parameters(stored) == profiles.RFC_9106_LOW_MEMORY


def test_a_hash_of_another_profile_still_verifies_and_asks_for_a_rehash() -> None:
    strong = Passwords(HashProfileValues.RFC_9106_LOW_MEMORY)
    cheap = Passwords(HashProfileValues.CHEAPEST)
    stored = cheap.hash("correct horse battery")
    assert strong.verify(stored, "correct horse battery")
    assert not strong.verify(stored, "wrong horse battery")
    assert strong.needs_rehash(stored) and not cheap.needs_rehash(stored)


def test_no_hash_and_broken_hashes_never_verify() -> None:
    passwords = Passwords(HashProfileValues.CHEAPEST)
    assert not passwords.verify(None, "kaapana-decoy-password")
    assert not passwords.verify("$argon2id$garbage", "anything-at-all")
    with pytest.raises(InvalidInput, match="at least 8"):
        passwords.hash("short")
