"""Authentication as the Illuminate API does it: OAuth1 HMAC-SHA1 in the Authorization header, OAuth2 bearer tokens.

The OAuth1 base string is built exactly as the vendor documentation describes: the HTTP method, the percent-encoded
URL without its query, and the percent-encoded, name-sorted query and OAuth parameters (without `oauth_signature`),
joined by `&`; the key is `consumer_secret&token_secret`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

TIMESTAMP_WINDOW = 300


def percent_encode(value: str) -> str:
    return urllib.parse.quote(value, safe="-._~")


def base_string(method: str, url: str, params: list[tuple[str, str]]) -> str:
    """The OAuth1 signature base string; `url` without query, `params` decoded (query + oauth_*)."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in params if k != "oauth_signature")
    normalized = "&".join(f"{k}={v}" for k, v in encoded)
    return "&".join((method.upper(), percent_encode(url), percent_encode(normalized)))


def sign(base: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def parse_authorization(header: str | None) -> dict[str, str] | None:
    """The parameters of an `OAuth k="v", ...` header, or None when it is not one."""
    if not header or header[:6].lower() != "oauth ":
        return None
    out: dict[str, str] = {}
    for part in header[6:].split(","):
        part = part.strip()
        if not part or "=" not in part:
            continue
        key, _, value = part.partition("=")
        out[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip().strip('"'))
    return out


def normalize_url(host: str, path: str, scheme: str = "http") -> str:
    host = host.lower()
    if (scheme == "http" and host.endswith(":80")) or (scheme == "https" and host.endswith(":443")):
        host = host.rsplit(":", 1)[0]
    return f"{scheme}://{host}{path}"


@dataclass
class Credentials:
    consumer_key: str
    consumer_secret: str
    token: str
    token_secret: str
    client_id: str
    client_secret: str


def make_credentials(seed: int) -> Credentials:
    """Random-looking hex credentials, deterministic from the seed (shaped like the documentation's)."""
    rng = random.Random(f"illuminate-credentials-{seed}")

    def random_hex(n: int) -> str:
        return "".join(rng.choice("0123456789abcdef") for _ in range(n))

    key, secret = random_hex(32), random_hex(24)
    token = f"{rng.randint(10**16, 10**17 - 1)}-{random_hex(16)}"
    return Credentials(key, secret, token, random_hex(16), key, secret)


@dataclass
class OAuth1Verifier:
    """Checks OAuth1 requests; remembers nonces for the timestamp window."""

    consumers: dict[str, str]
    tokens: dict[str, str]
    window: int = TIMESTAMP_WINDOW
    _nonces: dict[tuple[str, str, str], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_token(self, token: str, secret: str) -> None:
        with self._lock:
            self.tokens[token] = secret

    def verify(self, method: str, url: str, query: list[tuple[str, str]], form: list[tuple[str, str]],
               header: str | None, now: float | None = None) -> str | None:
        """None when the request is authentic, else the reason it is not."""
        now = time.time() if now is None else now
        if any(k.startswith("oauth_") for k, _ in query):
            return "oauth parameters in the query string"
        oauth = parse_authorization(header)
        if oauth is None:
            return "no OAuth Authorization header"
        consumer_secret = self.consumers.get(oauth.get("oauth_consumer_key", ""))
        if consumer_secret is None:
            return "unknown consumer key"
        token_secret = self.tokens.get(oauth.get("oauth_token", ""))
        if token_secret is None:
            return "unknown token"
        if oauth.get("oauth_signature_method") != "HMAC-SHA1":
            return "unsupported signature method"
        try:
            stamp = int(oauth.get("oauth_timestamp", ""))
        except ValueError:
            return "bad timestamp"
        if abs(now - stamp) > self.window:
            return "stale timestamp"
        nonce = oauth.get("oauth_nonce", "")
        if not nonce:
            return "missing nonce"
        params = [*query, *form, *((k, v) for k, v in oauth.items() if k.startswith("oauth_"))]
        expected = sign(base_string(method, url, params), consumer_secret, token_secret)
        if not hmac.compare_digest(expected, oauth.get("oauth_signature", "")):
            return "bad signature"
        key = (oauth["oauth_consumer_key"], oauth["oauth_token"], nonce)
        with self._lock:
            for old in [k for k, expiry in self._nonces.items() if expiry < now]:
                del self._nonces[old]
            if key in self._nonces:
                return "nonce already used"
            self._nonces[key] = now + 2 * self.window
        return None


@dataclass
class TokenStore:
    """OAuth2 client-credentials tokens."""

    clients: dict[str, str]
    lifetime: int = 3600
    _tokens: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, client_id: str, client_secret: str) -> str | None:
        expected = self.clients.get(client_id)
        if expected is None or not hmac.compare_digest(expected, client_secret):
            return None
        token = secrets.token_hex(20)
        with self._lock:
            self._tokens[token] = time.time() + self.lifetime
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and time.time() < expiry
