"""The exceptions of the Illuminate source.

Every exception raised by the HTTP layer is an `IlluminateError`. Its `str()` is one line meant for the person running
the sync: it names what failed (the API path and the non-secret query parameters, or the setting) and what to do. It
never contains a consumer, token or client secret, an access token, an `Authorization` header or an OAuth signature:
messages are built from the path and the query parameters only, never from a `requests` exception or a URL as sent.

The functions at the end build the messages of the HTTP layer (`client.py`), so that their wording lives in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import requests
import urllib3.exceptions
from dlt.common.json import json
from dlt.sources.helpers.rest_client.redaction import SENSITIVE_PARAMS

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "IlluminateError",
    "IncompleteResultError",
    "RequestFailedError",
    "ShrinkGuardError",
]


def _one_line(message: str) -> str:
    return " ".join(message.split())


class IlluminateError(Exception):
    """Base class of the source's errors: `str(e)` is a single user-facing line without secrets."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigurationError(IlluminateError):
    """A setting is missing or invalid; the message names the setting (its environment variable) and the fix."""


class _RequestError(IlluminateError):
    """An error about one request: keeps the path, the non-secret query parameters and the last HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        params: Mapping[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.params: dict[str, Any] = dict(params or {})
        self.status = status


class AuthenticationError(_RequestError):
    """The API refused the credentials: HTTP 401/403, or HTTP 200 with an HTML login page instead of JSON."""


class RequestFailedError(_RequestError):
    """A request failed for good: retries exhausted, or a status that is not retried (400, 404, ...)."""


class IncompleteResultError(_RequestError):
    """The rows received for a window do not add up to the `num_results` the API announced, even after refetching.

    Attributes `expected` and `received` hold the announced and the received row counts.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        params: Mapping[str, Any] | None = None,
        expected: int | None = None,
        received: int | None = None,
    ) -> None:
        super().__init__(message, path=path, params=params)
        self.expected = expected
        self.received = received


class ShrinkGuardError(IlluminateError):
    """A refetch would replace a table or slice with far fewer rows than it holds; nothing was loaded."""


# The messages of the HTTP layer. Each is one line built from `describe_request` (the method, the path and the
# non-secret query parameters) and what the answer said, never from a URL as sent or a `requests` exception's text.

_SENSITIVE = {name.lower() for name in SENSITIVE_PARAMS}
_ERROR_KEYS = ("error_description", "message", "error", "errors", "detail")


def describe_request(method: str, path: str, params: Mapping[str, Any]) -> str:
    """`GET Students/ (start_date=2026-08-01, page=2)`: the request without secrets, for messages and logs."""
    shown = [
        f"{key}={value}"
        for key, value in params.items()
        if key.lower() not in _SENSITIVE and not key.lower().startswith("oauth_")
    ]
    return f"{method} {path}" + (f" ({', '.join(shown)})" if shown else "")


def exception_reason(exc: BaseException) -> BaseException:
    """The innermost cause of a `requests` exception (urllib3 wraps them in MaxRetryError/ProtocolError)."""
    reason: BaseException = exc
    for _ in range(5):
        inner = reason.args[0] if reason.args and isinstance(reason.args[0], BaseException) else None
        inner = getattr(reason, "reason", None) or inner
        if isinstance(reason, urllib3.exceptions.ProtocolError) and len(reason.args) > 1:
            inner = reason.args[1] if isinstance(reason.args[1], BaseException) else inner
        if not isinstance(inner, BaseException) or inner is reason:
            break
        reason = inner
    return reason


def describe_exception(exc: requests.RequestException, timeout: float) -> str:
    """A one-line, URL-free description of a `requests` exception."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"no connection within {timeout:g} s"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection broke while the answer was read"
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exception_reason(exc)
        if isinstance(reason, urllib3.exceptions.NameResolutionError):
            return "the host name could not be resolved"
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            return "could not connect to the server (connection refused or unreachable)"
        return f"connection error ({type(reason).__name__})"
    return f"request error ({type(exc).__name__})"


def server_message(content: bytes, secrets: Iterable[str]) -> str:
    """The error message of an answer body (JSON `error`/`message` or short text), one line, `secrets` removed."""
    text = ""
    try:
        answer = json.loadb(content) if content.strip() else None
    except ValueError:
        answer = None
        if not content.lstrip().startswith(b"<"):
            text = content.decode("utf-8", "replace")
    # {"error": {"code": ..., "message": ...}}, {"error": ..., "error_description": ...}, {"message": ...}
    for _ in range(3):
        if not isinstance(answer, Mapping):
            break
        key = next((k for k in _ERROR_KEYS if answer.get(k)), None)
        answer = answer[key] if key else str(answer)
    if answer is not None and not text:
        text = str(answer)
    text = " ".join(text.split())[:300]
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def status_message(describe: str, status: int, reason: str | None, detail: str) -> str:
    """An answer that is neither retried nor an authentication failure (400, 404, 405, ...); `detail`: the server's."""
    if status == 400:
        return f"{describe}: HTTP 400 Bad Request: {detail or 'the API rejected the parameters'} (not retried)"
    if status == 404:
        return (
            f"{describe}: HTTP 404 Not Found: the API has no such method or element (check the path and the ids in it)"
        )
    text = f"HTTP {status}{' ' + reason if reason else ''}"
    return f"{describe}: {text}: {detail}" if detail else f"{describe}: {text}"


def authentication_message(
    describe: str, status: int, *, token_request: bool, oauth2: bool, credentials: str, detail: str
) -> str:
    """HTTP 401/403 (or 400 to the OAuth2 token request): what was refused and which `credentials` to check."""
    if token_request:
        return (
            f"{describe}: the OAuth2 token request was refused (HTTP {status}{': ' + detail if detail else ''}):"
            f" check {credentials}"
        )
    if status == 403:
        return (
            f"{describe}: HTTP 403 Forbidden: the credentials are valid but may not use this API method or"
            " element; ask the district to grant it in API Management"
        )
    if oauth2:
        return f"{describe}: HTTP 401 Unauthorized even with a new OAuth2 token: check {credentials}"
    return (
        f"{describe}: HTTP 401 Unauthorized: the API refused the OAuth1 signature: check {credentials} (and that this"
        " machine's clock is right)"
    )


def login_page_message(describe: str, status: int, credentials: str, base_url_setting: str) -> str:
    """An HTML login page instead of JSON, answered too often to be a passing glitch."""
    return (
        f"{describe}: the server answered with a login page (HTTP {status}, HTML instead of JSON): check the"
        f" credentials ({credentials}) and {base_url_setting}"
    )


def tls_message(describe: str, host: str | None) -> str:
    return (
        f"{describe}: the TLS certificate of {host} could not be verified (a proxy or an incomplete certificate"
        " chain? set REQUESTS_CA_BUNDLE to the right CA file)"
    )


def not_retried_message(describe: str, problem: str) -> str:
    """A write that failed in a way that may have reached the server: sending it again could apply it twice."""
    return f"{describe}: {problem}; not retried because the server may already have acted on it"


def incomplete_write_message(describe: str, status: int) -> str:
    return f"{describe}: the answer (HTTP {status}) was not complete JSON; the write may have been applied"


def attempts_exhausted_message(describe: str, attempts: int, problem: str) -> str:
    return f"{describe} failed after {attempts} attempts; the last: {problem}"
