"""The floor: download exactly the requests a sync made, with the same concurrency, bodies discarded.

Usage: python -m bench.floor REQUEST_LOG.jsonl CONCURRENCY   (the simulator's env lines in the environment)

No paging logic, no waiting for page 1 before pages 2..N: all requests go into one pool of CONCURRENCY workers, each
signed afresh with OAuth1 (the project's signer), read completely and thrown away. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import LoggedRequest, api_root, http_session, oauth1_signer, read_request_log, self_peak_rss_mb


def main() -> int:
    requests_log = [r for r in read_request_log(Path(sys.argv[1])) if r.status == 200]
    concurrency = int(sys.argv[2])
    env = dict(os.environ)
    root, signer, session = api_root(env), oauth1_signer(env), http_session(concurrency)
    failures = 0

    def fetch(item: LoggedRequest) -> int:
        response = session.get(
            root + item.path,
            params=item.params or None,
            auth=signer,
            headers={"Accept": "application/json"},
            timeout=120,
        )
        size = len(response.content)
        return size if response.status_code == 200 else -1

    started = time.monotonic()
    total = 0
    with ThreadPoolExecutor(concurrency) as pool:
        for size in pool.map(fetch, requests_log):
            if size < 0:
                failures += 1
            else:
                total += size
    wall = time.monotonic() - started
    print(
        json.dumps(
            {
                "requests": len(requests_log),
                "failures": failures,
                "bytes": total,
                "seconds": wall,
                "peak_rss_mb": self_peak_rss_mb(),
            }
        )
    )
    return 0 if not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
