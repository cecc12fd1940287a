"""Flower, the live dashboard, closed by default beyond loopback: read by `flower.cfg`.

Flower shows every task's arguments and can revoke and restart tasks; bound to anything but loopback it
must ask who is there. `check_listening` refuses to start it there without basic auth
(`FLOWER_BASIC_AUTH=user:password` or `--basic-auth`) or OAuth (`FLOWER_AUTH` with the FLOWER_OAUTH2_*
settings), unless `FLOWER_ALLOW_UNAUTHENTICATED=1` says it is meant. Flower's `/metrics` does not ask
for credentials even when the dashboard does: `protect_metrics` makes it follow the same rule (its
`/healthcheck` stays open for load balancers).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})
#: Where Flower listens unless told otherwise (Flower's own default is every interface).
DEFAULT_ADDRESS = "127.0.0.1"


class FlowerAuthError(SystemExit):
    """Flower would listen beyond loopback with nobody asked to log in."""


def is_loopback(address: str) -> bool:
    if address in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def listening_address(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """The address Flower will bind: `--address` on its command line wins over FLOWER_ADDRESS, then the
    default (an empty address means every interface)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--address="):
            return arg.partition("=")[2]
        if arg == "--address" and i + 1 < len(argv):
            return argv[i + 1]
    return environ.get("FLOWER_ADDRESS", DEFAULT_ADDRESS)


def check_listening(
    address: str, *, basic_auth: Sequence[str], oauth: str, environ: Mapping[str, str]
) -> None:
    """Raise FlowerAuthError (Flower exits with its message) when `address` is beyond loopback and
    neither basic auth nor OAuth is set, unless FLOWER_ALLOW_UNAUTHENTICATED=1."""
    if is_loopback(address) or any(basic_auth) or oauth:
        return
    if environ.get("FLOWER_ALLOW_UNAUTHENTICATED", "").lower() in ("1", "true", "yes"):
        return
    shown = address or "every interface"
    raise FlowerAuthError(
        f"flower.cfg: refusing to listen on {shown} without authentication: set "
        "FLOWER_BASIC_AUTH=user:password (or --basic-auth), "
        "or OAuth (FLOWER_AUTH and FLOWER_OAUTH2_KEY/SECRET/REDIRECT_URI); "
        "FLOWER_ALLOW_UNAUTHENTICATED=1 runs it open on purpose"
    )


def protect_metrics() -> None:
    """Make Flower's `/metrics` ask for the dashboard's credentials when the dashboard does."""
    import tornado.web
    from flower.views.monitor import Metrics

    if getattr(Metrics, "_automation_protected", False):
        return

    def prepare(self: Any) -> None:
        options = self.application.options
        if (options.basic_auth or options.auth) and not self.get_current_user():
            raise tornado.web.HTTPError(401)

    Metrics.prepare = prepare
    Metrics._automation_protected = True


def configure(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """What flower.cfg runs: the address to listen on, after refusing an open one; /metrics protected."""
    from tornado.options import options

    address = listening_address(argv, environ)
    basic_auth = list(options.basic_auth or [])
    check_listening(address, basic_auth=basic_auth, oauth=options.auth or "", environ=environ)
    protect_metrics()
    return address
