"""Authentication against the simulator over HTTP: OAuth1 re-signing, the OAuth2 token's life, refused credentials."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Iterator

import pytest
import requests
from client_support import CLIENT_WINDOW, FAST_RETRY, canonical_rows, oauth1_credentials, oauth2_credentials

from illuminate_sync.sources.illuminate.auth import OAuth1Credentials, OAuth1Signer, OAuth2Credentials
from illuminate_sync.sources.illuminate.client import IlluminateClient, RetryPolicy
from illuminate_sync.sources.illuminate.errors import AuthenticationError, RequestFailedError

TOKEN_PATH = "OAuth2"
"""How the simulator names the token endpoint in its request counts and faults."""


def _token_requests(sim: object) -> int:
    return int(sim.request_counts().get(TOKEN_PATH, 0))  # type: ignore[attr-defined]


def test_oauth1_signs_every_attempt_afresh(http_sim, make_client: Callable[..., IlluminateClient]) -> None:
    """A 503 then success: the retry must carry a new nonce, since the simulator rejects a reused one with 401."""
    client = make_client()
    http_sim.inject_fault("Students", "503", count=2)
    page = next(client.iter_pages("Students/", CLIENT_WINDOW, 50))
    assert page.page == 1 and len(page.rows) == 50
    assert client.stats.retries == 2


def test_a_resent_oauth1_request_is_refused(http_sim) -> None:
    """The premise of signing every attempt: re-sending a prepared request (what a retrying session does) fails."""
    signer = OAuth1Signer(*http_sim.oauth1)
    prepared = requests.Request("GET", f"{http_sim.base_url}/rest_server.php/Api/Sites/", auth=signer).prepare()
    with requests.Session() as session:
        assert session.send(prepared, timeout=5).status_code == 200
        assert session.send(prepared, timeout=5).status_code == 401


def test_oauth1_wrong_secret_is_an_authentication_error(http_sim, make_client) -> None:
    consumer_key, _, token, token_secret = http_sim.oauth1
    wrong = OAuth1Credentials(
        consumer_key=consumer_key, consumer_secret="not-the-secret", token=token, token_secret=token_secret
    )
    with pytest.raises(AuthenticationError) as failure:
        make_client(wrong).get_json("Sites/")
    message = str(failure.value)
    assert "GET Sites/" in message and "401" in message
    assert "SOURCES__ILLUMINATE__CREDENTIALS__CONSUMER_SECRET" in message
    assert failure.value.status == 401


def test_html_login_page_is_an_authentication_error(http_sim, make_client) -> None:
    http_sim.inject_fault("Sites", "html_200")
    with pytest.raises(AuthenticationError) as failure:
        make_client().get_json("Sites/")
    assert "login page" in str(failure.value)
    assert "GET Sites/" in str(failure.value)


def test_html_for_failed_login_is_an_authentication_error() -> None:
    """A server that answers a failed login with an HTML page and HTTP 200 (as some instances do): wrong OAuth1
    credentials fail clearly; a refused OAuth2 token is renewed once, as for a 401."""
    from illuminate_sync.simulator import Simulator, SimulatorConfig

    sim = Simulator(SimulatorConfig(students=20, seed=2, today=datetime.date(2026, 11, 27), html_auth_failures=True))
    sim.start(port=0)
    try:
        consumer_key, _, token, _ = sim.oauth1
        wrong = OAuth1Credentials(consumer_key=consumer_key, consumer_secret="nope", token=token, token_secret="x")
        with IlluminateClient(sim.base_url, wrong, retry=FAST_RETRY) as client, pytest.raises(AuthenticationError) as e:
            client.get_json("Sites/")
        assert "login page" in str(e.value)
        with IlluminateClient(sim.base_url, oauth2_credentials(sim), retry=FAST_RETRY) as client:
            assert client.get_json("Sites/")
            assert client._oauth2 is not None
            client._oauth2._token = "revoked-token-value"
            assert client.get_json("Sites/")
            assert client.stats.token_requests == 2
    finally:
        sim.stop()


def test_oauth2_second_401_is_an_authentication_error() -> None:
    """Tokens the server refuses at once (lifetime 0): one renewal, then a clear error instead of a loop."""
    from illuminate_sync.simulator import Simulator, SimulatorConfig

    sim = Simulator(SimulatorConfig(students=20, seed=4, today=datetime.date(2026, 11, 27), token_lifetime=0))
    sim.start(port=0)
    try:
        with IlluminateClient(sim.base_url, oauth2_credentials(sim), retry=FAST_RETRY) as client:
            with pytest.raises(AuthenticationError) as failure:
                client.get_json("Sites/")
            assert "HTTP 401 Unauthorized even with a new OAuth2 token" in str(failure.value)
            assert client.stats.token_requests == 2
            assert _token_requests(sim) == 2
    finally:
        sim.stop()


def test_posts_are_signed_with_json_and_form_bodies(http_sim, make_client) -> None:
    """OAuth1 signs a form body into the signature and leaves a JSON body out; the simulator checks both."""
    client = make_client()
    assessment_id = next(iter(http_sim.district.assessments))
    answer = client.post_json(
        f"Assessment/{assessment_id}/Scores/", [{"local_student_id": "no-such-student", "responses": ["A"]}]
    )
    assert answer["rejected_responses_count"] == 1
    with pytest.raises(RequestFailedError) as failure:  # signed correctly, refused for the user's password
        client.post_json("CreateUserApiKeys/", form={"username": "nobody", "password": "wrong-Hh62"})
    assert "HTTP 400" in str(failure.value) and "Invalid User Credentials" in str(failure.value)
    assert "Hh62" not in str(failure.value)


def test_oauth2_token_fetched_once_and_shared_by_threads(http_sim, make_client) -> None:
    client = make_client(oauth2_credentials(http_sim), max_concurrency=8)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            barrier.wait()
            client.get_json("Sites/")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert _token_requests(http_sim) == 1
    assert client.stats.token_requests == 1
    rows = [row for page in client.iter_pages("Students/", CLIENT_WINDOW, 20) for row in page.rows]
    assert canonical_rows(rows) == canonical_rows(http_sim.query("Students", CLIENT_WINDOW))
    assert _token_requests(http_sim) == 1


@pytest.fixture(scope="module")
def short_token_sim() -> Iterator[object]:
    """A simulator whose OAuth2 tokens live 5 seconds (renewed 0.5 s before they expire)."""
    from illuminate_sync.simulator import Simulator, SimulatorConfig

    sim = Simulator(SimulatorConfig(students=120, seed=3, today=datetime.date(2026, 11, 27), token_lifetime=5))
    sim.start(port=0)
    yield sim
    sim.stop()


def test_oauth2_token_renewed_before_expiry_during_a_long_run(short_token_sim) -> None:
    """A paging run of ~6 s with 5 s tokens: the token is renewed ahead of expiry, so no request gets a 401.

    A token is taken before waiting for one of the 2 slots (up to 0.1 s) and each request takes 0.1 s, so a token
    taken just before its renewal point still has 0.3 s to spare when the server checks it. (With 3 s tokens it had
    0.1 s and failed once in 12 runs; with 2 s tokens and 0.2 s requests, none.)"""
    sim = short_token_sim
    sim.clear_faults()
    sim.reset_request_counts()
    sim.inject_fault("Students", "latency", seconds=0.1)
    retry = RetryPolicy(max_attempts=1, timeout=5.0)  # any 401 or failure would fail the run
    with IlluminateClient(sim.base_url, oauth2_credentials(sim), max_concurrency=2, retry=retry) as client:
        pages = list(client.iter_pages("Students/", CLIENT_WINDOW, 1))
        rows = [row for page in pages for row in page.rows]
        assert canonical_rows(rows) == canonical_rows(sim.query("Students", CLIENT_WINDOW))
        assert sim.request_counts()["Students"] == len(pages) >= 110  # one request per page: no 401, no retry
        # ~120 pages, 2 at a time, 0.1 s each: over 5 s, i.e. 2 tokens or more (renewed 0.5 s before they expire)
        assert client.stats.token_requests >= 2
        assert _token_requests(sim) == client.stats.token_requests
        assert client.stats.retries == 0
    sim.clear_faults()


def test_oauth2_refreshes_once_on_401(http_sim, make_client) -> None:
    """A token the server no longer accepts (revoked, or the server restarted): one refresh, then success."""
    client = make_client(oauth2_credentials(http_sim))
    client.get_json("Sites/")
    assert _token_requests(http_sim) == 1
    manager = client._oauth2
    assert manager is not None
    manager._token = "revoked-token-value"  # the server never issued it: it answers 401 like for a revoked token
    assert client.get_json("Sites/")
    assert _token_requests(http_sim) == 2
    assert client.stats.retries == 0


def test_oauth2_wrong_secret_is_an_authentication_error(http_sim, make_client) -> None:
    client_id, _ = http_sim.oauth2
    client = make_client(OAuth2Credentials(client_id=client_id, client_secret="csec-wrong-Pp41"))
    with pytest.raises(AuthenticationError) as failure:
        client.get_json("Sites/")
    message = str(failure.value)
    assert "OAuth2 token request was refused" in message
    assert "SOURCES__ILLUMINATE__CREDENTIALS__CLIENT_SECRET" in message
    assert "Pp41" not in message
    assert _token_requests(http_sim) == 1  # refused credentials are not retried


def test_oauth2_token_request_retries_transient_failures(http_sim, make_client) -> None:
    http_sim.inject_fault(TOKEN_PATH, "503", count=1)
    client = make_client(oauth2_credentials(http_sim))
    assert client.get_json("Sites/")
    assert client.stats.token_requests == 2


def test_oauth1_credentials_work_without_token_requests(http_sim, make_client) -> None:
    client = make_client(oauth1_credentials(http_sim))
    assert client.get_json("Sites/")
    assert _token_requests(http_sim) == 0
