"""Where a sync's time goes: the requests in flight over the run, from a request log of `bench.sync_child`.

Usage: python -m bench.timeline REQUEST_LOG.jsonl CONCURRENCY [--bucket SECONDS] [--out FILE.json]

Each logged request has its end (seconds since the sync's process started) and its duration, so its start. From
them: the span of the downloads (first start, last end), the mean number in flight, the share of the span with the
pool full (CONCURRENCY in flight) and the "idle slot seconds" (CONCURRENCY less the number in flight, integrated over
the span: what a scheduler with work always ready could still have used); per API path (a table, or a table's
dependency such as `Terms/`), when its requests ran and how full the pool was meanwhile; and the gaps, stretches
of at least `--bucket` seconds with the pool less than half full, named by the paths in flight around them. What
the pool waits for in those gaps (page 1 before pages 2..N, Terms before the slice windows, one table's tail before
the next table) is the serial chain that issue 18 removes.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import LoggedRequest, read_request_log


@dataclass(frozen=True)
class Interval:
    path: str
    start: float
    end: float


def intervals(requests: Sequence[LoggedRequest]) -> list[Interval]:
    """Each answered request's (path, start, end), in order of start; a log without end times is refused."""
    found = [Interval(r.path, r.end - r.seconds, r.end) for r in requests if r.end is not None]
    if not found:
        raise SystemExit("the log has no end times: record it with this version of bench.sync_child")
    return sorted(found, key=lambda interval: interval.start)


def in_flight_steps(spans: Sequence[Interval]) -> list[tuple[float, int]]:
    """(time, requests in flight from then on), at every start and end."""
    events = sorted([(span.start, 1) for span in spans] + [(span.end, -1) for span in spans])
    steps, level = [], 0
    for moment, change in events:
        level += change
        steps.append((moment, level))
    return steps


def occupancy(steps: Sequence[tuple[float, int]], concurrency: int, begin: float, end: float) -> dict[str, float]:
    """Mean in flight, share of the time full, and idle slot seconds between `begin` and `end`."""
    busy = full = idle = 0.0
    for (moment, level), (following, _) in itertools.pairwise(steps):
        low, high = max(moment, begin), min(following, end)
        if high <= low:
            continue
        width = high - low
        busy += level * width
        full += width if level >= concurrency else 0.0
        idle += max(concurrency - level, 0) * width
    span = max(end - begin, 1e-9)
    return {"mean_in_flight": busy / span, "share_full": full / span, "idle_slot_s": idle}


def per_path(spans: Sequence[Interval], steps: Sequence[tuple[float, int]], concurrency: int) -> list[dict[str, Any]]:
    by_path: dict[str, list[Interval]] = defaultdict(list)
    for span in spans:
        by_path[span.path].append(span)
    rows = []
    for path, items in by_path.items():
        begin, end = min(item.start for item in items), max(item.end for item in items)
        rows.append(
            {
                "path": path,
                "requests": len(items),
                "first_start_s": round(begin, 2),
                "last_end_s": round(end, 2),
                "pool_mean_in_flight": round(occupancy(steps, concurrency, begin, end)["mean_in_flight"], 2),
            }
        )
    return sorted(rows, key=lambda row: row["first_start_s"])


def gaps(spans: Sequence[Interval], steps: Sequence[tuple[float, int]], concurrency: int, bucket: float) -> list[Any]:
    """Stretches of at least `bucket` seconds with fewer than half the slots in use, and the paths around them."""
    found: list[dict[str, Any]] = []
    opened: float | None = None
    for moment, level in steps:  # `level` requests are in flight from `moment` on
        low = level * 2 < concurrency
        if low and opened is None:
            opened = moment
        if not low and opened is not None:
            if moment - opened >= bucket:
                found.append(_gap(spans, opened, moment))
            opened = None
    return found


def _gap(spans: Sequence[Interval], begin: float, end: float) -> dict[str, Any]:
    before = sorted({span.path for span in spans if begin - 0.5 <= span.end <= begin + 0.01})
    after = sorted({span.path for span in spans if end - 0.01 <= span.start <= end + 0.5})
    return {"from_s": round(begin, 2), "seconds": round(end - begin, 2), "ending": before, "starting": after}


def timeline(log: Path, concurrency: int, bucket: float) -> dict[str, Any]:
    spans = intervals([request for request in read_request_log(log) if request.status == 200])
    steps = in_flight_steps(spans)
    begin, end = spans[0].start, max(span.end for span in spans)
    rss = Path(f"{log}.rss.json")
    after_last = json.loads(rss.read_text()).get("seconds_after_last_request") if rss.exists() else None
    return {
        "requests": len(spans),
        "first_request_s": round(begin, 2),
        "downloads_span_s": round(end - begin, 2),
        "seconds_after_last_request": after_last,
        "sum_of_request_seconds": round(sum(span.end - span.start for span in spans), 2),
        "overall": {key: round(value, 3) for key, value in occupancy(steps, concurrency, begin, end).items()},
        "paths": per_path(spans, steps, concurrency),
        "gaps": gaps(spans, steps, concurrency, bucket),
    }


def render(result: dict[str, Any]) -> str:
    overall = result["overall"]
    lines = [
        f"{result['requests']:,} requests; first at {result['first_request_s']} s; downloads over"
        f" {result['downloads_span_s']} s; {result['seconds_after_last_request']} s after the last",
        f"mean in flight {overall['mean_in_flight']:.2f}, pool full {overall['share_full']:.0%} of the span,"
        f" idle slot seconds {overall['idle_slot_s']:.1f} (sum of request seconds {result['sum_of_request_seconds']})",
        "",
        f"{'path':<58} {'requests':>8} {'from s':>8} {'to s':>8} {'pool':>6}",
    ]
    for row in result["paths"]:
        lines.append(
            f"{row['path']:<58} {row['requests']:>8,} {row['first_start_s']:>8} {row['last_end_s']:>8}"
            f" {row['pool_mean_in_flight']:>6}"
        )
    lines.append("")
    for gap in result["gaps"]:
        lines.append(
            f"gap at {gap['from_s']} s for {gap['seconds']} s: after {', '.join(gap['ending']) or '-'};"
            f" then {', '.join(gap['starting']) or '-'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("concurrency", type=int)
    parser.add_argument("--bucket", type=float, default=0.5, help="shortest gap reported, seconds (default 0.5)")
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON")
    args = parser.parse_args(argv)
    result = timeline(args.log, args.concurrency, args.bucket)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
