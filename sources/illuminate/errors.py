"""The exceptions of the Illuminate source.

Every exception raised by the HTTP layer is an `IlluminateError`. Its `str()` is one line meant for the person running
the sync: it names what failed (the API path and the non-secret query parameters, or the setting) and what to do. It
never contains a consumer, token or client secret, an access token, an `Authorization` header or an OAuth signature:
messages are built from the path and the query parameters only, never from a `requests` exception or a URL as sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
