"""Settings of the HTTP layer: credentials resolved by dlt, their validation, base URL and concurrency checks."""

from __future__ import annotations

from collections.abc import Iterator

import dlt
import pytest
from dlt.sources import DltResource

from illuminate_sync.sources.illuminate.auth import (
    IlluminateCredentials,
    OAuth1Credentials,
    OAuth1Signer,
    OAuth2Credentials,
)
from illuminate_sync.sources.illuminate.client import IlluminateClient, RetryPolicy, normalize_base_url
from illuminate_sync.sources.illuminate.errors import ConfigurationError, IlluminateError

PREFIX = "SOURCES__ILLUMINATE__CREDENTIALS__"
OAUTH1 = {
    "consumer_key": "ck-public",
    "consumer_secret": "cs-Zq81secret",
    "token": "tok-public",
    "token_secret": "ts-Yx27secret",
}


@dlt.source(name="illuminate", section="illuminate")
def _tiny_source(credentials: IlluminateCredentials = dlt.secrets.value) -> DltResource:
    @dlt.resource
    def echo() -> Iterator[IlluminateCredentials]:
        yield credentials

    return echo


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("consumer_key", "consumer_secret", "token", "token_secret", "client_id", "client_secret"):
        monkeypatch.delenv(PREFIX + name.upper(), raising=False)
    return monkeypatch


def _resolve() -> IlluminateCredentials:
    source = _tiny_source()
    (credentials,) = list(source.resources["echo"])
    assert isinstance(credentials, IlluminateCredentials)
    return credentials


def test_oauth1_credentials_resolve_from_env(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in OAUTH1.items():
        clean_env.setenv(PREFIX + name.upper(), value)
    credentials = _resolve()
    assert not credentials.uses_oauth2
    assert (credentials.consumer_key, credentials.consumer_secret) == ("ck-public", "cs-Zq81secret")
    assert (credentials.token, credentials.token_secret) == ("tok-public", "ts-Yx27secret")


def test_oauth2_credentials_resolve_from_env_and_win_over_oauth1(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in OAUTH1.items():
        clean_env.setenv(PREFIX + name.upper(), value)
    clean_env.setenv(PREFIX + "CLIENT_ID", "client-public")
    clean_env.setenv(PREFIX + "CLIENT_SECRET", "csec-Wv63secret")
    credentials = _resolve()
    assert credentials.uses_oauth2
    assert credentials.client_secret == "csec-Wv63secret"


def test_blank_oauth2_settings_leave_oauth1_in_use(clean_env: pytest.MonkeyPatch) -> None:
    """An empty string is a value to dlt: a blank client id and secret (as a copied secrets.toml may hold) must not
    make the OAuth2 scheme win over complete OAuth1 credentials."""
    for name, value in OAUTH1.items():
        clean_env.setenv(PREFIX + name.upper(), value)
    clean_env.setenv(PREFIX + "CLIENT_ID", "")
    clean_env.setenv(PREFIX + "CLIENT_SECRET", "")
    credentials = _resolve()
    assert isinstance(credentials, OAuth1Credentials)
    assert not credentials.uses_oauth2


def test_each_scheme_resolves_to_its_own_spec(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv(PREFIX + "CLIENT_ID", "client-public")
    clean_env.setenv(PREFIX + "CLIENT_SECRET", "csec-Wv63secret")
    assert isinstance(_resolve(), OAuth2Credentials)


@pytest.mark.parametrize(
    ("settings", "missing", "reason"),
    [
        ({}, "no credentials", "(OAuth2)"),
        ({"consumer_key": "ck"}, PREFIX + "CONSUMER_SECRET is not set", "a consumer key needs its consumer secret"),
        ({"consumer_key": "ck", "consumer_secret": "cs"}, PREFIX + "TOKEN is not set", "user token"),
        ({"consumer_key": "ck", "consumer_secret": "cs", "token": "t"}, PREFIX + "TOKEN_SECRET is not set", "secret"),
        ({"client_id": "id"}, PREFIX + "CLIENT_SECRET is not set", "a client id needs its client secret"),
        ({"client_secret": "s"}, PREFIX + "CLIENT_ID is not set", "a client secret needs its client id"),
        ({"consumer_key": "", "consumer_secret": ""}, "no credentials", PREFIX + "CLIENT_ID"),
    ],
)
def test_incomplete_credentials_name_the_missing_variable(
    clean_env: pytest.MonkeyPatch, settings: dict[str, str], missing: str, reason: str
) -> None:
    for name, value in settings.items():
        clean_env.setenv(PREFIX + name.upper(), value)
    with pytest.raises(ConfigurationError) as failure:
        _resolve()
    assert missing in str(failure.value)
    assert reason in str(failure.value)
    assert "\n" not in str(failure.value)


def test_credentials_never_show_a_secret() -> None:
    oauth1 = OAuth1Credentials(**OAUTH1)
    oauth2 = OAuth2Credentials(client_id="client-public", client_secret="csec-Wv63secret")
    for credentials in (oauth1, oauth2):
        for text in (str(credentials), repr(credentials), f"{credentials}", repr([credentials])):
            assert not any(secret in text for secret in ("Zq81secret", "Yx27secret", "Wv63secret")), text
    assert "ck-public" in str(oauth1)
    assert "client-public" in str(oauth2)


def test_oauth1_signature_matches_the_documented_example() -> None:
    """The API documentation's worked example: same base string, same HMAC-SHA1 signature."""
    signer = OAuth1Signer(
        "653e7a6ecc1d528c516cc8f92cf98611",
        "4f88a6d17f8b9ad90e00005f",
        "72157626737672178-022bbd2f4c2f3432",
        "fccb68c4e6103197",
    )
    header = signer.authorization_header(
        "GET",
        "https://demo.illuminateed.com/live/rest_server.php/Api/Students?page=2&limit=50",
        nonce="bfa41b93ec995f9385b5f34027181dc4",
        timestamp="1305583298",
    )
    assert header.startswith("OAuth ")
    assert 'oauth_signature="dbBJa4gFTWq9Z0utPzwmfncOleU%3D"' in header
    assert 'oauth_signature_method="HMAC-SHA1"' in header
    # without a fixed nonce every signature is new
    url = "https://demo.illuminateed.com/live/rest_server.php/Api/Students/?page=1"
    assert signer.authorization_header("GET", url) != signer.authorization_header("GET", url)


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("https://x.illuminateed.com/live", "https://x.illuminateed.com/live"),
        ("https://x.illuminateed.com/live/", "https://x.illuminateed.com/live"),
        (" https://x.illuminateed.com/live/rest_server.php ", "https://x.illuminateed.com/live"),
        ("https://x.illuminateed.com/live/rest_server.php/", "https://x.illuminateed.com/live"),
        ("https://x.illuminateed.com/live/rest_server.php/Api", "https://x.illuminateed.com/live"),
        ("https://x.illuminateed.com/live/rest_server.php/Api/", "https://x.illuminateed.com/live"),
        ("HTTPS://x.illuminateed.com:8443/live/", "https://x.illuminateed.com:8443/live"),
        ("http://127.0.0.1:8080/live", "http://127.0.0.1:8080/live"),
        ("http://127.1.2.3/live", "http://127.1.2.3/live"),
        ("http://localhost:9/live/rest_server.php/Api/", "http://localhost:9/live"),
        ("http://[::1]:9/live", "http://[::1]:9/live"),
    ],
)
def test_base_url_is_normalised(given: str, root: str) -> None:
    assert normalize_base_url(given) == root
    client = IlluminateClient(given, OAuth1Credentials(**OAUTH1))
    try:
        assert client.api_root == root + "/rest_server.php/Api/"
        assert client.token_url == root + "/?OAuth2_AccessToken"
    finally:
        client.close()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://x.illuminateed.com/live", "must use https"),
        ("http://10.0.0.5/live", "must use https"),
        ("ftp://x.illuminateed.com/live", "not a valid URL"),
        ("x.illuminateed.com/live", "not a valid URL"),
        ("https://", "not a valid URL"),
        ("https://x.illuminateed.com:99999/live", "not a valid URL"),
        ("https://user:pw-Kq5secret@x.illuminateed.com/live", "must not contain a user name or password"),
        ("https://x.illuminateed.com/live/?OAuth2_AccessToken", "without a query"),
        ("", "is not set"),
    ],
)
def test_bad_base_url_names_the_setting(given: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as failure:
        IlluminateClient(given, OAuth1Credentials(**OAUTH1))
    message = str(failure.value)
    assert message.startswith("SOURCES__ILLUMINATE__BASE_URL")
    assert expected in message
    assert "Kq5secret" not in message


@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_max_concurrency_must_be_positive(value: object) -> None:
    with pytest.raises(ConfigurationError, match="SOURCES__ILLUMINATE__MAX_CONCURRENCY"):
        IlluminateClient("https://x.illuminateed.com/live", OAuth1Credentials(**OAUTH1), max_concurrency=value)  # type: ignore[arg-type]


def test_client_validates_credentials_given_directly() -> None:
    with pytest.raises(ConfigurationError, match=PREFIX + "TOKEN_SECRET is not set"):
        incomplete = OAuth1Credentials(consumer_key="a", consumer_secret="b", token="c")
        IlluminateClient("https://x.illuminateed.com/live", incomplete)


def test_retry_policy_is_validated() -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(max_attempts=0)
    assert isinstance(ConfigurationError("x"), IlluminateError)
    policy = RetryPolicy(backoff_base=1.0, backoff_max=3.0)
    assert all(0 <= policy.backoff(attempt) <= min(3.0, 2 ** (attempt - 1)) for attempt in range(1, 8))


def test_closed_client_refuses_requests() -> None:
    client = IlluminateClient("https://x.illuminateed.com/live", OAuth1Credentials(**OAUTH1))
    client.close()
    with pytest.raises(IlluminateError, match="closed"):
        client.get_json("Sites/")


def test_paths_outside_the_api_root_are_refused() -> None:
    with IlluminateClient("https://x.illuminateed.com/live", OAuth1Credentials(**OAUTH1)) as client:
        for path in ("https://evil.example/Students/", "//evil.example/x", "../admin/", "Students/?page=1"):
            with pytest.raises(ValueError):
                client.get_json(path)
