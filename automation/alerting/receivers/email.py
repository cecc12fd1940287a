"""Email over SMTP for `notification.email`: its parameters, the message, its delivery, what may be retried.

The Message-ID comes from the step's idempotency key, so a step run again after a crash sends a message
the receiver can recognise as the same one. The password is a `SecretStr`: never in outputs or errors.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from automation.errors import ActionError
from automation.secrets import redact

#: The port of each way of speaking to the server: TLS from the start, STARTTLS, plain.
SSL_PORT, STARTTLS_PORT, PLAIN_PORT = 465, 587, 25

#: The right-hand side of a Message-ID whose sender has no domain.
FALLBACK_DOMAIN = "automation.invalid"


def _one_line(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise PydanticCustomError("line_break", "must not hold a line break")
    return value


def _address(value: str) -> str:
    _one_line(value)
    found = getaddresses([value])
    local, _, domain = found[0][1].rpartition("@") if len(found) == 1 else ("", "", "")
    if not (local and domain) or any(char.isspace() for char in found[0][1]):
        raise PydanticCustomError("address", "must be one address: name@domain or Name <name@domain>")
    return value


Address = Annotated[str, AfterValidator(_address)]
OneLine = Annotated[str, AfterValidator(_one_line)]


def envelope_address(address: str) -> str:
    """`Name <name@domain>` -> `name@domain`."""
    return getaddresses([address])[0][1]


class EmailParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = Field(min_length=1, max_length=253)
    #: 465 with ssl, 587 with starttls, else 25.
    port: int | None = Field(default=None, ge=1, le=65535)
    ssl: bool = False
    starttls: bool = Field(default=False, validate_default=True)
    #: Log in over a plain connection (the password readable on the wire): refused unless said so.
    allow_insecure_auth: bool = False
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = Field(default=None, min_length=1, validate_default=True)
    sender: Address = Field(alias="from")
    to: list[Address] = Field(min_length=1)
    cc: list[Address] = Field(default_factory=list)
    subject: OneLine = Field(min_length=1, max_length=900)
    text: str
    html: str | None = None
    timeout: float = Field(default=30.0, gt=0, le=300)

    @field_validator("starttls")
    @classmethod
    def _one_tls(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("ssl"):
            raise PydanticCustomError("tls_twice", "cannot be combined with ssl (TLS from the start)")
        return value

    @field_validator("password")
    @classmethod
    def _login_whole(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if "username" not in info.data:  # the username was refused: that is the error to show
            return value
        if value is None and info.data["username"]:
            raise PydanticCustomError("password_missing", "is needed with a username")
        if value is not None and not info.data["username"]:
            raise PydanticCustomError("username_missing", "needs a username")
        secured = info.data.get("ssl") or info.data.get("starttls") or info.data.get("allow_insecure_auth")
        if value is not None and not secured and "starttls" in info.data:
            raise PydanticCustomError(
                "insecure_auth",
                "needs ssl or starttls: a login over a plain connection sends the password in clear"
                " (allow_insecure_auth: true to accept that)",
            )
        return value

    @property
    def chosen_port(self) -> int:
        if self.port is not None:
            return self.port
        return SSL_PORT if self.ssl else STARTTLS_PORT if self.starttls else PLAIN_PORT

    @property
    def recipients(self) -> list[str]:
        return [envelope_address(address) for address in (*self.to, *self.cc)]


def message_id(idempotency_key: str, sender: str) -> str:
    """`<digest of the key@sender's domain>`: the same step always sends the same Message-ID."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    domain = envelope_address(sender).rpartition("@")[2] or FALLBACK_DOMAIN
    return f"<{digest}@{domain}>"


def compose(params: EmailParams, *, idempotency_key: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = params.sender
    message["To"] = ", ".join(params.to)
    if params.cc:
        message["Cc"] = ", ".join(params.cc)
    message["Subject"] = params.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(idempotency_key, params.sender)
    # RFC 3834: sent by a machine; vacation responders do not answer it.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(params.text)
    if params.html is not None:
        message.add_alternative(params.html, subtype="html")
    return message


@dataclass(frozen=True)
class Delivery:
    accepted: int
    #: Recipients the server refused while accepting others.
    refused: list[str]


def deliver(params: EmailParams, message: EmailMessage) -> Delivery:
    """Send `message` to every recipient; a failure is an `ActionError` saying whether to retry."""
    port = params.chosen_port
    context = ssl.create_default_context()
    recipients = params.recipients
    try:
        client = (
            smtplib.SMTP_SSL(params.host, port, timeout=params.timeout, context=context)
            if params.ssl
            else smtplib.SMTP(params.host, port, timeout=params.timeout)
        )
        with client:
            if params.starttls:
                client.starttls(context=context)
            if params.username and params.password:
                client.login(params.username, params.password.get_secret_value())
            refused = client.send_message(
                message, from_addr=envelope_address(params.sender), to_addrs=recipients
            )
    except (smtplib.SMTPException, OSError) as exc:
        raise smtp_failure(exc, params) from None
    return Delivery(accepted=len(recipients) - len(refused), refused=sorted(refused))


def _reply(code: int, text: bytes | str) -> str:
    shown = text.decode(errors="replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(shown.split())}".strip()


def smtp_failure(exc: BaseException, params: EmailParams) -> ActionError:
    """What went wrong, named by server and stage, the password masked; retryable when a later attempt
    may succeed (a transient 4xx reply, a refused or lost connection, a timeout)."""
    where = f"SMTP {params.host}:{params.chosen_port}"
    retryable = True
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        problem = f"authentication as {params.username!r} refused ({_reply(exc.smtp_code, exc.smtp_error)})"
        retryable = 400 <= exc.smtp_code < 500
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = exc.recipients.values()
        problem = (
            "every recipient refused ("
            + "; ".join(
                f"{address}: {_reply(code, text)}" for address, (code, text) in sorted(exc.recipients.items())
            )
            + ")"
        )
        retryable = all(400 <= code < 500 for code, _ in replies)
    elif isinstance(exc, smtplib.SMTPResponseException):
        problem = f"{type(exc).__name__} ({_reply(exc.smtp_code, exc.smtp_error)})"
        retryable = 400 <= exc.smtp_code < 500
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        problem = f"connection lost ({exc})"
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        problem = f"not supported by the server: {exc}"
        retryable = False
    elif isinstance(exc, smtplib.SMTPException):
        problem = f"{type(exc).__name__}: {exc}"
        retryable = False
    elif isinstance(exc, ssl.SSLCertVerificationError):
        problem = f"certificate not trusted ({exc.verify_message})"
        retryable = False
    elif isinstance(exc, ssl.SSLError):
        problem = f"TLS failed ({exc.reason}): do ssl, starttls and the port match the server?"
        retryable = False
    elif isinstance(exc, TimeoutError):
        problem = f"timed out after {params.timeout} s"
    elif isinstance(exc, ConnectionRefusedError):
        problem = "connection refused"
    else:
        problem = f"{type(exc).__name__}: {exc}"
    secrets = [params.password.get_secret_value()] if params.password is not None else []
    return ActionError(redact(f"{where}: {problem}", secrets), retryable=retryable)
