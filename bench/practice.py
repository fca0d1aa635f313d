"""Today's practice: the way public district scripts pull Illuminate, over the same request windows as the sync.

Usage: python -m bench.practice REQUEST_LOG.jsonl   (the simulator's env lines in the environment)

One request at a time (requests + requests_oauthlib.OAuth1, as the public scripts do), `limit=1000`, page after
page until `num_pages`, each body parsed with `json.loads` and its rows appended to a list in memory; nothing is
loaded. The windows (endpoint + date/site/year parameters) are the distinct windows of the measured sync, in its
order, since the API answers only for the nearest in-session date without explicit dates: a script has to pass the
same windows. The rows of a window are dropped when the next window starts (holding a whole endpoint of a large
district would need tens of GB). Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import requests
from requests_oauthlib import OAuth1

from bench.common import PREFIX, api_root, read_request_log, self_peak_rss_mb

LIMIT = 1000


def main() -> int:
    log = read_request_log(Path(sys.argv[1]))
    windows: dict[tuple[str, tuple[tuple[str, str], ...]], bool] = {}
    for item in log:
        windows.setdefault(item.window, item.paged)
    env = dict(os.environ)
    c = f"{PREFIX}CREDENTIALS__"
    auth = OAuth1(env[f"{c}CONSUMER_KEY"], env[f"{c}CONSUMER_SECRET"], env[f"{c}TOKEN"], env[f"{c}TOKEN_SECRET"])
    root = api_root(env)
    session = requests.Session()
    requests_sent = rows = nbytes = 0
    started = time.monotonic()
    for (path, params), paged in windows.items():
        data: list[Any] = []
        page, num_pages = 1, 1
        while page <= num_pages:
            query = {**dict(params), **({"page": str(page), "limit": str(LIMIT)} if paged else {})}
            response = session.get(root + path, params=query, auth=auth, timeout=120)
            requests_sent += 1
            response.raise_for_status()
            nbytes += len(response.content)
            body = json.loads(response.text)
            if isinstance(body, dict) and "results" in body:
                results = body["results"] or []
                data.extend(results if isinstance(results, list) else [results])
                num_pages = int(body.get("num_pages") or 1) if paged else 1
            else:
                data.extend(body if isinstance(body, list) else [body])
            page += 1
        rows += len(data)
    wall = time.monotonic() - started
    print(
        json.dumps(
            {
                "requests": requests_sent,
                "windows": len(windows),
                "rows": rows,
                "bytes": nbytes,
                "seconds": wall,
                "peak_rss_mb": self_peak_rss_mb(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
