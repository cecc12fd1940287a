"""API token secrets and lifetimes, without I/O: a secret is made once, only its sha256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

#: Every token starts with this, so a leaked one is recognisable (secret scanners, logs).
PREFIX = "atk_"
#: 32 random bytes: a sha256 of it needs no salt or slow hash to resist guessing.
SECRET_BYTES = 32
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: The longest lifetime a token may be given (`--expires never` is not offered: tokens expire).
MAX_LIFETIME = timedelta(days=3650)


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)


def parse_duration(text: str) -> timedelta:
    """'90d', '12h', '30m', '2w', '45s' as a timedelta; ValueError naming what is accepted."""
    found = _DURATION.match(text.strip())
    if not found:
        raise ValueError(f"'{text}' is not a duration (a number and one of s, m, h, d, w: 90d, 12h)")
    lifetime = timedelta(seconds=int(found.group(1)) * _UNIT_SECONDS[found.group(2)])
    if lifetime <= timedelta(0):
        raise ValueError("a duration must be longer than zero")
    if lifetime > MAX_LIFETIME:
        raise ValueError(f"'{text}' is longer than the longest lifetime, {MAX_LIFETIME.days}d")
    return lifetime


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ValueError("must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name
