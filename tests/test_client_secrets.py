"""No secret, token, signature or Authorization header in any exception message or log line, at DEBUG level too."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from client_support import CLIENT_WINDOW, oauth1_credentials, oauth2_credentials

from illuminate_sync.sources.illuminate.auth import OAuth1Credentials, OAuth2Credentials
from illuminate_sync.sources.illuminate.client import IlluminateClient
from illuminate_sync.sources.illuminate.errors import IlluminateError

FORBIDDEN_WORDS = ("oauth_signature", "Authorization", "Bearer ", "oauth_nonce")


def _exercise(client: IlluminateClient, sim: object) -> list[str]:
    """Runs requests that succeed, retry and fail; returns the messages of the errors raised."""
    messages: list[str] = []
    attempts: list[tuple[str, Callable[[], object]]] = [
        ("503", lambda: list(client.iter_pages("Students/", CLIENT_WINDOW, 50))),
        ("truncated_json", lambda: client.get_json("Sites/")),
        ("drop_connection", lambda: client.get_json("Sites/")),
        ("html_200", lambda: client.get_json("Sites/")),
        # HTTP 400: `site_id` is required on Attendance/Section (a paged endpoint without `page` answers page 1)
        ("", lambda: client.get_json("Attendance/Section/", {"date": "2026-11-20"})),
        ("", lambda: client.get_json("NoSuchEndpoint/")),  # HTTP 404
    ]
    for kind, call in attempts:
        sim.clear_faults()  # type: ignore[attr-defined]
        if kind:
            path = "Students" if kind == "503" else "Sites"
            sim.inject_fault(path, kind, count=2)  # type: ignore[attr-defined]
        try:
            call()
        except IlluminateError as exc:
            messages.append(str(exc))
            messages.append(repr(exc))
    sim.clear_faults()  # type: ignore[attr-defined]
    sim.inject_fault("Sites", "503")  # type: ignore[attr-defined]
    with pytest.raises(IlluminateError) as failure:
        client.get_json("Sites/")
    messages.append(str(failure.value))
    sim.clear_faults()  # type: ignore[attr-defined]
    return messages


def _assert_clean(texts: list[str], secrets: list[str]) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret leaked into: {text[:200]}"
        for word in FORBIDDEN_WORDS:
            assert word not in text, f"{word!r} leaked into: {text[:200]}"


def test_oauth1_secrets_stay_out_of_errors_and_logs(http_sim, make_client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(oauth1_credentials(http_sim), max_concurrency=2)
    messages = _exercise(client, http_sim)
    assert any("HTTP 400" in message for message in messages)
    assert any("retry" in record.getMessage() for record in caplog.records)
    _, consumer_secret, _, token_secret = http_sim.oauth1
    _assert_clean([*messages, caplog.text, repr(client), str(client.credentials)], [consumer_secret, token_secret])


def test_oauth2_secrets_and_tokens_stay_out_of_errors_and_logs(
    http_sim, make_client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(oauth2_credentials(http_sim), max_concurrency=2)
    messages = _exercise(client, http_sim)
    assert client._oauth2 is not None
    client._oauth2._token = "revoked-token-Mm93"  # forces the refresh-on-401 path
    client.get_json("Sites/")
    tokens = list(client._oauth2.issued_tokens())
    assert len(tokens) == 3  # the first, one after the login page (html_200), one after the revoked token
    _, client_secret = http_sim.oauth2
    _assert_clean([*messages, caplog.text, repr(client), str(client.credentials)], [client_secret, *tokens, "Mm93"])


@pytest.mark.parametrize("scheme", ["oauth1", "oauth2"])
def test_wrong_secrets_stay_out_of_errors_and_logs(
    http_sim, make_client, caplog: pytest.LogCaptureFixture, scheme: str
) -> None:
    caplog.set_level(logging.DEBUG)
    if scheme == "oauth1":
        consumer_key, _, token, _ = http_sim.oauth1
        credentials = OAuth1Credentials(
            consumer_key=consumer_key, consumer_secret="CS-Qw7x9Rt", token=token, token_secret="TS-Lk3j5Hg"
        )
    else:
        credentials = OAuth2Credentials(client_id=http_sim.oauth2[0], client_secret="CL-Zx8c6Vb")
    client = make_client(credentials)
    with pytest.raises(IlluminateError) as failure:
        list(client.iter_pages("Students/", CLIENT_WINDOW, 50))
    _assert_clean(
        [str(failure.value), repr(failure.value), caplog.text, repr(credentials)],
        ["CS-Qw7x9Rt", "TS-Lk3j5Hg", "CL-Zx8c6Vb"],
    )
