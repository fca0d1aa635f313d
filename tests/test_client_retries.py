"""Retries against the simulator over HTTP: every retryable fault recovers to the clean result; others fail clearly."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from client_support import CLIENT_WINDOW, canonical_rows

from illuminate_sync.sources.illuminate.client import IlluminateClient, RetryPolicy
from illuminate_sync.sources.illuminate.errors import RequestFailedError


def _all_rows(client: IlluminateClient, limit: int = 25) -> list[dict[str, object]]:
    return [row for page in client.iter_pages("Students/", CLIENT_WINDOW, limit) for row in page.rows]


@pytest.mark.parametrize(
    ("kind", "options"),
    [("500", {}), ("503", {}), ("429", {"retry_after": 0}), ("truncated_json", {}), ("drop_connection", {})],
)
def test_retryable_fault_recovers_to_the_clean_result(
    http_sim, make_client: Callable[..., IlluminateClient], kind: str, options: dict[str, object]
) -> None:
    clean = canonical_rows(http_sim.query("Students", CLIENT_WINDOW))
    client = make_client(max_concurrency=4)
    http_sim.inject_fault("Students", kind, count=3, **options)
    assert canonical_rows(_all_rows(client)) == clean
    assert client.stats.retries == 3
    assert client.stats.per_path["Students/"].retries == 3


def test_random_faults_on_every_path_recover(http_sim, make_client) -> None:
    clean = canonical_rows(http_sim.query("Students", CLIENT_WINDOW))
    client = make_client(max_concurrency=4, retry=RetryPolicy(max_attempts=10, backoff_base=0.01, backoff_max=0.02))
    http_sim.inject_fault("*", "503", rate=0.3)
    assert canonical_rows(_all_rows(client, limit=10)) == clean
    assert client.get_json("Sites/")
    assert client.stats.retries > 0


def test_timeout_is_retried(http_sim, make_client) -> None:
    client = make_client(retry=RetryPolicy(max_attempts=3, backoff_base=0.01, timeout=0.3))
    http_sim.inject_fault("Sites", "latency", count=1, seconds=1.0)
    assert client.get_json("Sites/")
    assert client.stats.retries == 1


def test_retry_after_is_honoured(http_sim, make_client) -> None:
    client = make_client(retry=RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_max=5.0))
    http_sim.inject_fault("Sites", "429", count=1, retry_after=1)
    started = time.monotonic()
    assert client.get_json("Sites/")
    waited = time.monotonic() - started
    assert 0.95 <= waited < 2.5
    assert client.stats.retries == 1


def test_retry_after_is_capped_by_backoff_max(http_sim, make_client) -> None:
    client = make_client(retry=RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_max=0.2))
    http_sim.inject_fault("Sites", "429", count=1, retry_after=30)
    started = time.monotonic()
    assert client.get_json("Sites/")
    assert time.monotonic() - started < 2.0


def test_persistent_503_names_the_path_and_window(http_sim, make_client) -> None:
    client = make_client()
    http_sim.inject_fault("Students", "503")
    with pytest.raises(RequestFailedError) as failure:
        _all_rows(client)
    message = str(failure.value)
    assert message.startswith("GET Students/ (start_date=2026-08-01, end_date=2026-11-27, page=1, limit=25)")
    assert "failed after 4 attempts" in message and "HTTP 503" in message
    assert failure.value.status == 503
    assert failure.value.path == "Students/"
    assert client.stats.requests == 4


def test_not_found_is_not_retried(http_sim, make_client) -> None:
    client = make_client()
    with pytest.raises(RequestFailedError) as failure:
        client.get_json("NoSuchEndpoint/")
    assert "GET NoSuchEndpoint/" in str(failure.value) and "HTTP 404" in str(failure.value)
    assert client.stats.requests == 1


def test_bad_request_is_not_retried_and_shows_the_server_message(http_sim, make_client) -> None:
    client = make_client()
    with pytest.raises(RequestFailedError) as failure:
        # `site_id` is required on Attendance/Section. (Not `page`: the documentation's own example code calls
        # `/Api/Students?limit=2` without it, and the simulator answers page 1 like the real API.)
        client.get_json("Attendance/Section/", {"date": "2026-11-20"})
    message = str(failure.value)
    assert message == (
        "GET Attendance/Section/ (date=2026-11-20): HTTP 400 Bad Request: Missing required parameter: site_id"
        " (not retried)"
    )
    assert client.stats.requests == 1


def test_post_is_not_retried_after_a_server_error(http_sim, make_client) -> None:
    client = make_client()
    http_sim.inject_fault("Assessment/{assessment_id}/Scores", "500", count=1)
    with pytest.raises(RequestFailedError) as failure:
        client.post_json("Assessment/1/Scores/", [{"local_student_id": "1", "responses": ["A"]}])
    assert "POST Assessment/1/Scores/" in str(failure.value)
    assert client.stats.requests == 1


def test_unreachable_server_fails_with_a_translated_error(make_client) -> None:
    from illuminate_sync.sources.illuminate.auth import OAuth1Credentials

    credentials = OAuth1Credentials(consumer_key="k", consumer_secret="s", token="t", token_secret="u")
    with (
        IlluminateClient(
            "http://127.0.0.1:9/live", credentials, retry=RetryPolicy(max_attempts=2, backoff_base=0.01)
        ) as client,
        pytest.raises(RequestFailedError) as failure,
    ):
        client.get_json("Sites/")
    message = str(failure.value)
    assert message.startswith("GET Sites/ failed after 2 attempts; the last: could not connect to the server")
    assert "127.0.0.1" not in message and "http" not in message


def test_post_is_retried_when_the_server_did_not_act(http_sim, make_client) -> None:
    client = make_client()
    assessment_id = next(iter(http_sim.district.assessments))
    http_sim.inject_fault("Assessment/{assessment_id}/Scores", "503", count=2)
    answer = client.post_json(f"Assessment/{assessment_id}/Scores/", [])
    assert answer["responses_count"] == 0
    assert client.stats.retries == 2


def test_post_is_retried_when_no_connection_was_made() -> None:
    from illuminate_sync.sources.illuminate.auth import OAuth1Credentials

    credentials = OAuth1Credentials(consumer_key="k", consumer_secret="s", token="t", token_secret="u")
    with (
        IlluminateClient(
            "http://127.0.0.1:9/live", credentials, retry=RetryPolicy(max_attempts=3, backoff_base=0.01)
        ) as client,
        pytest.raises(RequestFailedError, match="failed after 3 attempts"),
    ):
        client.post_json("Assessment/1/Scores/", [])
