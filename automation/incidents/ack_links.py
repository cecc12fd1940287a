"""Signed acknowledgement links, without I/O: a page carries `/api/v1/incidents/ID/ack?token=...`, one
click acknowledges the incident as the person paged. The token is `EXPIRES.WHO.SIGNATURE` (base64url
parts): an HMAC-SHA256 of the incident, the expiry and who, under a key derived from the server's secret.
A token is judged in this order: its shape (InvalidFieldsError: 422), its signature for this incident
(403), its expiry (410).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime

from automation.errors import AutomationError, InvalidFieldsError

__all__ = ["AckLinkRefused", "ack_path", "sign", "verify"]

#: Longest name a token carries (users' and receivers' names are at most 100 characters).
MAX_WHO = 100
#: Longest token taken (ours are at most about 200 characters: 11 + 136 + 43 and two dots); the bound
#: keeps a link, percent-encoded, within a request line.
MAX_TOKEN = 300
_PURPOSE = b"automation incident acknowledgement link v1"


class AckLinkRefused(AutomationError):
    """A token that does not acknowledge: `status` is the HTTP answer, the message says why."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


def _key(secret: str) -> bytes:
    # A key of its own: a leaked link key never signs anything else of the server's.
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()


def _signature(secret: str, incident_id: int, expires: int, who: str) -> bytes:
    message = f"{incident_id}\n{expires}\n{who}".encode()
    return hmac.new(_key(secret), message, hashlib.sha256).digest()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def sign(incident_id: int, who: str, *, expires: int, secret: str) -> str:
    """A token acknowledging `incident_id` as `who` until `expires` (epoch seconds)."""
    who = who[:MAX_WHO]
    return ".".join(
        (str(expires), _encode(who.encode()), _encode(_signature(secret, incident_id, expires, who)))
    )


def verify(token: str | None, incident_id: int, *, now: float, secret: str) -> str:
    """Who the token acknowledges `incident_id` as; AckLinkRefused saying what is wrong with it."""
    if not token:
        raise InvalidFieldsError([("token", "required: the token of a page's acknowledgement link")])
    parts = token.split(".")
    try:
        if len(token) > MAX_TOKEN or len(parts) != 3 or not parts[0].isdigit():
            raise ValueError
        expires, who, signature = int(parts[0]), _decode(parts[1]).decode(), _decode(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidFieldsError([("token", "malformed: expected the whole token of a page link")]) from None
    expected = _signature(secret, incident_id, expires, who)
    if not hmac.compare_digest(signature, expected):
        raise AckLinkRefused(
            f"token: signature does not match incident {incident_id} (altered, or for another incident)",
            status=403,
        )
    if now >= expires:
        when = datetime.fromtimestamp(min(expires, 253402300799), UTC).isoformat()
        raise AckLinkRefused(
            f"token: expired at {when}; acknowledge from the API or the CLI instead", status=410
        )
    return who


def ack_path(incident_id: int, token: str) -> str:
    return f"/api/v1/incidents/{incident_id}/ack?token={token}"
