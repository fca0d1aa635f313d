"""Credentials and request authentication for the Illuminate API.

The API accepts two schemes, each a dlt spec of its own; `IlluminateCredentials` is their union, which dlt resolves
from `SOURCES__ILLUMINATE__CREDENTIALS__*` or `[sources.illuminate.credentials]` in `.dlt/secrets.toml` (the first
scheme whose fields are all set wins, OAuth2 first):

* OAuth1 (HMAC-SHA1, parameters in the `Authorization` header) with a consumer key/secret and a pre-generated user
  token/secret. `OAuth1Signer` signs a prepared request; the client applies it to *every attempt* afresh, so each retry
  carries a new nonce and timestamp (the API rejects a reused nonce with 401; dlt's retrying session re-sends the same
  prepared request and therefore cannot retry OAuth1 requests).
* OAuth2 client credentials: a bearer token from `<instance root>/?OAuth2_AccessToken`, valid one hour.
  `OAuth2TokenManager` holds one token for all threads, refreshes it shortly before it expires and once when the API
  answers 401 (dlt's `OAuth2ClientCredentials` refreshes only after expiry and never on a 401).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeAlias
from urllib.parse import parse_qsl

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.configuration.specs import CredentialsConfiguration, configspec
from dlt.common.typing import TSecretStrValue
from oauthlib.oauth1 import SIGNATURE_HMAC, SIGNATURE_TYPE_AUTH_HEADER, Client
from requests import PreparedRequest
from requests.auth import AuthBase

from .errors import AuthenticationError, ConfigurationError
from .variables import credentials_section, credentials_variable

__all__ = [
    "CREDENTIALS_ENV_PREFIX",
    "BearerAuth",
    "IlluminateCredentials",
    "OAuth1Credentials",
    "OAuth1Signer",
    "OAuth2Credentials",
    "OAuth2TokenManager",
]

CREDENTIALS_ENV_PREFIX = "SOURCES__ILLUMINATE__CREDENTIALS__"
"""The environment variable prefix of the credential fields, used in error messages."""

_FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class _DropDebugRecords(logging.Filter):
    """Drops DEBUG records of oauthlib's signer, which logs the signature base string and the signature."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


# oauthlib logs "Signature: ..." at DEBUG while signing; keep signatures out of any log output.
logging.getLogger("oauthlib.oauth1.rfc5849").addFilter(_DropDebugRecords())


def _env(field: str) -> str:
    """The variable of a credentials field: the single instance's, or a named instance's while its settings are
    resolved (`variables.naming_instance`)."""
    return credentials_variable(field)


def no_credentials_message() -> str:
    """No credentials at all: the variables to set (the single instance's or the named instance's being resolved)."""
    return (
        f"no credentials: set {_env('consumer_key')}, {_env('consumer_secret')}, {_env('token')} and"
        f" {_env('token_secret')} (OAuth1) or {_env('client_id')} and {_env('client_secret')} (OAuth2),"
        f" or the same keys under {credentials_section()} in .dlt/secrets.toml"
    )


NO_CREDENTIALS = no_credentials_message()
"""The single instance's message when it has no credentials."""


@configspec
class SchemeCredentials(CredentialsConfiguration):
    """What the credentials of both schemes share: the one-line errors for a set given in part.

    dlt resolves a scheme when every field has a value, and an empty string is a value to dlt: the example
    `secrets.toml` ships the OAuth1 keys empty, so a scheme counts a field as given only when it is not empty.
    dlt's own message for a missing field names the spec and lists lookups; a user needs the variable to set and
    why, so `on_partial`/`on_resolved` raise `ConfigurationError` instead for a set given in part.
    """

    needs: ClassVar[dict[str, str]] = {}
    """The scheme's fields in the order they are asked for, each with why it is needed (ends its error)."""
    last_in_union: ClassVar[bool] = False
    """The scheme dlt tries last: reaching it with none of its fields given means no credentials at all."""
    uses_oauth2: ClassVar[bool] = False
    """True for OAuth2: the client then fetches bearer tokens instead of signing requests."""

    def given(self) -> list[str]:
        """The scheme's fields that hold a non-empty value."""
        return [name for name in self.needs if getattr(self, name)]

    def validate(self) -> None:
        """Checks that the scheme's set is complete (for credentials given directly, which dlt never resolved).

        Raises:
            ConfigurationError: No credentials, or a set with a missing part; the message names the variable.
        """
        if not self.given():
            raise ConfigurationError(no_credentials_message())
        self._refuse_a_partial_set()

    def on_partial(self) -> None:
        """dlt found some of the scheme's fields missing. With none given, dlt raises its own exception and the union
        tries its next scheme (unless this is the last)."""
        self._check_what_dlt_found()

    def on_resolved(self) -> None:
        """dlt found a value for every field, but an empty string is a value to dlt."""
        self._check_what_dlt_found()
        if not self.given():  # every field empty: not this scheme, the union tries its next one
            raise ConfigFieldMissingException(self, {name: [] for name in self.needs})

    def _check_what_dlt_found(self) -> None:
        if self.given():
            self._refuse_a_partial_set()
        elif self.last_in_union:
            raise ConfigurationError(no_credentials_message())

    def _refuse_a_partial_set(self) -> None:
        for name, reason in self.needs.items():
            if not getattr(self, name):
                raise ConfigurationError(f"{_env(name)} is not set: {reason}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, set={self.given()})"


@configspec
class OAuth2Credentials(SchemeCredentials):
    """OAuth2 client credentials: the Access Key and Access Secret of API Management."""

    client_id: str = dlt.config.value
    client_secret: TSecretStrValue = dlt.secrets.value

    needs: ClassVar[dict[str, str]] = {
        "client_id": "a client secret needs its client id (the Access Key from API Management)",
        "client_secret": "a client id needs its client secret (the Access Secret from API Management)",
    }
    uses_oauth2: ClassVar[bool] = True
    # The other scheme's secrets, absent: the client redacts every secret a credentials object may hold.
    consumer_secret: ClassVar[None] = None
    token_secret: ClassVar[None] = None

    def __str__(self) -> str:
        return f"OAuth2 client credentials (client id {self.client_id})"


@configspec
class OAuth1Credentials(SchemeCredentials):
    """OAuth1: the consumer key/secret and the pre-generated user token/secret from API Management."""

    consumer_key: str = dlt.config.value
    consumer_secret: TSecretStrValue = dlt.secrets.value
    token: str = dlt.config.value
    token_secret: TSecretStrValue = dlt.secrets.value

    needs: ClassVar[dict[str, str]] = {
        "consumer_key": "a consumer secret needs its consumer key",
        "consumer_secret": "a consumer key needs its consumer secret",
        "token": "OAuth1 needs the user token from API Management with the consumer key",
        "token_secret": "a user token needs its token secret",
    }
    last_in_union: ClassVar[bool] = True
    client_secret: ClassVar[None] = None

    def __str__(self) -> str:
        if self.consumer_key:
            return f"OAuth1 (consumer key {self.consumer_key})"
        return "no Illuminate credentials"


IlluminateCredentials: TypeAlias = OAuth2Credentials | OAuth1Credentials
"""The credentials of the source: OAuth2 when its client id (or secret) is given, OAuth1 otherwise."""


class OAuth1Signer(AuthBase):
    """Signs a prepared request with OAuth1 HMAC-SHA1 in the `Authorization` header, as the API requires.

    Each call makes a new nonce and timestamp, so applying the signer to every attempt of a request (which the client
    does) never re-sends a used nonce. The query string is part of the signature; a form-encoded body is too, a JSON
    body is not (OAuth1 signs form parameters only). Thread-safe: no state is shared between calls.

    Args:
        consumer_key: The consumer (access) key.
        consumer_secret: The consumer secret.
        token: The pre-generated user token.
        token_secret: The user token secret.
    """

    def __init__(self, consumer_key: str, consumer_secret: str, token: str, token_secret: str) -> None:
        self._consumer_key = consumer_key
        self._consumer_secret = consumer_secret
        self._token = token
        self._token_secret = token_secret

    @classmethod
    def from_credentials(cls, credentials: OAuth1Credentials) -> OAuth1Signer:
        """Builds the signer from validated OAuth1 credentials."""
        credentials.validate()
        return cls(
            str(credentials.consumer_key),
            str(credentials.consumer_secret),
            str(credentials.token),
            str(credentials.token_secret),
        )

    def authorization_header(
        self,
        method: str,
        url: str,
        body: Any = None,
        content_type: str | None = None,
        *,
        nonce: str | None = None,
        timestamp: str | None = None,
    ) -> str:
        """Returns the `Authorization` header value for one request.

        Args:
            method: The HTTP method.
            url: The full URL including the query string.
            body: The request body; included in the signature only when it is form-encoded.
            content_type: The request's content type.
            nonce: A fixed nonce (tests only); a fresh random one by default.
            timestamp: A fixed timestamp (tests only); the current time by default.
        """
        client = Client(
            self._consumer_key,
            client_secret=self._consumer_secret,
            resource_owner_key=self._token,
            resource_owner_secret=self._token_secret,
            signature_method=SIGNATURE_HMAC,
            signature_type=SIGNATURE_TYPE_AUTH_HEADER,
            nonce=nonce,
            timestamp=timestamp,
        )
        signed_body: str | None = None
        headers: dict[str, str] = {}
        if body and content_type and content_type.startswith(_FORM_CONTENT_TYPE):
            signed_body = body.decode("utf-8") if isinstance(body, bytes) else str(body)
            headers["Content-Type"] = _FORM_CONTENT_TYPE
            # oauthlib rejects bodies that are not key=value pairs; those are simply not part of the signature
            if not parse_qsl(signed_body):
                signed_body, headers = None, {}
        _, signed_headers, _ = client.sign(url, method.upper(), signed_body, headers)
        return str(signed_headers["Authorization"])

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers["Authorization"] = self.authorization_header(
            request.method or "GET", request.url or "", request.body, request.headers.get("Content-Type")
        )
        return request

    def __repr__(self) -> str:
        return f"OAuth1Signer(consumer_key={self._consumer_key!r})"


class BearerAuth(AuthBase):
    """Sets `Authorization: Bearer <token>`; an auth object, so that `requests` never swaps in .netrc credentials."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


def oauth2_token_request_body(credentials: OAuth2Credentials) -> dict[str, str]:
    """The form body of the OAuth2 client-credentials token request (the id/secret also go in HTTP Basic)."""
    return {
        "grant_type": "client_credentials",
        "client_id": str(credentials.client_id),
        "client_secret": str(credentials.client_secret),
    }


class OAuth2TokenManager:
    """Holds one OAuth2 access token for all threads of a client and renews it when needed.

    The token is fetched on first use, shared by every thread (a lock makes sure a single request fetches it while
    the others wait) and fetched again a margin before it expires: 60 seconds or a tenth of its lifetime, whichever
    is smaller. When the API answers 401 with a token, `refresh(rejected)` fetches a new one once, however many
    threads saw the 401 at the same time: a thread whose rejected token was already replaced gets the new one.

    The HTTP request itself is done by `fetch`, so the caller decides about retries and error messages.

    Args:
        fetch: Requests a token; returns the token endpoint's JSON answer (`access_token`, optional `expires_in`).
        default_lifetime: Lifetime in seconds assumed when the answer has no `expires_in` (the API documents 1 hour).
        clock: Monotonic clock in seconds (replaceable in tests).
    """

    def __init__(
        self,
        fetch: Callable[[], Mapping[str, Any]],
        *,
        default_lifetime: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._default_lifetime = default_lifetime
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self._issued: list[str] = []
        self.fetch_count = 0
        """How many tokens were fetched so far."""

    def token(self) -> str:
        """Returns a valid token, fetching a new one first if there is none or it is about to expire."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._renew()
            assert self._token is not None
            return self._token

    def refresh(self, rejected: str) -> str:
        """Replaces the token `rejected` by the API (HTTP 401) and returns the token to retry with.

        If another thread already replaced `rejected`, the current token is returned without a new fetch.
        """
        with self._lock:
            if self._token is None or self._token == rejected:
                self._renew()
            assert self._token is not None
            return self._token

    def issued_tokens(self) -> tuple[str, ...]:
        """Every token fetched so far, for redacting them from messages.

        Lock-free on purpose: it is called while a token request (which holds the lock) builds its error message.
        """
        return tuple(self._issued)

    def _renew(self) -> None:
        started = self._clock()
        answer = self._fetch()
        self.fetch_count += 1
        access_token = answer.get("access_token") if isinstance(answer, Mapping) else None
        if not access_token or not isinstance(access_token, str):
            raise AuthenticationError(
                "the OAuth2 token endpoint answered without an access_token: check"
                f" {_env('client_id')} and {_env('client_secret')}"
            )
        try:
            expires_in = answer.get("expires_in")
            lifetime = self._default_lifetime if expires_in in (None, "") else float(expires_in)
        except (TypeError, ValueError):
            lifetime = self._default_lifetime
        lifetime = max(lifetime, 0.0)
        margin = min(60.0, lifetime / 10)
        self._token = access_token
        self._issued.append(access_token)
        self._renew_at = started + lifetime - margin
