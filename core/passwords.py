"""The password policy (MLPS level 3 / GB/T 22239-2019 §8.1.4.1 a: passwords with complexity requirements).

A password is accepted when it:

* has at least :data:`MIN_LENGTH` and at most :data:`MAX_LENGTH` characters (the upper bound keeps one Argon2
  check cheap to refuse);
* mixes at least :data:`MIN_CHARACTER_CLASSES` of lower-case letters, upper-case letters, digits and other
  characters;
* is not the user name, and is not on the common-password list shipped in ``core/data/common-passwords.txt.gz``
  (20,000 passwords, Django's list; provenance in ``docs/data-provenance.md``), compared case-insensitively —
  no network look-up, so it works on an isolated government network.

:func:`password_problems` collects every problem; :func:`require_acceptable_password` raises them at once.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources
from typing import Final

from core.errors import InvalidInput

MIN_LENGTH: Final = 12
MAX_LENGTH: Final = 256
MIN_CHARACTER_CLASSES: Final = 3

TOO_SHORT = "the password must have at least {min_length} characters"
TOO_LONG = "the password must have at most {max_length} characters"
TOO_SIMPLE = (
    "the password must mix at least {classes} of lower-case letters, upper-case letters, digits and other characters"
)
IS_USER_NAME = "the password must not be the user name"
IS_COMMON = "the password is on the list of common (breached) passwords"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """Return the shipped common-password list, case-folded."""
    data = resources.files("core").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(line.strip().casefold() for line in gzip.decompress(data).decode("utf-8").splitlines() if line)


def _character_classes(password: str) -> int:
    kinds = (str.islower, str.isupper, str.isdigit)
    found = {index for character in password for index, kind in enumerate(kinds) if kind(character)}
    has_other = any(not (c.islower() or c.isupper() or c.isdigit()) for c in password)
    return len(found) + int(has_other)


def password_problems(password: str, *, username: str) -> list[str]:
    """Return every way ``password`` breaks the policy (empty = acceptable).

    >>> password_problems("Correct-Horse-9", username="nx-bureau")
    []
    >>> password_problems("password", username="nx-bureau")  # doctest: +NORMALIZE_WHITESPACE
    ['the password must have at least 12 characters',
     'the password must mix at least 3 of lower-case letters, upper-case letters, digits and other characters',
     'the password is on the list of common (breached) passwords']
    """
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(TOO_SHORT.format(min_length=MIN_LENGTH))
    if len(password) > MAX_LENGTH:
        problems.append(TOO_LONG.format(max_length=MAX_LENGTH))
    if _character_classes(password) < MIN_CHARACTER_CLASSES:
        problems.append(TOO_SIMPLE.format(classes=MIN_CHARACTER_CLASSES))
    if password.casefold() == username.strip().casefold():
        problems.append(IS_USER_NAME)
    if password.casefold() in common_passwords():
        problems.append(IS_COMMON)
    return problems


def require_acceptable_password(password: str, *, username: str) -> None:
    """Refuse a password that breaks the policy, naming every problem.

    Raises:
        InvalidInput: With one ``{"pointer": "/password", "reason": …}`` problem per broken rule.
    """
    problems = password_problems(password, username=username)
    if problems:
        raise InvalidInput(
            "the password does not meet the password policy",
            [{"pointer": "/password", "reason": reason} for reason in problems],
        )
