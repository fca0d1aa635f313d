"""The HTTP layer of the Illuminate source: authentication, retries and concurrent paging.

`IlluminateClient` is a small, thread-safe client made for this API rather than dlt's `RESTClient` (dlt 1.31), for
three reasons:

* dlt's retrying session re-sends the same prepared request, so every retry carries the same OAuth1 nonce and
  timestamp, and a server that rejects a reused nonce answers 401, which dlt does not retry. dlt's
  `OAuth2ClientCredentials` renews a token only once it has expired (no margin) and not on a 401. Here every attempt
  is built, signed (OAuth1) or authorised (OAuth2) afresh, and a 401 renews the OAuth2 token once.
* dlt's paginators (`RESTClient.paginate`, `PageNumberPaginator`) fetch one page after another, and its
  `parallelized=True` runs different resources in parallel, not the pages of one. Here page 1 tells how many pages
  there are and pages 2..N are fetched concurrently through a pool owned by the client, with at most
  `max_concurrency` requests in flight across all callers. Measured, 20 pages at 300 ms latency: one after another
  6.2 s; page 1 then pages 2..N through `dlt.defer` (5 workers) 1.6 s; a pool of 8 threads 1.3 s.
* The API's answers need care: counts as strings, `num_pages` 0, bare lists, a login page with HTTP 200, and pages
  that shift while the API cache changes. A window whose rows do not add up to `num_results` is refetched, and never
  half-yielded.

Errors are translated into the exceptions of `errors.py`, whose messages name the path and the non-secret query
parameters and never include a secret, a token, a signature or a `requests` exception's text.
"""

from __future__ import annotations

import email.utils
import ipaddress
import itertools
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3.exceptions
from dlt.common.json import json
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase, HTTPBasicAuth

from .auth import (
    BearerAuth,
    IlluminateCredentials,
    OAuth1Signer,
    OAuth2TokenManager,
    oauth2_token_request_body,
)
from .budget import RequestBudget
from .concurrency import Concurrency, ConcurrencyControl, ConcurrencyRecord, Priority, Ticket, parse_concurrency
from .errors import (
    AuthenticationError,
    ConfigurationError,
    IlluminateError,
    IncompleteResultError,
    RequestFailedError,
    attempts_exhausted_message,
    authentication_message,
    describe_exception,
    describe_request,
    exception_reason,
    incomplete_write_message,
    login_page_message,
    not_retried_message,
    server_message,
    status_message,
    tls_message,
)
from .priority import PriorityPool, request_priority
from .settings import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_CONCURRENCY_CEILING
from .variables import adopt_naming, credentials_variable, current_naming, source_variable
from .wire import WirePage

__all__ = ["IlluminateClient", "Page", "PathStats", "RequestStats", "RetryPolicy", "normalize_base_url"]

logger = logging.getLogger("illuminate_sync")

BASE_URL_ENV = "SOURCES__ILLUMINATE__BASE_URL"

T = TypeVar("T")
R = TypeVar("R")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Answers retried with backoff for GET requests (POST requests: 429 and 503 only)."""
LOGIN_PAGE_ATTEMPTS = 3
"""Login pages (HTTP 2xx, HTML instead of JSON) after which a request fails as an authentication error.

Counted over all attempts of one request, not only in a row; the ones before are retried like a transient fault.
"""
WINDOW_ATTEMPTS = 3
"""How often a window is fetched before `IncompleteResultError`: once plus two refetches."""

_API_SUFFIXES = ("/rest_server.php/api", "/rest_server.php")


@dataclass
class RetryPolicy:
    """How requests are retried: capped exponential backoff with full jitter.

    A retryable failure (HTTP 429, 500, 502, 503, 504, a connection error or reset, a timeout, or a 200 answer that is
    not complete JSON) waits a random time between 0 and `min(backoff_max, backoff_base * 2 ** (attempt - 1))`
    seconds, or the `Retry-After` the server sent (capped by `backoff_max`), then tries again, up to `max_attempts`
    attempts in all.

    Args:
        max_attempts: Attempts per request, the first included.
        backoff_base: The backoff ceiling of the first retry, in seconds; doubles with each retry.
        backoff_max: The largest wait between two attempts, in seconds, also for `Retry-After`.
        timeout: Seconds to wait for the connection and, separately, for the answer.
    """

    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError(f"RetryPolicy.max_attempts must be at least 1, not {self.max_attempts}")
        if self.backoff_base < 0 or self.backoff_max < 0:
            raise ConfigurationError("RetryPolicy.backoff_base and backoff_max must not be negative")
        if self.timeout <= 0:
            raise ConfigurationError(f"RetryPolicy.timeout must be positive, not {self.timeout}")

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (1-based): full jitter below the capped exponential."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)


@dataclass
class PathStats:
    """Request counters of one API path (numeric path segments are folded into `{id}`)."""

    requests: int = 0
    retries: int = 0
    bytes: int = 0
    refetched_windows: int = 0


@dataclass
class RequestStats:
    """Thread-safe counters of a client's HTTP traffic.

    Attributes:
        requests: HTTP requests sent (each attempt counts), token requests included.
        retries: Attempts that were retried after a failure.
        bytes: Bytes of answer bodies received.
        token_requests: OAuth2 token requests.
        refetched_windows: Windows refetched because their rows did not add up.
        max_in_flight: The most requests that were in flight at the same time.
        per_path: The counters per API path.
        concurrency: What the limit on requests in flight did (`auto` moves it; a fixed number stays).
    """

    requests: int = 0
    retries: int = 0
    bytes: int = 0
    token_requests: int = 0
    refetched_windows: int = 0
    max_in_flight: int = 0
    per_path: dict[str, PathStats] = field(default_factory=dict)
    concurrency: ConcurrencyRecord | None = None
    _in_flight: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _path(self, path: str) -> PathStats:
        key = re.sub(r"(?<=/)\d+(?=/|$)|^\d+(?=/)", "{id}", path)
        if key not in self.per_path:
            self.per_path[key] = PathStats()
        return self.per_path[key]

    def started(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def finished(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def record_request(self, path: str, nbytes: int, *, token: bool = False) -> None:
        with self._lock:
            self.requests += 1
            self.bytes += nbytes
            self.token_requests += int(token)
            stats = self._path(path)
            stats.requests += 1
            stats.bytes += nbytes

    def record_retry(self, path: str) -> None:
        with self._lock:
            self.retries += 1
            self._path(path).retries += 1

    def record_refetch(self, path: str) -> None:
        with self._lock:
            self.refetched_windows += 1
            self._path(path).refetched_windows += 1

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of the counters as plain data (for logs and the run summary)."""
        with self._lock:
            return {
                "requests": self.requests,
                "retries": self.retries,
                "bytes": self.bytes,
                "token_requests": self.token_requests,
                "refetched_windows": self.refetched_windows,
                "max_in_flight": self.max_in_flight,
                "per_path": {path: vars(stats).copy() for path, stats in sorted(self.per_path.items())},
                "concurrency": self.concurrency.snapshot() if self.concurrency else None,
            }


@dataclass
class Page:
    """One page of a paged answer.

    Attributes:
        path: The API path, relative to the client's `api_root`.
        params: The query parameters of the page, `page` and `limit` included.
        page: The page number (1-based).
        num_pages: The number of pages of the window (0 for an empty result, which still comes as one empty page).
        num_results: The number of rows of the whole window; the rows received when the API did not say.
        rows: The rows of this page.
    """

    path: str
    params: dict[str, Any]
    page: int
    num_pages: int
    num_results: int
    rows: Any


@dataclass
class _RawPage:
    """A page as answered, before the window is verified."""

    requested: int
    params: dict[str, Any]
    reported_page: int | None
    num_pages: int
    num_results: int | None
    rows: Any
    """The answer's records, or what `iter_pages`' `convert` made of them."""
    row_count: int | None = None
    """The number of records answered, when `rows` was converted."""

    @property
    def received(self) -> int:
        return self.row_count if self.row_count is not None else len(self.rows)


# One request of `IlluminateClient._call` goes through these: the `_Request` as asked, an `_Attempt` of it built
# afresh each time, what sending it gave (an `_Answer` or a `requests` exception) and the `_Outcome` of that.


@dataclass(frozen=True)
class _Request:
    """A request as the caller asked for it: what every attempt repeats."""

    method: Literal["GET", "POST"]
    path: str
    url: str
    query: dict[str, Any]
    describe: str
    idempotent: bool
    """Retried after any retryable failure; otherwise (a write) only when the server surely did not act on it."""
    token_request: bool
    """The OAuth2 token request itself, authorised by HTTP Basic rather than by a token."""
    data: Any
    json_body: Any
    basic: HTTPBasicAuth | None
    decode: Callable[[bytes], Any] | None
    priority: Priority
    """Its place in the queue for a request slot (`priority.request_priority`)."""

    def failed(self, message: str, status: int | None = None) -> RequestFailedError:
        return RequestFailedError(message, path=self.path, params=self.query, status=status)


@dataclass
class _Progress:
    """What the attempts of one request met so far; only the loop of `_call` changes it."""

    attempts: int = 0
    """Attempts counted against `RetryPolicy.max_attempts` (the retry with a renewed OAuth2 token is not counted)."""
    login_pages: int = 0
    renewed: bool = False
    """The OAuth2 token was renewed after a 401 or a login page: once per request."""
    next_token: str | None = None
    """The OAuth2 token renewed after a 401 or a login page, for the next attempt."""


@dataclass(frozen=True)
class _Attempt:
    number: int
    auth: AuthBase | None
    bearer: str | None
    """The OAuth2 token sent, None with OAuth1 and for the token request."""


@dataclass(frozen=True)
class _Answer:
    response: requests.Response
    content: bytes


@dataclass(frozen=True)
class _Return:
    value: Any


@dataclass(frozen=True)
class _Raise:
    error: IlluminateError


@dataclass(frozen=True)
class _Retry:
    """Try again after `wait` seconds."""

    problem: str
    wait: float
    login_page: bool = False


@dataclass(frozen=True)
class _RenewToken:
    """The OAuth2 token `rejected` was refused: renew it and try again at once."""

    rejected: str


_Outcome = _Return | _Raise | _Retry | _RenewToken


def normalize_base_url(base_url: str) -> str:
    """Returns the instance root (`https://x.illuminateed.com/live`) of `base_url`.

    Accepts the root with or without a trailing slash, and with `/rest_server.php` or `/rest_server.php/Api/` pasted
    after it. Requires https, except for loopback hosts (127.0.0.0/8, ::1, localhost) used in tests.

    Raises:
        ConfigurationError: The URL is malformed, not https, or carries credentials, a query or a fragment.
    """
    variable = source_variable("base_url")  # the single instance's, or a named instance's being resolved
    text = (base_url or "").strip()
    if not text:
        raise ConfigurationError(
            f"{variable} is not set: set it to the instance root, e.g. https://yourdistrict.illuminateed.com/live"
        )
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ConfigurationError(
            f"{variable} is not a valid URL: expected the instance root, e.g."
            " https://yourdistrict.illuminateed.com/live"
        ) from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ConfigurationError(
            f"{variable} is not a valid URL (got {text!r}): expected the instance root, e.g."
            " https://yourdistrict.illuminateed.com/live"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            f"{variable} must not contain a user name or password: put the credentials in"
            f" {credentials_variable('')}* instead"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"{variable} must be the instance root without a query or fragment, e.g."
            " https://yourdistrict.illuminateed.com/live"
        )
    if parts.scheme.lower() != "https" and not _is_loopback(host):
        raise ConfigurationError(
            f"{variable} must use https (got {parts.scheme}://{host}): plain http is only allowed for a loopback"
            " host such as 127.0.0.1 or localhost"
        )
    path = parts.path.rstrip("/")
    for suffix in _API_SUFFIXES:
        if path.lower().endswith(suffix):
            path = path[: -len(suffix)]
            break
    return urlunsplit((parts.scheme.lower(), parts.netloc, path.rstrip("/"), "", ""))


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delay seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def _as_count(value: Any, name: str, describe: str) -> int | None:
    """Reads a count that may arrive as a number or a string; None when missing."""
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise RequestFailedError(f"{describe}: the answer has an unreadable {name} ({str(value)[:40]!r})") from None


def _failed_before_sending(exc: requests.RequestException) -> bool:
    """True when the request surely never reached the server (no connection was made), so a POST may be retried."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    return isinstance(
        exception_reason(exc), (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)
    )


class IlluminateClient:
    """A thread-safe client of one Illuminate instance: authentication, retries and concurrent paging.

    One client serves a whole run. It owns a `requests` session (connection pool sized to `max_concurrency`), a
    limiter that keeps at most `max_concurrency` requests in flight across all threads and callers
    (`concurrency.ConcurrencyControl`: with "auto" the limit moves between 1 and `max_concurrency_ceiling` with the
    answers), a page pool that fetches pages 2..N of `iter_pages` and a separate fan-out pool for `map_concurrently`,
    so that a fanned-out function may page without deadlocking the pools. With "auto" the pools and connections are
    sized for the ceiling.

    Args:
        base_url: The instance root, e.g. `https://x.illuminateed.com/live`; `/rest_server.php` or
            `/rest_server.php/Api/` pasted after it are accepted. https is required except for loopback hosts.
        credentials: OAuth1 or OAuth2 credentials (OAuth2 when `client_id` is set).
        max_concurrency: The most requests in flight at the same time, across all callers, or "auto".
        retry: The retry policy; `RetryPolicy()` by default.
        session: A `requests` session to use (its adapters and proxies are kept; TLS verification is enforced).
        budget: A limit on requests in flight shared with other instances' clients (`--all-instances`); each
            request holds a slot of it besides one of this client's `max_concurrency`.
        max_concurrency_ceiling: With `max_concurrency="auto"`, the most requests in flight it may reach.

    Attributes:
        max_concurrency: The most requests ever in flight: the number given, or the ceiling with "auto".
        concurrency: The `max_concurrency` setting as given (a number or "auto").

    Raises:
        ConfigurationError: Invalid base URL, credentials, `max_concurrency` or `max_concurrency_ceiling`.
    """

    def __init__(
        self,
        base_url: str,
        credentials: IlluminateCredentials,
        max_concurrency: Concurrency = DEFAULT_MAX_CONCURRENCY,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        budget: RequestBudget | None = None,
        max_concurrency_ceiling: int = DEFAULT_MAX_CONCURRENCY_CEILING,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.api_root = f"{self.base_url}/rest_server.php/Api/"
        self.token_url = f"{self.base_url}/?OAuth2_AccessToken"
        setting = _checked_concurrency(max_concurrency, max_concurrency_ceiling)
        credentials.validate()
        self.credentials = credentials
        self.concurrency = setting
        self.retry = retry or RetryPolicy()
        self._concurrency = ConcurrencyControl(setting, max_concurrency_ceiling, self.retry.backoff_max)
        self.max_concurrency = self._concurrency.ceiling
        self.stats = RequestStats(concurrency=self._concurrency.record)

        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, self.max_concurrency + 2), max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self._session = session
        # never send a request without TLS verification, even with a session that turned it off
        self._verify: bool | str = session.verify if isinstance(session.verify, str) else True

        self._oauth1: OAuth1Signer | None = None
        self._oauth2: OAuth2TokenManager | None = None
        if credentials.uses_oauth2:
            self._oauth2 = OAuth2TokenManager(self._fetch_token)
        else:
            self._oauth1 = OAuth1Signer.from_credentials(credentials)

        self._budget = budget
        # The pools' threads name the variables of the instance this client serves (their errors reach the user).
        naming = (current_naming(),)
        # Twice as many page threads as request slots: a thread converting the page it received holds no slot, and
        # with one thread per slot those conversions left slots idle (5.2 of 8 requests in flight on average).
        self._page_pool = PriorityPool(
            2 * self.max_concurrency, "illuminate-page", initializer=adopt_naming, initargs=naming
        )
        # The same for windows: a window's thread converts its page 1 holding no slot (1.1 MB pages of attendance,
        # most windows one page): with one thread per slot, 7.4 of 8 in flight at 200 ms.
        self._fanout_pool = PriorityPool(
            2 * self.max_concurrency, "illuminate-fanout", initializer=adopt_naming, initargs=naming
        )
        self._fanout_local = threading.local()
        self._closed = threading.Event()

    # public API

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """Sends one GET request, with retries, and returns the parsed JSON answer.

        Args:
            path: The path relative to `api_root`, e.g. `Students/` or `Assessment/12/View/`.
            params: Query parameters; None values are left out.

        Raises:
            AuthenticationError: HTTP 401/403 (after one OAuth2 token refresh) or an HTML login page.
            RequestFailedError: Retries exhausted, or HTTP 400/404/405 and other answers that are not retried.
        """
        return self._call("GET", path, params or {}, idempotent=True)

    def post_json(self, path: str, payload: Any = None, form: Mapping[str, str] | None = None) -> Any:
        """Sends one POST request (write-back) and returns the parsed JSON answer (None for an empty body).

        A POST is retried only when the server surely did not act on it: HTTP 429 and 503, and connection errors
        before the request was sent. Any other failure raises at once, since the write may have happened.

        Args:
            path: The path relative to `api_root`, e.g. `Assessment/12/Scores/`.
            payload: A JSON body.
            form: A form body (signed as part of the OAuth1 signature); not together with `payload`.
        """
        if payload is not None and form is not None:
            raise ValueError("post_json takes either a JSON payload or a form, not both")
        return self._call("POST", path, {}, json_body=payload, form=form, idempotent=False)

    def iter_pages(
        self,
        path: str,
        params: Mapping[str, Any],
        limit: int,
        convert: Callable[[Any], Any] | None = None,
        before_verified: bool = False,
        decode: Callable[[bytes], Any] | None = None,
    ) -> Iterator[Page]:
        """Fetches all pages of one window (one set of query parameters) and yields them in page order.

        Page 1 is fetched in the calling thread; it tells the number of pages. Pages 2..N are then fetched
        concurrently in the client's page pool, with at most `2 * max_concurrency` of them submitted at a time so that
        concurrent callers share the pool fairly, and at most `max_concurrency` requests in flight across the client.

        The answers may be the paged object `{page, num_pages, num_results, results}` (counts as numbers or strings,
        `num_pages` 0 for no rows, `num_results` possibly missing, `results` possibly a single object), or a bare
        list (one page). An empty window yields one `Page` without rows.

        Trade-off: the pages of a window are collected and verified before the first one is yielded. The rows must
        add up to `num_results`, and every page must report the same `num_pages` and `num_results` as page 1. When
        the API cache changes during the window, pages shift and that check fails; the whole window is then fetched
        again (up to two refetches). Yielding pages as they arrive would hand out rows of an attempt that is later
        found inconsistent, so a window's pages are held in memory until verified: memory grows with the largest
        window (e.g. 200 pages of 1000 rows), not with the whole sync. Callers keep windows small (one date range,
        site or year) to bound it.

        Args:
            path: The path relative to `api_root`, e.g. `Students/`.
            params: The window's query parameters; `page` and `limit` are set here.
            limit: Rows per page (the endpoint's `max_limit`).
            convert: Applied to each page's records (decoded JSON objects, or a table of their wire types when
                `decode` made a `WirePage`) as soon as the page arrives (in the pool's thread); the yielded pages then
                carry its result as `rows`. The sync converts to Arrow here, so that a window held for
                verification takes a tenth of the memory of the decoded JSON.
            before_verified: Yield each page as it arrives (in arrival order) instead of holding the window. The
                window is still verified at its end and fetched again when it does not add up, so the caller sees
                the records of a failed attempt and then all the records again: only for callers that drop records
                whose key they already passed. Memory then no longer grows with the window (a large district's
                gradebook comes as one window of millions of rows).
            decode: Decodes each answer's body instead of `json.loadb` (raising ValueError for an incomplete body,
                which is retried); it may return a `WirePage` (see `wire.PageDecoder`).

        Raises:
            IncompleteResultError: The rows still do not add up after refetching the window.
            AuthenticationError, RequestFailedError: As for `get_json`.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        base = {key: value for key, value in params.items() if key not in ("page", "limit") and value is not None}
        describe = describe_request("GET", path, base)
        problem = ""
        raw_pages: list[_RawPage] = []
        for attempt in range(1, WINDOW_ATTEMPTS + 1):
            if attempt > 1:
                self.stats.record_refetch(path)
                logger.warning("%s: %s; fetching the window again (attempt %d)", describe, problem, attempt)
            if before_verified:
                raw_pages = []
                for raw in self._window_pages(path, base, limit, convert, decode):
                    yield Page(path, raw.params, raw.requested, raw.num_pages, raw.num_results or 0, raw.rows)
                    raw.row_count, raw.rows = raw.received, None  # only the counts are kept for the check
                    raw_pages.append(raw)
                raw_pages.sort(key=lambda raw: raw.requested)
            else:
                raw_pages = sorted(
                    self._window_pages(path, base, limit, convert, decode), key=lambda raw: raw.requested
                )
            problem = _window_problem(raw_pages)
            if not problem:
                break
        received = sum(raw.received for raw in raw_pages)
        first = raw_pages[0]
        if problem:
            raise IncompleteResultError(
                f"{describe}: the pages do not add up after {WINDOW_ATTEMPTS} attempts ({problem}); the API's cache"
                " was probably changing during the run: run the sync again later",
                path=path,
                params=base,
                expected=first.num_results,
                received=received,
            )
        if before_verified:
            return
        num_results = first.num_results if first.num_results is not None else received
        for raw in raw_pages:
            yield Page(path, raw.params, raw.requested, first.num_pages, num_results, raw.rows)

    def map_concurrently(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Runs `fn` over `items` in the client's fan-out pool and yields the results as they complete.

        The fan-out pool is separate from the page pool, so `fn` may call `iter_pages` or `get_json`: pages then
        run in the page pool and every request still counts against `max_concurrency`. At most
        `2 * max_concurrency` items are submitted ahead of the consumer. When called from inside `fn` (nested
        fan-out), the items run one after another in the calling thread instead of deadlocking the pool. `fn` should
        return materialised results (a list, a table), not a lazy generator, or the work happens in the consumer.

        Raises:
            Exception: The first exception raised by `fn`; items not yet started are cancelled.
        """
        if getattr(self._fanout_local, "active", False):
            for item in items:
                yield fn(item)
            return

        def run(item: T) -> R:
            self._fanout_local.active = True
            try:
                return fn(item)
            finally:
                self._fanout_local.active = False

        self._check_open()
        yield from self._bounded_map(self._fanout_pool, run, items)

    def close(self) -> None:
        """Stops the pools (cancelling queued work and interrupting backoff waits) and closes the own session."""
        self._closed.set()
        self._page_pool.shutdown(wait=True, cancel_futures=True)
        self._fanout_pool.shutdown(wait=True, cancel_futures=True)
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> IlluminateClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IlluminateClient({self.base_url!r}, {self.credentials}, max_concurrency={self.concurrency!r})"

    # paging

    def _window_pages(
        self,
        path: str,
        base: dict[str, Any],
        limit: int,
        convert: Callable[[Any], Any] | None,
        decode: Callable[[bytes], Any] | None,
    ) -> Iterator[_RawPage]:
        """Page 1, then pages 2..N as they arrive (fetched concurrently in the page pool)."""
        first = self._fetch_page(path, base, 1, limit, convert, decode)
        yield first
        if first.num_pages > 1:
            yield from self._bounded_map(
                self._page_pool,
                lambda number: self._fetch_page(path, base, number, limit, convert, decode),
                range(2, first.num_pages + 1),
            )

    def _fetch_page(
        self,
        path: str,
        base: dict[str, Any],
        number: int,
        limit: int,
        convert: Callable[[Any], Any] | None = None,
        decode: Callable[[bytes], Any] | None = None,
    ) -> _RawPage:
        params = {**base, "page": number, "limit": limit}
        answer = self._call("GET", path, params, idempotent=True, decode=decode, follow_up=number > 1)
        raw = _parse_page(answer, number, params, limit, describe_request("GET", path, params))
        if convert is not None:
            raw.row_count = len(raw.rows)
            raw.rows = convert(raw.rows)
        return raw

    def _bounded_map(self, pool: Executor, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Submits `fn(item)` to `pool` with at most `2 * max_concurrency` pending, yielding results as completed."""
        remaining = iter(items)
        pending: set[Future[R]] = set()
        try:
            for item in itertools.islice(remaining, 2 * self.max_concurrency):
                pending.add(pool.submit(fn, item))
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    for item in itertools.islice(remaining, 1):
                        pending.add(pool.submit(fn, item))
                    yield result
        finally:
            for future in pending:
                future.cancel()

    # requests

    def _fetch_token(self) -> Mapping[str, Any]:
        """Requests an OAuth2 token (called by the token manager under its lock)."""
        answer = self._call("POST", "?OAuth2_AccessToken", {}, idempotent=True, token_request=True)
        return answer if isinstance(answer, Mapping) else {}

    @contextmanager
    def _slot(self, priority: Priority) -> Iterator[Ticket]:
        """Holds one of the request slots (the limit of `max_concurrency`, fixed or "auto") and one of the shared
        budget's while a request is in flight; the ticket is for reporting the outcome to the limit's control."""
        budget = self._budget.slot() if self._budget is not None else nullcontext()
        with self._concurrency.slot(priority) as ticket, budget:
            self.stats.started()
            try:
                yield replace(ticket, started=time.monotonic())  # the latency counts from here, not the budget's wait
            finally:
                self.stats.finished()

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise IlluminateError("the Illuminate client is closed")

    def _url(self, path: str) -> str:
        if "://" in path or path.startswith("//") or ".." in path.split("/") or "?" in path or "#" in path:
            raise ValueError(f"not a path below the API root: {path!r}")
        return self.api_root + path.lstrip("/")

    def _call(
        self,
        method: Literal["GET", "POST"],
        path: str,
        params: Mapping[str, Any],
        *,
        idempotent: bool,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        token_request: bool = False,
        decode: Callable[[bytes], Any] | None = None,
        follow_up: bool = False,
    ) -> Any:
        """Sends one request with retries and returns its parsed JSON answer (parsed by `decode` when given); see
        `RetryPolicy` for what is retried.

        Each attempt is built anew (`_attempt`: OAuth1 signs it with a fresh nonce, OAuth2 sets the current token),
        sent (`_send`) and its outcome classified (`_outcome`): a value to return, an error to raise, a retry after
        a wait, or, once per request, a new OAuth2 token after a 401 or a login page and a retry at once.
        `token_request` sends the OAuth2 token request itself; `follow_up` marks pages 2..N of a window, which wait
        for a slot behind requests that unlock others (`priority`).
        """
        priority = (0,) if token_request else request_priority(follow_up)
        request = self._request(method, path, params, idempotent, json_body, form, token_request, decode, priority)
        progress = _Progress()
        while True:
            self._check_open()
            progress.attempts += 1
            attempt = self._attempt(request, progress.attempts, progress.next_token)
            progress.next_token = None
            outcome = self._outcome(request, attempt, self._send(request, attempt), progress)
            if isinstance(outcome, _Return):
                return outcome.value
            if isinstance(outcome, _Raise):
                raise outcome.error
            if isinstance(outcome, _RenewToken):
                progress.attempts -= 1  # the retry with a new token is not an attempt of its own
                progress.renewed, progress.next_token = True, self._renew_token(request, outcome.rejected)
            else:
                progress.login_pages += outcome.login_page
                self._wait_to_retry(request, progress.attempts, outcome)

    def _request(
        self,
        method: Literal["GET", "POST"],
        path: str,
        params: Mapping[str, Any],
        idempotent: bool,
        json_body: Any,
        form: Mapping[str, str] | None,
        token_request: bool,
        decode: Callable[[bytes], Any] | None,
        priority: Priority,
    ) -> _Request:
        query = {key: value for key, value in params.items() if value is not None}
        data: Any = form
        basic: HTTPBasicAuth | None = None
        if token_request:
            data = oauth2_token_request_body(self.credentials)
            basic = HTTPBasicAuth(data["client_id"], data["client_secret"])
        return _Request(
            method=method,
            path=path,
            url=self.token_url if token_request else self._url(path),
            query=query,
            describe=describe_request(method, path, query),
            idempotent=idempotent,
            token_request=token_request,
            data=data,
            json_body=json_body,
            basic=basic,
            decode=decode,
            priority=priority,
        )

    def _attempt(self, request: _Request, number: int, next_token: str | None) -> _Attempt:
        """The authorisation of one attempt: OAuth1 signs each attempt when it is sent; OAuth2 sends the current
        token, or the one renewed after a 401 or a login page."""
        if self._oauth2 is None or request.token_request:
            return _Attempt(number, request.basic or self._oauth1, None)
        # before taking a slot: the token request needs one itself
        bearer = next_token or self._oauth2.token()
        return _Attempt(number, BearerAuth(bearer), bearer)

    def _send(self, request: _Request, attempt: _Attempt) -> _Answer | requests.RequestException:
        """Sends one attempt while holding a request slot and reads the whole answer; counts it in `stats`."""
        with self._slot(request.priority) as ticket:
            started = time.monotonic()  # the logged time is the request's, not its wait for a slot
            sent = self._exchange(request, attempt)
            self._concurrency.observe(ticket, *_observation(sent))
        if isinstance(sent, requests.exceptions.SSLError):
            return sent  # ends the request (see `_failure_outcome`) without counting it
        if isinstance(sent, requests.RequestException):
            self.stats.record_request(request.path, 0, token=request.token_request)
            return sent
        self.stats.record_request(request.path, len(sent.content), token=request.token_request)
        elapsed = time.monotonic() - started
        status = sent.response.status_code
        logger.debug("%s: HTTP %d, %d bytes in %.2f s", request.describe, status, len(sent.content), elapsed)
        return sent

    def _exchange(self, request: _Request, attempt: _Attempt) -> _Answer | requests.RequestException:
        """Sends one attempt and reads the whole answer (the caller holds a request slot)."""
        try:
            response = self._session.request(
                request.method,
                request.url,
                params=request.query or None,
                data=request.data,
                json=request.json_body,
                headers={"Accept": "application/json"},
                auth=attempt.auth,
                timeout=self.retry.timeout,
                verify=self._verify,
                stream=True,
            )
            return _Answer(response, _read_body(response))
        except requests.RequestException as exc:
            return exc

    def _outcome(
        self, request: _Request, attempt: _Attempt, sent: _Answer | requests.RequestException, progress: _Progress
    ) -> _Outcome:
        """What to do after one attempt: return its value, raise, retry after a wait, or renew the OAuth2 token."""
        if isinstance(sent, requests.RequestException):
            return self._failure_outcome(request, attempt.number, sent)
        status = sent.response.status_code
        login_page = 200 <= status < 300 and _is_html(sent.response, sent.content)
        if (status == 401 or login_page) and attempt.bearer and not progress.renewed:
            # a rejected OAuth2 token (revoked, or the server restarted): one new token, tried at once
            return _RenewToken(attempt.bearer)
        if login_page:
            return self._login_page_outcome(request, attempt.number, status, progress.login_pages + 1)
        if 200 <= status < 300:
            return self._decoded(request, attempt.number, status, sent.content)
        if status in (401, 403) or (request.token_request and status == 400):
            return _Raise(self._authentication_error(request, status, sent.content))
        if status in RETRYABLE_STATUSES and (request.idempotent or status in (429, 503)):
            wait_s = self._wait(sent.response, attempt.number)
            return self._retry(request, attempt.number, f"HTTP {status}", wait_s, status)
        detail = server_message(sent.content, self._secrets())
        return _Raise(request.failed(status_message(request.describe, status, sent.response.reason, detail), status))

    def _failure_outcome(self, request: _Request, number: int, exc: requests.RequestException) -> _Outcome:
        """No answer: retried, except a write that may have reached the server, and a TLS failure (not transient)."""
        if isinstance(exc, requests.exceptions.SSLError):
            return _Raise(request.failed(tls_message(request.describe, urlsplit(request.url).hostname)))
        problem = describe_exception(exc, self.retry.timeout)
        if not (request.idempotent or _failed_before_sending(exc)):
            return _Raise(request.failed(not_retried_message(request.describe, problem)))
        return self._retry(request, number, problem, self.retry.backoff(number))

    def _login_page_outcome(self, request: _Request, number: int, status: int, login_pages: int) -> _Outcome:
        """Some instances answer a passing glitch with their login page: retried like any transient fault, but the
        `LOGIN_PAGE_ATTEMPTS`th (3rd) login page of a request, or one at its last attempt, is reported as the
        authentication failure it usually is."""
        if login_pages >= LOGIN_PAGE_ATTEMPTS or number >= self.retry.max_attempts:
            names = self._credential_names()
            message = login_page_message(request.describe, status, names, source_variable("base_url"))
            return _Raise(AuthenticationError(message, path=request.path, params=request.query, status=status))
        problem = f"a login page (HTTP {status}, HTML instead of JSON)"
        return _Retry(problem, self.retry.backoff(number), login_page=True)

    def _decoded(self, request: _Request, number: int, status: int, content: bytes) -> _Outcome:
        """A 2xx answer's parsed body; an incomplete body is retried, except after a write (it may have happened)."""
        if not content.strip() and request.method == "POST" and not request.token_request:
            return _Return(None)
        try:
            return _Return((request.decode or json.loadb)(content))
        except ValueError:
            if not request.idempotent:
                return _Raise(request.failed(incomplete_write_message(request.describe, status), status))
        problem = f"an incomplete JSON answer (HTTP {status}, {len(content)} bytes)"
        return self._retry(request, number, problem, self.retry.backoff(number), status)

    def _retry(
        self, request: _Request, number: int, problem: str, wait_s: float, status: int | None = None
    ) -> _Retry | _Raise:
        """A retry after `wait_s` seconds, or the final error when attempt `number` was the last."""
        if number >= self.retry.max_attempts:
            return _Raise(request.failed(attempts_exhausted_message(request.describe, number, problem), status))
        return _Retry(problem, wait_s)

    def _wait(self, response: requests.Response, number: int) -> float:
        """The wait before retrying a 429 or 5xx: the `Retry-After` sent (capped by `backoff_max`) or the backoff."""
        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        if retry_after is not None:
            return min(retry_after, self.retry.backoff_max)
        return self.retry.backoff(number)

    def _wait_to_retry(self, request: _Request, attempts: int, retry: _Retry) -> None:
        """Counts and logs the retry, then waits; `close()` ends the wait and raises."""
        self.stats.record_retry(request.path)
        retries = self.retry.max_attempts - 1
        logger.info("%s: %s; retry %d of %d in %.2f s", request.describe, retry.problem, attempts, retries, retry.wait)
        if self._closed.wait(retry.wait):
            self._check_open()

    def _renew_token(self, request: _Request, rejected: str) -> str:
        """A new OAuth2 token in place of `rejected` (or the one another thread already renewed it with)."""
        assert self._oauth2 is not None  # only OAuth2 attempts carry a token to reject
        logger.info("%s: the OAuth2 token was refused; fetching a new token and trying again", request.describe)
        return self._oauth2.refresh(rejected)

    def _credential_names(self) -> str:
        """The settings of the credentials in use (the token request is made with OAuth2 credentials only)."""
        if self._oauth2 is not None:
            fields = ("client_id", "client_secret")
        else:
            fields = ("consumer_key", "consumer_secret", "token", "token_secret")
        return ", ".join(credentials_variable(name) for name in fields)

    def _authentication_error(self, request: _Request, status: int, content: bytes) -> AuthenticationError:
        message = authentication_message(
            request.describe,
            status,
            token_request=request.token_request,
            oauth2=self._oauth2 is not None,
            credentials=self._credential_names(),
            detail=server_message(content, self._secrets()) if request.token_request else "",
        )
        return AuthenticationError(message, path=request.path, params=request.query, status=status)

    def _secrets(self) -> list[str]:
        values = [
            self.credentials.consumer_secret,
            self.credentials.token_secret,
            self.credentials.client_secret,
        ]
        if self._oauth2 is not None:
            values.extend(self._oauth2.issued_tokens())
        return [str(value) for value in values if value]


def _checked_concurrency(max_concurrency: Any, ceiling: Any) -> Concurrency:
    """The `max_concurrency` setting, or a one-line ConfigurationError naming the wrong value and its variable."""
    setting = parse_concurrency(max_concurrency)
    if setting is None:
        raise ConfigurationError(
            f"{source_variable('max_concurrency')} must be a whole number of at least 1 or auto"
            f" (got {max_concurrency!r})"
        )
    if isinstance(ceiling, bool) or not isinstance(ceiling, int) or ceiling < 1:
        raise ConfigurationError(
            f"{source_variable('max_concurrency_ceiling')} must be a whole number of at least 1 (got {ceiling!r})"
        )
    return setting


def _observation(sent: _Answer | requests.RequestException) -> tuple[int | None, bool, float | None]:
    """What an attempt tells the concurrency control: its HTTP status (None without an answer), whether it timed
    out, and the `Retry-After` seconds it carried."""
    if isinstance(sent, requests.RequestException):
        timed_out = isinstance(sent, requests.exceptions.Timeout) or isinstance(
            exception_reason(sent), urllib3.exceptions.TimeoutError
        )
        return None, timed_out, None
    return sent.response.status_code, False, _retry_after_seconds(sent.response.headers.get("Retry-After"))


def _read_body(response: requests.Response) -> bytes:
    """The whole body in one read, with the errors `Response.content` raises.

    `Response.content` reads a body in 10 KB pieces, each through urllib3's Python code: ~0.5-0.9 ms of the GIL for
    a 500 KB page, on every page of a sync. One read of the known length costs a fraction of that.
    """
    try:
        body: bytes = response.raw.read(decode_content=True)
    except urllib3.exceptions.ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from exc
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.exceptions.ConnectionError(exc) from exc
    except urllib3.exceptions.SSLError as exc:
        raise requests.exceptions.SSLError(exc) from exc
    finally:
        response.raw.release_conn()  # back to the pool (urllib3 has already closed a connection whose read failed)
    response._content = body  # later reads of `content`/`text` see the body, as after a non-streamed request
    response._content_consumed = True
    return body


def _is_html(response: requests.Response, content: bytes) -> bool:
    return "html" in response.headers.get("Content-Type", "").lower() or content.lstrip()[:1] == b"<"


def _parse_page(answer: Any, number: int, params: dict[str, Any], limit: int, describe: str) -> _RawPage:
    """Reads one answer of a paged endpoint into a `_RawPage`, tolerating the API's variations."""
    if isinstance(answer, WirePage):
        return _counted_page(answer.envelope, answer.records, number, params, limit, describe)
    if isinstance(answer, list):
        return _RawPage(number, params, None, 1 if answer else 0, len(answer), answer)
    if not isinstance(answer, Mapping) or not ({"results", "num_pages", "num_results"} & answer.keys()):
        shape = type(answer).__name__
        raise RequestFailedError(f"{describe}: expected a page of results, got a JSON {shape} without `results`")
    rows = answer.get("results")
    if rows is None:
        rows = []
    elif isinstance(rows, Mapping):
        rows = [rows]
    elif not isinstance(rows, list):
        raise RequestFailedError(f"{describe}: `results` is a {type(rows).__name__}, not a list")
    return _counted_page(answer, rows, number, params, limit, describe)


def _counted_page(
    answer: Mapping[str, Any], rows: Any, number: int, params: dict[str, Any], limit: int, describe: str
) -> _RawPage:
    """The page with the counts its envelope reports (`rows`: a list of records, or a table of them)."""
    num_results = _as_count(answer.get("num_results"), "num_results", describe)
    num_pages = _as_count(answer.get("num_pages"), "num_pages", describe)
    if num_pages is None:
        num_pages = math.ceil(num_results / limit) if num_results is not None else 1
    if num_pages == 0 and len(rows):
        num_pages = 1
    reported = _as_count(answer.get("page"), "page", describe)
    return _RawPage(number, params, reported, num_pages, num_results, rows)


def _window_problem(pages: list[_RawPage]) -> str:
    """Why the pages of a window do not add up, or "" when they do."""
    first = pages[0]
    for raw in pages:
        if raw.reported_page is not None and raw.reported_page != raw.requested and first.num_pages > 0:
            return f"page {raw.requested} was answered as page {raw.reported_page}"
        if raw.num_pages != first.num_pages:
            return f"page {raw.requested} reports {raw.num_pages} pages, page 1 reported {first.num_pages}"
        if raw.num_results is not None and first.num_results is not None and raw.num_results != first.num_results:
            return f"page {raw.requested} reports {raw.num_results} rows, page 1 reported {first.num_results}"
    received = sum(raw.received for raw in pages)
    if first.num_results is not None and received != first.num_results:
        return f"received {received} rows in {len(pages)} pages, the API announced {first.num_results}"
    return ""
