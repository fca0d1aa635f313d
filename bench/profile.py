"""Summarise a py-spy `--format raw` profile (collapsed stacks) into cost categories.

Usage: python -m bench.profile PROFILE.txt [sync|simulator]

Recorded with `--gil` (run.py does), only the thread holding the GIL is sampled: the categories are then Python CPU
time, and their sum / wall is how busy the GIL was. Without `--gil`, py-spy's idle detection does not work in this
container (every thread is sampled all the time), so a stack whose innermost Python frame blocks (a pool worker
waiting for work, a lock or condition wait, a socket read waiting for the answer, a sleep) is counted as waiting.
Every other stack is put into the category of its innermost frame that matches a rule (rules tried leaf first, so
the OAuth signing inside `requests` counts as OAuth, not as HTTP). Samples / rate = seconds of one thread.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

SOCKET_WAIT = r"^SocketIO\.readinto |^poll_wait_for_socket|do_poll "
IDLE_WAIT = (
    r"^_worker \(concurrent/futures/thread\.py|^Condition\.wait |^Event\.wait |^Thread\._wait_for_tstate_lock|"
    r"^Semaphore\.acquire|^Queue\.get |^serve_forever |\.select \(selectors\.py|^sleep "
)
WAITING: list[tuple[str, re.Pattern[str]]] = [
    ("waiting: socket read (HTTP answer not there yet)", re.compile(SOCKET_WAIT)),
    ("waiting: idle pool worker / lock / sleep", re.compile(IDLE_WAIT)),
]

SYNC_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("oauth1 signing", re.compile(r"oauthlib|authorization_header|\bhmac\b")),
    ("json parsing", re.compile(r"\bloadb\b|orjson|_parse_page|json/decoder")),
    ("convert (RowConverter)", re.compile(r"sources/illuminate/convert\.py")),
    ("dedupe (KeyFilter / natural_key)", re.compile(r"KeyFilter|natural_key")),
    ("rebatch (concat)", re.compile(r"\b_concat\b|\brebatch\b")),
    ("http (requests/urllib3/socket)", re.compile(r"requests/|urllib3/|http/client\.py|socket\.py|ssl\.py")),
    ("dlt normalize", re.compile(r"dlt/normalize/")),
    ("dlt load / duckdb", re.compile(r"dlt/load/|dlt/destinations/|duckdb")),
    ("dlt extract", re.compile(r"dlt/extract/")),
    ("dlt pipeline / state / other dlt", re.compile(r"dlt/")),
    ("warehouse counts (pipelines/sync.py)", re.compile(r"pipelines/sync\.py")),
    ("client threads / pools", re.compile(r"sources/illuminate/client\.py|concurrent/futures")),
    ("imports / startup", re.compile(r"<frozen importlib|_find_and_load")),
]

SIMULATOR_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("oauth1 verification", re.compile(r"simulator/oauth\.py|oauthlib|\bhmac\b")),
    ("json encoding (to_json)", re.compile(r"\bto_json\b|json/encoder")),
    ("page rendering (page_body)", re.compile(r"\bpage_body\b")),
    ("selection (Api.select / district)", re.compile(r"simulator/endpoints\.py|simulator/district\.py")),
    ("http server (http.server/socketserver)", re.compile(r"http/server\.py|socketserver\.py|socket\.py")),
    ("request parsing", re.compile(r"urllib/parse\.py|email/")),
    ("handler", re.compile(r"simulator/server\.py")),
]


def summarise(path: Path, rules: list[tuple[str, re.Pattern[str]]]) -> dict[str, object]:
    counts: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        samples = int(number)
        total += samples
        frames = stack.split(";")
        category = next((name for name, pattern in WAITING if pattern.search(frames[-1])), "other")
        for frame in reversed(frames if category == "other" else []):
            found = next((name for name, pattern in rules if pattern.search(frame)), None)
            if found:
                category = found
                break
        counts[category] += samples
    busy = sum(n for name, n in counts.items() if not name.startswith("waiting"))
    ranked = [
        {"category": name, "samples": n, "share": 0.0 if name.startswith("waiting") or not busy else round(n / busy, 4)}
        for name, n in counts.most_common()
    ]
    return {
        "samples": total,
        "busy_samples": busy,
        "categories": ranked,
        "note": "share = of the busy (non-waiting) samples",
    }


def main() -> int:
    rules = SIMULATOR_RULES if len(sys.argv) > 2 and sys.argv[2] == "simulator" else SYNC_RULES
    print(json.dumps(summarise(Path(sys.argv[1]), rules), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
