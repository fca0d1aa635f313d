"""Helpers for tests that talk to a running simulator over HTTP with real OAuth1/OAuth2 clients."""

from __future__ import annotations

from typing import Any

import requests
from requests_oauthlib import OAuth1

from illuminate_sync.simulator.server import Simulator


def oauth1(sim: Simulator, **kwargs: Any) -> OAuth1:
    consumer_key, consumer_secret, token, token_secret = sim.oauth1
    kwargs.setdefault("signature_type", "auth_header")
    return OAuth1(consumer_key, consumer_secret, token, token_secret, **kwargs)


def api_url(sim: Simulator, path: str) -> str:
    return f"{sim.base_url}/rest_server.php/Api/{path.strip('/')}/"


def get(sim: Simulator, path: str, params: dict[str, Any] | None = None, *, session: requests.Session | None = None,
        auth: Any = None, **kwargs: Any) -> requests.Response:
    """A signed GET of an API path (like "Students" or "Assessment/1001/View")."""
    http = session or requests
    return http.get(api_url(sim, path), params=params, auth=auth or oauth1(sim), timeout=30, **kwargs)


def oauth2_token(sim: Simulator) -> str:
    client_id, client_secret = sim.oauth2
    response = requests.post(f"{sim.base_url}/?OAuth2_AccessToken", timeout=30,
                             data={"grant_type": "client_credentials", "client_id": client_id,
                                   "client_secret": client_secret})
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def all_pages(sim: Simulator, path: str, params: dict[str, Any], limit: int) -> tuple[list[Any], list[dict[str, Any]]]:
    """Every page of a paged endpoint: (all records in page order, the page envelopes without results)."""
    session = requests.Session()
    records: list[Any] = []
    envelopes: list[dict[str, Any]] = []
    page = 1
    while True:
        response = get(sim, path, {**params, "page": page, "limit": limit}, session=session)
        response.raise_for_status()
        body = response.json()
        results = body.pop("results")
        envelopes.append(body)
        records.extend(results if isinstance(results, list) else [results])
        if page >= int(body["num_pages"]):
            return records, envelopes
        page += 1
