"""Concurrent paging against the simulator over HTTP: exact results, odd answer shapes, shifting pages, the bound."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from client_support import CLIENT_WINDOW, canonical_rows

from illuminate_sync.sources.illuminate.client import IlluminateClient, Page, _parse_page, _window_problem
from illuminate_sync.sources.illuminate.errors import IncompleteResultError, RequestFailedError

EMPTY_WINDOW = {"start_date": "1990-08-01", "end_date": "1990-08-31"}


def test_pages_add_up_to_the_unpaged_truth(http_sim, make_client: Callable[..., IlluminateClient]) -> None:
    truth = http_sim.query("Students", CLIENT_WINDOW)
    client = make_client(max_concurrency=4)
    pages = list(client.iter_pages("Students/", CLIENT_WINDOW, 30))
    assert [page.page for page in pages] == list(range(1, len(pages) + 1))
    assert len(pages) == -(-len(truth) // 30)
    assert all(isinstance(page, Page) and page.num_pages == len(pages) for page in pages)
    assert all(page.num_results == len(truth) for page in pages)
    assert all(page.params == {**CLIENT_WINDOW, "page": page.page, "limit": 30} for page in pages)
    assert canonical_rows([row for page in pages for row in page.rows]) == canonical_rows(truth)


def test_page_and_limit_in_params_are_replaced(http_sim, make_client) -> None:
    client = make_client()
    pages = list(client.iter_pages("Students/", {**CLIENT_WINDOW, "page": 7, "limit": 3, "site_id": None}, 100))
    assert pages[0].params == {**CLIENT_WINDOW, "page": 1, "limit": 100}


def test_empty_window_yields_one_empty_page(http_sim, make_client) -> None:
    assert http_sim.query("Students", EMPTY_WINDOW) == []
    pages = list(make_client().iter_pages("Students/", EMPTY_WINDOW, 50))
    assert len(pages) == 1
    assert (pages[0].num_pages, pages[0].num_results, pages[0].rows) == (0, 0, [])


def test_bare_list_is_one_page(http_sim, make_client) -> None:
    pages = list(make_client().iter_pages("Sites/", {}, 1000))
    assert len(pages) == 1
    assert pages[0].rows and pages[0].num_results == len(pages[0].rows)


def test_shifting_pages_are_refetched_to_the_exact_result(http_sim, make_client) -> None:
    """Each `shift_pages` fault adds back-dated students before its page is answered: the first fires on page 1
    (consistent), the second on a later page, whose counts then differ from page 1's: the window is refetched."""
    client = make_client(max_concurrency=4)
    http_sim.inject_fault("Students", "shift_pages", count=2)
    rows = [row for page in client.iter_pages("Students/", CLIENT_WINDOW, 25) for row in page.rows]
    truth = canonical_rows(http_sim.query("Students", CLIENT_WINDOW))
    assert canonical_rows(rows) == truth  # no row of the inconsistent attempt was yielded
    assert client.stats.refetched_windows == 1


def test_pages_that_keep_shifting_raise_incomplete_result(http_sim, make_client) -> None:
    client = make_client(max_concurrency=4)
    http_sim.inject_fault("Students", "shift_pages")
    received: list[Page] = []
    with pytest.raises(IncompleteResultError) as failure:
        received.extend(client.iter_pages("Students/", CLIENT_WINDOW, 25))
    assert received == []  # nothing of an inconsistent window reaches the caller
    message = str(failure.value)
    assert message.startswith("GET Students/ (start_date=2026-08-01, end_date=2026-11-27)")
    assert "after 3 attempts" in message
    assert failure.value.path == "Students/" and failure.value.params == CLIENT_WINDOW
    assert client.stats.refetched_windows == 2
    assert failure.value.expected is not None and failure.value.received is not None


def test_pages_before_verification_come_as_they_arrive_and_again_after_a_refetch(http_sim, make_client) -> None:
    """`before_verified` hands each page over at once: the inconsistent attempt's rows arrive too, then the whole
    refetched window, so the rows received contain every record of the window (the caller drops repeated keys)."""
    client = make_client(max_concurrency=4)
    http_sim.inject_fault("Students", "shift_pages", count=2)
    pages = list(client.iter_pages("Students/", CLIENT_WINDOW, 25, before_verified=True))
    truth = canonical_rows(http_sim.query("Students", CLIENT_WINDOW))
    received = canonical_rows([row for page in pages for row in page.rows])
    assert sorted(set(received)) == truth
    assert sum(len(page.rows) for page in pages) > len(truth), "the failed attempt's pages were handed over"
    assert client.stats.refetched_windows == 1


def test_pages_before_verification_still_raise_when_the_window_never_adds_up(http_sim, make_client) -> None:
    client = make_client(max_concurrency=4)
    http_sim.inject_fault("Students", "shift_pages")
    with pytest.raises(IncompleteResultError):
        list(client.iter_pages("Students/", CLIENT_WINDOW, 25, before_verified=True))
    assert client.stats.refetched_windows == 2


def test_concurrency_is_bounded_across_callers(http_sim, make_client) -> None:
    """Two windows paged at once through `map_concurrently`, 0.1 s per request, 4 slots: never more than 4 in
    flight, and the elapsed time shows both the bound (>= requests * latency / 4) and its use (far below serial)."""
    pages_per_window = -(-len(http_sim.query("Students", CLIENT_WINDOW)) // 10)
    client = make_client(max_concurrency=4)
    http_sim.inject_fault("Students", "latency", seconds=0.1)
    windows = [CLIENT_WINDOW, {**CLIENT_WINDOW, "grade_level_id": None}]
    started = time.monotonic()
    results = list(client.map_concurrently(lambda window: list(client.iter_pages("Students/", window, 10)), windows))
    elapsed = time.monotonic() - started
    requests = sum(len(pages) for pages in results)
    assert requests == client.stats.requests == 2 * pages_per_window >= 16
    assert client.stats.max_in_flight == 4
    assert elapsed >= requests * 0.1 / 4 * 0.95
    assert elapsed < requests * 0.1 / 2


def test_fan_out_with_one_slot_does_not_deadlock(http_sim, make_client) -> None:
    client = make_client(max_concurrency=1)
    windows = [CLIENT_WINDOW] * 3
    results = list(
        client.map_concurrently(lambda w: sum(len(p.rows) for p in client.iter_pages("Students/", w, 40)), windows)
    )
    assert results == [len(http_sim.query("Students", CLIENT_WINDOW))] * 3
    assert client.stats.max_in_flight == 1


def test_nested_fan_out_runs_inline(http_sim, make_client) -> None:
    client = make_client(max_concurrency=2)

    def outer(n: int) -> list[int]:
        return sorted(client.map_concurrently(lambda m: m * n, range(5)))

    assert sorted(map(tuple, client.map_concurrently(outer, range(4)))) == [
        tuple(m * n for m in range(5)) for n in range(4)
    ]


def test_fan_out_raises_the_first_error(http_sim, make_client) -> None:
    client = make_client(max_concurrency=2)

    def fetch(path: str) -> object:
        return client.get_json(path)

    with pytest.raises(RequestFailedError, match="NoSuchEndpoint"):
        list(client.map_concurrently(fetch, ["Sites/", "NoSuchEndpoint/", "Sites/"]))


@pytest.mark.parametrize(
    ("answer", "num_pages", "num_results", "rows"),
    [
        ({"page": 1, "num_pages": "3", "num_results": "785", "results": [{"a": 1}]}, 3, 785, [{"a": 1}]),
        ({"page": 1, "num_pages": 1, "num_results": 1, "results": {"a": 1}}, 1, 1, [{"a": 1}]),
        ({"page": 1, "num_pages": 0, "num_results": 0}, 0, 0, []),
        ({"page": 1, "num_pages": 0, "num_results": "0", "results": []}, 0, 0, []),
        ({"page": 1, "num_pages": 2, "results": [{"a": 1}]}, 2, None, [{"a": 1}]),
        ({"num_results": 25, "results": [{"a": 1}]}, 3, 25, [{"a": 1}]),
        ([{"a": 1}, {"a": 2}], 1, 2, [{"a": 1}, {"a": 2}]),
        ([], 0, 0, []),
    ],
)
def test_answer_shapes(answer: object, num_pages: int, num_results: int | None, rows: list[dict[str, int]]) -> None:
    raw = _parse_page(answer, 1, {"page": 1, "limit": 10}, 10, "GET X/")
    assert (raw.num_pages, raw.num_results, raw.rows) == (num_pages, num_results, rows)


@pytest.mark.parametrize("answer", [{"error": "nope"}, "text", {"num_pages": "many", "results": []}, {"results": 5}])
def test_unreadable_answers_fail_clearly(answer: object) -> None:
    with pytest.raises(RequestFailedError, match=r"^GET X/ \(page=1\): "):
        _parse_page(answer, 1, {"page": 1}, 10, "GET X/ (page=1)")


def test_window_checks() -> None:
    def raw(number: int, rows: int, num_results: int | None = 5, num_pages: int = 2, reported: int | None = None):
        answer = {"page": reported or number, "num_pages": num_pages, "results": [{"i": i} for i in range(rows)]}
        if num_results is not None:
            answer["num_results"] = num_results
        return _parse_page(answer, number, {}, 3, "GET X/")

    assert _window_problem([raw(1, 3), raw(2, 2)]) == ""
    assert _window_problem([raw(1, 3, None), raw(2, 2, None)]) == ""
    assert "received 6 rows" in _window_problem([raw(1, 3), raw(2, 3)])
    assert "reports 6 rows" in _window_problem([raw(1, 3), raw(2, 3, 6)])
    assert "reports 3 pages" in _window_problem([raw(1, 3), raw(2, 2, 5, 3)])
    assert "answered as page 1" in _window_problem([raw(1, 3), raw(2, 2, reported=1)])
