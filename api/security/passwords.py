"""Staff passwords: the complexity rule, argon2id hashing and the 90-day change.

Hashes use argon2-cffi's ``PasswordHasher`` with its default RFC 9106 low-memory
parameters (argon2id, 64 MiB, 3 passes in argon2-cffi 25.1). A hash made with
older parameters is re-hashed at the next successful login.
"""

import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from geo.errors import DoorstepError

MIN_LENGTH = 10
MAX_LENGTH = 128
MIN_CHARACTER_CLASSES = 3
MAX_PASSWORD_AGE = timedelta(days=90)


class PasswordPolicyError(DoorstepError, ValueError):
    """A new password that breaks the complexity rule; the message never quotes it."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """Outcome of verifying a password: whether it matched and a replacement hash if due."""

    matched: bool
    new_hash: str | None = None


_hasher = PasswordHasher()

# Hash of a random password, made on first use; see verify_against_dummy.
_dummy_hash: str | None = None
_dummy_lock = threading.Lock()


def check_complexity(password: str, *, login: str) -> None:
    """Raise PasswordPolicyError unless the password meets the complexity rule.

    The rule: 10 to 128 characters, at least three of lower case, upper case,
    digits and other characters, and not containing the login name.
    """
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise PasswordPolicyError(
            "length", f"password must have {MIN_LENGTH} to {MAX_LENGTH} characters"
        )
    classes = [
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ]
    if sum(classes) < MIN_CHARACTER_CLASSES:
        raise PasswordPolicyError(
            "character_classes",
            "password must mix at least three of: lower case, upper case, digits, symbols",
        )
    if login and login.lower() in password.lower():
        raise PasswordPolicyError("contains_login", "password must not contain the login name")


def hash_password(password: str) -> str:
    """Return the argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> PasswordCheck:
    """Compare a password with its hash; a stale-parameter hash gets a replacement."""
    try:
        _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return PasswordCheck(matched=False)
    if _hasher.check_needs_rehash(password_hash):
        return PasswordCheck(matched=True, new_hash=_hasher.hash(password))
    return PasswordCheck(matched=True)


def verify_against_dummy(password: str) -> None:
    """Run one argon2 verification for a login name that has no account.

    A login name without an account then takes as long to reject as a wrong
    password, so response times do not reveal which login names exist.
    """
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash(secrets.token_urlsafe(32))
    verify_password(_dummy_hash, password)


def password_expired(changed_at: datetime | None, now: datetime) -> bool:
    """Return whether a password is older than 90 days (or was never set)."""
    return changed_at is None or now - changed_at >= MAX_PASSWORD_AGE
