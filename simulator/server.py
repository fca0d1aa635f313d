"""The HTTP server: routing, authentication, paging, faults and the loopback control API.

Routes (instance "live" by default):
  GET  /{instance}/rest_server.php/Api/<path>/              each GET endpoint of `routes.ROUTES` (trailing / optional)
  POST /{instance}/rest_server.php/Api/Assessment/{id}/Scores/ and .../Assessment/local_assessment_id/{id}/Scores/
  POST /{instance}/rest_server.php/Api/Repository/{id}/Data/ and .../Repository/local_repository_id/{id}/Data/
  POST /{instance}/rest_server.php/Api/CreateUserApiKeys/
  POST /{instance}/?OAuth2_AccessToken                         OAuth2 client credentials
  GET  /_control/requests, POST /_control/requests/reset, POST|DELETE /_control/faults, POST /_control/mutate,
  POST /_control/advance_today, GET|POST /_control/capacity, POST /_control/capacity/reset
                                                               control API (loopback only, no auth)

Capacity (`simulator.capacity`): with `workers` or `rate_limit` set, the Api routes pass a token-bucket rate limit on
arrival (429 + Retry-After when empty) and then wait in arrival order for one of `workers`; the token endpoint and
the control API are not limited.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import ipaddress
import json
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from illuminate_sync.simulator import calendar as cal
from illuminate_sync.simulator.capacity import Capacity
from illuminate_sync.simulator.district import SERVER_TIMEZONE, District
from illuminate_sync.simulator.endpoints import DEFAULT_LIMIT, Api, ApiError, page_body
from illuminate_sync.simulator.faults import Fault, FaultInjector
from illuminate_sync.simulator.mutations import Mutator, user_api_keys
from illuminate_sync.simulator.oauth import OAuth1Verifier, TokenStore, make_credentials, normalize_url
from illuminate_sync.simulator.routes import route_for

LOGIN_PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Illuminate Education | Sign In</title></head>
<body class="login"><div id="login"><h1>Illuminate Education</h1>
<form method="post" action="/live/login/"><label>Username <input name="username"></label>
<label>Password <input type="password" name="password"></label><button type="submit">Sign In</button></form>
<p>Your session has expired or you are not signed in.</p></div></body></html>
"""

POST_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Assessment/(\d+)/Scores$"), "Assessment/{assessment_id}/Scores"),
    (
        re.compile(r"^Assessment/local_assessment_id/([^/]+)/Scores$"),
        "Assessment/local_assessment_id/{local_assessment_id}/Scores",
    ),
    (re.compile(r"^Repository/(\d+)/Data$"), "Repository/{repository_id}/Data"),
    (
        re.compile(r"^Repository/local_repository_id/([^/]+)/Data$"),
        "Repository/local_repository_id/{local_repository_id}/Data",
    ),
    (re.compile(r"^CreateUserApiKeys$"), "CreateUserApiKeys"),
]


@dataclass
class SimulatorConfig:
    """How the simulated district and server behave."""

    students: int = 300
    seed: int = 1
    today: dt.date | None = None
    attendance_mode: str = "all"  # or "exceptions"
    token_lifetime: int = 3600
    html_auth_failures: bool = False
    instance: str = "live"
    latency: float = 0.0
    credentials: dict[str, str] | None = None  # overrides of the seeded credentials, e.g. {"consumer_secret": ...}
    workers: int | None = None  # API requests served at once (the rest queue in arrival order); None: unlimited
    rate_limit: float | None = None  # API requests per second before 429 + Retry-After; None: no limit
    rate_limit_burst: int | None = None  # the token bucket's size; None: max(1, round(rate_limit))
    timezone: str = SERVER_TIMEZONE  # the server clock's zone (IANA name): its timestamps and `modified_after`


def to_json(value: Any) -> bytes:
    """JSON as PHP's json_encode writes it (escaped slashes, ASCII only); orjson when the text is ASCII.

    Serialising pages was the largest part of the simulator's serving time: orjson is several times faster than
    the standard library (measured on 1000-row attendance pages), with the same output for ASCII text.
    """
    try:
        body = orjson.dumps(value, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits
        return _stdlib_json(value)
    if body.isascii():
        return body.replace(b"/", b"\\/")
    return _stdlib_json(value)


def _stdlib_json(value: Any) -> bytes:
    """JSON as PHP's json_encode writes it (escaped slashes, ASCII only)."""
    return json.dumps(value, separators=(",", ":"), default=str).replace("/", "\\/").encode()


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.removeprefix("::ffff:")).is_loopback
    except ValueError:
        return False


class Simulator:
    """A simulated Illuminate API server over a synthetic district."""

    def __init__(self, config: SimulatorConfig | None = None, **overrides: Any) -> None:
        cfg = config or SimulatorConfig()
        for key, value in overrides.items():
            setattr(cfg, key, value)
        self.config = cfg
        self.capacity = Capacity(cfg.workers, cfg.rate_limit, cfg.rate_limit_burst)  # first: a bad value fails fast
        self.district = District(cfg.students, cfg.seed, cfg.today, cfg.timezone)
        cfg.today = self.district.today  # always set: `config.today` follows `advance_today`
        self.api = Api(self.district, cfg.attendance_mode)
        self.mutator = Mutator(self.district)
        creds = make_credentials(cfg.seed)
        if cfg.credentials:
            creds = dataclasses.replace(creds, **cfg.credentials)
        self.credentials = creds
        self.verifier = OAuth1Verifier({creds.consumer_key: creds.consumer_secret}, {creds.token: creds.token_secret})
        self.tokens = TokenStore({creds.client_id: creds.client_secret}, cfg.token_lifetime)
        self.faults = FaultInjector(cfg.seed)
        self._counts: Counter[str] = Counter()
        self._parameter_sets: Counter[tuple[str, tuple[str, ...]]] = Counter()
        self._counts_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self, port: int = 0, host: str = "127.0.0.1") -> Simulator:
        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        server.sim = self  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="illuminate-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Simulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- public API -----------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.config.instance}"

    @property
    def oauth1(self) -> tuple[str, str, str, str]:
        c = self.credentials
        return c.consumer_key, c.consumer_secret, c.token, c.token_secret

    @property
    def oauth2(self) -> tuple[str, str]:
        return self.credentials.client_id, self.credentials.client_secret

    @property
    def today(self) -> dt.date:
        return self.district.today

    def env(self) -> dict[str, str]:
        c = self.credentials
        prefix = "SOURCES__ILLUMINATE__"
        return {
            f"{prefix}BASE_URL": self.base_url,
            f"{prefix}CREDENTIALS__CONSUMER_KEY": c.consumer_key,
            f"{prefix}CREDENTIALS__CONSUMER_SECRET": c.consumer_secret,
            f"{prefix}CREDENTIALS__TOKEN": c.token,
            f"{prefix}CREDENTIALS__TOKEN_SECRET": c.token_secret,
            f"{prefix}CREDENTIALS__CLIENT_ID": c.client_id,
            f"{prefix}CREDENTIALS__CLIENT_SECRET": c.client_secret,
        }

    def query(self, path: str, params: dict[str, str] | None = None) -> list[Any]:
        """Every record the endpoint returns for these parameters, unpaged, exactly as served."""
        return self.api.query(path, {k: str(v) for k, v in (params or {}).items()})

    def request_counts(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(self._counts)

    def reset_request_counts(self) -> None:
        with self._counts_lock:
            self._counts.clear()
            self._parameter_sets.clear()

    def count(self, key: str) -> None:
        with self._counts_lock:
            self._counts[key] += 1

    def parameter_sets(self) -> dict[tuple[str, tuple[str, ...]], int]:
        """How often each route was asked with each set of parameter names (authenticated requests): what a client
        left to the documented defaults."""
        with self._counts_lock:
            return dict(self._parameter_sets)

    def note_parameters(self, key: str, names: Iterable[str]) -> None:
        with self._counts_lock:
            self._parameter_sets[(key, tuple(sorted(set(names))))] += 1

    def inject_fault(
        self, path: str, kind: str, count: int | None = None, rate: float | None = None, **options: Any
    ) -> None:
        self.faults.add(path, kind, count, rate, **options)

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_capacity(self, **changes: Any) -> dict[str, Any]:
        """Change `workers`, `rate_limit`, `rate_limit_burst` (absent: unchanged; None: cleared) while serving;
        ValueError on a bad value. Returns the settings, also written back to `config`."""
        settings = self.capacity.configure(**changes)
        for key, value in settings.items():
            setattr(self.config, key, value)
        return settings

    def capacity_stats(self) -> dict[str, Any]:
        """The capacity settings and counters: served, queued, max_queued, in_flight, max_in_flight, rate_limited."""
        return self.capacity.stats()

    def reset_capacity_stats(self) -> None:
        self.capacity.reset_stats()

    def mutate(self, action: str, **kwargs: Any) -> dict[str, Any]:
        with self.api.lock:
            result = self.mutator.apply(action, **kwargs)
            self.config.today = self.district.today
            self.api.invalidate()
        return result

    def advance_today(self, days: int = 1) -> dt.date:
        with self.api.lock:
            self.district.today += dt.timedelta(days=days)
            self.config.today = self.district.today
            self.api.invalidate()
        return self.district.today

    def create_user_api_keys(self, username: str, password: str) -> dict[str, Any] | None:
        for user in self.district.users.values():
            if user.username == username and user.password == password:
                key, secret = user_api_keys(self.config.seed, user.user_id)
                self.verifier.add_token(key, secret)
                return {"user_id": user.user_id, "user_api_key": key, "user_api_secret": secret}
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm on, each answer waited ~40 ms for the
    # client's delayed ACK (measured on loopback: 47 ms per sequential request with it on, 2.4 ms with it off).
    disable_nagle_algorithm = True
    server_version = "Apache"
    sys_version = ""

    @property
    def sim(self) -> Simulator:
        sim: Simulator = self.server.sim  # type: ignore[attr-defined]
        return sim

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    # -- responses --------------------------------------------------------------------------------------------------

    def send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if body or content_type != "application/json":
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, value: Any) -> None:
        self.send(status, to_json(value))

    def auth_failure(self) -> None:
        if self.sim.config.html_auth_failures:
            self.send(200, LOGIN_PAGE, "text/html; charset=UTF-8")
        else:
            self.send(401, headers={"WWW-Authenticate": 'OAuth realm="Illuminate"'})

    # -- dispatch ---------------------------------------------------------------------------------------------------

    def dispatch(self, method: str) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            self.body = self.rfile.read(length) if length else b""
            parts = urllib.parse.urlsplit(self.path)
            path = parts.path
            if path.startswith("/_control/"):
                self.control(method, path[len("/_control/") :].strip("/"))
                return
            instance = f"/{self.sim.config.instance}"
            if path in (instance, instance + "/", instance + "/index.php") and "OAuth2_AccessToken" in parts.query:
                self.oauth2_token(method)
                return
            prefix = f"{instance}/rest_server.php/Api/"
            if not path.startswith(prefix):
                self.send(404)
                return
            rest = urllib.parse.unquote(path[len(prefix) :]).strip().strip("/")
            route, key, match = self.route(rest)
            if route is None:
                self.send(404)
                return
            self.sim.count(key)
            if route != method:
                self.send(405, headers={"Allow": route})
                return
            retry_after = self.sim.capacity.admit()  # the rate limit, on arrival: a 429 takes no worker
            if retry_after is not None:
                self.send(429, headers={"Retry-After": str(retry_after)})
                return
            with self.sim.capacity.worker():  # service starts here: authentication, latency, the page, writing it
                self.serve(method, path, key, rest, match, parts.query)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception as exc:  # a simulator bug: answer 500 like the real API, and say why on stderr
            print(f"simulator error on {self.command} {self.path}: {exc!r}", file=sys.stderr)
            import traceback

            traceback.print_exc()
            try:
                self.send(500)
            except OSError:
                self.close_connection = True

    def serve(self, method: str, path: str, key: str, rest: str, match: re.Match[str] | None, raw_query: str) -> None:
        """One API request, authenticated, with the added latency and faults: the service time a worker spends."""
        query = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
        if not self.authenticate(method, path, query):
            self.auth_failure()
            return
        self.sim.note_parameters(key, (name for name, _ in query))
        faults = self.sim.faults.firing(key, dict(query))
        if self.sim.config.latency:
            time.sleep(self.sim.config.latency)
        for fault in faults:
            if fault.kind == "latency":
                time.sleep(float(fault.options.get("seconds", 1.0)))
            elif fault.kind == "shift_pages":
                # late-arriving records, back-dated to the session start: they sort into earlier pages
                start = cal.normal_session(self.sim.district.current_year).start
                self.sim.mutate(
                    "add_students", count=int(fault.options.get("records", 3)), entry_date=start, with_results=True
                )
        empty = next((fault for fault in faults if fault.kind == "empty_result"), None)
        keep = float(empty.options.get("keep", 0.0)) if empty is not None else None
        status, body = self.answer(method, key, rest, match, dict(query), keep)
        self.deliver(status, body, faults)

    def route(self, rest: str) -> tuple[str | None, str, re.Match[str] | None]:
        for pattern, key in POST_ROUTES:
            match = pattern.match(rest)
            if match:
                return "POST", key, match
        route = route_for(rest)  # the View's assessment id must be numeric, or it is no route: 404
        if route is not None:
            return "GET", route.path, None
        return None, "", None

    def authenticate(self, method: str, path: str, query: list[tuple[str, str]]) -> bool:
        header = self.headers.get("Authorization")
        if header and header.lower().startswith("bearer "):
            return self.sim.tokens.valid(header[7:].strip())
        form: list[tuple[str, str]] = []
        if (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            form = urllib.parse.parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        url = normalize_url(self.headers.get("Host") or f"127.0.0.1:{self.sim.port}", path)
        return self.sim.verifier.verify(method, url, query, form, header) is None

    def deliver(self, status: int, body: bytes, faults: list[Fault]) -> None:
        for fault in faults:
            kind = fault.kind
            if kind in ("500", "503"):
                retry_after = fault.options.get("retry_after")  # a 503 may say when to come back, as a 429 does
                self.send(int(kind), headers={"Retry-After": str(retry_after)} if retry_after is not None else None)
                return
            if kind == "429":
                self.send(429, headers={"Retry-After": str(fault.options.get("retry_after", 1))})
                return
            if kind == "html_200":
                self.send(200, LOGIN_PAGE, "text/html; charset=UTF-8")
                return
            if kind == "truncated_json":
                self.send(200, body[: max(1, len(body) // 2)])
                return
            if kind == "drop_connection":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
        self.send(status, body)

    # -- API answers ------------------------------------------------------------------------------------------------

    def answer(
        self,
        method: str,
        key: str,
        rest: str,
        match: re.Match[str] | None,
        params: dict[str, str],
        keep: float | None = None,
    ) -> tuple[int, bytes]:
        try:
            if method == "POST":
                return self.post(key, match)
            route = route_for(rest)
            assert route is not None
            page, limit = 1, min(DEFAULT_LIMIT, route.max_limit or DEFAULT_LIMIT)
            if route.is_paged:
                # Without `page` the answer is page 1, also where the field list calls `page` required: see
                # `routes.PAGE_TOLERATED`.
                try:
                    page = max(1, int(params.get("page") or 1))
                    if params.get("limit") not in (None, ""):
                        limit = int(params["limit"])
                except ValueError:
                    raise ApiError(
                        400, {"error": {"code": "invalid_parameter", "message": "page and limit must be integers"}}
                    ) from None
                limit = max(1, min(limit, route.max_limit or DEFAULT_LIMIT))
            with self.sim.api.lock:
                selection = self.sim.api.select(rest, params)
                if keep is not None and selection.shape != "document":  # an `empty_result` fault
                    selection = dataclasses.replace(
                        selection, items=selection.items[: int(len(selection.items) * keep)]
                    )
                body = page_body(selection, page, limit)
            return 200, to_json(body)
        except ApiError as err:
            return err.status, to_json(err.body) if err.body is not None else b""

    def post(self, key: str, match: re.Match[str] | None) -> tuple[int, bytes]:
        sim = self.sim
        if key == "CreateUserApiKeys":
            form = dict(urllib.parse.parse_qsl(self.body.decode("utf-8", "replace")))
            if not form and self.body.strip().startswith(b"{"):
                form = {k: str(v) for k, v in json.loads(self.body).items()}
            keys = sim.create_user_api_keys(form.get("username", ""), form.get("password", ""))
            if keys is None:
                return 400, to_json({"error": {"code": "invalid_credentials", "message": "Invalid User Credentials"}})
            return 200, to_json(keys)
        assert match is not None
        try:
            payload = json.loads(self.body or b"null")
        except json.JSONDecodeError:
            return 400, to_json({"error": {"code": "invalid_json", "message": "The request body is not valid JSON"}})
        ident = urllib.parse.unquote(match.group(1))
        d = sim.district
        with sim.api.lock:
            if key.startswith("Assessment"):
                by_local = "local_assessment_id" in key
                found = [
                    a
                    for a in d.assessments.values()
                    if (a.local_assessment_id == ident if by_local else str(a.assessment_id) == ident)
                ]
                if not found:
                    return 404, b""
                try:
                    result = sim.mutator.post_scores(found[0], payload, d.today)
                except ValueError as err:
                    return 400, to_json({"error": {"code": "invalid_request", "message": str(err)}})
                d.touch()
                sim.api.invalidate()
                return 200, to_json(result)
            repos = [
                r
                for r in d.repositories.values()
                if (r.local_repository_id == ident if "local" in key else str(r.repository_id) == ident)
            ]
            if not repos:
                return 404, b""
            if not isinstance(payload, list) or not all(isinstance(x, dict) for x in payload):
                return 400, to_json({"error": {"code": "invalid_request", "message": "Expected a list of objects"}})
            repos[0].rows.extend(payload)
            return 200, to_json({"success": True})

    def oauth2_token(self, method: str) -> None:
        sim = self.sim
        sim.count("OAuth2")
        if method != "POST":
            self.send(405, headers={"Allow": "POST"})
            return
        content_type = self.headers.get("Content-Type") or ""
        if content_type.startswith("application/json"):
            form = {k: str(v) for k, v in json.loads(self.body or b"{}").items()}
        else:
            form = dict(urllib.parse.parse_qsl(self.body.decode("utf-8", "replace")))
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        header = self.headers.get("Authorization") or ""
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode()
                client_id, _, client_secret = decoded.partition(":")
                client_id, client_secret = urllib.parse.unquote(client_id), urllib.parse.unquote(client_secret)
            except (ValueError, UnicodeDecodeError):
                pass
        faults = sim.faults.firing("OAuth2")
        if form.get("grant_type") != "client_credentials":
            self.send_json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "Only the client_credentials grant type is supported",
                },
            )
            return
        token = sim.tokens.issue(client_id, client_secret)
        if token is None:
            self.send_json(401, {"error": "invalid_client", "error_description": "The client credentials are invalid"})
            return
        body = to_json(
            {"access_token": token, "expires_in": sim.tokens.lifetime, "token_type": "Bearer", "scope": None}
        )
        self.deliver(200, body, faults)

    # -- control API ----------------------------------------------------------------------------------------------

    def control(self, method: str, action: str) -> None:
        if not is_loopback(self.client_address[0]):
            self.send_json(403, {"error": "the control API answers loopback clients only"})
            return
        sim = self.sim
        try:
            payload = json.loads(self.body) if self.body.strip() else {}
        except json.JSONDecodeError:
            self.send_json(400, {"error": "invalid JSON"})
            return
        try:
            if action == "requests" and method == "GET":
                self.send(200, json.dumps(sim.request_counts()).encode())
            elif action == "requests/reset" and method == "POST":
                sim.reset_request_counts()
                self.send_json(200, {"ok": True})
            elif action == "faults" and method == "POST":
                sim.inject_fault(**payload)
                self.send_json(200, {"ok": True})
            elif action == "faults" and method == "DELETE":
                sim.clear_faults()
                self.send_json(200, {"ok": True})
            elif action == "mutate" and method == "POST":
                result = sim.mutate(**payload)
                self.send(200, json.dumps(result, default=str).encode())
            elif action == "advance_today" and method == "POST":
                today = sim.advance_today(int(payload.get("days", 1)))
                self.send_json(200, {"today": today.isoformat()})
            elif action == "capacity" and method == "GET":
                self.send_json(200, sim.capacity_stats())
            elif action == "capacity" and method == "POST":
                if not isinstance(payload, dict):
                    raise ValueError('expected a JSON object such as {"workers": 12, "rate_limit": 40}')
                sim.set_capacity(**payload)
                self.send_json(200, sim.capacity_stats())
            elif action == "capacity/reset" and method == "POST":
                sim.reset_capacity_stats()
                self.send_json(200, sim.capacity_stats())
            elif action == "state" and method == "GET":
                self.send_json(
                    200,
                    {
                        "today": sim.today.isoformat(),
                        "timezone": sim.config.timezone,
                        "students": len(sim.district.students),
                        "version": sim.district.version,
                    },
                )
            else:
                self.send(404)
        except (TypeError, ValueError, KeyError) as err:
            self.send(400, json.dumps({"error": str(err)}).encode())


def serve_forever(cfg: SimulatorConfig, port: int) -> None:
    """Start a simulator, print its environment as NAME=value lines, and serve until Ctrl-C."""
    sim = Simulator(cfg)
    sim.start(port=port)

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    for name, value in sim.env().items():
        print(f"{name}={value}")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
