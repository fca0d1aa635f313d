"""Helpers of the HTTP client tests (tests/test_client_*.py); their fixtures (`http_sim`, `make_client`) are in
conftest.py."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from illuminate_sync.sources.illuminate.auth import IlluminateCredentials, OAuth1Credentials, OAuth2Credentials
from illuminate_sync.sources.illuminate.client import RetryPolicy

if TYPE_CHECKING:
    from illuminate_sync.simulator import Simulator

CLIENT_WINDOW = {"start_date": "2026-08-01", "end_date": "2026-11-27"}
"""A Students window of the simulated district (the current school year up to `today`)."""

FAST_RETRY = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.05, timeout=5.0)
"""Retries that keep the client tests fast."""


def oauth1_credentials(sim: Simulator) -> IlluminateCredentials:
    consumer_key, consumer_secret, token, token_secret = sim.oauth1
    return OAuth1Credentials(
        consumer_key=consumer_key, consumer_secret=consumer_secret, token=token, token_secret=token_secret
    )


def oauth2_credentials(sim: Simulator) -> IlluminateCredentials:
    client_id, client_secret = sim.oauth2
    return OAuth2Credentials(client_id=client_id, client_secret=client_secret)


def canonical_rows(rows: list[dict[str, Any]]) -> list[str]:
    """Rows as sorted JSON strings, to compare what the client received with the simulator's truth."""
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in json.loads(json.dumps(rows, default=str)))
