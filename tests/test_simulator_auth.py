"""The simulator authenticates like the Illuminate API: OAuth1 HMAC-SHA1 headers, OAuth2 bearer tokens."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
import requests
from requests_oauthlib import OAuth1

from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.simulator.oauth import base_string, sign
from illuminate_sync.simulator.testing import api_url, get, oauth1, oauth2_token

TODAY = dt.date(2026, 11, 27)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(students=60, seed=2, today=TODAY, token_lifetime=1)) as s:
        yield s


@pytest.fixture(scope="module")
def html_sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(students=30, seed=2, today=TODAY, html_auth_failures=True)) as s:
        yield s


def test_documentation_worked_example_gives_the_documented_signature() -> None:
    params = [
        ("page", "2"),
        ("limit", "50"),
        ("oauth_consumer_key", "653e7a6ecc1d528c516cc8f92cf98611"),
        ("oauth_nonce", "bfa41b93ec995f9385b5f34027181dc4"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "1305583298"),
        ("oauth_version", "1.0"),
        ("oauth_token", "72157626737672178-022bbd2f4c2f3432"),
    ]
    base = base_string("GET", "https://demo.illuminateed.com/live/rest_server.php/Api/Students", params)
    assert base == (
        "GET&https%3A%2F%2Fdemo.illuminateed.com%2Flive%2Frest_server.php%2FApi%2FStudents&limit%3D50%26"
        "oauth_consumer_key%3D653e7a6ecc1d528c516cc8f92cf98611%26oauth_nonce%3Dbfa41b93ec995f9385b5f34027181dc4%26"
        "oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1305583298%26oauth_token%3D72157626737672178-"
        "022bbd2f4c2f3432%26oauth_version%3D1.0%26page%3D2"
    )
    assert sign(base, "4f88a6d17f8b9ad90e00005f", "fccb68c4e6103197") == "dbBJa4gFTWq9Z0utPzwmfncOleU="


def test_oauth1_header_signed_request_is_answered(sim: Simulator) -> None:
    response = get(sim, "Students", {"page": 1, "limit": 5})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert len(response.json()["results"]) == 5


@pytest.mark.parametrize("which", ["consumer_key", "token"])
def test_unknown_consumer_key_or_token_is_401_with_blank_body(sim: Simulator, which: str) -> None:
    key, secret, token, token_secret = sim.oauth1
    if which == "consumer_key":
        key = "0" * 32
    else:
        token = "1234-abcdef"
    response = get(sim, "Sites", auth=OAuth1(key, secret, token, token_secret, signature_type="auth_header"))
    assert response.status_code == 401
    assert response.content == b""


def test_missing_authorization_is_401(sim: Simulator) -> None:
    assert requests.get(api_url(sim, "Sites"), timeout=10).status_code == 401


def test_bad_signature_is_401(sim: Simulator) -> None:
    key, _, token, token_secret = sim.oauth1
    response = get(sim, "Sites", auth=OAuth1(key, "wrong-secret", token, token_secret, signature_type="auth_header"))
    assert response.status_code == 401


def test_oauth_parameters_in_the_query_string_are_401(sim: Simulator) -> None:
    response = get(sim, "Sites", auth=oauth1(sim, signature_type="query"))
    assert response.status_code == 401


def test_stale_timestamp_is_401(sim: Simulator) -> None:
    response = get(sim, "Sites", auth=oauth1(sim, timestamp=str(int(time.time()) - 1000)))
    assert response.status_code == 401
    assert get(sim, "Sites", auth=oauth1(sim, timestamp=str(int(time.time()) - 100))).status_code == 200


def test_replayed_request_with_the_same_nonce_is_401(sim: Simulator) -> None:
    session = requests.Session()
    prepared = session.prepare_request(requests.Request("GET", api_url(sim, "Sites"), auth=oauth1(sim)))
    assert session.send(prepared, timeout=10).status_code == 200
    assert session.send(prepared, timeout=10).status_code == 401


def test_the_signature_covers_the_query_string(sim: Simulator) -> None:
    session = requests.Session()
    prepared = session.prepare_request(
        requests.Request("GET", api_url(sim, "Students"), params={"page": 1, "limit": 2}, auth=oauth1(sim))
    )
    prepared.url = prepared.url.replace("limit=2", "limit=3")  # tampered after signing
    assert session.send(prepared, timeout=10).status_code == 401


def test_html_switch_answers_auth_failures_with_a_200_login_page(html_sim: Simulator) -> None:
    key, _, token, token_secret = html_sim.oauth1
    response = get(html_sim, "Sites", auth=OAuth1(key, "bad", token, token_secret, signature_type="auth_header"))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"<form" in response.content
    bearer = requests.get(api_url(html_sim, "Sites"), headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bearer.status_code == 200 and bearer.headers["Content-Type"].startswith("text/html")
    assert get(html_sim, "Sites").status_code == 200 and get(html_sim, "Sites").json()[0]["site_id"] == 1


def test_oauth2_token_is_issued_used_and_expires(sim: Simulator) -> None:
    client_id, client_secret = sim.oauth2
    response = requests.post(
        f"{sim.base_url}/?OAuth2_AccessToken",
        timeout=10,
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert requests.get(api_url(sim, "Sites"), headers=headers, timeout=10).status_code == 200
    time.sleep(1.2)
    assert requests.get(api_url(sim, "Sites"), headers=headers, timeout=10).status_code == 401
    assert sim.request_counts()["OAuth2"] >= 1


def test_oauth2_accepts_http_basic_client_credentials(sim: Simulator) -> None:
    response = requests.post(
        f"{sim.base_url}/?OAuth2_AccessToken", data={"grant_type": "client_credentials"}, auth=sim.oauth2, timeout=10
    )
    assert response.status_code == 200
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert requests.get(api_url(sim, "GradeLevels"), headers=headers, timeout=10).status_code == 200


def test_oauth2_bad_client_credentials_are_401_json(sim: Simulator) -> None:
    response = requests.post(
        f"{sim.base_url}/?OAuth2_AccessToken",
        timeout=10,
        data={"grant_type": "client_credentials", "client_id": sim.oauth2[0], "client_secret": "wrong"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_unknown_bearer_token_is_401(sim: Simulator) -> None:
    response = requests.get(api_url(sim, "Sites"), headers={"Authorization": "Bearer deadbeef"}, timeout=10)
    assert response.status_code == 401


def test_oauth2_token_helper_works(sim: Simulator) -> None:
    token = oauth2_token(sim)
    assert requests.get(api_url(sim, "Sites"), headers={"Authorization": f"Bearer {token}"}, timeout=10).ok


def test_create_user_api_keys_returns_working_keys_for_a_valid_user(sim: Simulator) -> None:
    username, password = sorted(sim.district.user_credentials.items())[0]
    response = requests.post(
        api_url(sim, "CreateUserApiKeys"),
        data={"username": username, "password": password},
        auth=oauth1(sim),
        timeout=10,
    )
    assert response.status_code == 200
    keys = response.json()
    assert set(keys) == {"user_id", "user_api_key", "user_api_secret"}
    key, secret, _, _ = sim.oauth1
    user_auth = OAuth1(key, secret, keys["user_api_key"], keys["user_api_secret"], signature_type="auth_header")
    assert get(sim, "Sites", auth=user_auth).status_code == 200
    bad = requests.post(
        api_url(sim, "CreateUserApiKeys"), data={"username": username, "password": "nope"}, auth=oauth1(sim), timeout=10
    )
    assert bad.status_code == 400
    assert bad.json() == {"error": {"code": "invalid_credentials", "message": "Invalid User Credentials"}}


def test_credentials_are_deterministic_from_the_seed_and_exported_as_env() -> None:
    a, b, c = Simulator(students=13, seed=9), Simulator(students=13, seed=9), Simulator(students=13, seed=10)
    assert a.oauth1 == b.oauth1 and a.oauth1 != c.oauth1
    env = a.env()
    assert env["SOURCES__ILLUMINATE__CREDENTIALS__CONSUMER_KEY"] == a.oauth1[0]
    assert env["SOURCES__ILLUMINATE__CREDENTIALS__CLIENT_SECRET"] == a.oauth2[1]
    assert set(env) == {
        "SOURCES__ILLUMINATE__BASE_URL",
        *(
            f"SOURCES__ILLUMINATE__CREDENTIALS__{n}"
            for n in ("CONSUMER_KEY", "CONSUMER_SECRET", "TOKEN", "TOKEN_SECRET", "CLIENT_ID", "CLIENT_SECRET")
        ),
    }
