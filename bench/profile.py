"""Summarise a py-spy `--format raw` profile (collapsed stacks) into cost categories.

Usage: python -m bench.profile PROFILE.txt [sync|simulator]

py-spy samples only threads that are running (not idle in a lock, a sleep or a socket wait), so the samples of a
category are CPU time. Each stack is put into the category of its innermost frame that matches a rule (the rules are
tried leaf first, so the OAuth signing inside `requests` counts as OAuth, not as HTTP).
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

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
        category = "other"
        for frame in reversed(frames):
            found = next((name for name, pattern in rules if pattern.search(frame)), None)
            if found:
                category = found
                break
        counts[category] += samples
    ranked = [
        {"category": name, "samples": n, "share": round(n / total, 4) if total else 0.0}
        for name, n in counts.most_common()
    ]
    return {"samples": total, "categories": ranked}


def main() -> int:
    rules = SIMULATOR_RULES if len(sys.argv) > 2 and sys.argv[2] == "simulator" else SYNC_RULES
    print(json.dumps(summarise(Path(sys.argv[1]), rules), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
